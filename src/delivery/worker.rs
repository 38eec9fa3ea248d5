//! A delivery worker's scheduling: claims due recipients, drops those
//! suppressed since, groups the rest by message and destination domain
//! (domains interleaved), and runs each group as a job once its domain's
//! gate and a slot allow, or gives it back. The attempt itself (one SMTP
//! transaction and its outcomes) is in `attempt`.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use sqlx::PgPool;
use tokio::sync::Semaphore;
use tracing::Instrument;
use uuid::Uuid;

use super::attempt::{Attempt, Delivered};
use super::connect::Connector;
use super::pacing::{InHand, Pacing};
use super::sessions::SessionCache;
use crate::config::Settings;
use crate::db;
use crate::db::queue::{self, Claimed, Outcome};
use crate::domain::RecipientStatus;
use crate::mail::verp::Verp;
use crate::observability::logs::chain;

/// The longest one attempt may take, its lease renewed all along; each
/// SMTP step has its own RFC 5321 timeout well within it.
const ATTEMPT_LIMIT: Duration = Duration::from_secs(30 * 60);

/// How long an idle SMTP session is kept for the next message.
const SESSION_MAX_IDLE: Duration = Duration::from_secs(5);
/// How long one SMTP session may be used at all.
const SESSION_MAX_AGE: Duration = Duration::from_secs(300);

/// One worker; run several per process or on several machines.
pub struct Worker {
    pub(super) id: String,
    pub(super) db: PgPool,
    pub(super) settings: Settings,
    pub(super) verp: Verp,
    pub(super) connector: Connector,
    pub(super) sessions: SessionCache,
    /// At most `delivery.concurrency` transactions at once.
    slots: Arc<Semaphore>,
    /// At most `delivery.per_domain_concurrency` to one domain.
    gates: Mutex<HashMap<String, Arc<Semaphore>>>,
    /// Jobs waiting for their domain's gate.
    waiting_for_domain: AtomicUsize,
    /// Jobs in hand per domain, and when pushed-back ones are due again.
    pub(super) pacing: Arc<Pacing>,
    /// Set on shutdown.
    stopping: tokio::sync::watch::Sender<bool>,
}

/// Counts a job as waiting for its domain while alive.
struct WaitingForDomain<'a>(&'a AtomicUsize);

impl<'a> WaitingForDomain<'a> {
    fn new(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        WaitingForDomain(count)
    }
}

impl Drop for WaitingForDomain<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// One message's recipients at one domain: one SMTP transaction.
pub(super) struct Job {
    message: Uuid,
    domain: String,
    recipients: Vec<Claimed>,
    /// The attempt must be over (and recorded) before the lease runs out.
    deadline: tokio::time::Instant,
    /// When the lease runs out: storing the outcome is retried until then.
    lease_end: tokio::time::Instant,
    /// Counts the job in its domain's share of the worker (`run` only).
    pub(super) in_hand: Option<InHand>,
}

impl Job {
    pub(super) fn domain(&self) -> &str {
        &self.domain
    }
}

impl Worker {
    pub async fn new(db: PgPool, settings: Settings) -> anyhow::Result<Worker> {
        let key = db::secrets::get_or_create(&db, "verp_hmac", 32).await?;
        let resolver = crate::dns::resolver::build(&settings.dns)?;
        let id = format!(
            "{}-{}",
            std::process::id(),
            &Uuid::new_v4().simple().to_string()[..8]
        );
        crate::observability::metrics::handle();
        Ok(Worker {
            id,
            db,
            verp: Verp::new(&key),
            connector: Connector::new(resolver, settings.public_hostname.clone(), &settings.delivery)?,
            sessions: SessionCache::new(
                SESSION_MAX_IDLE,
                SESSION_MAX_AGE,
                settings.delivery.per_domain_concurrency,
            ),
            slots: Arc::new(Semaphore::new(settings.delivery.concurrency.max(1))),
            gates: Mutex::new(HashMap::new()),
            waiting_for_domain: AtomicUsize::new(0),
            pacing: Pacing::new(settings.delivery.per_domain_concurrency),
            stopping: tokio::sync::watch::Sender::new(false),
            settings,
        })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// Claims one batch and delivers it; returns how many recipients it
    /// claimed. (The long-running loop, `run`, overlaps batches instead.)
    pub async fn run_once(&self) -> anyhow::Result<usize> {
        let (jobs, count) = self.claim().await?;
        let results = futures_util::future::join_all(jobs.into_iter().map(|job| self.run_job(job))).await;
        // Every group has finished (and recorded what it could) before an
        // error is reported.
        results.into_iter().collect::<anyhow::Result<Vec<()>>>()?;
        Ok(count)
    }

    /// Claims up to a batch of due recipients; returns them grouped by
    /// message and domain (domains interleaved), and how many were claimed.
    pub(super) async fn claim(&self) -> anyhow::Result<(Vec<Job>, usize)> {
        let lease = Duration::from_secs(self.settings.delivery.lease_secs);
        // Leave time to record the outcome before the lease runs out.
        let lease_end = tokio::time::Instant::now() + lease;
        let deadline = lease_end - (lease / 10).max(Duration::from_secs(1)).min(lease);
        let claimed = queue::claim(&self.db, &self.id, self.settings.delivery.batch_size, lease).await?;
        let count = claimed.len();
        // Settling the batch (exhausted, suppressed) must not hold the
        // runner long; if it fails, the batch goes back, uncounted.
        let ids: Vec<Uuid> = claimed.iter().map(|c| c.id).collect();
        let settle_by = tokio::time::Instant::now() + (lease / 2).min(Duration::from_secs(5));
        let settled = async {
            let claimed = self.drop_exhausted(claimed, settle_by).await?;
            self.drop_suppressed(claimed, settle_by).await
        };
        let claimed = match settled.await {
            Ok(claimed) => claimed,
            Err(err) => {
                if let Err(release) = queue::release_all(&self.db, &self.id, &ids).await {
                    tracing::warn!(error = %chain(&release), "giving back a claimed batch failed");
                }
                return Err(err);
            }
        };
        let mut groups: BTreeMap<(Uuid, String), Vec<Claimed>> = BTreeMap::new();
        for recipient in claimed {
            groups
                .entry((recipient.message_id, recipient.domain.clone()))
                .or_default()
                .push(recipient);
        }
        let jobs = interleave_domains(groups)
            .into_iter()
            .map(|((message, domain), recipients)| Job {
                message,
                domain,
                recipients,
                deadline,
                lease_end,
                in_hand: None,
            })
            .collect();
        Ok((jobs, count))
    }

    /// Waits for a permit of the job's domain and one of the worker's, then
    /// delivers and records. A job that cannot start before its deadline
    /// gives its recipients back; one that cannot finish by then is deferred.
    pub(super) async fn run_job(&self, job: Job) -> anyhow::Result<()> {
        // One span per job; the attempt records the host it reached and TLS.
        let span = tracing::info_span!(
            "delivery",
            message.id = %job.message,
            domain = %job.domain,
            recipients = job.recipients.len(),
            mx = tracing::field::Empty,
            tls = tracing::field::Empty,
        );
        self.run_job_in_span(job).instrument(span).await
    }

    async fn run_job_in_span(&self, job: Job) -> anyhow::Result<()> {
        let gate = self.gate(&job.domain);
        let acquire = async {
            // While it waits for a busy domain, a job does not count as work
            // in hand: the runner claims more for the other domains.
            let domain = {
                let _waiting = WaitingForDomain::new(&self.waiting_for_domain);
                gate.acquire_owned().await?
            };
            let slot = self.slots.clone().acquire_owned().await?;
            Ok::<_, tokio::sync::AcquireError>((domain, slot))
        };
        let mut stopping = self.stopping.subscribe();
        // A job that has not started by its deadline, or when the worker
        // stops, gives its recipients back for a fresh claim.
        let _permits = tokio::select! {
            permits = tokio::time::timeout_at(job.deadline, acquire) => match permits {
                Ok(permits) => permits?,
                Err(_) => {
                    // Its domain is busier than the lease allows for: due
                    // again after the jobs it has in hand, not at the head.
                    let delay = self.pacing.delay(&job.domain);
                    return self.push_back(vec![(job, delay)]).await;
                }
            },
            () = async {
                // The guard `wait_for` returns must not live across an await.
                let _ = stopping.wait_for(|stop| *stop).await.map(|_| ());
            } => return self.give_back(&job).await,
        };
        // The lease is renewed while the transaction runs (rather than the
        // transaction being cut at the lease's end, mid-DATA, when a message
        // may already have arrived): a job that waited long for its slot
        // renews at once, and a heartbeat renews every third of the lease.
        // Jobs that start soon after their claim and finish within a third
        // of the lease, nearly all of them, cost no extra statement.
        let lease = Duration::from_secs(self.settings.delivery.lease_secs);
        let ids: Vec<Uuid> = job.recipients.iter().map(|r| r.id).collect();
        let lease_end = Mutex::new(job.lease_end);
        let renew = || async {
            let renewed_at = tokio::time::Instant::now();
            match queue::renew(&self.db, &self.id, &ids, lease).await {
                Ok(held) if held == ids.len() as u64 => {
                    *lease_end.lock().unwrap_or_else(|p| p.into_inner()) = renewed_at + lease;
                }
                Ok(held) => tracing::warn!(held, claimed = ids.len(), "lease lost during the attempt"),
                Err(err) => tracing::warn!(error = %chain(&err), "renewing the lease failed"),
            }
        };
        if job
            .lease_end
            .saturating_duration_since(tokio::time::Instant::now())
            < lease * 2 / 3
        {
            renew().await;
        }
        let heartbeat = async {
            let period = (lease / 3).max(Duration::from_millis(100));
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
            loop {
                tick.tick().await;
                renew().await;
            }
        };
        let started = tokio::time::Instant::now();
        let delivery = tokio::time::timeout(
            ATTEMPT_LIMIT,
            self.deliver(job.message, &job.domain, &job.recipients),
        );
        let delivered = tokio::select! {
            delivered = delivery => match delivered {
                Ok(delivered) => delivered,
                Err(_) => {
                    let late = Attempt::local(
                        451,
                        "4.4.7",
                        format!("the attempt took longer than {} s", ATTEMPT_LIMIT.as_secs()),
                    );
                    Delivered {
                        attempts: vec![late; job.recipients.len()],
                        session: None,
                    }
                }
            },
            never = heartbeat => never,
        };
        self.pacing.observe(&job.domain, started.elapsed());
        let lease_end = *lease_end.lock().unwrap_or_else(|p| p.into_inner());
        let outcomes: Vec<(&Claimed, Outcome)> = job
            .recipients
            .iter()
            .zip(delivered.attempts)
            .map(|(recipient, attempt)| (recipient, self.outcome(recipient, attempt)))
            .collect();
        self.record(outcomes, lease_end).await?;
        // Only now may the session carry another message: its outcome is
        // stored.
        if let Some((key, session)) = delivered.session {
            self.sessions.put(key, session);
        }
        Ok(())
    }

    /// Gives jobs back unattempted, each due again after its delay.
    pub(super) async fn push_back(&self, jobs: Vec<(Job, Duration)>) -> anyhow::Result<()> {
        if jobs.is_empty() {
            return Ok(());
        }
        let now = chrono::Utc::now();
        let (ids, due): (Vec<Uuid>, Vec<chrono::DateTime<chrono::Utc>>) = jobs
            .iter()
            .flat_map(|(job, delay)| {
                let at = now + chrono::TimeDelta::from_std(*delay).unwrap_or_default();
                job.recipients.iter().map(move |r| (r.id, at))
            })
            .unzip();
        queue::push_back(&self.db, &self.id, &ids, &due).await?;
        crate::observability::metrics::pushed_back(ids.len());
        Ok(())
    }

    async fn give_back(&self, job: &Job) -> anyhow::Result<()> {
        let ids: Vec<Uuid> = job.recipients.iter().map(|r| r.id).collect();
        queue::release_all(&self.db, &self.id, &ids).await?;
        Ok(())
    }

    /// Stops jobs that are waiting to start: they give their recipients
    /// back. Jobs already talking to a server finish.
    pub(super) fn stop_waiting_jobs(&self) {
        self.stopping.send_replace(true);
    }

    /// The concurrency gate of a domain.
    fn gate(&self, domain: &str) -> Arc<Semaphore> {
        let limit = self.settings.delivery.per_domain_concurrency.max(1);
        self.gates
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .entry(domain.to_string())
            .or_insert_with(|| Arc::new(Semaphore::new(limit)))
            .clone()
    }

    /// Jobs in hand that wait for a busy domain rather than for a slot.
    pub(super) fn waiting_for_domain(&self) -> usize {
        self.waiting_for_domain.load(Ordering::Relaxed)
    }

    /// Forgets the gates of domains no job is using.
    pub(super) fn prune_gates(&self) {
        self.gates
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .retain(|_, gate| Arc::strong_count(gate) > 1);
    }

    /// Fails recipients claimed more often than the retry schedule allows:
    /// their attempts never recorded an outcome (the worker died or the job
    /// panicked mid-attempt), and a message that kills its worker must not
    /// be retried forever (a poison message). Counted at claim time, as
    /// KumoMTA counts an attempt when it starts.
    async fn drop_exhausted(
        &self,
        claimed: Vec<Claimed>,
        lease_end: tokio::time::Instant,
    ) -> anyhow::Result<Vec<Claimed>> {
        let allowed = self.settings.delivery.retry_schedule_secs.len() + 1;
        let (exhausted, keep): (Vec<Claimed>, Vec<Claimed>) = claimed
            .into_iter()
            .partition(|r| usize::try_from(r.attempts).unwrap_or(0) > allowed);
        let outcomes = exhausted
            .iter()
            .map(|recipient| {
                let outcome = Outcome {
                    recipient: recipient.id,
                    status: RecipientStatus::Failed,
                    reply: format!(
                        "554 5.4.0 the last of {} delivery attempts never recorded an outcome (its worker \
                         stopped mid-attempt); giving up",
                        recipient.attempts - 1
                    ),
                    next_attempt_at: None,
                    host: None,
                    tls: None,
                    detail: json!({"reason": "attempts_exhausted"}),
                    suppress: None,
                };
                (recipient, outcome)
            })
            .collect();
        self.record(outcomes, lease_end).await?;
        Ok(keep)
    }

    /// Marks recipients suppressed since they were accepted (a bounce or
    /// complaint in the meantime) and returns the others.
    async fn drop_suppressed(
        &self,
        claimed: Vec<Claimed>,
        lease_end: tokio::time::Instant,
    ) -> anyhow::Result<Vec<Claimed>> {
        if claimed.is_empty() {
            return Ok(claimed);
        }
        let suppressed = queue::suppressed(&self.db, &claimed).await?;
        if suppressed.is_empty() {
            return Ok(claimed);
        }
        let (dropped, keep): (Vec<Claimed>, Vec<Claimed>) =
            claimed.into_iter().partition(|r| suppressed.contains(&r.id));
        let outcomes = dropped
            .iter()
            .map(|recipient| {
                let outcome = Outcome {
                    recipient: recipient.id,
                    status: RecipientStatus::Suppressed,
                    reply: "address is on the suppression list".into(),
                    next_attempt_at: None,
                    host: None,
                    tls: None,
                    detail: json!({"reason": "suppression_list"}),
                    suppress: None,
                };
                (recipient, outcome)
            })
            .collect();
        self.record(outcomes, lease_end).await?;
        Ok(keep)
    }
}

type Group = ((Uuid, String), Vec<Claimed>);

/// Orders groups round-robin by domain, so that groups waiting for one
/// busy domain's permits do not hold every slot while other domains wait.
fn interleave_domains(groups: BTreeMap<(Uuid, String), Vec<Claimed>>) -> Vec<Group> {
    let mut by_domain: BTreeMap<String, std::collections::VecDeque<Group>> = BTreeMap::new();
    for group in groups {
        by_domain.entry(group.0.1.clone()).or_default().push_back(group);
    }
    let mut out = Vec::new();
    while !by_domain.is_empty() {
        by_domain.retain(|_, queue| {
            if let Some(group) = queue.pop_front() {
                out.push(group);
            }
            !queue.is_empty()
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_alternate_between_domains() {
        let mut groups = BTreeMap::new();
        for (message, domain) in [
            (1, "a.test"),
            (2, "a.test"),
            (3, "a.test"),
            (4, "b.test"),
            (5, "c.test"),
        ] {
            groups.insert((Uuid::from_u128(message), domain.to_string()), Vec::new());
        }
        let order: Vec<String> = interleave_domains(groups)
            .into_iter()
            .map(|((_, domain), _)| domain)
            .collect();
        assert_eq!(order, ["a.test", "b.test", "c.test", "a.test", "a.test"]);
    }
}
