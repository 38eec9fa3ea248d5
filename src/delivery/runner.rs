//! A worker's main loop. Jobs (one SMTP transaction each) run as tasks, so
//! a slow destination holds only its own slots: the loop claims more
//! whenever fewer jobs are ready to run (in hand, not waiting for a busy
//! domain) than the worker runs at once. It wakes on
//! `LISTEN` notifications, on a job finishing, or on the fallback poll.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use sqlx::postgres::PgListener;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::worker::Worker;
use crate::db;
use crate::observability::logs::chain;

/// After a partial batch, how long to let the queue fill before claiming
/// again: claims stay batched under load instead of one per notification.
const GATHER: Duration = Duration::from_millis(10);
/// Jobs in hand, waiting for a busy domain included, at most this many
/// times the worker's concurrency.
const MAX_IN_HAND_FACTOR: usize = 10;
/// While full, how often to look whether jobs have started waiting.
const RECHECK: Duration = Duration::from_millis(50);
/// How often idle sessions and unused domain gates are looked at.
const TIDY: Duration = Duration::from_secs(1);
/// How often old idempotency keys are purged.
const HOUSEKEEPING: Duration = Duration::from_secs(3600);

impl Worker {
    /// Runs until `shutdown` resolves; then jobs waiting to start give their
    /// recipients back, those under way finish (their leases renewed, each
    /// bounded by RFC 5321's timeouts and a 30-minute cap), and cached
    /// sessions are closed.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        let worker = Arc::new(self);
        let mut listener = PgListener::connect_with(&worker.db)
            .await
            .context("LISTEN connection")?;
        listener.listen(db::queue::CHANNEL).await?;
        let delivery = &worker.settings.delivery;
        let poll = Duration::from_millis(delivery.poll_interval_ms);
        let batch = usize::try_from(delivery.batch_size).unwrap_or(usize::MAX);
        let concurrency = delivery.concurrency.max(1);
        // Jobs waiting for a busy domain do not count toward `concurrency`,
        // but all jobs in hand together stay under this bound.
        let in_hand_bound = concurrency * MAX_IN_HAND_FACTOR;
        let mut jobs: JoinSet<anyhow::Result<()>> = JoinSet::new();
        let mut housekeeping_due = Instant::now();
        let mut tidy_due = Instant::now();
        // When to claim next; `None` while the queue looked empty (then a
        // notification or the poll ends the wait).
        let mut next_claim = Some(Instant::now());
        tokio::pin!(shutdown);
        loop {
            if Instant::now() >= housekeeping_due {
                housekeeping_due = Instant::now() + HOUSEKEEPING;
                worker.housekeeping().await;
            }
            let ready = jobs.len().saturating_sub(worker.waiting_for_domain());
            let room = ready < concurrency && jobs.len() < in_hand_bound;
            if room && next_claim.is_some_and(|at| at <= Instant::now()) {
                next_claim = match worker.claim().await {
                    Ok((claimed, count)) => {
                        // A domain's share of the worker is capped; what
                        // is claimed beyond it goes back for later.
                        let mut pushed = Vec::new();
                        for mut job in claimed {
                            match worker.pacing.admit(job.domain()) {
                                Ok(in_hand) => {
                                    job.in_hand = Some(in_hand);
                                    let worker = worker.clone();
                                    jobs.spawn(async move { worker.run_job(job).await });
                                }
                                Err(delay) => pushed.push((job, delay)),
                            }
                        }
                        if let Err(err) = worker.push_back(pushed).await {
                            // Their leases run out; another claim takes them.
                            tracing::warn!(error = %chain(err.as_ref()), "pushing back recipients failed");
                        }
                        match count {
                            0 => None,
                            n if n >= batch => Some(Instant::now()),
                            _ => Some(Instant::now() + GATHER),
                        }
                    }
                    Err(err) => {
                        tracing::warn!(error = %chain(err.as_ref()), "claiming failed");
                        Some(Instant::now() + poll.min(Duration::from_secs(1)))
                    }
                };
                continue;
            }
            let wake = match next_claim {
                Some(at) if room => at,
                // No room: a job finishing wakes the loop, but so must a job
                // that starts waiting for a busy domain, which never says so.
                Some(_) => Instant::now() + RECHECK,
                None => Instant::now() + poll,
            };
            tokio::select! {
                () = &mut shutdown => break,
                Some(done) = jobs.join_next(), if !jobs.is_empty() => report(done),
                // Always read notifications, so that they never pile up.
                notified = listener.recv() => {
                    if let Err(err) = notified {
                        tracing::warn!(error = %chain(&err), "queue notifications interrupted");
                        tokio::time::sleep(poll.min(Duration::from_secs(1))).await;
                    }
                    while listener.next_buffered().is_some() {}
                    next_claim.get_or_insert_with(Instant::now);
                }
                () = tokio::time::sleep_until(wake) => {
                    next_claim.get_or_insert_with(Instant::now);
                }
            }
            if Instant::now() >= tidy_due {
                tidy_due = Instant::now() + TIDY;
                worker.sessions.sweep();
                worker.prune_gates();
                worker.pacing.prune();
            }
        }
        tracing::info!(
            jobs = jobs.len(),
            "stopping: waiting jobs give their recipients back"
        );
        worker.stop_waiting_jobs();
        while let Some(done) = jobs.join_next().await {
            report(done);
        }
        worker.sessions.close().await;
        Ok(())
    }

    async fn housekeeping(&self) {
        match db::idempotency::purge(&self.db, 24).await {
            Ok(n) if n > 0 => tracing::info!(purged = n, "old idempotency keys removed"),
            Ok(_) => {}
            Err(err) => tracing::warn!(error = %chain(&err), "purging idempotency keys failed"),
        }
        // Expired entries already count for nothing (every lookup checks
        // `expires_at`); removing them keeps the list true to read, and
        // each removal is recorded in `suppression_removals`.
        let mut expired = 0;
        loop {
            match db::suppressions::expire(&self.db, 1000).await {
                Ok(n) => {
                    expired += n;
                    if n < 1000 {
                        break;
                    }
                }
                Err(err) => {
                    tracing::warn!(error = %chain(&err), "removing expired suppression entries failed");
                    break;
                }
            }
        }
        if expired > 0 {
            tracing::info!(expired, "expired suppression entries removed");
        }
    }
}

fn report(done: Result<anyhow::Result<()>, tokio::task::JoinError>) {
    match done {
        Ok(Ok(())) => {}
        Ok(Err(err)) => tracing::warn!(error = %chain(err.as_ref()), "delivery job failed"),
        Err(err) => tracing::error!(error = %chain(&err), "delivery job panicked"),
    }
}
