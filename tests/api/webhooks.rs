//! Webhooks (issue 9): endpoints created with a secret shown once and
//! stored sealed, changed, rotated with an overlap, deleted; refused when
//! they lead to internal addresses; invisible to other tenants. Events
//! reach a real HTTP receiver on loopback, signed so that the Standard
//! Webhooks reference library (Python) verifies them, retried until a 2xx.

use std::collections::HashMap;
use std::net::SocketAddr;

use serde_json::{Value, json};
use tern::delivery::worker::Worker;
use tern::webhooks::dispatcher::Dispatcher;

use crate::helpers::{Dnsmasq, assert_error, json_of, loopback_route, spawn_app, spawn_app_with};
use crate::peers::Sink;
use crate::receiver::{Received, Receiver, verifies};

fn path_of(t: &crate::helpers::Tenant) -> String {
    format!("/v1/servers/{}/webhooks", t.server_id)
}

#[tokio::test]
async fn endpoints_are_created_changed_rotated_and_deleted() {
    let app = spawn_app().await;
    let t = app
        .tenant("ann@example.com", "shop.test", "live", "ed25519")
        .await;
    let body = json!({"url": "https://hooks.example.com/tern", "description": "orders",
                      "event_types": ["message.sent", "message.bounced", "message.sent"]});
    let created = json_of(app.post(&path_of(&t), &t.token, &body).await, 201).await;
    let secret = created["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("whsec_"), "{created}");
    assert_eq!(created["event_types"], json!(["message.bounced", "message.sent"]));
    assert_eq!(created["enabled"], true);
    let id = created["id"].as_str().unwrap().to_string();

    // The secret is shown once, and stored sealed.
    let listed = json_of(app.get(&path_of(&t), &t.token).await, 200).await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);
    assert!(!listed.to_string().contains(&secret));
    let got = json_of(app.get(&format!("/v1/webhooks/{id}"), &t.token).await, 200).await;
    assert!(got.get("secret").is_none(), "{got}");
    let stored: Vec<u8> = sqlx::query_scalar("SELECT secret FROM webhook_endpoints")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert!(tern::sealing::is_sealed(&stored));

    let changed = json_of(
        app.patch(
            &format!("/v1/webhooks/{id}"),
            &t.token,
            &json!({"enabled": false, "event_types": []}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(
        (changed["enabled"].clone(), changed["event_types"].clone()),
        (json!(false), json!([]))
    );
    assert_eq!(changed["url"], "https://hooks.example.com/tern");

    let rotated = json_of(
        app.post(&format!("/v1/webhooks/{id}/rotate-secret"), &t.token, &json!({}))
            .await,
        200,
    )
    .await;
    assert_ne!(rotated["secret"], json!(secret));
    let until: chrono::DateTime<chrono::Utc> = rotated["previous_secret_expires_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let overlap = until - chrono::Utc::now();
    assert!((23..=24).contains(&overlap.num_hours()), "{rotated}");

    assert_eq!(
        app.delete(&format!("/v1/webhooks/{id}"), &t.token).await.status(),
        204
    );
    assert_eq!(
        app.get(&format!("/v1/webhooks/{id}"), &t.token).await.status(),
        404
    );
}

#[tokio::test]
async fn endpoints_leading_to_internal_addresses_are_refused() {
    let port = crate::helpers::free_port();
    let _dns = Dnsmasq::start(
        port,
        &[
            "--host-record=inside.example.com,127.0.0.1".into(),
            "--host-record=private.example.com,10.1.2.3".into(),
            "--host-record=public.example.com,93.184.215.14".into(),
        ],
    );
    let app = spawn_app_with(|s| {
        s.webhooks.allow_private_targets = false;
        s.webhooks.allow_http = false;
        s.webhooks.max_per_server = 2;
        s.dns.nameservers = vec![SocketAddr::from(([127, 0, 0, 1], port))];
        // dnsmasq answers late on a loaded machine (the whole suite runs at
        // once): 500 ms made a name that has an address look like one
        // without.
        s.dns.timeout_ms = 3000;
    })
    .await;
    let t = app
        .tenant("ann@example.com", "shop.test", "live", "ed25519")
        .await;
    for (url, code) in [
        ("https://127.0.0.1/hook", "private_url"),
        ("https://10.0.0.1/hook", "private_url"),
        ("https://[::1]:8443/hook", "private_url"),
        ("https://169.254.169.254/latest/meta-data", "private_url"),
        ("https://inside.example.com/hook", "private_url"),
        ("https://private.example.com/hook", "private_url"),
        ("https://nowhere.example.com/hook", "unresolvable_url"),
        ("http://public.example.com/hook", "insecure_url"),
        ("https://user:pw@public.example.com/hook", "invalid_url"),
        ("ftp://public.example.com/hook", "invalid_url"),
        ("not a url", "invalid_url"),
    ] {
        let refused = assert_error(
            app.post(&path_of(&t), &t.token, &json!({"url": url})).await,
            422,
            code,
        )
        .await;
        assert_eq!(refused["error"]["field"], "url", "{url}: {refused}");
    }
    assert_eq!(app.count("webhook_endpoints").await, 0);

    let ok = json!({"url": "https://public.example.com/hook"});
    json_of(app.post(&path_of(&t), &t.token, &ok).await, 201).await;
    let made = json_of(app.post(&path_of(&t), &t.token, &ok).await, 201).await;
    assert_error(
        app.post(&path_of(&t), &t.token, &ok).await,
        422,
        "too_many_webhooks",
    )
    .await;
    // A change is checked the same way.
    let id = made["id"].as_str().unwrap();
    assert_error(
        app.patch(
            &format!("/v1/webhooks/{id}"),
            &t.token,
            &json!({"url": "https://inside.example.com/x"}),
        )
        .await,
        422,
        "private_url",
    )
    .await;
}

#[tokio::test]
async fn another_tenant_cannot_see_or_touch_endpoints() {
    let app = spawn_app().await;
    let owner = app
        .tenant("ann@example.com", "shop.test", "live", "ed25519")
        .await;
    let other = app
        .tenant("eve@example.com", "evil.test", "live", "ed25519")
        .await;
    let created = json_of(
        app.post(
            &path_of(&owner),
            &owner.token,
            &json!({"url": "https://hooks.example.com/a"}),
        )
        .await,
        201,
    )
    .await;
    let id = created["id"].as_str().unwrap();
    let item = format!("/v1/webhooks/{id}");
    assert_eq!(app.get(&path_of(&owner), &other.token).await.status(), 404);
    assert_eq!(app.get(&item, &other.token).await.status(), 404);
    assert_eq!(
        app.patch(&item, &other.token, &json!({"enabled": false}))
            .await
            .status(),
        404
    );
    assert_eq!(
        app.post(&format!("{item}/rotate-secret"), &other.token, &json!({}))
            .await
            .status(),
        404
    );
    assert_eq!(app.delete(&item, &other.token).await.status(), 404);
    assert_eq!(
        app.post(
            &path_of(&owner),
            &other.token,
            &json!({"url": "https://hooks.example.com/b"})
        )
        .await
        .status(),
        404
    );
    let own: Value = json_of(app.get(&item, &owner.token).await, 200).await;
    assert_eq!(own["enabled"], true, "another tenant changed it");
    let listed = json_of(app.get(&path_of(&other), &other.token).await, 200).await;
    assert_eq!(listed["data"], json!([]));
}

async fn create_endpoint(app: &crate::helpers::TestApp, t: &crate::helpers::Tenant, url: &str) -> Value {
    json_of(app.post(&path_of(t), &t.token, &json!({"url": url})).await, 201).await
}

async fn dispatcher(app: &crate::helpers::TestApp) -> Dispatcher {
    let state = tern::state::AppState::new(app.db.clone(), app.settings.clone())
        .await
        .unwrap();
    Dispatcher::new(state).unwrap()
}

#[tokio::test]
async fn a_sent_message_reaches_the_endpoint_signed_as_standard_webhooks() {
    let receiver = Receiver::start(&[]).await;
    let sink = Sink::start(&[]);
    let app =
        spawn_app_with(|s| s.delivery.transports = vec![loopback_route("example.org", sink.port)]).await;
    let t = app.live_tenant("ann@example.com", "shop.test").await;
    let endpoint = create_endpoint(&app, &t, &receiver.url).await;
    let secret = endpoint["secret"].as_str().unwrap();
    let sent = app
        .send(
            &t.key,
            &json!({"from": "a@shop.test", "to": "r@example.org", "text": "x",
                              "tag": "welcome", "metadata": {"user": "42"}}),
        )
        .await;
    let worker = Worker::new(app.db.clone(), app.settings.clone()).await.unwrap();
    assert_eq!(worker.run_once().await.unwrap(), 1);

    // Only the outcome is an event (`queued` is not); one delivery.
    let dispatcher = dispatcher(&app).await;
    assert_eq!(dispatcher.run_once().await.unwrap(), 1);
    assert_eq!(dispatcher.run_once().await.unwrap(), 0);
    let requests = receiver.requests();
    assert_eq!(requests.len(), 1);
    let (headers, body) = &requests[0];
    let event: Value = serde_json::from_str(body).unwrap();
    assert_eq!(event["type"], "message.sent");
    assert!(
        event["timestamp"]
            .as_str()
            .unwrap()
            .parse::<chrono::DateTime<chrono::Utc>>()
            .is_ok()
    );
    assert_eq!(event["data"]["message_id"], sent["id"]);
    assert_eq!(event["data"]["recipient"], "r@example.org");
    assert_eq!(event["data"]["tag"], "welcome");
    assert_eq!(event["data"]["metadata"], json!({"user": "42"}));
    assert_eq!(event["data"]["server_id"], json!(t.server_id));
    assert!(headers["webhook-id"].starts_with("evt_"), "{headers:?}");
    assert_eq!(headers["content-type"], "application/json");
    assert_documented(&requests);

    // An independent implementation verifies it; a changed body or an old
    // timestamp does not.
    assert!(verifies(secret, headers, body), "the signature does not verify");
    assert!(!verifies(secret, headers, &body.replace("welcome", "welcomf")));
    let old = chrono::Utc::now().timestamp() - 600;
    let key = base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD,
        secret.strip_prefix("whsec_").unwrap(),
    )
    .unwrap();
    let mut stale = headers.clone();
    stale.insert("webhook-timestamp".into(), old.to_string());
    stale.insert(
        "webhook-signature".into(),
        tern::webhooks::signature::signatures(
            tern::webhooks::signature::Signing::Hmac,
            [key.as_slice()],
            &headers["webhook-id"],
            old,
            body.as_bytes(),
        )
        .unwrap(),
    );
    assert!(
        !verifies(secret, &stale, body),
        "a ten-minute-old delivery verified"
    );

    let (status, attempts): (String, i32) = sqlx::query_as("SELECT status, attempts FROM webhook_deliveries")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!((status.as_str(), attempts), ("delivered", 1));
    let logged: (Option<i32>, i32) = sqlx::query_as("SELECT http_status, latency_ms FROM webhook_attempts")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(logged.0, Some(200));
}

#[tokio::test]
async fn failures_are_retried_logged_and_delivered_once_and_410_turns_the_endpoint_off() {
    let flaky = Receiver::start(&[500, 500, 503]).await;
    let gone = Receiver::start(&[410]).await;
    let app = spawn_app_with(|s| s.webhooks.retry_schedule_secs = vec![0, 0, 0, 0]).await;
    let t = app
        .tenant("ann@example.com", "shop.test", "development", "ed25519")
        .await;
    // (Only message events: not the `webhook.disabled` the 410 causes.)
    let held_only = json!({"url": flaky.url, "event_types": ["message.held"]});
    json_of(app.post(&path_of(&t), &t.token, &held_only).await, 201).await;
    let off = create_endpoint(&app, &t, &gone.url).await;
    // A development server holds the message: `message.held`.
    app.send(
        &t.key,
        &json!({"from": "a@shop.test", "to": "r@example.org", "text": "x"}),
    )
    .await;
    let dispatcher = dispatcher(&app).await;
    let mut claimed = 0;
    for _ in 0..6 {
        claimed += dispatcher.run_once().await.unwrap();
    }
    // Four attempts at the flaky one, one at the gone one.
    assert_eq!(claimed, 5);
    let requests = flaky.requests();
    assert_eq!(requests.len(), 4);
    let ids: std::collections::HashSet<&String> = requests.iter().map(|(h, _)| &h["webhook-id"]).collect();
    assert_eq!(ids.len(), 1, "a retry changed the webhook-id");
    let body: Value = serde_json::from_str(&requests[0].1).unwrap();
    assert_eq!(body["type"], "message.held");
    let log: Vec<(Option<i32>,)> = sqlx::query_as(
        "SELECT a.http_status FROM webhook_attempts a JOIN webhook_deliveries d ON d.id = a.delivery_id
         JOIN webhook_endpoints w ON w.id = d.endpoint_id WHERE w.url = $1 ORDER BY a.id",
    )
    .bind(&flaky.url)
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert_eq!(log, vec![(Some(500),), (Some(500),), (Some(503),), (Some(200),)]);

    assert_eq!(gone.requests().len(), 1);
    let id = off["id"].as_str().unwrap();
    let endpoint = json_of(app.get(&format!("/v1/webhooks/{id}"), &t.token).await, 200).await;
    assert_eq!(
        endpoint["enabled"], false,
        "410 Gone did not turn the endpoint off"
    );
    assert_eq!(endpoint["disabled_reason"], "gone");
    let statuses: Vec<(String,)> = sqlx::query_as("SELECT status FROM webhook_deliveries ORDER BY status")
        .fetch_all(&app.db)
        .await
        .unwrap();
    assert_eq!(
        statuses,
        vec![("delivered".to_string(),), ("failed".to_string(),)]
    );
}

#[tokio::test]
async fn during_a_rotation_both_secrets_verify_and_after_it_only_the_new_one() {
    let receiver = Receiver::start(&[]).await;
    let app = spawn_app().await;
    let t = app
        .tenant("ann@example.com", "shop.test", "development", "ed25519")
        .await;
    let endpoint = create_endpoint(&app, &t, &receiver.url).await;
    let id = endpoint["id"].as_str().unwrap();
    let old = endpoint["secret"].as_str().unwrap();
    let rotated = json_of(
        app.post(&format!("/v1/webhooks/{id}/rotate-secret"), &t.token, &json!({}))
            .await,
        200,
    )
    .await;
    let new = rotated["secret"].as_str().unwrap();
    let dispatcher = dispatcher(&app).await;
    let send = json!({"from": "a@shop.test", "to": "r@example.org", "text": "x"});

    app.send(&t.key, &send).await;
    assert_eq!(dispatcher.run_once().await.unwrap(), 1);
    let (headers, body) = receiver.requests().remove(0);
    assert_eq!(headers["webhook-signature"].split(' ').count(), 2);
    assert!(verifies(old, &headers, &body) && verifies(new, &headers, &body));

    sqlx::query("UPDATE webhook_endpoints SET previous_secret_expires_at = now() - interval '1 second'")
        .execute(&app.db)
        .await
        .unwrap();
    app.send(&t.key, &send).await;
    assert_eq!(dispatcher.run_once().await.unwrap(), 1);
    let (headers, body) = receiver.requests().remove(1);
    assert_eq!(headers["webhook-signature"].split(' ').count(), 1);
    assert!(
        !verifies(old, &headers, &body),
        "the old secret still verifies after the overlap"
    );
    assert!(verifies(new, &headers, &body));
}

#[tokio::test]
async fn the_delivery_log_pages_through_attempts_and_a_delivery_can_be_sent_again() {
    let receiver = Receiver::start(&[500]).await;
    let app = spawn_app_with(|s| s.webhooks.retry_schedule_secs = vec![0]).await;
    let t = app
        .tenant("ann@example.com", "shop.test", "development", "ed25519")
        .await;
    let endpoint = create_endpoint(&app, &t, &receiver.url).await;
    let id = endpoint["id"].as_str().unwrap();
    for i in 0..2 {
        let body = json!({"from": "a@shop.test", "to": format!("r{i}@example.org"), "text": "x"});
        app.send(&t.key, &body).await;
    }
    let dispatcher = dispatcher(&app).await;
    // Two events; the first answer is a 500, retried at once.
    assert_eq!(dispatcher.run_once().await.unwrap(), 2);
    assert_eq!(dispatcher.run_once().await.unwrap(), 1);

    let log = format!("/v1/webhooks/{id}/deliveries");
    let first = json_of(app.get(&format!("{log}?limit=2"), &t.token).await, 200).await;
    assert_eq!(first["data"].as_array().unwrap().len(), 2);
    let cursor = first["next_cursor"].as_str().unwrap();
    let second = json_of(
        app.get(&format!("{log}?limit=2&cursor={cursor}"), &t.token).await,
        200,
    )
    .await;
    assert_eq!(second["data"].as_array().unwrap().len(), 1);
    assert!(second["next_cursor"].is_null());
    let all: Vec<Value> = first["data"]
        .as_array()
        .unwrap()
        .iter()
        .chain(second["data"].as_array().unwrap())
        .cloned()
        .collect();
    let ids: Vec<i64> = all.iter().map(|a| a["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "not newest first: {ids:?}");
    let mut statuses: Vec<i64> = all.iter().map(|a| a["http_status"].as_i64().unwrap()).collect();
    statuses.sort();
    assert_eq!(statuses, [200, 200, 500]);
    assert_error(
        app.get(&format!("{log}?cursor=nope"), &t.token).await,
        400,
        "invalid_cursor",
    )
    .await;

    // Sent again on request: a third request of the same event.
    let failed = all.iter().find(|a| a["http_status"] == 500).unwrap();
    let delivery = failed["delivery_id"].as_str().unwrap();
    let retry = format!("/v1/webhooks/{id}/deliveries/{delivery}/retry");
    assert_eq!(app.post(&retry, &t.token, &json!({})).await.status(), 202);
    assert_eq!(dispatcher.run_once().await.unwrap(), 1);
    let again: Vec<String> = receiver
        .requests()
        .iter()
        .map(|(h, _)| h["webhook-id"].clone())
        .collect();
    assert_eq!(again.len(), 4);
    assert_eq!(again.iter().filter(|id| **id == again[3]).count(), 3, "{again:?}");
    let missing = format!("/v1/webhooks/{id}/deliveries/{}/retry", uuid::Uuid::new_v4());
    assert_eq!(app.post(&missing, &t.token, &json!({})).await.status(), 404);

    // Another tenant sees no log.
    let other = app
        .tenant("eve@example.com", "evil.test", "live", "ed25519")
        .await;
    assert_eq!(app.get(&log, &other.token).await.status(), 404);
    assert_eq!(app.post(&retry, &other.token, &json!({})).await.status(), 404);
}

#[tokio::test]
async fn a_slow_endpoint_does_not_delay_another() {
    // The dispatcher runs four deliveries at once, two per endpoint; the
    // slow endpoint takes ten seconds to answer and has six events waiting.
    let slow = Receiver::start_slow(&[], std::time::Duration::from_secs(10)).await;
    let fast = Receiver::start(&[]).await;
    let app = spawn_app_with(|s| {
        s.webhooks.concurrency = 4;
        s.webhooks.per_endpoint_concurrency = 2;
    })
    .await;
    let t = app
        .tenant("ann@example.com", "shop.test", "development", "ed25519")
        .await;
    create_endpoint(&app, &t, &slow.url).await;
    let send = json!({"from": "a@shop.test", "to": "r@example.org", "text": "x"});
    for _ in 0..6 {
        app.send(&t.key, &send).await;
    }
    create_endpoint(&app, &t, &fast.url).await;
    app.send(&t.key, &send).await;

    let dispatcher = dispatcher(&app).await;
    let running = tokio::spawn(dispatcher.run(std::future::pending()));
    let started = std::time::Instant::now();
    while fast.requests().is_empty() {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "the fast endpoint waited for the slow one"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // The slow one has its two at a time, no more.
    assert_eq!(slow.requests().len(), 2);
    running.abort();
}

#[tokio::test]
async fn a_test_event_is_sent_at_once_signed_and_never_retried() {
    let receiver = Receiver::start(&[200, 500]).await;
    let app = spawn_app_with(|s| s.webhooks.retry_schedule_secs = vec![0, 0]).await;
    let t = app
        .tenant("ann@example.com", "shop.test", "development", "ed25519")
        .await;
    let endpoint = create_endpoint(&app, &t, &receiver.url).await;
    let id = endpoint["id"].as_str().unwrap();
    let test = format!("/v1/webhooks/{id}/test");
    let ok = json_of(app.post(&test, &t.token, &json!({})).await, 200).await;
    assert_eq!(ok["http_status"], 200, "{ok}");
    assert_eq!(ok["event_type"], "webhook.test");
    let (headers, body) = receiver.requests().remove(0);
    let event: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(event["type"], "webhook.test");
    assert_eq!(event["data"]["webhook_id"], json!(id));
    assert!(verifies(endpoint["secret"].as_str().unwrap(), &headers, &body));
    assert_documented(&receiver.requests()[..1]);

    let failed = json_of(app.post(&test, &t.token, &json!({})).await, 200).await;
    assert_eq!(failed["http_status"], 500, "{failed}");
    assert_eq!(failed["delivery_status"], "failed");
    // Not retried.
    assert_eq!(dispatcher(&app).await.run_once().await.unwrap(), 0);
    assert_eq!(receiver.requests().len(), 2);
    let other = app
        .tenant("eve@example.com", "evil.test", "live", "ed25519")
        .await;
    assert_eq!(app.post(&test, &other.token, &json!({})).await.status(), 404);
}

/// The schema of each event type, as the OpenAPI document names it.
fn schema_of(event_type: &str) -> &'static str {
    tern::webhooks::events::DOCUMENTED
        .iter()
        .find(|(name, _, _)| *name == event_type)
        .map(|(_, _, schema)| *schema)
        .unwrap_or_else(|| panic!("{event_type} is not documented"))
}

/// Checks each received body against the documented schema of its type.
pub(crate) fn assert_documented(requests: &[Received]) {
    let cases: Vec<Value> = requests
        .iter()
        .map(|(_, body)| {
            let event: Value = serde_json::from_str(body).unwrap();
            let schema = schema_of(event["type"].as_str().unwrap());
            json!({"schema": schema, "body": event, "valid": true})
        })
        .collect();
    if let Err(wrong) = crate::helpers::schema_check(&cases) {
        panic!("payloads the OpenAPI document does not describe:\n{wrong}");
    }
}

fn events_of(requests: &[Received]) -> Vec<Value> {
    requests
        .iter()
        .map(|(_, body)| serde_json::from_str(body).unwrap())
        .collect()
}

#[tokio::test]
async fn every_event_type_carries_its_documented_payload() {
    let receiver = Receiver::start(&[]).await;
    let ok = Sink::start(&[]);
    let hard = Sink::start(&["-f", "rcpt"]);
    let soft = Sink::start(&["-r", "rcpt"]);
    let app = spawn_app_with(|s| {
        s.delivery.transports = vec![
            loopback_route("example.org", ok.port),
            loopback_route("bounce.test", hard.port),
            loopback_route("later.test", soft.port),
        ];
        // One retry, at once: deferred, then failed.
        s.delivery.retry_schedule_secs = vec![0];
    })
    .await;
    let t = app.live_tenant("ann@example.com", "shop.test").await;
    let dev = app
        .tenant("bob@example.com", "dev.test", "development", "ed25519")
        .await;
    create_endpoint(&app, &t, &receiver.url).await;
    create_endpoint(&app, &dev, &receiver.url).await;
    sqlx::query("INSERT INTO suppressions (server_id, address, reason) VALUES ($1, 'gone@example.org', 'hard_bounce')")
        .bind(t.server_id)
        .execute(&app.db)
        .await
        .unwrap();
    app.send(
        &t.key,
        &json!({"from": "a@shop.test", "tag": "t1", "metadata": {"k": "v"},
        "to": ["x@example.org", "z@bounce.test", "w@later.test", "gone@example.org"], "text": "x"}),
    )
    .await;
    app.send(
        &dev.key,
        &json!({"from": "a@dev.test", "to": "h@example.org", "text": "x"}),
    )
    .await;
    let worker = Worker::new(app.db.clone(), app.settings.clone()).await.unwrap();
    assert_eq!(worker.run_once().await.unwrap(), 3);
    assert_eq!(worker.run_once().await.unwrap(), 1);
    let dispatcher = dispatcher(&app).await;
    while dispatcher.run_once().await.unwrap() > 0 {}

    let requests = receiver.requests();
    assert_documented(&requests);
    let events = events_of(&requests);
    let of = |kind: &str| -> Value {
        events
            .iter()
            .find(|e| e["type"] == kind)
            .unwrap_or_else(|| panic!("no {kind} in {events:?}"))
            .clone()
    };
    let sent = of("message.sent");
    assert_eq!(sent["data"]["recipient"], "x@example.org");
    assert_eq!(sent["data"]["host"], "127.0.0.1");
    assert_eq!(sent["data"]["attempt"], 1);
    assert_eq!(sent["data"]["reply"]["code"], 250);
    assert_eq!(sent["data"]["tag"], "t1");
    assert_eq!(sent["data"]["metadata"], json!({"k": "v"}));
    let bounced = of("message.bounced");
    assert_eq!(bounced["data"]["bounce_type"], "hard");
    assert_eq!(bounced["data"]["reply"]["code"].as_u64().unwrap() / 100, 5);
    let deferred = of("message.deferred");
    assert_eq!(deferred["data"]["recipient"], "w@later.test");
    assert!(deferred["data"]["next_attempt_at"].is_string(), "{deferred}");
    let failed = of("message.failed");
    assert_eq!(failed["data"]["reason"], "retries_exhausted");
    assert_eq!(failed["data"]["attempt"], 2);
    assert_eq!(of("message.suppressed")["data"]["reason"], "suppression_list");
    let held = of("message.held");
    assert_eq!(held["data"]["reason"], "development_mode");
    assert_eq!(held["data"]["server_id"], json!(dev.server_id));
    assert_eq!(events.len(), 6, "{events:?}");
}

/// Whether the key opens: the seed of an ed25519 endpoint, from the store.
async fn stored_seed(app: &crate::helpers::TestApp, id: &str) -> Vec<u8> {
    let id: uuid::Uuid = id.parse().unwrap();
    let sealed: Vec<u8> = sqlx::query_scalar("SELECT secret FROM webhook_endpoints WHERE id = $1")
        .bind(id)
        .fetch_one(&app.db)
        .await
        .unwrap();
    let state = tern::state::AppState::new(app.db.clone(), app.settings.clone())
        .await
        .unwrap();
    state
        .sealing()
        .unwrap()
        .open(&sealed, id.as_bytes())
        .unwrap()
        .expose()
        .clone()
}

#[tokio::test]
async fn an_ed25519_endpoint_signs_v1a_that_verifies_with_its_public_key_only() {
    let receiver = Receiver::start(&[]).await;
    let app = spawn_app().await;
    let t = app
        .tenant("ann@example.com", "shop.test", "development", "ed25519")
        .await;
    let created = json_of(
        app.post(
            &path_of(&t),
            &t.token,
            &json!({"url": receiver.url, "signing": "ed25519"}),
        )
        .await,
        201,
    )
    .await;
    assert!(created.get("secret").is_none(), "{created}");
    assert_eq!(created["signing"], "ed25519");
    let public = created["public_key"].as_str().unwrap().to_string();
    assert!(public.starts_with("whpk_"), "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    let send = json!({"from": "a@shop.test", "to": "r@example.org", "text": "x"});
    app.send(&t.key, &send).await;
    let dispatcher = dispatcher(&app).await;
    assert_eq!(dispatcher.run_once().await.unwrap(), 1);
    let (headers, body) = receiver.requests().remove(0);
    assert!(headers["webhook-signature"].starts_with("v1a,"), "{headers:?}");
    assert!(verifies(&public, &headers, &body), "v1a does not verify");
    assert!(!verifies(&public, &headers, &body.replace("held", "sent")));
    // A current signature over an old timestamp is refused.
    let seed = stored_seed(&app, &id).await;
    let old = chrono::Utc::now().timestamp() - 600;
    let mut stale = headers.clone();
    stale.insert("webhook-timestamp".into(), old.to_string());
    stale.insert(
        "webhook-signature".into(),
        tern::webhooks::signature::signatures(
            tern::webhooks::signature::Signing::Ed25519,
            [seed.as_slice()],
            &headers["webhook-id"],
            old,
            body.as_bytes(),
        )
        .unwrap(),
    );
    assert!(
        !verifies(&public, &stale, &body),
        "a ten-minute-old delivery verified"
    );

    // A rotation: a new public key; both sign during the overlap.
    let rotated = json_of(
        app.post(&format!("/v1/webhooks/{id}/rotate-secret"), &t.token, &json!({}))
            .await,
        200,
    )
    .await;
    let new_public = rotated["public_key"].as_str().unwrap().to_string();
    assert_ne!(new_public, public);
    assert!(rotated.get("secret").is_none());
    app.send(&t.key, &send).await;
    assert_eq!(dispatcher.run_once().await.unwrap(), 1);
    let (headers, body) = receiver.requests().remove(1);
    assert_eq!(headers["webhook-signature"].split(' ').count(), 2);
    assert!(verifies(&public, &headers, &body) && verifies(&new_public, &headers, &body));
    // Another key verifies nothing.
    let (other_seed, other) = tern::webhooks::secret::generate_ed25519().unwrap();
    drop(other_seed);
    let other = tern::webhooks::secret::public_key_text(&other);
    assert!(!verifies(&other, &headers, &body));
}

#[tokio::test]
async fn an_endpoint_failing_too_long_is_turned_off_the_others_told_and_it_can_catch_up() {
    let down = Receiver::start(&[500, 500]).await;
    let watcher = Receiver::start(&[]).await;
    let app = spawn_app_with(|s| {
        s.webhooks.retry_schedule_secs = vec![0; 10];
        s.webhooks.disable_after_secs = 1;
    })
    .await;
    let t = app
        .tenant("ann@example.com", "shop.test", "development", "ed25519")
        .await;
    let failing = create_endpoint(&app, &t, &down.url).await;
    let failing_id = failing["id"].as_str().unwrap().to_string();
    let watching = create_endpoint(&app, &t, &watcher.url).await;
    let watching_id = watching["id"].as_str().unwrap().to_string();
    let send = json!({"from": "a@shop.test", "to": "r@example.org", "text": "x"});
    let started = chrono::Utc::now();
    app.send(&t.key, &send).await;
    let dispatcher = dispatcher(&app).await;
    assert_eq!(dispatcher.run_once().await.unwrap(), 2);
    let item = format!("/v1/webhooks/{failing_id}");
    let got = json_of(app.get(&item, &t.token).await, 200).await;
    assert!(got["failing_since"].is_string(), "{got}");
    assert_eq!(got["enabled"], true);

    // Still failing after the limit: turned off; the watcher is told.
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    assert_eq!(dispatcher.run_once().await.unwrap(), 1);
    let got = json_of(app.get(&item, &t.token).await, 200).await;
    assert_eq!(
        (got["enabled"].clone(), got["disabled_reason"].clone()),
        (json!(false), json!("failing")),
        "{got}"
    );
    assert!(got["disabled_at"].is_string());
    assert_eq!(dispatcher.run_once().await.unwrap(), 1);
    // What happens while it is off does not reach it.
    app.send(&t.key, &send).await;
    while dispatcher.run_once().await.unwrap() > 0 {}
    assert_eq!(down.requests().len(), 2);
    let told = events_of(&watcher.requests());
    assert_documented(&watcher.requests());
    let types: Vec<&str> = told.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["message.held", "webhook.disabled", "message.held"]);
    assert_eq!(told[1]["data"]["webhook_id"], json!(failing_id));
    assert_eq!(told[1]["data"]["reason"], "failing");
    assert_eq!(told[1]["data"]["url"], json!(down.url));

    // Back on, with what it missed.
    let back = json_of(
        app.patch(&item, &t.token, &json!({"enabled": true, "replay_missed": true}))
            .await,
        200,
    )
    .await;
    assert_eq!(back["enabled"], true);
    assert!(
        back["failing_since"].is_null() && back["disabled_reason"].is_null(),
        "{back}"
    );
    assert!(back["replay"]["queued"].as_i64().unwrap() >= 1, "{back}");
    while dispatcher.run_once().await.unwrap() > 0 {}
    let ids = |r: &Receiver| -> std::collections::BTreeSet<String> {
        r.requests()
            .iter()
            .filter(|(_, b)| b.contains("message.held"))
            .map(|(h, _)| h["webhook-id"].clone())
            .collect()
    };
    assert_eq!(ids(&down), ids(&watcher), "the endpoint did not catch up");
    assert_eq!(ids(&down).len(), 2);
    assert_error(
        app.patch(&item, &t.token, &json!({"replay_missed": true})).await,
        422,
        "invalid_replay",
    )
    .await;

    // A replay by time sends every message event again, same ids.
    let replay = format!(
        "/v1/webhooks/{watching_id}/replay?since={}",
        started
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            .replace('+', "%2B")
    );
    let queued = json_of(app.post(&replay, &t.token, &json!({})).await, 202).await;
    assert_eq!(queued, json!({"queued": 2, "next_since": null}));
    let before = watcher.requests().len();
    while dispatcher.run_once().await.unwrap() > 0 {}
    let again = &watcher.requests()[before..];
    assert_eq!(again.len(), 2);
    assert!(
        again
            .iter()
            .all(|(h, _)| ids(&watcher).contains(&h["webhook-id"]))
    );
    assert_error(
        app.post(
            &format!("/v1/webhooks/{watching_id}/replay?since=yesterday"),
            &t.token,
            &json!({}),
        )
        .await,
        400,
        "invalid_query",
    )
    .await;
    let other = app
        .tenant("eve@example.com", "evil.test", "live", "ed25519")
        .await;
    assert_eq!(app.post(&replay, &other.token, &json!({})).await.status(), 404);
}

#[tokio::test]
async fn a_receiver_down_for_a_while_gets_every_event_once_when_back() {
    let port = crate::helpers::free_port();
    let url = format!("http://127.0.0.1:{port}/hook");
    let app = spawn_app_with(|s| s.webhooks.retry_schedule_secs = vec![1; 20]).await;
    let t = app
        .tenant("ann@example.com", "shop.test", "development", "ed25519")
        .await;
    create_endpoint(&app, &t, &url).await;
    for i in 0..5 {
        let body = json!({"from": "a@shop.test", "to": format!("r{i}@example.org"), "text": "x"});
        app.send(&t.key, &body).await;
    }
    let running = tokio::spawn(dispatcher(&app).await.run(std::future::pending()));
    // Nobody listens: connections are refused, and retried.
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let refused: i64 = sqlx::query_scalar("SELECT count(*) FROM webhook_attempts WHERE http_status IS NULL")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert!(refused >= 5, "{refused} refused attempts");
    let receiver = Receiver::start_on(port, &[]).await;
    wait_all_delivered(&app, std::time::Duration::from_secs(20)).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    running.abort();
    let ids: Vec<String> = receiver
        .requests()
        .iter()
        .map(|(h, _)| h["webhook-id"].clone())
        .collect();
    let distinct: std::collections::BTreeSet<&String> = ids.iter().collect();
    assert_eq!((ids.len(), distinct.len()), (5, 5), "{ids:?}");
}

/// `tern serve --role webhooks` as its own process; SIGKILLed on drop.
struct DispatcherProcess(std::process::Child);

impl DispatcherProcess {
    fn start(app: &crate::helpers::TestApp, lease_secs: u64) -> DispatcherProcess {
        let config = std::env::temp_dir().join(format!("tern-webhooks-{}.toml", uuid::Uuid::new_v4()));
        let secrets_key = app.settings.secrets.key.as_ref().unwrap().expose().clone();
        std::fs::write(
            &config,
            format!(
                "public_hostname = \"tern.test\"\n\
                 [database]\nurl = \"{}\"\nmax_connections = 4\n\
                 [http]\nops_listen = \"127.0.0.1:{}\"\n\
                 [log]\nfilter = \"warn\"\n\
                 [secrets]\nkey = \"{secrets_key}\"\n\
                 [webhooks]\nallow_private_targets = true\nallow_http = true\n\
                 lease_secs = {lease_secs}\nconcurrency = 8\nretry_schedule_secs = [0, 0, 0]\n",
                app.settings.database.url.expose(),
                crate::helpers::free_port(),
            ),
        )
        .unwrap();
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_tern"))
            .arg("--config")
            .arg(&config)
            .args(["serve", "--role", "webhooks"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start tern --role webhooks");
        DispatcherProcess(child)
    }

    fn kill(&mut self) {
        let _ = self.0.kill(); // SIGKILL
        let _ = self.0.wait();
    }
}

impl Drop for DispatcherProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

#[tokio::test]
async fn a_dispatcher_killed_mid_run_loses_nothing_and_repeats_only_with_the_same_id() {
    // Each answer takes 100 ms: the dispatcher is mid-send when it dies.
    let receiver = Receiver::start_slow(&[], std::time::Duration::from_millis(100)).await;
    let app = spawn_app().await;
    let t = app
        .tenant("ann@example.com", "shop.test", "development", "ed25519")
        .await;
    create_endpoint(&app, &t, &receiver.url).await;
    for i in 0..40 {
        let body = json!({"from": "a@shop.test", "to": format!("r{i}@example.org"), "text": "x"});
        app.send(&t.key, &body).await;
    }
    let mut first = DispatcherProcess::start(&app, 2);
    let start = std::time::Instant::now();
    while receiver.requests().len() < 10 {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(20),
            "the dispatcher sent nothing"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    first.kill();
    let _second = DispatcherProcess::start(&app, 2);
    wait_all_delivered(&app, std::time::Duration::from_secs(40)).await;
    // Every event arrived; a repeat carries the id and the body of the first.
    let stored: std::collections::BTreeSet<String> =
        sqlx::query_scalar("SELECT event_id FROM webhook_deliveries")
            .fetch_all(&app.db)
            .await
            .unwrap()
            .into_iter()
            .collect();
    assert_eq!(stored.len(), 40);
    let requests = receiver.requests();
    let mut first_body: HashMap<String, Value> = HashMap::new();
    for (headers, body) in &requests {
        let id = &headers["webhook-id"];
        assert!(stored.contains(id), "unknown webhook-id {id}");
        let body: Value = serde_json::from_str(body).unwrap();
        assert_eq!(body["data"]["server_id"], t.server_id.to_string(), "{id}");
        let first = first_body.entry(id.clone()).or_insert_with(|| body.clone());
        assert_eq!(first, &body, "{id} changed");
    }
    assert_eq!(first_body.len(), 40, "events were lost");
    assert!(requests.len() < 60, "{} requests for 40 events", requests.len());
}

/// Waits until every delivery in the outbox is delivered.
async fn wait_all_delivered(app: &crate::helpers::TestApp, limit: std::time::Duration) {
    let start = std::time::Instant::now();
    loop {
        let left: i64 =
            sqlx::query_scalar("SELECT count(*) FROM webhook_deliveries WHERE status <> 'delivered'")
                .fetch_one(&app.db)
                .await
                .unwrap();
        if left == 0 {
            return;
        }
        assert!(start.elapsed() < limit, "{left} not delivered after {limit:?}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
