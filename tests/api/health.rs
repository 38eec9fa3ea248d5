use crate::helpers::{assert_error, spawn_app};

#[tokio::test]
async fn probes_answer_and_carry_a_request_id() {
    let app = spawn_app().await;
    let response = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers().contains_key("x-request-id"));
    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let docs = app.client.get(app.url("/docs/")).send().await.unwrap();
    assert_eq!(docs.status(), 200);
    let unknown = app.client.get(app.url("/v1/nothing-here")).send().await.unwrap();
    assert_error(unknown, 404, "not_found").await;
}

#[tokio::test]
async fn metrics_report_accepted_mail_and_the_queue() {
    let app = spawn_app().await;
    let t = app.live_tenant("ann@example.com", "shop.test").await;
    for to in ["a@example.org", "b@example.org"] {
        let body = serde_json::json!({"from": "x@shop.test", "to": to, "text": "hi"});
        app.send(&t.key, &body).await;
    }
    let response = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap().to_string();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    let text = response.text().await.unwrap();
    let value = |prefix: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no {prefix} in {text}"))
            .trim()
            .parse()
            .unwrap()
    };
    // The recorder is shared by every test in this process: at least ours.
    assert!(value(r#"tern_messages_accepted_total{mode="live"} "#) >= 2.0);
    // The queue gauges are read from this test's own database.
    assert_eq!(value(r#"tern_queue_depth{status="queued"} "#), 2.0);
    assert_eq!(value(r#"tern_queue_depth{status="deferred"} "#), 0.0);
    assert!(value("tern_queue_oldest_age_seconds ") >= 0.0);
    assert!(text.contains("# TYPE tern_queue_depth gauge"));
}
