//! Rebuilds Tern when the dashboard's built assets (web/dist, embedded in
//! release builds) or the migrations (embedded by `sqlx::migrate!`, which
//! cannot tell cargo itself on stable Rust) change.

fn main() {
    println!("cargo:rerun-if-changed=web/dist");
    println!("cargo:rerun-if-changed=migrations");
    println!("cargo:rerun-if-changed=build.rs");
}
