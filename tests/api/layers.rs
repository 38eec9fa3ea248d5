//! The import rules of ARCHITECTURE.md, checked on the source: a layer may
//! not name the layers above it. Reads `src/` as text: a `crate::` path, in
//! a `use` or inline, counts wherever it appears (comments aside).

use std::path::{Path, PathBuf};

/// Which parts of `src/` may not import which modules or crates.
const RULES: &[(&str, &[&str])] = &[
    // Pure vocabulary and mail formats: no storage, no HTTP, no I/O.
    (
        "domain",
        &[
            "crate::api",
            "crate::db",
            "crate::sending",
            "crate::delivery",
            "crate::state",
            "crate::startup",
            "crate::dns",
            "crate::mail",
            "crate::auth",
            "axum",
            "tokio",
            "sqlx::PgPool",
            "sqlx::query",
        ],
    ),
    (
        "mail",
        &[
            "crate::api",
            "crate::db",
            "crate::sending",
            "crate::delivery",
            "crate::state",
            "crate::startup",
            "crate::dns",
            "axum",
            "tokio",
            "sqlx",
        ],
    ),
    // Storage knows no HTTP and none of the services that call it.
    (
        "db",
        &[
            "crate::api",
            "crate::sending",
            "crate::delivery",
            "crate::state",
            "crate::startup",
            "axum",
            "tower",
        ],
    ),
    // Services and background parts run without the HTTP layer.
    ("sending", &["crate::api", "crate::startup", "axum", "tower"]),
    (
        "delivery",
        &["crate::api", "crate::sending", "crate::startup", "axum", "tower"],
    ),
    (
        "auth",
        &["crate::api", "crate::sending", "crate::startup", "axum", "tower"],
    ),
    (
        "dns",
        &[
            "crate::api",
            "crate::db",
            "crate::sending",
            "crate::startup",
            "axum",
            "tower",
        ],
    ),
    ("state.rs", &["crate::api", "crate::startup", "axum", "tower"]),
    (
        "observability",
        &["crate::api", "crate::sending", "crate::startup", "axum", "tower"],
    ),
];

fn rust_files(path: &Path, out: &mut Vec<PathBuf>) {
    if path.is_file() {
        out.push(path.to_path_buf());
        return;
    }
    for entry in std::fs::read_dir(path).expect("read src dir") {
        let entry = entry.expect("dir entry").path();
        if entry.is_dir() {
            rust_files(&entry, out);
        } else if entry.extension().is_some_and(|e| e == "rs") {
            out.push(entry);
        }
    }
}

/// Every path the code names: `a::b::c` as written, and each item of a
/// `use a::{b, c::d}` group expanded (`a::b`, `a::c::d`).
fn named_paths(code: &str) -> Vec<String> {
    let mut paths = Vec::new();
    let bytes: Vec<char> = code.chars().collect();
    let is_ident = |c: char| c.is_alphanumeric() || c == '_';
    let mut i = 0;
    while i < bytes.len() {
        if is_ident(bytes[i]) && (i == 0 || !is_ident(bytes[i - 1]) && bytes[i - 1] != ':') {
            let start = i;
            while i < bytes.len() && (is_ident(bytes[i]) || bytes[i] == ':') {
                i += 1;
            }
            let path: String = bytes[start..i].iter().collect();
            if path.ends_with("::") && i < bytes.len() && bytes[i] == '{' {
                // A group: expand one level, enough for `use crate::{api, db}`.
                let end = bytes[i..]
                    .iter()
                    .position(|&c| c == '}')
                    .map_or(bytes.len(), |p| i + p);
                let inner: String = bytes[i + 1..end].iter().collect();
                for item in inner.split(',') {
                    paths.push(format!("{path}{}", item.trim()));
                }
            } else {
                paths.push(path);
            }
        } else {
            i += 1;
        }
    }
    paths
}

fn without_comments(text: &str) -> String {
    text.lines()
        .map(|line| match line.find("//") {
            Some(at) => &line[..at],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn layers_import_only_what_architecture_md_allows() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut broken = Vec::new();
    for (part, forbidden) in RULES {
        let mut files = Vec::new();
        rust_files(&src.join(part), &mut files);
        assert!(!files.is_empty(), "no sources under src/{part}");
        for file in files {
            let code = without_comments(&std::fs::read_to_string(&file).expect("read source"));
            for path in named_paths(&code) {
                let hit = forbidden.iter().find(|f| {
                    path == **f || path.starts_with(&format!("{f}::")) || path.starts_with(&format!("{f}_"))
                });
                if let Some(rule) = hit {
                    broken.push(format!(
                        "{} names `{path}` (src/{part} may not use {rule})",
                        file.display()
                    ));
                }
            }
        }
    }
    assert!(broken.is_empty(), "forbidden imports:\n{}", broken.join("\n"));
}

#[test]
fn the_path_scanner_sees_grouped_and_inline_imports() {
    let paths = named_paths("use crate::{api, db::x};\nfn f() { crate::api::router(); }");
    assert!(paths.contains(&"crate::api".to_string()), "{paths:?}");
    assert!(paths.contains(&"crate::db::x".to_string()), "{paths:?}");
    assert!(paths.contains(&"crate::api::router".to_string()), "{paths:?}");
}
