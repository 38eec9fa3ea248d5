//! Webhook endpoints of a server: created (the signing secret shown once),
//! listed, changed, deleted, their secret rotated; their delivery log,
//! retries, replays and test events.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::extract::{ApiJson, ApiPath, UserSession, require_write};
use super::servers::visible as visible_server;
use crate::api::error::{ApiError, ErrorBody};
use crate::db;
use crate::db::webhooks::{NewWebhook, WebhookChange, WebhookRow};
use crate::domain::{EventType, Invalid};
use crate::state::AppState;
use crate::webhooks::events::DisabledReason;
use crate::webhooks::signature::Signing;
use crate::webhooks::{secret, target};

/// The most events one replay queues.
const REPLAY_LIMIT: i64 = 10_000;

/// A webhook endpoint: never its secret.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Webhook {
    pub id: Uuid,
    pub server_id: Uuid,
    #[schema(example = "https://app.example.com/hooks/tern")]
    pub url: String,
    #[schema(example = "Order system")]
    pub description: String,
    /// The event types sent to it; empty: every type.
    pub event_types: Vec<EventType>,
    pub enabled: bool,
    pub signing: Signing,
    /// `ed25519` endpoints: the public key receivers verify `v1a`
    /// signatures with (`whpk_` and base64).
    #[schema(example = "whpk_Y2hhbmdlIG1lIHRvIGEgcmVhbCBwdWJsaWMga2V5IQ==")]
    pub public_key: Option<String>,
    /// Until when the secret before the last rotation still signs.
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    /// Since when every attempt has failed; absent while it is healthy.
    pub failing_since: Option<DateTime<Utc>>,
    /// When it was turned off, if it is off.
    pub disabled_at: Option<DateTime<Utc>>,
    /// Why Tern turned it off: it answered 410 (`gone`) or failed for
    /// `webhooks.disable_after_secs` (`failing`).
    pub disabled_reason: Option<DisabledReason>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<WebhookRow> for Webhook {
    fn from(row: WebhookRow) -> Self {
        Webhook {
            id: row.id,
            server_id: row.server_id,
            url: row.url,
            description: row.description,
            // Names the database holds were checked on the way in.
            event_types: row
                .event_types
                .iter()
                .filter_map(|t| EventType::parse(t))
                .collect(),
            enabled: row.enabled,
            signing: Signing::parse(&row.signing).unwrap_or_default(),
            public_key: row.public_key.as_deref().map(secret::public_key_text),
            previous_secret_expires_at: row.previous_secret_expires_at,
            failing_since: row.failing_since,
            disabled_at: row.disabled_at,
            disabled_reason: row.disabled_reason.as_deref().and_then(DisabledReason::parse),
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

/// Input for creating an endpoint.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "url": "https://app.example.com/hooks/tern",
    "description": "Order system",
    "event_types": ["message.sent", "message.bounced"]
}))]
pub struct CreateWebhook {
    /// `https://` (or `http://` where the operator allows it), at most 2,048
    /// bytes, no credentials; it must not lead to a private address.
    #[schema(max_length = 2048, pattern = "^https?://")]
    pub url: String,
    #[serde(default)]
    #[schema(max_length = 200)]
    pub description: String,
    /// The event types to send; absent or empty: every type.
    #[serde(default)]
    #[schema(max_items = 13)]
    pub event_types: Vec<EventType>,
    /// Default `true`.
    #[serde(default = "enabled")]
    pub enabled: bool,
    /// `hmac` (default: `v1` signatures with a shared secret) or `ed25519`
    /// (`v1a` signatures, verified with the endpoint's public key).
    #[serde(default)]
    pub signing: Signing,
}

fn enabled() -> bool {
    true
}

/// Changes to an endpoint; absent fields stay as they are.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"enabled": false}))]
pub struct UpdateWebhook {
    #[schema(max_length = 2048, pattern = "^https?://")]
    pub url: Option<String>,
    #[schema(max_length = 200)]
    pub description: Option<String>,
    /// An empty list: every type.
    #[schema(max_items = 13)]
    pub event_types: Option<Vec<EventType>>,
    pub enabled: Option<bool>,
    /// With `"enabled": true` on an endpoint that is off: queue again what
    /// it missed, from when it began failing or was turned off (at most
    /// 10,000 events; `replay.next_since` says where to go on with
    /// `POST /v1/webhooks/{webhook_id}/replay`).
    #[serde(default)]
    pub replay_missed: bool,
}

/// What a replay queued.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WebhookReplay {
    /// Deliveries queued: events the endpoint never got, and events sent
    /// again (with their original `webhook-id`).
    pub queued: i64,
    /// The replay stopped at its limit (10,000 events): replay again from
    /// here for the rest. Absent when it went to the end.
    pub next_since: Option<DateTime<Utc>>,
}

/// An endpoint after a change, and the replay the change asked for.
#[derive(Serialize, ToSchema)]
pub struct UpdatedWebhook {
    #[serde(flatten)]
    pub webhook: Webhook,
    /// Present when `replay_missed` replayed something.
    pub replay: Option<WebhookReplay>,
}

/// An endpoint with its signing secret, shown only in this response.
#[derive(Serialize, ToSchema)]
pub struct WebhookWithSecret {
    #[serde(flatten)]
    pub webhook: Webhook,
    /// `hmac` endpoints: `whsec_` and base64, the key of the `v1`
    /// HMAC-SHA256 signatures (Standard Webhooks). Store it now. (An
    /// `ed25519` endpoint has none: receivers use `public_key`.)
    #[schema(example = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

/// A new signing key of an endpoint.
pub(super) struct NewKey {
    /// The secret to show once (HMAC only).
    pub shown: Option<String>,
    /// Sealed to the endpoint: the HMAC secret or the Ed25519 seed.
    pub sealed: Vec<u8>,
    /// The Ed25519 public key.
    pub public_key: Option<Vec<u8>>,
}

pub(super) fn new_key(state: &AppState, endpoint: Uuid, signing: Signing) -> Result<NewKey, ApiError> {
    let sealing = state.sealing()?;
    Ok(match signing {
        Signing::Hmac => {
            let (text, bytes) = secret::generate();
            NewKey {
                shown: Some(text.expose().clone()),
                sealed: sealing.seal(bytes.expose(), endpoint.as_bytes()),
                public_key: None,
            }
        }
        Signing::Ed25519 => {
            let (seed, public) = secret::generate_ed25519()?;
            NewKey {
                shown: None,
                sealed: sealing.seal(seed.expose(), endpoint.as_bytes()),
                public_key: Some(public),
            }
        }
    })
}

/// Endpoints of a server.
#[derive(Serialize, ToSchema)]
pub struct WebhookList {
    pub data: Vec<Webhook>,
}

async fn visible(state: &AppState, user: Uuid, id: Uuid) -> Result<WebhookRow, ApiError> {
    db::webhooks::get_for_user(&state.db, user, id)
        .await?
        .ok_or_else(|| ApiError::not_found("webhook"))
}

fn description(text: &str) -> Result<String, ApiError> {
    let text = text.trim();
    if text.chars().count() > 200 || text.chars().any(char::is_control) {
        return Err(Invalid::new(
            "invalid_description",
            "`description` must be at most 200 characters without control characters",
        )
        .field("description")
        .into());
    }
    Ok(text.to_string())
}

fn type_names(types: &[EventType]) -> Vec<String> {
    let mut names: Vec<String> = types.iter().map(|t| t.as_str().to_string()).collect();
    names.sort();
    names.dedup();
    names
}

/// Lists a server's webhook endpoints.
#[utoipa::path(get, path = "/v1/servers/{server_id}/webhooks", operation_id = "list_webhooks", tag = "webhooks",
    security(("session" = [])), params(("server_id" = Uuid, Path)),
    responses((status = 200, description = "OK", body = WebhookList)))]
pub async fn list_webhooks(
    State(state): State<AppState>,
    session: UserSession,
    ApiPath(server): ApiPath<Uuid>,
) -> Result<Json<WebhookList>, ApiError> {
    visible_server(&state, session.user_id, server).await?;
    let data = db::webhooks::list(&state.db, session.user_id, server).await?;
    Ok(Json(WebhookList {
        data: data.into_iter().map(Webhook::from).collect(),
    }))
}

/// Adds an endpoint (owner or admin). The signing secret is returned once.
#[utoipa::path(post, path = "/v1/servers/{server_id}/webhooks", operation_id = "create_webhook", tag = "webhooks",
    security(("session" = [])), params(("server_id" = Uuid, Path)), request_body = CreateWebhook,
    responses((status = 201, description = "Created", body = WebhookWithSecret),
        (status = 403, description = "Your role does not allow this", body = ErrorBody),
        (status = 422, description = "Invalid input: a URL that is not https, leads to a private address (`private_url`), or too many endpoints", body = ErrorBody)))]
pub async fn create_webhook(
    State(state): State<AppState>,
    session: UserSession,
    ApiPath(server): ApiPath<Uuid>,
    ApiJson(input): ApiJson<CreateWebhook>,
) -> Result<(StatusCode, Json<WebhookWithSecret>), ApiError> {
    require_write(visible_server(&state, session.user_id, server).await?.role)?;
    let url = target::check(&input.url, &state.settings.webhooks, &state.resolver).await?;
    let description = description(&input.description)?;
    let types = type_names(&input.event_types);
    let id = Uuid::now_v7();
    let key = new_key(&state, id, input.signing)?;
    let new = NewWebhook {
        id,
        server_id: server,
        url: url.as_str(),
        description: &description,
        event_types: &types,
        enabled: input.enabled,
        signing: input.signing.as_str(),
        sealed_secret: &key.sealed,
        public_key: key.public_key.as_deref(),
    };
    let limit = i64::from(state.settings.webhooks.max_per_server);
    let Some(row) = db::webhooks::create(&state.db, session.user_id, new, limit).await? else {
        return Err(ApiError::unprocessable(
            "too_many_webhooks",
            format!("a server may have {limit} webhook endpoints (webhooks.max_per_server)"),
        ));
    };
    Ok((
        StatusCode::CREATED,
        Json(WebhookWithSecret {
            webhook: row.into(),
            secret: key.shown,
        }),
    ))
}

/// Gets one endpoint (never its secret).
#[utoipa::path(get, path = "/v1/webhooks/{webhook_id}", operation_id = "get_webhook", tag = "webhooks",
    security(("session" = [])), params(("webhook_id" = Uuid, Path)),
    responses((status = 200, description = "OK", body = Webhook)))]
pub async fn get_webhook(
    State(state): State<AppState>,
    session: UserSession,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<Webhook>, ApiError> {
    Ok(Json(visible(&state, session.user_id, id).await?.into()))
}

/// Changes an endpoint (owner or admin). Turning it back on can replay
/// what it missed while it was off (`replay_missed`).
#[utoipa::path(patch, path = "/v1/webhooks/{webhook_id}", operation_id = "update_webhook", tag = "webhooks",
    security(("session" = [])), params(("webhook_id" = Uuid, Path)), request_body = UpdateWebhook,
    responses((status = 200, description = "OK", body = UpdatedWebhook),
        (status = 403, description = "Your role does not allow this", body = ErrorBody)))]
pub async fn update_webhook(
    State(state): State<AppState>,
    session: UserSession,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(input): ApiJson<UpdateWebhook>,
) -> Result<Json<UpdatedWebhook>, ApiError> {
    require_write(visible(&state, session.user_id, id).await?.role)?;
    if input.replay_missed && input.enabled != Some(true) {
        return Err(Invalid::new(
            "invalid_replay",
            "`replay_missed` goes with `\"enabled\": true`: it replays what an endpoint that was off missed",
        )
        .field("replay_missed")
        .into());
    }
    let url = match &input.url {
        Some(url) => Some(target::check(url, &state.settings.webhooks, &state.resolver).await?),
        None => None,
    };
    let description = input.description.as_deref().map(description).transpose()?;
    let types = input.event_types.as_deref().map(type_names);
    let change = WebhookChange {
        url: url.as_ref().map(url::Url::as_str),
        description: description.as_deref(),
        event_types: types.as_deref(),
        enabled: input.enabled,
    };
    let missed_since = db::webhooks::update(&state.db, id, change).await?;
    let replay = match missed_since {
        Some(since) if input.replay_missed => Some(replay(&state, id, since).await?),
        _ => None,
    };
    Ok(Json(UpdatedWebhook {
        webhook: visible(&state, session.user_id, id).await?.into(),
        replay,
    }))
}

async fn replay(state: &AppState, id: Uuid, since: DateTime<Utc>) -> Result<WebhookReplay, ApiError> {
    let done = db::webhooks::replay(&state.db, id, since, REPLAY_LIMIT).await?;
    Ok(WebhookReplay {
        queued: done.queued,
        next_since: done.next_since,
    })
}

/// Where a replay starts.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReplayParams {
    /// RFC 3339: events from this time on are queued again.
    #[param(example = "2026-11-30T08:00:00Z")]
    pub since: DateTime<Utc>,
}

/// Sends again (owner or admin) every event of the server since `since`
/// that the endpoint takes, oldest first, at most 10,000 per call: events
/// it never got (it was off, or created later) and events it got, with
/// their original `webhook-id` so receivers can drop what they have.
#[utoipa::path(post, path = "/v1/webhooks/{webhook_id}/replay", operation_id = "replay_webhook", tag = "webhooks",
    security(("session" = [])), params(("webhook_id" = Uuid, Path), ReplayParams),
    responses((status = 202, description = "Queued", body = WebhookReplay),
        (status = 403, description = "Your role does not allow this", body = ErrorBody)))]
pub async fn replay_webhook(
    State(state): State<AppState>,
    session: UserSession,
    ApiPath(id): ApiPath<Uuid>,
    super::extract::ApiQuery(params): super::extract::ApiQuery<ReplayParams>,
) -> Result<(StatusCode, Json<WebhookReplay>), ApiError> {
    require_write(visible(&state, session.user_id, id).await?.role)?;
    Ok((
        StatusCode::ACCEPTED,
        Json(replay(&state, id, params.since).await?),
    ))
}

/// Deletes an endpoint (owner or admin).
#[utoipa::path(delete, path = "/v1/webhooks/{webhook_id}", operation_id = "delete_webhook", tag = "webhooks",
    security(("session" = [])), params(("webhook_id" = Uuid, Path)),
    responses((status = 204, description = "Deleted"),
        (status = 403, description = "Your role does not allow this", body = ErrorBody)))]
pub async fn delete_webhook(
    State(state): State<AppState>,
    session: UserSession,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<StatusCode, ApiError> {
    require_write(visible(&state, session.user_id, id).await?.role)?;
    db::webhooks::delete(&state.db, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Makes a new signing secret (owner or admin), returned once; for an
/// `ed25519` endpoint, a new key pair (its `public_key` in the answer). The
/// previous one keeps signing alongside it for `webhooks.secret_overlap_secs`
/// (default 24 hours): both signatures are sent, space-separated.
#[utoipa::path(post, path = "/v1/webhooks/{webhook_id}/rotate-secret", operation_id = "rotate_webhook_secret", tag = "webhooks",
    security(("session" = [])), params(("webhook_id" = Uuid, Path)),
    responses((status = 200, description = "The endpoint and its new secret", body = WebhookWithSecret),
        (status = 403, description = "Your role does not allow this", body = ErrorBody)))]
pub async fn rotate_webhook_secret(
    State(state): State<AppState>,
    session: UserSession,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<WebhookWithSecret>, ApiError> {
    let endpoint = visible(&state, session.user_id, id).await?;
    require_write(endpoint.role)?;
    let signing = Signing::parse(&endpoint.signing).unwrap_or_default();
    let key = new_key(&state, id, signing)?;
    let overlap = state.settings.webhooks.secret_overlap_secs as f64;
    db::webhooks::rotate_secret(&state.db, id, &key.sealed, key.public_key.as_deref(), overlap).await?;
    Ok(Json(WebhookWithSecret {
        webhook: visible(&state, session.user_id, id).await?.into(),
        secret: key.shown,
    }))
}

/// One attempt to deliver an event to an endpoint.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WebhookAttempt {
    pub id: i64,
    pub delivery_id: Uuid,
    /// The `webhook-id` sent.
    #[schema(example = "evt_1042")]
    pub event_id: String,
    #[schema(example = "message.sent")]
    pub event_type: String,
    /// Where the delivery stands now: `pending`, `delivered` or `failed`.
    #[schema(example = "delivered")]
    pub delivery_status: String,
    pub attempted_at: DateTime<Utc>,
    /// The endpoint's answer; absent when none came.
    pub http_status: Option<i32>,
    pub latency_ms: i32,
    /// The first KB of the answer.
    pub response_body: Option<String>,
    /// Why no answer came (connect, timeout, TLS, …).
    pub error: Option<String>,
}

impl From<db::webhooks::AttemptRow> for WebhookAttempt {
    fn from(row: db::webhooks::AttemptRow) -> Self {
        WebhookAttempt {
            id: row.id,
            delivery_id: row.delivery_id,
            event_id: row.event_id,
            event_type: row.event_type,
            delivery_status: row.delivery_status,
            attempted_at: row.attempted_at,
            http_status: row.http_status,
            latency_ms: row.latency_ms,
            response_body: row.response_body,
            error: row.error,
        }
    }
}

/// A page of an endpoint's delivery log.
#[derive(Serialize, ToSchema)]
pub struct WebhookAttemptList {
    pub data: Vec<WebhookAttempt>,
    /// Pass as `cursor` for the next (older) page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Paging through a delivery log.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LogParams {
    /// Page size, 1 to 100; default 25.
    #[param(minimum = 1, maximum = 100, default = 25)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// The delivery log of an endpoint: every attempt, newest first.
#[utoipa::path(get, path = "/v1/webhooks/{webhook_id}/deliveries", operation_id = "list_webhook_deliveries", tag = "webhooks",
    security(("session" = [])), params(("webhook_id" = Uuid, Path), LogParams),
    responses((status = 200, description = "OK", body = WebhookAttemptList)))]
pub async fn list_webhook_deliveries(
    State(state): State<AppState>,
    session: UserSession,
    ApiPath(id): ApiPath<Uuid>,
    super::extract::ApiQuery(params): super::extract::ApiQuery<LogParams>,
) -> Result<Json<WebhookAttemptList>, ApiError> {
    visible(&state, session.user_id, id).await?;
    delivery_log(&state, id, &params).await
}

/// A page of an endpoint's attempts (a webhook's or a route's).
pub(super) async fn delivery_log(
    state: &AppState,
    id: Uuid,
    params: &LogParams,
) -> Result<Json<WebhookAttemptList>, ApiError> {
    let limit = super::extract::page_limit(params.limit)?;
    let before = match &params.cursor {
        Some(cursor) => Some(cursor.parse::<i64>().ok().filter(|n| *n > 0).ok_or_else(|| {
            ApiError::bad_request("invalid_cursor", "`cursor` is not a cursor this API returned")
                .field("cursor")
        })?),
        None => None,
    };
    let mut rows = db::webhooks::attempts(&state.db, id, before, limit + 1).await?;
    let next_cursor = if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last().map(|r| r.id.to_string())
    } else {
        None
    };
    Ok(Json(WebhookAttemptList {
        data: rows.into_iter().map(WebhookAttempt::from).collect(),
        next_cursor,
    }))
}

/// Sends a delivery again (owner or admin): due at once, its retries
/// counted afresh, whether it was delivered, failed or still pending.
#[utoipa::path(post, path = "/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/retry", operation_id = "retry_webhook_delivery", tag = "webhooks",
    security(("session" = [])), params(("webhook_id" = Uuid, Path), ("delivery_id" = Uuid, Path)),
    responses((status = 202, description = "Queued to be sent again"),
        (status = 403, description = "Your role does not allow this", body = ErrorBody),
        (status = 409, description = "The delivery is being sent right now (`delivery_in_progress`)", body = ErrorBody)))]
pub async fn retry_webhook_delivery(
    State(state): State<AppState>,
    session: UserSession,
    ApiPath((id, delivery)): ApiPath<(Uuid, Uuid)>,
) -> Result<StatusCode, ApiError> {
    require_write(visible(&state, session.user_id, id).await?.role)?;
    retry_delivery(&state, id, delivery).await
}

/// Makes one of an endpoint's deliveries due again.
pub(super) async fn retry_delivery(
    state: &AppState,
    id: Uuid,
    delivery: Uuid,
) -> Result<StatusCode, ApiError> {
    if db::webhooks::retry(&state.db, id, delivery).await? {
        return Ok(StatusCode::ACCEPTED);
    }
    if db::webhooks::has_delivery(&state.db, id, delivery).await? {
        Err(ApiError::conflict(
            "delivery_in_progress",
            "the delivery is being sent right now; try again shortly",
        ))
    } else {
        Err(ApiError::not_found("delivery"))
    }
}

/// Sends a `webhook.test` event to the endpoint now (owner or admin), once,
/// whether or not it is enabled, and answers with the attempt.
#[utoipa::path(post, path = "/v1/webhooks/{webhook_id}/test", operation_id = "test_webhook", tag = "webhooks",
    security(("session" = [])), params(("webhook_id" = Uuid, Path)),
    responses((status = 200, description = "The attempt, whatever the endpoint answered", body = WebhookAttempt),
        (status = 403, description = "Your role does not allow this", body = ErrorBody)))]
pub async fn test_webhook(
    State(state): State<AppState>,
    session: UserSession,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<WebhookAttempt>, ApiError> {
    let endpoint = visible(&state, session.user_id, id).await?;
    require_write(endpoint.role)?;
    let dispatcher = crate::webhooks::dispatcher::Dispatcher::new(state.clone())?;
    let attempt = dispatcher
        .send_test(id, endpoint.server_id)
        .await?
        .ok_or_else(|| ApiError::not_found("webhook"))?;
    Ok(Json(attempt.into()))
}
