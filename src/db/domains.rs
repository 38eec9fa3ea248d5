//! Sending domains and their DKIM keys.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use crate::domain::{CheckResult, DkimAlgorithm, DomainDns, RecordStatus, Redacted, Role, SigningDomain};

/// A sending domain as stored (without its private key).
#[derive(Debug, Clone)]
pub struct DomainRow {
    pub id: Uuid,
    pub server_id: Uuid,
    pub name: String,
    pub dkim_algorithm: DkimAlgorithm,
    pub dkim_selector: String,
    pub dkim_public_key: String,
    pub return_path_host: String,
    pub spf_status: RecordStatus,
    pub dkim_status: RecordStatus,
    pub return_path_status: RecordStatus,
    pub dmarc_status: RecordStatus,
    pub mx_status: RecordStatus,
    /// A route takes (or holds) mail at the domain.
    pub receiving: bool,
    pub verified_at: Option<DateTime<Utc>>,
    pub last_checked_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub role: Role,
}

impl DomainRow {
    /// What the domain publishes, for listing and checking its records.
    pub fn dns(&self) -> DomainDns<'_> {
        DomainDns {
            name: &self.name,
            dkim_algorithm: self.dkim_algorithm,
            dkim_selector: &self.dkim_selector,
            dkim_public_key: &self.dkim_public_key,
            return_path_host: &self.return_path_host,
            receiving: self.receiving,
            last_check: CheckResult {
                spf: self.spf_status,
                dkim: self.dkim_status,
                return_path: self.return_path_status,
                dmarc: self.dmarc_status,
                mx: self.mx_status,
                verified: self.verified_at.is_some(),
            },
        }
    }
}

/// A new domain's generated values.
pub struct NewDomain<'a> {
    /// Chosen by the caller: the private key is sealed to it.
    pub id: Uuid,
    pub server_id: Uuid,
    pub name: &'a str,
    pub algorithm: DkimAlgorithm,
    pub selector: &'a str,
    /// Sealed (`crate::sealing`) to `id`.
    pub sealed_private_key: &'a [u8],
    pub public_key: &'a str,
    pub return_path_host: &'a str,
}

/// Domains as `user` sees them; `$1` is the user, `$2`... follow.
macro_rules! select_visible {
    ($tail:literal $(, $arg:expr)* $(,)?) => {
        sqlx::query_as!(
            DomainRow,
            r#"SELECT d.id, d.server_id, d.name, d.dkim_algorithm AS "dkim_algorithm: DkimAlgorithm",
                      d.dkim_selector, d.dkim_public_key, d.return_path_host,
                      d.spf_status AS "spf_status: RecordStatus",
                      d.dkim_status AS "dkim_status: RecordStatus",
                      d.return_path_status AS "return_path_status: RecordStatus",
                      d.dmarc_status AS "dmarc_status: RecordStatus",
                      d.mx_status AS "mx_status: RecordStatus",
                      EXISTS (SELECT 1 FROM routes r WHERE r.domain_id = d.id AND r.action <> 'reject')
                          AS "receiving!",
                      d.verified_at, d.last_checked_at, d.created_at, m.role AS "role: Role"
               FROM domains d
               JOIN servers s ON s.id = d.server_id
               JOIN memberships m ON m.organization_id = s.organization_id AND m.user_id = $1 "#
                + $tail
            $(, $arg)*
        )
    };
}

#[tracing::instrument(level = "debug", skip(pool, new), fields(server.id = %new.server_id, domain = new.name))]
pub async fn create(pool: &PgPool, user: Uuid, new: NewDomain<'_>) -> sqlx::Result<DomainRow> {
    let id = new.id;
    sqlx::query!(
        "INSERT INTO domains (id, server_id, name, dkim_algorithm, dkim_selector,
            dkim_private_key, dkim_public_key, return_path_host)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        id,
        new.server_id,
        new.name,
        new.algorithm as DkimAlgorithm,
        new.selector,
        new.sealed_private_key,
        new.public_key,
        new.return_path_host
    )
    .execute(pool)
    .await?;
    get_for_user(pool, user, id)
        .await?
        .ok_or(sqlx::Error::RowNotFound)
}

#[tracing::instrument(level = "debug", skip(pool))]
pub async fn list(pool: &PgPool, user: Uuid, server: Uuid) -> sqlx::Result<Vec<DomainRow>> {
    select_visible!("WHERE d.server_id = $2 ORDER BY d.name", user, server)
        .fetch_all(pool)
        .await
}

#[tracing::instrument(level = "debug", skip(pool))]
pub async fn get_for_user(pool: &PgPool, user: Uuid, id: Uuid) -> sqlx::Result<Option<DomainRow>> {
    select_visible!("WHERE d.id = $2", user, id)
        .fetch_optional(pool)
        .await
}

#[tracing::instrument(level = "debug", skip(pool))]
pub async fn delete(pool: &PgPool, id: Uuid) -> sqlx::Result<()> {
    sqlx::query!("DELETE FROM domains WHERE id = $1", id)
        .execute(pool)
        .await
        .map(|_| ())
}

/// Stores a DNS check; `verified_at` keeps the first time it passed.
#[tracing::instrument(level = "debug", skip(pool))]
pub async fn record_check(pool: &PgPool, id: Uuid, check: &CheckResult) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE domains SET spf_status = $2, dkim_status = $3, return_path_status = $4,
            dmarc_status = $5, mx_status = $6, last_checked_at = now(),
            verified_at = CASE WHEN $7 THEN coalesce(verified_at, now()) ELSE NULL END
         WHERE id = $1",
        id,
        check.spf as RecordStatus,
        check.dkim as RecordStatus,
        check.return_path as RecordStatus,
        check.dmarc as RecordStatus,
        check.mx as RecordStatus,
        check.verified
    )
    .execute(pool)
    .await
    .map(|_| ())
}

/// The domain `name` of `server`, with its key, for signing a message.
#[tracing::instrument(level = "debug", skip(pool))]
pub async fn for_signing(pool: &PgPool, server: Uuid, name: &str) -> sqlx::Result<Option<SigningDomain>> {
    let row = sqlx::query!(
        r#"SELECT id, name, dkim_algorithm AS "dkim_algorithm: DkimAlgorithm", dkim_selector,
                  dkim_private_key, verified_at IS NOT NULL AS "verified!"
           FROM domains WHERE server_id = $1 AND name = $2"#,
        server,
        name
    )
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|r| SigningDomain {
        id: r.id,
        name: r.name,
        dkim_algorithm: r.dkim_algorithm,
        dkim_selector: r.dkim_selector,
        sealed_dkim_key: Redacted::new(r.dkim_private_key),
        verified: r.verified,
    }))
}

/// Domains whose stored private key is not sealed under the key with this
/// header (`TSK1` and the key id): rows from before sealing, or sealed
/// under another key.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn keys_not_sealed_with(pool: &PgPool, header: &[u8]) -> sqlx::Result<Vec<(Uuid, Vec<u8>)>> {
    let rows = sqlx::query!(
        "SELECT id, dkim_private_key FROM domains
         WHERE substring(dkim_private_key FROM 1 FOR $2) <> $1",
        header,
        header.len() as i32
    )
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|r| (r.id, r.dkim_private_key)).collect())
}

/// Replaces a domain's stored key, if it is still `old`.
#[tracing::instrument(level = "debug", skip(pool, old, new))]
pub async fn replace_key(pool: &PgPool, id: Uuid, old: &[u8], new: &[u8]) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE domains SET dkim_private_key = $3 WHERE id = $1 AND dkim_private_key = $2",
        id,
        old,
        new
    )
    .execute(pool)
    .await
    .map(|_| ())
}

/// Whether any domain's key is stored sealed (starts with `magic`).
#[tracing::instrument(level = "debug", skip_all)]
pub async fn any_key_sealed(pool: &PgPool, magic: &[u8]) -> sqlx::Result<bool> {
    sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM domains
                          WHERE substring(dkim_private_key FROM 1 FOR $2) = $1) AS "sealed!""#,
        magic,
        magic.len() as i32
    )
    .fetch_one(pool)
    .await
}
