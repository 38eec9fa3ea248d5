//! A delivery worker: claims due recipients, groups them by message and
//! destination domain, delivers each group in one SMTP transaction, and
//! records every recipient's outcome before claiming more work.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::Utc;
use futures_util::{FutureExt, StreamExt, stream};
use rand::Rng;
use serde_json::json;
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::Semaphore;
use uuid::Uuid;

use super::connect::Connector;
use super::routing::{self, Destination, Route, RouteError};
use super::sessions::SessionCache;
use super::smtp_client::{Envelope, Reply};
use super::verp::{Verp, VerpTarget};
use crate::config::Settings;
use crate::db::messages::RecipientStatus;
use crate::db::queue::{self, Claimed, Outcome};
use crate::db::{self};

/// After a partial batch, how long to let the queue fill before claiming again.
const GATHER: Duration = Duration::from_millis(10);
/// How long an idle SMTP session is kept for the next message.
const SESSION_MAX_IDLE: Duration = Duration::from_secs(5);
/// How long one SMTP session may be used at all.
const SESSION_MAX_AGE: Duration = Duration::from_secs(300);

/// One worker; run several per process or on several machines.
pub struct Worker {
    id: String,
    db: PgPool,
    settings: Settings,
    verp: Verp,
    connector: Connector,
    sessions: SessionCache,
}

/// A result for one recipient, before it is stored.
#[derive(Clone)]
struct Attempt {
    reply: Reply,
    /// The host the attempt reached, and whether it used TLS.
    host: Option<String>,
    tls: Option<bool>,
}

impl Attempt {
    /// A result decided here, without a session (DNS, routing, storage).
    fn local(code: u16, esc: &str, text: String) -> Attempt {
        Attempt {
            reply: Reply {
                code,
                enhanced: Some(esc.into()),
                text,
            },
            host: None,
            tls: None,
        }
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
        crate::monitoring::handle();
        Ok(Worker {
            id,
            db,
            verp: Verp::new(&key),
            connector: Connector::new(
                resolver,
                settings.public_hostname.clone(),
                Duration::from_secs(settings.delivery.connect_timeout_secs),
            ),
            sessions: SessionCache::new(
                SESSION_MAX_IDLE,
                SESSION_MAX_AGE,
                settings.delivery.per_domain_concurrency,
            ),
            settings,
        })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// Claims one batch and delivers it; returns how many recipients it handled.
    pub async fn run_once(&self) -> anyhow::Result<usize> {
        let lease = Duration::from_secs(self.settings.delivery.lease_secs);
        let claimed = queue::claim(&self.db, &self.id, self.settings.delivery.batch_size, lease).await?;
        let count = claimed.len();
        let claimed = self.drop_suppressed(claimed).await?;
        let mut groups: BTreeMap<(Uuid, String), Vec<Claimed>> = BTreeMap::new();
        for recipient in claimed {
            groups
                .entry((recipient.message_id, recipient.domain.clone()))
                .or_default()
                .push(recipient);
        }
        // Groups run concurrently, at most `concurrency` at once and at most
        // `per_domain_concurrency` to one destination domain.
        let mut per_domain: HashMap<String, Arc<Semaphore>> = HashMap::new();
        let per_domain_limit = self.settings.delivery.per_domain_concurrency;
        let jobs: Vec<_> = interleave_domains(groups)
            .into_iter()
            .map(|((message, domain), recipients)| {
                let gate = per_domain
                    .entry(domain.clone())
                    .or_insert_with(|| Arc::new(Semaphore::new(per_domain_limit)))
                    .clone();
                (message, domain, recipients, gate)
            })
            .collect();
        let results: Vec<anyhow::Result<()>> = stream::iter(jobs)
            .map(|(message, domain, recipients, gate)| async move {
                let _permit = gate.acquire_owned().await?;
                self.deliver_group(message, &domain, recipients).await
            })
            .buffer_unordered(self.settings.delivery.concurrency)
            .collect()
            .await;
        // Every group has finished (and recorded what it could) before an
        // error is reported.
        results.into_iter().collect::<anyhow::Result<Vec<()>>>()?;
        Ok(count)
    }

    /// Delivers one group and records every recipient's outcome.
    async fn deliver_group(
        &self,
        message: Uuid,
        domain: &str,
        recipients: Vec<Claimed>,
    ) -> anyhow::Result<()> {
        let attempts = self.deliver(message, domain, &recipients).await;
        let outcomes: Vec<(&Claimed, Outcome)> = recipients
            .iter()
            .zip(attempts)
            .map(|(recipient, attempt)| (recipient, self.outcome(recipient, attempt)))
            .collect();
        self.record(outcomes).await
    }

    /// Runs until `shutdown` resolves: drains the queue, then waits for a
    /// notification or the fallback poll.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) -> anyhow::Result<()> {
        let mut listener = PgListener::connect_with(&self.db)
            .await
            .context("LISTEN connection")?;
        listener.listen(queue::CHANNEL).await?;
        let poll = Duration::from_millis(self.settings.delivery.poll_interval_ms);
        let mut last_housekeeping: Option<std::time::Instant> = None;
        tokio::pin!(shutdown);
        let mut stopping = false;
        loop {
            if last_housekeeping.is_none_or(|at| at.elapsed() > Duration::from_secs(3600)) {
                last_housekeeping = Some(std::time::Instant::now());
                match db::idempotency::purge(&self.db, 24).await {
                    Ok(n) if n > 0 => tracing::info!(purged = n, "old idempotency keys removed"),
                    Ok(_) => {}
                    Err(err) => tracing::warn!(error = %err, "purging idempotency keys failed"),
                }
            }
            let batch = usize::try_from(self.settings.delivery.batch_size).unwrap_or(usize::MAX);
            match self.run_once().await {
                // A full batch: more is probably waiting.
                Ok(n) if n >= batch => {}
                // A partial batch: the queue is busy but short. Let a little
                // more arrive, so that claims stay batched under load instead
                // of one claim per notification.
                Ok(n) if n > 0 => tokio::time::sleep(GATHER).await,
                Ok(_) => {
                    tokio::select! {
                        () = &mut shutdown => stopping = true,
                        notified = listener.recv() => {
                            if let Err(err) = notified {
                                tracing::warn!(error = %err, "queue notifications interrupted");
                                tokio::time::sleep(poll).await;
                            }
                            // One claim answers every notification so far.
                            while listener.next_buffered().is_some() {}
                        }
                        () = tokio::time::sleep(poll) => {}
                    }
                }
                Err(err) => {
                    tracing::warn!(error = %err, "delivery batch failed");
                    tokio::time::sleep(poll.min(Duration::from_secs(1))).await;
                }
            }
            self.sessions.sweep();
            // A completed future must not be polled again: the flag remembers.
            if stopping || (&mut shutdown).now_or_never().is_some() {
                self.sessions.close().await;
                return Ok(());
            }
        }
    }

    /// Marks recipients suppressed since they were accepted (a bounce or
    /// complaint in the meantime) and returns the others.
    async fn drop_suppressed(&self, claimed: Vec<Claimed>) -> anyhow::Result<Vec<Claimed>> {
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
                    detail: json!({}),
                };
                (recipient, outcome)
            })
            .collect();
        self.record(outcomes).await?;
        Ok(keep)
    }

    /// Delivers one message to the recipients at one domain; one attempt each.
    async fn deliver(&self, message: Uuid, domain: &str, recipients: &[Claimed]) -> Vec<Attempt> {
        let all = |attempt: Attempt| vec![attempt; recipients.len()];
        let outgoing = match queue::outgoing(&self.db, message).await {
            Ok(outgoing) => outgoing,
            Err(err) => {
                return all(Attempt::local(
                    451,
                    "4.3.0",
                    format!("could not load the message: {err}"),
                ));
            }
        };
        let destinations =
            match routing::route(self.connector.resolver(), &self.settings.delivery, domain).await {
                Ok(Route::Hosts(hosts)) => hosts,
                Ok(Route::NullMx) => {
                    return all(Attempt::local(
                        556,
                        "5.1.10",
                        format!("{domain} accepts no mail (null MX)"),
                    ));
                }
                Err(RouteError::NoSuchDomain(_)) => {
                    return all(Attempt::local(
                        550,
                        "5.1.2",
                        format!("domain {domain} does not exist"),
                    ));
                }
                Err(err @ RouteError::Temporary(..)) => {
                    return all(Attempt::local(451, "4.4.3", err.to_string()));
                }
            };
        let host = outgoing
            .return_path_host
            .unwrap_or_else(|| self.settings.return_path_target());
        let target = match recipients {
            [only] => VerpTarget::Recipient(only.id),
            _ => VerpTarget::Message(message),
        };
        let mail_from = self.verp.return_path(target, &host);
        let addresses: Vec<String> = recipients.iter().map(|r| r.address.clone()).collect();
        let envelope = Envelope {
            mail_from: &mail_from,
            recipients: &addresses,
            message: &outgoing.raw,
        };
        let mut last_error = String::from("no destination host");
        for destination in &destinations {
            match self.send_via(destination, &envelope).await {
                Ok((replies, tls)) => {
                    return replies
                        .into_iter()
                        .map(|reply| Attempt {
                            reply,
                            host: Some(destination.host.clone()),
                            tls: Some(tls),
                        })
                        .collect();
                }
                Err(err) => last_error = format!("{}: {err:#}", destination.host),
            }
        }
        all(Attempt::local(451, "4.4.1", last_error))
    }

    /// Runs one transaction at a destination, on a cached session if one
    /// is idle (and still answers RSET), else on a new one; returns the
    /// replies and whether the session was encrypted.
    async fn send_via(
        &self,
        destination: &Destination,
        envelope: &Envelope<'_>,
    ) -> anyhow::Result<(Vec<Reply>, bool)> {
        let key = (
            destination.host.clone(),
            destination.port,
            destination.require_tls,
        );
        let mut session = loop {
            match self.sessions.take(&key) {
                Some(mut cached) => {
                    if cached.client.reset().await.is_ok() {
                        break cached;
                    }
                    cached.close(false).await;
                }
                None => break self.connector.open(destination).await?,
            }
        };
        match session.client.send(envelope).await {
            Ok(result) => {
                let tls = session.is_tls();
                if session.client.reusable() {
                    self.sessions.put(key, session);
                } else {
                    session.close(true).await;
                }
                Ok((result.recipients, tls))
            }
            Err(err) => {
                session.close(false).await;
                Err(err.into())
            }
        }
    }

    /// What an attempt means for a recipient: 2xx sent, 5xx bounced (or
    /// failed when no server was reached), 4xx deferred (or failed when the
    /// retry schedule has run out).
    fn outcome(&self, recipient: &Claimed, attempt: Attempt) -> Outcome {
        let schedule = &self.settings.delivery.retry_schedule_secs;
        let (status, next) = if attempt.reply.is_positive() {
            (RecipientStatus::Sent, None)
        } else if attempt.reply.is_permanent() {
            // A receiving server's refusal is a bounce; a permanent failure
            // found here (null MX, no such domain) is simply `failed`.
            match attempt.host {
                Some(_) => (RecipientStatus::Bounced, None),
                None => (RecipientStatus::Failed, None),
            }
        } else {
            match schedule.get(usize::try_from(recipient.attempts).unwrap_or(usize::MAX)) {
                Some(&delay) => {
                    let jitter = rand::rng().random_range(0.9..1.1);
                    let wait = chrono::Duration::milliseconds((delay as f64 * 1000.0 * jitter) as i64);
                    (RecipientStatus::Deferred, Some(Utc::now() + wait))
                }
                None => (RecipientStatus::Failed, None),
            }
        };
        let detail = json!({
            "host": attempt.host,
            "tls": attempt.tls,
            "code": attempt.reply.code,
            "enhanced_code": attempt.reply.enhanced,
            "reply": attempt.reply.text,
        });
        Outcome {
            recipient: recipient.id,
            status,
            reply: attempt.reply.to_string(),
            next_attempt_at: next,
            host: attempt.host,
            tls: attempt.tls,
            detail,
        }
    }

    /// Stores outcomes in one statement, then counts them in the metrics.
    async fn record(&self, outcomes: Vec<(&Claimed, Outcome)>) -> anyhow::Result<()> {
        if outcomes.is_empty() {
            return Ok(());
        }
        let (recipients, outcomes): (Vec<&Claimed>, Vec<Outcome>) = outcomes.into_iter().unzip();
        let stored = queue::complete(&self.db, &self.id, &outcomes).await?;
        for (recipient, outcome) in recipients.iter().zip(&outcomes) {
            if !stored.contains(&recipient.id) {
                tracing::warn!(recipient = %recipient.id, "lease lost before the outcome was stored");
                continue;
            }
            crate::monitoring::recipient_outcome(outcome.status, 1);
            if outcome.status != RecipientStatus::Deferred {
                let waited = (Utc::now() - recipient.accepted_at).to_std().unwrap_or_default();
                crate::monitoring::delivery_latency(waited);
            }
        }
        Ok(())
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
