//! Sending domains: DNS records to publish, and checking them against a real
//! DNS server (dnsmasq on a loopback port).

use std::net::SocketAddr;

use serde_json::{Value, json};

use crate::helpers::{Dnsmasq, assert_error, json_of, spawn_app_with};

/// A domain's DNS record with `purpose`, as the API shows it.
pub fn record<'a>(domain: &'a Value, purpose: &str) -> &'a Value {
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
    let port = crate::helpers::free_port();
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
    assert_eq!(record(&good, "return_path")["publish"], true);
    // SPF is what receivers evaluate for the envelope sender, b+…@rp.good.test:
    // it comes through the CNAME, and the domain's own SPF is left alone.
    assert_eq!(record(&good, "spf")["name"], "rp.good.test");
    assert_eq!(
        record(&good, "spf")["value"],
        "v=spf1 include:_spf.tern.test -all"
    );
    assert_eq!(record(&good, "spf")["publish"], false);

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
            // The tenant's own SPF, which does not name Tern: irrelevant.
            txt(&json!("good.test"), "v=spf1 include:_spf.mail.example -all"),
            // The operator's, reached through the CNAME.
            txt(&json!("rp.tern.test"), "v=spf1 include:_spf.tern.test -all"),
            txt(
                &record(&good, "dkim")["name"],
                record(&good, "dkim")["value"].as_str().unwrap(),
            ),
            "--cname=rp.good.test,rp.tern.test".into(),
            "--host-record=rp.tern.test,127.0.0.1".into(),
            "--mx-host=good.test,tern.test,10".into(),
            txt(&json!("bad.test"), "v=spf1 include:_spf.tern.test ~all"),
            "--cname=rp.bad.test,rp.elsewhere.test".into(),
            "--host-record=rp.elsewhere.test,127.0.0.2".into(),
            txt(
                &json!("rp.elsewhere.test"),
                "v=spf1 include:elsewhere.example ~all",
            ),
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
        ("return_path", "mismatch"),
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

/// Runs `tern doctor` against a dnsmasq serving `records`.
fn doctor(records: &[String]) -> (bool, String) {
    let port = crate::helpers::free_port();
    let _dns = Dnsmasq::start(port, records);
    let config = std::env::temp_dir().join(format!("tern-doctor-{}.toml", uuid::Uuid::new_v4()));
    std::fs::write(
        &config,
        format!(
            "public_hostname = \"tern.test\"\n[dns]\nnameservers = [\"127.0.0.1:{port}\"]\ntimeout_ms = 1000\n\
             [log]\nfilter = \"warn\"\n"
        ),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tern"))
        .arg("--config")
        .arg(&config)
        .arg("doctor")
        .output()
        .unwrap();
    std::fs::remove_file(&config).unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn doctor_checks_the_records_of_the_installation() {
    let spf = || txt(&json!("rp.tern.test"), "v=spf1 include:_spf.tern.test -all");
    let (ok, out) = doctor(&[
        spf(),
        "--mx-host=rp.tern.test,tern.test,10".into(),
        txt(&json!("_spf.tern.test"), "v=spf1 ip4:192.0.2.1 -all"),
        "--host-record=tern.test,127.0.0.1".into(),
    ]);
    assert!(ok, "{out}");
    assert_eq!(out.lines().filter(|l| l.starts_with("ok ")).count(), 4, "{out}");

    // Bounces pointed elsewhere, and no list of sending addresses.
    let (ok, out) = doctor(&[
        spf(),
        "--mx-host=rp.tern.test,mx.elsewhere.test,10".into(),
        "--host-record=tern.test,127.0.0.1".into(),
    ]);
    assert!(!ok, "{out}");
    let line = |start: &str| {
        out.lines()
            .find(|l| l.starts_with(start))
            .unwrap_or_default()
            .to_string()
    };
    assert!(
        line("mismatch").contains("MX") && line("mismatch").contains("10 tern.test"),
        "{out}"
    );
    assert!(line("missing").contains("_spf.tern.test"), "{out}");
    assert!(out.contains("2 of 4"), "{out}");
}
