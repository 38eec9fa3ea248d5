//! The SMTP server's IP rules (instance-wide): `block` refuses a client at
//! connect; `allow` exempts it from blocks and DNSBL lookups.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

/// Notified (by a trigger) whenever the rules change.
pub const CHANNEL: &str = "tern_smtp_ip_rules";

#[derive(Debug, Clone)]
pub struct IpRuleRow {
    pub id: Uuid,
    /// CIDR notation.
    pub network: String,
    /// `block` or `allow`.
    pub action: String,
    pub note: String,
    pub created_at: DateTime<Utc>,
}

#[tracing::instrument(level = "debug", skip(pool))]
pub async fn list(pool: &PgPool) -> sqlx::Result<Vec<IpRuleRow>> {
    sqlx::query_as!(
        IpRuleRow,
        r#"SELECT id, network::text AS "network!", action, note, created_at
           FROM smtp_ip_rules ORDER BY network"#
    )
    .fetch_all(pool)
    .await
}

/// Adds a rule; `None` when the network has one already.
#[tracing::instrument(level = "debug", skip(pool))]
pub async fn create(
    pool: &PgPool,
    network: &str,
    action: &str,
    note: &str,
) -> sqlx::Result<Option<IpRuleRow>> {
    sqlx::query_as!(
        IpRuleRow,
        r#"INSERT INTO smtp_ip_rules (id, network, action, note) VALUES ($1, $2::text::cidr, $3, $4)
           ON CONFLICT (network) DO NOTHING
           RETURNING id, network::text AS "network!", action, note, created_at"#,
        Uuid::now_v7(),
        network,
        action,
        note
    )
    .fetch_optional(pool)
    .await
}

/// Deletes a rule; whether there was one.
#[tracing::instrument(level = "debug", skip(pool))]
pub async fn delete(pool: &PgPool, id: Uuid) -> sqlx::Result<bool> {
    let done = sqlx::query!("DELETE FROM smtp_ip_rules WHERE id = $1", id)
        .execute(pool)
        .await?;
    Ok(done.rows_affected() == 1)
}
