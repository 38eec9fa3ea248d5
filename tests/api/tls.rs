//! STARTTLS: mail travels encrypted when the peer offers it, a route whose
//! TLS is mandatory never sends in clear, `verify` routes check the
//! certificate, and sessions are reused.

use serde_json::json;
use tern::config::TlsPolicy;
use tern::delivery::worker::Worker;

use crate::helpers::{loopback_route, recipient, spawn_app_with, tls_route};
use crate::peers::{Certificate, Sink, TlsPeer};

#[tokio::test]
async fn starttls_is_used_when_offered_and_required_tls_is_never_skipped() {
    let peer = TlsPeer::start();
    let clear = Sink::start(&[]);
    let app = spawn_app_with(|s| {
        s.delivery.transports = vec![
            loopback_route("tls.test", peer.port),
            tls_route("strict.test", clear.port, TlsPolicy::Required),
        ];
    })
    .await;
    let t = app.live_tenant("ann@example.com", "shop.test").await;
    let sent = app
        .send(
            &t.key,
            &json!({"from": "a@shop.test", "to": ["x@tls.test", "y@strict.test"], "text": "secret"}),
        )
        .await;
    let worker = Worker::new(app.db.clone(), app.settings.clone()).await.unwrap();
    assert_eq!(worker.run_once().await.unwrap(), 2);

    let messages = peer.messages();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0]["tls"], true, "{:?}", messages[0]);
    assert_eq!(messages[0]["rcpt_tos"], json!(["x@tls.test"]));
    assert!(messages[0]["data"].as_str().unwrap().contains("secret"));
    assert!(clear.dumps().is_empty(), "a require_tls route was sent in clear");

    let detail = app.message(&t.key, &sent).await;
    let recipient = |address: &str| recipient(&detail, address).clone();
    assert_eq!(recipient("x@tls.test")["status"], "sent");
    assert_eq!(recipient("y@strict.test")["status"], "deferred");
    assert!(
        recipient("y@strict.test")["last_reply"]
            .as_str()
            .unwrap()
            .contains("STARTTLS")
    );
    let sent_event = detail["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "sent")
        .unwrap()
        .clone();
    assert_eq!(sent_event["detail"]["tls"], true);
    assert_eq!(recipient("x@tls.test")["last_tls"], true);
    assert_eq!(recipient("x@tls.test")["last_host"], "127.0.0.1");
}

#[tokio::test]
async fn consecutive_messages_to_one_host_share_an_encrypted_session() {
    let peer = TlsPeer::start();
    let app = spawn_app_with(|s| {
        s.delivery.transports = vec![tls_route("tls.test", peer.port, TlsPolicy::Required)];
        s.delivery.batch_size = 1;
    })
    .await;
    let t = app.live_tenant("ann@example.com", "shop.test").await;
    let worker = Worker::new(app.db.clone(), app.settings.clone()).await.unwrap();
    for i in 0..3 {
        let body = json!({"from": "a@shop.test", "to": format!("r{i}@tls.test"), "text": format!("n{i}")});
        app.send(&t.key, &body).await;
        assert_eq!(worker.run_once().await.unwrap(), 1);
    }
    let messages = peer.messages();
    assert_eq!(messages.len(), 3);
    assert!(messages.iter().all(|m| m["tls"] == true), "{messages:?}");
    let peers: std::collections::HashSet<String> = messages.iter().map(|m| m["peer"].to_string()).collect();
    assert_eq!(peers.len(), 1, "each message opened its own session: {peers:?}");

    // A session the server has dropped is noticed (RSET fails) and replaced.
    drop(peer);
    let peer = TlsPeer::start_on(app.settings.delivery.transports[0].port.unwrap(), "");
    let body = json!({"from": "a@shop.test", "to": "late@tls.test", "text": "after restart"});
    app.send(&t.key, &body).await;
    assert_eq!(worker.run_once().await.unwrap(), 1);
    let status: String = sqlx::query_scalar("SELECT status FROM recipients WHERE address = 'late@tls.test'")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(status, "sent");
    assert_eq!(peer.messages().len(), 1);
}

#[tokio::test]
async fn a_failed_handshake_falls_back_to_clear_unless_tls_is_required() {
    let peer = TlsPeer::start_broken();
    let app = spawn_app_with(|s| {
        s.delivery.transports = vec![
            loopback_route("maybe.test", peer.port),
            tls_route("must.test", peer.port, TlsPolicy::Required),
        ];
    })
    .await;
    let t = app.live_tenant("ann@example.com", "shop.test").await;
    let worker = Worker::new(app.db.clone(), app.settings.clone()).await.unwrap();
    // Twice: the second time a cached clear session exists for the host.
    for round in 0..2 {
        let body = json!({"from": "a@shop.test", "to": [format!("x{round}@maybe.test"), format!("y{round}@must.test")],
                          "text": "hello"});
        let sent = app.send(&t.key, &body).await;
        assert_eq!(worker.run_once().await.unwrap(), 2);
        let detail = app.message(&t.key, &sent).await;
        let maybe = recipient(&detail, &format!("x{round}@maybe.test")).clone();
        assert_eq!(maybe["status"], "sent", "{maybe}");
        assert_eq!(maybe["last_tls"], false);
        let must = recipient(&detail, &format!("y{round}@must.test")).clone();
        assert_eq!(must["status"], "deferred", "{must}");
        assert!(must["last_reply"].as_str().unwrap().contains("TLS"), "{must}");
    }
    let messages = peer.messages();
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert!(messages.iter().all(|m| m["tls"] == false));
    assert!(
        messages
            .iter()
            .all(|m| m["rcpt_tos"].to_string().contains("maybe.test")),
        "{messages:?}"
    );
}

#[tokio::test]
async fn verify_routes_check_the_chain_and_the_host_name() {
    let trusted = TlsPeer::start_with(
        crate::helpers::free_port(),
        "",
        Certificate::Issued("IP:127.0.0.1"),
    );
    let misnamed = TlsPeer::start_with(
        crate::helpers::free_port(),
        "",
        Certificate::Issued("DNS:mx.tls.test"),
    );
    let self_signed = TlsPeer::start();
    let verify_with = |domain: &str, port: u16, ca_file: &Option<std::path::PathBuf>| {
        let mut route = tls_route(domain, port, TlsPolicy::Verify);
        route.ca_file = ca_file.clone();
        route
    };
    let app = spawn_app_with(|s| {
        s.delivery.transports = vec![
            verify_with("good.test", trusted.port, &trusted.ca_file),
            // Not under the Mozilla roots.
            verify_with("roots.test", trusted.port, &None),
            verify_with("name.test", misnamed.port, &misnamed.ca_file),
            verify_with("selfsigned.test", self_signed.port, &trusted.ca_file),
            // `required` encrypts without checking.
            tls_route("required.test", self_signed.port, TlsPolicy::Required),
        ];
    })
    .await;
    let t = app.live_tenant("ann@example.com", "shop.test").await;
    let to = [
        "a@good.test",
        "b@roots.test",
        "c@name.test",
        "d@selfsigned.test",
        "e@required.test",
    ];
    let sent = app
        .send(
            &t.key,
            &json!({"from": "a@shop.test", "to": to, "text": "secret"}),
        )
        .await;
    let worker = Worker::new(app.db.clone(), app.settings.clone()).await.unwrap();
    assert_eq!(worker.run_once().await.unwrap(), 5);

    let detail = app.message(&t.key, &sent).await;
    for address in ["a@good.test", "e@required.test"] {
        let r = recipient(&detail, address);
        assert_eq!(r["status"], "sent", "{r}");
        assert_eq!(r["last_tls"], true, "{r}");
    }
    for address in ["b@roots.test", "c@name.test", "d@selfsigned.test"] {
        let r = recipient(&detail, address);
        assert_eq!(r["status"], "deferred", "{r}");
        assert!(
            r["last_reply"].as_str().unwrap().contains("TLS handshake failed"),
            "{r}"
        );
    }
    assert_eq!(
        trusted.messages().len(),
        1,
        "only good.test reaches the trusted peer"
    );
    assert!(misnamed.messages().is_empty());
    let unverified = self_signed.messages();
    assert_eq!(unverified.len(), 1);
    assert_eq!(unverified[0]["rcpt_tos"], json!(["e@required.test"]));
}

#[tokio::test]
async fn a_refused_or_stalled_starttls_falls_back_to_clear_unless_tls_is_mandatory() {
    let refusing = TlsPeer::start_with(crate::helpers::free_port(), "refuse", Certificate::SelfSigned);
    let stalling = TlsPeer::start_with(crate::helpers::free_port(), "stall", Certificate::SelfSigned);
    let willing = TlsPeer::start();
    let app = spawn_app_with(|s| {
        s.delivery.tls_timeout_secs = 1;
        s.delivery.transports = vec![
            loopback_route("refused.test", refusing.port),
            tls_route("refused-must.test", refusing.port, TlsPolicy::Required),
            loopback_route("stalled.test", stalling.port),
            tls_route("stalled-must.test", stalling.port, TlsPolicy::Verify),
            tls_route("never.test", willing.port, TlsPolicy::None),
        ];
    })
    .await;
    let t = app.live_tenant("ann@example.com", "shop.test").await;
    let to = [
        "a@refused.test",
        "b@refused-must.test",
        "c@stalled.test",
        "d@stalled-must.test",
        "e@never.test",
    ];
    let sent = app
        .send(&t.key, &json!({"from": "a@shop.test", "to": to, "text": "hello"}))
        .await;
    let worker = Worker::new(app.db.clone(), app.settings.clone()).await.unwrap();
    let started = std::time::Instant::now();
    assert_eq!(worker.run_once().await.unwrap(), 5);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "the TLS timeout was not applied"
    );

    let detail = app.message(&t.key, &sent).await;
    for address in ["a@refused.test", "c@stalled.test", "e@never.test"] {
        let r = recipient(&detail, address);
        assert_eq!(r["status"], "sent", "{r}");
        assert_eq!(r["last_tls"], false, "{r}");
    }
    let refused = recipient(&detail, "b@refused-must.test");
    assert_eq!(refused["status"], "deferred", "{refused}");
    assert!(
        refused["last_reply"].as_str().unwrap().contains("454"),
        "{refused}"
    );
    let stalled = recipient(&detail, "d@stalled-must.test");
    assert_eq!(stalled["status"], "deferred", "{stalled}");
    assert!(
        stalled["last_reply"].as_str().unwrap().contains("timed out"),
        "{stalled}"
    );
    for peer in [&refusing, &stalling, &willing] {
        assert!(peer.messages().iter().all(|m| m["tls"] == false));
    }
}

#[tokio::test]
async fn a_missing_ca_file_stops_the_worker_at_start() {
    let app = spawn_app_with(|_| {}).await;
    let mut settings = app.settings.clone();
    let mut route = tls_route("x.test", 2525, TlsPolicy::Verify);
    route.ca_file = Some("/nonexistent/tern-ca.pem".into());
    settings.delivery.transports = vec![route];
    let Err(err) = Worker::new(app.db.clone(), settings).await else {
        panic!("a worker started without its CA file");
    };
    assert!(format!("{err:#}").contains("/nonexistent/tern-ca.pem"), "{err:#}");
}
