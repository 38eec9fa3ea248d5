//! Real worker processes (`tern serve --role worker`) against one database:
//! no recipient delivered twice, and a SIGKILL mid-batch loses nothing.

use std::collections::HashSet;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::{TestApp, spawn_app};
use crate::peers::Sink;

/// A `tern serve --role worker` process, with probes and metrics on
/// `ops_port`; killed on drop.
struct WorkerProcess {
    child: Child,
    ops_port: u16,
}

impl WorkerProcess {
    /// `concurrency` limits the worker's transactions at once.
    fn start(app: &TestApp, sink_port: u16, lease_secs: u64, concurrency: usize) -> WorkerProcess {
        WorkerProcess::start_with(app, &[("example.org", sink_port)], lease_secs, concurrency)
    }

    /// With a transport rule per `(domain, port)`.
    fn start_with(
        app: &TestApp,
        routes: &[(&str, u16)],
        lease_secs: u64,
        concurrency: usize,
    ) -> WorkerProcess {
        WorkerProcess::start_limited(app, routes, lease_secs, concurrency, concurrency)
    }

    /// With at most `per_domain` of the transactions to one domain.
    fn start_limited(
        app: &TestApp,
        routes: &[(&str, u16)],
        lease_secs: u64,
        concurrency: usize,
        per_domain: usize,
    ) -> WorkerProcess {
        let transports: String = routes
            .iter()
            .map(|(domain, port)| {
                format!(
                    "[[delivery.transports]]\ndomain = \"{domain}\"\nhost = \"127.0.0.1\"\nport = {port}\n"
                )
            })
            .collect();
        let config = std::env::temp_dir().join(format!("tern-worker-{}.toml", uuid::Uuid::new_v4()));
        let ops_port = crate::helpers::free_port();
        std::fs::write(
            &config,
            format!(
                "public_hostname = \"tern.test\"\n\
                 [database]\nurl = \"{}\"\nmax_connections = 4\n\
                 [http]\nops_listen = \"127.0.0.1:{ops_port}\"\n\
                 [log]\nfilter = \"warn\"\n\
                 [secrets]\nkey = \"{secrets_key}\"\n\
                 [delivery]\nlease_secs = {lease_secs}\npoll_interval_ms = 200\nbatch_size = 10\n\
                 concurrency = {concurrency}\nper_domain_concurrency = {per_domain}\n\
                 {transports}",
                app.settings.database.url.expose(),
                secrets_key = app
                    .settings
                    .secrets
                    .key
                    .as_ref()
                    .map(|k| k.expose().as_str())
                    .unwrap_or_default(),
            ),
        )
        .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_tern"))
            .arg("--config")
            .arg(&config)
            .args(["serve", "--role", "worker"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start tern worker");
        WorkerProcess { child, ops_port }
    }

    fn kill(&mut self) {
        let _ = self.child.kill(); // SIGKILL
        let _ = self.child.wait();
    }

    /// A counter's value in the worker's `/metrics`.
    async fn metric(&self, line_start: &str) -> f64 {
        let text = reqwest::get(format!("http://127.0.0.1:{}/metrics", self.ops_port))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(line_start))
            .map_or(0.0, |v| v.trim().parse().unwrap())
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn send_many(app: &TestApp, key: &str, n: usize) {
    for i in 0..n {
        let body =
            json!({"from": "a@shop.test", "to": format!("r{i}@example.org"), "text": format!("message {i}")});
        app.send(key, &body).await;
    }
}

async fn wait_until_sent(app: &TestApp, n: i64, limit: Duration) {
    wait_until_count(app, "status = 'sent'", n, limit).await;
}

/// Waits until exactly `n` recipients match `condition` (SQL).
async fn wait_until_count(app: &TestApp, condition: &str, n: i64, limit: Duration) {
    let start = Instant::now();
    let query = format!("SELECT count(*) FROM recipients WHERE {condition}");
    loop {
        let count: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(query.clone()))
            .fetch_one(&app.db)
            .await
            .unwrap();
        if count == n {
            return;
        }
        assert!(
            start.elapsed() < limit,
            "only {count} of {n} with {condition} after {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn recipients_of(dumps: &[String]) -> Vec<String> {
    dumps
        .iter()
        .flat_map(|d| {
            d.lines()
                .filter_map(|l| l.strip_prefix("X-Rcpt-Args: ").map(str::to_string))
                .collect::<Vec<_>>()
        })
        .collect()
}

#[tokio::test]
async fn two_worker_processes_never_deliver_a_recipient_twice() {
    let sink = Sink::start(&[]);
    let app = spawn_app().await;
    let t = app.live_tenant("ann@example.com", "shop.test").await;
    send_many(&app, &t.key, 60).await;
    let a = WorkerProcess::start(&app, sink.port, 60, 5);
    let b = WorkerProcess::start(&app, sink.port, 60, 5);
    wait_until_sent(&app, 60, Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let delivered = recipients_of(&sink.dumps());
    let unique: HashSet<&String> = delivered.iter().collect();
    assert_eq!(delivered.len(), 60, "a recipient was delivered twice");
    assert_eq!(unique.len(), 60);

    // Each worker counts what it delivered; together, every recipient once.
    let sent = r#"tern_recipients_total{outcome="sent"} "#;
    assert_eq!(a.metric(sent).await + b.metric(sent).await, 60.0);
    let latency = "tern_delivery_latency_seconds_count ";
    assert_eq!(a.metric(latency).await + b.metric(latency).await, 60.0);
    let depth = r#"tern_queue_depth{status="queued"} "#;
    assert_eq!(a.metric(depth).await, 0.0);
}

#[tokio::test]
async fn a_killed_worker_loses_no_message() {
    // Two transactions at a time, each waiting two seconds for its DATA
    // reply: at three seconds two are delivered, two in flight, one waiting.
    let sink = Sink::start(&["-w", "2"]);
    let app = spawn_app().await;
    let t = app.live_tenant("ann@example.com", "shop.test").await;
    send_many(&app, &t.key, 5).await;
    let mut first = WorkerProcess::start(&app, sink.port, 10, 2);
    tokio::time::sleep(Duration::from_millis(3000)).await;
    first.kill();
    let leased: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM recipients WHERE status = 'queued' AND lease_owner IS NOT NULL",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert!(
        leased > 0,
        "the kill should leave claimed, undelivered recipients"
    );
    let _second = WorkerProcess::start(&app, sink.port, 10, 2);
    wait_until_sent(&app, 5, Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let delivered = recipients_of(&sink.dumps());
    let unique: HashSet<&String> = delivered.iter().collect();
    assert_eq!(unique.len(), 5, "every message arrived");
    // At most the one transaction in flight at the kill is delivered again.
    assert!(
        delivered.len() <= 6,
        "{} deliveries for 5 messages",
        delivered.len()
    );
}

#[tokio::test]
async fn a_slow_destination_does_not_hold_up_the_others() {
    // The slow server takes eight seconds to answer each DATA; the fast one
    // answers at once. The worker runs four transactions at a time, two at
    // most to one domain, and the four slow messages are the oldest: much of
    // what it claims first waits for the slow domain.
    let slow = Sink::start(&["-w", "8"]);
    let fast = Sink::start(&[]);
    let app = spawn_app().await;
    let t = app.live_tenant("ann@example.com", "shop.test").await;
    for i in 0..4 {
        let body = json!({"from": "a@shop.test", "to": format!("s{i}@slow.test"), "text": "slow"});
        app.send(&t.key, &body).await;
    }
    send_many(&app, &t.key, 30).await;
    let routes = [("example.org", fast.port), ("slow.test", slow.port)];
    let _worker = WorkerProcess::start_limited(&app, &routes, 60, 4, 2);
    // Thirty fast messages behind four slow ones, before the first slow answer.
    wait_until_sent(&app, 30, Duration::from_secs(6)).await;
    let slow_sent: i64 =
        sqlx::query_scalar("SELECT count(*) FROM recipients WHERE domain = 'slow.test' AND status = 'sent'")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(slow_sent, 0, "the slow server cannot have answered yet");
    wait_until_sent(&app, 34, Duration::from_secs(60)).await;
}

/// Copies message `template` `n` times, each copy with one recipient at
/// `domain`, due `age_secs` ago: a backlog without `n` API calls.
async fn copy_message(app: &TestApp, template: &str, n: i64, domain: &str, age_secs: f64) {
    let template: uuid::Uuid = template.parse().unwrap();
    sqlx::query(
        "WITH ids AS (SELECT gen_random_uuid() AS mid, g FROM generate_series(1, $2) g),
         m AS (
            INSERT INTO messages (id, server_id, domain_id, message_id, mail_from, from_header, subject, size)
            SELECT ids.mid, t.server_id, t.domain_id, t.message_id, t.mail_from, t.from_header, t.subject, t.size
            FROM ids, messages t WHERE t.id = $1
         ), s AS (
            INSERT INTO message_sources (message_id, raw)
            SELECT ids.mid, ms.raw FROM ids, message_sources ms WHERE ms.message_id = $1
         )
         INSERT INTO recipients (id, message_id, server_id, address, domain, kind, status, next_attempt_at)
         SELECT gen_random_uuid(), ids.mid, t.server_id, 'c' || g || '@' || $3, $3, 'to', 'queued',
                now() - make_interval(secs => $4)
         FROM ids, messages t WHERE t.id = $1",
    )
    .bind(template)
    .bind(n)
    .bind(domain)
    .bind(age_secs)
    .execute(&app.db)
    .await
    .unwrap();
}

#[tokio::test]
async fn a_long_backlog_at_a_slow_domain_starves_no_other_domain_or_tenant() {
    // 2,000 recipients at a domain whose server takes 2 s to answer DATA,
    // the oldest in the queue, each its own message (its own job), far
    // more than the worker can hold (10 x its concurrency). Behind them,
    // 50 at a fast domain from the same tenant and 50 from another tenant.
    let slow = Sink::start(&["-w", "2"]);
    let fast = Sink::start(&[]);
    let app = spawn_app().await;
    let a = app.live_tenant("ann@example.com", "shop.test").await;
    let b = app.live_tenant("bob@example.com", "other.test").await;
    let slow_one = app
        .send(
            &a.key,
            &json!({"from": "a@shop.test", "to": "s@slow.test", "text": "slow"}),
        )
        .await;
    copy_message(&app, slow_one["id"].as_str().unwrap(), 1999, "slow.test", 60.0).await;
    let fast_a = app
        .send(
            &a.key,
            &json!({"from": "a@shop.test", "to": "f@example.org", "text": "fast"}),
        )
        .await;
    copy_message(&app, fast_a["id"].as_str().unwrap(), 49, "example.org", 30.0).await;
    let fast_b = app
        .send(
            &b.key,
            &json!({"from": "b@other.test", "to": "g@example.org", "text": "fast"}),
        )
        .await;
    copy_message(&app, fast_b["id"].as_str().unwrap(), 49, "example.org", 30.0).await;

    let routes = [("example.org", fast.port), ("slow.test", slow.port)];
    let _worker = WorkerProcess::start_limited(&app, &routes, 60, 20, 5);
    wait_until_count(
        &app,
        "domain = 'example.org' AND status = 'sent'",
        100,
        Duration::from_secs(15),
    )
    .await;
    // The slow domain keeps going at its own pace (five at a time, 2 s
    // each), and what was pushed back kept its attempts uncounted.
    let start = Instant::now();
    loop {
        let (slow_sent, counted): (i64, i64) = sqlx::query_as(
            "SELECT count(*) FILTER (WHERE status = 'sent'),
                    count(*) FILTER (WHERE status = 'queued' AND attempts > 0 AND lease_owner IS NULL)
             FROM recipients WHERE domain = 'slow.test'",
        )
        .fetch_one(&app.db)
        .await
        .unwrap();
        assert_eq!(counted, 0, "a pushed-back recipient had its attempt counted");
        if slow_sent >= 10 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "the slow domain sent only {slow_sent}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn sigterm_finishes_what_is_under_way_and_gives_back_the_rest() {
    // Two transactions at a time, each waiting three seconds for its DATA
    // reply; six messages: two under way, four waiting when it is stopped.
    let slow = Sink::start(&["-w", "3"]);
    let app = spawn_app().await;
    let t = app.live_tenant("ann@example.com", "shop.test").await;
    send_many(&app, &t.key, 6).await;
    let mut worker = WorkerProcess::start(&app, slow.port, 60, 2);
    // Once everything is claimed, two transactions start at once.
    wait_until_count(&app, "lease_owner IS NOT NULL", 6, Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    let term = Command::new("kill")
        .args(["-TERM", &worker.child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let start = Instant::now();
    let exited = loop {
        if let Some(status) = worker.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the worker did not stop"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(exited.success(), "{exited:?}");
    let (sent, queued, leased): (i64, i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE status = 'sent'),
                count(*) FILTER (WHERE status = 'queued'),
                count(*) FILTER (WHERE lease_owner IS NOT NULL)
         FROM recipients",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(
        (sent, queued, leased),
        (2, 4, 0),
        "under way finished, the rest given back"
    );
}
