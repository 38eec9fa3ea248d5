//! A server's suppression list: with the server's API key under
//! `/v1/suppressions`, and for administrators (session) under
//! `/v1/servers/{server_id}/suppressions`. Both run the same code.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::extract::{ApiJson, ApiPath, ApiQuery, UserSession, page_limit, require_write};
use super::servers::visible as visible_server;
use crate::api::error::{ApiError, ErrorBody};
use crate::auth::ServerAuth;
use crate::db;
use crate::db::suppressions::{Filter, NewSuppression, SuppressionRow};
use crate::domain::{EmailAddress, SuppressionReason};
use crate::state::AppState;

/// Entries one import may hold.
pub const MAX_IMPORT: usize = 10_000;
/// Length of an entry's `detail`.
const MAX_DETAIL: usize = 1000;

/// An address Tern does not send to.
#[derive(Debug, Serialize, ToSchema)]
pub struct Suppression {
    /// ASCII letters in lower case: entries match addresses
    /// case-insensitively, as a whole.
    #[schema(example = "jane@example.org")]
    pub address: String,
    pub reason: SuppressionReason,
    /// The message whose bounce, complaint or unsubscribe added it.
    pub source_message_id: Option<Uuid>,
    /// The receiver's words (a DSN's status and diagnostic) or a note.
    pub detail: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// When it stops counting; `null`: never.
    pub expires_at: Option<DateTime<Utc>>,
}

impl From<SuppressionRow> for Suppression {
    fn from(row: SuppressionRow) -> Self {
        Suppression {
            address: row.address,
            reason: row.reason,
            source_message_id: row.source_message_id,
            detail: row.detail,
            created_at: row.created_at,
            updated_at: row.updated_at,
            expires_at: row.expires_at,
        }
    }
}

/// A page of entries, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct SuppressionList {
    pub data: Vec<Suppression>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Filters for a listing, combined with AND. Expired entries are never listed.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    pub reason: Option<SuppressionReason>,
    /// Entries whose address contains this text (case-insensitive).
    #[param(max_length = 254)]
    pub address: Option<String>,
    /// Created at or after (RFC 3339).
    pub since: Option<DateTime<Utc>>,
    /// Created before (RFC 3339).
    pub until: Option<DateTime<Utc>>,
    /// Page size, 1 to 100; default 25.
    #[param(minimum = 1, maximum = 100, default = 25)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// An entry to add or replace.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"reason": "manual", "detail": "asked by phone"}))]
pub struct PutSuppression {
    /// Default `manual`.
    pub reason: Option<SuppressionReason>,
    /// A note, up to 1000 characters.
    #[schema(max_length = 1000)]
    pub detail: Option<String>,
    /// When it stops counting. Absent: the reason's configured lifetime
    /// (`suppression.*_days`; hard bounces 30 days, others never).
    pub expires_at: Option<DateTime<Utc>>,
}

/// One entry of an import.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportEntry {
    #[schema(example = "jane@example.org", max_length = 254)]
    pub address: String,
    /// Default `manual`.
    pub reason: Option<SuppressionReason>,
    #[schema(max_length = 1000)]
    pub detail: Option<String>,
    /// Absent: the reason's configured lifetime.
    pub expires_at: Option<DateTime<Utc>>,
}

/// Entries to add, at most 10,000. Idempotent: an address already
/// suppressed keeps its entry unless that one has expired, or expires and
/// the new one does not.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"entries": [{"address": "jane@example.org"}, {"address": "joe@example.org", "reason": "unsubscribe"}]}))]
pub struct ImportSuppressions {
    #[schema(max_items = 10000)]
    pub entries: Vec<ImportEntry>,
}

/// What an import did.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImportResult {
    /// Entries in the request.
    pub received: usize,
    /// Entries added (or replaced: expired, or made permanent).
    pub written: u64,
}

fn encode_cursor(at: DateTime<Utc>, address: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{} {address}", at.timestamp_micros()))
}

fn decode_cursor(cursor: &str) -> Option<(DateTime<Utc>, String)> {
    let text = String::from_utf8(URL_SAFE_NO_PAD.decode(cursor).ok()?).ok()?;
    let (micros, address) = text.split_once(' ')?;
    Some((
        DateTime::from_timestamp_micros(micros.parse().ok()?)?,
        address.to_string(),
    ))
}

/// A path's address, checked and in lower case.
fn path_address(address: &str) -> Result<String, ApiError> {
    EmailAddress::parse(address)
        .map(|a| a.to_string().to_ascii_lowercase())
        .map_err(|why| ApiError::unprocessable("invalid_address", why).field("address"))
}

fn entry<'a>(
    state: &AppState,
    address: &'a str,
    input: &'a PutSuppression,
    field: &str,
) -> Result<NewSuppression<'a>, ApiError> {
    let detail = input.detail.as_deref().unwrap_or_default();
    if detail.chars().count() > MAX_DETAIL || detail.chars().any(char::is_control) {
        return Err(ApiError::unprocessable(
            "invalid_detail",
            "`detail` is at most 1000 characters, without control characters",
        )
        .field(format!("{field}detail")));
    }
    let reason = input.reason.unwrap_or(SuppressionReason::Manual);
    let expires_at = input.expires_at.or_else(|| {
        state
            .settings
            .suppression
            .lifetime_secs(reason)
            .map(|secs| Utc::now() + chrono::Duration::seconds(secs as i64))
    });
    Ok(NewSuppression {
        address,
        reason,
        detail,
        expires_at,
    })
}

async fn list(state: &AppState, server: Uuid, params: ListParams) -> Result<Json<SuppressionList>, ApiError> {
    let limit = page_limit(params.limit)?;
    let after = match &params.cursor {
        Some(cursor) => Some(decode_cursor(cursor).ok_or_else(|| {
            ApiError::bad_request("invalid_cursor", "`cursor` is not a cursor this API returned")
                .field("cursor")
        })?),
        None => None,
    };
    if params.address.as_ref().is_some_and(|a| a.len() > 254) {
        return Err(ApiError::bad_request("invalid_query", "filter value too long").field("address"));
    }
    let filter = Filter {
        reason: params.reason,
        address: params.address.map(|a| a.to_ascii_lowercase()),
        since: params.since,
        until: params.until,
        after,
        limit: limit + 1,
    };
    let mut rows = db::suppressions::list(&state.db, server, &filter).await?;
    let next_cursor = if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last().map(|r| encode_cursor(r.created_at, &r.address))
    } else {
        None
    };
    Ok(Json(SuppressionList {
        data: rows.into_iter().map(Suppression::from).collect(),
        next_cursor,
    }))
}

async fn get(state: &AppState, server: Uuid, address: &str) -> Result<Json<Suppression>, ApiError> {
    let address = path_address(address)?;
    db::suppressions::get(&state.db, server, &address)
        .await?
        .map(|row| Json(row.into()))
        .ok_or_else(|| ApiError::not_found("suppression"))
}

async fn put(
    state: &AppState,
    server: Uuid,
    address: &str,
    input: PutSuppression,
) -> Result<(StatusCode, Json<Suppression>), ApiError> {
    let address = path_address(address)?;
    let entry = entry(state, &address, &input, "")?;
    let (row, new) = db::suppressions::put(&state.db, server, &entry).await?;
    let status = if new { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(row.into())))
}

async fn delete(state: &AppState, server: Uuid, address: &str) -> Result<StatusCode, ApiError> {
    let address = path_address(address)?;
    if db::suppressions::delete(&state.db, server, &address).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("suppression"))
    }
}

async fn import(
    state: &AppState,
    server: Uuid,
    input: ImportSuppressions,
) -> Result<Json<ImportResult>, ApiError> {
    if input.entries.len() > MAX_IMPORT {
        return Err(ApiError::too_large(
            "too_many_entries",
            format!("an import holds at most {MAX_IMPORT} entries"),
        )
        .field("entries"));
    }
    let addresses = input
        .entries
        .iter()
        .enumerate()
        .map(|(i, e)| {
            EmailAddress::parse(&e.address)
                .map(|a| a.to_string().to_ascii_lowercase())
                .map_err(|why| {
                    ApiError::unprocessable("invalid_address", why).field(format!("entries[{i}].address"))
                })
        })
        .collect::<Result<Vec<String>, ApiError>>()?;
    let inputs: Vec<PutSuppression> = input
        .entries
        .into_iter()
        .map(|e| PutSuppression {
            reason: e.reason,
            detail: e.detail,
            expires_at: e.expires_at,
        })
        .collect();
    let entries = inputs
        .iter()
        .zip(&addresses)
        .enumerate()
        .map(|(i, (e, address))| entry(state, address, e, &format!("entries[{i}].")))
        .collect::<Result<Vec<_>, ApiError>>()?;
    let written = if entries.is_empty() {
        0
    } else {
        db::suppressions::import(&state.db, server, &entries).await?
    };
    Ok(Json(ImportResult {
        received: entries.len(),
        written,
    }))
}

/// Lists the server's suppressed addresses, newest first.
#[utoipa::path(get, path = "/v1/suppressions", operation_id = "list_suppressions", tag = "suppressions",
    security(("api_key" = [])), params(ListParams),
    responses((status = 200, description = "OK", body = SuppressionList), (status = 400, description = "Malformed request", body = ErrorBody), (status = 401, description = "Missing or invalid credentials", body = ErrorBody)))]
pub async fn list_suppressions(
    State(state): State<AppState>,
    auth: ServerAuth,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<Json<SuppressionList>, ApiError> {
    list(&state, auth.server_id, params).await
}

/// Adds many addresses at once (up to 10,000), idempotently.
#[utoipa::path(post, path = "/v1/suppressions", operation_id = "import_suppressions", tag = "suppressions",
    security(("api_key" = [])), request_body = ImportSuppressions,
    responses((status = 200, description = "Imported", body = ImportResult), (status = 401, description = "Missing or invalid credentials", body = ErrorBody), (status = 413, description = "More than 10,000 entries", body = ErrorBody), (status = 422, description = "Invalid input (`error.field` says which entry)", body = ErrorBody)))]
pub async fn import_suppressions(
    State(state): State<AppState>,
    auth: ServerAuth,
    ApiJson(input): ApiJson<ImportSuppressions>,
) -> Result<Json<ImportResult>, ApiError> {
    import(&state, auth.server_id, input).await
}

/// Whether an address is suppressed, and why.
#[utoipa::path(get, path = "/v1/suppressions/{address}", operation_id = "get_suppression", tag = "suppressions",
    security(("api_key" = [])), params(("address" = String, Path, description = "The address (any case)")),
    responses((status = 200, description = "OK", body = Suppression), (status = 401, description = "Missing or invalid credentials", body = ErrorBody), (status = 404, description = "Not suppressed", body = ErrorBody), (status = 422, description = "Not an email address", body = ErrorBody)))]
pub async fn get_suppression(
    State(state): State<AppState>,
    auth: ServerAuth,
    ApiPath(address): ApiPath<String>,
) -> Result<Json<Suppression>, ApiError> {
    get(&state, auth.server_id, &address).await
}

/// Suppresses an address, or replaces its entry.
#[utoipa::path(put, path = "/v1/suppressions/{address}", operation_id = "put_suppression", tag = "suppressions",
    security(("api_key" = [])), params(("address" = String, Path, description = "The address (any case)")), request_body = PutSuppression,
    responses((status = 200, description = "Replaced", body = Suppression), (status = 201, description = "Added", body = Suppression), (status = 401, description = "Missing or invalid credentials", body = ErrorBody), (status = 422, description = "Invalid input", body = ErrorBody)))]
pub async fn put_suppression(
    State(state): State<AppState>,
    auth: ServerAuth,
    ApiPath(address): ApiPath<String>,
    ApiJson(input): ApiJson<PutSuppression>,
) -> Result<(StatusCode, Json<Suppression>), ApiError> {
    put(&state, auth.server_id, &address, input).await
}

/// Removes an address from the list: Tern sends to it again.
#[utoipa::path(delete, path = "/v1/suppressions/{address}", operation_id = "delete_suppression", tag = "suppressions",
    security(("api_key" = [])), params(("address" = String, Path, description = "The address (any case)")),
    responses((status = 204, description = "Removed"), (status = 401, description = "Missing or invalid credentials", body = ErrorBody), (status = 404, description = "Not suppressed", body = ErrorBody), (status = 422, description = "Not an email address", body = ErrorBody)))]
pub async fn delete_suppression(
    State(state): State<AppState>,
    auth: ServerAuth,
    ApiPath(address): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    delete(&state, auth.server_id, &address).await
}

/// Lists a server's suppressed addresses (administrators).
#[utoipa::path(get, path = "/v1/servers/{server_id}/suppressions", operation_id = "list_server_suppressions", tag = "suppressions",
    security(("session" = [])), params(("server_id" = Uuid, Path), ListParams),
    responses((status = 200, description = "OK", body = SuppressionList), (status = 400, description = "Malformed request", body = ErrorBody), (status = 401, description = "Missing or invalid credentials", body = ErrorBody), (status = 404, description = "Not found (or not visible to you)", body = ErrorBody)))]
pub async fn list_server_suppressions(
    State(state): State<AppState>,
    session: UserSession,
    ApiPath(server): ApiPath<Uuid>,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<Json<SuppressionList>, ApiError> {
    visible_server(&state, session.user_id, server).await?;
    list(&state, server, params).await
}

/// Adds many addresses to a server's list (administrators).
#[utoipa::path(post, path = "/v1/servers/{server_id}/suppressions", operation_id = "import_server_suppressions", tag = "suppressions",
    security(("session" = [])), params(("server_id" = Uuid, Path)), request_body = ImportSuppressions,
    responses((status = 200, description = "Imported", body = ImportResult), (status = 401, description = "Missing or invalid credentials", body = ErrorBody), (status = 403, description = "Your role does not allow changes", body = ErrorBody), (status = 404, description = "Not found (or not visible to you)", body = ErrorBody), (status = 413, description = "More than 10,000 entries", body = ErrorBody), (status = 422, description = "Invalid input (`error.field` says which entry)", body = ErrorBody)))]
pub async fn import_server_suppressions(
    State(state): State<AppState>,
    session: UserSession,
    ApiPath(server): ApiPath<Uuid>,
    ApiJson(input): ApiJson<ImportSuppressions>,
) -> Result<Json<ImportResult>, ApiError> {
    require_write(visible_server(&state, session.user_id, server).await?.role)?;
    import(&state, server, input).await
}

/// One entry of a server's list (administrators).
#[utoipa::path(get, path = "/v1/servers/{server_id}/suppressions/{address}", operation_id = "get_server_suppression", tag = "suppressions",
    security(("session" = [])), params(("server_id" = Uuid, Path), ("address" = String, Path, description = "The address (any case)")),
    responses((status = 200, description = "OK", body = Suppression), (status = 401, description = "Missing or invalid credentials", body = ErrorBody), (status = 404, description = "Not suppressed, or not visible to you", body = ErrorBody), (status = 422, description = "Not an email address", body = ErrorBody)))]
pub async fn get_server_suppression(
    State(state): State<AppState>,
    session: UserSession,
    ApiPath((server, address)): ApiPath<(Uuid, String)>,
) -> Result<Json<Suppression>, ApiError> {
    visible_server(&state, session.user_id, server).await?;
    get(&state, server, &address).await
}

/// Suppresses an address of a server, or replaces its entry (administrators).
#[utoipa::path(put, path = "/v1/servers/{server_id}/suppressions/{address}", operation_id = "put_server_suppression", tag = "suppressions",
    security(("session" = [])), params(("server_id" = Uuid, Path), ("address" = String, Path, description = "The address (any case)")), request_body = PutSuppression,
    responses((status = 200, description = "Replaced", body = Suppression), (status = 201, description = "Added", body = Suppression), (status = 401, description = "Missing or invalid credentials", body = ErrorBody), (status = 403, description = "Your role does not allow changes", body = ErrorBody), (status = 404, description = "Not found (or not visible to you)", body = ErrorBody), (status = 422, description = "Invalid input", body = ErrorBody)))]
pub async fn put_server_suppression(
    State(state): State<AppState>,
    session: UserSession,
    ApiPath((server, address)): ApiPath<(Uuid, String)>,
    ApiJson(input): ApiJson<PutSuppression>,
) -> Result<(StatusCode, Json<Suppression>), ApiError> {
    require_write(visible_server(&state, session.user_id, server).await?.role)?;
    put(&state, server, &address, input).await
}

/// Removes an address from a server's list (administrators).
#[utoipa::path(delete, path = "/v1/servers/{server_id}/suppressions/{address}", operation_id = "delete_server_suppression", tag = "suppressions",
    security(("session" = [])), params(("server_id" = Uuid, Path), ("address" = String, Path, description = "The address (any case)")),
    responses((status = 204, description = "Removed"), (status = 401, description = "Missing or invalid credentials", body = ErrorBody), (status = 403, description = "Your role does not allow changes", body = ErrorBody), (status = 404, description = "Not suppressed, or not visible to you", body = ErrorBody), (status = 422, description = "Not an email address", body = ErrorBody)))]
pub async fn delete_server_suppression(
    State(state): State<AppState>,
    session: UserSession,
    ApiPath((server, address)): ApiPath<(Uuid, String)>,
) -> Result<StatusCode, ApiError> {
    require_write(visible_server(&state, session.user_id, server).await?.role)?;
    delete(&state, server, &address).await
}

#[cfg(test)]
mod tests {
    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let at = chrono::DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap();
        let cursor = super::encode_cursor(at, "a b@example.org");
        assert_eq!(
            super::decode_cursor(&cursor),
            Some((at, "a b@example.org".to_string()))
        );
        assert_eq!(super::decode_cursor("!!"), None);
    }
}
