//! Axum extractors: request parts and bodies with Tern's error body, and
//! the caller's credentials (session token or server API key).

use axum::extract::{FromRequest, FromRequestParts};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use uuid::Uuid;

use super::error::ApiError;
use crate::auth::api_key::KEY_PREFIX;
use crate::auth::server_key::{self, ApiKeyToken, ServerAuth};
use crate::db;
use crate::domain::Role;
use crate::state::AppState;

/// `Json<T>`, rejecting with [`ApiError`].
#[derive(Debug, FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

/// `Path<T>`; a malformed id is a 404.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

/// `Query<T>`, rejecting with a 400.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

/// A logged-in admin user (management API).
#[derive(Debug, Clone, Copy)]
pub struct UserSession {
    pub user_id: Uuid,
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

/// A well-formed API key, not yet looked up (the send path looks it up
/// with what else it needs).
impl FromRequestParts<AppState> for ApiKeyToken {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, ApiError> {
        Ok(ApiKeyToken::parse(bearer(parts)?)?)
    }
}

/// A server authenticated by one of its API keys.
impl FromRequestParts<AppState> for ServerAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = ApiKeyToken::from_request_parts(parts, state).await?;
        Ok(server_key::authenticate(&state.db, &token).await?)
    }
}

/// A trimmed name of 1 to 100 characters without control characters.
pub fn valid_name(field: &str, name: &str) -> Result<String, ApiError> {
    let trimmed = name.trim();
    if trimmed.is_empty() || trimmed.chars().count() > 100 || trimmed.chars().any(char::is_control) {
        return Err(ApiError::unprocessable(
            "invalid_name",
            format!("`{field}` must be 1 to 100 characters without control characters"),
        )
        .field(field));
    }
    Ok(trimmed.to_string())
}

/// Refuses writes from viewers.
pub fn require_write(role: Role) -> Result<(), ApiError> {
    if role.can_write() {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "insufficient_role",
            "your role in this organization does not allow changes",
        ))
    }
}

/// A list's page size: `limit` (1 to 100), 25 when absent.
pub fn page_limit(limit: Option<i64>) -> Result<i64, ApiError> {
    let limit = limit.unwrap_or(25);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::bad_request("invalid_query", "`limit` must be 1 to 100").field("limit"));
    }
    Ok(limit)
}
