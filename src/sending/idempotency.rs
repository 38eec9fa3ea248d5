//! `Idempotency-Key`: a retried request returns the first response and
//! creates nothing; the same key with another body is refused.

use axum::http::HeaderMap;
use serde::Serialize;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::db;
use crate::error::ApiError;
use crate::startup::AppState;

/// Header name, as Stripe and the IETF draft spell it.
pub const HEADER: &str = "idempotency-key";

/// A key presented with a request, and the fingerprint of that request.
pub struct IdempotencyKey {
    pub key: String,
    pub request_hash: Vec<u8>,
}

/// A response stored for an earlier request with the same key.
pub struct Replay {
    pub status: u16,
    pub body: serde_json::Value,
}

/// Reads and checks the header; `None` when absent.
pub fn from_headers<T: Serialize>(
    headers: &HeaderMap,
    endpoint: &str,
    body: &T,
) -> Result<Option<IdempotencyKey>, ApiError> {
    let Some(value) = headers.get(HEADER) else {
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
    // The parsed body, serialised again, so that formatting does not matter.
    let canonical = serde_json::to_vec(body).map_err(|e| ApiError::Internal(e.into()))?;
    let mut hasher = Sha256::new();
    hasher.update(endpoint.as_bytes());
    hasher.update([0]);
    hasher.update(&canonical);
    Ok(Some(IdempotencyKey {
        key: key.to_string(),
        request_hash: hasher.finalize().to_vec(),
    }))
}

/// The stored response for `key`, if any; an error if it was another request.
pub async fn replay(
    state: &AppState,
    server: Uuid,
    key: &IdempotencyKey,
) -> Result<Option<Replay>, ApiError> {
    let Some(stored) = db::idempotency::find(&state.db, server, &key.key).await? else {
        return Ok(None);
    };
    if stored.request_hash != key.request_hash {
        return Err(ApiError::unprocessable(
            "idempotency_key_reused",
            "this Idempotency-Key was used with a different request",
        ));
    }
    Ok(Some(Replay {
        status: u16::try_from(stored.response_status).unwrap_or(202),
        body: stored.response_body,
    }))
}
