//! What a hostile tenant may try on the send path (issue 8): SMTP smuggling
//! through bare CR/LF, a second From, a Bcc header left for all to see.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;

use tern::delivery::worker::Worker;

use crate::helpers::{
    Dnsmasq, assert_error, free_port, json_of, loopback_route, recipient, spawn_app, spawn_app_with,
};
use crate::peers::Sink;

/// Every CR and LF is part of a CRLF pair.
fn only_crlf(message: &[u8]) -> bool {
    message.iter().enumerate().all(|(i, &b)| match b {
        b'\r' => message.get(i + 1) == Some(&b'\n'),
        b'\n' => i > 0 && message[i - 1] == b'\r',
        _ => true,
    })
}

#[tokio::test]
async fn bare_cr_and_lf_in_json_bodies_are_stored_as_crlf() {
    let app = spawn_app().await;
    let t = app
        .tenant("ann@example.com", "shop.test", "development", "rsa")
        .await;
    let body = json!({
        "from": "a@shop.test", "to": "b@example.org",
        "text": "line1\r.\r\nMAIL FROM:<x@y>\rline2\n.\nline3",
        "html": "<p>a\rb</p>\n.\n"
    });
    let sent = app.send(&t.key, &body).await;
    let stored = app.source(&t.key, sent["id"].as_str().unwrap()).await;
    assert!(only_crlf(&stored), "{}", String::from_utf8_lossy(&stored));

    let nul = json!({"from": "a@shop.test", "to": "b@example.org", "text": "a\u{0}b"});
    assert_error(app.post("/v1/messages", &t.key, &nul).await, 422, "invalid_body").await;
}

#[tokio::test]
async fn raw_messages_with_smuggling_line_ends_or_repeated_fields_are_refused() {
    let app = spawn_app().await;
    let t = app
        .tenant("ann@example.com", "shop.test", "development", "rsa")
        .await;
    let long_line = format!("From: a@shop.test\r\n\r\n{}\r\n", "x".repeat(999));
    let cases: [(&str, &str); 7] = [
        (
            "From: a@shop.test\r\n\r\nline1\r.\r\nMAIL FROM:<x@y>\r\n",
            "bare CR",
        ),
        ("From: a@shop.test\r\n\r\nline1\n.\nRCPT TO:<x@y>\r\n", "bare LF"),
        ("From: a@shop.test\r\n\r\na\0b\r\n", "NUL"),
        (&long_line, "998"),
        ("From: ceo@bank.test\r\nFrom: a@shop.test\r\n\r\nx\r\n", "`From`"),
        (
            "From: a@shop.test\r\nSubject: a\r\nSubject: b\r\n\r\nx\r\n",
            "`Subject`",
        ),
        (
            "From: a@shop.test\r\nMessage-ID: <1@x>\r\nMessage-ID: <2@x>\r\n\r\nx\r\n",
            "`Message-ID`",
        ),
    ];
    for (raw, reason) in cases {
        let body =
            json!({"mail_from": "a@shop.test", "rcpt_to": "b@example.org", "raw": STANDARD.encode(raw)});
        let response = app.post("/v1/messages/raw", &t.key, &body).await;
        let error = json_of(response, 422).await;
        assert_eq!(error["error"]["code"], "invalid_message", "{raw:?}");
        let message = error["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(reason), "{raw:?}: {message}");
    }
    assert_eq!(app.count("messages").await, 0);
}

#[tokio::test]
async fn a_raw_bcc_header_is_stripped_before_signing() {
    let app = spawn_app().await;
    let t = app
        .tenant("ann@example.com", "shop.test", "development", "rsa")
        .await;
    let raw = "From: a@shop.test\r\nTo: b@example.org\r\nBcc: hidden@example.net,\r\n also@example.net\r\nSubject: hi\r\n\r\nbody\r\n";
    let body = json!({
        "mail_from": "a@shop.test",
        "rcpt_to": ["b@example.org", "hidden@example.net", "also@example.net"],
        "raw": STANDARD.encode(raw)
    });
    let sent = json_of(app.post("/v1/messages/raw", &t.key, &body).await, 202).await;
    assert_eq!(sent["recipients"].as_array().unwrap().len(), 3);
    let stored = String::from_utf8(app.source(&t.key, sent["id"].as_str().unwrap()).await).unwrap();
    assert!(!stored.to_ascii_lowercase().contains("bcc:"), "{stored}");
    assert!(!stored.contains("hidden@example.net"), "{stored}");
    assert!(
        stored.contains("\r\nTo: b@example.org\r\nSubject: hi\r\n"),
        "{stored}"
    );
}

#[test]
fn secrets_never_show_in_debug_output() {
    use tern::auth::ApiKeyToken;
    use tern::config::Settings;
    use tern::db::api_keys::{KeyLookup, SendLookup};
    use tern::domain::{DkimAlgorithm, Redacted, ServerMode, SigningDomain};

    let jwt = "jwt-secret-0123456789-0123456789-0123456789";
    let mut settings = Settings::default();
    settings.auth.jwt_secret = Some(jwt.to_string().into());
    settings.database.url = "postgres://tern:db-password-42@db.internal/tern"
        .to_string()
        .into();
    let key_bytes = b"-----PRIVATE KEY MATERIAL 7f3a-----".to_vec();
    let key_text = "PRIVATE KEY MATERIAL 7f3a";
    let domain = SigningDomain {
        id: uuid::Uuid::nil(),
        name: "shop.test".into(),
        dkim_algorithm: DkimAlgorithm::Rsa,
        dkim_selector: "s1".into(),
        sealed_dkim_key: Redacted::new(key_bytes.clone()),
        verified: true,
    };
    let lookup = SendLookup {
        key: KeyLookup {
            key_id: uuid::Uuid::nil(),
            server_id: uuid::Uuid::nil(),
            mode: ServerMode::Live,
            revoked: false,
            needs_touch: false,
        },
        domain_id: None,
        domain_name: None,
        dkim_algorithm: None,
        dkim_selector: None,
        sealed_dkim_key: Some(Redacted::new(key_bytes.clone())),
        domain_verified: None,
        list_unsubscribe: false,
        track_opens: false,
        track_clicks: false,
        tracking_host: None,
        suppressed: Vec::new(),
    };
    let api_key = "tern_0123456789ab_SecretPartOfTheKey";
    let token = ApiKeyToken::parse(api_key).unwrap();
    let printed = format!("{settings:?} {domain:?} {lookup:?} {token:?}");
    let bytes_printed = format!("{:?}", key_bytes);
    for secret in [
        jwt,
        "db-password-42",
        key_text,
        "SecretPartOfTheKey",
        bytes_printed.as_str(),
    ] {
        assert!(!printed.contains(secret), "{secret:?} in {printed}");
    }
}

#[tokio::test]
async fn special_use_recipient_domains_are_refused_unless_routed() {
    let app = spawn_app_with(|s| {
        s.delivery.allow_private_destinations = false;
        s.delivery.transports = vec![loopback_route("routed.test", 2525)];
    })
    .await;
    let t = app
        .tenant("ann@example.com", "shop.test", "development", "ed25519")
        .await;
    for to in [
        "root@box.localhost",
        "admin@intranet.local",
        "x@y.test",
        "a@b.invalid",
        "c@d.example",
    ] {
        let body = json!({"from": "a@shop.test", "to": ["ok@example.org", to], "text": "x"});
        let error = assert_error(
            app.post("/v1/messages", &t.key, &body).await,
            422,
            "undeliverable_domain",
        )
        .await;
        assert_eq!(error["error"]["field"], "to", "{error}");
    }
    let raw = json!({"mail_from": "a@shop.test", "rcpt_to": "x@y.test",
                     "raw": STANDARD.encode("From: a@shop.test\r\n\r\nx\r\n")});
    assert_error(
        app.post("/v1/messages/raw", &t.key, &raw).await,
        422,
        "undeliverable_domain",
    )
    .await;
    assert_eq!(app.count("messages").await, 0);
    // A domain the operator routes explicitly is fine.
    app.send(
        &t.key,
        &json!({"from": "a@shop.test", "to": "b@routed.test", "text": "x"}),
    )
    .await;
}

#[tokio::test]
async fn mx_records_never_lead_to_private_addresses() {
    let port = free_port();
    let sink = Sink::start_at("127.0.0.2", port, &[]);
    let dns_port = crate::helpers::free_port();
    let records = [
        "--mx-host=corp.example.org,mx.corp.example.org,10",
        "--host-record=mx.corp.example.org,127.0.0.2",
        // An MX "host name" that is an IP literal.
        "--mx-host=literal.example.net,127.0.0.2,10",
    ];
    let _dns = Dnsmasq::start(dns_port, &records.map(String::from));
    let app = spawn_app_with(|s| {
        s.dns.nameservers = vec![format!("127.0.0.1:{dns_port}").parse().unwrap()];
        s.delivery.port = port;
        s.delivery.allow_private_destinations = false;
    })
    .await;
    let t = app.live_tenant("ann@example.com", "shop.test").await;
    let sent = app
        .send(
            &t.key,
            &json!({"from": "a@shop.test", "to": ["it@corp.example.org", "x@literal.example.net"], "text": "x"}),
        )
        .await;
    let worker = Worker::new(app.db.clone(), app.settings.clone()).await.unwrap();
    assert_eq!(worker.run_once().await.unwrap(), 2);
    let detail = app.message(&t.key, &sent).await;
    for address in ["it@corp.example.org", "x@literal.example.net"] {
        let r = recipient(&detail, address);
        assert_eq!(r["status"], "failed", "{r}");
        let reply = r["last_reply"].as_str().unwrap();
        assert!(reply.starts_with("550 5.4.4") && reply.contains("private"), "{r}");
    }
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(sink.dumps().is_empty(), "Tern talked to a private address");
}

#[tokio::test]
async fn a_key_over_its_rate_gets_429_with_retry_after_and_other_keys_do_not() {
    let app = spawn_app_with(|s| {
        s.limits.sends_per_second_per_key = 1;
        s.limits.burst_per_key = 2;
    })
    .await;
    let busy = app
        .tenant("ann@example.com", "shop.test", "development", "ed25519")
        .await;
    let calm = app
        .tenant("bob@example.com", "other.test", "development", "ed25519")
        .await;
    let body = json!({"from": "a@shop.test", "to": "b@example.org", "text": "x"});
    // A burst of 2, then 1 a second: sending on, the key is refused within
    // a few tries however slow the machine.
    let started = std::time::Instant::now();
    let mut admitted = 0;
    let limited = loop {
        let response = app.post("/v1/messages", &busy.key, &body).await;
        if response.status() == 429 {
            break response;
        }
        assert_eq!(response.status(), 202);
        admitted += 1;
        assert!(admitted < 20, "never limited");
    };
    assert!(
        admitted >= 2 && admitted <= 2 + started.elapsed().as_secs() as usize + 1,
        "{admitted}"
    );
    let retry_after: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    assert_error(limited, 429, "rate_limited").await;
    let other = json!({"from": "a@other.test", "to": "b@example.org", "text": "x"});
    json_of(app.post("/v1/messages", &calm.key, &other).await, 202).await;
    assert_eq!(app.count("messages").await, admitted as i64 + 1);
    // Credentials still come first: a bad key is a 401, not a 429.
    assert_error(
        app.post("/v1/messages", "tern_nope", &body).await,
        401,
        "invalid_api_key",
    )
    .await;
}

#[tokio::test]
async fn nothing_is_decoded_or_hashed_before_the_key_is_authenticated() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use tern::auth::{ApiKeyToken, KeyError};
    use tern::sending::{self, Envelope, SendError};

    let app = spawn_app().await;
    let t = app
        .tenant("ann@example.com", "shop.test", "development", "ed25519")
        .await;
    let state = tern::state::AppState::new(app.db.clone(), app.settings.clone())
        .await
        .unwrap();
    let ran = AtomicBool::new(false);
    // Stands for decoding attachments and hashing the body.
    let expensive = || {
        ran.store(true, Ordering::SeqCst);
        Err(SendError::Internal(anyhow::anyhow!("the expensive part ran")))
    };
    let forged = ApiKeyToken::parse("tern_000000000000_forged").unwrap();
    let result = sending::send(&state, &forged, Ok(Envelope::default()), expensive).await;
    assert!(
        matches!(result, Err(SendError::Key(KeyError::Unknown))),
        "{result:?}"
    );
    assert!(!ran.load(Ordering::SeqCst), "work was done for an unknown key");

    let valid = ApiKeyToken::parse(&t.key).unwrap();
    let result = sending::send(&state, &valid, Ok(Envelope::default()), expensive).await;
    assert!(matches!(result, Err(SendError::Internal(_))), "{result:?}");
    assert!(ran.load(Ordering::SeqCst));
}
