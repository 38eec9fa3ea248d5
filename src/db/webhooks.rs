//! Webhook endpoints (their secrets sealed).

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use crate::domain::Role;

/// An endpoint as its server's members see it: never a secret.
#[derive(Debug, Clone)]
pub struct WebhookRow {
    pub id: Uuid,
    pub server_id: Uuid,
    pub url: String,
    pub description: String,
    /// Stable event type names; empty: every type.
    pub event_types: Vec<String>,
    pub enabled: bool,
    /// `hmac` or `ed25519`.
    pub signing: String,
    /// The Ed25519 public key (`ed25519` only).
    pub public_key: Option<Vec<u8>>,
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    /// The first failure since the last success.
    pub failing_since: Option<DateTime<Utc>>,
    pub disabled_at: Option<DateTime<Utc>>,
    /// `gone` or `failing` when Tern turned it off.
    pub disabled_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub role: Role,
}

/// A new endpoint.
pub struct NewWebhook<'a> {
    /// Chosen by the caller: the secret is sealed to it.
    pub id: Uuid,
    pub server_id: Uuid,
    pub url: &'a str,
    pub description: &'a str,
    pub event_types: &'a [String],
    pub enabled: bool,
    pub signing: &'a str,
    /// Sealed to the endpoint: an HMAC secret, or an Ed25519 seed.
    pub sealed_secret: &'a [u8],
    /// The Ed25519 public key.
    pub public_key: Option<&'a [u8]>,
}

/// Changes to an endpoint; `None` leaves a field as it is.
pub struct WebhookChange<'a> {
    pub url: Option<&'a str>,
    pub description: Option<&'a str>,
    pub event_types: Option<&'a [String]>,
    pub enabled: Option<bool>,
}

/// Endpoints as `user` sees them; `$1` is the user, `$2`... follow.
macro_rules! select_visible {
    ($tail:literal $(, $arg:expr)* $(,)?) => {
        sqlx::query_as!(
            WebhookRow,
            r#"SELECT w.id, w.server_id, w.url, w.description, w.event_types, w.enabled, w.signing,
                      w.public_key, w.previous_secret_expires_at, w.failing_since, w.disabled_at,
                      w.disabled_reason, w.created_at, w.updated_at, m.role AS "role: Role"
               FROM webhook_endpoints w
               JOIN servers s ON s.id = w.server_id
               JOIN memberships m ON m.organization_id = s.organization_id AND m.user_id = $1
               WHERE w.purpose = 'events' AND "#
                + $tail
            $(, $arg)*
        )
    };
}

/// Creates an endpoint unless the server has `limit` already; returns
/// `None` when it has.
#[tracing::instrument(level = "debug", skip(pool, new), fields(server.id = %new.server_id))]
pub async fn create(
    pool: &PgPool,
    user: Uuid,
    new: NewWebhook<'_>,
    limit: i64,
) -> sqlx::Result<Option<WebhookRow>> {
    let inserted = sqlx::query!(
        "INSERT INTO webhook_endpoints (id, server_id, url, description, event_types, enabled, secret,
                                        signing, public_key)
         SELECT $1, $2, $3, $4, $5, $6, $7, $9, $10
         WHERE (SELECT count(*) FROM webhook_endpoints WHERE server_id = $2 AND purpose = 'events') < $8",
        new.id,
        new.server_id,
        new.url,
        new.description,
        new.event_types,
        new.enabled,
        new.sealed_secret,
        limit,
        new.signing,
        new.public_key
    )
    .execute(pool)
    .await?;
    if inserted.rows_affected() == 0 {
        return Ok(None);
    }
    get_for_user(pool, user, new.id).await
}

#[tracing::instrument(level = "debug", skip(pool))]
pub async fn list(pool: &PgPool, user: Uuid, server: Uuid) -> sqlx::Result<Vec<WebhookRow>> {
    select_visible!("w.server_id = $2 ORDER BY w.created_at, w.id", user, server)
        .fetch_all(pool)
        .await
}

#[tracing::instrument(level = "debug", skip(pool))]
pub async fn get_for_user(pool: &PgPool, user: Uuid, id: Uuid) -> sqlx::Result<Option<WebhookRow>> {
    select_visible!("w.id = $2", user, id).fetch_optional(pool).await
}

/// Changes an endpoint. Turning it on clears its failure record; turning
/// it off notes when. Returns, for an endpoint turned back on, since when
/// it missed events (when it began failing, or was turned off).
#[tracing::instrument(level = "debug", skip(pool, change))]
pub async fn update(
    pool: &PgPool,
    id: Uuid,
    change: WebhookChange<'_>,
) -> sqlx::Result<Option<DateTime<Utc>>> {
    sqlx::query_scalar!(
        r#"WITH old AS (
              SELECT enabled, coalesce(failing_since, disabled_at, updated_at) AS missed_since
              FROM webhook_endpoints WHERE id = $1 FOR UPDATE
           )
           , changed AS (
              UPDATE webhook_endpoints w
              SET url = coalesce($2, url), description = coalesce($3, description),
                  event_types = coalesce($4, event_types), enabled = coalesce($5, w.enabled),
                  failing_since = CASE WHEN $5 AND NOT old.enabled THEN NULL ELSE failing_since END,
                  disabled_at = CASE WHEN $5 THEN NULL
                                     WHEN NOT $5 AND old.enabled THEN now() ELSE disabled_at END,
                  disabled_reason = CASE WHEN $5 THEN NULL ELSE disabled_reason END,
                  updated_at = now()
              FROM old
              WHERE w.id = $1
              RETURNING w.id, w.enabled, old.enabled AS was_enabled, old.missed_since
           ), moved AS (
              -- Turned off: what it has pending waits out of the claims'
              -- way; turned on: all of it is due now.
              UPDATE webhook_deliveries d
              SET next_attempt_at = CASE WHEN c.enabled THEN now() ELSE 'infinity' END
              FROM changed c
              WHERE d.endpoint_id = c.id AND d.status = 'pending' AND c.enabled <> c.was_enabled
           )
           SELECT CASE WHEN enabled AND NOT was_enabled THEN missed_since END AS "missed_since"
           FROM changed"#,
        id,
        change.url,
        change.description,
        change.event_types,
        change.enabled
    )
    .fetch_optional(pool)
    .await
    .map(Option::flatten)
}

/// What a replay queued.
#[derive(Debug, Clone, Copy)]
pub struct Replayed {
    /// Deliveries queued (new, or sent again).
    pub queued: i64,
    /// Where to go on from when the replay stopped at its limit.
    pub next_since: Option<DateTime<Utc>>,
}

/// Queues again the events of the endpoint's server since `since` that
/// the endpoint takes, oldest first, at most `limit`: an event it never
/// got gets a delivery, one it got is sent again (same `webhook-id`).
#[tracing::instrument(level = "debug", skip(pool))]
pub async fn replay(
    pool: &PgPool,
    endpoint: Uuid,
    since: DateTime<Utc>,
    limit: i64,
) -> sqlx::Result<Replayed> {
    let row = sqlx::query!(
        r#"WITH w AS (
              SELECT id, server_id, event_types FROM webhook_endpoints WHERE id = $1
           ), ev AS (
              SELECT e.id, e.kind, e.created_at, e.detail, e.message_id, e.recipient_id
              FROM message_events e
              JOIN messages m ON m.id = e.message_id
              JOIN w ON w.server_id = m.server_id
              WHERE e.created_at >= $2
                AND e.kind IN ('held', 'sent', 'deferred', 'bounced', 'failed', 'suppressed',
                               'complained', 'unsubscribed', 'opened', 'clicked')
                AND (cardinality(w.event_types) = 0 OR ('message.' || e.kind) = ANY (w.event_types))
              ORDER BY e.created_at, e.id
              LIMIT $3
           ), queued AS (
              INSERT INTO webhook_deliveries (endpoint_id, event_id, event_type, message_event_id)
              SELECT $1, 'evt_' || ev.id, 'message.' || ev.kind, ev.id
              FROM ev
              ON CONFLICT (endpoint_id, event_id) DO UPDATE
                  SET status = 'pending', next_attempt_at = now(), attempts = 0, delivered_at = NULL
                  WHERE webhook_deliveries.lease_owner IS NULL
                     OR webhook_deliveries.lease_expires_at < now()
              RETURNING 1
           )
           SELECT (SELECT count(*) FROM queued) AS "queued!",
                  (SELECT count(*) FROM ev) AS "found!",
                  (SELECT max(created_at) FROM ev) AS "last""#,
        endpoint,
        since,
        limit
    )
    .fetch_one(pool)
    .await?;
    Ok(Replayed {
        queued: row.queued,
        next_since: if row.found >= limit { row.last } else { None },
    })
}

/// Puts a new secret in place; the current one signs alongside it until
/// `overlap_secs` from now.
/// `public_key` is the new Ed25519 public key (`ed25519` endpoints).
#[tracing::instrument(level = "debug", skip(pool, sealed_secret))]
pub async fn rotate_secret(
    pool: &PgPool,
    id: Uuid,
    sealed_secret: &[u8],
    public_key: Option<&[u8]>,
    overlap_secs: f64,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE webhook_endpoints
         SET previous_secret = secret, secret = $2,
             public_key = $4,
             previous_secret_expires_at = now() + make_interval(secs => $3), updated_at = now()
         WHERE id = $1",
        id,
        sealed_secret,
        overlap_secs,
        public_key
    )
    .execute(pool)
    .await
    .map(|_| ())
}

#[tracing::instrument(level = "debug", skip(pool))]
pub async fn delete(pool: &PgPool, id: Uuid) -> sqlx::Result<()> {
    sqlx::query!("DELETE FROM webhook_endpoints WHERE id = $1", id)
        .execute(pool)
        .await
        .map(|_| ())
}

/// A delivery claimed for sending, with what signing it needs.
#[derive(Debug)]
pub struct ClaimedDelivery {
    pub id: Uuid,
    pub endpoint_id: Uuid,
    pub event_id: String,
    pub body: Body,
    /// Attempts so far, this one included.
    pub attempts: i32,
    pub url: String,
    /// `hmac` or `ed25519`.
    pub signing: String,
    /// Sealed to the endpoint.
    pub secret: Vec<u8>,
    /// Sealed; still signs alongside (only returned while valid).
    pub previous_secret: Option<Vec<u8>>,
    /// `events` (a webhook) or `route` (an inbound route's endpoint).
    pub purpose: String,
}

/// What a claimed delivery sends.
#[derive(Debug)]
pub enum Body {
    /// The JSON payload stored with the delivery (`json`): sent as it is.
    Stored(String),
    /// A message event: the dispatcher builds its payload
    /// (`webhooks::message_payload`).
    MessageEvent(MessageEvent),
    /// The message event it reports is no longer stored.
    Missing,
}

/// A stored message event, with its message and recipient: what a
/// `message.*` payload is made of.
#[derive(Debug, Clone)]
pub struct MessageEvent {
    /// `sent`, `bounced`... (the type without `message.`).
    pub kind: String,
    pub at: DateTime<Utc>,
    pub detail: serde_json::Value,
    pub message_id: Uuid,
    pub server_id: Uuid,
    pub tag: Option<String>,
    pub metadata: serde_json::Value,
    pub recipient_id: Option<Uuid>,
    pub recipient: Option<String>,
}

/// A row of `tern_claim_webhook_deliveries` (or a test event, with no
/// message event).
struct ClaimedRow {
    id: Uuid,
    endpoint_id: Uuid,
    event_id: String,
    payload: Option<String>,
    attempts: i32,
    url: String,
    signing: String,
    secret: Vec<u8>,
    purpose: String,
    previous_secret: Option<Vec<u8>>,
    event_kind: Option<String>,
    event_at: Option<DateTime<Utc>>,
    event_detail: Option<serde_json::Value>,
    message_id: Option<Uuid>,
    server_id: Option<Uuid>,
    tag: Option<String>,
    metadata: Option<serde_json::Value>,
    recipient_id: Option<Uuid>,
    recipient: Option<String>,
}

impl From<ClaimedRow> for ClaimedDelivery {
    fn from(row: ClaimedRow) -> ClaimedDelivery {
        let event = match (row.event_kind, row.event_at, row.message_id, row.server_id) {
            (Some(kind), Some(at), Some(message_id), Some(server_id)) => Some(MessageEvent {
                kind,
                at,
                detail: row.event_detail.unwrap_or_default(),
                message_id,
                server_id,
                tag: row.tag,
                metadata: row.metadata.unwrap_or_default(),
                recipient_id: row.recipient_id,
                recipient: row.recipient,
            }),
            _ => None,
        };
        let body = match (row.payload, event) {
            (Some(payload), _) => Body::Stored(payload),
            (None, Some(event)) => Body::MessageEvent(event),
            (None, None) => Body::Missing,
        };
        ClaimedDelivery {
            id: row.id,
            endpoint_id: row.endpoint_id,
            event_id: row.event_id,
            body,
            attempts: row.attempts,
            url: row.url,
            signing: row.signing,
            secret: row.secret,
            previous_secret: row.previous_secret,
            purpose: row.purpose,
        }
    }
}

/// Claims up to `batch` due deliveries of enabled endpoints for `owner`
/// for `lease_secs`, oldest first, at most `per_endpoint` of one endpoint
/// counting the `in_hand` ones (endpoint, count) the caller is sending
/// already; counts the attempt. It looks at a window of the oldest due
/// deliveries (four batches' worth), so it may take fewer than it could.
#[tracing::instrument(level = "debug", skip(pool, in_hand), fields(in_hand = in_hand.len()))]
pub async fn claim(
    pool: &PgPool,
    owner: &str,
    batch: i64,
    lease_secs: f64,
    per_endpoint: i64,
    in_hand: &[(Uuid, i64)],
) -> sqlx::Result<Vec<ClaimedDelivery>> {
    let (endpoints, counts): (Vec<Uuid>, Vec<i64>) = in_hand.iter().copied().unzip();
    // The statement is a function (migrations `webhook_claim_in_due_order`
    // and `message_payloads_at_claim`) so that its plan walks the due index
    // in order.
    let rows = sqlx::query_as!(
        ClaimedRow,
        r#"SELECT id AS "id!", endpoint_id AS "endpoint_id!", event_id AS "event_id!", payload,
                  attempts AS "attempts!", url AS "url!", signing AS "signing!", secret AS "secret!",
                  purpose AS "purpose!", previous_secret, event_kind, event_at,
                  event_detail, message_id, server_id, tag, metadata, recipient_id, recipient
           FROM tern_claim_webhook_deliveries($1, $2, $3, $4, $5, $6)"#,
        owner,
        batch,
        lease_secs,
        &endpoints,
        &counts,
        per_endpoint
    )
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(ClaimedDelivery::from).collect())
}

/// A 2xx answer, to record with others.
pub struct Delivered {
    pub delivery: Uuid,
    pub http_status: i32,
    pub latency_ms: i32,
    /// The first KB of the answer.
    pub response_body: String,
}

/// Records 2xx answers in one statement (the common case, batched by the
/// dispatcher), for the deliveries `owner` still holds; clears their
/// endpoints' failure records. Returns how many it recorded.
#[tracing::instrument(level = "debug", skip_all, fields(deliveries = delivered.len()))]
pub async fn record_delivered(pool: &PgPool, owner: &str, delivered: &[Delivered]) -> sqlx::Result<i64> {
    let ids: Vec<Uuid> = delivered.iter().map(|d| d.delivery).collect();
    let statuses: Vec<i32> = delivered.iter().map(|d| d.http_status).collect();
    let latencies: Vec<i32> = delivered.iter().map(|d| d.latency_ms).collect();
    let bodies: Vec<&str> = delivered.iter().map(|d| d.response_body.as_str()).collect();
    sqlx::query_scalar!(
        r#"WITH o AS (
              SELECT * FROM unnest($2::uuid[], $3::int[], $4::int[], $5::text[])
                  AS o(id, http_status, latency_ms, body)
           ), d AS (
              UPDATE webhook_deliveries d
              SET status = 'delivered', last_status = o.http_status, last_error = NULL,
                  lease_owner = NULL, lease_expires_at = NULL, delivered_at = now()
              -- `= ANY` as well as the join: the generic plan then looks the
              -- rows up by id instead of scanning the table.
              FROM o WHERE d.id = ANY($2::uuid[]) AND d.id = o.id AND d.lease_owner = $1
              RETURNING d.id, d.endpoint_id, o.http_status, o.latency_ms, o.body
           ), a AS (
              INSERT INTO webhook_attempts (delivery_id, http_status, latency_ms, response_body)
              SELECT id, http_status, latency_ms, body FROM d
           ), healthy AS (
              UPDATE webhook_endpoints SET failing_since = NULL
              WHERE failing_since IS NOT NULL AND id IN (SELECT endpoint_id FROM d)
           )
           SELECT count(*) AS "n!" FROM d"#,
        owner,
        &ids,
        &statuses,
        &latencies,
        &bodies as &[&str]
    )
    .fetch_one(pool)
    .await
}

/// What one attempt came to.
pub struct AttemptRecord<'a> {
    pub delivery: Uuid,
    pub http_status: Option<i32>,
    pub latency_ms: i32,
    pub response_body: Option<&'a str>,
    pub error: Option<&'a str>,
    /// `delivered`, `failed`, or `pending` (with `next_attempt_at`).
    pub status: &'a str,
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// Turn the endpoint off (it answered 410 Gone).
    pub gone: bool,
    /// Turn the endpoint off when this attempt failed and it has been
    /// failing for this long.
    pub disable_after_secs: f64,
}

/// Logs an attempt and settles the delivery, in one statement, while
/// `owner` still holds it; returns whether it did. The endpoint's health
/// goes along: a success clears its failure record, a failure starts one,
/// and an endpoint that answered 410 or has failed for too long is turned
/// off, with a `webhook.disabled` event to the server's other endpoints.
#[tracing::instrument(level = "debug", skip(pool, record), fields(delivery = %record.delivery))]
pub async fn record(pool: &PgPool, owner: &str, record: &AttemptRecord<'_>) -> sqlx::Result<bool> {
    let done = sqlx::query_scalar!(
        r#"WITH d AS (
              UPDATE webhook_deliveries
              SET status = $3, next_attempt_at = coalesce($4, next_attempt_at), last_status = $5,
                  last_error = $6, lease_owner = NULL, lease_expires_at = NULL,
                  delivered_at = CASE WHEN $3 = 'delivered' THEN now() END
              WHERE id = $1 AND lease_owner = $2
              RETURNING id, endpoint_id
           ), a AS (
              INSERT INTO webhook_attempts (delivery_id, http_status, latency_ms, response_body, error)
              SELECT id, $5, $7, $8, $6 FROM d
           ), e AS (
              SELECT w.id, coalesce(w.enabled AND ($9 OR ($3 <> 'delivered'
                         AND w.failing_since < now() - make_interval(secs => $10))), false) AS off,
                     w.failing_since
              FROM webhook_endpoints w JOIN d ON w.id = d.endpoint_id
           ), health AS (
              -- Written only when something changes: most attempts leave it.
              UPDATE webhook_endpoints w
              SET failing_since = CASE WHEN $3 = 'delivered' THEN NULL
                                       ELSE coalesce(w.failing_since, now()) END,
                  enabled = w.enabled AND NOT e.off,
                  disabled_at = CASE WHEN e.off THEN now() ELSE w.disabled_at END,
                  disabled_reason = CASE WHEN e.off THEN CASE WHEN $9 THEN 'gone' ELSE 'failing' END
                                         ELSE w.disabled_reason END,
                  updated_at = CASE WHEN e.off THEN now() ELSE w.updated_at END
              FROM e
              WHERE w.id = e.id
                AND (e.off OR ($3 = 'delivered' AND w.failing_since IS NOT NULL)
                           OR ($3 <> 'delivered' AND w.failing_since IS NULL))
              RETURNING w.id, w.server_id, w.url, e.off, e.failing_since,
                        'evt_' || replace(gen_random_uuid()::text, '-', '') AS event_id
           ), parked AS (
              -- What a turned-off endpoint has pending waits, out of the
              -- claims' way, until it is turned on again.
              UPDATE webhook_deliveries SET next_attempt_at = 'infinity'
              WHERE endpoint_id IN (SELECT id FROM health WHERE off) AND status = 'pending'
                AND id NOT IN (SELECT id FROM d)
           ), told AS (
              INSERT INTO webhook_deliveries (endpoint_id, event_id, event_type, payload)
              SELECT o.id, h.event_id, 'webhook.disabled', jsonb_build_object(
                  'type', 'webhook.disabled',
                  'timestamp', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
                  'data', jsonb_build_object(
                      'webhook_id', h.id, 'server_id', h.server_id, 'url', h.url,
                      'reason', CASE WHEN $9 THEN 'gone' ELSE 'failing' END,
                      'failing_since', to_char(h.failing_since AT TIME ZONE 'UTC',
                                               'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')))
              FROM health h
              JOIN webhook_endpoints o ON o.server_id = h.server_id AND o.id <> h.id AND o.enabled
                  AND o.purpose = 'events'
                  AND (cardinality(o.event_types) = 0 OR 'webhook.disabled' = ANY (o.event_types))
              WHERE h.off
           )
           SELECT count(*) AS "n!" FROM d"#,
        record.delivery,
        owner,
        record.status,
        record.next_attempt_at,
        record.http_status,
        record.error,
        record.latency_ms,
        record.response_body,
        record.gone,
        record.disable_after_secs
    )
    .fetch_one(pool)
    .await?;
    Ok(done == 1)
}

/// One logged attempt, with its delivery's event.
#[derive(Debug, Clone)]
pub struct AttemptRow {
    pub id: i64,
    pub delivery_id: Uuid,
    pub event_id: String,
    pub event_type: String,
    pub delivery_status: String,
    pub attempted_at: DateTime<Utc>,
    pub http_status: Option<i32>,
    pub latency_ms: i32,
    pub response_body: Option<String>,
    pub error: Option<String>,
}

/// An endpoint's attempts, newest first, older than attempt `before` if
/// given; at most `limit`.
#[tracing::instrument(level = "debug", skip(pool))]
pub async fn attempts(
    pool: &PgPool,
    endpoint: Uuid,
    before: Option<i64>,
    limit: i64,
) -> sqlx::Result<Vec<AttemptRow>> {
    sqlx::query_as!(
        AttemptRow,
        "SELECT a.id, a.delivery_id, d.event_id, d.event_type, d.status AS delivery_status,
                a.attempted_at, a.http_status, a.latency_ms, a.response_body, a.error
         FROM webhook_attempts a
         JOIN webhook_deliveries d ON d.id = a.delivery_id
         WHERE d.endpoint_id = $1 AND ($2::bigint IS NULL OR a.id < $2)
         ORDER BY a.id DESC
         LIMIT $3",
        endpoint,
        before,
        limit
    )
    .fetch_all(pool)
    .await
}

/// Every attempt of one delivery, oldest first.
#[tracing::instrument(level = "debug", skip(pool))]
pub async fn delivery_attempts(pool: &PgPool, delivery: Uuid) -> sqlx::Result<Vec<AttemptRow>> {
    sqlx::query_as!(
        AttemptRow,
        "SELECT a.id, a.delivery_id, d.event_id, d.event_type, d.status AS delivery_status,
                a.attempted_at, a.http_status, a.latency_ms, a.response_body, a.error
         FROM webhook_attempts a
         JOIN webhook_deliveries d ON d.id = a.delivery_id
         WHERE d.id = $1
         ORDER BY a.id",
        delivery
    )
    .fetch_all(pool)
    .await
}

/// Makes a delivery of `endpoint` due now again, whatever became of it;
/// returns whether there was one.
#[tracing::instrument(level = "debug", skip(pool))]
pub async fn retry(pool: &PgPool, endpoint: Uuid, delivery: Uuid) -> sqlx::Result<bool> {
    let done = sqlx::query!(
        "UPDATE webhook_deliveries
         SET status = 'pending', next_attempt_at = now(), attempts = 0, delivered_at = NULL
         WHERE id = $1 AND endpoint_id = $2
           AND (lease_owner IS NULL OR lease_expires_at < now())",
        delivery,
        endpoint
    )
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Whether `endpoint` has the delivery `delivery`.
#[tracing::instrument(level = "debug", skip(pool))]
pub async fn has_delivery(pool: &PgPool, endpoint: Uuid, delivery: Uuid) -> sqlx::Result<bool> {
    sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM webhook_deliveries WHERE id = $1 AND endpoint_id = $2) AS "found!""#,
        delivery,
        endpoint
    )
    .fetch_one(pool)
    .await
}

/// Gives claimed deliveries back unattempted (uncounted), due as before.
#[tracing::instrument(level = "debug", skip(pool, ids), fields(deliveries = ids.len()))]
pub async fn release(pool: &PgPool, owner: &str, ids: &[Uuid]) -> sqlx::Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    sqlx::query!(
        "UPDATE webhook_deliveries
         SET lease_owner = NULL, lease_expires_at = NULL, attempts = greatest(attempts - 1, 0)
         WHERE id = ANY($1) AND lease_owner = $2",
        ids,
        owner
    )
    .execute(pool)
    .await
    .map(|_| ())
}

/// Puts a `webhook.test` event for `endpoint` in the outbox, already
/// claimed by `owner`, and returns it ready to send; `None` if there is no
/// such endpoint.
#[tracing::instrument(level = "debug", skip(pool, payload))]
pub async fn claim_test_event(
    pool: &PgPool,
    owner: &str,
    endpoint: Uuid,
    event_id: &str,
    payload: &serde_json::Value,
) -> sqlx::Result<Option<ClaimedDelivery>> {
    let row = sqlx::query_as!(
        ClaimedRow,
        r#"INSERT INTO webhook_deliveries (endpoint_id, event_id, event_type, payload, attempts,
                                          lease_owner, lease_expires_at)
           SELECT w.id, $3, 'webhook.test', $4, 1, $2, now() + interval '1 minute'
           FROM webhook_endpoints w WHERE w.id = $1
           RETURNING id, endpoint_id, event_id, payload::text AS payload, attempts,
                     (SELECT signing FROM webhook_endpoints WHERE id = $1) AS "signing!",
                     (SELECT secret FROM webhook_endpoints WHERE id = $1) AS "secret!",
                     (SELECT previous_secret FROM webhook_endpoints
                      WHERE id = $1 AND previous_secret_expires_at > now()) AS "previous_secret?",
                     (SELECT url FROM webhook_endpoints WHERE id = $1) AS "url!",
                     (SELECT purpose FROM webhook_endpoints WHERE id = $1) AS "purpose!",
                     NULL::text AS event_kind, NULL::timestamptz AS event_at,
                     NULL::jsonb AS event_detail, NULL::uuid AS message_id, NULL::uuid AS server_id,
                     NULL::text AS tag, NULL::jsonb AS metadata, NULL::uuid AS recipient_id,
                     NULL::text AS recipient"#,
        endpoint,
        owner,
        event_id,
        payload
    )
    .fetch_optional(pool)
    .await?;
    Ok(row.map(ClaimedDelivery::from))
}

/// Ends a test delivery after its one attempt: it is never retried.
#[tracing::instrument(level = "debug", skip(pool))]
pub async fn finish_test(pool: &PgPool, delivery: Uuid) -> sqlx::Result<Option<AttemptRow>> {
    sqlx::query!(
        "UPDATE webhook_deliveries SET status = 'failed', lease_owner = NULL, lease_expires_at = NULL
         WHERE id = $1 AND status = 'pending'",
        delivery
    )
    .execute(pool)
    .await?;
    sqlx::query_as!(
        AttemptRow,
        "SELECT a.id, a.delivery_id, d.event_id, d.event_type, d.status AS delivery_status,
                a.attempted_at, a.http_status, a.latency_ms, a.response_body, a.error
         FROM webhook_attempts a JOIN webhook_deliveries d ON d.id = a.delivery_id
         WHERE a.delivery_id = $1 ORDER BY a.id DESC LIMIT 1",
        delivery
    )
    .fetch_optional(pool)
    .await
}
