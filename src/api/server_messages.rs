//! A server's messages for administrators (session token): the same list,
//! detail and source as `/v1/messages`, which answers to the server's API
//! key. Any member of the organization may read them.

use axum::Json;
use axum::extract::State;
use axum::response::IntoResponse;
use uuid::Uuid;

use super::extract::{ApiPath, ApiQuery, UserSession};
use super::messages::{self, GetParams, ListParams, MessageDetail, MessageList, MessageSource};
use super::servers::visible as visible_server;
use crate::api::error::{ApiError, ErrorBody};
use crate::state::AppState;

/// Lists a server's messages, newest first, with cursor pagination.
#[utoipa::path(get, path = "/v1/servers/{server_id}/messages", operation_id = "list_server_messages", tag = "messages",
    security(("session" = [])), params(("server_id" = Uuid, Path), ListParams),
    responses((status = 200, description = "OK", body = MessageList), (status = 400, description = "Malformed request", body = ErrorBody), (status = 401, description = "Missing or invalid credentials", body = ErrorBody), (status = 404, description = "Not found (or not visible to you)", body = ErrorBody)))]
pub async fn list_server_messages(
    State(state): State<AppState>,
    session: UserSession,
    ApiPath(server): ApiPath<Uuid>,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<Json<MessageList>, ApiError> {
    visible_server(&state, session.user_id, server).await?;
    messages::list(&state, server, params).await.map(Json)
}

/// Gets one of a server's messages: recipients, events, headers, checks.
#[utoipa::path(get, path = "/v1/servers/{server_id}/messages/{message_id}", operation_id = "get_server_message", tag = "messages",
    security(("session" = [])), params(("server_id" = Uuid, Path), ("message_id" = Uuid, Path), GetParams),
    responses((status = 200, description = "OK", body = MessageDetail), (status = 401, description = "Missing or invalid credentials", body = ErrorBody), (status = 404, description = "Not found (or not visible to you)", body = ErrorBody)))]
pub async fn get_server_message(
    State(state): State<AppState>,
    session: UserSession,
    ApiPath((server, id)): ApiPath<(Uuid, Uuid)>,
    ApiQuery(params): ApiQuery<GetParams>,
) -> Result<Json<MessageDetail>, ApiError> {
    visible_server(&state, session.user_id, server).await?;
    messages::detail(&state, server, id, &params).await.map(Json)
}

/// The stored, signed source of one of a server's messages.
#[utoipa::path(get, path = "/v1/servers/{server_id}/messages/{message_id}/source", operation_id = "get_server_message_source", tag = "messages",
    security(("session" = [])), params(("server_id" = Uuid, Path), ("message_id" = Uuid, Path)),
    responses((status = 200, description = "The message as stored and sent (RFC 5322 bytes)", content_type = "message/rfc822", body = MessageSource), (status = 401, description = "Missing or invalid credentials", body = ErrorBody), (status = 404, description = "Not found (or not visible to you)", body = ErrorBody)))]
pub async fn get_server_message_source(
    State(state): State<AppState>,
    session: UserSession,
    ApiPath((server, id)): ApiPath<(Uuid, Uuid)>,
) -> Result<impl IntoResponse, ApiError> {
    visible_server(&state, session.user_id, server).await?;
    messages::source(&state, server, id).await
}
