//! Webhook endpoints (issue 9, first part): created with a secret shown
//! once and stored sealed, changed, rotated with an overlap, deleted;
//! refused when they lead to internal addresses; invisible to other
//! tenants.

use std::net::{SocketAddr, UdpSocket};

use serde_json::{Value, json};

use crate::helpers::{Dnsmasq, assert_error, json_of, spawn_app, spawn_app_with};

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
    let port = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
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
