//! Server API keys: created (shown once), listed, revoked.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::extract::UserSession;
use super::extract::{ApiJson, ApiPath, require_write, valid_name};
use super::servers::visible as visible_server;
use crate::api::error::{ApiError, ErrorBody};
use crate::auth::api_key;
use crate::db;
use crate::db::api_keys::ApiKeyRow;
use crate::state::AppState;

/// An API key as listed: never the secret.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ApiKey {
    pub id: Uuid,
    pub server_id: Uuid,
    #[schema(example = "production web app")]
    pub name: String,
    /// The start of the key, to tell keys apart.
    #[schema(example = "tern_3f9a1c2b7d4e")]
    pub prefix: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl From<db::api_keys::ApiKeyRow> for ApiKey {
    fn from(row: db::api_keys::ApiKeyRow) -> Self {
        ApiKey {
            id: row.id,
            server_id: row.server_id,
            name: row.name,
            prefix: row.prefix,
            created_at: row.created_at,
            last_used_at: row.last_used_at,
            revoked_at: row.revoked_at,
        }
    }
}

/// Input for creating an API key.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "production web app"}))]
pub struct CreateApiKey {
    /// 1 to 100 characters (after trimming), no control characters.
    #[schema(
        example = "production web app",
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$"
    )]
    pub name: String,
}

/// Changes to a key.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "production web app (old)"}))]
pub struct UpdateApiKey {
    /// 1 to 100 characters (after trimming), no control characters.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$"
    )]
    pub name: String,
}

/// A new key. `secret` is shown only in this response; store it now.
#[derive(Serialize, ToSchema)]
pub struct CreatedApiKey {
    #[serde(flatten)]
    pub key: ApiKey,
    #[schema(example = "tern_3f9a1c2b7d4e_Vb4kC2...")]
    pub secret: String,
}

/// Keys of a server (revoked ones included).
#[derive(Serialize, ToSchema)]
pub struct ApiKeyList {
    pub data: Vec<ApiKey>,
}

async fn visible(state: &AppState, user: Uuid, id: Uuid) -> Result<ApiKeyRow, ApiError> {
    db::api_keys::get_for_user(&state.db, user, id)
        .await?
        .ok_or_else(|| ApiError::not_found("API key"))
}

/// Lists a server's API keys.
#[utoipa::path(get, path = "/v1/servers/{server_id}/api-keys", operation_id = "list_api_keys", tag = "api-keys",
    security(("session" = [])), params(("server_id" = Uuid, Path)),
    responses((status = 200, description = "OK", body = ApiKeyList), (status = 404, description = "Not found (or not visible to you)", body = ErrorBody)))]
pub async fn list_api_keys(
    State(state): State<AppState>,
    session: UserSession,
    ApiPath(server): ApiPath<Uuid>,
) -> Result<Json<ApiKeyList>, ApiError> {
    visible_server(&state, session.user_id, server).await?;
    let data = db::api_keys::list(&state.db, session.user_id, server).await?;
    Ok(Json(ApiKeyList {
        data: data.into_iter().map(ApiKey::from).collect(),
    }))
}

/// Creates an API key (owner or admin). The secret is returned once.
#[utoipa::path(post, path = "/v1/servers/{server_id}/api-keys", operation_id = "create_api_key", tag = "api-keys",
    security(("session" = [])), params(("server_id" = Uuid, Path)), request_body = CreateApiKey,
    responses((status = 201, description = "Created", body = CreatedApiKey), (status = 403, description = "Your role does not allow this", body = ErrorBody), (status = 404, description = "Not found (or not visible to you)", body = ErrorBody), (status = 422, description = "Invalid input", body = ErrorBody)))]
pub async fn create_api_key(
    State(state): State<AppState>,
    session: UserSession,
    ApiPath(server): ApiPath<Uuid>,
    ApiJson(input): ApiJson<CreateApiKey>,
) -> Result<(StatusCode, Json<CreatedApiKey>), ApiError> {
    require_write(visible_server(&state, session.user_id, server).await?.role)?;
    let name = valid_name("name", &input.name)?;
    let new = api_key::generate();
    let key = db::api_keys::create(&state.db, session.user_id, server, &name, &new.prefix, &new.hash).await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedApiKey {
            key: key.into(),
            secret: new.secret,
        }),
    ))
}

/// Gets one API key (never its secret).
#[utoipa::path(get, path = "/v1/api-keys/{api_key_id}", operation_id = "get_api_key", tag = "api-keys",
    security(("session" = [])), params(("api_key_id" = Uuid, Path)),
    responses((status = 200, description = "OK", body = ApiKey), (status = 404, description = "Not found (or not visible to you)", body = ErrorBody)))]
pub async fn get_api_key(
    State(state): State<AppState>,
    session: UserSession,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<ApiKey>, ApiError> {
    Ok(Json(visible(&state, session.user_id, id).await?.into()))
}

/// Renames an API key (owner or admin).
#[utoipa::path(patch, path = "/v1/api-keys/{api_key_id}", operation_id = "update_api_key", tag = "api-keys",
    security(("session" = [])), params(("api_key_id" = Uuid, Path)), request_body = UpdateApiKey,
    responses((status = 200, description = "OK", body = ApiKey), (status = 403, description = "Your role does not allow this", body = ErrorBody),
        (status = 404, description = "Not found (or not visible to you)", body = ErrorBody), (status = 422, description = "Invalid input", body = ErrorBody)))]
pub async fn update_api_key(
    State(state): State<AppState>,
    session: UserSession,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(input): ApiJson<UpdateApiKey>,
) -> Result<Json<ApiKey>, ApiError> {
    require_write(visible(&state, session.user_id, id).await?.role)?;
    let name = valid_name("name", &input.name)?;
    db::api_keys::rename(&state.db, id, &name).await?;
    Ok(Json(visible(&state, session.user_id, id).await?.into()))
}

/// Revokes an API key at once (owner or admin). The key stays listed.
#[utoipa::path(delete, path = "/v1/api-keys/{api_key_id}", operation_id = "revoke_api_key", tag = "api-keys",
    security(("session" = [])), params(("api_key_id" = Uuid, Path)),
    responses((status = 204, description = "Revoked"), (status = 403, description = "Your role does not allow this", body = ErrorBody), (status = 404, description = "Not found (or not visible to you)", body = ErrorBody)))]
pub async fn revoke_api_key(
    State(state): State<AppState>,
    session: UserSession,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<StatusCode, ApiError> {
    require_write(visible(&state, session.user_id, id).await?.role)?;
    db::api_keys::revoke(&state.db, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
