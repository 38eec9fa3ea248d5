//! The webhooks phases: the dispatcher draining a backlog and keeping up
//! with a steady stream of message events into a receiver that answers 200
//! at once (events/s, state change to arrival p50/p99), `wrk` posting the
//! same body to the same receiver (the ceiling), and what an endpoint with
//! a running dispatcher costs the end-to-end send rate.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use sqlx::PgPool;
use uuid::Uuid;

/// An HTTP receiver on loopback that answers 200 at once and notes when
/// each `webhook-id` arrived.
pub struct Receiver {
    pub url: String,
    arrivals: Arc<Mutex<Vec<(String, SystemTime)>>>,
    /// The first body that arrived, for the ceiling's load tool to post.
    first_body: Arc<Mutex<Option<axum::body::Bytes>>>,
}

impl Receiver {
    pub async fn start() -> anyhow::Result<Receiver> {
        let arrivals = Arc::new(Mutex::new(Vec::new()));
        let first_body = Arc::new(Mutex::new(None));
        let (log, first) = (arrivals.clone(), first_body.clone());
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let (log, first) = (log.clone(), first.clone());
                async move {
                    first
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .get_or_insert(body);
                    let id = headers
                        .get("webhook-id")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_string();
                    if !id.is_empty() {
                        log.lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .push((id, SystemTime::now()));
                    }
                    axum::http::StatusCode::OK
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/hook", listener.local_addr()?);
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(Receiver {
            url,
            arrivals,
            first_body,
        })
    }

    pub fn arrivals(&self) -> Vec<(String, SystemTime)> {
        self.arrivals.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn count(&self) -> usize {
        self.arrivals.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Waits until `n` requests have arrived in all.
    pub async fn wait_for(&self, n: usize, limit: Duration) -> anyhow::Result<()> {
        let start = Instant::now();
        while self.count() < n {
            if start.elapsed() > limit {
                bail!("{} of {n} webhooks arrived after {limit:?}", self.count());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }
}

/// Gives the first server an endpoint at `url` that takes every event.
pub async fn add_endpoint(db: &PgPool, secrets_key: &[u8; 32], url: &str) -> anyhow::Result<Uuid> {
    let id = Uuid::now_v7();
    let key = tern::sealing::SealingKey::from_bytes(secrets_key)?;
    let secret: [u8; 32] = rand::random();
    sqlx::query(
        "INSERT INTO webhook_endpoints (id, server_id, url, secret)
         SELECT $1, id, $2, $3 FROM servers ORDER BY created_at LIMIT 1",
    )
    .bind(id)
    .bind(url)
    .bind(key.seal(&secret, id.as_bytes()))
    .execute(db)
    .await?;
    Ok(id)
}

/// Records `n` `sent` events (as the worker does after a delivery) for
/// recipients already sent, `batch` per statement; the outbox trigger fans
/// each out to the endpoint. With `rate`, paces the statements to it.
pub async fn publish(db: &PgPool, n: usize, batch: usize, rate: Option<f64>) -> anyhow::Result<()> {
    let start = Instant::now();
    let mut done = 0;
    while done < n {
        let size = batch.min(n - done);
        sqlx::query(
            r#"INSERT INTO message_events (message_id, recipient_id, kind, detail)
               SELECT message_id, id, 'sent',
                      '{"host": "127.0.0.1", "tls": false, "code": 250, "enhanced_code": "2.0.0",
                        "reply": "Ok", "attempt": 1}'::jsonb
               FROM recipients WHERE status = 'sent' LIMIT $1"#,
        )
        .bind(size as i64)
        .execute(db)
        .await?;
        done += size;
        if let Some(rate) = rate {
            let due = Duration::from_secs_f64(done as f64 / rate);
            if let Some(wait) = due.checked_sub(start.elapsed()) {
                tokio::time::sleep(wait).await;
            }
        }
    }
    Ok(())
}

/// Percentiles (ms) of state change (the event's `created_at`) to arrival
/// of these arrivals.
async fn latencies(db: &PgPool, arrivals: &[(String, SystemTime)]) -> anyhow::Result<(f64, f64)> {
    let ids: Vec<i64> = arrivals
        .iter()
        .filter_map(|(id, _)| id.strip_prefix("evt_")?.parse().ok())
        .collect();
    let created: HashMap<i64, f64> = sqlx::query_as::<_, (i64, f64)>(
        "SELECT id, extract(epoch FROM created_at)::float8 FROM message_events WHERE id = ANY($1)",
    )
    .bind(&ids)
    .fetch_all(db)
    .await?
    .into_iter()
    .collect();
    let mut ms: Vec<f64> = arrivals
        .iter()
        .filter_map(|(id, at)| {
            let event: i64 = id.strip_prefix("evt_")?.parse().ok()?;
            let arrived = at.duration_since(UNIX_EPOCH).ok()?.as_secs_f64();
            Some((arrived - created.get(&event)?) * 1000.0)
        })
        .collect();
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| {
        ms.get(((ms.len() as f64 * q) as usize).min(ms.len().saturating_sub(1)))
            .copied()
    };
    Ok((at(0.5).unwrap_or(0.0), at(0.99).unwrap_or(0.0)))
}

/// Phase: `n` events were queued while no dispatcher ran, before any
/// arrived; one started at `start`. Returns events/s, start-up included.
pub async fn drained(receiver: &Receiver, n: usize, start: SystemTime) -> anyhow::Result<f64> {
    receiver.wait_for(n, Duration::from_secs(600)).await?;
    let last = receiver
        .arrivals()
        .iter()
        .map(|(_, at)| *at)
        .max()
        .unwrap_or(start);
    Ok(n as f64 / last.duration_since(start)?.as_secs_f64())
}

/// Phase: with the dispatcher running, `n` events published at `rate`/s
/// in statements of 20. Returns events/s and latency p50/p99 (ms).
pub async fn steady(
    db: &PgPool,
    receiver: &Receiver,
    n: usize,
    rate: f64,
) -> anyhow::Result<(f64, f64, f64)> {
    let before = receiver.count();
    let start = SystemTime::now();
    publish(db, n, 20, Some(rate)).await?;
    receiver.wait_for(before + n, Duration::from_secs(600)).await?;
    let arrivals = receiver.arrivals().split_off(before);
    let last = arrivals.iter().map(|(_, at)| *at).max().unwrap_or(start);
    let (p50, p99) = latencies(db, &arrivals).await?;
    Ok((n as f64 / last.duration_since(start)?.as_secs_f64(), p50, p99))
}

/// Phase: `wrk` posting a delivered payload to the same receiver over
/// `connections` connections for `seconds`. Returns requests/s and its
/// latency p50/p99 as wrk prints them.
pub async fn ceiling(
    receiver: &Receiver,
    connections: usize,
    seconds: u64,
    dir: &Path,
) -> anyhow::Result<(f64, String, String)> {
    let body = receiver
        .first_body
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone()
        .context("no webhook has arrived yet")?;
    let body = String::from_utf8_lossy(&body);
    let script = dir.join("tern-bench-webhook.lua");
    let lua_string = |s: &str| format!("{s:?}");
    std::fs::write(
        &script,
        format!(
            "wrk.method = \"POST\"\nwrk.body = {}\nwrk.headers[\"Content-Type\"] = \"application/json\"\n\
",
            lua_string(&body)
        ),
    )?;
    let url = receiver.url.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("wrk")
            .args([
                "-t",
                "1",
                "-c",
                &connections.to_string(),
                "-d",
                &format!("{seconds}s"),
                "--latency",
                "-s",
            ])
            .arg(&script)
            .arg(&url)
            .stderr(Stdio::inherit())
            .output()
    })
    .await?
    .context("running wrk (Debian package wrk)")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |prefix: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(prefix).map(|v| v.trim().to_string()))
            .unwrap_or_default()
    };
    let rate: f64 = field("Requests/sec:")
        .parse()
        .context("wrk printed no Requests/sec")?;
    Ok((rate, field("50%"), field("99%")))
}
