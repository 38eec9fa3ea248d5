//! What the dashboard (web/) needs from Tern: a server's messages and
//! queue through a session, and the app's own files served at `/` with a
//! policy that forbids inline scripts. The browser tests in web/e2e drive
//! the app itself.

use reqwest::header::{CACHE_CONTROL, CONTENT_TYPE};
use serde_json::json;

use crate::helpers::{assert_error, json_of, spawn_app};

#[tokio::test]
async fn administrators_read_a_servers_messages_and_queue_with_a_session() {
    let app = spawn_app().await;
    let a = app.live_tenant("a@example.com", "a.test").await;
    let sent = app
        .send(
            &a.key,
            &json!({"from": "x@a.test", "to": "jane@example.org", "subject": "Hi",
                    "text": "plain words", "html": "<p>html words</p>"}),
        )
        .await;
    let id = sent["id"].as_str().unwrap();
    let server = a.server_id;

    let list = json_of(
        app.get(
            &format!("/v1/servers/{server}/messages?recipient=JANE@example.org"),
            &a.token,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(list["data"][0]["id"], id);
    let none = json_of(
        app.get(
            &format!("/v1/servers/{server}/messages?recipient=bob@example.org"),
            &a.token,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(none["data"].as_array().unwrap().len(), 0);

    let detail = json_of(
        app.get(
            &format!("/v1/servers/{server}/messages/{id}?include=body,raw"),
            &a.token,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(detail["recipients"][0]["status"], "queued");
    assert_eq!(detail["body"]["text"].as_str().unwrap().trim(), "plain words");
    assert!(
        detail["body"]["html"]
            .as_str()
            .unwrap()
            .contains("<p>html words</p>")
    );
    assert!(detail["raw"].is_string());
    let plain = json_of(
        app.get(&format!("/v1/servers/{server}/messages/{id}"), &a.token)
            .await,
        200,
    )
    .await;
    assert!(plain.get("body").is_none() && plain.get("raw").is_none());
    assert_error(
        app.get(
            &format!("/v1/servers/{server}/messages/{id}?include=everything"),
            &a.token,
        )
        .await,
        400,
        "invalid_query",
    )
    .await;

    let source = app
        .get(&format!("/v1/servers/{server}/messages/{id}/source"), &a.token)
        .await;
    assert_eq!(source.status(), 200);
    assert_eq!(source.headers()[CONTENT_TYPE], "message/rfc822");
    assert!(source.text().await.unwrap().contains("DKIM-Signature:"));

    // The API key is for /v1/messages; these take a session.
    assert_error(
        app.get(&format!("/v1/servers/{server}/messages"), &a.key).await,
        401,
        "session_required",
    )
    .await;

    let stats = json_of(
        app.get(&format!("/v1/servers/{server}/stats"), &a.token).await,
        200,
    )
    .await;
    assert_eq!(stats["queue"]["queued"], 1);
    assert_eq!(stats["queue"]["deferred"], 0);
    assert!(stats["queue"]["oldest_accepted_at"].is_string());
}

#[tokio::test]
async fn the_app_is_served_at_the_root_with_a_strict_policy() {
    let app = spawn_app().await;
    let client = reqwest::Client::new();

    // Built or not (debug builds read web/dist from disk), `/` and the
    // app's routes answer HTML under the policy.
    for path in ["/", "/servers/1234/messages"] {
        let res = client.get(app.url(path)).send().await.unwrap();
        assert!(
            res.status() == 200 || res.status() == 503,
            "{path}: {}",
            res.status()
        );
        assert!(
            res.headers()[CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        let csp = res.headers()["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("script-src 'self';"), "{csp}");
        assert!(!csp.contains("unsafe-eval"));
        assert!(csp.contains("frame-ancestors 'none'"));
        assert_eq!(res.headers()["x-content-type-options"], "nosniff");
        let cache = res.headers()[CACHE_CONTROL].to_str().unwrap();
        assert!(!cache.contains("immutable"), "{path}: {cache}");
    }

    // Unknown API routes, missing assets, other methods and paths that
    // try to leave web/dist stay JSON 404s.
    for path in [
        "/v1/no-such-thing",
        "/assets/index-deadbeef.js",
        "/favicon-missing.ico",
        "/..%2f..%2fCargo.toml",
        "/.env",
    ] {
        let res = client.get(app.url(path)).send().await.unwrap();
        assert_eq!(res.status(), 404, "{path}");
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(body["error"]["code"], "not_found", "{path}");
    }
    let post = client.post(app.url("/")).send().await.unwrap();
    assert_eq!(post.status(), 404);
}
