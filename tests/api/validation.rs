//! Bad input gets a clear error and writes nothing.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use crate::helpers::{assert_error, spawn_app_with};

#[tokio::test]
async fn invalid_sends_are_refused_with_their_code_and_store_nothing() {
    let app = spawn_app_with(|s| {
        s.limits.max_recipients = 3;
        s.limits.max_message_bytes = 64 * 1024;
        s.limits.max_subject_chars = 50;
        s.limits.max_attachments = 2;
    })
    .await;
    let t = app
        .tenant("ann@example.com", "shop.test", "development", "ed25519")
        .await;
    let base = json!({"from": "a@shop.test", "to": "b@example.org", "subject": "s", "text": "t"});
    let with = |patch: Value| {
        let mut body = base.clone();
        for (k, v) in patch.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    };
    let big = "x".repeat(70 * 1024);
    let cases: Vec<(Value, u16, &str, Option<&str>)> = vec![
        (
            with(json!({"from": "not-an-address"})),
            422,
            "invalid_address",
            Some("from"),
        ),
        (
            with(json!({"to": ["ok@example.org", "bad@@example.org"]})),
            422,
            "invalid_address",
            Some("to[1]"),
        ),
        (
            with(json!({"cc": "a b@example.org"})),
            422,
            "invalid_address",
            Some("cc"),
        ),
        (
            with(json!({"to": "x@example.org\r\nBcc: victim@example.org"})),
            422,
            "invalid_address",
            Some("to"),
        ),
        (
            with(json!({"to": [], "cc": []})),
            422,
            "no_recipients",
            Some("to"),
        ),
        (
            with(json!({"to": ["a@e.org", "b@e.org"], "cc": ["c@e.org", "d@e.org"]})),
            413,
            "too_many_recipients",
            Some("to"),
        ),
        (with(json!({"text": big})), 413, "message_too_large", None),
        (
            with(json!({"subject": "s".repeat(51)})),
            413,
            "subject_too_long",
            Some("subject"),
        ),
        (
            with(json!({"subject": "a\r\nBcc: x@y.org"})),
            422,
            "invalid_subject",
            Some("subject"),
        ),
        (
            with(json!({"from": "a@unknown.test"})),
            422,
            "unknown_sender_domain",
            Some("from"),
        ),
        (
            with(json!({"headers": {"Subject": "x"}})),
            422,
            "forbidden_header",
            Some("headers.Subject"),
        ),
        (
            with(json!({"headers": {"DKIM-Signature": "x"}})),
            422,
            "forbidden_header",
            Some("headers.DKIM-Signature"),
        ),
        (
            with(json!({"headers": {"X-Evil": "a\r\nBcc: x@y.org"}})),
            422,
            "invalid_header",
            Some("headers.X-Evil"),
        ),
        (
            with(json!({"headers": {"Bad Name": "x"}})),
            422,
            "invalid_header",
            Some("headers.Bad Name"),
        ),
        (
            with(json!({"attachments": [{"filename": "a.bin", "content": "***not base64***"}]})),
            422,
            "invalid_base64",
            Some("attachments[0].content"),
        ),
        (
            with(json!({"attachments": [{"filename": "a", "content": "", "content_type": "nonsense"}]})),
            422,
            "invalid_content_type",
            Some("attachments[0].content_type"),
        ),
        (
            with(json!({"attachments": [
                {"filename": "a", "content": ""}, {"filename": "b", "content": ""}, {"filename": "c", "content": ""}
            ]})),
            413,
            "too_many_attachments",
            Some("attachments"),
        ),
        (
            with(json!({"text": null, "html": null})),
            422,
            "missing_body",
            Some("text"),
        ),
        (with(json!({"unknown_field": 1})), 422, "invalid_field", None),
        (with(json!({"to": 42})), 422, "invalid_field", None),
        (with(json!({"tag": ""})), 422, "invalid_tag", Some("tag")),
    ];
    for (body, status, code, field) in cases {
        let error = assert_error(app.post("/v1/messages", &t.key, &body).await, status, code).await;
        assert_eq!(
            error["error"]["field"].as_str(),
            field,
            "field of {code}: {error}"
        );
        assert!(error["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
    }

    // Malformed JSON and an oversized body are refused before parsing.
    let malformed = app
        .client
        .post(app.url("/v1/messages"))
        .bearer_auth(&t.key)
        .header("content-type", "application/json")
        .body("{\"from\": ")
        .send()
        .await
        .unwrap();
    assert_error(malformed, 400, "invalid_json").await;
    let huge = app
        .client
        .post(app.url("/v1/messages"))
        .bearer_auth(&t.key)
        .header("content-type", "application/json")
        .body(format!("{{\"text\": \"{}\"}}", "x".repeat(200 * 1024)))
        .send()
        .await
        .unwrap();
    assert_error(huge, 413, "payload_too_large").await;
    let not_json = app
        .client
        .post(app.url("/v1/messages"))
        .bearer_auth(&t.key)
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_error(not_json, 415, "unsupported_content_type").await;
    let big_attachment = with(
        json!({"attachments": [{"filename": "a", "content": STANDARD.encode(vec![7u8; 40 * 1024])},
                                                      {"filename": "b", "content": STANDARD.encode(vec![7u8; 40 * 1024])}]}),
    );
    assert_error(
        app.post("/v1/messages", &t.key, &big_attachment).await,
        413,
        "message_too_large",
    )
    .await;

    for table in [
        "messages",
        "message_sources",
        "recipients",
        "message_events",
        "idempotency_keys",
    ] {
        assert_eq!(
            app.count(table).await,
            0,
            "{table} has rows after refused requests"
        );
    }
}

#[tokio::test]
async fn management_input_is_validated() {
    let app = spawn_app_with(|_| {}).await;
    let (_, token) = app.user("ann@example.com").await;
    assert_error(
        app.post("/v1/organizations", &token, &json!({"name": "  "}))
            .await,
        422,
        "invalid_name",
    )
    .await;
    let org = crate::helpers::json_of(
        app.post("/v1/organizations", &token, &json!({"name": "O"})).await,
        201,
    )
    .await;
    let org_id = org["id"].as_str().unwrap();
    assert_error(
        app.post(
            &format!("/v1/organizations/{org_id}/servers"),
            &token,
            &json!({"name": "S", "mode": "turbo"}),
        )
        .await,
        422,
        "invalid_field",
    )
    .await;
    let server = crate::helpers::json_of(
        app.post(
            &format!("/v1/organizations/{org_id}/servers"),
            &token,
            &json!({"name": "S"}),
        )
        .await,
        201,
    )
    .await;
    assert_eq!(server["mode"], "development");
    let server_id = server["id"].as_str().unwrap();
    let domains = format!("/v1/servers/{server_id}/domains");
    assert_error(
        app.post(&domains, &token, &json!({"name": "not a domain"})).await,
        422,
        "invalid_domain",
    )
    .await;
    assert_error(
        app.post(
            &domains,
            &token,
            &json!({"name": "ok.test", "dkim_selector": "a.b"}),
        )
        .await,
        422,
        "invalid_selector",
    )
    .await;
    crate::helpers::json_of(
        app.post(
            &domains,
            &token,
            &json!({"name": "ok.test", "dkim_algorithm": "ed25519"}),
        )
        .await,
        201,
    )
    .await;
    assert_error(
        app.post(
            &domains,
            &token,
            &json!({"name": "OK.test", "dkim_algorithm": "ed25519"}),
        )
        .await,
        409,
        "domain_exists",
    )
    .await;
    assert_error(app.get("/v1/servers/not-a-uuid", &token).await, 404, "not_found").await;
    assert_eq!(app.count("domains").await, 1);
}
