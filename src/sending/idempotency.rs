//! Idempotency keys: a retried request returns the first answer and
//! creates nothing; the same key with another request is refused.

use sha2::{Digest, Sha256};
use sqlx::PgPool;
use uuid::Uuid;

use super::{Accepted, SendError};
use crate::db;

/// A key presented with a request, and the fingerprint of that request.
#[derive(Debug, Clone)]
pub struct IdempotencyKey {
    pub key: String,
    pub request_hash: Vec<u8>,
}

impl IdempotencyKey {
    /// `key` as the caller gave it (checked by the caller's protocol);
    /// `operation` and `canonical` (the request in a stable serialisation)
    /// make the fingerprint, so formatting does not matter but content does.
    pub fn new(key: String, operation: &str, canonical: &[u8]) -> IdempotencyKey {
        let mut hasher = Sha256::new();
        hasher.update(operation.as_bytes());
        hasher.update([0]);
        hasher.update(canonical);
        IdempotencyKey {
            key,
            request_hash: hasher.finalize().to_vec(),
        }
    }
}

/// The answer stored for `key`, if any; an error if it was another request.
pub(super) async fn replay(
    pool: &PgPool,
    server: Uuid,
    key: &IdempotencyKey,
) -> Result<Option<Accepted>, SendError> {
    let Some(stored) = db::idempotency::find(pool, server, &key.key).await? else {
        return Ok(None);
    };
    if stored.request_hash != key.request_hash {
        return Err(SendError::IdempotencyKeyReused);
    }
    let answer = serde_json::from_value(stored.response_body)
        .map_err(|e| SendError::Internal(anyhow::Error::new(e).context("stored idempotent answer")))?;
    Ok(Some(Accepted {
        answer,
        replayed: true,
    }))
}
