//! The webhook dispatcher: claims due deliveries from the outbox (with a
//! lease, `FOR UPDATE SKIP LOCKED`, like the delivery worker, so any number
//! of dispatchers share the database), POSTs each, signed, to its endpoint,
//! and records the attempt: 2xx delivered; 410 Gone turns the endpoint off;
//! anything else is retried along `webhooks.retry_schedule_secs` (a
//! `Retry-After` that asks for longer is honoured up to a day), then failed.
//! An endpoint failing for `webhooks.disable_after_secs` is turned off too
//! (and the server's other endpoints told, `webhook.disabled`). An inbound
//! route's endpoint (`inbound.received`) is never turned off, and a 4xx
//! other than 408 and 429 from it fails the delivery at once.
//! A dispatcher that dies leaves leases that expire: the delivery is sent
//! again with the same `webhook-id`, which receivers use to drop the copy.
//!
//! Dispatchers poll (`webhooks.poll_interval_ms`) rather than listen: a
//! `NOTIFY` from every transaction that writes an event (each delivery
//! outcome, each message received) would serialise those commits and wake
//! every listening connection of the database. A poll finds events that
//! came one by one a few at a time, so claims and records carry batches.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::Utc;
use hickory_resolver::TokioResolver;
use rand::Rng;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use uuid::Uuid;

use super::message_payload;
use super::signature::{self, Signing};
use crate::config::WebhookSettings;
use crate::db::webhooks::{self as db, AttemptRecord, Body, ClaimedDelivery, Delivered};
use crate::domain::is_private_address;
use crate::observability::logs::chain;
use crate::state::AppState;

/// How much of a response is read at most, and kept for the log.
const READ_LIMIT: usize = 64 * 1024;
const LOG_LIMIT: usize = 1024;
/// Claimed at once, at most.
const BATCH: usize = 100;
/// 2xx answers recorded in one statement, at most.
const RECORD_BATCH: usize = 200;
/// How long 2xx answers wait for others to be recorded with: one
/// statement for a few of them rather than one each.
const RECORD_LINGER: Duration = Duration::from_millis(20);
/// The longest `Retry-After` honoured.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);
/// "Failing for longer than this turns it off", for endpoints never turned
/// off: about 30,000 years, within PostgreSQL's interval range.
const NEVER_DISABLE_SECS: f64 = 1e12;

/// One dispatcher; run several per process or on several machines.
pub struct Dispatcher {
    id: String,
    state: AppState,
    client: reqwest::Client,
    /// At most `webhooks.concurrency` deliveries at once.
    slots: Arc<Semaphore>,
    /// Per endpoint: its deliveries in hand, and at most
    /// `webhooks.per_endpoint_concurrency` of them sending at once.
    gates: Mutex<HashMap<Uuid, Arc<Gate>>>,
    /// While `run` runs: where 2xx answers go, to be recorded in batches
    /// (failures are recorded one by one, with the endpoint's health).
    delivered: Option<mpsc::Sender<Delivered>>,
}

/// Resolves endpoint hosts with Tern's resolver and, unless
/// `webhooks.allow_private_targets`, keeps only public addresses: the
/// connection goes to an address that was checked, so a DNS answer that
/// changes between the check and the connection (rebinding) cannot lead
/// it inside.
struct GuardedResolver {
    resolver: TokioResolver,
    allow_private: bool,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let resolver = self.resolver.clone();
        let allow_private = self.allow_private;
        let name = name.as_str().to_string();
        Box::pin(async move {
            let fqdn = format!("{}.", name.trim_end_matches('.'));
            let found = resolver.lookup_ip(fqdn.as_str()).await?;
            let addrs: Vec<SocketAddr> = found
                .iter()
                .filter(|ip| allow_private || !is_private_address(*ip))
                .map(|ip| SocketAddr::new(ip, 0))
                .collect();
            if addrs.is_empty() {
                return Err(format!("{name} has no public address").into());
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// An endpoint's share of a dispatcher.
struct Gate {
    sending: Arc<Semaphore>,
    in_hand: AtomicUsize,
}

/// A delivery in hand, counted in its endpoint's gate while it lives.
struct InHand(Arc<Gate>);

impl InHand {
    fn new(gate: Arc<Gate>) -> InHand {
        gate.in_hand.fetch_add(1, Ordering::Relaxed);
        InHand(gate)
    }
}

impl Drop for InHand {
    fn drop(&mut self) {
        self.0.in_hand.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What an attempt came to, before it is stored.
struct Attempted {
    http_status: Option<u16>,
    body: Option<String>,
    error: Option<String>,
    retry_after: Option<Duration>,
    latency: Duration,
}

impl Dispatcher {
    /// Needs the secrets key (`AppState::new`), to open signing secrets.
    pub fn new(state: AppState) -> anyhow::Result<Dispatcher> {
        state.sealing().context("the webhook dispatcher signs")?;
        let settings = &state.settings.webhooks;
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_millis(settings.connect_timeout_ms))
            .timeout(Duration::from_millis(settings.timeout_ms))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("Tern-Webhooks/", env!("CARGO_PKG_VERSION")))
            .dns_resolver(GuardedResolver {
                resolver: state.resolver.clone(),
                allow_private: settings.allow_private_targets,
            })
            .build()
            .context("building the webhook HTTP client")?;
        Ok(Dispatcher {
            id: format!(
                "webhooks-{}-{}",
                std::process::id(),
                &Uuid::new_v4().simple().to_string()[..8]
            ),
            slots: Arc::new(Semaphore::new(settings.concurrency.max(1))),
            gates: Mutex::new(HashMap::new()),
            delivered: None,
            client,
            state,
        })
    }

    fn settings(&self) -> &WebhookSettings {
        &self.state.settings.webhooks
    }

    fn lease_secs(&self) -> f64 {
        self.settings().lease_secs.max(1) as f64
    }

    /// Claims one batch and sends it; returns how many it claimed. (The
    /// long-running loop, `run`, overlaps batches instead.)
    pub async fn run_once(&self) -> anyhow::Result<usize> {
        let claimed = db::claim(
            &self.state.db,
            &self.id,
            BATCH as i64,
            self.lease_secs(),
            self.per_endpoint() as i64,
            &[],
        )
        .await?;
        let count = claimed.len();
        futures_util::future::join_all(claimed.into_iter().map(|d| {
            let held = self.hold(d.endpoint_id);
            self.deliver(d, held)
        }))
        .await;
        Ok(count)
    }

    /// Runs until `shutdown` resolves; sends under way finish.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        let concurrency = self.settings().concurrency.max(1);
        let poll = Duration::from_millis(self.settings().poll_interval_ms.max(1));
        let (delivered, batches) = mpsc::channel(concurrency * 4);
        self.delivered = Some(delivered);
        let recorder = tokio::spawn(record_batches(self.state.db.clone(), self.id.clone(), batches));
        let dispatcher = Arc::new(self);
        let mut jobs = JoinSet::new();
        tokio::pin!(shutdown);
        let mut claim = true;
        let mut last_claim = Instant::now();
        loop {
            while jobs.try_join_next().is_some() {}
            let room = concurrency.saturating_sub(jobs.len()).min(BATCH);
            // The claim took all it was allowed to: more is probably due.
            let (mut full, mut capped) = (false, false);
            if claim && room > 0 {
                last_claim = Instant::now();
                // No endpoint gets more than its share in hand at once:
                // a slow one holds only its own.
                let limit = dispatcher.per_endpoint();
                let hand = dispatcher.in_hand();
                match db::claim(
                    &dispatcher.state.db,
                    &dispatcher.id,
                    room as i64,
                    dispatcher.lease_secs(),
                    limit as i64,
                    &hand,
                )
                .await
                {
                    Ok(batch) => {
                        full = batch.len() == room;
                        let mut taken: HashMap<Uuid, usize> =
                            hand.iter().map(|(id, n)| (*id, *n as usize)).collect();
                        for delivery in &batch {
                            *taken.entry(delivery.endpoint_id).or_default() += 1;
                        }
                        capped = taken.values().any(|n| *n >= limit);
                        let mut over = Vec::new();
                        for delivery in batch {
                            let held = dispatcher.hold(delivery.endpoint_id);
                            if held.0.in_hand.load(Ordering::Relaxed) > limit {
                                over.push(delivery.id);
                                continue;
                            }
                            let dispatcher = dispatcher.clone();
                            jobs.spawn(async move { dispatcher.deliver(delivery, held).await });
                        }
                        // Beyond an endpoint's share (another task's claim
                        // raced this one): back, uncounted.
                        if let Err(err) = db::release(&dispatcher.state.db, &dispatcher.id, &over).await {
                            tracing::warn!(error = %chain(&err), "giving back webhook deliveries failed");
                        }
                    }
                    Err(err) => tracing::warn!(error = %chain(&err), "claiming webhook deliveries failed"),
                }
            }
            // Probably more due: claim again while there is room.
            if full && jobs.len() < concurrency {
                claim = true;
                continue;
            }
            // A backlog: the claim was full, or an endpoint had all it may
            // have in hand (when one of those ends, the next goes at once).
            let backlog = full || capped;
            claim = tokio::select! {
                () = &mut shutdown => break,
                Some(_) = jobs.join_next(), if !jobs.is_empty() => backlog,
                // Only with room: a due poll with every slot taken would
                // spin until a job ends.
                () = tokio::time::sleep_until((last_claim + poll).into()),
                    if jobs.len() < concurrency => true,
            };
        }
        while jobs.join_next().await.is_some() {}
        // The last sender goes with the dispatcher: the recorder stores
        // what it holds and stops.
        drop(dispatcher);
        recorder.await.context("the webhook recorder")?;
        Ok(())
    }

    /// Sends a `webhook.test` event to `endpoint` at once (one attempt, no
    /// retry) and returns the logged attempt; `None` if there is no such
    /// endpoint.
    pub async fn send_test(&self, endpoint: Uuid, server: Uuid) -> anyhow::Result<Option<db::AttemptRow>> {
        let event_id = format!("evt_test_{}", Uuid::new_v4().simple());
        let payload = serde_json::json!({
            "type": "webhook.test",
            "timestamp": Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            "data": {"webhook_id": endpoint, "server_id": server},
        });
        let Some(delivery) =
            db::claim_test_event(&self.state.db, &self.id, endpoint, &event_id, &payload).await?
        else {
            return Ok(None);
        };
        let id = delivery.id;
        self.deliver(delivery, self.hold(endpoint)).await;
        Ok(db::finish_test(&self.state.db, id).await?)
    }

    fn per_endpoint(&self) -> usize {
        self.settings().per_endpoint_concurrency.max(1)
    }

    /// Endpoints with deliveries in hand, and how many.
    fn in_hand(&self) -> Vec<(Uuid, i64)> {
        self.gates
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .iter()
            .map(|(id, gate)| (*id, gate.in_hand.load(Ordering::Relaxed) as i64))
            .filter(|(_, n)| *n > 0)
            .collect()
    }

    /// Counts a delivery of `endpoint` in hand until the guard is dropped.
    fn hold(&self, endpoint: Uuid) -> InHand {
        let limit = self.per_endpoint();
        let mut gates = self.gates.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        gates.retain(|_, gate| gate.in_hand.load(Ordering::Relaxed) > 0);
        let gate = gates.entry(endpoint).or_insert_with(|| {
            Arc::new(Gate {
                sending: Arc::new(Semaphore::new(limit)),
                in_hand: AtomicUsize::new(0),
            })
        });
        InHand::new(gate.clone())
    }

    /// Sends one delivery and records the attempt.
    async fn deliver(&self, delivery: ClaimedDelivery, held: InHand) {
        // The endpoint's turn first: a delivery waiting for it holds no slot.
        let permits = async {
            let endpoint = held.0.sending.clone().acquire_owned().await?;
            let slot = self.slots.clone().acquire_owned().await?;
            Ok::<_, tokio::sync::AcquireError>((endpoint, slot))
        };
        let Ok(_permits) = permits.await else {
            return;
        };
        let attempted = match self.send(&delivery).await {
            Ok(attempted) => attempted,
            Err(err) => Attempted {
                http_status: None,
                body: None,
                error: Some(format!("{err:#}")),
                retry_after: None,
                latency: Duration::ZERO,
            },
        };
        let success = attempted.http_status.filter(|s| (200..300).contains(s));
        if let (Some(status), Some(recorder)) = (success, &self.delivered) {
            let delivered = Delivered {
                delivery: delivery.id,
                http_status: i32::from(status),
                latency_ms: i32::try_from(attempted.latency.as_millis()).unwrap_or(i32::MAX),
                response_body: attempted.body.unwrap_or_default(),
            };
            // Only fails once the recorder is gone: the lease runs out
            // and the delivery is sent again, with the same id.
            let _ = recorder.send(delivered).await;
            return;
        }
        let record = self.settle(&delivery, &attempted);
        match db::record(&self.state.db, &self.id, &record).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(delivery = %delivery.id, "webhook lease lost before the attempt was stored")
            }
            Err(err) => tracing::error!(delivery = %delivery.id, error = %chain(&err),
                "storing a webhook attempt failed; it is sent again when the lease runs out"),
        }
    }

    async fn send(&self, delivery: &ClaimedDelivery) -> anyhow::Result<Attempted> {
        let url = reqwest::Url::parse(&delivery.url).context("the endpoint's URL")?;
        // A literal address never passes the resolver: check it here.
        if let Some(host) = url.host_str()
            && let Ok(ip) = host.trim_matches(['[', ']']).parse::<IpAddr>()
            && !self.settings().allow_private_targets
            && is_private_address(ip)
        {
            anyhow::bail!("the endpoint's address {ip} is private");
        }
        let sealing = self.state.sealing()?;
        let row = delivery.endpoint_id.as_bytes();
        let mut keys = vec![sealing.open(&delivery.secret, row)?];
        if let Some(previous) = &delivery.previous_secret {
            keys.push(sealing.open(previous, row)?);
        }
        let body = match &delivery.body {
            Body::Stored(payload) => payload.clone().into_bytes(),
            Body::MessageEvent(event) => message_payload::build(event).into_bytes(),
            Body::Missing => anyhow::bail!("the message event it reports is no longer stored"),
        };
        let timestamp = Utc::now().timestamp();
        let signing = Signing::parse(&delivery.signing).context("the endpoint's signing scheme")?;
        let signatures = signature::signatures(
            signing,
            keys.iter().map(|k| k.expose().as_slice()),
            &delivery.event_id,
            timestamp,
            &body,
        )?;
        let started = Instant::now();
        let sent = self
            .client
            .post(url)
            .header("content-type", "application/json")
            .header("webhook-id", &delivery.event_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signatures)
            .body(body)
            .send()
            .await;
        let mut response = match sent {
            Ok(response) => response,
            Err(err) => {
                return Ok(Attempted {
                    http_status: None,
                    body: None,
                    error: Some(chain(&err).to_string()),
                    retry_after: None,
                    latency: started.elapsed(),
                });
            }
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let mut read = Vec::new();
        let mut error = None;
        while read.len() < READ_LIMIT {
            match response.chunk().await {
                Ok(Some(chunk)) => read.extend_from_slice(&chunk),
                Ok(None) => break,
                Err(err) => {
                    error = Some(chain(&err).to_string());
                    break;
                }
            }
        }
        read.truncate(LOG_LIMIT);
        Ok(Attempted {
            http_status: Some(status),
            body: Some(String::from_utf8_lossy(&read).into_owned()),
            error,
            retry_after,
            latency: started.elapsed(),
        })
    }

    /// What the attempt means for the delivery.
    fn settle<'a>(&self, delivery: &ClaimedDelivery, attempted: &'a Attempted) -> AttemptRecord<'a> {
        let success = attempted.http_status.is_some_and(|s| (200..300).contains(&s));
        // A route's endpoint is never turned off; like Postal's, a 4xx
        // other than 408 and 429 means it will never take this message.
        let route = delivery.purpose == "route";
        let refused = route
            && attempted
                .http_status
                .is_some_and(|s| (400..500).contains(&s) && s != 408 && s != 429);
        let gone = !route && attempted.http_status == Some(410);
        let schedule = &self.settings().retry_schedule_secs;
        let retry = usize::try_from(delivery.attempts)
            .ok()
            .and_then(|n| schedule.get(n.saturating_sub(1)))
            .map(|secs| {
                let wait = Duration::from_secs(*secs).mul_f64(rand::rng().random_range(0.9..1.1));
                let asked = attempted.retry_after.unwrap_or_default().min(MAX_RETRY_AFTER);
                wait.max(asked)
            });
        let (status, next) = match (success, gone || refused, retry) {
            (true, _, _) => ("delivered", None),
            (false, true, _) | (false, false, None) => ("failed", None),
            (false, false, Some(wait)) => (
                "pending",
                Some(Utc::now() + chrono::TimeDelta::from_std(wait).unwrap_or_default()),
            ),
        };
        AttemptRecord {
            delivery: delivery.id,
            http_status: attempted.http_status.map(i32::from),
            latency_ms: i32::try_from(attempted.latency.as_millis()).unwrap_or(i32::MAX),
            response_body: attempted.body.as_deref(),
            error: attempted.error.as_deref(),
            status,
            next_attempt_at: next,
            gone,
            disable_after_secs: if route {
                NEVER_DISABLE_SECS
            } else {
                self.settings().disable_after_secs as f64
            },
        }
    }
}

/// Stores 2xx answers as they come, those that come within
/// `RECORD_LINGER` of each other together.
async fn record_batches(db: sqlx::PgPool, owner: String, mut delivered: mpsc::Receiver<Delivered>) {
    let mut batch = Vec::with_capacity(RECORD_BATCH);
    while delivered.recv_many(&mut batch, RECORD_BATCH).await > 0 {
        let until = tokio::time::Instant::now() + RECORD_LINGER;
        while batch.len() < RECORD_BATCH {
            let room = RECORD_BATCH - batch.len();
            let more = delivered.recv_many(&mut batch, room);
            // Time is up, or the dispatcher is gone.
            if !matches!(tokio::time::timeout_at(until, more).await, Ok(n) if n > 0) {
                break;
            }
        }
        if let Err(err) = db::record_delivered(&db, &owner, &batch).await {
            tracing::error!(deliveries = batch.len(), error = %chain(&err),
                "storing webhook deliveries failed; they are sent again when their leases run out");
        }
        batch.clear();
    }
}
