//! `POST /v1/messages` and `POST /v1/messages/raw` (server API key): parse
//! and validate the body, hand it to [`sending::send`], answer.

pub mod request;
mod validate;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use self::request::{SendMessage, SendRawMessage};
use super::error::{ApiError, ErrorBody};
use super::extract::ApiJson;
use crate::auth::ApiKeyToken;
use crate::config::Limits;
use crate::domain::Invalid;
use crate::sending::{self, Accepted, Envelope, IdempotencyKey, Request, SendError};
use crate::state::AppState;

/// Header name, as Stripe and the IETF draft spell it.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// The `Idempotency-Key` header, as the document describes it.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)]
struct IdempotencyKeyHeader {
    /// Makes retries safe: the same key and body return the first response.
    #[param(
        rename = "Idempotency-Key",
        nullable = false,
        min_length = 1,
        max_length = 255,
        pattern = "^[!-~]+$"
    )]
    key: Option<String>,
}

/// Reads and checks the `Idempotency-Key` header; `None` when absent.
/// Only the header: fingerprinting the request waits for authentication.
fn idempotency_header(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(IDEMPOTENCY_KEY) else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .ok()
        .filter(|k| !k.is_empty() && k.len() <= 255 && k.bytes().all(|b| (33..=126).contains(&b)))
        .ok_or_else(|| {
            ApiError::bad_request(
                "invalid_idempotency_key",
                "Idempotency-Key must be 1 to 255 printable ASCII characters",
            )
        })?;
    Ok(Some(key.to_string()))
}

/// The request's idempotency key: the header's key with a fingerprint of
/// the request as parsed and serialised again (formatting does not
/// matter).
fn idempotency_key<T: Serialize>(
    key: Option<String>,
    operation: &str,
    body: &T,
) -> Result<Option<IdempotencyKey>, SendError> {
    key.map(|key| {
        let canonical = serde_json::to_vec(body).map_err(|e| SendError::Internal(e.into()))?;
        Ok(IdempotencyKey::new(key, operation, &canonical))
    })
    .transpose()
}

fn respond(accepted: Accepted) -> Response {
    let mut response = (StatusCode::ACCEPTED, Json(accepted.answer)).into_response();
    if accepted.replayed {
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    response
}

/// How one send endpoint reads its body.
struct Kind<T> {
    /// Names the operation in the idempotency fingerprint.
    operation: &'static str,
    /// The addresses, read before authentication.
    envelope: fn(&Limits, &T) -> Result<Envelope, Invalid>,
    /// Everything else, after authentication.
    validate: fn(&Limits, T) -> Result<Request, Invalid>,
}

/// The common path of both send endpoints: the envelope now, the rest in
/// the closure `sending::send` runs once the key is authenticated.
async fn submit<T: Serialize>(
    state: &AppState,
    token: &ApiKeyToken,
    headers: &HeaderMap,
    body: T,
    kind: Kind<T>,
) -> Result<Response, ApiError> {
    let key = idempotency_header(headers)?;
    let limits = &state.settings.limits;
    let envelope = (kind.envelope)(limits, &body);
    let complete = move || {
        let key = idempotency_key(key, kind.operation, &body)?;
        Ok((key, (kind.validate)(limits, body)))
    };
    Ok(respond(sending::send(state, token, envelope, complete).await?))
}

/// Builds, DKIM-signs and queues a message.
///
/// Answers at once with the message id and each recipient's status. On a
/// `development` server nothing is delivered: recipients are `held`.
#[utoipa::path(post, path = "/v1/messages", operation_id = "send_message", tag = "messages",
    security(("api_key" = [])), request_body = SendMessage,
    params(IdempotencyKeyHeader),
    responses(
        (status = 202, description = "Accepted", body = crate::sending::SendResponse,
            headers(("Idempotent-Replayed" = bool, description = "`true` when this is the stored answer to an earlier request with the same key"))),
        (status = 400, description = "Malformed JSON, or a malformed Idempotency-Key", body = ErrorBody),
        (status = 401, description = "Missing, invalid or revoked API key", body = ErrorBody),
        (status = 409, description = "A request with this Idempotency-Key is still in progress (`idempotency_conflict`)", body = ErrorBody),
        (status = 413, description = "A size limit was exceeded", body = ErrorBody),
        (status = 422, description = "Invalid field, unknown sender domain, or reused Idempotency-Key", body = ErrorBody),
        (status = 429, description = "The key is over its rate (`rate_limited`) or concurrency (`too_many_concurrent_sends`) limit", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait before trying again"))),
    ))]
pub async fn send_message(
    State(state): State<AppState>,
    token: ApiKeyToken,
    headers: HeaderMap,
    ApiJson(body): ApiJson<SendMessage>,
) -> Result<Response, ApiError> {
    let kind = Kind {
        operation: "send_message",
        envelope: validate::compose_envelope,
        validate: validate::compose,
    };
    submit(&state, &token, &headers, body, kind).await
}

/// Queues a raw RFC 5322 message, DKIM-signing it unless the sender's
/// domain has signed it already.
#[utoipa::path(post, path = "/v1/messages/raw", operation_id = "send_raw_message", tag = "messages",
    security(("api_key" = [])), request_body = SendRawMessage,
    params(IdempotencyKeyHeader),
    responses(
        (status = 202, description = "Accepted", body = crate::sending::SendResponse,
            headers(("Idempotent-Replayed" = bool, description = "`true` when this is the stored answer to an earlier request with the same key"))),
        (status = 400, description = "Malformed JSON, or a malformed Idempotency-Key", body = ErrorBody),
        (status = 401, description = "Missing, invalid or revoked API key", body = ErrorBody),
        (status = 409, description = "A request with this Idempotency-Key is still in progress (`idempotency_conflict`)", body = ErrorBody),
        (status = 413, description = "A size limit was exceeded", body = ErrorBody),
        (status = 422, description = "Invalid message, envelope or sender domain", body = ErrorBody),
        (status = 429, description = "The key is over its rate (`rate_limited`) or concurrency (`too_many_concurrent_sends`) limit", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait before trying again"))),
    ))]
pub async fn send_raw_message(
    State(state): State<AppState>,
    token: ApiKeyToken,
    headers: HeaderMap,
    ApiJson(body): ApiJson<SendRawMessage>,
) -> Result<Response, ApiError> {
    let kind = Kind {
        operation: "send_raw_message",
        envelope: validate::raw_envelope,
        validate: validate::raw,
    };
    submit(&state, &token, &headers, body, kind).await
}
