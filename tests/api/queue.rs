//! The delivery queue: disjoint concurrent claims, leases that expire.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::json;
use tern::db::queue;
use tern::domain::RecipientStatus;

use crate::helpers::spawn_app;

#[tokio::test]
async fn concurrent_claims_are_disjoint_and_expired_leases_are_reclaimed() {
    let app = spawn_app().await;
    let t = app.live_tenant("ann@example.com", "shop.test").await;
    for i in 0..20 {
        let to: Vec<String> = (0..5).map(|j| format!("r{i}-{j}@example.org")).collect();
        app.send(&t.key, &json!({"from": "a@shop.test", "to": to, "text": "x"}))
            .await;
    }
    let lease = Duration::from_secs(60);
    let claimers = (0..4).map(|w| {
        let pool = app.db.clone();
        tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let batch = queue::claim(&pool, &format!("w{w}"), 7, lease).await.unwrap();
                if batch.is_empty() {
                    break mine;
                }
                mine.extend(batch.into_iter().map(|c| c.id));
            }
        })
    });
    let mut all = Vec::new();
    for claimer in claimers {
        all.extend(claimer.await.unwrap());
    }
    let unique: HashSet<_> = all.iter().collect();
    assert_eq!(all.len(), 100, "every queued recipient claimed");
    assert_eq!(unique.len(), 100, "no recipient claimed twice");
    assert!(queue::claim(&app.db, "late", 10, lease).await.unwrap().is_empty());

    // A worker that died: its leases expire and another worker takes over.
    sqlx::query(
        "UPDATE recipients SET lease_expires_at = now() - interval '1 second' WHERE lease_owner = 'w0'",
    )
    .execute(&app.db)
    .await
    .unwrap();
    let expired: i64 = sqlx::query_scalar("SELECT count(*) FROM recipients WHERE lease_owner = 'w0'")
        .fetch_one(&app.db)
        .await
        .unwrap();
    let taken = queue::claim(&app.db, "w9", 1000, lease).await.unwrap();
    assert_eq!(taken.len() as i64, expired);
    assert!(queue::release(&app.db, "w9", taken[0].id).await.unwrap());
    assert!(
        !queue::release(&app.db, "w0", taken[1].id).await.unwrap(),
        "a lost lease cannot be released"
    );
    assert_eq!(queue::claim(&app.db, "w5", 1000, lease).await.unwrap().len(), 1);

    // Only the lease holder records outcomes: the dead worker's late result
    // for a recipient now held by w9 is refused, w9's own is stored.
    let outcome = |id, status| queue::Outcome {
        recipient: id,
        status,
        reply: "250 2.0.0 Ok".into(),
        next_attempt_at: None,
        host: Some("mx.example.org".into()),
        tls: Some(true),
        detail: json!({"code": 250}),
        suppress: None,
    };
    let (a, b) = (taken[1].id, taken[2].id);
    let late = [
        outcome(a, RecipientStatus::Sent),
        outcome(b, RecipientStatus::Sent),
    ];
    assert!(queue::complete(&app.db, "w0", &late).await.unwrap().is_empty());
    let stored = queue::complete(&app.db, "w9", &late).await.unwrap();
    assert_eq!(stored.len(), 2);
    let (status, host, tls, events): (String, String, bool, i64) = sqlx::query_as(
        "SELECT r.status, r.last_host, r.last_tls,
                (SELECT count(*) FROM message_events e WHERE e.recipient_id = r.id AND e.kind = 'sent')
         FROM recipients r WHERE r.id = $1",
    )
    .bind(a)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(
        (status.as_str(), host.as_str(), tls, events),
        ("sent", "mx.example.org", true, 1)
    );
    assert!(
        queue::complete(&app.db, "w9", &late).await.unwrap().is_empty(),
        "a recorded outcome releases the lease: recording twice does nothing"
    );
}

#[tokio::test]
async fn a_message_whose_attempts_never_finish_ends_failed() {
    // One retry: two attempts in all.
    let sink = crate::peers::Sink::start(&[]);
    let app = crate::helpers::spawn_app_with(|s| {
        s.delivery.retry_schedule_secs = vec![60];
        s.delivery.transports = vec![crate::helpers::loopback_route("example.org", sink.port)];
    })
    .await;
    let t = app.live_tenant("ann@example.com", "shop.test").await;
    let sent = app
        .send(
            &t.key,
            &json!({"from": "a@shop.test", "to": "poison@example.org", "text": "x"}),
        )
        .await;
    // Two workers die mid-attempt: each claim counts, no outcome is stored.
    for dead in ["dead1", "dead2"] {
        let claimed = queue::claim(&app.db, dead, 10, Duration::from_millis(1))
            .await
            .unwrap();
        assert_eq!(claimed.len(), 1);
        assert_eq!(claimed[0].attempts, if dead == "dead1" { 1 } else { 2 });
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let worker = tern::delivery::worker::Worker::new(app.db.clone(), app.settings.clone())
        .await
        .unwrap();
    assert_eq!(worker.run_once().await.unwrap(), 1);
    let detail = app.message(&t.key, &sent).await;
    let poison = crate::helpers::recipient(&detail, "poison@example.org");
    assert_eq!(poison["status"], "failed", "{poison}");
    assert!(
        poison["last_reply"]
            .as_str()
            .unwrap()
            .contains("never recorded an outcome"),
        "{poison}"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(sink.dumps().is_empty(), "the poison message was sent again");

    // A recipient given back unattempted is not counted.
    let again = app
        .send(
            &t.key,
            &json!({"from": "a@shop.test", "to": "fine@example.org", "text": "x"}),
        )
        .await;
    let claimed = queue::claim(&app.db, "w", 10, Duration::from_secs(60))
        .await
        .unwrap();
    queue::release_all(&app.db, "w", &[claimed[0].id]).await.unwrap();
    let attempts: i32 = sqlx::query_scalar("SELECT attempts FROM recipients WHERE id = $1")
        .bind(claimed[0].id)
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(attempts, 0);
    drop(again);
}
