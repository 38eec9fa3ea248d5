//! Rebuilds Tern when the dashboard's built assets (web/dist, embedded in
//! release builds) change.

fn main() {
    println!("cargo:rerun-if-changed=web/dist");
    println!("cargo:rerun-if-changed=build.rs");
}
