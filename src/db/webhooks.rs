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
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
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
    pub sealed_secret: &'a [u8],
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
            r#"SELECT w.id, w.server_id, w.url, w.description, w.event_types, w.enabled,
                      w.previous_secret_expires_at, w.created_at, w.updated_at, m.role AS "role: Role"
               FROM webhook_endpoints w
               JOIN servers s ON s.id = w.server_id
               JOIN memberships m ON m.organization_id = s.organization_id AND m.user_id = $1 "#
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
        "INSERT INTO webhook_endpoints (id, server_id, url, description, event_types, enabled, secret)
         SELECT $1, $2, $3, $4, $5, $6, $7
         WHERE (SELECT count(*) FROM webhook_endpoints WHERE server_id = $2) < $8",
        new.id,
        new.server_id,
        new.url,
        new.description,
        new.event_types,
        new.enabled,
        new.sealed_secret,
        limit
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
    select_visible!("WHERE w.server_id = $2 ORDER BY w.created_at, w.id", user, server)
        .fetch_all(pool)
        .await
}

#[tracing::instrument(level = "debug", skip(pool))]
pub async fn get_for_user(pool: &PgPool, user: Uuid, id: Uuid) -> sqlx::Result<Option<WebhookRow>> {
    select_visible!("WHERE w.id = $2", user, id)
        .fetch_optional(pool)
        .await
}

#[tracing::instrument(level = "debug", skip(pool, change))]
pub async fn update(pool: &PgPool, id: Uuid, change: WebhookChange<'_>) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE webhook_endpoints
         SET url = coalesce($2, url), description = coalesce($3, description),
             event_types = coalesce($4, event_types), enabled = coalesce($5, enabled),
             updated_at = now()
         WHERE id = $1",
        id,
        change.url,
        change.description,
        change.event_types,
        change.enabled
    )
    .execute(pool)
    .await
    .map(|_| ())
}

/// Puts a new secret in place; the current one signs alongside it until
/// `overlap_secs` from now.
#[tracing::instrument(level = "debug", skip(pool, sealed_secret))]
pub async fn rotate_secret(
    pool: &PgPool,
    id: Uuid,
    sealed_secret: &[u8],
    overlap_secs: f64,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE webhook_endpoints
         SET previous_secret = secret, secret = $2,
             previous_secret_expires_at = now() + make_interval(secs => $3), updated_at = now()
         WHERE id = $1",
        id,
        sealed_secret,
        overlap_secs
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
    pub payload: serde_json::Value,
    /// Attempts so far, this one included.
    pub attempts: i32,
    pub url: String,
    /// Sealed to the endpoint.
    pub secret: Vec<u8>,
    /// Sealed; still signs alongside (only returned while valid).
    pub previous_secret: Option<Vec<u8>>,
}

/// Claims up to `batch` due deliveries of enabled endpoints, other than
/// `busy` ones, for `owner` for `lease_secs`, oldest first; counts the
/// attempt.
#[tracing::instrument(level = "debug", skip(pool, busy), fields(busy = busy.len()))]
pub async fn claim(
    pool: &PgPool,
    owner: &str,
    batch: i64,
    lease_secs: f64,
    busy: &[Uuid],
) -> sqlx::Result<Vec<ClaimedDelivery>> {
    sqlx::query_as!(
        ClaimedDelivery,
        r#"WITH due AS (
              SELECT d.id FROM webhook_deliveries d
              JOIN webhook_endpoints w ON w.id = d.endpoint_id AND w.enabled
              WHERE d.status = 'pending' AND d.next_attempt_at <= now()
                AND (d.lease_expires_at IS NULL OR d.lease_expires_at < now())
                AND d.endpoint_id <> ALL ($4)
              ORDER BY d.next_attempt_at
              LIMIT $2
              FOR UPDATE OF d SKIP LOCKED
           )
           UPDATE webhook_deliveries d
           SET lease_owner = $1, lease_expires_at = now() + make_interval(secs => $3),
               attempts = d.attempts + 1
           FROM due, webhook_endpoints w
           WHERE d.id = due.id AND w.id = d.endpoint_id
           RETURNING d.id, d.endpoint_id, d.event_id, d.payload, d.attempts, w.url, w.secret,
                     CASE WHEN w.previous_secret_expires_at > now() THEN w.previous_secret END
                         AS "previous_secret?""#,
        owner,
        batch,
        lease_secs,
        busy
    )
    .fetch_all(pool)
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
    pub disable_endpoint: bool,
}

/// Logs an attempt and settles the delivery, in one statement, while
/// `owner` still holds it; returns whether it did.
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
           ), off AS (
              UPDATE webhook_endpoints SET enabled = false, updated_at = now()
              WHERE $9 AND id = (SELECT endpoint_id FROM d)
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
        record.disable_endpoint
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
    sqlx::query_as!(
        ClaimedDelivery,
        r#"INSERT INTO webhook_deliveries (endpoint_id, event_id, event_type, payload, attempts,
                                          lease_owner, lease_expires_at)
           SELECT w.id, $3, 'webhook.test', $4, 1, $2, now() + interval '1 minute'
           FROM webhook_endpoints w WHERE w.id = $1
           RETURNING id, endpoint_id, event_id, payload, attempts,
                     (SELECT secret FROM webhook_endpoints WHERE id = $1) AS "secret!",
                     (SELECT previous_secret FROM webhook_endpoints
                      WHERE id = $1 AND previous_secret_expires_at > now()) AS "previous_secret?",
                     (SELECT url FROM webhook_endpoints WHERE id = $1) AS "url!""#,
        endpoint,
        owner,
        event_id,
        payload
    )
    .fetch_optional(pool)
    .await
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
