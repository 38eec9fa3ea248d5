//! Raw RFC 5322 sends.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use mail_parser::MessageParser;
use serde_json::json;

use crate::helpers::{assert_error, json_of, spawn_app};

#[tokio::test]
async fn a_raw_send_is_completed_signed_and_stored() {
    let app = spawn_app().await;
    let t = app
        .tenant("ann@example.com", "shop.test", "development", "rsa")
        .await;
    // Bare LF line ends, no Message-ID, no Date.
    let raw = "From: Shop <news@shop.test>\nTo: jane@example.org\nSubject: Ünïcödé 🎉\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\nBody with emoji 🎉\n";
    let body = json!({
        "mail_from": "bounces@shop.test",
        "rcpt_to": ["jane@example.org", "JANE@example.org", "other@example.net"],
        "raw": STANDARD.encode(raw),
        "tag": "raw"
    });
    let sent = json_of(app.post("/v1/messages/raw", &t.key, &body).await, 202).await;
    let recipients = sent["recipients"].as_array().unwrap();
    assert_eq!(recipients.len(), 2, "duplicates are delivered once: {sent}");
    assert!(recipients.iter().all(|r| r["kind"] == "envelope"));

    let stored = app.source(&t.key, sent["id"].as_str().unwrap()).await;
    let text = String::from_utf8(stored.clone()).unwrap();
    assert!(text.starts_with("DKIM-Signature:"));
    assert!(
        !text.replace("\r\n", "").contains('\n'),
        "bare LF left in stored message"
    );
    let parsed = MessageParser::default().parse(&stored).unwrap();
    assert_eq!(parsed.subject(), Some("Ünïcödé 🎉"));
    assert_eq!(parsed.body_text(0).as_deref(), Some("Body with emoji 🎉\r\n"));
    assert_eq!(parsed.message_id(), sent["message_id"].as_str());
    assert!(parsed.date().is_some());

    let detail = app.message(&t.key, &sent).await;
    assert_eq!(detail["mail_from"], "bounces@shop.test");
    assert_eq!(detail["from"], "Shop <news@shop.test>");
}

#[tokio::test]
async fn a_message_already_signed_by_its_domain_is_not_signed_again() {
    let app = spawn_app().await;
    let t = app
        .tenant("ann@example.com", "shop.test", "development", "rsa")
        .await;
    let raw = "DKIM-Signature: v=1; a=rsa-sha256; d=shop.test; s=own; h=From; bh=eA==; b=eQ==\r\nFrom: a@shop.test\r\nMessage-ID: <own@shop.test>\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\n\r\nhi\r\n";
    let body = json!({"mail_from": "a@shop.test", "rcpt_to": "b@example.org", "raw": STANDARD.encode(raw)});
    let sent = json_of(app.post("/v1/messages/raw", &t.key, &body).await, 202).await;
    assert_eq!(sent["message_id"], "own@shop.test");
    let stored = app.source(&t.key, sent["id"].as_str().unwrap()).await;
    assert_eq!(stored, raw.as_bytes());
}

#[tokio::test]
async fn broken_raw_messages_are_refused_and_nothing_is_stored() {
    let app = spawn_app().await;
    let t = app
        .tenant("ann@example.com", "shop.test", "development", "rsa")
        .await;
    let send = |raw: serde_json::Value, mail_from: &str| json!({"mail_from": mail_from, "rcpt_to": ["b@example.org"], "raw": raw});
    let cases = [
        (
            send(json!("%%% not base64"), "a@shop.test"),
            422,
            "invalid_base64",
        ),
        (
            send(json!(STANDARD.encode("Subject: no from\r\n\r\nx")), "a@shop.test"),
            422,
            "invalid_message",
        ),
        (
            send(
                json!(STANDARD.encode("From: a@shop.test\r\nno blank line")),
                "a@shop.test",
            ),
            422,
            "invalid_message",
        ),
        (
            send(
                json!(STANDARD.encode("From: a@other.test\r\n\r\nx")),
                "a@shop.test",
            ),
            422,
            "unknown_sender_domain",
        ),
        (
            send(
                json!(STANDARD.encode("From: a@shop.test\r\n\r\nx")),
                "not an address",
            ),
            422,
            "invalid_address",
        ),
        (send(json!(5), "a@shop.test"), 422, "invalid_field"),
    ];
    for (body, status, code) in cases {
        assert_error(app.post("/v1/messages/raw", &t.key, &body).await, status, code).await;
    }
    assert_eq!(app.count("messages").await, 0);
    assert_eq!(app.count("recipients").await, 0);
}
