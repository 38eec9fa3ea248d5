//! Messages, their per-recipient rows (the delivery queue) and events.

use chrono::{DateTime, Utc};
use sqlx::{FromRow, PgPool, Postgres, QueryBuilder};
use uuid::Uuid;

use crate::domain::{RecipientKind, RecipientStatus};

/// A recipient of a message and its delivery state.
#[derive(Debug, Clone)]
pub struct RecipientRow {
    pub id: Uuid,
    pub message_id: Uuid,
    pub address: String,
    pub kind: RecipientKind,
    pub status: RecipientStatus,
    /// Delivery attempts so far.
    pub attempts: i32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// The last reply from the receiving server (or the local reason), if any.
    pub last_reply: Option<String>,
    /// The host the last attempt talked to (MX, smart host or transport).
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
    /// `outgoing` (sent through the API) or `incoming` (received over SMTP).
    pub direction: String,
}

/// Something that happened to a message or one of its recipients.
#[derive(Debug, Clone)]
pub struct EventRow {
    pub id: i64,
    pub recipient_id: Option<Uuid>,
    /// `accepted`, then one per recipient transition (`queued`, `held`, …).
    pub kind: String,
    pub detail: serde_json::Value,
    pub created_at: DateTime<Utc>,
}

/// A recipient to insert.
#[derive(Debug, Clone)]
pub struct NewRecipient {
    pub id: Uuid,
    pub address: String,
    pub domain: String,
    pub kind: RecipientKind,
    pub status: RecipientStatus,
    /// Why a `suppressed` recipient is (not stored: the answer's).
    pub suppression: Option<crate::domain::SuppressionNote>,
}

/// A message to insert, with its signed source and its recipients.
#[derive(Debug, Clone)]
pub struct NewMessage {
    /// The tracked links' URLs, by index (`messages.links`).
    pub links: Vec<String>,
    pub id: Uuid,
    pub server_id: Uuid,
    pub domain_id: Option<Uuid>,
    /// The `Message-ID` header, without angle brackets.
    pub message_id: String,
    pub mail_from: String,
    pub from_header: String,
    pub subject: String,
    pub tag: Option<String>,
    pub metadata: serde_json::Value,
    /// The source as it will be delivered (signed).
    pub raw: Vec<u8>,
    pub recipients: Vec<NewRecipient>,
}

/// An idempotency record written with the message.
pub struct IdempotencyRecord<'a> {
    pub key: &'a str,
    pub request_hash: &'a [u8],
    pub status: i16,
    pub body: &'a serde_json::Value,
}

/// Why [`insert`] stored nothing.
#[derive(Debug, thiserror::Error)]
pub enum InsertError {
    /// The server has a record for this idempotency key already: a
    /// concurrent request with the same key won.
    #[error("the idempotency key is taken")]
    DuplicateIdempotencyKey,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Stores a message, its source, its recipients, their first events and
/// (if given) the idempotency record in one statement: all or nothing.
#[tracing::instrument(skip_all, fields(message.id = %msg.id, server.id = %msg.server_id), err)]
pub async fn insert(
    pool: &PgPool,
    msg: &NewMessage,
    idempotency: Option<&IdempotencyRecord<'_>>,
) -> Result<(), InsertError> {
    let ids: Vec<Uuid> = msg.recipients.iter().map(|r| r.id).collect();
    let addresses: Vec<&str> = msg.recipients.iter().map(|r| r.address.as_str()).collect();
    let domains: Vec<&str> = msg.recipients.iter().map(|r| r.domain.as_str()).collect();
    let kinds: Vec<&str> = msg.recipients.iter().map(|r| r.kind.as_str()).collect();
    let statuses: Vec<&str> = msg.recipients.iter().map(|r| r.status.as_str()).collect();
    let result = sqlx::query!(
        "WITH m AS (
            INSERT INTO messages (id, server_id, domain_id, message_id, mail_from, from_header,
                                  subject, tag, metadata, size, links)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $21) RETURNING id
         ), s AS (
            INSERT INTO message_sources (message_id, raw) SELECT id, $11 FROM m
         ), r AS (
            INSERT INTO recipients (id, message_id, server_id, address, domain, kind, status, next_attempt_at)
            SELECT u.id, m.id, $2, u.address, u.domain, u.kind, u.status,
                   CASE WHEN u.status = 'queued' THEN now() END
            FROM m, UNNEST($12::uuid[], $13::text[], $14::text[], $15::text[], $16::text[])
                 AS u(id, address, domain, kind, status)
            RETURNING id, message_id, status
         ), e AS (
            INSERT INTO message_events (message_id, recipient_id, kind)
            SELECT message_id, id, status FROM r
         ), i AS (
            INSERT INTO idempotency_keys (server_id, key, request_hash, response_status, response_body)
            SELECT $2, $17::text, $18::bytea, $19::smallint, $20::jsonb WHERE $17::text IS NOT NULL
         )
         INSERT INTO message_events (message_id, kind, detail)
         SELECT id, 'accepted', jsonb_build_object('recipients', cardinality($12::uuid[])) FROM m",
        msg.id,
        msg.server_id,
        msg.domain_id,
        msg.message_id,
        msg.mail_from,
        msg.from_header,
        msg.subject,
        msg.tag,
        msg.metadata,
        i32::try_from(msg.raw.len()).unwrap_or(i32::MAX),
        msg.raw,
        &ids,
        &addresses as &[&str],
        &domains as &[&str],
        &kinds as &[&str],
        &statuses as &[&str],
        idempotency.map(|i| i.key),
        idempotency.map(|i| i.request_hash),
        idempotency.map(|i| i.status),
        idempotency.map(|i| i.body),
        (!msg.links.is_empty()).then_some(msg.links.as_slice())
    )
    .execute(pool)
    .await;
    match result {
        Ok(_) => Ok(()),
        Err(sqlx::Error::Database(err)) if err.constraint() == Some("idempotency_keys_pkey") => {
            Err(InsertError::DuplicateIdempotencyKey)
        }
        Err(err) => Err(err.into()),
    }
}

/// The columns of [`MessageRow`], for the dynamic list query.
const MESSAGE_COLUMNS: &str = "SELECT id, message_id, mail_from, from_header, subject, tag, metadata,
    size, created_at, direction FROM messages m";

#[tracing::instrument(level = "debug", skip(pool))]
pub async fn get(pool: &PgPool, server: Uuid, id: Uuid) -> sqlx::Result<Option<MessageRow>> {
    sqlx::query_as!(
        MessageRow,
        "SELECT id, message_id, mail_from, from_header, subject, tag, metadata, size, created_at, direction
         FROM messages WHERE server_id = $1 AND id = $2",
        server,
        id
    )
    .fetch_optional(pool)
    .await
}

#[tracing::instrument(level = "debug", skip(pool))]
pub async fn source(pool: &PgPool, id: Uuid) -> sqlx::Result<Vec<u8>> {
    sqlx::query_scalar!("SELECT raw FROM message_sources WHERE message_id = $1", id)
        .fetch_one(pool)
        .await
}

/// Recipients of the given messages, in insertion order per message.
#[tracing::instrument(level = "debug", skip_all, fields(messages = messages.len()))]
pub async fn recipients(pool: &PgPool, messages: &[Uuid]) -> sqlx::Result<Vec<RecipientRow>> {
    sqlx::query_as!(
        RecipientRow,
        r#"SELECT id, message_id, address, kind AS "kind: RecipientKind",
                  status AS "status: RecipientStatus", attempts, next_attempt_at, last_reply,
                  last_host, last_tls, updated_at
           FROM recipients WHERE message_id = ANY($1) ORDER BY message_id, id"#,
        messages
    )
    .fetch_all(pool)
    .await
}

#[tracing::instrument(level = "debug", skip(pool))]
pub async fn events(pool: &PgPool, message: Uuid) -> sqlx::Result<Vec<EventRow>> {
    sqlx::query_as!(
        EventRow,
        "SELECT id, recipient_id, kind, detail, created_at FROM message_events
         WHERE message_id = $1 ORDER BY id",
        message
    )
    .fetch_all(pool)
    .await
}

/// Filters for listing messages; all optional and combined with AND.
#[derive(Debug, Default)]
pub struct ListFilter {
    /// `outgoing` or `incoming`.
    pub direction: Option<&'static str>,
    pub status: Option<RecipientStatus>,
    pub recipient: Option<String>,
    pub tag: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    /// Continue after this (created_at, id), newest first.
    pub after: Option<(DateTime<Utc>, Uuid)>,
    pub limit: i64,
}

/// A page of messages, newest first. The filters make the statement, so
/// it is built at run time (and tested in tests/api/list.rs).
#[tracing::instrument(level = "debug", skip(pool))]
pub async fn list(pool: &PgPool, server: Uuid, filter: &ListFilter) -> sqlx::Result<Vec<MessageRow>> {
    let mut q: QueryBuilder<Postgres> = QueryBuilder::new(MESSAGE_COLUMNS);
    q.push(" WHERE server_id = ").push_bind(server);
    if let Some(direction) = filter.direction {
        q.push(" AND direction = ").push_bind(direction);
    }
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
            " AND (EXISTS (SELECT 1 FROM recipients r WHERE r.message_id = m.id AND lower(r.address) = lower(",
        )
        .push_bind(address.clone())
        .push(")) OR EXISTS (SELECT 1 FROM inbound_messages i, unnest(i.rcpt_to) AS t(a) WHERE i.message_id = m.id AND lower(t.a) = lower(")
        .push_bind(address.clone())
        .push(")))");
    }
    q.push(" ORDER BY created_at DESC, id DESC LIMIT ")
        .push_bind(filter.limit);
    q.build_query_as().fetch_all(pool).await
}

/// Whether a recipient of an outgoing message exists.
#[tracing::instrument(level = "debug", skip(pool))]
pub async fn recipient_exists(pool: &PgPool, id: Uuid) -> sqlx::Result<bool> {
    sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM recipients WHERE id = $1) AS "found!""#,
        id
    )
    .fetch_one(pool)
    .await
}
