//! `POST /v1/auth/login` and `GET /v1/auth/me`.

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::extract::ApiJson;
use super::extract::UserSession;
use crate::api::error::{ApiError, ErrorBody};
use crate::auth::password;
use crate::db;
use crate::state::AppState;

/// An admin user, as the API shows it (never the password hash).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct User {
    pub id: Uuid,
    #[schema(example = "admin@example.com")]
    pub email: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

impl From<db::users::UserRow> for User {
    fn from(row: db::users::UserRow) -> Self {
        User {
            id: row.id,
            email: row.email,
            name: row.name,
            created_at: row.created_at,
        }
    }
}

/// Credentials of an admin user.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"email": "admin@example.com", "password": "correct horse battery staple"}))]
pub struct LoginRequest {
    #[schema(example = "admin@example.com", max_length = 254)]
    pub email: String,
    #[schema(example = "correct horse battery staple", max_length = 1024)]
    pub password: String,
}

/// A session: send `token` as `Authorization: Bearer <token>`.
#[derive(Serialize, ToSchema)]
pub struct LoginResponse {
    pub token: String,
    pub expires_at: DateTime<Utc>,
    pub user: User,
}

/// Exchanges an email and password for a session token.
#[utoipa::path(post, path = "/v1/auth/login", operation_id = "login", tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Logged in", body = LoginResponse),
        (status = 401, description = "Wrong email or password", body = ErrorBody),
        (status = 429, description = "Too many failed logins for this email", body = ErrorBody),
        (status = 422, description = "Invalid input", body = ErrorBody),
    ))]
pub async fn login(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<LoginRequest>,
) -> Result<Json<LoginResponse>, ApiError> {
    if body.email.len() > 254 || body.password.len() > 1024 {
        return Err(ApiError::unauthorized("invalid_login", "wrong email or password"));
    }
    if !state.login_throttle.allowed(&body.email) {
        return Err(ApiError::too_many(
            "too_many_attempts",
            "too many failed logins for this email; try again in 15 minutes",
        ));
    }
    let found = db::users::credentials(&state.db, &body.email).await?;
    let (user_id, hash) = match &found {
        Some(c) => (Some(c.id), c.password_hash.clone()),
        None => (None, password::dummy_hash().to_string()),
    };
    let candidate = body.password;
    let ok = tokio::task::spawn_blocking(move || password::verify(&hash, &candidate))
        .await
        .map_err(|e| ApiError::Internal(e.into()))?;
    let user_id = match (ok, user_id) {
        (true, Some(id)) => id,
        _ => {
            state.login_throttle.record_failure(&body.email);
            return Err(ApiError::unauthorized("invalid_login", "wrong email or password"));
        }
    };
    state.login_throttle.record_success(&body.email);
    let user = db::users::get(&state.db, user_id)
        .await?
        .ok_or_else(|| ApiError::unauthorized("invalid_login", "wrong email or password"))?;
    let (token, expires_at) = state.sessions.issue(user_id)?;
    Ok(Json(LoginResponse {
        token,
        expires_at,
        user: user.into(),
    }))
}

/// The logged-in user.
#[utoipa::path(get, path = "/v1/auth/me", operation_id = "get_current_user", tag = "auth",
    security(("session" = [])),
    responses(
        (status = 200, description = "The user", body = User),
        (status = 401, description = "Not logged in", body = ErrorBody),
    ))]
pub async fn me(State(state): State<AppState>, session: UserSession) -> Result<Json<User>, ApiError> {
    db::users::get(&state.db, session.user_id)
        .await?
        .map(|user| Json(user.into()))
        .ok_or_else(|| ApiError::unauthorized("invalid_token", "session token is invalid or expired"))
}
