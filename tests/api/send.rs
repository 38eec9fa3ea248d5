//! JSON sends are stored with per-recipient rows and parse back exactly.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use mail_parser::{MessageParser, MimeHeaders};
use serde_json::json;

use crate::helpers::{json_of, spawn_app};

#[tokio::test]
async fn a_json_send_round_trips_through_mime() {
    let app = spawn_app().await;
    let t = app
        .tenant("ann@example.com", "shop.test", "development", "rsa")
        .await;
    let pdf = b"%PDF-1.4 not really a pdf \x00\x01\x02\xff".to_vec();
    let png = b"\x89PNG\r\n\x1a\nfake image bytes".to_vec();
    let subject = "Заказ №42 — 注文 🚀📦 confirmed";
    let text = "Здравствуйте! こんにちは 👋🏽\nYour order ships today.\n";
    let html = "<p>Привет 👋 <img src=\"cid:logo\"></p>";
    let body = json!({
        "from": {"email": "orders@shop.test", "name": "Zoë Müller 🛍️"},
        "to": ["Иван Петров <ivan@example.org>", "用户@例子.测试"],
        "cc": "Ada <ada@example.net>",
        "bcc": ["hidden@example.com"],
        "reply_to": "support@shop.test",
        "subject": subject,
        "text": text,
        "html": html,
        "headers": {"X-Campaign": "spring", "List-Unsubscribe": "<mailto:u@shop.test>"},
        "attachments": [
            {"filename": "invoice.pdf", "content": STANDARD.encode(&pdf), "content_type": "application/pdf"},
            {"filename": "logo.png", "content": STANDARD.encode(&png), "content_type": "image/png", "content_id": "logo"}
        ],
        "tag": "receipt",
        "metadata": {"order": "42"}
    });
    let sent = app.send(&t.key, &body).await;
    let recipients = sent["recipients"].as_array().unwrap();
    assert_eq!(recipients.len(), 4);
    assert!(recipients.iter().all(|r| r["status"] == "held"));
    let kinds: Vec<&str> = recipients.iter().map(|r| r["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["to", "to", "cc", "bcc"]);
    assert_eq!(app.count("recipients").await, 4);

    let id = sent["id"].as_str().unwrap();
    let raw = app.source(&t.key, id).await;
    let head =
        String::from_utf8_lossy(&raw[..raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap()]).to_string();
    assert!(head.starts_with("DKIM-Signature:"), "{head}");
    // Header names only: the DKIM signature and MIME boundary are random and may spell "bcc".
    assert!(
        !head
            .lines()
            .any(|line| line.to_ascii_lowercase().starts_with("bcc:")),
        "Bcc leaked into headers: {head}"
    );
    assert!(
        head.contains("Subject: =?utf-8?"),
        "subject not RFC 2047 encoded: {head}"
    );
    assert!(
        head.contains("用户@xn--fsqu00a.xn--0zwm56d"),
        "UTF-8 local part not kept (RFC 6532): {head}"
    );

    let parsed = MessageParser::default()
        .parse(&raw)
        .expect("stored message parses");
    assert_eq!(parsed.subject(), Some(subject));
    let from = parsed.from().unwrap().first().unwrap();
    assert_eq!(from.name(), Some("Zoë Müller 🛍️"));
    assert_eq!(from.address(), Some("orders@shop.test"));
    let to: Vec<_> = parsed.to().unwrap().iter().collect();
    assert_eq!(to[0].name(), Some("Иван Петров"));
    assert_eq!(parsed.cc().unwrap().first().unwrap().name(), Some("Ada"));
    assert_eq!(
        parsed.reply_to().unwrap().first().unwrap().address(),
        Some("support@shop.test")
    );
    // Text parts carry line breaks as CRLF, their canonical form
    // (RFC 2046 §4.1.1); Tern normalises them when it builds the message.
    assert_eq!(
        parsed.body_text(0).as_deref(),
        Some(text.replace('\n', "\r\n").as_str())
    );
    assert_eq!(
        parsed.body_html(0).as_deref(),
        Some(html.replace('\n', "\r\n").as_str())
    );
    assert_eq!(parsed.header_raw("X-Campaign").map(str::trim), Some("spring"));
    assert!(parsed.message_id().unwrap().ends_with("@tern.test"));
    assert!(parsed.date().is_some());

    let attachments: Vec<_> = parsed.attachments().collect();
    let invoice = attachments
        .iter()
        .find(|a| a.attachment_name() == Some("invoice.pdf"))
        .expect("invoice");
    assert_eq!(invoice.contents(), pdf.as_slice());
    assert_eq!(invoice.content_type().unwrap().subtype(), Some("pdf"));
    let logo = attachments
        .iter()
        .find(|a| a.content_id() == Some("logo"))
        .expect("inline logo");
    assert_eq!(logo.contents(), png.as_slice());
    assert!(String::from_utf8_lossy(&raw).contains("multipart/related"));

    let detail = json_of(
        app.get(&format!("/v1/messages/{id}?include=raw"), &t.key).await,
        200,
    )
    .await;
    assert_eq!(detail["subject"], subject);
    assert_eq!(detail["tag"], "receipt");
    assert_eq!(detail["metadata"]["order"], "42");
    assert_eq!(detail["size"], raw.len());
    assert_eq!(STANDARD.decode(detail["raw"].as_str().unwrap()).unwrap(), raw);
    let events: Vec<&str> = detail["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(events, ["accepted", "held", "held", "held", "held"]);
    assert!(
        detail["headers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["name"] == "Message-ID")
    );
}

#[tokio::test]
async fn live_servers_queue_and_suppressed_addresses_are_reported() {
    let app = spawn_app().await;
    let t = app
        .tenant("ann@example.com", "shop.test", "live", "ed25519")
        .await;
    let body = json!({"from": "a@shop.test", "to": ["ok@example.org", "gone@example.org"], "text": "x"});
    // Live servers send only from verified domains.
    crate::helpers::assert_error(
        app.post("/v1/messages", &t.key, &body).await,
        422,
        "domain_not_verified",
    )
    .await;
    sqlx::query("UPDATE domains SET verified_at = now()")
        .execute(&app.db)
        .await
        .unwrap();
    sqlx::query("INSERT INTO suppressions (server_id, address, reason) VALUES ($1, 'gone@example.org', 'hard_bounce')")
        .bind(t.server_id)
        .execute(&app.db)
        .await
        .unwrap();
    let sent = app.send(&t.key, &body).await;
    assert_eq!(sent["recipients"][0]["status"], "queued");
    assert_eq!(sent["recipients"][1]["status"], "suppressed");
    let due: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM recipients WHERE status = 'queued' AND next_attempt_at IS NOT NULL",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(due, 1);
}
