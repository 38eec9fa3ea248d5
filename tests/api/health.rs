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
