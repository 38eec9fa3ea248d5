//! The delivery queue: recipient rows that are due, claimed in batches with
//! `FOR UPDATE SKIP LOCKED` and a lease, so any number of workers on any
//! number of machines share one database. A worker that dies leaves leases
//! that expire; another worker then claims those rows.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

/// A recipient claimed for delivery.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub id: Uuid,
    pub message_id: Uuid,
    pub server_id: Uuid,
    pub address: String,
    pub domain: String,
    /// Attempts so far, this one included (the claim counts it).
    pub attempts: i32,
    /// When the message was accepted, for the delivery latency.
    pub accepted_at: DateTime<Utc>,
}

/// Claims up to `batch` due recipients for `worker` for `lease`. Due:
/// `queued` or `deferred` with `next_attempt_at` passed, and no live lease.
///
/// Fair between servers, as Postfix's queue manager is between
/// destinations: each server with due mail gets an equal share of the
/// batch, taken in turns (every server's oldest, then every server's
/// second oldest, …), so one tenant's backlog never stands in front of
/// another tenant's mail. Oldest first within a server; rows locked by
/// another claimer are skipped, not waited for.
///
/// The claim counts the attempt (`attempts` is returned counting this
/// one), so an attempt cut short by a crash still counts towards the end
/// of the retry schedule; a recipient given back unattempted is uncounted.
#[tracing::instrument(level = "debug", skip(pool))]
pub async fn claim(pool: &PgPool, worker: &str, batch: i64, lease: Duration) -> sqlx::Result<Vec<Claimed>> {
    sqlx::query_as!(
        Claimed,
        "WITH active AS (
            SELECT s.id FROM servers s
            WHERE EXISTS (SELECT 1 FROM recipients r
                          WHERE r.server_id = s.id AND r.status IN ('queued', 'deferred')
                            AND r.next_attempt_at <= now()
                            AND (r.lease_expires_at IS NULL OR r.lease_expires_at < now()))
            -- More servers with mail than a batch holds: a random batch of
            -- them, so that each gets at least one and none is always last.
            ORDER BY random()
            LIMIT $2
         ), share AS (
            SELECT greatest(1, ceil($2::bigint::float8 / greatest(count(*), 1)))::bigint AS n FROM active
         ), picked AS (
            SELECT c.id, c.next_attempt_at,
                   row_number() OVER (PARTITION BY c.server_id ORDER BY c.next_attempt_at) AS turn
            FROM active a, share CROSS JOIN LATERAL (
                SELECT r.id, r.server_id, r.next_attempt_at FROM recipients r
                WHERE r.server_id = a.id AND r.status IN ('queued', 'deferred')
                  AND r.next_attempt_at <= now()
                  AND (r.lease_expires_at IS NULL OR r.lease_expires_at < now())
                ORDER BY r.next_attempt_at
                LIMIT share.n
                FOR UPDATE SKIP LOCKED
            ) c
         ), due AS (
            SELECT id FROM picked ORDER BY turn, next_attempt_at LIMIT $2
         )
         UPDATE recipients r
         SET lease_owner = $1, lease_expires_at = now() + make_interval(secs => $3),
             attempts = r.attempts + 1
         FROM due, messages m
         WHERE r.id = due.id AND m.id = r.message_id
         RETURNING r.id, r.message_id, r.server_id, r.address, r.domain, r.attempts,
                   m.created_at AS accepted_at",
        worker,
        batch,
        lease.as_secs_f64()
    )
    .fetch_all(pool)
    .await
}

/// Gives claimed recipients back unattempted, each to be due again at its
/// own time: a destination with more mail in hand than it can take now
/// pushes the rest back, spread over when it can take them, instead of
/// leaving it at the head of the queue in front of every other
/// destination (KumoMTA delays messages when a ready queue is full, the
/// same way). Returns how many `worker` still held.
#[tracing::instrument(level = "debug", skip(pool, ids, due), fields(recipients = ids.len()))]
pub async fn push_back(
    pool: &PgPool,
    worker: &str,
    ids: &[Uuid],
    due: &[DateTime<Utc>],
) -> sqlx::Result<u64> {
    let done = sqlx::query!(
        "UPDATE recipients r
         SET lease_owner = NULL, lease_expires_at = NULL,
             attempts = greatest(r.attempts - 1, 0), next_attempt_at = p.due
         FROM unnest($1::uuid[], $3::timestamptz[]) AS p(id, due)
         WHERE r.id = p.id AND r.lease_owner = $2",
        ids,
        worker,
        due
    )
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

/// Gives a claimed recipient back without an attempt (e.g. on shutdown);
/// returns whether `worker` still held it.
#[tracing::instrument(level = "debug", skip(pool))]
pub async fn release(pool: &PgPool, worker: &str, id: Uuid) -> sqlx::Result<bool> {
    Ok(release_all(pool, worker, &[id]).await? == 1)
}

/// Gives claimed recipients back without an attempt, in one statement;
/// returns how many `worker` still held.
#[tracing::instrument(level = "debug", skip(pool, ids), fields(recipients = ids.len()))]
pub async fn release_all(pool: &PgPool, worker: &str, ids: &[Uuid]) -> sqlx::Result<u64> {
    let done = sqlx::query!(
        "UPDATE recipients SET lease_owner = NULL, lease_expires_at = NULL,
             attempts = greatest(attempts - 1, 0)
         WHERE id = ANY($1) AND lease_owner = $2",
        ids,
        worker
    )
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

/// Extends `worker`'s lease on recipients whose attempt is under way;
/// returns how many it still held.
#[tracing::instrument(level = "debug", skip(pool, ids), fields(recipients = ids.len()))]
pub async fn renew(pool: &PgPool, worker: &str, ids: &[Uuid], lease: Duration) -> sqlx::Result<u64> {
    let done = sqlx::query!(
        "UPDATE recipients SET lease_expires_at = now() + make_interval(secs => $3)
         WHERE id = ANY($1) AND lease_owner = $2",
        ids,
        worker,
        lease.as_secs_f64()
    )
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

/// What a delivery attempt came to for one recipient.
pub struct Outcome {
    pub recipient: Uuid,
    pub status: crate::domain::RecipientStatus,
    /// The remote reply or local reason, as text.
    pub reply: String,
    /// When to try again (`deferred` only).
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// The host the attempt talked to, and whether it used TLS.
    pub host: Option<String>,
    pub tls: Option<bool>,
    /// Event detail: host, TLS, reply code… (`attempt` is added).
    pub detail: serde_json::Value,
    /// A hard bounce about the address: suppress it, for this many seconds
    /// (`Some(None)`: for ever).
    pub suppress: Option<Option<f64>>,
}

/// Records attempts and their events in one statement (so the recipients of
/// one SMTP transaction are recorded together or not at all), for the
/// recipients `worker` still holds the lease of; returns those recorded.
#[tracing::instrument(level = "debug", skip(pool, outcomes), fields(recipients = outcomes.len()))]
pub async fn complete(pool: &PgPool, worker: &str, outcomes: &[Outcome]) -> sqlx::Result<Vec<Uuid>> {
    let ids: Vec<Uuid> = outcomes.iter().map(|o| o.recipient).collect();
    let statuses: Vec<&str> = outcomes.iter().map(|o| o.status.as_str()).collect();
    let replies: Vec<&str> = outcomes.iter().map(|o| o.reply.as_str()).collect();
    let next: Vec<Option<DateTime<Utc>>> = outcomes.iter().map(|o| o.next_attempt_at).collect();
    let hosts: Vec<Option<&str>> = outcomes.iter().map(|o| o.host.as_deref()).collect();
    let tls: Vec<Option<bool>> = outcomes.iter().map(|o| o.tls).collect();
    let details: Vec<&serde_json::Value> = outcomes.iter().map(|o| &o.detail).collect();
    let suppress: Vec<bool> = outcomes.iter().map(|o| o.suppress.is_some()).collect();
    let lifetimes: Vec<Option<f64>> = outcomes.iter().map(|o| o.suppress.flatten()).collect();
    sqlx::query_scalar!(
        "WITH o AS (
            SELECT * FROM unnest($2::uuid[], $3::text[], $4::text[], $5::timestamptz[],
                                 $6::text[], $7::bool[], $8::jsonb[], $9::bool[], $10::float8[])
                AS o(id, status, reply, next_attempt_at, host, tls, detail, suppress, lifetime)
         ), u AS (
            UPDATE recipients r
            SET status = o.status, last_reply = o.reply,
                next_attempt_at = o.next_attempt_at, last_host = o.host, last_tls = o.tls,
                lease_owner = NULL, lease_expires_at = NULL, updated_at = now()
            FROM o WHERE r.id = o.id AND r.lease_owner = $1
            RETURNING r.id, r.message_id, r.server_id, r.address, r.attempts, o.status, o.detail,
                      o.next_attempt_at, o.suppress, o.lifetime, o.reply
         ), s AS (
            -- Hard bounces about the address: the longer-lived entry stays.
            INSERT INTO suppressions AS s (server_id, address, reason, source_message_id, detail, expires_at)
            SELECT DISTINCT ON (server_id, tern_fold(address))
                   server_id, tern_fold(address), 'hard_bounce', message_id, left(reply, 1000),
                   now() + make_interval(secs => lifetime)
            FROM u WHERE suppress
            ORDER BY server_id, tern_fold(address)
            ON CONFLICT (server_id, address) DO UPDATE
            SET reason = EXCLUDED.reason, source_message_id = EXCLUDED.source_message_id,
                detail = EXCLUDED.detail, expires_at = EXCLUDED.expires_at, updated_at = now(),
                created_at = CASE WHEN s.expires_at <= now() THEN now() ELSE s.created_at END
            WHERE s.expires_at IS NOT NULL
              AND (s.expires_at <= now() OR EXCLUDED.expires_at IS NULL OR EXCLUDED.expires_at > s.expires_at)
         )
         INSERT INTO message_events (message_id, recipient_id, kind, detail)
         SELECT message_id, id, status,
                detail || jsonb_build_object('attempt', attempts)
                       || CASE WHEN next_attempt_at IS NULL THEN '{}'::jsonb ELSE jsonb_build_object(
                              'next_attempt_at',
                              to_char(next_attempt_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')) END
         FROM u
         RETURNING recipient_id AS \"recipient_id!\"",
        worker,
        &ids,
        &statuses as &[&str],
        &replies as &[&str],
        &next as &[Option<DateTime<Utc>>],
        &hosts as &[Option<&str>],
        &tls as &[Option<bool>],
        &details as &[&serde_json::Value],
        &suppress,
        &lifetimes as &[Option<f64>]
    )
    .fetch_all(pool)
    .await
}

/// Which claimed recipients are on their server's suppression list now.
#[tracing::instrument(level = "debug", skip_all, fields(recipients = claimed.len()))]
pub async fn suppressed(pool: &PgPool, claimed: &[Claimed]) -> sqlx::Result<Vec<Uuid>> {
    let ids: Vec<Uuid> = claimed.iter().map(|c| c.id).collect();
    let servers: Vec<Uuid> = claimed.iter().map(|c| c.server_id).collect();
    let addresses: Vec<&str> = claimed.iter().map(|c| c.address.as_str()).collect();
    sqlx::query_scalar!(
        r#"SELECT c.id AS "id!" FROM unnest($1::uuid[], $2::uuid[], $3::text[]) AS c(id, server_id, address)
         JOIN suppressions s ON s.server_id = c.server_id AND s.address = tern_fold(c.address)
         WHERE s.expires_at IS NULL OR s.expires_at > now()"#,
        &ids,
        &servers,
        &addresses as &[&str]
    )
    .fetch_all(pool)
    .await
}

/// What delivering a message needs: its signed source and the host of its
/// sending domain's return path.
#[derive(Debug)]
pub struct Outgoing {
    pub raw: Vec<u8>,
    pub return_path_host: Option<String>,
}

#[tracing::instrument(level = "debug", skip(pool))]
pub async fn outgoing(pool: &PgPool, message: Uuid) -> sqlx::Result<Outgoing> {
    sqlx::query_as!(
        Outgoing,
        "SELECT s.raw, d.return_path_host
         FROM messages m
         JOIN message_sources s ON s.message_id = m.id
         LEFT JOIN domains d ON d.id = m.domain_id
         WHERE m.id = $1",
        message
    )
    .fetch_one(pool)
    .await
}

/// How much work waits in the queue.
#[derive(Debug, Clone, Copy, Default)]
pub struct Depth {
    pub queued: i64,
    pub deferred: i64,
    /// How long the oldest due recipient has waited, in seconds (0 if none).
    pub oldest_due_secs: f64,
}

/// The queue's depth by status and the age of its oldest due recipient.
/// Walks only the partial index of due work: it costs as much as the queue
/// is long, never the history.
#[tracing::instrument(level = "debug", skip(pool))]
pub async fn depth(pool: &PgPool) -> sqlx::Result<Depth> {
    sqlx::query_as!(
        Depth,
        r#"SELECT count(*) FILTER (WHERE status = 'queued') AS "queued!",
                  count(*) FILTER (WHERE status = 'deferred') AS "deferred!",
                  coalesce(extract(epoch FROM now() - min(next_attempt_at)
                                   FILTER (WHERE next_attempt_at <= now()))::float8, 0)
                      AS "oldest_due_secs!"
           FROM recipients WHERE status IN ('queued', 'deferred')"#
    )
    .fetch_one(pool)
    .await
}

/// One server's share of the queue.
#[derive(Debug, Clone, Copy)]
pub struct ServerDepth {
    pub queued: i64,
    pub deferred: i64,
    /// When the oldest message still waiting for a recipient was accepted.
    pub oldest_accepted_at: Option<DateTime<Utc>>,
}

/// What waits in the queue for `server`: its partial index of due work,
/// and the messages of those recipients.
#[tracing::instrument(level = "debug", skip(pool))]
pub async fn server_depth(pool: &PgPool, server: Uuid) -> sqlx::Result<ServerDepth> {
    sqlx::query_as!(
        ServerDepth,
        r#"SELECT count(*) FILTER (WHERE r.status = 'queued') AS "queued!",
                  count(*) FILTER (WHERE r.status = 'deferred') AS "deferred!",
                  min(m.created_at) AS oldest_accepted_at
           FROM recipients r JOIN messages m ON m.id = r.message_id
           WHERE r.server_id = $1 AND r.status IN ('queued', 'deferred')"#,
        server
    )
    .fetch_one(pool)
    .await
}

/// The channel workers LISTEN on; a trigger notifies it on new recipients.
pub const CHANNEL: &str = "tern_queue";
