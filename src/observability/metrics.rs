//! Prometheus metrics: one process-wide recorder for what this process did
//! (accepted, delivered, sessions, DNS failures), and the queue gauges,
//! read from the database at scrape time, so that every process, API or
//! worker, reports the shared queue.

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{counter, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use sqlx::PgPool;

use crate::domain::RecipientStatus;

/// Messages accepted by the send API, by server mode.
pub const MESSAGES_ACCEPTED: &str = "tern_messages_accepted_total";
/// Recipients by the outcome of a delivery attempt (or suppression at accept).
pub const RECIPIENTS: &str = "tern_recipients_total";
/// Recipients waiting in the queue, by status.
pub const QUEUE_DEPTH: &str = "tern_queue_depth";
/// How long the oldest due recipient has been waiting.
pub const QUEUE_OLDEST_AGE: &str = "tern_queue_oldest_age_seconds";
/// From accept to the final outcome of a recipient (sent, bounced, failed).
pub const DELIVERY_LATENCY: &str = "tern_delivery_latency_seconds";
/// One SMTP session, connect to QUIT, by result.
pub const SMTP_SESSION: &str = "tern_smtp_session_duration_seconds";
/// DNS lookups for delivery that failed temporarily, by record kind.
pub const DNS_FAILURES: &str = "tern_dns_lookup_failures_total";

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the global recorder on first use and returns its handle.
pub fn handle() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new();
        let latency = [
            0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 21600.0, 86400.0,
        ];
        let session = [
            0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
        ];
        let builder = builder
            .set_buckets_for_metric(Matcher::Full(DELIVERY_LATENCY.into()), &latency)
            .and_then(|b| b.set_buckets_for_metric(Matcher::Full(SMTP_SESSION.into()), &session));
        let recorder = match builder {
            Ok(builder) => builder.build_recorder(),
            Err(err) => {
                tracing::warn!(error = %err, "metric buckets rejected; histograms become summaries");
                PrometheusBuilder::new().build_recorder()
            }
        };
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("a metrics recorder was already installed; /metrics stays empty");
        }
        describe();
        handle
    })
}

fn describe() {
    metrics::describe_counter!(MESSAGES_ACCEPTED, "Messages accepted by the send API");
    metrics::describe_counter!(RECIPIENTS, "Recipients by delivery outcome");
    metrics::describe_histogram!(
        DELIVERY_LATENCY,
        metrics::Unit::Seconds,
        "From accept to a recipient's final outcome"
    );
    metrics::describe_histogram!(
        SMTP_SESSION,
        metrics::Unit::Seconds,
        "SMTP client sessions, connect to QUIT"
    );
    metrics::describe_counter!(DNS_FAILURES, "Failed DNS lookups made for delivery");
}

pub fn message_accepted(mode: &'static str) {
    counter!(MESSAGES_ACCEPTED, "mode" => mode).increment(1);
}

pub fn recipient_outcome(status: RecipientStatus, count: u64) {
    counter!(RECIPIENTS, "outcome" => status.as_str()).increment(count);
}

pub fn delivery_latency(elapsed: Duration) {
    histogram!(DELIVERY_LATENCY).record(elapsed.as_secs_f64());
}

pub fn smtp_session(elapsed: Duration, ok: bool) {
    let result = if ok { "ok" } else { "error" };
    histogram!(SMTP_SESSION, "result" => result).record(elapsed.as_secs_f64());
}

pub fn dns_failure(kind: &'static str) {
    counter!(DNS_FAILURES, "kind" => kind).increment(1);
}

/// The queue's depth by status and the age of its oldest due recipient,
/// read from the database at scrape time. Both queries walk only the
/// partial index of due work: they cost as much as the queue is long, never
/// the history. Rendered here rather than through the recorder, so that
/// the figures are this scrape's and this database's.
pub async fn queue_gauges(db: &PgPool) -> sqlx::Result<String> {
    let depth: Vec<(String, i64)> = sqlx::query_as(
        "SELECT status, count(*) FROM recipients
         WHERE status IN ('queued', 'deferred') GROUP BY status",
    )
    .fetch_all(db)
    .await?;
    let oldest: Option<f64> = sqlx::query_scalar(
        "SELECT extract(epoch FROM now() - min(next_attempt_at))::float8 FROM recipients
         WHERE status IN ('queued', 'deferred') AND next_attempt_at <= now()",
    )
    .fetch_one(db)
    .await?;
    let mut out = format!(
        "# HELP {QUEUE_DEPTH} Recipients waiting for delivery, by status\n# TYPE {QUEUE_DEPTH} gauge\n"
    );
    for status in ["queued", "deferred"] {
        let count = depth.iter().find(|(s, _)| s == status).map_or(0, |(_, n)| *n);
        out.push_str(&format!("{QUEUE_DEPTH}{{status=\"{status}\"}} {count}\n"));
    }
    out.push_str(&format!(
        "# HELP {QUEUE_OLDEST_AGE} How long the oldest due recipient has waited\n\
         # TYPE {QUEUE_OLDEST_AGE} gauge\n{QUEUE_OLDEST_AGE} {}\n",
        oldest.unwrap_or(0.0).max(0.0)
    ));
    Ok(out)
}

/// The text exposition: this process's metrics and the queue's gauges.
pub async fn render(db: &PgPool) -> String {
    let mut out = handle().render();
    match queue_gauges(db).await {
        Ok(gauges) => out.push_str(&gauges),
        Err(err) => tracing::warn!(error = %err, "reading queue gauges failed"),
    }
    out
}
