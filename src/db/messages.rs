//! Messages, their per-recipient rows (the delivery queue) and events.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{FromRow, PgPool, Postgres, QueryBuilder};
use utoipa::ToSchema;
use uuid::Uuid;

/// Where a recipient stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, sqlx::Type)]
#[sqlx(type_name = "text", rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum RecipientStatus {
    /// Waiting for delivery.
    Queued,
    /// Kept, never delivered (development servers).
    Held,
    /// Accepted by the receiving server.
    Sent,
    /// Temporarily failed; will be retried.
    Deferred,
    /// Permanently rejected by the receiving server.
    Bounced,
    /// Given up after the retry schedule ran out.
    Failed,
    /// Not sent: the address is on the server's suppression list.
    Suppressed,
}

impl RecipientStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RecipientStatus::Queued => "queued",
            RecipientStatus::Held => "held",
            RecipientStatus::Sent => "sent",
            RecipientStatus::Deferred => "deferred",
            RecipientStatus::Bounced => "bounced",
            RecipientStatus::Failed => "failed",
            RecipientStatus::Suppressed => "suppressed",
        }
    }
}

/// How a recipient was addressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, sqlx::Type)]
#[sqlx(type_name = "text", rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum RecipientKind {
    To,
    Cc,
    Bcc,
    /// Given only in the envelope of a raw message.
    Envelope,
}

impl RecipientKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RecipientKind::To => "to",
            RecipientKind::Cc => "cc",
            RecipientKind::Bcc => "bcc",
            RecipientKind::Envelope => "envelope",
        }
    }
}

/// A recipient of a message and its delivery state.
#[derive(Debug, Clone, Serialize, FromRow, ToSchema)]
pub struct Recipient {
    pub id: Uuid,
    #[serde(skip)]
    pub message_id: Uuid,
    #[schema(example = "jane@example.org")]
    pub address: String,
    pub kind: RecipientKind,
    pub status: RecipientStatus,
    /// Delivery attempts so far.
    pub attempts: i32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// The last reply from the receiving server (or the local reason), if any.
    #[schema(example = "250 2.0.0 Ok: queued as 4BzTqv")]
    pub last_reply: Option<String>,
    /// The host the last attempt talked to (MX, smart host or transport).
    #[schema(example = "mx1.example.org")]
    pub last_host: Option<String>,
    /// Whether the last attempt's session was encrypted with STARTTLS.
    pub last_tls: Option<bool>,
    pub updated_at: DateTime<Utc>,
}

/// A stored message's summary row.
#[derive(Debug, Clone, FromRow)]
pub struct MessageRow {
    pub id: Uuid,
    pub message_id: String,
    pub mail_from: String,
    pub from_header: String,
    pub subject: String,
    pub tag: Option<String>,
    pub metadata: serde_json::Value,
    pub size: i32,
    pub created_at: DateTime<Utc>,
}

/// Something that happened to a message or one of its recipients.
#[derive(Debug, Clone, Serialize, FromRow, ToSchema)]
pub struct Event {
    pub id: i64,
    pub recipient_id: Option<Uuid>,
    /// `accepted`, then one per recipient transition (`queued`, `held`, …).
    #[schema(example = "held")]
    pub kind: String,
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
    pub created_at: DateTime<Utc>,
}

/// A recipient to insert.
pub struct NewRecipient {
    pub id: Uuid,
    pub address: String,
    pub domain: String,
    pub kind: RecipientKind,
    pub status: RecipientStatus,
}

/// A message to insert, with its signed source.
pub struct NewMessage<'a> {
    pub id: Uuid,
    pub server_id: Uuid,
    pub domain_id: Option<Uuid>,
    pub message_id: &'a str,
    pub mail_from: &'a str,
    pub from_header: &'a str,
    pub subject: &'a str,
    pub tag: Option<&'a str>,
    pub metadata: &'a serde_json::Value,
    pub raw: &'a [u8],
    pub recipients: &'a [NewRecipient],
}

/// An idempotency record written with the message.
pub struct IdempotencyRecord<'a> {
    pub key: &'a str,
    pub request_hash: &'a [u8],
    pub status: i16,
    pub body: &'a serde_json::Value,
}

/// Which of `addresses` are on `server`'s suppression list now.
pub async fn suppressed(pool: &PgPool, server: Uuid, addresses: &[String]) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar(
        "SELECT address FROM suppressions
         WHERE server_id = $1 AND address = ANY($2) AND (expires_at IS NULL OR expires_at > now())",
    )
    .bind(server)
    .bind(addresses)
    .fetch_all(pool)
    .await
}

/// Stores a message, its source, its recipients, their first events and
/// (if given) the idempotency record in one statement: all or nothing. A
/// second request with the same idempotency key fails on its primary key.
pub async fn insert(
    pool: &PgPool,
    msg: &NewMessage<'_>,
    idempotency: Option<&IdempotencyRecord<'_>>,
) -> sqlx::Result<()> {
    let ids: Vec<Uuid> = msg.recipients.iter().map(|r| r.id).collect();
    let addresses: Vec<&str> = msg.recipients.iter().map(|r| r.address.as_str()).collect();
    let domains: Vec<&str> = msg.recipients.iter().map(|r| r.domain.as_str()).collect();
    let kinds: Vec<&str> = msg.recipients.iter().map(|r| r.kind.as_str()).collect();
    let statuses: Vec<&str> = msg.recipients.iter().map(|r| r.status.as_str()).collect();
    sqlx::query(
        "WITH m AS (
            INSERT INTO messages (id, server_id, domain_id, message_id, mail_from, from_header,
                                  subject, tag, metadata, size)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id
         ), s AS (
            INSERT INTO message_sources (message_id, raw) SELECT id, $11 FROM m
         ), r AS (
            INSERT INTO recipients (id, message_id, address, domain, kind, status, next_attempt_at)
            SELECT u.id, m.id, u.address, u.domain, u.kind, u.status,
                   CASE WHEN u.status = 'queued' THEN now() END
            FROM m, UNNEST($12::uuid[], $13::text[], $14::text[], $15::text[], $16::text[])
                 AS u(id, address, domain, kind, status)
            RETURNING id, message_id, status
         ), e AS (
            INSERT INTO message_events (message_id, recipient_id, kind)
            SELECT message_id, id, status FROM r
         ), i AS (
            INSERT INTO idempotency_keys (server_id, key, request_hash, response_status, response_body)
            SELECT $2, $17, $18, $19, $20 WHERE $17 IS NOT NULL
         )
         INSERT INTO message_events (message_id, kind, detail)
         SELECT id, 'accepted', jsonb_build_object('recipients', cardinality($12::uuid[])) FROM m",
    )
    .bind(msg.id)
    .bind(msg.server_id)
    .bind(msg.domain_id)
    .bind(msg.message_id)
    .bind(msg.mail_from)
    .bind(msg.from_header)
    .bind(msg.subject)
    .bind(msg.tag)
    .bind(msg.metadata)
    .bind(i32::try_from(msg.raw.len()).unwrap_or(i32::MAX))
    .bind(msg.raw)
    .bind(&ids)
    .bind(&addresses)
    .bind(&domains)
    .bind(&kinds)
    .bind(&statuses)
    .bind(idempotency.map(|i| i.key))
    .bind(idempotency.map(|i| i.request_hash))
    .bind(idempotency.map(|i| i.status))
    .bind(idempotency.map(|i| i.body))
    .execute(pool)
    .await
    .map(|_| ())
}

macro_rules! select_message {
    () => {
        "SELECT id, message_id, mail_from, from_header, subject, tag, metadata,
    size, created_at FROM messages m"
    };
}

pub async fn get(pool: &PgPool, server: Uuid, id: Uuid) -> sqlx::Result<Option<MessageRow>> {
    sqlx::query_as(concat!(select_message!(), " WHERE server_id = $1 AND id = $2"))
        .bind(server)
        .bind(id)
        .fetch_optional(pool)
        .await
}

pub async fn source(pool: &PgPool, id: Uuid) -> sqlx::Result<Vec<u8>> {
    sqlx::query_scalar("SELECT raw FROM message_sources WHERE message_id = $1")
        .bind(id)
        .fetch_one(pool)
        .await
}

/// Recipients of the given messages, in insertion order per message.
pub async fn recipients(pool: &PgPool, messages: &[Uuid]) -> sqlx::Result<Vec<Recipient>> {
    sqlx::query_as(
        "SELECT id, message_id, address, kind, status, attempts, next_attempt_at, last_reply,
                last_host, last_tls, updated_at
         FROM recipients WHERE message_id = ANY($1) ORDER BY message_id, id",
    )
    .bind(messages)
    .fetch_all(pool)
    .await
}

pub async fn events(pool: &PgPool, message: Uuid) -> sqlx::Result<Vec<Event>> {
    sqlx::query_as(
        "SELECT id, recipient_id, kind, detail, created_at FROM message_events
         WHERE message_id = $1 ORDER BY id",
    )
    .bind(message)
    .fetch_all(pool)
    .await
}

/// Filters for listing messages; all optional and combined with AND.
#[derive(Debug, Default)]
pub struct ListFilter {
    pub status: Option<RecipientStatus>,
    pub recipient: Option<String>,
    pub tag: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    /// Continue after this (created_at, id), newest first.
    pub after: Option<(DateTime<Utc>, Uuid)>,
    pub limit: i64,
}

pub async fn list(pool: &PgPool, server: Uuid, filter: &ListFilter) -> sqlx::Result<Vec<MessageRow>> {
    let mut q: QueryBuilder<Postgres> = QueryBuilder::new(select_message!());
    q.push(" WHERE server_id = ").push_bind(server);
    if let Some(tag) = &filter.tag {
        q.push(" AND tag = ").push_bind(tag.clone());
    }
    if let Some(since) = filter.since {
        q.push(" AND created_at >= ").push_bind(since);
    }
    if let Some(until) = filter.until {
        q.push(" AND created_at < ").push_bind(until);
    }
    if let Some((at, id)) = filter.after {
        q.push(" AND (created_at, id) < (")
            .push_bind(at)
            .push(", ")
            .push_bind(id)
            .push(")");
    }
    if let Some(status) = filter.status {
        q.push(" AND EXISTS (SELECT 1 FROM recipients r WHERE r.message_id = m.id AND r.status = ")
            .push_bind(status)
            .push(")");
    }
    if let Some(address) = &filter.recipient {
        q.push(
            " AND EXISTS (SELECT 1 FROM recipients r WHERE r.message_id = m.id AND lower(r.address) = lower(",
        )
        .push_bind(address.clone())
        .push("))");
    }
    q.push(" ORDER BY created_at DESC, id DESC LIMIT ")
        .push_bind(filter.limit);
    q.build_query_as().fetch_all(pool).await
}
