//! Bounces, complaints, unsubscribes and the suppression list (issue 11):
//! a real Postfix bounces what Tern delivered and sends its DSN to Tern's
//! SMTP server; swaks sends feedback reports and unsubscribe mail; an HTTP
//! client follows the one-click link; the suppression API is used with API
//! keys and with sessions, and never across tenants.

use std::time::Duration;

use serde_json::{Value, json};
use tern::delivery::worker::Worker;
use tern::mail::verp::{Verp, VerpTarget};
use uuid::Uuid;

use crate::helpers::{Tenant, TestApp, assert_error, free_port, json_of, loopback_route, spawn_app_with};
use crate::inbound::{deliver, smtp_settings, start_smtp, start_smtp_with, swaks};
use crate::peers::{Postfix, Sink, TlsPeer};
use crate::receiver::Receiver;
use crate::reports::fixture;
use crate::webhooks::assert_documented;

/// An endpoint of `t`'s server taking every event.
pub(crate) async fn webhook(app: &TestApp, t: &Tenant, receiver: &Receiver) {
    json_of(
        app.post(
            &format!("/v1/servers/{}/webhooks", t.server_id),
            &t.token,
            &json!({"url": receiver.url}),
        )
        .await,
        201,
    )
    .await;
}

/// Polls `query` (one text column) until it returns `want`, for 60 s.
async fn eventually(app: &TestApp, query: &str, id: Uuid, want: &str) {
    for _ in 0..600 {
        let got: Option<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(query.to_string()))
            .bind(id)
            .fetch_optional(&app.db)
            .await
            .unwrap();
        if got.as_deref() == Some(want) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("`{query}` never gave {want}");
}

async fn verp(app: &TestApp) -> Verp {
    let key: Vec<u8> = sqlx::query_scalar("SELECT value FROM instance_secrets WHERE name = 'verp_hmac'")
        .fetch_one(&app.db)
        .await
        .unwrap();
    Verp::new(&key)
}

/// The suppression entry of an address: reason, expiry, source message.
async fn entry(
    app: &TestApp,
    server: Uuid,
    address: &str,
) -> Option<(String, Option<chrono::DateTime<chrono::Utc>>, Option<Uuid>)> {
    sqlx::query_as("SELECT reason, expires_at, source_message_id FROM suppressions WHERE server_id = $1 AND address = $2")
        .bind(server)
        .bind(address)
        .fetch_optional(&app.db)
        .await
        .unwrap()
}

fn events_of(receiver: &Receiver, kind: &str) -> Vec<Value> {
    receiver
        .requests()
        .iter()
        .map(|(_, body)| serde_json::from_str::<Value>(body).unwrap())
        .filter(|e| e["type"] == kind)
        .collect()
}

fn recipient_id(message: &Value, address: &str) -> Uuid {
    crate::helpers::recipient(message, address)["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn a_postfix_dsn_bounces_the_sent_recipient_and_suppresses_it() {
    let postfix_port = free_port();
    let app = spawn_app_with(|s| {
        smtp_settings(s);
        s.delivery.transports = vec![loopback_route("bounce.test", postfix_port)];
    })
    .await;
    let smtp = start_smtp(&app).await;
    let _postfix = Postfix::start_on("bounce.test", smtp, postfix_port);
    let t = app.live_tenant("dsn@example.com", "shop.test").await;
    let receiver = Receiver::start(&[]).await;
    webhook(&app, &t, &receiver).await;

    // Two recipients at one domain: one transaction, a return path naming
    // the message; the DSN's Final-Recipient says which one bounced.
    let sent = app
        .send(
            &t.key,
            &json!({"from": "shop@shop.test", "to": ["gone@bounce.test", "kept@bounce.test"],
                    "subject": "Your receipt", "text": "Thanks."}),
        )
        .await;
    let id: Uuid = sent["id"].as_str().unwrap().parse().unwrap();
    let worker = Worker::new(app.db.clone(), app.settings.clone()).await.unwrap();
    assert_eq!(worker.run_once().await.unwrap(), 2);
    let message = app.message(&t.key, &sent).await;
    let gone = recipient_id(&message, "gone@bounce.test");
    assert_eq!(
        crate::helpers::recipient(&message, "gone@bounce.test")["status"],
        "sent"
    );

    // Postfix's virtual(8) finds no such mailbox and bounces to Tern.
    eventually(
        &app,
        "SELECT status FROM recipients WHERE id = $1",
        gone,
        "bounced",
    )
    .await;
    let message = app.message(&t.key, &sent).await;
    assert_eq!(
        crate::helpers::recipient(&message, "kept@bounce.test")["status"],
        "sent"
    );
    let (reason, expires, source) = entry(&app, t.server_id, "gone@bounce.test").await.unwrap();
    assert_eq!((reason.as_str(), source), ("hard_bounce", Some(id)));
    let days = (expires.unwrap() - chrono::Utc::now()).num_days();
    assert!(
        (29..=30).contains(&days),
        "hard bounces last 30 days by default: {days}"
    );
    assert!(entry(&app, t.server_id, "kept@bounce.test").await.is_none());

    // The DSN is stored as an incoming message about the original.
    let (report_id, action, about): (Uuid, String, Option<Uuid>) = sqlx::query_as(
        "SELECT message_id, action, about_message_id FROM inbound_messages WHERE kind = 'return_path'",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!((action.as_str(), about), ("hard_bounce", Some(id)));
    let report = json_of(app.get(&format!("/v1/messages/{report_id}"), &t.key).await, 200).await;
    assert_eq!(report["direction"], "incoming");
    assert_eq!(report["inbound"]["about_message_id"], json!(id));
    let read = &report["inbound"]["report"];
    assert_eq!(read["kind"], "delivery", "{read}");
    assert_eq!(read["recipients"][0]["status"], "5.1.1", "{read}");
    assert_eq!(read["recipients"][0]["action"], "failed", "{read}");

    deliver(&app, &receiver, 3).await;
    let bounced = events_of(&receiver, "message.bounced");
    assert_eq!(bounced.len(), 1, "{bounced:?}");
    let data = &bounced[0]["data"];
    assert_eq!(data["recipient"], "gone@bounce.test");
    assert_eq!(data["source"], "dsn");
    assert_eq!(data["bounce_type"], "hard");
    assert_eq!(data["category"], "bad_address");
    assert_eq!(data["suppressed"], true);
    assert_eq!(data["reply"]["enhanced_code"], "5.1.1");
    assert_eq!(data["report_id"], json!(report_id));
    assert_documented(&receiver.requests());

    // The address, in any case, is suppressed for the next send, which
    // says why and since when.
    let again = app
        .send(
            &t.key,
            &json!({"from": "shop@shop.test", "to": "Gone@Bounce.test", "text": "again"}),
        )
        .await;
    let recipient = &again["recipients"][0];
    assert_eq!(recipient["status"], "suppressed");
    assert_eq!(recipient["suppression"]["reason"], "hard_bounce");
    assert!(recipient["suppression"]["since"].is_string());
}

#[tokio::test]
async fn a_refusal_during_delivery_suppresses_the_address() {
    // The aiosmtpd peer answers `550 5.1.1` to local parts starting with
    // "reject".
    let refusing = TlsPeer::start();
    let app =
        spawn_app_with(|s| s.delivery.transports = vec![loopback_route("refuse.test", refusing.port)]).await;
    let t = app.live_tenant("refused@example.com", "shop.test").await;
    let sent = app
        .send(
            &t.key,
            &json!({"from": "a@shop.test", "to": "reject.One@Refuse.test", "text": "x"}),
        )
        .await;
    let worker = Worker::new(app.db.clone(), app.settings.clone()).await.unwrap();
    assert_eq!(worker.run_once().await.unwrap(), 1);
    let message = app.message(&t.key, &sent).await;
    assert_eq!(message["recipients"][0]["status"], "bounced");
    let (reason, _, source) = entry(&app, t.server_id, "reject.one@refuse.test").await.unwrap();
    assert_eq!(reason, "hard_bounce");
    assert_eq!(
        source.map(|s| s.to_string()),
        sent["id"].as_str().map(str::to_string)
    );
    let event = message["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "bounced")
        .unwrap()
        .clone();
    assert_eq!(event["detail"]["source"], "smtp", "{event}");
    assert_eq!(event["detail"]["suppressed"], true, "{event}");
    assert_eq!(event["detail"]["category"], "bad_address", "{event}");
}

#[tokio::test]
async fn complaints_by_return_path_or_feedback_address_suppress_for_good() {
    let ok = Sink::start(&[]);
    let app = spawn_app_with(|s| {
        smtp_settings(s);
        s.smtp.feedback_addresses = vec!["fbl@rp.tern.test".into()];
        s.delivery.transports = vec![loopback_route("example.org", ok.port)];
    })
    .await;
    let smtp = start_smtp(&app).await;
    let t = app.live_tenant("arf@example.com", "shop.test").await;
    let receiver = Receiver::start(&[]).await;
    webhook(&app, &t, &receiver).await;
    let mut sent = Vec::new();
    for to in ["jane@example.org", "bob@example.org"] {
        sent.push(
            app.send(
                &t.key,
                &json!({"from": "shop@shop.test", "to": to, "subject": "Your receipt", "text": "x"}),
            )
            .await,
        );
    }
    let worker = Worker::new(app.db.clone(), app.settings.clone()).await.unwrap();
    assert_eq!(worker.run_once().await.unwrap(), 2);
    let jane = app.message(&t.key, &sent[0]).await;
    let bob = app.message(&t.key, &sent[1]).await;
    let verp = verp(&app).await;
    let jane_rp = verp.return_path(
        VerpTarget::Recipient(recipient_id(&jane, "jane@example.org")),
        "rp.tern.test",
    );
    let dir = std::env::temp_dir().join(format!("tern-arf-{}", Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let write = |name: &str, message_id: &str, recipient: &str, return_path: &str| {
        let path = dir.join(name);
        std::fs::write(&path, fixture(name, message_id, recipient, return_path)).unwrap();
        format!("@{}", path.display())
    };

    // Reports that suppress nothing: a delay warning (an event, the
    // recipient stays sent), a full mailbox (final: bounced, but a full
    // mailbox is temporary in practice), an out-of-office reply (recorded).
    let bob_rp = verp.return_path(
        VerpTarget::Recipient(recipient_id(&bob, "bob@example.org")),
        "rp.tern.test",
    );
    let bob_message_id = bob["message_id"].as_str().unwrap();
    for (name, action) in [
        ("dsn-postfix-delayed.eml", "soft_bounce"),
        // The same report again (a sender retrying after a lost 250): no
        // second event.
        ("dsn-postfix-delayed.eml", "soft_bounce"),
        ("autoreply-out-of-office.eml", "auto_reply"),
        ("dsn-gmail-mailbox-full.eml", "soft_bounce"),
    ] {
        let data = write(name, bob_message_id, "bob@example.org", &bob_rp);
        let (ok_sent, output) = swaks(smtp, &["--from", "", "--to", &bob_rp, "--data", &data]).await;
        assert!(ok_sent, "{name}: {output}");
        let stored: String =
            sqlx::query_scalar("SELECT action FROM inbound_messages ORDER BY message_id DESC LIMIT 1")
                .fetch_one(&app.db)
                .await
                .unwrap();
        assert_eq!(stored, action, "{name}");
        let status = app.message(&t.key, &sent[1]).await["recipients"][0]["status"].clone();
        let want = if name.contains("mailbox-full") {
            "bounced"
        } else {
            "sent"
        };
        assert_eq!(status, want, "{name}");
    }
    assert!(entry(&app, t.server_id, "bob@example.org").await.is_none());
    let bounced = app.message(&t.key, &sent[1]).await["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "bounced")
        .map(|e| {
            (
                e["detail"]["bounce_type"].clone(),
                e["detail"]["suppressed"].clone(),
            )
        })
        .collect::<Vec<_>>();
    assert_eq!(bounced, vec![(json!("soft"), json!(false)); 2]);

    // A bounce sent to the feedback address is not believed: anyone can
    // write there and quote a Message-ID. Stored, nothing done.
    let jane_id = jane["message_id"].as_str().unwrap();
    let forged = write("dsn-gmail.eml", jane_id, "jane@example.org", "x@example.net");
    let (ok_sent, output) = swaks(
        smtp,
        &["--from", "", "--to", "fbl@rp.tern.test", "--data", &forged],
    )
    .await;
    assert!(ok_sent, "{output}");
    assert_eq!(
        app.message(&t.key, &sent[0]).await["recipients"][0]["status"],
        "sent"
    );
    assert!(entry(&app, t.server_id, "jane@example.org").await.is_none());

    // Yahoo's report to the return path (names the recipient).
    let yahoo = write(
        "arf-yahoo.eml",
        jane["message_id"].as_str().unwrap(),
        "jane@example.org",
        &jane_rp,
    );
    let (ok_sent, output) = swaks(smtp, &["--from", "", "--to", &jane_rp, "--data", &yahoo]).await;
    assert!(ok_sent, "{output}");
    // Microsoft's (JMRP) to the feedback address: recipient redacted, the
    // Message-ID Tern made says which message.
    let jmrp = write(
        "arf-microsoft-jmrp.eml",
        bob["message_id"].as_str().unwrap(),
        "redacted",
        "redacted@example.net",
    );
    // Where only some providers are believed, an unsigned report acts on
    // nothing (stored as `untrusted`).
    let strict = start_smtp_with(&app, |s| s.smtp.feedback_senders = vec!["hotmail.test".into()]).await;
    let (ok_sent, output) = swaks(
        strict,
        &[
            "--from",
            "staff@hotmail.test",
            "--to",
            "fbl@rp.tern.test",
            "--data",
            &jmrp,
        ],
    )
    .await;
    assert!(ok_sent, "{output}");
    assert_eq!(app.count("inbound_messages WHERE action = 'untrusted'").await, 1);
    assert!(entry(&app, t.server_id, "bob@example.org").await.is_none());
    for _ in 0..2 {
        let (ok_sent, output) = swaks(
            smtp,
            &[
                "--from",
                "staff@hotmail.test",
                "--to",
                "fbl@rp.tern.test",
                "--data",
                &jmrp,
            ],
        )
        .await;
        assert!(ok_sent, "{output}");
    }
    // A report about no message of ours is taken and dropped.
    let stray = write(
        "arf-aol.eml",
        "0192aaaa@elsewhere.test",
        "x@example.org",
        "x@example.org",
    );
    let (ok_sent, output) = swaks(
        smtp,
        &["--from", "", "--to", "fbl@rp.tern.test", "--data", &stray],
    )
    .await;
    assert!(ok_sent, "{output}");
    let _ = std::fs::remove_dir_all(&dir);

    for address in ["jane@example.org", "bob@example.org"] {
        let (reason, expires, _) = entry(&app, t.server_id, address).await.unwrap();
        assert_eq!((reason.as_str(), expires), ("complaint", None), "{address}");
    }
    assert_eq!(
        app.count("inbound_messages WHERE action = 'complaint'").await,
        3,
        "each report is stored; the stray one is not"
    );
    deliver(&app, &receiver, 6).await;
    let complained = events_of(&receiver, "message.complained");
    assert_eq!(
        complained.len(),
        2,
        "one event per recipient however often reported"
    );
    let yahoo_event = complained
        .iter()
        .find(|e| e["data"]["recipient"] == "jane@example.org")
        .unwrap();
    assert_eq!(yahoo_event["data"]["feedback_type"], "abuse");
    assert_eq!(yahoo_event["data"]["suppressed"], true);
    assert_documented(&receiver.requests());
}

#[tokio::test]
async fn list_unsubscribe_one_click_page_and_mailto_suppress_the_recipient() {
    let app = spawn_app_with(smtp_settings).await;
    let smtp = start_smtp(&app).await;
    let t = app
        .tenant("unsub@example.com", "shop.test", "development", "rsa")
        .await;
    let receiver = Receiver::start(&[]).await;
    webhook(&app, &t, &receiver).await;
    let server = json_of(
        app.patch(
            &format!("/v1/servers/{}", t.server_id),
            &t.token,
            &json!({"list_unsubscribe": true}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(server["list_unsubscribe"], true);

    // Several recipients: asked for, refused; by default, left out.
    assert_error(
        app.post(
            "/v1/messages",
            &t.key,
            &json!({"from": "a@shop.test", "to": ["x@example.org", "y@example.org"], "text": "x", "unsubscribe": true}),
        )
        .await,
        422,
        "unsubscribe_needs_one_recipient",
    )
    .await;
    let two = app
        .send(
            &t.key,
            &json!({"from": "a@shop.test", "to": ["x@example.org", "y@example.org"], "text": "x"}),
        )
        .await;
    let source = String::from_utf8(app.source(&t.key, two["id"].as_str().unwrap()).await).unwrap();
    assert!(!source.contains("\r\nList-Unsubscribe:"));
    let off = app
        .send(
            &t.key,
            &json!({"from": "a@shop.test", "to": "x@example.org", "text": "x", "unsubscribe": false}),
        )
        .await;
    let source = String::from_utf8(app.source(&t.key, off["id"].as_str().unwrap()).await).unwrap();
    assert!(!source.contains("\r\nList-Unsubscribe:"));

    // One recipient: both fields, signed.
    let one = app
        .send(
            &t.key,
            &json!({"from": "a@shop.test", "to": "x@example.org", "text": "x"}),
        )
        .await;
    let source = String::from_utf8(app.source(&t.key, one["id"].as_str().unwrap()).await).unwrap();
    let unfolded = source.replace("\r\n ", " ").replace("\r\n\t", " ");
    let field = unfolded
        .lines()
        .find(|l| l.starts_with("List-Unsubscribe: "))
        .unwrap_or_else(|| panic!("{source}"));
    assert!(unfolded.contains("\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"));
    let signed = unfolded
        .lines()
        .find(|l| l.starts_with("DKIM-Signature:"))
        .unwrap()
        .replace(' ', "")
        .to_ascii_lowercase();
    let names: Vec<&str> = signed
        .split(';')
        .find_map(|tag| tag.strip_prefix("h="))
        .unwrap()
        .split(':')
        .collect();
    assert!(
        names.contains(&"list-unsubscribe") && names.contains(&"list-unsubscribe-post"),
        "{signed}"
    );
    let url = field.split('<').nth(1).unwrap().split('>').next().unwrap();
    let prefix = "https://tern.test/u/";
    assert!(url.starts_with(prefix), "{field}");
    let token = &url[prefix.len()..];
    assert!(
        field.contains(&format!("<mailto:u+{token}@rp.tern.test>")),
        "{field}"
    );

    let client = reqwest::Client::new();
    let page = client.get(app.url(&format!("/u/{token}"))).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(
        page.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'none'")
    );
    assert!(page.text().await.unwrap().contains("<form method=\"post\">"));
    assert!(
        entry(&app, t.server_id, "x@example.org").await.is_none(),
        "a GET changes nothing"
    );

    let mut tampered = token.to_string();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'a' { 'b' } else { 'a' });
    for response in [
        client
            .get(app.url(&format!("/u/{tampered}")))
            .send()
            .await
            .unwrap(),
        client
            .post(app.url(&format!("/u/{tampered}")))
            .send()
            .await
            .unwrap(),
    ] {
        assert_eq!(response.status(), 404);
    }
    assert_eq!(app.count("suppressions").await, 0);

    // RFC 8058 one-click, twice (mail clients retry): one event.
    for _ in 0..2 {
        let done = client
            .post(app.url(&format!("/u/{token}")))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("List-Unsubscribe=One-Click")
            .send()
            .await
            .unwrap();
        assert_eq!(done.status(), 200);
    }
    let (reason, expires, source_message) = entry(&app, t.server_id, "x@example.org").await.unwrap();
    assert_eq!((reason.as_str(), expires), ("unsubscribe", None));
    assert_eq!(
        source_message.map(|s| s.to_string()),
        one["id"].as_str().map(str::to_string)
    );

    // Mail to the mailto: address.
    let other = app
        .send(
            &t.key,
            &json!({"from": "a@shop.test", "to": "y@example.org", "text": "x"}),
        )
        .await;
    let message = app.message(&t.key, &other).await;
    let y = recipient_id(&message, "y@example.org");
    let mailto = verp(&app)
        .await
        .return_path(VerpTarget::Unsubscribe(y), "rp.tern.test");
    let (ok, output) = swaks(
        smtp,
        &[
            "--from",
            "y@example.org",
            "--to",
            &mailto,
            "--h-Subject",
            "unsubscribe",
        ],
    )
    .await;
    assert!(ok, "{output}");
    assert_eq!(
        entry(&app, t.server_id, "y@example.org").await.unwrap().0,
        "unsubscribe"
    );

    deliver(&app, &receiver, 1).await;
    let mut unsubscribed = Vec::new();
    for _ in 0..100 {
        unsubscribed = events_of(&receiver, "message.unsubscribed");
        if unsubscribed.len() >= 2 {
            break;
        }
        deliver(&app, &receiver, receiver.requests().len() + 1).await;
    }
    let methods: Vec<&str> = unsubscribed
        .iter()
        .map(|e| e["data"]["method"].as_str().unwrap())
        .collect();
    assert_eq!(unsubscribed.len(), 2, "{methods:?}");
    assert!(
        methods.contains(&"one_click") && methods.contains(&"mailto"),
        "{methods:?}"
    );
    assert_documented(&receiver.requests());
}

#[tokio::test]
async fn the_suppression_list_is_managed_per_server_and_expiry_works() {
    let app = spawn_app_with(|_| {}).await;
    let a = app
        .tenant("list-a@example.com", "a.test", "development", "ed25519")
        .await;
    let b = app
        .tenant("list-b@example.com", "b.test", "development", "ed25519")
        .await;

    // Added with the API key, in any case; read back in lower case.
    let added = json_of(
        app.put("/v1/suppressions/Jane@Example.org", &a.key, &json!({}))
            .await,
        201,
    )
    .await;
    assert_eq!(added["address"], "jane@example.org");
    assert_eq!(added["reason"], "manual");
    assert_eq!(added["expires_at"], Value::Null);
    json_of(
        app.put(
            "/v1/suppressions/jane@example.org",
            &a.key,
            &json!({"detail": "asked"}),
        )
        .await,
        200,
    )
    .await;
    let got = json_of(app.get("/v1/suppressions/JANE@EXAMPLE.ORG", &a.key).await, 200).await;
    assert_eq!(got["detail"], "asked");
    // Never across tenants, by key or by session.
    assert_error(
        app.get("/v1/suppressions/jane@example.org", &b.key).await,
        404,
        "not_found",
    )
    .await;
    assert_error(
        app.delete("/v1/suppressions/jane@example.org", &b.key).await,
        404,
        "not_found",
    )
    .await;
    let listed = json_of(
        app.get(&format!("/v1/servers/{}/suppressions", a.server_id), &a.token)
            .await,
        200,
    )
    .await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);
    assert_error(
        app.get(&format!("/v1/servers/{}/suppressions", a.server_id), &b.token)
            .await,
        404,
        "not_found",
    )
    .await;
    assert_error(
        app.put(
            &format!("/v1/servers/{}/suppressions/x@y.test", a.server_id),
            &b.token,
            &json!({}),
        )
        .await,
        404,
        "not_found",
    )
    .await;
    assert_error(
        app.put("/v1/suppressions/not-an-address", &a.key, &json!({}))
            .await,
        422,
        "invalid_address",
    )
    .await;

    // A send says why a recipient is suppressed.
    let sent = app
        .send(
            &a.key,
            &json!({"from": "x@a.test", "to": "JANE@example.org", "text": "x"}),
        )
        .await;
    assert_eq!(sent["recipients"][0]["status"], "suppressed");
    assert_eq!(sent["recipients"][0]["suppression"]["reason"], "manual");

    // Bulk import: idempotent, all or nothing, bounded.
    let import = json!({"entries": [
        {"address": "one@example.org", "reason": "unsubscribe"},
        {"address": "Two@example.org", "reason": "hard_bounce"},
        {"address": "two@example.org", "reason": "hard_bounce"},
    ]});
    let result = json_of(app.post("/v1/suppressions", &a.key, &import).await, 200).await;
    assert_eq!(
        (result["received"].as_u64(), result["written"].as_u64()),
        (Some(3), Some(2))
    );
    let result = json_of(app.post("/v1/suppressions", &a.key, &import).await, 200).await;
    assert_eq!(result["written"], 0, "importing again changes nothing");
    let bad = json!({"entries": [{"address": "three@example.org"}, {"address": "nope"}]});
    let error = assert_error(
        app.post("/v1/suppressions", &a.key, &bad).await,
        422,
        "invalid_address",
    )
    .await;
    assert_eq!(error["error"]["field"], "entries[1].address");
    let many: Vec<Value> = (0..10_001)
        .map(|i| json!({"address": format!("u{i}@example.org")}))
        .collect();
    assert_error(
        app.post("/v1/suppressions", &a.key, &json!({"entries": many}))
            .await,
        413,
        "too_many_entries",
    )
    .await;
    assert!(entry(&app, a.server_id, "three@example.org").await.is_none());
    let two = json_of(app.get("/v1/suppressions/two@example.org", &a.key).await, 200).await;
    let days = (two["expires_at"]
        .as_str()
        .unwrap()
        .parse::<chrono::DateTime<chrono::Utc>>()
        .unwrap()
        - chrono::Utc::now())
    .num_days();
    assert!((29..=30).contains(&days), "a hard bounce's default lifetime");

    // Listing: filters and cursor pages.
    let unsub = json_of(app.get("/v1/suppressions?reason=unsubscribe", &a.key).await, 200).await;
    assert_eq!(unsub["data"].as_array().unwrap().len(), 1);
    let mut seen = Vec::new();
    let mut path = "/v1/suppressions?limit=1&address=EXAMPLE.org".to_string();
    loop {
        let page = json_of(app.get(&path, &a.key).await, 200).await;
        seen.extend(
            page["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["address"].clone()),
        );
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/v1/suppressions?limit=1&address=EXAMPLE.org&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert_error(
        app.get("/v1/suppressions?cursor=zz", &a.key).await,
        400,
        "invalid_cursor",
    )
    .await;

    // Expiry: an entry past its time suppresses nothing and is not listed;
    // the periodic job removes it and records it.
    json_of(
        app.put(
            "/v1/suppressions/old@example.org",
            &a.key,
            &json!({"expires_at": "2020-01-01T00:00:00Z"}),
        )
        .await,
        201,
    )
    .await;
    assert_error(
        app.get("/v1/suppressions/old@example.org", &a.key).await,
        404,
        "not_found",
    )
    .await;
    let sent = app
        .send(
            &a.key,
            &json!({"from": "x@a.test", "to": "old@example.org", "text": "x"}),
        )
        .await;
    assert_eq!(sent["recipients"][0]["status"], "held");
    assert!(tern::db::suppressions::expire(&app.db, 1000).await.unwrap() >= 1);
    assert_eq!(
        app.count("suppression_removals WHERE cause = 'expired' AND address = 'old@example.org'")
            .await,
        1
    );
    assert!(entry(&app, a.server_id, "old@example.org").await.is_none());

    // Removal: sent to again, recorded.
    assert_eq!(
        app.delete("/v1/suppressions/Jane@example.org", &a.key)
            .await
            .status(),
        204
    );
    assert_error(
        app.delete("/v1/suppressions/jane@example.org", &a.key).await,
        404,
        "not_found",
    )
    .await;
    assert_eq!(app.count("suppression_removals WHERE cause = 'deleted'").await, 1);
    let sent = app
        .send(
            &a.key,
            &json!({"from": "x@a.test", "to": "jane@example.org", "text": "x"}),
        )
        .await;
    assert_eq!(sent["recipients"][0]["status"], "held");
    // The session API writes too (owners and admins).
    json_of(
        app.put(
            &format!("/v1/servers/{}/suppressions/ops@example.org", a.server_id),
            &a.token,
            &json!({"reason": "complaint"}),
        )
        .await,
        201,
    )
    .await;
    let got = json_of(
        app.get(
            &format!("/v1/servers/{}/suppressions/OPS@example.org", a.server_id),
            &a.token,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(got["reason"], "complaint");
}
