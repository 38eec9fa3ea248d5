//! Axum extractors that authenticate a request.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use uuid::Uuid;

use super::api_key::{self, KEY_PREFIX};
use crate::db;
use crate::db::api_keys::KeyLookup;
use crate::db::servers::ServerMode;
use crate::error::ApiError;
use crate::startup::AppState;

/// A logged-in admin user (management API).
#[derive(Debug, Clone, Copy)]
pub struct UserSession {
    pub user_id: Uuid,
}

/// A server authenticated by one of its API keys (send API).
#[derive(Debug, Clone, Copy)]
pub struct ServerAuth {
    pub key_id: Uuid,
    pub server_id: Uuid,
    pub mode: ServerMode,
}

fn bearer(parts: &Parts) -> Result<&str, ApiError> {
    let value = parts.headers.get(AUTHORIZATION).ok_or_else(|| {
        ApiError::unauthorized("missing_credentials", "send `Authorization: Bearer <token>`")
    })?;
    let value = value
        .to_str()
        .map_err(|_| ApiError::unauthorized("invalid_credentials", "malformed Authorization"))?;
    match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() => {
            Ok(token.trim())
        }
        _ => Err(ApiError::unauthorized(
            "invalid_credentials",
            "the Authorization scheme must be Bearer",
        )),
    }
}

impl FromRequestParts<AppState> for UserSession {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer(parts)?;
        if token.starts_with(KEY_PREFIX) {
            return Err(ApiError::unauthorized(
                "session_required",
                "this endpoint takes a session token from POST /v1/auth/login, not an API key",
            ));
        }
        let invalid = || ApiError::unauthorized("invalid_token", "session token is invalid or expired");
        let user_id = state.sessions.verify(token).ok_or_else(invalid)?;
        if !db::users::exists(&state.db, user_id).await? {
            return Err(invalid());
        }
        Ok(UserSession { user_id })
    }
}

/// A well-formed API key, not yet looked up: the send path looks it up
/// together with what else it needs (see [`ServerAuth::check`]).
#[derive(Debug, Clone)]
pub struct ApiKeyToken(pub String);

impl ApiKeyToken {
    /// The stored form of the key.
    pub fn hash(&self) -> Vec<u8> {
        api_key::hash(&self.0)
    }
}

impl FromRequestParts<AppState> for ApiKeyToken {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, ApiError> {
        let token = bearer(parts)?;
        if !token.starts_with(KEY_PREFIX) || token.len() > 128 {
            return Err(ApiError::unauthorized(
                "invalid_api_key",
                "this endpoint takes a server API key (`tern_...`)",
            ));
        }
        Ok(ApiKeyToken(token.to_string()))
    }
}

impl FromRequestParts<AppState> for ServerAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = ApiKeyToken::from_request_parts(parts, state).await?;
        let found = db::api_keys::authenticate(&state.db, &token.hash()).await?;
        ServerAuth::check(state, found.as_ref())
    }
}

impl ServerAuth {
    /// Turns a key lookup into an authenticated server, or a 401.
    pub fn check(state: &AppState, found: Option<&KeyLookup>) -> Result<ServerAuth, ApiError> {
        let found = found.ok_or_else(|| ApiError::unauthorized("invalid_api_key", "API key is not valid"))?;
        if found.revoked {
            return Err(ApiError::unauthorized(
                "api_key_revoked",
                "API key has been revoked",
            ));
        }
        if found.needs_touch {
            // Best effort: a lost update only makes last_used_at a little old.
            let pool = state.db.clone();
            let key_id = found.key_id;
            tokio::spawn(async move {
                if let Err(err) = db::api_keys::touch(&pool, key_id).await {
                    tracing::warn!(error = %err, "could not record API key use");
                }
            });
        }
        Ok(ServerAuth {
            key_id: found.key_id,
            server_id: found.server_id,
            mode: found.mode,
        })
    }
}
