//! The committed OpenAPI document is current and valid.

use std::process::Command;

use crate::helpers::{json_of, python, spawn_app};

#[tokio::test]
async fn committed_openapi_matches_the_code_and_validates() {
    let generated = tern::api::openapi_json();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json");
    if std::env::var("TERN_UPDATE_OPENAPI").is_ok() {
        std::fs::write(path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == generated,
        "openapi/openapi.json is stale: run `cargo run -q -- openapi > openapi/openapi.json`"
    );

    let app = spawn_app().await;
    let served = json_of(
        app.client.get(app.url("/openapi.json")).send().await.unwrap(),
        200,
    )
    .await;
    assert_eq!(
        served,
        serde_json::from_str::<serde_json::Value>(&generated).unwrap()
    );
    assert!(served["openapi"].as_str().unwrap().starts_with("3.1"));
    let ids: Vec<&str> = served["paths"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|item| item.as_object().unwrap().values())
        .filter_map(|op| op["operationId"].as_str())
        .collect();
    assert!(
        ids.contains(&"send_message") && ids.contains(&"verify_domain"),
        "{ids:?}"
    );

    let output = Command::new(python())
        .args(["-m", "openapi_spec_validator", path])
        .output()
        .expect("run python (scripts/test installs openapi-spec-validator)");
    assert!(
        output.status.success(),
        "openapi-spec-validator: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
