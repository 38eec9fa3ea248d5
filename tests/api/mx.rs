//! Delivery through DNS: dnsmasq serves MX and A records that lead to sinks
//! on loopback addresses sharing one port (`delivery.port`).

use serde_json::json;
use tern::delivery::worker::Worker;
use tern::mail::verp::{Verp, VerpTarget};

use crate::dkim::{dkim_txt, dkimpy_verifies};
use crate::helpers::{Dnsmasq, free_port, json_of, loopback_route, recipient, spawn_app_with};
use crate::peers::{Sink, TlsPeer};

/// The dump of the transaction that carried `address`.
fn dump_for<'a>(dumps: &'a [String], address: &str) -> &'a str {
    dumps
        .iter()
        .find(|d| d.contains(&format!("X-Rcpt-Args: <{address}>")))
        .unwrap_or_else(|| panic!("nothing for {address} in {dumps:?}"))
}

#[tokio::test]
async fn mail_follows_mx_records_with_fallbacks_and_verifies_on_arrival() {
    let port = free_port();
    let first = Sink::start_at("127.0.0.2", port, &[]);
    let second = Sink::start_at("127.0.0.3", port, &[]);
    let dns_port = crate::helpers::free_port();
    let records = [
        "--mx-host=alpha.test,mx.alpha.test,10",
        "--host-record=mx.alpha.test,127.0.0.2",
        "--mx-host=beta.test,mx.beta.test,10",
        "--host-record=mx.beta.test,127.0.0.3",
        // The preferred MX refuses connections (nothing listens there).
        "--mx-host=fallback.test,mx1.fallback.test,10",
        "--mx-host=fallback.test,mx2.fallback.test,20",
        "--host-record=mx1.fallback.test,127.0.0.4",
        "--host-record=mx2.fallback.test,127.0.0.3",
        // No MX: the domain's own address (RFC 5321 §5.1).
        "--host-record=plain.test,127.0.0.2",
        // Null MX (RFC 7505).
        "--mx-host=null.test,.,0",
    ];
    let _dns = Dnsmasq::start(dns_port, &records.map(String::from));
    let app = spawn_app_with(|s| {
        s.dns.nameservers = vec![format!("127.0.0.1:{dns_port}").parse().unwrap()];
        s.delivery.port = port;
    })
    .await;
    let t = app.live_tenant("ann@example.com", "shop.test").await;
    let sent = app.send(&t.key, &json!({"from": "a@shop.test",
                    "to": ["ann@alpha.test", "bob@beta.test", "carl@fallback.test", "dora@plain.test", "eve@null.test"],
                    "subject": "Routing", "text": "Hello by MX\n"})).await;
    let worker = Worker::new(app.db.clone(), app.settings.clone()).await.unwrap();
    assert_eq!(worker.run_once().await.unwrap(), 5);

    let detail = app.message(&t.key, &sent).await;
    let host_of = |address: &str| {
        let r = recipient(&detail, address);
        assert_eq!(r["status"], "sent", "{r}");
        r["last_host"].as_str().unwrap().to_string()
    };
    assert_eq!(host_of("ann@alpha.test"), "mx.alpha.test");
    assert_eq!(host_of("bob@beta.test"), "mx.beta.test");
    assert_eq!(host_of("carl@fallback.test"), "mx2.fallback.test");
    assert_eq!(host_of("dora@plain.test"), "plain.test");
    let eve = recipient(&detail, "eve@null.test");
    assert_eq!(eve["status"], "failed", "{eve}");
    assert!(eve["last_reply"].as_str().unwrap().contains("null MX"), "{eve}");

    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let (first, second) = (first.dumps(), second.dumps());
    assert_eq!(first.len(), 2, "alpha and plain: {first:?}");
    assert_eq!(second.len(), 2, "beta and fallback: {second:?}");
    dump_for(&first, "dora@plain.test");
    dump_for(&second, "carl@fallback.test");
    dump_for(&second, "bob@beta.test");

    // What arrived verifies with dkimpy, from a VERP address naming the recipient.
    let domain = json_of(
        app.get(&format!("/v1/domains/{}", t.domain_id), &t.token).await,
        200,
    )
    .await;
    let arrived = dump_for(&first, "ann@alpha.test");
    if let Err(output) = dkimpy_verifies(arrived.as_bytes(), &dkim_txt(&domain)) {
        panic!("the delivered message does not verify:\n{output}\n{arrived}");
    }
    let mail_from = arrived
        .lines()
        .find_map(|l| l.strip_prefix("X-Mail-Args: <"))
        .and_then(|l| l.split('>').next())
        .unwrap();
    let key: Vec<u8> = sqlx::query_scalar("SELECT value FROM instance_secrets WHERE name = 'verp_hmac'")
        .fetch_one(&app.db)
        .await
        .unwrap();
    let ann_id = recipient(&detail, "ann@alpha.test")["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        Verp::new(&key).decode(mail_from),
        Ok(VerpTarget::Recipient(ann_id))
    );
}

#[tokio::test]
async fn a_deferred_recipient_is_delivered_on_a_later_attempt() {
    let port = free_port();
    let busy = Sink::start_at("127.0.0.1", port, &["-r", "rcpt"]);
    let app = spawn_app_with(|s| {
        s.delivery.transports = vec![loopback_route("later.test", port)];
        s.delivery.retry_schedule_secs = vec![1, 3600];
    })
    .await;
    let t = app.live_tenant("ann@example.com", "shop.test").await;
    let body = json!({"from": "a@shop.test", "to": "w@later.test", "text": "eventually"});
    let sent = app.send(&t.key, &body).await;
    let worker = Worker::new(app.db.clone(), app.settings.clone()).await.unwrap();
    assert_eq!(worker.run_once().await.unwrap(), 1);
    let first = app.message(&t.key, &sent).await;
    assert_eq!(first["recipients"][0]["status"], "deferred");
    assert_eq!(
        worker.run_once().await.unwrap(),
        0,
        "not due before its retry time"
    );

    // The server recovers; the retry comes due after about a second.
    drop(busy);
    let ok = Sink::start_at("127.0.0.1", port, &[]);
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    assert_eq!(worker.run_once().await.unwrap(), 1);
    let detail = app.message(&t.key, &sent).await;
    let w = &detail["recipients"][0];
    assert_eq!(w["status"], "sent", "{w}");
    assert_eq!(w["attempts"], 2);
    let kinds: Vec<&str> = detail["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .filter(|k| *k == "deferred" || *k == "sent")
        .collect();
    assert_eq!(kinds, ["deferred", "sent"]);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(ok.dumps().len(), 1);
}

#[tokio::test]
async fn each_recipient_of_one_transaction_gets_its_own_outcome() {
    let peer = TlsPeer::start();
    let app = spawn_app_with(|s| {
        s.delivery.transports = vec![loopback_route("mixed.test", peer.port)];
    })
    .await;
    let t = app.live_tenant("ann@example.com", "shop.test").await;
    let body = json!({"from": "a@shop.test",
                      "to": ["ok@mixed.test", "reject@mixed.test", "defer@mixed.test"], "text": "hi"});
    let sent = app.send(&t.key, &body).await;
    let worker = Worker::new(app.db.clone(), app.settings.clone()).await.unwrap();
    assert_eq!(worker.run_once().await.unwrap(), 3);
    let detail = app.message(&t.key, &sent).await;
    let status = |address: &str| {
        recipient(&detail, address)["status"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(status("ok@mixed.test"), "sent");
    assert_eq!(status("reject@mixed.test"), "bounced");
    assert_eq!(status("defer@mixed.test"), "deferred");
    let rejected = recipient(&detail, "reject@mixed.test");
    assert!(
        rejected["last_reply"].as_str().unwrap().starts_with("550 5.1.1"),
        "{rejected}"
    );
    // One transaction carried them all; only the accepted one was delivered.
    let messages = peer.messages();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0]["rcpt_tos"], json!(["ok@mixed.test"]));
}

#[tokio::test]
async fn a_message_over_the_servers_size_limit_fails_unsent() {
    let peer = TlsPeer::start_small();
    let app = spawn_app_with(|s| {
        s.delivery.transports = vec![loopback_route("small.test", peer.port)];
    })
    .await;
    let t = app.live_tenant("ann@example.com", "shop.test").await;
    let worker = Worker::new(app.db.clone(), app.settings.clone()).await.unwrap();
    let short = json!({"from": "a@shop.test", "to": "fits@small.test", "text": "short"});
    let long = json!({"from": "a@shop.test", "to": "big@small.test", "text": "x".repeat(3000)});
    let short = app.send(&t.key, &short).await;
    let long = app.send(&t.key, &long).await;
    assert_eq!(worker.run_once().await.unwrap(), 2);
    assert_eq!(
        app.message(&t.key, &short).await["recipients"][0]["status"],
        "sent"
    );
    let big = app.message(&t.key, &long).await["recipients"][0].clone();
    // Tern refused it, not the server: `failed`, not `bounced`.
    assert_eq!(big["status"], "failed", "{big}");
    assert!(
        big["last_reply"].as_str().unwrap().starts_with("552 5.3.4"),
        "{big}"
    );
    let messages = peer.messages();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0]["rcpt_tos"], json!(["fits@small.test"]));
}

#[tokio::test]
async fn no_second_copy_after_the_final_dot_and_no_retries_for_a_domain_without_addresses() {
    let port = free_port();
    // The preferred MX takes the message and hangs up before answering.
    let silent = Sink::start_at("127.0.0.2", port, &["-q", "."]);
    let backup = Sink::start_at("127.0.0.3", port, &[]);
    let dns_port = crate::helpers::free_port();
    let records = [
        "--mx-host=lost.test,mx1.lost.test,10",
        "--mx-host=lost.test,mx2.lost.test,20",
        "--host-record=mx1.lost.test,127.0.0.2",
        "--host-record=mx2.lost.test,127.0.0.3",
        // A name with neither MX nor A/AAAA (only a TXT record).
        "--txt-record=empty.test,nothing here",
    ];
    let _dns = Dnsmasq::start(dns_port, &records.map(String::from));
    let app = spawn_app_with(|s| {
        s.dns.nameservers = vec![format!("127.0.0.1:{dns_port}").parse().unwrap()];
        s.delivery.port = port;
    })
    .await;
    let t = app.live_tenant("ann@example.com", "shop.test").await;
    let sent = app
        .send(
            &t.key,
            &json!({"from": "a@shop.test", "to": ["ann@lost.test", "bob@empty.test"], "text": "once"}),
        )
        .await;
    let worker = Worker::new(app.db.clone(), app.settings.clone()).await.unwrap();
    assert_eq!(worker.run_once().await.unwrap(), 2);
    let detail = app.message(&t.key, &sent).await;
    let ann = recipient(&detail, "ann@lost.test");
    assert_eq!(ann["status"], "deferred", "{ann}");
    assert_eq!(ann["last_host"], "mx1.lost.test", "{ann}");
    let bob = recipient(&detail, "bob@empty.test");
    assert_eq!(bob["status"], "failed", "{bob}");
    assert!(
        bob["last_reply"]
            .as_str()
            .unwrap()
            .contains("no MX and no A/AAAA"),
        "{bob}"
    );
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(backup.dumps().is_empty(), "a second copy went to the backup MX");
    drop(silent);
}
