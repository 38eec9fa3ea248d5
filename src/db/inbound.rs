//! Incoming messages: stored by the SMTP server before it answers `250`.

use std::net::IpAddr;
use std::sync::Arc;

use sqlx::PgPool;
use uuid::Uuid;

use super::reports::{self, Effect};

/// One stored copy of a received message: one per route (or return-path
/// target) its recipients reached.
pub struct NewInbound {
    pub id: Uuid,
    pub server_id: Uuid,
    pub domain_id: Option<Uuid>,
    /// `route` or `return_path`.
    pub kind: &'static str,
    pub route_id: Option<Uuid>,
    /// `endpoint`, `hold`, or `pending` (return-path mail).
    pub action: String,
    pub about_recipient_id: Option<Uuid>,
    pub about_message_id: Option<Uuid>,
    pub message_id_header: String,
    pub mail_from: String,
    pub from_header: String,
    pub subject: String,
    /// The message as stored, shared by its copies.
    pub raw: Arc<[u8]>,
    pub client_ip: IpAddr,
    pub helo: String,
    pub tls: bool,
    pub rcpt_to: Vec<String>,
    pub checks: serde_json::Value,
    pub flagged: bool,
    /// The `inbound.received` delivery to queue.
    pub delivery: Option<NewInboundDelivery>,
    /// Return-path mail: what it was found to be (`mail::report`).
    pub report: Option<serde_json::Value>,
    /// Return-path mail: what it does to the recipients it is about,
    /// applied in the same transaction.
    pub effects: Vec<Effect>,
}

/// The `inbound.received` delivery of a copy to its route's endpoint.
pub struct NewInboundDelivery {
    pub id: Uuid,
    pub endpoint_id: Uuid,
    pub event_id: String,
    /// The event as JSON text, stored and later sent as it is.
    pub payload: String,
}

/// Stores the copies of one message, all or none, with the effects of
/// return-path mail applied in the same transaction.
#[tracing::instrument(level = "debug", skip_all, fields(copies = copies.len()))]
pub async fn store(pool: &PgPool, copies: &[NewInbound]) -> sqlx::Result<()> {
    let all: Vec<&NewInbound> = copies.iter().collect();
    if copies.iter().all(|c| c.effects.is_empty()) {
        return store_many(pool, &all).await;
    }
    let mut tx = pool.begin().await?;
    store_many(&mut *tx, &all).await?;
    for copy in copies {
        for effect in &copy.effects {
            reports::apply(&mut tx, Some(copy.id), effect).await?;
        }
    }
    tx.commit().await
}

/// Writes copies (of one message or, by the group commit of
/// `inbound::store`, of many) with one statement, all or none: message,
/// source, outbox row and record of each. Effects are the caller's.
#[tracing::instrument(level = "debug", skip_all, fields(copies = copies.len()))]
pub async fn store_many(db: impl sqlx::PgExecutor<'_>, copies: &[&NewInbound]) -> sqlx::Result<()> {
    let column = |f: fn(&NewInbound) -> Option<Uuid>| copies.iter().map(|c| f(c)).collect::<Vec<_>>();
    let ids: Vec<Uuid> = copies.iter().map(|c| c.id).collect();
    let servers: Vec<Uuid> = copies.iter().map(|c| c.server_id).collect();
    let domains = column(|c| c.domain_id);
    let routes = column(|c| c.route_id);
    let about_recipients = column(|c| c.about_recipient_id);
    let about_messages = column(|c| c.about_message_id);
    let deliveries = column(|c| c.delivery.as_ref().map(|d| d.id));
    let endpoints = column(|c| c.delivery.as_ref().map(|d| d.endpoint_id));
    let event_ids: Vec<Option<&str>> = copies
        .iter()
        .map(|c| c.delivery.as_ref().map(|d| d.event_id.as_str()))
        .collect();
    let payloads: Vec<Option<&str>> = copies
        .iter()
        .map(|c| c.delivery.as_ref().map(|d| d.payload.as_str()))
        .collect();
    let message_ids: Vec<&str> = copies.iter().map(|c| c.message_id_header.as_str()).collect();
    let mail_froms: Vec<&str> = copies.iter().map(|c| c.mail_from.as_str()).collect();
    let from_headers: Vec<&str> = copies.iter().map(|c| c.from_header.as_str()).collect();
    let subjects: Vec<&str> = copies.iter().map(|c| c.subject.as_str()).collect();
    let sizes: Vec<i32> = copies
        .iter()
        .map(|c| i32::try_from(c.raw.len()).unwrap_or(i32::MAX))
        .collect();
    let raws: Vec<&[u8]> = copies.iter().map(|c| &c.raw[..]).collect();
    let kinds: Vec<&str> = copies.iter().map(|c| c.kind).collect();
    let actions: Vec<&str> = copies.iter().map(|c| c.action.as_str()).collect();
    let client_ips: Vec<String> = copies.iter().map(|c| c.client_ip.to_string()).collect();
    let helos: Vec<&str> = copies.iter().map(|c| c.helo.as_str()).collect();
    let tls: Vec<bool> = copies.iter().map(|c| c.tls).collect();
    // Arrays of arrays must be rectangular: each copy's recipients go as
    // one JSON array.
    let rcpt_tos: Vec<serde_json::Value> = copies.iter().map(|c| serde_json::json!(c.rcpt_to)).collect();
    let checks: Vec<&serde_json::Value> = copies.iter().map(|c| &c.checks).collect();
    let flagged: Vec<bool> = copies.iter().map(|c| c.flagged).collect();
    let reports: Vec<Option<&serde_json::Value>> = copies.iter().map(|c| c.report.as_ref()).collect();
    sqlx::query!(
        r#"WITH r AS (
              SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::text[],
                                   $7::text[], $8::int4[], $9::bytea[], $10::text[], $11::uuid[],
                                   $12::text[], $13::uuid[], $14::uuid[], $15::text[], $16::text[],
                                   $17::bool[], $18::jsonb[], $19::jsonb[], $20::uuid[], $21::text[],
                                   $22::text[], $23::bool[], $24::uuid[], $25::jsonb[])
                  AS r(id, server_id, domain_id, message_id, mail_from, from_header, subject, size, raw,
                       kind, route_id, action, about_recipient_id, about_message_id, client_ip, helo,
                       tls, rcpt_to, checks, endpoint_id, event_id, payload, flagged, delivery_id,
                       report)
           ), m AS (
              INSERT INTO messages (id, server_id, domain_id, message_id, mail_from, from_header, subject,
                                    size, direction)
              SELECT id, server_id, domain_id, message_id, mail_from, from_header, subject, size,
                     'incoming'
              FROM r
              RETURNING id
           ), s AS (
              INSERT INTO message_sources (message_id, raw) SELECT r.id, r.raw FROM r JOIN m USING (id)
           ), d AS (
              INSERT INTO webhook_deliveries (id, endpoint_id, event_id, event_type, payload)
              SELECT r.delivery_id, r.endpoint_id, r.event_id, 'inbound.received', r.payload::json
              FROM r JOIN m USING (id) WHERE r.endpoint_id IS NOT NULL
           )
           INSERT INTO inbound_messages (message_id, kind, route_id, action, about_recipient_id,
                                         about_message_id, client_ip, helo, tls, mail_from, rcpt_to,
                                         checks, flagged, delivery_id, report, processed_at)
           SELECT r.id, r.kind, r.route_id, r.action, r.about_recipient_id, r.about_message_id,
                  r.client_ip::inet, r.helo, r.tls, r.mail_from,
                  ARRAY(SELECT jsonb_array_elements_text(r.rcpt_to)), r.checks, r.flagged,
                  r.delivery_id, r.report, CASE WHEN r.kind = 'return_path' THEN now() END
           FROM r JOIN m USING (id)"#,
        &ids,
        &servers,
        &domains as &[Option<Uuid>],
        &message_ids as &[&str],
        &mail_froms as &[&str],
        &from_headers as &[&str],
        &subjects as &[&str],
        &sizes,
        &raws as &[&[u8]],
        &kinds as &[&str],
        &routes as &[Option<Uuid>],
        &actions as &[&str],
        &about_recipients as &[Option<Uuid>],
        &about_messages as &[Option<Uuid>],
        &client_ips,
        &helos as &[&str],
        &tls,
        &rcpt_tos,
        &checks as &[&serde_json::Value],
        &endpoints as &[Option<Uuid>],
        &event_ids as &[Option<&str>],
        &payloads as &[Option<&str>],
        &flagged,
        &deliveries as &[Option<Uuid>],
        &reports as &[Option<&serde_json::Value>]
    )
    .execute(db)
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
