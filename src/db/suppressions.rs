//! Each server's suppression list: addresses Tern does not send to. Kept in
//! lower case and matched whole; an entry past its `expires_at` no longer
//! counts anywhere and is removed by `expire` (recorded in
//! `suppression_removals`).

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use crate::domain::SuppressionReason;

#[derive(Debug, Clone)]
pub struct SuppressionRow {
    pub address: String,
    pub reason: SuppressionReason,
    pub source_message_id: Option<Uuid>,
    pub detail: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// Filters of a listing, combined with AND; live entries only.
#[derive(Debug, Default)]
pub struct Filter {
    pub reason: Option<SuppressionReason>,
    /// Addresses containing this text (lower case).
    pub address: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    /// Entries after this one (newest first: created before it).
    pub after: Option<(DateTime<Utc>, String)>,
    pub limit: i64,
}

/// Live entries, newest first.
#[tracing::instrument(level = "debug", skip(pool))]
pub async fn list(pool: &PgPool, server: Uuid, filter: &Filter) -> sqlx::Result<Vec<SuppressionRow>> {
    let (after_at, after_address) = match &filter.after {
        Some((at, address)) => (Some(*at), Some(address.as_str())),
        None => (None, None),
    };
    let pattern = filter.address.as_deref().map(|a| {
        format!(
            "%{}%",
            a.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
        )
    });
    sqlx::query_as!(
        SuppressionRow,
        r#"SELECT address, reason AS "reason: SuppressionReason", source_message_id, detail,
                  created_at, updated_at, expires_at
           FROM suppressions
           WHERE server_id = $1 AND (expires_at IS NULL OR expires_at > now())
             AND ($2::text IS NULL OR reason = $2)
             AND ($3::text IS NULL OR address LIKE $3)
             AND ($4::timestamptz IS NULL OR created_at >= $4)
             AND ($5::timestamptz IS NULL OR created_at < $5)
             AND ($6::timestamptz IS NULL OR (created_at, address) < ($6, $7::text))
           ORDER BY created_at DESC, address DESC
           LIMIT $8"#,
        server,
        filter.reason.map(SuppressionReason::as_str),
        pattern,
        filter.since,
        filter.until,
        after_at,
        after_address,
        filter.limit
    )
    .fetch_all(pool)
    .await
}

/// One live entry.
#[tracing::instrument(level = "debug", skip(pool))]
pub async fn get(pool: &PgPool, server: Uuid, address: &str) -> sqlx::Result<Option<SuppressionRow>> {
    sqlx::query_as!(
        SuppressionRow,
        r#"SELECT address, reason AS "reason: SuppressionReason", source_message_id, detail,
                  created_at, updated_at, expires_at
           FROM suppressions
           WHERE server_id = $1 AND address = tern_fold($2) AND (expires_at IS NULL OR expires_at > now())"#,
        server,
        address
    )
    .fetch_optional(pool)
    .await
}

/// An entry to write.
#[derive(Debug, Clone)]
pub struct NewSuppression<'a> {
    pub address: &'a str,
    pub reason: SuppressionReason,
    pub detail: &'a str,
    pub expires_at: Option<DateTime<Utc>>,
}

/// Adds or replaces one entry (a `PUT`: what the caller says wins).
/// Returns the entry and whether it is new (no live entry before).
#[tracing::instrument(level = "debug", skip(pool))]
pub async fn put(
    pool: &PgPool,
    server: Uuid,
    entry: &NewSuppression<'_>,
) -> sqlx::Result<(SuppressionRow, bool)> {
    let row = sqlx::query!(
        r#"WITH old AS (
              SELECT 1 FROM suppressions
              WHERE server_id = $1 AND address = tern_fold($2) AND (expires_at IS NULL OR expires_at > now())
           )
           INSERT INTO suppressions AS s (server_id, address, reason, detail, expires_at)
           VALUES ($1, tern_fold($2), $3, $4, $5)
           ON CONFLICT (server_id, address) DO UPDATE
           SET reason = EXCLUDED.reason, detail = EXCLUDED.detail, expires_at = EXCLUDED.expires_at,
               source_message_id = NULL, updated_at = now(),
               created_at = CASE WHEN s.expires_at IS NOT NULL AND s.expires_at <= now()
                                 THEN now() ELSE s.created_at END
           RETURNING address, reason AS "reason: SuppressionReason", source_message_id, detail,
                     created_at, updated_at, expires_at, NOT EXISTS (SELECT 1 FROM old) AS "new!""#,
        server,
        entry.address,
        entry.reason.as_str(),
        entry.detail,
        entry.expires_at
    )
    .fetch_one(pool)
    .await?;
    Ok((
        SuppressionRow {
            address: row.address,
            reason: row.reason,
            source_message_id: row.source_message_id,
            detail: row.detail,
            created_at: row.created_at,
            updated_at: row.updated_at,
            expires_at: row.expires_at,
        },
        row.new,
    ))
}

/// Adds many entries in one statement, idempotently: an address already
/// suppressed keeps its entry unless that one has expired, or expires and
/// the new one does not. Returns how many entries were written.
#[tracing::instrument(level = "debug", skip(pool, entries), fields(entries = entries.len()))]
pub async fn import(pool: &PgPool, server: Uuid, entries: &[NewSuppression<'_>]) -> sqlx::Result<u64> {
    let addresses: Vec<&str> = entries.iter().map(|e| e.address).collect();
    let reasons: Vec<&str> = entries.iter().map(|e| e.reason.as_str()).collect();
    let details: Vec<&str> = entries.iter().map(|e| e.detail).collect();
    let expiries: Vec<Option<DateTime<Utc>>> = entries.iter().map(|e| e.expires_at).collect();
    let done = sqlx::query!(
        r#"INSERT INTO suppressions AS s (server_id, address, reason, detail, expires_at)
           SELECT DISTINCT ON (tern_fold(e.address)) $1, tern_fold(e.address), e.reason, e.detail, e.expires_at
           FROM unnest($2::text[], $3::text[], $4::text[], $5::timestamptz[])
               AS e(address, reason, detail, expires_at)
           ORDER BY tern_fold(e.address), e.expires_at DESC NULLS FIRST
           ON CONFLICT (server_id, address) DO UPDATE
           SET reason = EXCLUDED.reason, detail = EXCLUDED.detail, expires_at = EXCLUDED.expires_at,
               source_message_id = NULL, updated_at = now(),
               created_at = CASE WHEN s.expires_at <= now() THEN now() ELSE s.created_at END
           WHERE s.expires_at IS NOT NULL AND (s.expires_at <= now() OR EXCLUDED.expires_at IS NULL)"#,
        server,
        &addresses as &[&str],
        &reasons as &[&str],
        &details as &[&str],
        &expiries as &[Option<DateTime<Utc>>]
    )
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

/// Removes a live entry (recorded as `deleted`); whether there was one.
#[tracing::instrument(level = "debug", skip(pool))]
pub async fn delete(pool: &PgPool, server: Uuid, address: &str) -> sqlx::Result<bool> {
    let removed = sqlx::query_scalar!(
        r#"WITH gone AS (
              DELETE FROM suppressions
              WHERE server_id = $1 AND address = tern_fold($2) AND (expires_at IS NULL OR expires_at > now())
              RETURNING server_id, address, reason, created_at, expires_at
           )
           INSERT INTO suppression_removals (server_id, address, reason, created_at, expires_at, cause)
           SELECT server_id, address, reason, created_at, expires_at, 'deleted' FROM gone
           RETURNING 1 AS "one!""#,
        server,
        address
    )
    .fetch_optional(pool)
    .await?;
    Ok(removed.is_some())
}

/// Removes up to `batch` expired entries, recording each as `expired`;
/// returns how many went.
#[tracing::instrument(level = "debug", skip(pool))]
pub async fn expire(pool: &PgPool, batch: i64) -> sqlx::Result<u64> {
    let done = sqlx::query!(
        r#"WITH due AS (
              SELECT server_id, address FROM suppressions
              WHERE expires_at <= now()
              ORDER BY expires_at
              LIMIT $1
              FOR UPDATE SKIP LOCKED
           ), gone AS (
              DELETE FROM suppressions s USING due
              WHERE s.server_id = due.server_id AND s.address = due.address
              RETURNING s.server_id, s.address, s.reason, s.created_at, s.expires_at
           )
           INSERT INTO suppression_removals (server_id, address, reason, created_at, expires_at, cause)
           SELECT server_id, address, reason, created_at, expires_at, 'expired' FROM gone"#,
        batch
    )
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}
