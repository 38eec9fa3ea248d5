//! Mail servers of an organization.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::extract::UserSession;
use super::extract::{ApiJson, ApiPath, require_write, valid_name};
use super::organizations::visible as visible_org;
use crate::api::error::{ApiError, ErrorBody};
use crate::config::Settings;
use crate::db;
use crate::db::servers::{ServerRow, ServerSettings};
use crate::dns::records::{self, DnsRecord};
use crate::domain::{DomainName, RecordStatus, ServerMode};
use crate::state::AppState;

/// A mail server.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Server {
    pub id: Uuid,
    pub organization_id: Uuid,
    #[schema(example = "Transactional")]
    pub name: String,
    pub mode: ServerMode,
    /// Messages with one recipient get `List-Unsubscribe` (a one-click
    /// URL and a `mailto:`) unless a send says otherwise.
    pub list_unsubscribe: bool,
    /// Track opens (a pixel) in the HTML of messages with one recipient,
    /// unless a send says otherwise.
    pub track_opens: bool,
    /// Track clicks (links through Tern) likewise.
    pub track_clicks: bool,
    pub tracking: ServerTracking,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Where tracked URLs point.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ServerTracking {
    /// Tracked URLs start with this: `https://` and the verified tracking
    /// host, else Tern's public host.
    #[schema(example = "https://track.example.com")]
    pub base_url: String,
    /// Your tracking host (`PATCH` `tracking_host`), if any.
    #[schema(example = "track.example.com")]
    pub host: Option<String>,
    /// The record to publish for it; check it with
    /// `POST /v1/servers/{server_id}/tracking/verify`.
    pub record: Option<DnsRecord>,
    pub checked_at: Option<DateTime<Utc>>,
    pub verified_at: Option<DateTime<Utc>>,
}

/// The API's view of a server.
pub fn view(settings: &Settings, row: ServerRow) -> Server {
    let status = match (row.tracking_verified_at, row.tracking_checked_at) {
        (Some(_), _) => RecordStatus::Ok,
        (None, Some(_)) => RecordStatus::Missing,
        (None, None) => RecordStatus::Pending,
    };
    let verified_host = row.tracking_verified_at.and(row.tracking_host.as_deref());
    Server {
        id: row.id,
        organization_id: row.organization_id,
        name: row.name,
        mode: row.mode,
        list_unsubscribe: row.list_unsubscribe,
        track_opens: row.track_opens,
        track_clicks: row.track_clicks,
        tracking: ServerTracking {
            base_url: format!("https://{}", verified_host.unwrap_or(&settings.public_hostname)),
            record: row
                .tracking_host
                .as_deref()
                .map(|host| records::for_tracking(host, status, settings)),
            host: row.tracking_host,
            checked_at: row.tracking_checked_at,
            verified_at: row.tracking_verified_at,
        },
        created_at: row.created_at,
        updated_at: row.updated_at,
    }
}

/// Input for creating a server.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Transactional", "mode": "development"}))]
pub struct CreateServer {
    /// 1 to 100 characters (after trimming), no control characters.
    #[schema(
        example = "Transactional",
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$"
    )]
    pub name: String,
    /// Defaults to `development`: nothing is delivered until you switch.
    #[serde(default = "development")]
    pub mode: ServerMode,
    /// Default `false`.
    #[serde(default)]
    pub list_unsubscribe: bool,
}

fn development() -> ServerMode {
    ServerMode::Development
}

/// Changes to a server; absent fields stay as they are.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Transactional (EU)"}))]
pub struct UpdateServer {
    /// 1 to 100 characters (after trimming), no control characters.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$"
    )]
    pub name: Option<String>,
    pub mode: Option<ServerMode>,
    pub list_unsubscribe: Option<bool>,
    pub track_opens: Option<bool>,
    pub track_clicks: Option<bool>,
    /// Your tracking host (`track.example.com`), a CNAME to Tern's public
    /// host; `""` removes it. Used once verified.
    #[schema(max_length = 253)]
    pub tracking_host: Option<String>,
}

/// Servers of an organization.
#[derive(Serialize, ToSchema)]
pub struct ServerList {
    pub data: Vec<Server>,
}

/// The server if the caller is a member of its organization, else a 404.
pub async fn visible(state: &AppState, user: Uuid, id: Uuid) -> Result<ServerRow, ApiError> {
    db::servers::get_for_user(&state.db, user, id)
        .await?
        .ok_or_else(|| ApiError::not_found("server"))
}

/// Lists the servers of an organization.
#[utoipa::path(get, path = "/v1/organizations/{organization_id}/servers", operation_id = "list_servers", tag = "servers",
    security(("session" = [])), params(("organization_id" = Uuid, Path)),
    responses((status = 200, description = "OK", body = ServerList), (status = 401, description = "Missing or invalid credentials", body = ErrorBody), (status = 404, description = "Not found (or not visible to you)", body = ErrorBody)))]
pub async fn list_servers(
    State(state): State<AppState>,
    session: UserSession,
    ApiPath(org): ApiPath<Uuid>,
) -> Result<Json<ServerList>, ApiError> {
    visible_org(&state, session.user_id, org).await?;
    let data = db::servers::list(&state.db, session.user_id, org).await?;
    Ok(Json(ServerList {
        data: data.into_iter().map(|row| view(&state.settings, row)).collect(),
    }))
}

/// Creates a server (owner or admin).
#[utoipa::path(post, path = "/v1/organizations/{organization_id}/servers", operation_id = "create_server", tag = "servers",
    security(("session" = [])), params(("organization_id" = Uuid, Path)), request_body = CreateServer,
    responses((status = 201, description = "Created", body = Server), (status = 403, description = "Your role does not allow this", body = ErrorBody), (status = 404, description = "Not found (or not visible to you)", body = ErrorBody), (status = 422, description = "Invalid input", body = ErrorBody)))]
pub async fn create_server(
    State(state): State<AppState>,
    session: UserSession,
    ApiPath(org): ApiPath<Uuid>,
    ApiJson(input): ApiJson<CreateServer>,
) -> Result<(StatusCode, Json<Server>), ApiError> {
    require_write(visible_org(&state, session.user_id, org).await?.role)?;
    let name = valid_name("name", &input.name)?;
    let server = db::servers::create(
        &state.db,
        session.user_id,
        org,
        &name,
        input.mode,
        input.list_unsubscribe,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(view(&state.settings, server))))
}

/// Gets one server.
#[utoipa::path(get, path = "/v1/servers/{server_id}", operation_id = "get_server", tag = "servers",
    security(("session" = [])), params(("server_id" = Uuid, Path)),
    responses((status = 200, description = "OK", body = Server), (status = 404, description = "Not found (or not visible to you)", body = ErrorBody)))]
pub async fn get_server(
    State(state): State<AppState>,
    session: UserSession,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<Server>, ApiError> {
    Ok(Json(view(
        &state.settings,
        visible(&state, session.user_id, id).await?,
    )))
}

/// Renames a server or changes its mode (owner or admin).
#[utoipa::path(patch, path = "/v1/servers/{server_id}", operation_id = "update_server", tag = "servers",
    security(("session" = [])), params(("server_id" = Uuid, Path)), request_body = UpdateServer,
    responses((status = 200, description = "OK", body = Server), (status = 403, description = "Your role does not allow this", body = ErrorBody), (status = 404, description = "Not found (or not visible to you)", body = ErrorBody), (status = 409, description = "Another server tracks on this host", body = ErrorBody), (status = 422, description = "Invalid input", body = ErrorBody)))]
pub async fn update_server(
    State(state): State<AppState>,
    session: UserSession,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(input): ApiJson<UpdateServer>,
) -> Result<Json<Server>, ApiError> {
    let server = visible(&state, session.user_id, id).await?;
    require_write(server.role)?;
    let name = match &input.name {
        Some(name) => valid_name("name", name)?,
        None => server.name,
    };
    if let Some(host) = &input.tracking_host {
        let host = host.trim();
        let host = if host.is_empty() {
            None
        } else {
            Some(
                DomainName::parse(host)
                    .map_err(|why| {
                        ApiError::unprocessable("invalid_tracking_host", why).field("tracking_host")
                    })?
                    .as_str()
                    .to_string(),
            )
        };
        match db::tracking::set_host(&state.db, id, host.as_deref()).await {
            Err(sqlx::Error::Database(err)) if err.constraint() == Some("servers_tracking_host_idx") => {
                return Err(
                    ApiError::conflict("tracking_host_taken", "another server tracks on this host")
                        .field("tracking_host"),
                );
            }
            other => other?,
        }
    }
    db::servers::update(
        &state.db,
        id,
        &ServerSettings {
            name: &name,
            mode: input.mode.unwrap_or(server.mode),
            list_unsubscribe: input.list_unsubscribe.unwrap_or(server.list_unsubscribe),
            track_opens: input.track_opens.unwrap_or(server.track_opens),
            track_clicks: input.track_clicks.unwrap_or(server.track_clicks),
        },
    )
    .await?;
    Ok(Json(view(
        &state.settings,
        visible(&state, session.user_id, id).await?,
    )))
}

/// Deletes a server with its domains, keys and messages (owner or admin).
#[utoipa::path(delete, path = "/v1/servers/{server_id}", operation_id = "delete_server", tag = "servers",
    security(("session" = [])), params(("server_id" = Uuid, Path)),
    responses((status = 204, description = "Deleted"), (status = 403, description = "Your role does not allow this", body = ErrorBody), (status = 404, description = "Not found (or not visible to you)", body = ErrorBody)))]
pub async fn delete_server(
    State(state): State<AppState>,
    session: UserSession,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<StatusCode, ApiError> {
    require_write(visible(&state, session.user_id, id).await?.role)?;
    db::servers::delete(&state.db, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
