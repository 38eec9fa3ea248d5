//! Server API keys (hashes only).

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use crate::domain::{DkimAlgorithm, Redacted, Role, ServerMode};

/// An API key as listed: never the secret.
#[derive(Debug, Clone)]
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
#[derive(Debug)]
pub struct KeyLookup {
    pub key_id: Uuid,
    pub server_id: Uuid,
    pub mode: ServerMode,
    pub revoked: bool,
    /// Whether `last_used_at` is older than a minute (worth a write).
    pub needs_touch: bool,
}

/// Keys as `user` sees them; `$1` is the user, `$2`... follow.
macro_rules! select_visible {
    ($tail:literal $(, $arg:expr)* $(,)?) => {
        sqlx::query_as!(
            ApiKeyRow,
            r#"SELECT k.id, k.server_id, k.name, k.prefix, k.created_at, k.last_used_at,
                      k.revoked_at, m.role AS "role: Role"
               FROM api_keys k
               JOIN servers s ON s.id = k.server_id
               JOIN memberships m ON m.organization_id = s.organization_id AND m.user_id = $1 "#
                + $tail
            $(, $arg)*
        )
    };
}

#[tracing::instrument(level = "debug", skip(pool, hash))]
pub async fn create(
    pool: &PgPool,
    user: Uuid,
    server: Uuid,
    name: &str,
    prefix: &str,
    hash: &[u8],
) -> sqlx::Result<ApiKeyRow> {
    let id = Uuid::now_v7();
    sqlx::query!(
        "INSERT INTO api_keys (id, server_id, name, prefix, key_hash) VALUES ($1, $2, $3, $4, $5)",
        id,
        server,
        name,
        prefix,
        hash
    )
    .execute(pool)
    .await?;
    get_for_user(pool, user, id)
        .await?
        .ok_or(sqlx::Error::RowNotFound)
}

#[tracing::instrument(level = "debug", skip(pool))]
pub async fn list(pool: &PgPool, user: Uuid, server: Uuid) -> sqlx::Result<Vec<ApiKeyRow>> {
    select_visible!("WHERE k.server_id = $2 ORDER BY k.created_at, k.id", user, server)
        .fetch_all(pool)
        .await
}

#[tracing::instrument(level = "debug", skip(pool))]
pub async fn get_for_user(pool: &PgPool, user: Uuid, id: Uuid) -> sqlx::Result<Option<ApiKeyRow>> {
    select_visible!("WHERE k.id = $2", user, id)
        .fetch_optional(pool)
        .await
}

#[tracing::instrument(level = "debug", skip(pool))]
pub async fn rename(pool: &PgPool, id: Uuid, name: &str) -> sqlx::Result<()> {
    sqlx::query!("UPDATE api_keys SET name = $2 WHERE id = $1", id, name)
        .execute(pool)
        .await
        .map(|_| ())
}

/// Revokes a key; revoking twice keeps the first time.
#[tracing::instrument(level = "debug", skip(pool))]
pub async fn revoke(pool: &PgPool, id: Uuid) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1",
        id
    )
    .execute(pool)
    .await
    .map(|_| ())
}

/// Looks a presented key up by its hash.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn authenticate(pool: &PgPool, hash: &[u8]) -> sqlx::Result<Option<KeyLookup>> {
    sqlx::query_as!(
        KeyLookup,
        r#"SELECT k.id AS key_id, k.server_id, s.mode AS "mode: ServerMode",
                  k.revoked_at IS NOT NULL AS "revoked!",
                  (k.last_used_at IS NULL OR k.last_used_at < now() - interval '1 minute')
                      AS "needs_touch!"
           FROM api_keys k JOIN servers s ON s.id = k.server_id
           WHERE k.key_hash = $1"#,
        hash
    )
    .fetch_optional(pool)
    .await
}

/// A presented key and, in the same round trip, the server's sending domain
/// `domain` (the send path needs both on every request).
#[derive(Debug)]
pub struct SendLookup {
    pub key: KeyLookup,
    pub domain_id: Option<Uuid>,
    pub domain_name: Option<String>,
    pub dkim_algorithm: Option<DkimAlgorithm>,
    pub dkim_selector: Option<String>,
    /// Sealed (`crate::sealing`).
    pub sealed_dkim_key: Option<Redacted<Vec<u8>>>,
    pub domain_verified: Option<bool>,
    /// The server adds `List-Unsubscribe` by default.
    pub list_unsubscribe: bool,
    /// The server tracks opens and clicks by default, on its verified
    /// tracking host if it has one.
    pub track_opens: bool,
    pub track_clicks: bool,
    pub tracking_host: Option<String>,
    /// Which of the given recipients (lower case) are on the suppression
    /// list now, and why.
    pub suppressed: Vec<crate::domain::SuppressedAddress>,
}

impl SendLookup {
    /// The domain, if the server has one by that name.
    pub fn domain(&mut self) -> Option<crate::domain::SigningDomain> {
        Some(crate::domain::SigningDomain {
            id: self.domain_id?,
            name: self.domain_name.take()?,
            dkim_algorithm: self.dkim_algorithm?,
            dkim_selector: self.dkim_selector.take()?,
            sealed_dkim_key: self.sealed_dkim_key.take()?,
            verified: self.domain_verified?,
        })
    }
}

/// Everything a send needs from the database before it is stored, in one
/// round trip: the key, the sender's domain, suppressed recipients.
#[tracing::instrument(level = "debug", skip(pool, hash, recipients), fields(recipients = recipients.len()))]
pub async fn authenticate_for_sending(
    pool: &PgPool,
    hash: &[u8],
    domain: Option<&str>,
    recipients: &[String],
) -> sqlx::Result<Option<SendLookup>> {
    let row = sqlx::query!(
        r#"SELECT k.id AS key_id, k.server_id, s.mode AS "mode: ServerMode",
                  k.revoked_at IS NOT NULL AS "revoked!",
                  (k.last_used_at IS NULL OR k.last_used_at < now() - interval '1 minute')
                      AS "needs_touch!", s.list_unsubscribe, s.track_opens, s.track_clicks,
                  CASE WHEN s.tracking_verified_at IS NOT NULL THEN s.tracking_host END AS tracking_host,
                  d.id AS "domain_id?", d.name AS "domain_name?",
                  d.dkim_algorithm AS "dkim_algorithm?: DkimAlgorithm",
                  d.dkim_selector AS "dkim_selector?", d.dkim_private_key AS "dkim_private_key?",
                  d.verified_at IS NOT NULL AS "domain_verified?",
                  (SELECT jsonb_agg(jsonb_build_object('address', x.address, 'reason', x.reason,
                                                       'since', x.created_at, 'expires_at', x.expires_at))
                   FROM suppressions x
                   WHERE x.server_id = k.server_id AND x.address = ANY($3)
                     AND (x.expires_at IS NULL OR x.expires_at > now())) AS suppressed
           FROM api_keys k
           JOIN servers s ON s.id = k.server_id
           LEFT JOIN domains d ON d.server_id = k.server_id AND d.name = $2
           WHERE k.key_hash = $1"#,
        hash,
        domain,
        recipients
    )
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|r| SendLookup {
        key: KeyLookup {
            key_id: r.key_id,
            server_id: r.server_id,
            mode: r.mode,
            revoked: r.revoked,
            needs_touch: r.needs_touch,
        },
        // A domain that is not found has no id; then none of its columns count.
        domain_verified: r.domain_id.and(r.domain_verified),
        list_unsubscribe: r.list_unsubscribe,
        track_opens: r.track_opens,
        track_clicks: r.track_clicks,
        tracking_host: r.tracking_host,
        domain_id: r.domain_id,
        domain_name: r.domain_name,
        dkim_algorithm: r.dkim_algorithm,
        dkim_selector: r.dkim_selector,
        sealed_dkim_key: r.dkim_private_key.map(Redacted::new),
        suppressed: r
            .suppressed
            .and_then(|json| serde_json::from_value(json).ok())
            .unwrap_or_default(),
    }))
}

#[tracing::instrument(level = "debug", skip(pool))]
pub async fn touch(pool: &PgPool, id: Uuid) -> sqlx::Result<()> {
    sqlx::query!("UPDATE api_keys SET last_used_at = now() WHERE id = $1", id)
        .execute(pool)
        .await
        .map(|_| ())
}
