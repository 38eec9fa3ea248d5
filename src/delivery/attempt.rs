//! One delivery attempt: a message to the recipients at one domain, in one
//! SMTP transaction. Loads the source, routes the domain, sends over a
//! cached or new session, turns each reply into an outcome and records
//! them together.

use chrono::Utc;
use rand::Rng;
use serde_json::json;
use uuid::Uuid;

use super::connect::PrivateDestination;
use super::routing::{self, Destination, Route, RouteError};
use super::sessions::{Key, Session};
use super::smtp_client::{Envelope, Reply};
use super::worker::Worker;
use crate::db::queue::{self, Claimed, Outcome};
use crate::domain::{RecipientStatus, SuppressionReason};
use crate::mail::report::status;
use crate::mail::verp::VerpTarget;
use crate::observability::logs::chain;
use crate::observability::metrics;

/// A result for one recipient, before it is stored.
#[derive(Clone)]
pub(super) struct Attempt {
    reply: Reply,
    /// The host the attempt reached, and whether it used TLS.
    host: Option<String>,
    tls: Option<bool>,
}

impl Attempt {
    /// A result decided here, without a session (DNS, routing, storage).
    pub(super) fn local(code: u16, esc: &str, text: String) -> Attempt {
        Attempt {
            reply: Reply {
                code,
                enhanced: Some(esc.into()),
                text,
                local: true,
            },
            host: None,
            tls: None,
        }
    }
}

/// What one attempt came to: an attempt per recipient, and the session
/// that carried it if it may carry another message.
pub(super) struct Delivered {
    pub attempts: Vec<Attempt>,
    pub session: Option<(Key, Session)>,
}

impl Worker {
    /// Delivers one message to the recipients at one domain; one attempt each.
    pub(super) async fn deliver(&self, message: Uuid, domain: &str, recipients: &[Claimed]) -> Delivered {
        let all = |attempt: Attempt| Delivered {
            attempts: vec![attempt; recipients.len()],
            session: None,
        };
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
                Err(err @ RouteError::NoAddress(_)) => {
                    return all(Attempt::local(550, "5.4.4", err.to_string()));
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
        // Whether every destination was refused as private: then there is
        // nowhere this mail may go, a permanent failure.
        let mut only_private = true;
        for destination in &destinations {
            match self.send_via(destination, &envelope).await {
                Ok((replies, tls, session)) => {
                    let span = tracing::Span::current();
                    span.record("mx", destination.host.as_str());
                    span.record("tls", tls);
                    let attempts = replies
                        .into_iter()
                        .map(|reply| Attempt {
                            reply,
                            host: Some(destination.host.clone()),
                            tls: Some(tls),
                        })
                        .collect();
                    return Delivered { attempts, session };
                }
                Err(err) => {
                    tracing::debug!(host = %destination.host, error = %chain(err.as_ref()), "destination failed");
                    only_private &= err.is::<PrivateDestination>();
                    last_error = format!("{}: {err:#}", destination.host);
                }
            }
        }
        if only_private && !destinations.is_empty() {
            return all(Attempt::local(550, "5.4.4", last_error));
        }
        all(Attempt::local(451, "4.4.1", last_error))
    }

    /// Runs one transaction at a destination, on a cached session if one
    /// is idle (and still answers RSET), else on a new one; returns the
    /// replies, whether the session was encrypted, and the session if it
    /// can carry another message (cached only once the outcome is stored).
    async fn send_via(
        &self,
        destination: &Destination,
        envelope: &Envelope<'_>,
    ) -> anyhow::Result<(Vec<Reply>, bool, Option<(Key, Session)>)> {
        let key = (
            destination.host.clone(),
            destination.port,
            destination.tls,
            destination.ca_file.clone(),
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
                    Ok((result.recipients, tls, Some((key, session))))
                } else {
                    session.close(true).await;
                    Ok((result.recipients, tls, None))
                }
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
    pub(super) fn outcome(&self, recipient: &Claimed, attempt: Attempt) -> Outcome {
        let schedule = &self.settings.delivery.retry_schedule_secs;
        let (status, next) = if attempt.reply.is_positive() {
            (RecipientStatus::Sent, None)
        } else if attempt.reply.is_permanent() {
            // A receiving server's refusal is a bounce; a permanent failure
            // decided here (null MX, no such domain, over the server's SIZE,
            // no SMTPUTF8) is `failed`: no receiver refused the mail.
            if attempt.reply.local || attempt.host.is_none() {
                (RecipientStatus::Failed, None)
            } else {
                (RecipientStatus::Bounced, None)
            }
        } else {
            // `attempts` counts this one: the first retry waits schedule[0].
            let done = usize::try_from(recipient.attempts - 1).unwrap_or(usize::MAX);
            match schedule.get(done) {
                Some(&delay) => {
                    let jitter = rand::rng().random_range(0.9..1.1);
                    let wait = chrono::Duration::milliseconds((delay as f64 * 1000.0 * jitter) as i64);
                    (RecipientStatus::Deferred, Some(Utc::now() + wait))
                }
                None => (RecipientStatus::Failed, None),
            }
        };
        let mut detail = json!({
            "host": attempt.host,
            "tls": attempt.tls,
            "code": attempt.reply.code,
            "enhanced_code": attempt.reply.enhanced,
            "reply": attempt.reply.text,
        });
        // What the webhook payloads tell apart (`bounce_type`, `reason`).
        let why = match status {
            RecipientStatus::Failed if attempt.reply.is_permanent() => Some(("reason", "undeliverable")),
            RecipientStatus::Failed => Some(("reason", "retries_exhausted")),
            _ => None,
        };
        if let (Some((key, value)), Some(fields)) = (why, detail.as_object_mut()) {
            fields.insert(key.into(), value.into());
        }
        // A refusal is classified as a DSN's status would be: a hard bounce
        // about the address suppresses it.
        let mut suppress = None;
        if status == RecipientStatus::Bounced {
            let classified = status::classify(attempt.reply.enhanced.as_deref(), Some(attempt.reply.code))
                .unwrap_or(status::Classified {
                    bounce_type: status::BounceType::Hard,
                    category: status::BounceCategory::Other,
                    suppress: true,
                });
            if let Some(fields) = detail.as_object_mut() {
                fields.insert("source".into(), "smtp".into());
                fields.insert("bounce_type".into(), json!(classified.bounce_type));
                fields.insert("category".into(), classified.category.as_str().into());
                fields.insert("suppressed".into(), classified.suppress.into());
            }
            if classified.suppress {
                let lifetime = self
                    .settings
                    .suppression
                    .lifetime_secs(SuppressionReason::HardBounce);
                suppress = Some(lifetime);
            }
        }
        Outcome {
            recipient: recipient.id,
            status,
            reply: attempt.reply.to_string(),
            next_attempt_at: next,
            host: attempt.host,
            tls: attempt.tls,
            detail,
            suppress,
        }
    }

    /// Stores outcomes in one statement, then counts them in the metrics.
    ///
    /// A failed store is retried with back-off until `lease_end`: once a
    /// server said 250, losing the outcome means the recipients are
    /// claimed and delivered again when the lease runs out. If the store
    /// still fails by then, that is logged as an error.
    pub(super) async fn record(
        &self,
        outcomes: Vec<(&Claimed, Outcome)>,
        lease_end: tokio::time::Instant,
    ) -> anyhow::Result<()> {
        if outcomes.is_empty() {
            return Ok(());
        }
        let (recipients, outcomes): (Vec<&Claimed>, Vec<Outcome>) = outcomes.into_iter().unzip();
        let mut wait = std::time::Duration::from_millis(50);
        let stored = loop {
            match queue::complete(&self.db, &self.id, &outcomes).await {
                Ok(stored) => break stored,
                Err(err) if transient(&err) && tokio::time::Instant::now() + wait < lease_end => {
                    tracing::warn!(error = %chain(&err), retry_in_ms = wait.as_millis() as u64, "storing outcomes failed; retrying");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(std::time::Duration::from_secs(2));
                }
                Err(err) => {
                    tracing::error!(
                        error = %chain(&err),
                        recipients = recipients.len(),
                        "outcomes could not be stored before the lease ran out; these recipients will be attempted again"
                    );
                    return Err(err.into());
                }
            }
        };
        for (recipient, outcome) in recipients.iter().zip(&outcomes) {
            if !stored.contains(&recipient.id) {
                tracing::warn!(recipient = %recipient.id, "lease lost before the outcome was stored");
                continue;
            }
            metrics::recipient_outcome(outcome.status, 1);
            if outcome.status != RecipientStatus::Deferred {
                let waited = (Utc::now() - recipient.accepted_at).to_std().unwrap_or_default();
                metrics::delivery_latency(waited);
            }
        }
        Ok(())
    }
}

/// Whether a database error may pass if tried again: a lost or refused
/// connection, a full pool, a rolled-back transaction, a server shutting
/// down. Anything else (a value PostgreSQL refuses) fails at once.
fn transient(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            // 08 connection, 40 rollback, 53 resources, 57 operator
            // intervention; 55000 "not currently accepting connections".
            ["08", "40", "53", "57"]
                .iter()
                .any(|class| code.starts_with(class))
                || code == "55000"
        }),
        _ => false,
    }
}
