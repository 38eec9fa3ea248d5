//! Listing messages: filters and cursor pagination, newest first.

use serde_json::json;

use crate::helpers::{assert_error, json_of, spawn_app};

#[tokio::test]
async fn messages_are_listed_newest_first_with_filters_and_cursors() {
    let app = spawn_app().await;
    let t = app
        .tenant("ann@example.com", "shop.test", "development", "ed25519")
        .await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let tag = if i % 2 == 0 { "even" } else { "odd" };
        let body =
            json!({"from": "a@shop.test", "to": format!("user{i}@example.org"), "text": "x", "tag": tag});
        ids.push(app.send(&t.key, &body).await["id"].clone());
    }
    ids.reverse();

    let mut seen = Vec::new();
    let mut path = "/v1/messages?limit=2".to_string();
    loop {
        let page = json_of(app.get(&path, &t.key).await, 200).await;
        let data = page["data"].as_array().unwrap();
        assert!(data.len() <= 2);
        seen.extend(data.iter().map(|m| m["id"].clone()));
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/v1/messages?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen, ids);

    let odd = json_of(app.get("/v1/messages?tag=odd", &t.key).await, 200).await;
    assert_eq!(odd["data"].as_array().unwrap().len(), 2);
    let one = json_of(
        app.get("/v1/messages?recipient=USER3@example.org", &t.key).await,
        200,
    )
    .await;
    assert_eq!(one["data"].as_array().unwrap().len(), 1);
    assert_eq!(one["data"][0]["recipients"][0]["address"], "user3@example.org");
    let held = json_of(app.get("/v1/messages?status=held", &t.key).await, 200).await;
    assert_eq!(held["data"].as_array().unwrap().len(), 5);
    let sent = json_of(app.get("/v1/messages?status=sent", &t.key).await, 200).await;
    assert_eq!(sent["data"].as_array().unwrap().len(), 0);
    let future = json_of(
        app.get("/v1/messages?since=2999-01-01T00:00:00Z", &t.key).await,
        200,
    )
    .await;
    assert_eq!(future["data"].as_array().unwrap().len(), 0);
    // The list statement is built from the filters at run time (not checked
    // by the compiler): every filter, alone and combined, is exercised here.
    let past = json_of(
        app.get("/v1/messages?until=2000-01-01T00:00:00Z", &t.key).await,
        200,
    )
    .await;
    assert_eq!(past["data"].as_array().unwrap().len(), 0);
    let all = json_of(
        app.get(
            "/v1/messages?since=2000-01-01T00:00:00Z&until=2999-01-01T00:00:00Z",
            &t.key,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(all["data"].as_array().unwrap().len(), 5);
    let combined = json_of(
        app.get(
            "/v1/messages?tag=odd&status=held&recipient=user3@example.org&since=2000-01-01T00:00:00Z",
            &t.key,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(combined["data"].as_array().unwrap().len(), 1);

    assert_error(
        app.get("/v1/messages?limit=0", &t.key).await,
        400,
        "invalid_query",
    )
    .await;
    assert_error(
        app.get("/v1/messages?cursor=garbage", &t.key).await,
        400,
        "invalid_cursor",
    )
    .await;
    assert_error(
        app.get("/v1/messages?status=lost", &t.key).await,
        400,
        "invalid_query",
    )
    .await;
    assert_error(
        app.get("/v1/messages?since=yesterday", &t.key).await,
        400,
        "invalid_query",
    )
    .await;
}
