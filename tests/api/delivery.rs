//! Live servers deliver: API → queue → worker → SMTP sinks on loopback.

use serde_json::json;
use tern::delivery::worker::Worker;
use tern::mail::verp::{Verp, VerpTarget};

use crate::helpers::{json_of, loopback_route, recipient, spawn_app_with};
use crate::peers::Sink;

#[tokio::test]
async fn queued_mail_is_delivered_bounced_or_retried_by_the_worker() {
    let ok = Sink::start(&[]);
    let hard = Sink::start(&["-f", "rcpt"]);
    let soft = Sink::start(&["-r", "rcpt"]);
    let app = spawn_app_with(|s| {
        s.delivery.transports = vec![
            loopback_route("example.org", ok.port),
            loopback_route("bounce.test", hard.port),
            loopback_route("later.test", soft.port),
        ];
        s.delivery.retry_schedule_secs = vec![3600];
    })
    .await;
    let t = app.live_tenant("ann@example.com", "shop.test").await;
    let sent = app.send(&t.key, &json!({"from": "a@shop.test", "to": ["x@example.org", "y@example.org", "z@bounce.test", "w@later.test"],
                    "subject": "hello", "text": "Body\n.with a dot line\n"})).await;
    let id = sent["id"].as_str().unwrap();
    // Suppressed after acceptance, before delivery: not delivered.
    let late = app
        .send(
            &t.key,
            &json!({"from": "a@shop.test", "to": "gone@example.org", "text": "x"}),
        )
        .await;
    sqlx::query("INSERT INTO suppressions (server_id, address, reason) VALUES ($1, 'gone@example.org', 'hard_bounce')")
        .bind(t.server_id)
        .execute(&app.db)
        .await
        .unwrap();

    let worker = Worker::new(app.db.clone(), app.settings.clone()).await.unwrap();
    assert_eq!(worker.run_once().await.unwrap(), 5);
    let late = app.message(&t.key, &late).await;
    assert_eq!(late["recipients"][0]["status"], "suppressed");
    assert_eq!(worker.run_once().await.unwrap(), 0, "nothing is due any more");

    let detail = json_of(app.get(&format!("/v1/messages/{id}"), &t.key).await, 200).await;
    let status = |address: &str| recipient(&detail, address).clone();
    assert_eq!(status("x@example.org")["status"], "sent");
    assert_eq!(status("y@example.org")["status"], "sent");
    assert!(
        status("x@example.org")["last_reply"]
            .as_str()
            .unwrap()
            .starts_with("250")
    );
    assert_eq!(status("z@bounce.test")["status"], "bounced");
    let later = status("w@later.test");
    assert_eq!(later["status"], "deferred");
    assert_eq!(later["attempts"], 1);
    assert!(later["next_attempt_at"].is_string());
    let kinds: Vec<&str> = detail["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"sent") && kinds.contains(&"bounced") && kinds.contains(&"deferred"),
        "{kinds:?}"
    );

    // One transaction for both example.org recipients, from a VERP address
    // naming the message; the message itself arrives intact.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let dumps = ok.dumps();
    assert_eq!(dumps.len(), 1, "{dumps:?}");
    let mail_from = dumps[0]
        .lines()
        .find_map(|l| l.strip_prefix("X-Mail-Args: <"))
        .unwrap()
        .trim_end_matches('>');
    assert!(mail_from.ends_with("@rp.shop.test"), "{mail_from}");
    let key: Vec<u8> = sqlx::query_scalar("SELECT value FROM instance_secrets WHERE name = 'verp_hmac'")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(
        Verp::new(&key).decode(mail_from),
        Ok(VerpTarget::Message(id.parse().unwrap()))
    );
    assert!(dumps[0].contains("DKIM-Signature:") && dumps[0].contains("\n.with a dot line"));

    // The retry comes due; the schedule (one retry) has run out: failed.
    sqlx::query("UPDATE recipients SET next_attempt_at = now() WHERE status = 'deferred'")
        .execute(&app.db)
        .await
        .unwrap();
    assert_eq!(worker.run_once().await.unwrap(), 1);
    let detail = json_of(app.get(&format!("/v1/messages/{id}"), &t.key).await, 200).await;
    let later = recipient(&detail, "w@later.test");
    assert_eq!(later["status"], "failed");
    assert_eq!(later["attempts"], 2);
}

#[tokio::test]
async fn a_worker_runs_transactions_concurrently_within_its_limits() {
    // Each DATA reply takes a second: six sequential transactions would
    // take six seconds.
    let slow = Sink::start(&["-w", "1"]);
    let app = spawn_app_with(|s| {
        s.delivery.transports = vec![loopback_route("example.org", slow.port)];
        s.delivery.per_domain_concurrency = 6;
    })
    .await;
    let t = app.live_tenant("ann@example.com", "shop.test").await;
    for i in 0..6 {
        let body = json!({"from": "a@shop.test", "to": format!("r{i}@example.org"), "text": "x"});
        app.send(&t.key, &body).await;
    }
    let worker = Worker::new(app.db.clone(), app.settings.clone()).await.unwrap();
    let start = std::time::Instant::now();
    assert_eq!(worker.run_once().await.unwrap(), 6);
    assert!(
        start.elapsed() < std::time::Duration::from_secs(4),
        "took {:?}",
        start.elapsed()
    );
    let sent: i64 = sqlx::query_scalar("SELECT count(*) FROM recipients WHERE status = 'sent'")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(sent, 6);
}

#[tokio::test]
async fn a_long_transaction_keeps_its_lease_and_is_not_cut_mid_data() {
    // A lease of two seconds; the server takes three to answer DATA. The
    // lease is renewed while the transaction runs: no other worker can
    // claim the recipient meanwhile, and the transaction is not cut off
    // (a cut after the final dot would mean a second copy on the retry).
    let slow = Sink::start(&["-w", "3"]);
    let app = spawn_app_with(|s| {
        s.delivery.transports = vec![loopback_route("example.org", slow.port)];
        s.delivery.lease_secs = 2;
    })
    .await;
    let t = app.live_tenant("ann@example.com", "shop.test").await;
    let body = json!({"from": "a@shop.test", "to": "r@example.org", "text": "x"});
    let sent = app.send(&t.key, &body).await;
    let worker = Worker::new(app.db.clone(), app.settings.clone()).await.unwrap();
    let run = tokio::spawn(async move { worker.run_once().await.map_err(|e| format!("{e:#}")) });
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let other = tern::db::queue::claim(&app.db, "other", 10, std::time::Duration::from_secs(60))
        .await
        .unwrap();
    assert!(other.is_empty(), "another worker claimed a recipient in flight");
    assert_eq!(run.await.unwrap(), Ok(1));
    let r = app.message(&t.key, &sent).await["recipients"][0].clone();
    assert_eq!(r["status"], "sent", "{r}");
    assert_eq!(r["attempts"], 1, "{r}");
}

#[tokio::test]
async fn an_outcome_the_database_misses_once_is_stored_later_and_sent_once() {
    // The sink takes 2 s to answer the final dot; meanwhile the database
    // drops every connection and refuses new ones, so the first try to
    // store the 250 fails.
    let sink = Sink::start(&["-W", ".:4"]);
    let app = spawn_app_with(|s| {
        s.delivery.transports = vec![loopback_route("example.org", sink.port)];
        s.delivery.lease_secs = 30;
    })
    .await;
    let t = app.live_tenant("ann@example.com", "shop.test").await;
    let sent = app
        .send(
            &t.key,
            &json!({"from": "a@shop.test", "to": "once@example.org", "text": "x"}),
        )
        .await;
    let worker = Worker::new(app.db.clone(), app.settings.clone()).await.unwrap();
    let run = tokio::spawn(async move { worker.run_once().await.map_err(|e| format!("{e:#}")) });

    let admin = sqlx::PgPool::connect(&format!("{}/postgres", crate::helpers::admin_url()))
        .await
        .unwrap();
    let db = &app.db_name;
    // Cut only once the worker is in the transaction: it holds the lease
    // and has had time to hand over the message (the reply then takes 4 s).
    for _ in 0..100 {
        let leased: i64 = sqlx::query_scalar("SELECT count(*) FROM recipients WHERE lease_owner IS NOT NULL")
            .fetch_one(&app.db)
            .await
            .unwrap();
        if leased > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(1000)).await;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        r#"ALTER DATABASE "{db}" ALLOW_CONNECTIONS false"#
    )))
    .execute(&admin)
    .await
    .unwrap();
    sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1")
        .bind(db)
        .execute(&admin)
        .await
        .unwrap();
    // The 250 arrives in about 3 s; storing it fails until connections return.
    tokio::time::sleep(std::time::Duration::from_millis(4500)).await;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        r#"ALTER DATABASE "{db}" ALLOW_CONNECTIONS true"#
    )))
    .execute(&admin)
    .await
    .unwrap();
    assert_eq!(run.await.unwrap(), Ok(1));

    let detail = app.message(&t.key, &sent).await;
    let once = recipient(&detail, "once@example.org");
    assert_eq!(
        (once["status"].as_str(), once["attempts"].as_i64()),
        (Some("sent"), Some(1)),
        "{once}"
    );
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(sink.dumps().len(), 1);
}
