//! Open and click tracking (issue 12): the HTML is rewritten before
//! signing (dkimpy verifies the result), links redirect byte for byte to
//! what was stored, edited tokens are 404s, hits reach a webhook receiver
//! with the documented payloads, machines are flagged, and the numbers add
//! up per message and per server day.

use mail_parser::MessageParser;
use serde_json::{Value, json};
use tern::delivery::worker::Worker;

use crate::bounces::webhook;
use crate::dkim::{dkim_txt, dkimpy_verifies};
use crate::helpers::{Dnsmasq, assert_error, free_port, json_of, loopback_route, spawn_app_with};
use crate::inbound::deliver;
use crate::peers::Sink;
use crate::receiver::Receiver;
use crate::webhooks::assert_documented;

const HTML: &str = "<!doctype html><html><body><p>Your order</p>\n\
    <a href=\"https://shop.example.com/orders/1\">order</a>\n\
    <a href=\"http://shop.example.com/track?id=7&amp;lang=en\">track it</a>\n\
    <a href=\"mailto:help@shop.example.com\">write</a>\n\
    <a data-tern-track=\"off\" href=\"https://shop.example.com/private\">private</a>\n\
    <a href=\"https://shop.example.com/help\">help</a>\n\
    </body></html>";
const TEXT: &str = "Your order: https://shop.example.com/orders/1\n";
const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";

/// Every `https://tern.test/<kind>/<token>` URL in `html`, in order.
fn tracked(html: &str, kind: &str) -> Vec<String> {
    let prefix = format!("https://tern.test/{kind}/");
    html.match_indices(&prefix)
        .map(|(at, _)| {
            html[at..]
                .chars()
                .take_while(|c| !matches!(c, '"' | '\'' | '>' | ' '))
                .collect()
        })
        .collect()
}

#[tokio::test]
async fn tracked_html_is_rewritten_signed_followed_and_counted() {
    let sink = Sink::start(&[]);
    let app =
        spawn_app_with(|s| s.delivery.transports = vec![loopback_route("example.org", sink.port)]).await;
    let t = app.live_tenant("track@example.com", "shop.test").await;
    let receiver = Receiver::start(&[]).await;
    webhook(&app, &t, &receiver).await;

    // Tracking personalises the HTML: one recipient per message.
    assert_error(
        app.post(
            "/v1/messages",
            &t.key,
            &json!({"from": "a@shop.test", "to": ["x@example.org", "y@example.org"], "html": HTML,
                    "track": {"opens": true}}),
        )
        .await,
        422,
        "tracking_needs_one_recipient",
    )
    .await;
    let sent = app
        .send(
            &t.key,
            &json!({"from": "a@shop.test", "to": "x@example.org", "subject": "Your order", "text": TEXT,
                    "html": HTML, "track": {"opens": true, "clicks": true}}),
        )
        .await;
    let id = sent["id"].as_str().unwrap();
    let source = app.source(&t.key, id).await;

    // Exactly the web links are rewritten, the pixel is added, the text
    // part is untouched, and the signature covers the result.
    let message = MessageParser::default().parse(&source[..]).unwrap();
    let html = message.body_html(0).unwrap().to_string();
    let clicks = tracked(&html, "c");
    assert_eq!(clicks.len(), 3, "{html}");
    assert_eq!(tracked(&html, "o").len(), 1, "{html}");
    assert!(html.contains("href=\"mailto:help@shop.example.com\""));
    assert!(html.contains("href=\"https://shop.example.com/private\""));
    assert!(!html.contains("https://shop.example.com/orders/1"));
    assert_eq!(message.body_text(0).unwrap().replace("\r\n", "\n"), TEXT);
    let domain = json_of(
        app.get(&format!("/v1/domains/{}", t.domain_id), &t.token).await,
        200,
    )
    .await;
    dkimpy_verifies(&source, &dkim_txt(&domain)).expect("dkimpy verifies the tracked message");

    let worker = Worker::new(app.db.clone(), app.settings.clone()).await.unwrap();
    assert_eq!(worker.run_once().await.unwrap(), 1);

    // A click redirects to the stored URL, byte for byte (`&amp;` decoded).
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let local = |url: &str| app.url(url.trim_start_matches("https://tern.test"));
    let follow = |url: String| {
        let client = client.clone();
        async move {
            client
                .get(url)
                .header("user-agent", FIREFOX)
                .send()
                .await
                .unwrap()
        }
    };
    let response = follow(local(&clicks[1])).await;
    assert_eq!(response.status(), 302);
    assert_eq!(
        response.headers()["location"],
        "http://shop.example.com/track?id=7&lang=en"
    );
    // One character changed: a 404, never a redirect.
    let mut edited = clicks[0].clone();
    let last = edited.pop().unwrap();
    edited.push(if last == 'A' { 'B' } else { 'A' });
    let response = follow(local(&edited)).await;
    assert_eq!(response.status(), 404);
    assert!(response.headers().get("location").is_none());
    // A token is no credential: it reads nothing through the API.
    let token = clicks[0].rsplit('/').next().unwrap();
    assert_eq!(app.get("/v1/messages", token).await.status(), 401);
    assert_eq!(app.get(&format!("/v1/messages/{id}"), token).await.status(), 401);
    // An open token is no click token, and the other way round.
    let open = tracked(&html, "o").remove(0);
    assert_eq!(follow(local(&open.replace("/o/", "/c/"))).await.status(), 404);
    assert_eq!(
        follow(local(&clicks[0].replace("/c/", "/o/"))).await.status(),
        404
    );

    // Opened right after delivery: flagged machine (a privacy proxy's
    // prefetch). Opened later in a browser: counted as a person.
    let pixel = follow(local(&open)).await;
    assert_eq!(pixel.status(), 200);
    assert_eq!(pixel.headers()["content-type"], "image/gif");
    assert!(
        pixel.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("no-store")
    );
    // A reload at once is not another open (tracking.repeat_window_secs).
    assert_eq!(follow(local(&open)).await.status(), 200);
    assert_eq!(app.count("message_events WHERE kind = 'opened'").await, 1);
    sqlx::query(
        "UPDATE message_events SET created_at = created_at - interval '2 minutes'
         WHERE kind IN ('sent', 'opened')",
    )
    .execute(&app.db)
    .await
    .unwrap();
    assert_eq!(follow(local(&open)).await.status(), 200);
    // Behind a reverse proxy on this machine, the client is the last
    // X-Forwarded-For address: one of Apple's is a privacy proxy.
    sqlx::query(
        "UPDATE message_events SET created_at = created_at - interval '2 minutes' WHERE kind = 'opened'",
    )
    .execute(&app.db)
    .await
    .unwrap();
    let proxied = client
        .get(local(&open))
        .header("user-agent", FIREFOX)
        .header("x-forwarded-for", "203.0.113.9, 17.58.100.1")
        .send()
        .await
        .unwrap();
    assert_eq!(proxied.status(), 200);

    let detail = app.message(&t.key, &sent).await;
    let stats = &detail["tracking"];
    assert_eq!(
        (stats["opens"].as_i64(), stats["opens_machine"].as_i64()),
        (Some(3), Some(2))
    );
    assert_eq!(stats["clicks"], 1);
    let links: Vec<&str> = stats["links"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["url"].as_str().unwrap())
        .collect();
    assert_eq!(
        links,
        [
            "https://shop.example.com/orders/1",
            "http://shop.example.com/track?id=7&lang=en",
            "https://shop.example.com/help"
        ]
    );
    assert_eq!(stats["links"][1]["clicks"], 1);

    // Webhooks: the documented payloads, first and machine set.
    deliver(&app, &receiver, 5).await;
    let events: Vec<Value> = receiver
        .requests()
        .iter()
        .map(|(_, body)| serde_json::from_str(body).unwrap())
        .collect();
    let opened: Vec<&Value> = events.iter().filter(|e| e["type"] == "message.opened").collect();
    assert_eq!(opened.len(), 3);
    assert_eq!(
        (
            opened[0]["data"]["first"].clone(),
            opened[0]["data"]["machine"].clone()
        ),
        (json!(true), json!(true))
    );
    assert_eq!(
        (
            opened[1]["data"]["first"].clone(),
            opened[1]["data"]["machine"].clone()
        ),
        (json!(false), json!(false))
    );
    assert_eq!(
        opened[1]["data"]["ip"],
        Value::Null,
        "IP addresses are not stored by default"
    );
    let clicked: Vec<&Value> = events.iter().filter(|e| e["type"] == "message.clicked").collect();
    assert_eq!(clicked.len(), 1);
    assert_eq!(
        clicked[0]["data"]["url"],
        "http://shop.example.com/track?id=7&lang=en"
    );
    assert_eq!(clicked[0]["data"]["link"], 1);
    assert_documented(&receiver.requests());

    // The server's day.
    let stats = json_of(
        app.get(&format!("/v1/servers/{}/stats", t.server_id), &t.token)
            .await,
        200,
    )
    .await;
    let today = &stats["days"][0];
    assert_eq!(today["accepted"], 1);
    assert_eq!(today["delivered"], 1);
    assert_eq!(today["opened"], json!({"total": 3, "unique": 1, "machine": 2}));
    for bad in [
        "from=yesterday",
        "to=-262143-01-01",
        "from=2026-12-01&to=2026-11-01",
        "from=1900-01-01",
    ] {
        assert_error(
            app.get(&format!("/v1/servers/{}/stats?{bad}", t.server_id), &t.token)
                .await,
            400,
            "invalid_query",
        )
        .await;
    }
    assert_eq!(today["clicked"]["total"], 1);
    let other = app
        .tenant("other@example.com", "other.test", "live", "ed25519")
        .await;
    assert_error(
        app.get(&format!("/v1/servers/{}/stats", t.server_id), &other.token)
            .await,
        404,
        "not_found",
    )
    .await;

    // Off by default, and a send can turn the server's default off.
    let plain = app
        .send(
            &t.key,
            &json!({"from": "a@shop.test", "to": "y@example.org", "html": HTML}),
        )
        .await;
    let source = app.source(&t.key, plain["id"].as_str().unwrap()).await;
    let html = MessageParser::default()
        .parse(&source[..])
        .unwrap()
        .body_html(0)
        .unwrap()
        .to_string();
    assert!(
        !html.contains("tern.test/c/") && !html.contains("tern.test/o/"),
        "{html}"
    );
}

#[tokio::test]
async fn a_verified_tracking_host_carries_the_tracked_urls() {
    let port = free_port();
    let _dns = Dnsmasq::start(
        port,
        &[
            "--host-record=tern.test,127.0.0.1".into(),
            "--cname=track.shop.test,tern.test".into(),
        ],
    );
    let app = spawn_app_with(|s| {
        s.dns.nameservers = vec![std::net::SocketAddr::from(([127, 0, 0, 1], port))];
        s.dns.timeout_ms = 3000;
    })
    .await;
    let t = app
        .tenant("host@example.com", "shop.test", "development", "ed25519")
        .await;
    let path = format!("/v1/servers/{}", t.server_id);
    let server = json_of(
        app.patch(
            &path,
            &t.token,
            &json!({"tracking_host": "Track.Shop.test", "track_clicks": true}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(server["tracking"]["host"], "track.shop.test");
    assert_eq!(server["tracking"]["record"]["record_type"], "CNAME");
    assert_eq!(server["tracking"]["record"]["value"], "tern.test");
    assert_eq!(server["tracking"]["record"]["status"], "pending");
    assert_eq!(
        server["tracking"]["base_url"], "https://tern.test",
        "unverified: Tern's host"
    );
    assert_error(
        app.patch(&path, &t.token, &json!({"tracking_host": "not a host"}))
            .await,
        422,
        "invalid_tracking_host",
    )
    .await;

    let server = json_of(
        app.post(&format!("{path}/tracking/verify"), &t.token, &json!({}))
            .await,
        200,
    )
    .await;
    assert_eq!(server["tracking"]["record"]["status"], "ok", "{server}");
    assert_eq!(server["tracking"]["base_url"], "https://track.shop.test");
    let sent = app
        .send(&t.key, &json!({"from": "a@shop.test", "to": "x@example.org", "html": "<a href=\"https://shop.example.com\">x</a>"}))
        .await;
    let source = app.source(&t.key, sent["id"].as_str().unwrap()).await;
    let html = MessageParser::default()
        .parse(&source[..])
        .unwrap()
        .body_html(0)
        .unwrap()
        .to_string();
    assert!(html.contains("href=\"https://track.shop.test/c/"), "{html}");

    // Another tenant cannot track on the same host.
    let other = app
        .tenant("thief@example.com", "thief.test", "development", "ed25519")
        .await;
    assert_error(
        app.patch(
            &format!("/v1/servers/{}", other.server_id),
            &other.token,
            &json!({"tracking_host": "track.shop.test"}),
        )
        .await,
        409,
        "tracking_host_taken",
    )
    .await;

    // Removed: back to Tern's host.
    let server = json_of(
        app.patch(&path, &t.token, &json!({"tracking_host": ""})).await,
        200,
    )
    .await;
    assert_eq!(server["tracking"]["host"], Value::Null);
    assert_error(
        app.post(&format!("{path}/tracking/verify"), &t.token, &json!({}))
            .await,
        409,
        "no_tracking_host",
    )
    .await;
}
