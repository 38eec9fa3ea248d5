//! `POST /v1/messages` and `POST /v1/messages/raw` (server API key).

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::extract::ApiJson;
use crate::auth::{ApiKeyToken, ServerAuth};
use crate::db;
use crate::error::{ApiError, ErrorBody};
use crate::sending::accept::{self, SendResponse};
use crate::sending::idempotency;
use crate::sending::{compose, raw};
use crate::startup::AppState;

/// An address: `"jane@example.org"`, `"Jane Doe <jane@example.org>"`, or an
/// object with `email` and `name`.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(untagged)]
pub enum AddressInput {
    #[schema(example = "Jane Doe <jane@example.org>")]
    Text(String),
    Structured(NamedAddress),
}

/// An address with an optional display name.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NamedAddress {
    #[schema(example = "jane@example.org")]
    pub email: String,
    #[schema(example = "Jane Doe")]
    pub name: Option<String>,
}

/// One address or a list of them.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(untagged)]
pub enum AddressList {
    // Many first: serde would otherwise read `["a", "b"]` as the struct form.
    Many(Vec<AddressInput>),
    One(AddressInput),
}

impl Default for AddressList {
    fn default() -> Self {
        AddressList::Many(Vec::new())
    }
}

impl AddressList {
    pub fn items(&self) -> Vec<&AddressInput> {
        match self {
            AddressList::One(one) => vec![one],
            AddressList::Many(many) => many.iter().collect(),
        }
    }
}

/// A file to attach; with `content_id` it is an inline part that HTML
/// refers to as `cid:<content_id>`.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AttachmentInput {
    #[schema(example = "invoice.pdf")]
    pub filename: String,
    /// Base64 (RFC 4648 §4) of the file.
    #[schema(example = "JVBERi0xLjQK...")]
    pub content: String,
    /// Default `application/octet-stream`.
    #[schema(example = "application/pdf")]
    pub content_type: Option<String>,
    #[schema(example = "logo")]
    pub content_id: Option<String>,
}

/// A message to build, sign and send.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "from": "Acme <hello@example.com>",
    "to": ["jane@example.org"],
    "subject": "Your receipt",
    "text": "Thanks for your order.",
    "html": "<p>Thanks for your order.</p>",
    "tag": "receipt",
    "metadata": {"order_id": "1234"}
}))]
pub struct SendMessage {
    /// The sender; its domain must be a sending domain of this server.
    pub from: AddressInput,
    #[serde(default)]
    pub to: AddressList,
    #[serde(default)]
    pub cc: AddressList,
    /// Recipients not shown in the headers.
    #[serde(default)]
    pub bcc: AddressList,
    #[serde(default)]
    pub reply_to: AddressList,
    #[serde(default)]
    pub subject: String,
    pub text: Option<String>,
    pub html: Option<String>,
    /// Extra headers. Headers Tern sets itself (From, To, Subject, Date,
    /// Message-ID, MIME and DKIM headers, …) are refused.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub attachments: Vec<AttachmentInput>,
    /// A label to filter messages by.
    pub tag: Option<String>,
    /// Your own key/value data, returned with the message and its events.
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

/// An RFC 5322 message as it is, with its envelope.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendRawMessage {
    /// The envelope sender (`MAIL FROM`).
    #[schema(example = "hello@example.com")]
    pub mail_from: String,
    /// The envelope recipients (`RCPT TO`).
    #[schema(value_type = Vec<String>, example = json!(["jane@example.org"]))]
    pub rcpt_to: RcptList,
    /// Base64 of the whole message (headers and body).
    pub raw: String,
    pub tag: Option<String>,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

/// One address or a list of them (plain strings).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
pub enum RcptList {
    Many(Vec<String>),
    One(String),
}

impl RcptList {
    pub fn items(&self) -> Vec<&str> {
        match self {
            RcptList::One(one) => vec![one.as_str()],
            RcptList::Many(many) => many.iter().map(String::as_str).collect(),
        }
    }
}

fn respond((status, body): (StatusCode, serde_json::Value), replayed: bool) -> Response {
    let mut response = (status, Json(body)).into_response();
    if replayed {
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    response
}

async fn replay_if_seen(
    state: &AppState,
    auth: &ServerAuth,
    key: Option<&idempotency::IdempotencyKey>,
) -> Result<Option<Response>, ApiError> {
    let Some(key) = key else { return Ok(None) };
    Ok(idempotency::replay(state, auth.server_id, key)
        .await?
        .map(|replay| {
            let status = StatusCode::from_u16(replay.status).unwrap_or(StatusCode::ACCEPTED);
            respond((status, replay.body), true)
        }))
}

/// Builds, DKIM-signs and queues a message.
///
/// Answers at once with the message id and each recipient's status. On a
/// `development` server nothing is delivered: recipients are `held`.
#[utoipa::path(post, path = "/v1/messages", operation_id = "send_message", tag = "messages",
    security(("api_key" = [])), request_body = SendMessage,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe: the same key and body return the first response")),
    responses(
        (status = 202, description = "Accepted", body = SendResponse),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "Missing, invalid or revoked API key", body = ErrorBody),
        (status = 413, description = "A size limit was exceeded", body = ErrorBody),
        (status = 422, description = "Invalid field, unknown sender domain, or reused Idempotency-Key", body = ErrorBody),
    ))]
pub async fn send_message(
    State(state): State<AppState>,
    token: ApiKeyToken,
    headers: HeaderMap,
    ApiJson(body): ApiJson<SendMessage>,
) -> Result<Response, ApiError> {
    let key = idempotency::from_headers(&headers, "send_message", &body)?;
    // Validate first (no I/O), so that one query can fetch the key, the
    // sender's domain and suppressed recipients; but authenticate before
    // reporting any validation error.
    let validated = compose::validate(&state.settings.limits, body);
    let (domain_name, addresses) = match &validated {
        Ok(v) => (
            Some(v.from.address.domain().as_str()),
            v.recipients.list.iter().map(|(a, _)| a.to_string()).collect(),
        ),
        Err(_) => (None, Vec::new()),
    };
    let mut found =
        db::api_keys::authenticate_for_sending(&state.db, &token.hash(), domain_name, &addresses).await?;
    let auth = ServerAuth::check(&state, found.as_ref().map(|f| &f.key))?;
    if let Some(replayed) = replay_if_seen(&state, &auth, key.as_ref()).await? {
        return Ok(replayed);
    }
    let validated = validated?;
    let domain = found.as_mut().and_then(|f| f.domain());
    let suppressed = found.map(|f| f.suppressed).unwrap_or_default();
    let domain = accept::check_domain(&auth, domain, validated.from.address.domain(), "from")?;
    let prepared = compose::prepare(&state, domain, validated).await?;
    Ok(respond(
        accept::accept(&state, &auth, prepared, &suppressed, key.as_ref()).await?,
        false,
    ))
}

/// Queues a raw RFC 5322 message, DKIM-signing it unless the sender's
/// domain has signed it already.
#[utoipa::path(post, path = "/v1/messages/raw", operation_id = "send_raw_message", tag = "messages",
    security(("api_key" = [])), request_body = SendRawMessage,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe: the same key and body return the first response")),
    responses(
        (status = 202, description = "Accepted", body = SendResponse),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "Missing, invalid or revoked API key", body = ErrorBody),
        (status = 413, description = "A size limit was exceeded", body = ErrorBody),
        (status = 422, description = "Invalid message, envelope or sender domain", body = ErrorBody),
    ))]
pub async fn send_raw_message(
    State(state): State<AppState>,
    auth: ServerAuth,
    headers: HeaderMap,
    ApiJson(body): ApiJson<SendRawMessage>,
) -> Result<Response, ApiError> {
    let key = idempotency::from_headers(&headers, "send_raw_message", &body)?;
    if let Some(replayed) = replay_if_seen(&state, &auth, key.as_ref()).await? {
        return Ok(replayed);
    }
    let prepared = raw::prepare(&state, &auth, body).await?;
    let addresses: Vec<String> = prepared
        .recipients
        .list
        .iter()
        .map(|(a, _)| a.to_string())
        .collect();
    let suppressed = db::messages::suppressed(&state.db, auth.server_id, &addresses).await?;
    Ok(respond(
        accept::accept(&state, &auth, prepared, &suppressed, key.as_ref()).await?,
        false,
    ))
}
