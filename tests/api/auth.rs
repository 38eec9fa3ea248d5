use serde_json::json;

use crate::helpers::{assert_error, json_of, spawn_app};

fn message(domain: &str) -> serde_json::Value {
    json!({"from": format!("a@{domain}"), "to": "x@example.org", "subject": "s", "text": "t"})
}

#[tokio::test]
async fn login_checks_the_password() {
    let app = spawn_app().await;
    app.user("ann@example.com").await;
    let wrong = app
        .client
        .post(app.url("/v1/auth/login"))
        .json(&json!({"email": "ann@example.com", "password": "nope"}))
        .send()
        .await
        .unwrap();
    assert_error(wrong, 401, "invalid_login").await;
    let unknown = app
        .client
        .post(app.url("/v1/auth/login"))
        .json(&json!({"email": "nobody@example.com", "password": "a long password"}))
        .send()
        .await
        .unwrap();
    assert_error(unknown, 401, "invalid_login").await;
    let stored: String = sqlx::query_scalar("SELECT password_hash FROM users")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert!(stored.starts_with("$argon2id$"), "password stored as {stored}");

    for _ in 0..9 {
        let wrong = app
            .client
            .post(app.url("/v1/auth/login"))
            .json(&json!({"email": "ann@example.com", "password": "guess"}))
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status(), 401);
    }
    let blocked = app
        .client
        .post(app.url("/v1/auth/login"))
        .json(&json!({"email": "ann@example.com", "password": "a long password"}))
        .send()
        .await
        .unwrap();
    assert_error(blocked, 429, "too_many_attempts").await;
}

#[tokio::test]
async fn send_api_needs_a_valid_unrevoked_key_of_its_own_server() {
    let app = spawn_app().await;
    let t = app
        .tenant("ann@example.com", "ann.test", "development", "ed25519")
        .await;
    let body = message(&t.domain);

    let none = app
        .client
        .post(app.url("/v1/messages"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_error(none, 401, "missing_credentials").await;
    assert_error(
        app.post("/v1/messages", "tern_garbage", &body).await,
        401,
        "invalid_api_key",
    )
    .await;
    assert_error(
        app.post("/v1/messages", &t.token, &body).await,
        401,
        "invalid_api_key",
    )
    .await;
    assert_error(
        app.get("/v1/organizations", &t.key).await,
        401,
        "session_required",
    )
    .await;
    assert_error(
        app.get("/v1/organizations", "not-a-jwt").await,
        401,
        "invalid_token",
    )
    .await;

    let sent = app.send(&t.key, &body).await;
    let keys = json_of(
        app.get(&format!("/v1/servers/{}/api-keys", t.server_id), &t.token)
            .await,
        200,
    )
    .await;
    assert!(keys["data"][0]["last_used_at"].is_string() || keys["data"][0]["last_used_at"].is_null());
    assert!(
        keys["data"][0].get("secret").is_none(),
        "listing shows the secret"
    );

    let renamed = json_of(
        app.patch(
            &format!("/v1/api-keys/{}", t.key_id),
            &t.token,
            &json!({"name": "renamed"}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(renamed["name"], "renamed");
    let revoked = app.delete(&format!("/v1/api-keys/{}", t.key_id), &t.token).await;
    assert_eq!(revoked.status(), 204);
    assert_error(
        app.post("/v1/messages", &t.key, &body).await,
        401,
        "api_key_revoked",
    )
    .await;
    assert_error(
        app.get(&format!("/v1/messages/{}", sent["id"].as_str().unwrap()), &t.key)
            .await,
        401,
        "api_key_revoked",
    )
    .await;

    // Only the SHA-256 of the key is stored.
    let hashes: Vec<Vec<u8>> = sqlx::query_scalar("SELECT key_hash FROM api_keys")
        .fetch_all(&app.db)
        .await
        .unwrap();
    assert!(hashes.iter().all(|h| h.len() == 32));
    let dump: String = sqlx::query_scalar("SELECT string_agg(prefix || name, ',') FROM api_keys")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert!(!dump.contains(&t.key));
}
