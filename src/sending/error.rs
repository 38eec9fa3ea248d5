//! Why a send was not accepted.

use crate::auth::KeyError;
use crate::domain::Invalid;

/// Every way [`super::send`] can refuse a message; the HTTP API maps each
/// variant to a status (`api::error`), the SMTP submission server will map
/// them to reply codes.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The API key is malformed, unknown or revoked (HTTP 401).
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The message or its envelope failed a check (HTTP 422 or 413).
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// The idempotency key came with another request before (HTTP 422).
    #[error("this Idempotency-Key was used with a different request")]
    IdempotencyKeyReused,
    /// A concurrent request with the same idempotency key has not finished
    /// (HTTP 409).
    #[error("a request with this Idempotency-Key is in progress")]
    IdempotencyKeyInUse,
    /// The key is over its rate or concurrency limit (HTTP 429).
    #[error(transparent)]
    Limited(#[from] crate::auth::send_limits::Limited),
    /// Tern's fault: logged in full, reported without detail (HTTP 500).
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<sqlx::Error> for SendError {
    fn from(err: sqlx::Error) -> Self {
        SendError::Internal(err.into())
    }
}
