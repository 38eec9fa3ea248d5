//! Prometheus metrics: one process-wide recorder for what this process did
//! (accepted, delivered, sessions, DNS failures), and the queue gauges,
//! read from the database at scrape time, so that every process, API or
//! worker, reports the shared queue.

use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use metrics::{counter, gauge, histogram};
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
pub const PUSHED_BACK: &str = "tern_recipients_pushed_back_total";
/// Received messages per shared store statement (group commit).
pub const INBOUND_STORE_BATCH: &str = "tern_inbound_store_batch_messages";

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
            .and_then(|b| b.set_buckets_for_metric(Matcher::Full(SMTP_SESSION.into()), &session))
            .and_then(|b| {
                b.set_buckets_for_metric(
                    Matcher::Full(INBOUND_STORE_BATCH.into()),
                    &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0],
                )
            });
        let recorder = match builder {
            Ok(builder) => builder.build_recorder(),
            Err(err) => {
                tracing::warn!(error = %super::logs::chain(&err), "metric buckets rejected; histograms become summaries");
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
    metrics::describe_counter!(
        PUSHED_BACK,
        "Recipients given back unattempted for later, their domain having more in hand than it takes"
    );
    metrics::describe_histogram!(
        INBOUND_STORE_BATCH,
        "Received messages written by one shared statement (group commit)"
    );
    metrics::describe_gauge!(QUEUE_DEPTH, "Recipients waiting for delivery, by status");
    metrics::describe_gauge!(
        QUEUE_OLDEST_AGE,
        metrics::Unit::Seconds,
        "How long the oldest due recipient has waited"
    );
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

pub fn inbound_store_batch(messages: usize) {
    histogram!(INBOUND_STORE_BATCH).record(messages as f64);
}

pub fn dns_failure(kind: &'static str) {
    counter!(DNS_FAILURES, "kind" => kind).increment(1);
}

pub fn pushed_back(count: usize) {
    counter!(PUSHED_BACK).increment(count as u64);
}

/// The text exposition: this process's metrics and the queue's gauges.
///
/// The queue gauges are read from the database at scrape time (every
/// process, API or worker, reports the shared queue), set, and rendered
/// with the rest. Setting and rendering happen under one lock, so that two
/// scrapes (in tests, of apps on different databases in one process) each
/// render their own figures.
pub async fn render(db: &PgPool) -> String {
    let depth = crate::db::queue::depth(db).await;
    static SCRAPE: Mutex<()> = Mutex::new(());
    let _scrape = SCRAPE.lock().unwrap_or_else(|p| p.into_inner());
    match depth {
        Ok(depth) => {
            gauge!(QUEUE_DEPTH, "status" => "queued").set(depth.queued as f64);
            gauge!(QUEUE_DEPTH, "status" => "deferred").set(depth.deferred as f64);
            gauge!(QUEUE_OLDEST_AGE).set(depth.oldest_due_secs.max(0.0));
        }
        Err(err) => {
            tracing::warn!(
                error = %super::logs::chain(&err),
                "reading queue gauges failed"
            )
        }
    }
    handle().render()
}
