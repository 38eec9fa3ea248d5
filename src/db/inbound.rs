//! Incoming messages: stored by the SMTP server before it answers `250`.

use sqlx::PgPool;
use uuid::Uuid;

use super::reports::{self, Effect};

/// One stored copy of a received message: one per route (or return-path
/// target) its recipients reached.
pub struct NewInbound<'a> {
    pub id: Uuid,
    pub server_id: Uuid,
    pub domain_id: Option<Uuid>,
    /// `route` or `return_path`.
    pub kind: &'a str,
    pub route_id: Option<Uuid>,
    /// `endpoint`, `hold`, or `pending` (return-path mail).
    pub action: &'a str,
    pub about_recipient_id: Option<Uuid>,
    pub about_message_id: Option<Uuid>,
    pub message_id_header: &'a str,
    pub mail_from: &'a str,
    pub from_header: &'a str,
    pub subject: &'a str,
    pub raw: &'a [u8],
    pub client_ip: std::net::IpAddr,
    pub helo: &'a str,
    pub tls: bool,
    pub rcpt_to: &'a [String],
    pub checks: &'a serde_json::Value,
    pub flagged: bool,
    /// The `inbound.received` delivery to queue: its id, endpoint, event id
    /// and payload.
    pub delivery: Option<(Uuid, Uuid, &'a str, &'a serde_json::Value)>,
    /// Return-path mail: what it was found to be (`mail::report`).
    pub report: Option<&'a serde_json::Value>,
    /// Return-path mail: what it does to the recipients it is about,
    /// applied in the same transaction.
    pub effects: &'a [Effect],
}

/// Stores the copies of one message, all or none: one statement for the
/// usual single copy, a transaction around several.
#[tracing::instrument(level = "debug", skip_all, fields(copies = copies.len()))]
pub async fn store(pool: &PgPool, copies: &[NewInbound<'_>]) -> sqlx::Result<()> {
    if let [copy] = copies
        && copy.effects.is_empty()
    {
        let mut conn = pool.acquire().await?;
        return insert(&mut conn, copy).await;
    }
    let mut tx = pool.begin().await?;
    for copy in copies {
        insert(&mut tx, copy).await?;
        for effect in copy.effects {
            reports::apply(&mut tx, Some(copy.id), effect).await?;
        }
    }
    tx.commit().await
}

/// One copy: message, source, outbox row and record.
async fn insert(conn: &mut sqlx::PgConnection, copy: &NewInbound<'_>) -> sqlx::Result<()> {
    let size = i32::try_from(copy.raw.len()).unwrap_or(i32::MAX);
    let (delivery, endpoint, event_id, payload) = match copy.delivery {
        Some((delivery, endpoint, event_id, payload)) => {
            (Some(delivery), Some(endpoint), Some(event_id), Some(payload))
        }
        None => (None, None, None, None),
    };
    sqlx::query!(
        r#"WITH m AS (
              INSERT INTO messages (id, server_id, domain_id, message_id, mail_from, from_header, subject,
                                    size, direction)
              VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'incoming')
              RETURNING id
           ), s AS (
              INSERT INTO message_sources (message_id, raw) SELECT id, $9 FROM m
           ), d AS (
              INSERT INTO webhook_deliveries (id, endpoint_id, event_id, event_type, payload)
              SELECT $24, $20, $21, 'inbound.received', $22 FROM m WHERE $20::uuid IS NOT NULL
              RETURNING 1
           ), i AS (
              INSERT INTO inbound_messages (message_id, kind, route_id, action, about_recipient_id,
                                            about_message_id, client_ip, helo, tls, mail_from, rcpt_to,
                                            checks, flagged, delivery_id, report, processed_at)
              SELECT id, $10, $11, $12, $13, $14, $15::text::inet, $16, $17, $5, $18, $19, $23, $24,
                     $25, CASE WHEN $10 = 'return_path' THEN now() END FROM m
           )
           SELECT count(*) AS "queued!" FROM d"#,
        copy.id,
        copy.server_id,
        copy.domain_id,
        copy.message_id_header,
        copy.mail_from,
        copy.from_header,
        copy.subject,
        size,
        copy.raw,
        copy.kind,
        copy.route_id,
        copy.action,
        copy.about_recipient_id,
        copy.about_message_id,
        copy.client_ip.to_string(),
        copy.helo,
        copy.tls,
        copy.rcpt_to,
        copy.checks,
        endpoint,
        event_id,
        payload,
        copy.flagged,
        delivery,
        copy.report
    )
    .fetch_one(&mut *conn)
    .await
    .map(|_| ())
}

/// The server a return-path address (a VERP token's recipient or message)
/// belongs to, and the message it is about.
#[tracing::instrument(level = "debug", skip(pool))]
pub async fn return_path_owner(
    pool: &PgPool,
    recipient: Option<Uuid>,
    message: Option<Uuid>,
) -> sqlx::Result<Option<(Uuid, Uuid)>> {
    let row = sqlx::query!(
        r#"SELECT m.server_id, m.id
           FROM messages m
           WHERE m.id = coalesce((SELECT message_id FROM recipients WHERE id = $1), $2)"#,
        recipient,
        message
    )
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|r| (r.server_id, r.id)))
}

/// Whether `host` is a return-path host of some domain.
#[tracing::instrument(level = "debug", skip(pool))]
pub async fn is_return_path_host(pool: &PgPool, host: &str) -> sqlx::Result<bool> {
    sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM domains WHERE lower(return_path_host) = $1) AS "found!""#,
        host
    )
    .fetch_one(pool)
    .await
}

/// What the SMTP server recorded of an incoming message.
#[derive(Debug, Clone)]
pub struct InboundRow {
    pub kind: String,
    pub route_id: Option<Uuid>,
    pub action: String,
    pub about_recipient_id: Option<Uuid>,
    pub about_message_id: Option<Uuid>,
    pub client_ip: String,
    pub helo: String,
    pub tls: bool,
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    pub checks: serde_json::Value,
    pub flagged: bool,
    pub delivery_id: Option<Uuid>,
    pub processed_at: Option<chrono::DateTime<chrono::Utc>>,
    pub report: Option<serde_json::Value>,
}

#[tracing::instrument(level = "debug", skip(pool))]
pub async fn get(pool: &PgPool, message: Uuid) -> sqlx::Result<Option<InboundRow>> {
    sqlx::query_as!(
        InboundRow,
        r#"SELECT kind, route_id, action, about_recipient_id, about_message_id,
                  host(client_ip) AS "client_ip!", helo, tls, mail_from, rcpt_to, checks, flagged,
                  delivery_id, processed_at, report
           FROM inbound_messages WHERE message_id = $1"#,
        message
    )
    .fetch_optional(pool)
    .await
}
