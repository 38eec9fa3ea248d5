//! STARTTLS: mail travels encrypted when the peer offers it, a
//! `require_tls` route never sends in clear, and sessions are reused.

use serde_json::json;
use tern::delivery::worker::Worker;

use crate::helpers::{loopback_route, recipient, spawn_app_with};
use crate::peers::{Sink, TlsPeer};

#[tokio::test]
async fn starttls_is_used_when_offered_and_required_tls_is_never_skipped() {
    let peer = TlsPeer::start();
    let clear = Sink::start(&[]);
    let app = spawn_app_with(|s| {
        s.delivery.transports = vec![
            loopback_route("tls.test", peer.port, false),
            loopback_route("strict.test", clear.port, true),
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
        s.delivery.transports = vec![loopback_route("tls.test", peer.port, true)];
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
        s.delivery.transports = [("maybe.test", false), ("must.test", true)]
            .into_iter()
            .map(|(domain, require_tls)| loopback_route(domain, peer.port, require_tls))
            .collect();
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
