//! Stored responses of requests sent with an `Idempotency-Key`.

use sqlx::PgPool;
use uuid::Uuid;

/// A response recorded for a key.
#[derive(Debug)]
pub struct Stored {
    pub request_hash: Vec<u8>,
    pub response_status: i16,
    pub response_body: serde_json::Value,
}

#[tracing::instrument(level = "debug", skip(pool))]
pub async fn find(pool: &PgPool, server: Uuid, key: &str) -> sqlx::Result<Option<Stored>> {
    sqlx::query_as!(
        Stored,
        "SELECT request_hash, response_status, response_body FROM idempotency_keys
         WHERE server_id = $1 AND key = $2",
        server,
        key
    )
    .fetch_optional(pool)
    .await
}

/// Forgets idempotency keys older than `hours` (a retry after a day is a
/// new request); returns how many went.
#[tracing::instrument(level = "debug", skip(pool))]
pub async fn purge(pool: &PgPool, hours: i32) -> sqlx::Result<u64> {
    sqlx::query!(
        "DELETE FROM idempotency_keys WHERE created_at < now() - make_interval(hours => $1)",
        hours
    )
    .execute(pool)
    .await
    .map(|r| r.rows_affected())
}
