//! Sending domains: DNS records to publish, and checking them against a real
//! DNS server (dnsmasq on a loopback port).

use std::net::{SocketAddr, UdpSocket};

use serde_json::{Value, json};

use crate::helpers::{Dnsmasq, assert_error, json_of, spawn_app_with};

fn record<'a>(domain: &'a Value, purpose: &str) -> &'a Value {
    domain["dns_records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["purpose"] == purpose)
        .unwrap()
}

fn status(domain: &Value, purpose: &str) -> String {
    record(domain, purpose)["status"].as_str().unwrap().to_string()
}

fn txt(name: &Value, value: &str) -> String {
    format!("--txt-record={},{}", name.as_str().unwrap(), value)
}

#[tokio::test]
async fn published_records_verify_the_domain_and_unlock_live_sending() {
    // Tern generates the DKIM keys, so reserve a port for the DNS server,
    // create the domains, then serve their records on that port.
    let port = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let app = spawn_app_with(|s| s.dns.nameservers = vec![SocketAddr::from(([127, 0, 0, 1], port))]).await;
    let t = app
        .tenant("ann@example.com", "good.test", "live", "ed25519")
        .await;
    let bad = json_of(
        app.post(
            &format!("/v1/servers/{}/domains", t.server_id),
            &t.token,
            &json!({"name": "bad.test", "dkim_algorithm": "ed25519"}),
        )
        .await,
        201,
    )
    .await;
    let good = json_of(
        app.get(&format!("/v1/domains/{}", t.domain_id), &t.token).await,
        200,
    )
    .await;
    assert_eq!(good["verified"], false);
    assert_eq!(good["dns_records"].as_array().unwrap().len(), 4);
    // Never an MX: it would take the tenant's mail (until inbound routes).
    assert!(
        good["dns_records"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["purpose"] != "mx"),
        "{good}"
    );
    assert_eq!(status(&good, "spf"), "pending");
    assert_eq!(record(&good, "return_path")["name"], "rp.good.test");
    assert_eq!(record(&good, "return_path")["value"], "rp.tern.test");
    assert_eq!(
        record(&good, "spf")["value"],
        "v=spf1 a mx include:_spf.tern.test ~all"
    );

    let body = json!({"from": "a@good.test", "to": "b@example.org", "text": "x"});
    assert_error(
        app.post("/v1/messages", &t.key, &body).await,
        422,
        "domain_not_verified",
    )
    .await;

    let _dns = Dnsmasq::start(
        port,
        &[
            txt(&json!("good.test"), "v=spf1 a mx include:_spf.tern.test ~all"),
            txt(
                &record(&good, "dkim")["name"],
                record(&good, "dkim")["value"].as_str().unwrap(),
            ),
            "--cname=rp.good.test,rp.tern.test".into(),
            "--host-record=rp.tern.test,127.0.0.1".into(),
            "--mx-host=good.test,tern.test,10".into(),
            txt(&json!("bad.test"), "v=spf1 include:elsewhere.example ~all"),
            txt(&record(&bad, "dkim")["name"], "v=DKIM1; k=ed25519; p=AAAA"),
        ],
    );

    let checked = json_of(
        app.post(
            &format!("/v1/domains/{}/verify", t.domain_id),
            &t.token,
            &json!({}),
        )
        .await,
        200,
    )
    .await;
    for (purpose, expected) in [
        ("spf", "ok"),
        ("dkim", "ok"),
        ("return_path", "ok"),
        ("dmarc", "missing"),
    ] {
        assert_eq!(status(&checked, purpose), expected, "{purpose}: {checked}");
    }
    assert_eq!(checked["verified"], true);
    assert!(checked["last_checked_at"].is_string());

    let bad_id = bad["id"].as_str().unwrap();
    let bad = json_of(
        app.post(&format!("/v1/domains/{bad_id}/verify"), &t.token, &json!({}))
            .await,
        200,
    )
    .await;
    for (purpose, expected) in [
        ("spf", "mismatch"),
        ("dkim", "mismatch"),
        ("return_path", "missing"),
    ] {
        assert_eq!(status(&bad, purpose), expected, "{purpose}: {bad}");
    }
    assert_eq!(bad["verified"], false);

    let sent = app.send(&t.key, &body).await;
    assert_eq!(sent["recipients"][0]["status"], "queued");
    let refused = json!({"from": "a@bad.test", "to": "b@example.org", "text": "x"});
    assert_error(
        app.post("/v1/messages", &t.key, &refused).await,
        422,
        "domain_not_verified",
    )
    .await;
}
