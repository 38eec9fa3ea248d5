//! The one error shape of the HTTP API:
//! `{"error": {"code": "...", "message": "...", "field": "..."}}`.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::KeyError;
use crate::auth::send_limits::Limited;
use crate::domain::{Invalid, InvalidKind};
use crate::observability::logs::chain;
use crate::sending::SendError;

/// What a client is told about a failed request.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable, machine-readable code, e.g. `invalid_address`.
    #[schema(example = "invalid_address")]
    pub code: &'static str,
    /// Human-readable explanation; wording may change.
    #[schema(example = "`to[0]` is not a valid email address")]
    pub message: String,
    /// The request field at fault, as a JSON path, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "to[0]")]
    pub field: Option<String>,
}

/// The body of every error response.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// Every way an API request can fail; each variant is one HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request is not well-formed (bad JSON, bad parameter).
    #[error("{}", .0.message)]
    BadRequest(ErrorDetail),
    /// 401: no credentials, or credentials that are not valid.
    #[error("{}", .0.message)]
    Unauthorized(ErrorDetail),
    /// 403: valid credentials without the right to do this.
    #[error("{}", .0.message)]
    Forbidden(ErrorDetail),
    /// 404: no such resource visible to the caller.
    #[error("{}", .0.message)]
    NotFound(ErrorDetail),
    /// 409: conflicts with the current state (duplicate name, reused key).
    #[error("{}", .0.message)]
    Conflict(ErrorDetail),
    /// 413: a size limit was exceeded.
    #[error("{}", .0.message)]
    PayloadTooLarge(ErrorDetail),
    /// 415: a body in a media type the operation does not read.
    #[error("{}", .0.message)]
    UnsupportedMediaType(ErrorDetail),
    /// 422: well-formed but semantically invalid input.
    #[error("{}", .0.message)]
    Unprocessable(ErrorDetail),
    /// 429: too many attempts; try later (after `Retry-After` seconds, when
    /// given).
    #[error("{}", .0.message)]
    TooManyRequests(ErrorDetail, Option<u64>),
    /// 500: our fault. Logged in full, reported without detail.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

fn detail(code: &'static str, message: impl Into<String>) -> ErrorDetail {
    ErrorDetail {
        code,
        message: message.into(),
        field: None,
    }
}

impl ApiError {
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::BadRequest(detail(code, message))
    }
    pub fn unauthorized(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::Unauthorized(detail(code, message))
    }
    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::Forbidden(detail(code, message))
    }
    /// A 404 with code `not_found`, naming the kind of resource.
    pub fn not_found(resource: &str) -> Self {
        ApiError::NotFound(detail("not_found", format!("{resource} not found")))
    }
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::Conflict(detail(code, message))
    }
    pub fn too_large(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::PayloadTooLarge(detail(code, message))
    }
    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::Unprocessable(detail(code, message))
    }
    pub fn too_many(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::TooManyRequests(detail(code, message), None)
    }

    /// Names the request field at fault.
    pub fn field(mut self, field: impl Into<String>) -> Self {
        if let Some(detail) = self.detail_mut() {
            detail.field = Some(field.into());
        }
        self
    }

    fn detail_mut(&mut self) -> Option<&mut ErrorDetail> {
        match self {
            ApiError::BadRequest(d)
            | ApiError::Unauthorized(d)
            | ApiError::Forbidden(d)
            | ApiError::NotFound(d)
            | ApiError::Conflict(d)
            | ApiError::PayloadTooLarge(d)
            | ApiError::UnsupportedMediaType(d)
            | ApiError::Unprocessable(d)
            | ApiError::TooManyRequests(d, _) => Some(d),
            ApiError::Internal(_) => None,
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::TooManyRequests(..) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(err: sqlx::Error) -> Self {
        ApiError::Internal(anyhow::Error::new(err))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let retry_after = match &self {
            ApiError::TooManyRequests(_, retry_after) => *retry_after,
            _ => None,
        };
        let mut error = self;
        let detail = match error.detail_mut() {
            Some(detail) => std::mem::replace(detail, self::detail("", "")),
            None => {
                let chain = match &error {
                    ApiError::Internal(err) => chain(err.as_ref()),
                    other => other.to_string(),
                };
                tracing::error!(error = %chain, "request failed");
                self::detail("internal_error", "internal server error")
            }
        };
        let mut response = (status, Json(ErrorBody { error: detail })).into_response();
        if let Some(seconds) = retry_after {
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            JsonRejection::JsonDataError(err) => {
                // serde's message names the path, e.g. "to[1]: invalid type".
                ApiError::unprocessable("invalid_field", err.body_text())
            }
            JsonRejection::JsonSyntaxError(err) => ApiError::bad_request("invalid_json", err.body_text()),
            JsonRejection::MissingJsonContentType(_) => ApiError::UnsupportedMediaType(detail(
                "unsupported_content_type",
                "expected `Content-Type: application/json`",
            )),
            JsonRejection::BytesRejection(err) => {
                if err.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::too_large("payload_too_large", "request body is too large")
                } else {
                    ApiError::bad_request("invalid_body", err.body_text())
                }
            }
            other => ApiError::bad_request("invalid_body", other.body_text()),
        }
    }
}

impl From<PathRejection> for ApiError {
    fn from(_: PathRejection) -> Self {
        ApiError::not_found("resource")
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError::bad_request("invalid_query", rejection.body_text())
    }
}

/// Maps a unique-key violation to a 409, other database errors to a 500.
pub trait ResultExt<T> {
    fn on_unique_violation(self, code: &'static str, message: &str) -> Result<T, ApiError>;
}

impl<T> ResultExt<T> for Result<T, sqlx::Error> {
    fn on_unique_violation(self, code: &'static str, message: &str) -> Result<T, ApiError> {
        self.map_err(|err| match &err {
            sqlx::Error::Database(db) if db.is_unique_violation() => ApiError::conflict(code, message),
            _ => ApiError::from(err),
        })
    }
}

impl From<Invalid> for ApiError {
    fn from(invalid: Invalid) -> Self {
        let detail = ErrorDetail {
            code: invalid.code,
            message: invalid.message,
            field: invalid.field,
        };
        match invalid.kind {
            InvalidKind::Unprocessable => ApiError::Unprocessable(detail),
            InvalidKind::TooLarge => ApiError::PayloadTooLarge(detail),
        }
    }
}

impl From<KeyError> for ApiError {
    fn from(err: KeyError) -> Self {
        match err {
            KeyError::Malformed => ApiError::unauthorized("invalid_api_key", err.to_string()),
            KeyError::Unknown => ApiError::unauthorized("invalid_api_key", err.to_string()),
            KeyError::Revoked => ApiError::unauthorized("api_key_revoked", err.to_string()),
            KeyError::Database(db) => ApiError::from(db),
        }
    }
}

impl From<SendError> for ApiError {
    fn from(err: SendError) -> Self {
        match err {
            SendError::Key(key) => key.into(),
            SendError::Invalid(invalid) => invalid.into(),
            SendError::IdempotencyKeyReused => {
                ApiError::unprocessable("idempotency_key_reused", err.to_string())
            }
            SendError::IdempotencyKeyInUse => ApiError::conflict("idempotency_conflict", err.to_string()),
            SendError::Limited(limited) => {
                let retry_after = match limited {
                    Limited::Rate { retry_after } => retry_after.as_secs_f64().ceil().max(1.0) as u64,
                    Limited::Concurrency => 1,
                };
                let code = match limited {
                    Limited::Rate { .. } => "rate_limited",
                    Limited::Concurrency => "too_many_concurrent_sends",
                };
                ApiError::TooManyRequests(detail(code, limited.to_string()), Some(retry_after))
            }
            SendError::Internal(err) => ApiError::Internal(err),
        }
    }
}
