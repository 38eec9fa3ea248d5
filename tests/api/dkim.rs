//! Signatures verify with an independent implementation (Python dkimpy).

use std::process::Command;

use serde_json::json;

use crate::helpers::{json_of, python, spawn_app};

async fn verify_with_dkimpy(algorithm: &str) {
    let app = spawn_app().await;
    let t = app
        .tenant("ann@example.com", "signed.test", "development", algorithm)
        .await;
    let domain = json_of(
        app.get(&format!("/v1/domains/{}", t.domain_id), &t.token).await,
        200,
    )
    .await;
    let txt = dkim_txt(&domain);
    assert!(txt.starts_with(&format!("v=DKIM1; k={algorithm}; p=")));
    let body = json!({
        "from": "Søren 🦀 <news@signed.test>", "to": "Jürgen <j@example.org>",
        "subject": "Grüße 🌍", "text": "Hej — 你好\n", "html": "<b>Hej</b>",
        "headers": {"X-Long": "a ".repeat(200)}
    });
    let sent = app.send(&t.key, &body).await;
    let raw = app.source(&t.key, sent["id"].as_str().unwrap()).await;
    if let Err(output) = dkimpy_verifies(&raw, &txt) {
        panic!("dkimpy did not verify the {algorithm} signature:\n{output}");
    }
}

/// The DKIM TXT value a domain (as the API shows it) asks to publish.
pub fn dkim_txt(domain: &serde_json::Value) -> String {
    let record = domain["dns_records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["purpose"] == "dkim")
        .expect("dkim record");
    assert_eq!(
        record["name"].as_str().unwrap(),
        format!(
            "{}._domainkey.{}",
            domain["dkim_selector"].as_str().unwrap(),
            domain["name"].as_str().unwrap()
        )
    );
    record["value"].as_str().unwrap().to_string()
}

/// Verifies `message`'s DKIM signature with dkimpy against the TXT value.
pub fn dkimpy_verifies(message: &[u8], txt: &str) -> Result<(), String> {
    let dir = std::env::temp_dir().join(format!("tern-dkim-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("message.eml");
    std::fs::write(&file, message).unwrap();
    let output = Command::new(python())
        .arg("tests/support/dkim_verify.py")
        .arg(&file)
        .arg(txt)
        .output()
        .expect("run python (scripts/test installs dkimpy)");
    let _ = std::fs::remove_dir_all(&dir);
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

#[tokio::test]
async fn rsa_signatures_verify_with_dkimpy() {
    verify_with_dkimpy("rsa").await;
}

#[tokio::test]
async fn ed25519_signatures_verify_with_dkimpy() {
    verify_with_dkimpy("ed25519").await;
}
