//! Reading messages back: one with its recipients, events and headers, or a
//! filtered, newest-first page of them (server API key; `server_messages`
//! serves the same to administrators).

use std::collections::{BTreeMap, HashMap};

use axum::Json;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::extract::{ApiPath, ApiQuery};
use super::webhooks::WebhookAttempt;
use crate::api::error::{ApiError, ErrorBody};
use crate::auth::ServerAuth;
use crate::db;
use crate::db::messages::{ListFilter, MessageRow};
use crate::domain::{RecipientKind, RecipientStatus};
use crate::mail::raw::header_fields;
use crate::state::AppState;
use crate::webhooks::events::{InboundChecks, InboundEnvelope};

/// A recipient of a message and its delivery state.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Recipient {
    pub id: Uuid,
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

impl From<db::messages::RecipientRow> for Recipient {
    fn from(row: db::messages::RecipientRow) -> Self {
        Recipient {
            id: row.id,
            address: row.address,
            kind: row.kind,
            status: row.status,
            attempts: row.attempts,
            next_attempt_at: row.next_attempt_at,
            last_reply: row.last_reply,
            last_host: row.last_host,
            last_tls: row.last_tls,
            updated_at: row.updated_at,
        }
    }
}

/// Something that happened to a message or one of its recipients.
#[derive(Debug, Clone, Serialize, ToSchema)]
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

impl From<db::messages::EventRow> for Event {
    fn from(row: db::messages::EventRow) -> Self {
        Event {
            id: row.id,
            recipient_id: row.recipient_id,
            kind: row.kind,
            detail: row.detail,
            created_at: row.created_at,
        }
    }
}

/// One header of the stored message, unfolded.
#[derive(Serialize, ToSchema)]
pub struct HeaderView {
    #[schema(example = "Subject")]
    pub name: String,
    pub value: String,
}

/// Which way a message went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Sent through the API.
    Outgoing,
    /// Received by Tern's SMTP server.
    Incoming,
}

impl Direction {
    fn as_str(self) -> &'static str {
        match self {
            Direction::Outgoing => "outgoing",
            Direction::Incoming => "incoming",
        }
    }
}

/// What Tern's SMTP server recorded of a received message.
#[derive(Serialize, ToSchema)]
pub struct InboundDetail {
    /// `route` (mail for a route) or `return_path` (a bounce, feedback
    /// report or unsubscribe mail about a message this server sent).
    #[schema(example = "route")]
    pub kind: String,
    pub route_id: Option<Uuid>,
    /// For route mail `endpoint` or `hold`; for return-path mail what it
    /// was found to be: `hard_bounce`, `soft_bounce`, `delivery_report`,
    /// `complaint`, `feedback` (another feedback type), `unsubscribe`,
    /// `auto_reply`, `untrusted` (a report from a sender not in
    /// `smtp.feedback_senders`) or `unrecognized`.
    #[schema(example = "endpoint")]
    pub action: String,
    /// Return-path mail: what Tern read of it (`kind`: `delivery` with the
    /// per-recipient DSN fields, `feedback`, `auto_reply`, `unrecognized`;
    /// and the quoted original's Message-ID, return path and recipients).
    pub report: Option<serde_json::Value>,
    /// Return-path mail: the message (and recipient) it is about.
    pub about_message_id: Option<Uuid>,
    pub about_recipient_id: Option<Uuid>,
    pub envelope: InboundEnvelope,
    pub checks: Option<InboundChecks>,
    /// A check failed that the route's policy accepted with a flag.
    pub flagged: bool,
    /// Attempts to deliver it to the route's endpoint, oldest first.
    pub endpoint_attempts: Vec<WebhookAttempt>,
}

/// A message as listed.
#[derive(Serialize, ToSchema)]
pub struct MessageSummary {
    pub id: Uuid,
    pub direction: Direction,
    /// The `Message-ID` header, without angle brackets.
    pub message_id: String,
    /// The `From` header.
    #[schema(example = "Acme <hello@example.com>")]
    pub from: String,
    /// The envelope sender given at submission.
    pub mail_from: String,
    pub subject: String,
    pub tag: Option<String>,
    pub metadata: BTreeMap<String, String>,
    /// Size of the stored, signed message in bytes.
    pub size: i32,
    pub created_at: DateTime<Utc>,
    pub recipients: Vec<Recipient>,
}

/// A message with everything Tern knows of it.
#[derive(Serialize, ToSchema)]
pub struct MessageDetail {
    #[serde(flatten)]
    pub summary: MessageSummary,
    /// Every event, oldest first.
    pub events: Vec<Event>,
    pub headers: Vec<HeaderView>,
    /// Received messages: the connection, the checks and the route.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inbound: Option<InboundDetail>,
    /// Sent messages: opens and clicks (zero unless tracked).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tracking: Option<MessageTracking>,
    /// Base64 of the stored (signed) source, with `?include=raw`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw: Option<String>,
    /// The first text and HTML bodies, decoded, with `?include=body`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<MessageBody>,
}

/// A message's readable bodies, decoded to UTF-8 from the stored MIME.
#[derive(Serialize, ToSchema)]
pub struct MessageBody {
    pub text: Option<String>,
    /// As the sender wrote it: show it only in a sandbox with scripts off.
    pub html: Option<String>,
}

impl MessageBody {
    fn of(source: &[u8]) -> MessageBody {
        match mail_parser::MessageParser::default().parse(source) {
            Some(message) => MessageBody {
                text: message.body_text(0).map(|t| t.into_owned()),
                html: message.body_html(0).map(|h| h.into_owned()),
            },
            None => MessageBody {
                text: None,
                html: None,
            },
        }
    }
}

/// A sent message's opens and clicks (machine-flagged ones counted, and
/// counted apart).
#[derive(Serialize, ToSchema)]
pub struct MessageTracking {
    pub opens: i64,
    pub opens_machine: i64,
    pub first_open_at: Option<DateTime<Utc>>,
    pub last_open_at: Option<DateTime<Utc>>,
    pub clicks: i64,
    pub clicks_machine: i64,
    /// Every tracked link, by index.
    pub links: Vec<LinkClicks>,
}

/// One tracked link and its clicks.
#[derive(Serialize, ToSchema)]
pub struct LinkClicks {
    pub link: i16,
    pub url: String,
    pub clicks: i64,
    pub clicks_machine: i64,
    pub first_click_at: Option<DateTime<Utc>>,
    pub last_click_at: Option<DateTime<Utc>>,
}

impl From<db::tracking::MessageStats> for MessageTracking {
    fn from(s: db::tracking::MessageStats) -> Self {
        MessageTracking {
            opens: s.opens,
            opens_machine: s.opens_machine,
            first_open_at: s.first_open_at,
            last_open_at: s.last_open_at,
            clicks: s.clicks,
            clicks_machine: s.clicks_machine,
            links: s
                .links
                .into_iter()
                .map(|l| LinkClicks {
                    link: l.link,
                    url: l.url,
                    clicks: l.clicks,
                    clicks_machine: l.clicks_machine,
                    first_click_at: l.first_click_at,
                    last_click_at: l.last_click_at,
                })
                .collect(),
        }
    }
}

/// A page of messages, newest first.
#[derive(Serialize, ToSchema)]
pub struct MessageList {
    pub data: Vec<MessageSummary>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// The bytes of a stored message, as `GET /v1/messages/{id}/source`
/// returns them (the document's schema for that body).
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary, content_media_type = "message/rfc822")]
pub struct MessageSource(#[allow(dead_code)] Vec<u8>);

/// Options for `GET /v1/messages/{id}`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct GetParams {
    /// Comma-separated extras: `raw` adds the stored source (base64),
    /// `body` the decoded text and HTML bodies.
    #[param(example = "body")]
    pub include: Option<String>,
}

impl GetParams {
    /// `(raw, body)`: which extras were asked for.
    fn extras(&self) -> Result<(bool, bool), ApiError> {
        let (mut raw, mut body) = (false, false);
        for part in self.include.as_deref().unwrap_or("").split(',').map(str::trim) {
            match part {
                "" => {}
                "raw" => raw = true,
                "body" => body = true,
                _ => {
                    return Err(ApiError::bad_request(
                        "invalid_query",
                        "`include` takes `raw` and `body`, separated by commas",
                    )
                    .field("include"));
                }
            }
        }
        Ok((raw, body))
    }
}

/// Filters for `GET /v1/messages`, combined with AND.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only sent (`outgoing`) or received (`incoming`) messages.
    pub direction: Option<Direction>,
    /// Messages with at least one recipient in this status.
    pub status: Option<RecipientStatus>,
    /// Messages to this address (case-insensitive).
    #[param(max_length = 254)]
    pub recipient: Option<String>,
    /// Messages with this tag.
    #[param(max_length = 100)]
    pub tag: Option<String>,
    /// Created at or after (RFC 3339).
    pub since: Option<DateTime<Utc>>,
    /// Created before (RFC 3339).
    pub until: Option<DateTime<Utc>>,
    /// Page size, 1 to 100; default 25.
    #[param(minimum = 1, maximum = 100, default = 25)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

fn summary(row: MessageRow, recipients: Vec<Recipient>) -> MessageSummary {
    MessageSummary {
        id: row.id,
        direction: if row.direction == "incoming" {
            Direction::Incoming
        } else {
            Direction::Outgoing
        },
        message_id: row.message_id,
        from: row.from_header,
        mail_from: row.mail_from,
        subject: row.subject,
        tag: row.tag,
        metadata: serde_json::from_value(row.metadata).unwrap_or_default(),
        size: row.size,
        created_at: row.created_at,
        recipients,
    }
}

fn encode_cursor(at: DateTime<Utc>, id: Uuid) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}.{}", at.timestamp_micros(), id))
}

fn decode_cursor(cursor: &str) -> Option<(DateTime<Utc>, Uuid)> {
    let text = String::from_utf8(URL_SAFE_NO_PAD.decode(cursor).ok()?).ok()?;
    let (micros, id) = text.split_once('.')?;
    Some((
        DateTime::from_timestamp_micros(micros.parse().ok()?)?,
        id.parse().ok()?,
    ))
}

async fn visible(state: &AppState, server: Uuid, id: Uuid) -> Result<MessageRow, ApiError> {
    db::messages::get(&state.db, server, id)
        .await?
        .ok_or_else(|| ApiError::not_found("message"))
}

/// Gets a message: per-recipient status, events, headers, size.
#[utoipa::path(get, path = "/v1/messages/{message_id}", operation_id = "get_message", tag = "messages",
    security(("api_key" = [])), params(("message_id" = Uuid, Path), GetParams),
    responses((status = 200, description = "OK", body = MessageDetail), (status = 401, description = "Missing or invalid credentials", body = ErrorBody), (status = 404, description = "Not found (or not visible to you)", body = ErrorBody)))]
pub async fn get_message(
    State(state): State<AppState>,
    auth: ServerAuth,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(params): ApiQuery<GetParams>,
) -> Result<Json<MessageDetail>, ApiError> {
    detail(&state, auth.server_id, id, &params).await.map(Json)
}

/// One message of `server` with its recipients, events, headers and checks.
pub(super) async fn detail(
    state: &AppState,
    server: Uuid,
    id: Uuid,
    params: &GetParams,
) -> Result<MessageDetail, ApiError> {
    let (want_raw, want_body) = params.extras()?;
    let row = visible(state, server, id).await?;
    let ids = [id];
    let (recipients, events, source) = tokio::try_join!(
        db::messages::recipients(&state.db, &ids),
        db::messages::events(&state.db, id),
        db::messages::source(&state.db, id),
    )?;
    let headers = header_fields(&source, usize::MAX)
        .unwrap_or_default()
        .into_iter()
        .map(|f| HeaderView {
            name: f.name,
            value: f.value,
        })
        .collect();
    let raw = want_raw.then(|| STANDARD.encode(&source));
    let body = want_body.then(|| MessageBody::of(&source));
    let inbound = match db::inbound::get(&state.db, id).await? {
        Some(row) => Some(inbound_detail(state, row).await?),
        None => None,
    };
    let tracking = if row.direction == "outgoing" {
        Some(db::tracking::message_stats(&state.db, id).await?.into())
    } else {
        None
    };
    Ok(MessageDetail {
        summary: summary(row, recipients.into_iter().map(Recipient::from).collect()),
        events: events.into_iter().map(Event::from).collect(),
        headers,
        inbound,
        tracking,
        raw,
        body,
    })
}

async fn inbound_detail(state: &AppState, row: db::inbound::InboundRow) -> Result<InboundDetail, ApiError> {
    let attempts = match row.delivery_id {
        Some(delivery) => db::webhooks::delivery_attempts(&state.db, delivery).await?,
        None => Vec::new(),
    };
    Ok(InboundDetail {
        kind: row.kind,
        route_id: row.route_id,
        action: row.action,
        report: row.report,
        about_message_id: row.about_message_id,
        about_recipient_id: row.about_recipient_id,
        envelope: InboundEnvelope {
            mail_from: row.mail_from,
            rcpt_to: row.rcpt_to,
            client_ip: row.client_ip,
            helo: row.helo,
            tls: row.tls,
        },
        checks: serde_json::from_value(row.checks).ok(),
        flagged: row.flagged,
        endpoint_attempts: attempts.into_iter().map(WebhookAttempt::from).collect(),
    })
}

/// One attachment of a stored message, decoded: the parts a `parsed`
/// inbound payload left out for their size are fetched here.
#[utoipa::path(get, path = "/v1/messages/{message_id}/attachments/{index}", operation_id = "get_message_attachment", tag = "messages",
    security(("api_key" = [])), params(("message_id" = Uuid, Path), ("index" = usize, Path, description = "The attachment's `index` in the payload (from 0)")),
    responses((status = 200, description = "The attachment's decoded content, with its own content type", content_type = "application/octet-stream", body = MessageSource), (status = 401, description = "Missing or invalid credentials", body = ErrorBody), (status = 404, description = "Not found (or not visible to you)", body = ErrorBody)))]
pub async fn get_message_attachment(
    State(state): State<AppState>,
    auth: ServerAuth,
    ApiPath((id, index)): ApiPath<(Uuid, usize)>,
) -> Result<impl IntoResponse, ApiError> {
    visible(&state, auth.server_id, id).await?;
    let source = db::messages::source(&state.db, id).await?;
    let message = mail_parser::MessageParser::default()
        .parse(&source[..])
        .ok_or_else(|| ApiError::not_found("attachment"))?;
    let part = message
        .attachment(u32::try_from(index).unwrap_or(u32::MAX))
        .ok_or_else(|| ApiError::not_found("attachment"))?;
    let content_type = crate::inbound::payload::content_type(part);
    Ok(([(CONTENT_TYPE, content_type)], part.contents().to_vec()))
}

/// The stored, signed source as `message/rfc822`.
#[utoipa::path(get, path = "/v1/messages/{message_id}/source", operation_id = "get_message_source", tag = "messages",
    security(("api_key" = [])), params(("message_id" = Uuid, Path)),
    responses((status = 200, description = "The message as stored and sent (RFC 5322 bytes)", content_type = "message/rfc822", body = MessageSource), (status = 401, description = "Missing or invalid credentials", body = ErrorBody), (status = 404, description = "Not found (or not visible to you)", body = ErrorBody)))]
pub async fn get_message_source(
    State(state): State<AppState>,
    auth: ServerAuth,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    source(&state, auth.server_id, id).await
}

/// The stored source of one message of `server`, as `message/rfc822`.
pub(super) async fn source(
    state: &AppState,
    server: Uuid,
    id: Uuid,
) -> Result<impl IntoResponse + use<>, ApiError> {
    visible(state, server, id).await?;
    let source = db::messages::source(&state.db, id).await?;
    Ok(([(CONTENT_TYPE, "message/rfc822")], source))
}

/// Lists messages, newest first, with cursor pagination.
#[utoipa::path(get, path = "/v1/messages", operation_id = "list_messages", tag = "messages",
    security(("api_key" = [])), params(ListParams),
    responses((status = 200, description = "OK", body = MessageList), (status = 400, description = "Malformed request", body = ErrorBody), (status = 401, description = "Missing or invalid credentials", body = ErrorBody)))]
pub async fn list_messages(
    State(state): State<AppState>,
    auth: ServerAuth,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<Json<MessageList>, ApiError> {
    list(&state, auth.server_id, params).await.map(Json)
}

/// A filtered, newest-first page of `server`'s messages.
pub(super) async fn list(
    state: &AppState,
    server: Uuid,
    params: ListParams,
) -> Result<MessageList, ApiError> {
    let limit = super::extract::page_limit(params.limit)?;
    let after = match &params.cursor {
        Some(cursor) => Some(decode_cursor(cursor).ok_or_else(|| {
            ApiError::bad_request("invalid_cursor", "`cursor` is not a cursor this API returned")
                .field("cursor")
        })?),
        None => None,
    };
    if params.recipient.as_ref().is_some_and(|r| r.len() > 254)
        || params.tag.as_ref().is_some_and(|t| t.len() > 100)
    {
        return Err(ApiError::bad_request("invalid_query", "filter value too long"));
    }
    let filter = ListFilter {
        direction: params.direction.map(Direction::as_str),
        status: params.status,
        recipient: params.recipient,
        tag: params.tag,
        since: params.since,
        until: params.until,
        after,
        limit: limit + 1,
    };
    let mut rows = db::messages::list(&state.db, server, &filter).await?;
    let next_cursor = if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last().map(|r| encode_cursor(r.created_at, r.id))
    } else {
        None
    };
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    let mut by_message: HashMap<Uuid, Vec<Recipient>> = HashMap::new();
    for recipient in db::messages::recipients(&state.db, &ids).await? {
        by_message
            .entry(recipient.message_id)
            .or_default()
            .push(recipient.into());
    }
    let data = rows
        .into_iter()
        .map(|row| {
            let mine = by_message.remove(&row.id).unwrap_or_default();
            summary(row, mine)
        })
        .collect();
    Ok(MessageList { data, next_cursor })
}

#[cfg(test)]
mod tests {
    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let at = chrono::DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap();
        let id = uuid::Uuid::now_v7();
        assert_eq!(
            super::decode_cursor(&super::encode_cursor(at, id)),
            Some((at, id))
        );
        assert_eq!(super::decode_cursor("!!"), None);
        assert_eq!(super::decode_cursor("bm9wZQ"), None);
    }
}
