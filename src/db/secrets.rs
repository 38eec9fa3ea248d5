//! Instance-wide secrets, created on first use and shared by all processes.

use rand::RngCore;
use sqlx::PgPool;

/// Returns the secret `name`, creating a random one of `len` bytes if absent.
#[tracing::instrument(level = "debug", skip(pool))]
pub async fn get_or_create(pool: &PgPool, name: &str, len: usize) -> sqlx::Result<Vec<u8>> {
    let mut fresh = vec![0u8; len];
    rand::rng().fill_bytes(&mut fresh);
    sqlx::query!(
        "INSERT INTO instance_secrets (name, value) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        name,
        &fresh
    )
    .execute(pool)
    .await?;
    sqlx::query_scalar!("SELECT value FROM instance_secrets WHERE name = $1", name)
        .fetch_one(pool)
        .await
}
