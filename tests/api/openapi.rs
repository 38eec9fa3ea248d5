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

/// A request as the document describes one operation.
struct Operation {
    method: reqwest::Method,
    path: String,
    op: serde_json::Value,
}

impl Operation {
    fn documented(&self) -> Vec<u16> {
        self.op["responses"]
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.parse().unwrap())
            .collect()
    }

    fn id(&self) -> &str {
        self.op["operationId"].as_str().unwrap()
    }

    fn security(&self) -> Option<&str> {
        self.op["security"][0]
            .as_object()?
            .keys()
            .next()
            .map(String::as_str)
    }
}

/// Every operation answers its own example, an invalid body, a body that is
/// not JSON, a wrong media type, a malformed id and missing credentials
/// with a status the document lists for it; the examples are accepted.
#[tokio::test]
async fn every_operation_answers_only_what_the_document_lists() {
    use serde_json::{Value, json};

    let app = spawn_app().await;
    let t = app
        .tenant("ann@example.com", "example.com", "development", "ed25519")
        .await;
    let (colleague, _) = app.user("colleague@example.com").await;
    let spare_key = json_of(
        app.post(
            &format!("/v1/servers/{}/api-keys", t.server_id),
            &t.token,
            &json!({"name": "spare"}),
        )
        .await,
        201,
    )
    .await;
    let webhook = json_of(
        app.post(
            &format!("/v1/servers/{}/webhooks", t.server_id),
            &t.token,
            &json!({"url": "https://hooks.example.com/x"}),
        )
        .await,
        201,
    )
    .await;
    // The operator: instance-wide settings too.
    sqlx::query("UPDATE users SET instance_admin = true WHERE id = $1")
        .bind(t.user_id)
        .execute(&app.db)
        .await
        .unwrap();
    let rule = json_of(
        app.post(
            "/v1/smtp/ip-rules",
            &t.token,
            &json!({"network": "198.51.100.0/24", "action": "allow"}),
        )
        .await,
        201,
    )
    .await;
    let route = json_of(
        app.post(
            &format!("/v1/servers/{}/routes", t.server_id),
            &t.token,
            &json!({"address": "in@example.com", "action": "endpoint", "url": "https://hooks.example.com/in"}),
        )
        .await,
        201,
    )
    .await;
    // A delivery in the route's log, as if a message had come in.
    let route_delivery: uuid::Uuid = sqlx::query_scalar(
        "INSERT INTO webhook_deliveries (endpoint_id, event_id, event_type, payload)
         SELECT endpoint_id, 'evt_in', 'inbound.received', '{}' FROM routes WHERE id = $1::text::uuid
         RETURNING id",
    )
    .bind(route["id"].as_str().unwrap())
    .fetch_one(&app.db)
    .await
    .unwrap();
    // A tracking host to verify (its check fails here: no DNS).
    sqlx::query("UPDATE servers SET tracking_host = 'track.example.com' WHERE id = $1")
        .bind(t.server_id)
        .execute(&app.db)
        .await
        .unwrap();
    // A suppressed address, read before the examples replace or delete it.
    sqlx::query(
        "INSERT INTO suppressions (server_id, address, reason) VALUES ($1, 'jane@example.org', 'manual')",
    )
    .bind(t.server_id)
    .execute(&app.db)
    .await
    .unwrap();
    let sent = app
        .send(
            &t.key,
            &json!({"from": "a@example.com", "to": "b@example.org", "text": "x",
                    "attachments": [{"filename": "a.txt", "content": "eA=="}]}),
        )
        .await;
    // The send (held on this development server) made a webhook delivery.
    let delivery: uuid::Uuid =
        sqlx::query_scalar("SELECT id FROM webhook_deliveries WHERE event_type <> 'inbound.received'")
            .fetch_one(&app.db)
            .await
            .unwrap();
    let ids = [
        ("organization_id", t.org_id.to_string()),
        ("server_id", t.server_id.to_string()),
        ("domain_id", t.domain_id.to_string()),
        ("api_key_id", spare_key["id"].as_str().unwrap().to_string()),
        ("message_id", sent["id"].as_str().unwrap().to_string()),
        ("user_id", colleague.to_string()),
        ("webhook_id", webhook["id"].as_str().unwrap().to_string()),
        ("delivery_id", delivery.to_string()),
        ("route_id", route["id"].as_str().unwrap().to_string()),
        ("route_delivery_id", route_delivery.to_string()),
        ("index", "0".to_string()),
        ("rule_id", rule["id"].as_str().unwrap().to_string()),
        ("address", "jane@example.org".to_string()),
    ];
    let fill = |path: &str, value: Option<&str>| {
        ids.iter().fold(path.to_string(), |path, (name, id)| {
            path.replace(&format!("{{{name}}}"), value.unwrap_or(id))
        })
    };

    let doc: Value = serde_json::from_str(&tern::api::openapi_json()).unwrap();
    let mut operations: Vec<Operation> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object().unwrap().iter().map(|(method, op)| Operation {
                method: method.to_uppercase().parse().unwrap(),
                path: path.clone(),
                op: op.clone(),
            })
        })
        .collect();
    // Deletions last, the organization's very last.
    let rank = |o: &Operation| match (o.method == reqwest::Method::DELETE, o.id()) {
        (false, _) => 0,
        (true, "delete_organization") => 3,
        (true, "delete_server") => 2,
        // Its routes go with it.
        (true, "delete_domain") => 2,
        (true, _) => 1,
    };
    operations.sort_by_key(|o| rank(o));
    assert!(operations.len() >= 30, "{}", operations.len());

    for o in &operations {
        let documented = o.documented();
        let credentials = match o.security() {
            Some("session") => Some(t.token.as_str()),
            Some("api_key") => Some(t.key.as_str()),
            _ => None,
        };
        let schema_ref = o.op["requestBody"]["content"]["application/json"]["schema"]["$ref"].as_str();
        let example = schema_ref
            .map(|r| doc["components"]["schemas"][r.rsplit('/').next().unwrap()]["example"].clone());
        let send = |path: String, token: Option<&str>, body: Option<(&str, Vec<u8>)>| {
            let mut request = app.client.request(o.method.clone(), app.url(&path));
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            if let Some((content_type, bytes)) = body {
                request = request.header("content-type", content_type).body(bytes);
            }
            async move { request.send().await.unwrap().status().as_u16() }
        };
        let json_body = |value: &Value| Some(("application/json", serde_json::to_vec(value).unwrap()));
        let check = |what: &str, status: u16| {
            assert!(
                documented.contains(&status) && status < 500,
                "{} {} ({what}) answered {status}, documented: {documented:?}",
                o.method,
                o.path
            );
        };
        // Required query parameters take their examples.
        let query: Vec<String> = o.op["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["in"] == "query" && p["required"] == true)
            .map(|p| {
                let example = p["example"]
                    .as_str()
                    .expect("a required query parameter has an example");
                format!("{}={}", p["name"].as_str().unwrap(), example.replace('+', "%2B"))
            })
            .collect();
        let path = if query.is_empty() {
            fill(&o.path, None)
        } else {
            format!("{}?{}", fill(&o.path, None), query.join("&"))
        };

        if let Some(example) = &example {
            assert!(!example.is_null(), "{}: the request body has no example", o.id());
            // Wrong media type, not JSON, and a body the schema does not allow.
            let bytes = serde_json::to_vec(example).unwrap();
            let status = send(path.clone(), credentials, Some(("text/plain", bytes))).await;
            check("text/plain", status);
            assert_eq!(status, 415, "{}", o.id());
            check(
                "not JSON",
                send(
                    path.clone(),
                    credentials,
                    Some(("application/json", b"{".to_vec())),
                )
                .await,
            );
            check(
                "invalid body",
                send(
                    path.clone(),
                    credentials,
                    json_body(&json!({"no_such_field": [1]})),
                )
                .await,
            );
        }
        if o.path.contains('{') {
            check(
                "malformed id",
                send(
                    fill(&o.path, Some("not-an-id")),
                    credentials,
                    example.as_ref().and_then(json_body),
                )
                .await,
            );
        }
        if credentials.is_some() {
            let status = send(path.clone(), None, example.as_ref().and_then(json_body)).await;
            check("no credentials", status);
            assert_eq!(status, 401, "{}", o.id());
        }
        // The example itself, last: it may delete what it names (an
        // address another operation deleted before is suppressed again).
        if o.path.contains("{address}") {
            sqlx::query(
                "INSERT INTO suppressions (server_id, address, reason) VALUES ($1, 'jane@example.org', 'manual')
                 ON CONFLICT DO NOTHING",
            )
            .bind(t.server_id)
            .execute(&app.db)
            .await
            .unwrap();
        }
        let status = send(path.clone(), credentials, example.as_ref().and_then(json_body)).await;
        check("example", status);
        if o.id() != "login" {
            // (The example's admin does not exist here: 401.)
            assert!(
                (200..300).contains(&status),
                "{} {}: the example answered {status}",
                o.method,
                o.path
            );
        }
    }
}

/// The schemas accept every example and refuse bodies the server refuses
/// for their shape (no body text, no recipient, an empty recipient list,
/// too long a name, a bad header name, too many attachments).
#[test]
fn the_schemas_accept_their_examples_and_refuse_what_the_server_refuses() {
    use serde_json::json;

    let doc: serde_json::Value = serde_json::from_str(&tern::api::openapi_json()).unwrap();
    let mut cases: Vec<serde_json::Value> = doc["components"]["schemas"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, schema)| !schema["example"].is_null())
        .map(|(name, schema)| json!({"schema": name, "body": schema["example"], "valid": true}))
        .collect();
    let refused = [
        (
            "SendMessage",
            json!({"from": "a@example.com", "to": "b@example.org"}),
        ),
        (
            "SendMessage",
            json!({"from": "a@example.com", "to": "b@example.org", "text": null}),
        ),
        ("SendMessage", json!({"from": "a@example.com", "text": "x"})),
        (
            "SendMessage",
            json!({"from": "a@example.com", "to": [], "text": "x"}),
        ),
        (
            "SendMessage",
            json!({"from": "a@example.com", "to": "b@example.org", "text": "x", "headers": {"Bad Name": "v"}}),
        ),
        (
            "SendMessage",
            json!({"from": "a@example.com", "to": "b@example.org", "text": "x", "subject": "a\nb"}),
        ),
        (
            "SendMessage",
            json!({"from": "a@example.com", "to": "b@example.org", "text": "x",
                               "attachments": vec![json!({"filename": "a", "content": "eA=="}); 21]}),
        ),
        (
            "SendRawMessage",
            json!({"mail_from": "a@example.com", "rcpt_to": [], "raw": "eA=="}),
        ),
        ("CreateServer", json!({"name": ""})),
        ("CreateServer", json!({"name": "   "})),
        ("CreateServer", json!({"name": "x".repeat(101)})),
        ("OrganizationInput", json!({"name": "a\u{7}b"})),
        ("CreateDomain", json!({"name": "nodot"})),
        (
            "CreateDomain",
            json!({"name": "example.com", "dkim_selector": "a.b"}),
        ),
    ];
    cases.extend(
        refused
            .into_iter()
            .map(|(name, body)| json!({"schema": name, "body": body, "valid": false})),
    );
    let accepted = [
        (
            "SendMessage",
            json!({"from": "a@example.com", "cc": ["b@example.org"], "html": "<p>x</p>"}),
        ),
        (
            "SendMessage",
            json!({"from": "a@example.com", "bcc": "b@example.org", "text": "x", "html": "y"}),
        ),
        (
            "SendRawMessage",
            json!({"mail_from": "a@example.com", "rcpt_to": "b@example.org", "raw": "eA=="}),
        ),
    ];
    cases.extend(
        accepted
            .into_iter()
            .map(|(name, body)| json!({"schema": name, "body": body, "valid": true})),
    );

    if let Err(wrong) = crate::helpers::schema_check(&cases) {
        panic!("{wrong}");
    }
}
