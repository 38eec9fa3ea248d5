//! `Idempotency-Key`: same key and body → same answer and one message.

use serde_json::json;

use crate::helpers::{assert_error, spawn_app};

#[tokio::test]
async fn a_retried_request_returns_the_first_answer_and_creates_nothing() {
    let app = spawn_app().await;
    let t = app
        .tenant("ann@example.com", "shop.test", "development", "ed25519")
        .await;
    let body = json!({"from": "a@shop.test", "to": ["b@example.org", "c@example.org"], "text": "once"});
    let send = |body: serde_json::Value, key: &'static str| {
        app.client
            .post(app.url("/v1/messages"))
            .bearer_auth(&t.key)
            .header("Idempotency-Key", key)
            .json(&body)
            .send()
    };
    let first = send(body.clone(), "order-42").await.unwrap();
    assert_eq!(first.status(), 202);
    let first: serde_json::Value = first.json().await.unwrap();
    let second = send(body.clone(), "order-42").await.unwrap();
    assert_eq!(second.status(), 202);
    assert_eq!(second.headers()["idempotent-replayed"], "true");
    let second: serde_json::Value = second.json().await.unwrap();
    assert_eq!(first, second);
    assert_eq!(app.count("messages").await, 1);
    assert_eq!(app.count("recipients").await, 2);

    let other = json!({"from": "a@shop.test", "to": "b@example.org", "text": "different"});
    assert_error(
        send(other, "order-42").await.unwrap(),
        422,
        "idempotency_key_reused",
    )
    .await;
    assert_eq!(app.count("messages").await, 1);

    // Concurrent duplicates: one message, every caller sees its id.
    let body = json!({"from": "a@shop.test", "to": "d@example.org", "text": "race"});
    let answers = futures_join((0..6).map(|_| {
        let request = send(body.clone(), "race-1");
        async move { request.await.unwrap().json::<serde_json::Value>().await.unwrap() }
    }))
    .await;
    assert!(answers.iter().all(|a| a["id"] == answers[0]["id"]), "{answers:?}");
    assert_eq!(app.count("messages").await, 2);

    let bad = app
        .client
        .post(app.url("/v1/messages"))
        .bearer_auth(&t.key)
        .header("Idempotency-Key", "x".repeat(300))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_error(bad, 400, "invalid_idempotency_key").await;

    // Keys are kept for a day, then purged.
    assert_eq!(tern::db::idempotency::purge(&app.db, 24).await.unwrap(), 0);
    sqlx::query("UPDATE idempotency_keys SET created_at = now() - interval '25 hours'")
        .execute(&app.db)
        .await
        .unwrap();
    assert_eq!(tern::db::idempotency::purge(&app.db, 24).await.unwrap(), 2);
}

async fn futures_join<F: std::future::Future<Output = T> + Send + 'static, T: Send + 'static>(
    futures: impl Iterator<Item = F>,
) -> Vec<T> {
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for handle in handles {
        out.push(handle.await.unwrap());
    }
    out
}
