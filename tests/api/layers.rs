//! The import rules of ARCHITECTURE.md, checked on the source: each part
//! names only the parts of Tern its row allows (an allow-list), and none of
//! the crates it must not touch. Reads `src/` as text: a `crate::` path, in
//! a `use` (grouped or nested) or inline, counts wherever it appears
//! (comments aside).

use std::path::{Path, PathBuf};

/// A part of `src/`, the top-level modules of Tern it may name, and the
/// external crates (or paths in them) it may not.
struct Rule {
    part: &'static str,
    may_use: &'static [&'static str],
    must_not: &'static [&'static str],
}

const HTTP: &[&str] = &["axum", "tower", "tower_http", "utoipa_axum", "utoipa_swagger_ui"];

const RULES: &[Rule] = &[
    // Pure vocabulary and mail formats: no storage, no HTTP, no I/O.
    Rule {
        part: "domain",
        may_use: &["domain"],
        must_not: &["axum", "tower", "tokio", "sqlx::PgPool", "sqlx::query", "reqwest"],
    },
    Rule {
        part: "mail",
        may_use: &["mail", "domain"],
        must_not: &["axum", "tower", "tokio", "sqlx", "reqwest"],
    },
    Rule {
        part: "tracking",
        may_use: &["tracking", "domain"],
        must_not: &["axum", "tower", "tokio", "sqlx", "reqwest"],
    },
    // Storage knows no HTTP and none of the services that call it.
    Rule {
        part: "db",
        may_use: &["db", "domain"],
        must_not: HTTP,
    },
    Rule {
        part: "dns",
        may_use: &["dns", "domain", "mail", "config", "observability"],
        must_not: HTTP,
    },
    Rule {
        part: "auth",
        may_use: &["auth", "db", "domain", "config", "observability"],
        must_not: HTTP,
    },
    // Services and background parts run without the HTTP layer.
    Rule {
        part: "sending",
        may_use: &[
            "sending",
            "auth",
            "db",
            "domain",
            "mail",
            "tracking",
            "config",
            "state",
            "observability",
        ],
        must_not: HTTP,
    },
    Rule {
        part: "delivery",
        may_use: &[
            "delivery",
            "db",
            "dns",
            "domain",
            "mail",
            "config",
            "observability",
        ],
        must_not: HTTP,
    },
    Rule {
        part: "observability",
        may_use: &["observability", "db", "domain", "config"],
        must_not: HTTP,
    },
    // Webhook endpoints' checks and secrets (the dispatcher comes here).
    Rule {
        part: "webhooks",
        may_use: &[
            "webhooks",
            "db",
            "domain",
            "config",
            "observability",
            "sealing",
            "state",
        ],
        must_not: HTTP,
    },
    // The SMTP server runs without the HTTP layer; it decodes return paths
    // with mail::verp, writes payloads of webhooks::events and asks
    // rspamd (reqwest) for a spam score.
    Rule {
        part: "inbound",
        may_use: &[
            "inbound",
            "db",
            "dns",
            "domain",
            "mail",
            "config",
            "observability",
            "state",
            "webhooks",
        ],
        must_not: HTTP,
    },
    // Sealing secrets at rest: pure, apart from reading its key file.
    Rule {
        part: "sealing.rs",
        may_use: &["sealing", "config", "domain"],
        must_not: &["axum", "tower", "sqlx", "reqwest"],
    },
    Rule {
        part: "state.rs",
        may_use: &[
            "state",
            "auth",
            "config",
            "db",
            "dns",
            "domain",
            "mail",
            "observability",
            "sealing",
            "tracking",
        ],
        must_not: HTTP,
    },
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

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The items of a `{...}` group starting at `open` (the index of `{`),
/// split at its top-level commas; nested groups stay whole.
fn group_items(chars: &[char], open: usize) -> Vec<String> {
    let mut items = Vec::new();
    let mut depth = 0;
    let mut current = String::new();
    for &c in &chars[open..] {
        match c {
            '{' => {
                depth += 1;
                if depth > 1 {
                    current.push(c);
                }
            }
            '}' => {
                depth -= 1;
                if depth == 0 {
                    items.push(std::mem::take(&mut current));
                    break;
                }
                current.push(c);
            }
            ',' if depth == 1 => items.push(std::mem::take(&mut current)),
            _ => current.push(c),
        }
    }
    items
        .into_iter()
        .map(|i| i.trim().to_string())
        .filter(|i| !i.is_empty())
        .collect()
}

/// The top-level modules of Tern the code names: the first segment after
/// every `crate::`, each item of a `crate::{...}` group included.
fn crate_modules(code: &str) -> Vec<String> {
    let chars: Vec<char> = code.chars().collect();
    let mut found = Vec::new();
    let mut i = 0;
    while let Some(at) = code_index(&chars, i, "crate::") {
        let start = at + "crate::".len();
        if at > 0 && (is_ident(chars[at - 1]) || chars[at - 1] == ':') {
            i = start;
            continue;
        }
        if chars.get(start) == Some(&'{') {
            for item in group_items(&chars, start) {
                found.push(item.chars().take_while(|c| is_ident(*c)).collect());
            }
        } else {
            found.push(chars[start..].iter().take_while(|c| is_ident(**c)).collect());
        }
        i = start;
    }
    found.retain(|m: &String| !m.is_empty() && m != "self");
    found
}

fn code_index(chars: &[char], from: usize, needle: &str) -> Option<usize> {
    let needle: Vec<char> = needle.chars().collect();
    (from..chars.len().saturating_sub(needle.len() - 1)).find(|&i| chars[i..i + needle.len()] == needle[..])
}

/// Every path the code names that starts with an identifier (not after
/// `::`), as written: `axum::Router`, `tokio::spawn`, `sqlx::PgPool`.
fn rooted_paths(code: &str) -> Vec<String> {
    let chars: Vec<char> = code.chars().collect();
    let mut paths = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if is_ident(chars[i]) && (i == 0 || !is_ident(chars[i - 1]) && chars[i - 1] != ':') {
            let start = i;
            while i < chars.len() && (is_ident(chars[i]) || chars[i] == ':') {
                i += 1;
            }
            paths.push(chars[start..i].iter().collect());
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
    for rule in RULES {
        let mut files = Vec::new();
        rust_files(&src.join(rule.part), &mut files);
        assert!(!files.is_empty(), "no sources under src/{}", rule.part);
        for file in files {
            let code = without_comments(&std::fs::read_to_string(&file).expect("read source"));
            for module in crate_modules(&code) {
                if !rule.may_use.contains(&module.as_str()) {
                    broken.push(format!(
                        "{} names crate::{module} (src/{} may not)",
                        file.display(),
                        rule.part
                    ));
                }
            }
            for path in rooted_paths(&code) {
                let hit = rule.must_not.iter().find(|f| {
                    path == **f || path.starts_with(&format!("{f}::")) || path.starts_with(&format!("{f}_"))
                });
                if let Some(crate_name) = hit {
                    broken.push(format!(
                        "{} names `{path}` (src/{} may not use {crate_name})",
                        file.display(),
                        rule.part
                    ));
                }
            }
        }
    }
    assert!(broken.is_empty(), "forbidden imports:\n{}", broken.join("\n"));
}

#[test]
fn the_scanner_sees_grouped_nested_and_inline_imports() {
    let modules =
        crate_modules("use crate::{db::{self, x}, api::router};\nfn f() { crate::state::AppState::new(); }");
    assert_eq!(modules, ["db", "api", "state"]);
    assert!(
        rooted_paths("use axum::Router; fn f() { tokio::spawn(x); }").contains(&"tokio::spawn".to_string())
    );
}
