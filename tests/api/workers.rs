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
                 [delivery]\nlease_secs = {lease_secs}\npoll_interval_ms = 200\nbatch_size = 10\n\
                 concurrency = {concurrency}\nper_domain_concurrency = {per_domain}\n\
                 {transports}",
                app.settings.database.url.expose()
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
