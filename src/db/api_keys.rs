//! Server API keys (hashes only).

use chrono::{DateTime, Utc};
use sqlx::{FromRow, PgPool};
use uuid::Uuid;

use crate::domain::Role;
use crate::domain::ServerMode;

/// An API key as listed: never the secret.
#[derive(Debug, Clone, FromRow)]
pub struct ApiKeyRow {
    pub id: Uuid,
    pub server_id: Uuid,
    pub name: String,
    /// The start of the key, to tell keys apart.
    pub prefix: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub role: Role,
}

/// The result of looking a presented key up.
#[derive(Debug, FromRow)]
pub struct KeyLookup {
    pub key_id: Uuid,
    pub server_id: Uuid,
    pub mode: ServerMode,
    pub revoked: bool,
    /// Whether `last_used_at` is older than a minute (worth a write).
    pub needs_touch: bool,
}

macro_rules! select {
    () => {
        "SELECT k.id, k.server_id, k.name, k.prefix, k.created_at, k.last_used_at,
        k.revoked_at, m.role
    FROM api_keys k
    JOIN servers s ON s.id = k.server_id
    JOIN memberships m ON m.organization_id = s.organization_id AND m.user_id = $1"
    };
}

pub async fn create(
    pool: &PgPool,
    user: Uuid,
    server: Uuid,
    name: &str,
    prefix: &str,
    hash: &[u8],
) -> sqlx::Result<ApiKeyRow> {
    let id = Uuid::now_v7();
    sqlx::query("INSERT INTO api_keys (id, server_id, name, prefix, key_hash) VALUES ($1, $2, $3, $4, $5)")
        .bind(id)
        .bind(server)
        .bind(name)
        .bind(prefix)
        .bind(hash)
        .execute(pool)
        .await?;
    get_for_user(pool, user, id)
        .await?
        .ok_or(sqlx::Error::RowNotFound)
}

pub async fn list(pool: &PgPool, user: Uuid, server: Uuid) -> sqlx::Result<Vec<ApiKeyRow>> {
    sqlx::query_as(concat!(
        select!(),
        " WHERE k.server_id = $2 ORDER BY k.created_at, k.id"
    ))
    .bind(user)
    .bind(server)
    .fetch_all(pool)
    .await
}

pub async fn get_for_user(pool: &PgPool, user: Uuid, id: Uuid) -> sqlx::Result<Option<ApiKeyRow>> {
    sqlx::query_as(concat!(select!(), " WHERE k.id = $2"))
        .bind(user)
        .bind(id)
        .fetch_optional(pool)
        .await
}

pub async fn rename(pool: &PgPool, id: Uuid, name: &str) -> sqlx::Result<()> {
    sqlx::query("UPDATE api_keys SET name = $2 WHERE id = $1")
        .bind(id)
        .bind(name)
        .execute(pool)
        .await
        .map(|_| ())
}

/// Revokes a key; revoking twice keeps the first time.
pub async fn revoke(pool: &PgPool, id: Uuid) -> sqlx::Result<()> {
    sqlx::query("UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1")
        .bind(id)
        .execute(pool)
        .await
        .map(|_| ())
}

pub async fn authenticate(pool: &PgPool, hash: &[u8]) -> sqlx::Result<Option<KeyLookup>> {
    sqlx::query_as(
        "SELECT k.id AS key_id, k.server_id, s.mode, k.revoked_at IS NOT NULL AS revoked,
                (k.last_used_at IS NULL OR k.last_used_at < now() - interval '1 minute') AS needs_touch
         FROM api_keys k JOIN servers s ON s.id = k.server_id
         WHERE k.key_hash = $1",
    )
    .bind(hash)
    .fetch_optional(pool)
    .await
}

/// A presented key and, in the same round trip, the server's sending domain
/// `domain` (the send path needs both on every request).
#[derive(Debug, FromRow)]
pub struct SendLookup {
    #[sqlx(flatten)]
    pub key: KeyLookup,
    pub domain_id: Option<Uuid>,
    pub domain_name: Option<String>,
    pub dkim_algorithm: Option<crate::domain::DkimAlgorithm>,
    pub dkim_selector: Option<String>,
    pub dkim_private_key: Option<Vec<u8>>,
    pub domain_verified: Option<bool>,
    /// Which of the given recipients are on the suppression list now.
    pub suppressed: Vec<String>,
}

impl SendLookup {
    /// The domain, if the server has one by that name.
    pub fn domain(&mut self) -> Option<crate::domain::SigningDomain> {
        Some(crate::domain::SigningDomain {
            id: self.domain_id?,
            name: self.domain_name.take()?,
            dkim_algorithm: self.dkim_algorithm?,
            dkim_selector: self.dkim_selector.take()?,
            dkim_private_key: self.dkim_private_key.take()?,
            verified: self.domain_verified?,
        })
    }
}

/// Everything a JSON send needs from the database before it is stored, in
/// one round trip: the key, the sender's domain, suppressed recipients.
pub async fn authenticate_for_sending(
    pool: &PgPool,
    hash: &[u8],
    domain: Option<&str>,
    recipients: &[String],
) -> sqlx::Result<Option<SendLookup>> {
    sqlx::query_as(
        "SELECT k.id AS key_id, k.server_id, s.mode, k.revoked_at IS NOT NULL AS revoked,
                (k.last_used_at IS NULL OR k.last_used_at < now() - interval '1 minute') AS needs_touch,
                d.id AS domain_id, d.name AS domain_name, d.dkim_algorithm, d.dkim_selector,
                d.dkim_private_key, d.verified_at IS NOT NULL AS domain_verified,
                ARRAY(SELECT x.address FROM suppressions x
                      WHERE x.server_id = k.server_id AND x.address = ANY($3)
                        AND (x.expires_at IS NULL OR x.expires_at > now())) AS suppressed
         FROM api_keys k
         JOIN servers s ON s.id = k.server_id
         LEFT JOIN domains d ON d.server_id = k.server_id AND d.name = $2
         WHERE k.key_hash = $1",
    )
    .bind(hash)
    .bind(domain)
    .bind(recipients)
    .fetch_optional(pool)
    .await
}

pub async fn touch(pool: &PgPool, id: Uuid) -> sqlx::Result<()> {
    sqlx::query("UPDATE api_keys SET last_used_at = now() WHERE id = $1")
        .bind(id)
        .execute(pool)
        .await
        .map(|_| ())
}
