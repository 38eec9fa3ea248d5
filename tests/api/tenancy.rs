//! A user of organization A can neither list nor read nor change anything of
//! organization B, for every resource type; viewers cannot change anything.

use serde_json::json;

use crate::helpers::{assert_error, json_of, spawn_app};

#[tokio::test]
async fn organizations_are_isolated_for_every_resource() {
    let app = spawn_app().await;
    let a = app
        .tenant("a@example.com", "a.test", "development", "ed25519")
        .await;
    let b = app
        .tenant("b@example.com", "b.test", "development", "ed25519")
        .await;
    let a_msg = app
        .send(
            &a.key,
            &json!({"from": "x@a.test", "to": "y@example.org", "text": "A"}),
        )
        .await;
    let a_msg_id = a_msg["id"].as_str().unwrap();

    // Lists show only B's own things.
    let orgs = json_of(app.get("/v1/organizations", &b.token).await, 200).await;
    assert_eq!(orgs["data"].as_array().unwrap().len(), 1);
    assert_eq!(orgs["data"][0]["id"], b.org_id.to_string());
    let messages = json_of(app.get("/v1/messages", &b.key).await, 200).await;
    assert_eq!(messages["data"].as_array().unwrap().len(), 0);

    // Reads of A's resources by B are 404s, as if they did not exist.
    let (org, server, domain, key) = (a.org_id, a.server_id, a.domain_id, a.key_id);
    for path in [
        format!("/v1/organizations/{org}"),
        format!("/v1/organizations/{org}/members"),
        format!("/v1/organizations/{org}/servers"),
        format!("/v1/servers/{server}"),
        format!("/v1/servers/{server}/domains"),
        format!("/v1/servers/{server}/api-keys"),
        format!("/v1/domains/{domain}"),
        format!("/v1/api-keys/{key}"),
        format!("/v1/servers/{server}/stats"),
        format!("/v1/servers/{server}/messages"),
        format!("/v1/servers/{server}/messages/{a_msg_id}"),
        format!("/v1/servers/{server}/messages/{a_msg_id}/source"),
        // A's message through B's own server: not B's message.
        format!("/v1/servers/{}/messages/{a_msg_id}", b.server_id),
        format!("/v1/servers/{}/messages/{a_msg_id}/source", b.server_id),
    ] {
        assert_error(app.get(&path, &b.token).await, 404, "not_found").await;
    }
    let b_list = json_of(
        app.get(&format!("/v1/servers/{}/messages", b.server_id), &b.token)
            .await,
        200,
    )
    .await;
    assert_eq!(b_list["data"].as_array().unwrap().len(), 0);
    for path in [
        format!("/v1/messages/{a_msg_id}"),
        format!("/v1/messages/{a_msg_id}/source"),
    ] {
        assert_error(app.get(&path, &b.key).await, 404, "not_found").await;
    }

    // Writes to A's resources by B are 404s too, and change nothing.
    let name = json!({"name": "taken over"});
    assert_error(
        app.patch(&format!("/v1/organizations/{org}"), &b.token, &name)
            .await,
        404,
        "not_found",
    )
    .await;
    assert_error(
        app.patch(&format!("/v1/servers/{server}"), &b.token, &name).await,
        404,
        "not_found",
    )
    .await;
    assert_error(
        app.post(&format!("/v1/organizations/{org}/servers"), &b.token, &name)
            .await,
        404,
        "not_found",
    )
    .await;
    assert_error(
        app.post(
            &format!("/v1/servers/{server}/domains"),
            &b.token,
            &json!({"name": "evil.test"}),
        )
        .await,
        404,
        "not_found",
    )
    .await;
    assert_error(
        app.post(&format!("/v1/servers/{server}/api-keys"), &b.token, &name)
            .await,
        404,
        "not_found",
    )
    .await;
    assert_error(
        app.post(
            &format!("/v1/organizations/{org}/members"),
            &b.token,
            &json!({"email": "b@example.com", "role": "owner"}),
        )
        .await,
        404,
        "not_found",
    )
    .await;
    assert_error(
        app.post(&format!("/v1/domains/{domain}/verify"), &b.token, &json!({}))
            .await,
        404,
        "not_found",
    )
    .await;
    for path in [
        format!("/v1/api-keys/{key}"),
        format!("/v1/domains/{domain}"),
        format!("/v1/servers/{server}"),
        format!("/v1/organizations/{org}"),
    ] {
        assert_error(app.delete(&path, &b.token).await, 404, "not_found").await;
    }

    // B cannot send from A's domain with B's key.
    assert_error(
        app.post(
            "/v1/messages",
            &b.key,
            &json!({"from": "x@a.test", "to": "y@example.org", "text": "B"}),
        )
        .await,
        422,
        "unknown_sender_domain",
    )
    .await;

    // A's things are intact.
    json_of(app.get(&format!("/v1/api-keys/{key}"), &a.token).await, 200).await;
    let still = json_of(app.get(&format!("/v1/organizations/{org}"), &a.token).await, 200).await;
    assert_eq!(still["name"], "Org");
    app.send(
        &a.key,
        &json!({"from": "x@a.test", "to": "y@example.org", "text": "A"}),
    )
    .await;
}

#[tokio::test]
async fn viewers_can_read_but_not_change() {
    let app = spawn_app().await;
    let a = app
        .tenant("owner@example.com", "a.test", "development", "ed25519")
        .await;
    let (_, viewer) = app.user("viewer@example.com").await;
    json_of(
        app.post(
            &format!("/v1/organizations/{}/members", a.org_id),
            &a.token,
            &json!({"email": "viewer@example.com", "role": "viewer"}),
        )
        .await,
        201,
    )
    .await;
    let org = json_of(
        app.get(&format!("/v1/organizations/{}", a.org_id), &viewer).await,
        200,
    )
    .await;
    assert_eq!(org["role"], "viewer");
    json_of(
        app.get(&format!("/v1/servers/{}/domains", a.server_id), &viewer)
            .await,
        200,
    )
    .await;
    json_of(
        app.get(&format!("/v1/servers/{}/api-keys", a.server_id), &viewer)
            .await,
        200,
    )
    .await;

    let name = json!({"name": "x"});
    for response in [
        app.patch(&format!("/v1/organizations/{}", a.org_id), &viewer, &name)
            .await,
        app.post(&format!("/v1/organizations/{}/servers", a.org_id), &viewer, &name)
            .await,
        app.patch(
            &format!("/v1/servers/{}", a.server_id),
            &viewer,
            &json!({"mode": "live"}),
        )
        .await,
        app.post(
            &format!("/v1/servers/{}/domains", a.server_id),
            &viewer,
            &json!({"name": "v.test"}),
        )
        .await,
        app.post(&format!("/v1/servers/{}/api-keys", a.server_id), &viewer, &name)
            .await,
        app.delete(&format!("/v1/api-keys/{}", a.key_id), &viewer).await,
        app.delete(&format!("/v1/domains/{}", a.domain_id), &viewer).await,
        app.post(
            &format!("/v1/domains/{}/verify", a.domain_id),
            &viewer,
            &json!({}),
        )
        .await,
        app.delete(&format!("/v1/organizations/{}", a.org_id), &viewer)
            .await,
    ] {
        assert_error(response, 403, "insufficient_role").await;
    }
    assert_eq!(app.count("servers").await, 1);
    assert_eq!(app.count("domains").await, 1);

    // The last owner cannot be removed.
    assert_error(
        app.delete(
            &format!("/v1/organizations/{}/members/{}", a.org_id, a.user_id),
            &a.token,
        )
        .await,
        409,
        "last_owner",
    )
    .await;
}
