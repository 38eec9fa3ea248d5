//! Authenticating a server by one of its API keys (the send API, and later
//! SMTP submission): a presented token, its lookup, the verdict.

use sqlx::PgPool;
use uuid::Uuid;

use super::api_key::{self, KEY_PREFIX};
use crate::db;
use crate::db::api_keys::KeyLookup;
use crate::domain::ServerMode;
use crate::observability::logs::chain;

/// Why a presented key does not authenticate.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Not of the form `tern_...`: some other kind of credential.
    #[error("this endpoint takes a server API key (`tern_...`)")]
    Malformed,
    /// No such key.
    #[error("API key is not valid")]
    Unknown,
    #[error("API key has been revoked")]
    Revoked,
    #[error("looking the API key up failed")]
    Database(#[from] sqlx::Error),
}

/// A well-formed API key, not yet looked up: the send path looks it up
/// together with what else it needs (see [`check`]).
#[derive(Clone)]
pub struct ApiKeyToken(String);

impl std::fmt::Debug for ApiKeyToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKeyToken(<redacted>)")
    }
}

impl ApiKeyToken {
    /// Accepts a token shaped like a Tern API key.
    pub fn parse(token: &str) -> Result<ApiKeyToken, KeyError> {
        if !token.starts_with(KEY_PREFIX) || token.len() > 128 {
            return Err(KeyError::Malformed);
        }
        Ok(ApiKeyToken(token.to_string()))
    }

    /// The stored form of the key.
    pub fn hash(&self) -> Vec<u8> {
        api_key::hash(&self.0)
    }
}

/// A server authenticated by one of its API keys.
#[derive(Debug, Clone, Copy)]
pub struct ServerAuth {
    pub key_id: Uuid,
    pub server_id: Uuid,
    pub mode: ServerMode,
}

/// Looks a key up and checks it.
pub async fn authenticate(pool: &PgPool, token: &ApiKeyToken) -> Result<ServerAuth, KeyError> {
    let found = db::api_keys::authenticate(pool, &token.hash()).await?;
    check(pool, found.as_ref())
}

/// Turns a key lookup into an authenticated server. Records the key's use
/// (at most once a minute, in the background).
pub fn check(pool: &PgPool, found: Option<&KeyLookup>) -> Result<ServerAuth, KeyError> {
    let found = found.ok_or(KeyError::Unknown)?;
    if found.revoked {
        return Err(KeyError::Revoked);
    }
    if found.needs_touch {
        // Best effort: a lost update only makes last_used_at a little old.
        let pool = pool.clone();
        let key_id = found.key_id;
        tokio::spawn(async move {
            if let Err(err) = db::api_keys::touch(&pool, key_id).await {
                tracing::warn!(
                    error = %chain(&err),
                    "could not record API key use"
                );
            }
        });
    }
    Ok(ServerAuth {
        key_id: found.key_id,
        server_id: found.server_id,
        mode: found.mode,
    })
}
