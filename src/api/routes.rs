//! Inbound routes of a server: which address of one of its domains takes
//! mail, and what happens to it (POSTed to an endpoint, held, or refused).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::extract::{ApiJson, ApiPath, UserSession, require_write};
use super::servers::visible as visible_server;
use super::webhooks::{LogParams, WebhookAttemptList};
use crate::api::error::{ApiError, ErrorBody};
use crate::db;
use crate::db::routes::{CreateRouteError, NewRoute, NewRouteEndpoint, RouteChange, RouteRow};
use crate::domain::Invalid;
use crate::state::AppState;
use crate::webhooks::events::InboundFormat;
use crate::webhooks::signature::Signing;
use crate::webhooks::{secret, target};

/// Routes one server may have.
const MAX_ROUTES: i64 = 200;

/// What a route does with a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RouteAction {
    /// POST it to `url` as an `inbound.received` event.
    Endpoint,
    /// Store it; read it through the API.
    Hold,
    /// Refuse it at RCPT TO with `reject_code` and `reject_message`.
    Reject,
}

impl RouteAction {
    fn as_str(self) -> &'static str {
        match self {
            RouteAction::Endpoint => "endpoint",
            RouteAction::Hold => "hold",
            RouteAction::Reject => "reject",
        }
    }
}

/// What a failed check leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CheckPolicy {
    /// Refuse at the end of DATA (`550 5.7.1`): the sender keeps the message.
    Reject,
    /// Accept it with `flagged: true`.
    Flag,
}

impl CheckPolicy {
    fn as_str(self) -> &'static str {
        match self {
            CheckPolicy::Reject => "reject",
            CheckPolicy::Flag => "flag",
        }
    }

    fn parse(text: &str) -> CheckPolicy {
        if text == "reject" {
            CheckPolicy::Reject
        } else {
            CheckPolicy::Flag
        }
    }
}

/// The MX record a receiving domain publishes.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MxRecord {
    #[schema(example = "MX")]
    pub record_type: String,
    #[schema(example = "example.org")]
    pub name: String,
    #[schema(example = "tern.example.net")]
    pub value: String,
    #[schema(example = 10)]
    pub priority: u16,
}

/// An inbound route.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Route {
    pub id: Uuid,
    pub server_id: Uuid,
    pub domain_id: Uuid,
    /// The address it takes: `support@example.org`; `*@example.org` is the
    /// domain's catch-all. `user@` also takes `user+anything@`.
    #[schema(example = "support@example.org")]
    pub address: String,
    pub action: RouteAction,
    /// `endpoint` routes: where messages are POSTed.
    pub url: Option<String>,
    /// `endpoint` routes: how payloads are signed.
    pub signing: Option<Signing>,
    /// `ed25519` endpoints: the public key of `v1a` signatures.
    pub public_key: Option<String>,
    pub format: InboundFormat,
    pub reject_code: Option<u16>,
    pub reject_message: Option<String>,
    /// A DMARC failure under the sender's `p=reject`.
    pub dmarc_reject: CheckPolicy,
    /// A spam score at or over this (when a scanner is configured).
    pub spam_threshold: Option<f32>,
    pub spam_action: CheckPolicy,
    /// The domain's MX record, to publish for mail to reach Tern.
    pub mx_record: MxRecord,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

fn view(row: RouteRow, state: &AppState) -> Route {
    let action = match row.action.as_str() {
        "endpoint" => RouteAction::Endpoint,
        "reject" => RouteAction::Reject,
        _ => RouteAction::Hold,
    };
    Route {
        id: row.id,
        server_id: row.server_id,
        domain_id: row.domain_id,
        address: format!("{}@{}", row.local_part, row.domain),
        action,
        url: row.url,
        signing: row.signing.as_deref().and_then(Signing::parse),
        public_key: row.public_key.as_deref().map(secret::public_key_text),
        format: if row.format == "raw" {
            InboundFormat::Raw
        } else {
            InboundFormat::Parsed
        },
        reject_code: row.reject_code.and_then(|c| u16::try_from(c).ok()),
        reject_message: row.reject_message,
        dmarc_reject: CheckPolicy::parse(&row.dmarc_reject),
        spam_threshold: row.spam_threshold,
        spam_action: CheckPolicy::parse(&row.spam_action),
        mx_record: MxRecord {
            record_type: "MX".into(),
            name: row.domain,
            value: state.settings.smtp_hostname().to_string(),
            priority: 10,
        },
        created_at: row.created_at,
        updated_at: row.updated_at,
    }
}

/// Input for creating a route.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "address": "support@example.com",
    "action": "endpoint",
    "url": "https://app.example.com/inbound",
    "format": "parsed"
}))]
pub struct CreateRoute {
    /// An address at one of the server's domains; `*@domain` takes every
    /// address of the domain not routed otherwise.
    #[schema(max_length = 320, example = "support@example.com")]
    pub address: String,
    pub action: RouteAction,
    /// `endpoint` routes: `https://` (or `http://` where allowed), not to a
    /// private address.
    #[schema(max_length = 2048)]
    pub url: Option<String>,
    /// Default `parsed`.
    #[serde(default = "parsed")]
    pub format: InboundFormat,
    #[serde(default)]
    pub signing: Signing,
    /// `reject` routes: a 4xx or 5xx code (default 550).
    #[schema(minimum = 400, maximum = 599)]
    pub reject_code: Option<u16>,
    #[schema(max_length = 200)]
    pub reject_message: Option<String>,
    /// Default `reject`.
    #[serde(default = "reject")]
    pub dmarc_reject: CheckPolicy,
    pub spam_threshold: Option<f32>,
    /// Default `flag`.
    #[serde(default = "flag")]
    pub spam_action: CheckPolicy,
}

fn parsed() -> InboundFormat {
    InboundFormat::Parsed
}
fn reject() -> CheckPolicy {
    CheckPolicy::Reject
}
fn flag() -> CheckPolicy {
    CheckPolicy::Flag
}

/// Changes to a route; absent fields stay as they are.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"format": "raw"}))]
pub struct UpdateRoute {
    #[schema(max_length = 2048)]
    pub url: Option<String>,
    pub format: Option<InboundFormat>,
    #[schema(minimum = 400, maximum = 599)]
    pub reject_code: Option<u16>,
    #[schema(max_length = 200)]
    pub reject_message: Option<String>,
    pub dmarc_reject: Option<CheckPolicy>,
    /// `null` removes it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<f32>)]
    pub spam_threshold: Option<Option<f32>>,
    pub spam_action: Option<CheckPolicy>,
}

/// A field that is present (`null` included), told from an absent one.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<f32>>, D::Error> {
    Option::<f32>::deserialize(d).map(Some)
}

/// A new `endpoint` route with its signing secret, shown only here.
#[derive(Serialize, ToSchema)]
pub struct RouteWithSecret {
    #[serde(flatten)]
    pub route: Route,
    /// `hmac` endpoints: `whsec_` and base64. Store it now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

/// Routes of a server.
#[derive(Serialize, ToSchema)]
pub struct RouteList {
    pub data: Vec<Route>,
}

async fn visible(state: &AppState, user: Uuid, id: Uuid) -> Result<RouteRow, ApiError> {
    db::routes::get_for_user(&state.db, user, id)
        .await?
        .ok_or_else(|| ApiError::not_found("route"))
}

fn local_part(text: &str) -> Result<String, ApiError> {
    let valid = text == "*"
        || crate::inbound::recipient::split(&format!("{text}@example.org"))
            .is_some_and(|parts| parts.local == text.to_lowercase());
    if !valid {
        return Err(Invalid::new(
            "invalid_address",
            "the address must be `*@domain` or a plain address (letters, digits and .#$&'*+-/=?^_`{|}~ before the @, no quotes)",
        )
        .field("address")
        .into());
    }
    Ok(text.to_lowercase())
}

fn reject_reply(code: Option<u16>, message: Option<&str>) -> Result<(Option<i16>, Option<String>), ApiError> {
    if let Some(code) = code
        && !(400..600).contains(&code)
    {
        return Err(
            Invalid::new("invalid_reject_code", "`reject_code` must be from 400 to 599")
                .field("reject_code")
                .into(),
        );
    }
    let message = message.map(str::trim).filter(|m| !m.is_empty());
    if let Some(message) = message
        && (message.chars().count() > 200 || !message.chars().all(|c| c.is_ascii() && !c.is_ascii_control()))
    {
        return Err(Invalid::new(
            "invalid_reject_message",
            "`reject_message` must be at most 200 printable ASCII characters",
        )
        .field("reject_message")
        .into());
    }
    Ok((
        code.and_then(|c| i16::try_from(c).ok()),
        message.map(str::to_string),
    ))
}

fn threshold(value: Option<f32>) -> Result<Option<f32>, ApiError> {
    match value {
        Some(v) if !v.is_finite() || !(-1000.0..=1000.0).contains(&v) => Err(Invalid::new(
            "invalid_spam_threshold",
            "`spam_threshold` must be a number from -1000 to 1000",
        )
        .field("spam_threshold")
        .into()),
        other => Ok(other),
    }
}

/// Lists a server's routes.
#[utoipa::path(get, path = "/v1/servers/{server_id}/routes", operation_id = "list_routes", tag = "routes",
    security(("session" = [])), params(("server_id" = Uuid, Path)),
    responses((status = 200, description = "OK", body = RouteList)))]
pub async fn list_routes(
    State(state): State<AppState>,
    session: UserSession,
    ApiPath(server): ApiPath<Uuid>,
) -> Result<Json<RouteList>, ApiError> {
    visible_server(&state, session.user_id, server).await?;
    let data = db::routes::list(&state.db, session.user_id, server).await?;
    Ok(Json(RouteList {
        data: data.into_iter().map(|row| view(row, &state)).collect(),
    }))
}

/// Adds a route (owner or admin). An `endpoint` route's signing secret is
/// returned once.
#[utoipa::path(post, path = "/v1/servers/{server_id}/routes", operation_id = "create_route", tag = "routes",
    security(("session" = [])), params(("server_id" = Uuid, Path)), request_body = CreateRoute,
    responses((status = 201, description = "Created", body = RouteWithSecret),
        (status = 403, description = "Your role does not allow this", body = ErrorBody),
        (status = 409, description = "The domain has a route for this address (`route_exists`)", body = ErrorBody),
        (status = 422, description = "Invalid input", body = ErrorBody)))]
pub async fn create_route(
    State(state): State<AppState>,
    session: UserSession,
    ApiPath(server): ApiPath<Uuid>,
    ApiJson(input): ApiJson<CreateRoute>,
) -> Result<(StatusCode, Json<RouteWithSecret>), ApiError> {
    require_write(visible_server(&state, session.user_id, server).await?.role)?;
    let (local, domain) = input.address.trim().rsplit_once('@').unwrap_or(("", ""));
    let local = local_part(local)?;
    let domain = db::domains::list(&state.db, session.user_id, server)
        .await?
        .into_iter()
        .find(|d| d.name.eq_ignore_ascii_case(domain))
        .ok_or_else(|| {
            ApiError::from(
                Invalid::new(
                    "unknown_domain",
                    "the address is not at one of this server's domains",
                )
                .field("address"),
            )
        })?;
    let (reject_code, reject_message) = reject_reply(input.reject_code, input.reject_message.as_deref())?;
    let spam_threshold = threshold(input.spam_threshold)?;
    let url = match (input.action, &input.url) {
        (RouteAction::Endpoint, Some(url)) => {
            Some(target::check(url, &state.settings.webhooks, &state.resolver).await?)
        }
        (RouteAction::Endpoint, None) => {
            return Err(Invalid::new("missing_url", "an `endpoint` route needs a `url`")
                .field("url")
                .into());
        }
        (_, Some(_)) => {
            return Err(
                Invalid::new("unexpected_url", "only `endpoint` routes have a `url`")
                    .field("url")
                    .into(),
            );
        }
        (_, None) => None,
    };
    let reject_code = match input.action {
        RouteAction::Reject => Some(reject_code.unwrap_or(550)),
        _ => None,
    };
    let endpoint_id = Uuid::now_v7();
    let key = match url {
        Some(_) => Some(super::webhooks::new_key(&state, endpoint_id, input.signing)?),
        None => None,
    };
    let endpoint = match (&url, &key) {
        (Some(url), Some(key)) => Some(NewRouteEndpoint {
            id: endpoint_id,
            url: url.as_str(),
            signing: input.signing.as_str(),
            sealed_secret: &key.sealed,
            public_key: key.public_key.as_deref(),
        }),
        _ => None,
    };
    let new = NewRoute {
        id: Uuid::now_v7(),
        server_id: server,
        domain_id: domain.id,
        local_part: &local,
        action: input.action.as_str(),
        endpoint,
        format: match input.format {
            InboundFormat::Raw => "raw",
            InboundFormat::Parsed => "parsed",
        },
        reject_code,
        reject_message: if input.action == RouteAction::Reject {
            reject_message.as_deref()
        } else {
            None
        },
        dmarc_reject: input.dmarc_reject.as_str(),
        spam_threshold,
        spam_action: input.spam_action.as_str(),
    };
    let row = match db::routes::create(&state.db, session.user_id, new, MAX_ROUTES).await {
        Ok(row) => row,
        Err(CreateRouteError::Duplicate) => {
            return Err(ApiError::conflict(
                "route_exists",
                format!("{local}@{} has a route already", domain.name),
            ));
        }
        Err(CreateRouteError::TooMany) => {
            return Err(ApiError::unprocessable(
                "too_many_routes",
                format!("a server may have {MAX_ROUTES} routes"),
            ));
        }
        Err(CreateRouteError::Db(err)) => return Err(err.into()),
    };
    Ok((
        StatusCode::CREATED,
        Json(RouteWithSecret {
            route: view(row, &state),
            secret: key.and_then(|k| k.shown),
        }),
    ))
}

/// Gets one route.
#[utoipa::path(get, path = "/v1/routes/{route_id}", operation_id = "get_route", tag = "routes",
    security(("session" = [])), params(("route_id" = Uuid, Path)),
    responses((status = 200, description = "OK", body = Route)))]
pub async fn get_route(
    State(state): State<AppState>,
    session: UserSession,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<Route>, ApiError> {
    Ok(Json(view(visible(&state, session.user_id, id).await?, &state)))
}

/// Changes a route (owner or admin); its address and action stay.
#[utoipa::path(patch, path = "/v1/routes/{route_id}", operation_id = "update_route", tag = "routes",
    security(("session" = [])), params(("route_id" = Uuid, Path)), request_body = UpdateRoute,
    responses((status = 200, description = "OK", body = Route),
        (status = 403, description = "Your role does not allow this", body = ErrorBody),
        (status = 422, description = "Invalid input", body = ErrorBody)))]
pub async fn update_route(
    State(state): State<AppState>,
    session: UserSession,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(input): ApiJson<UpdateRoute>,
) -> Result<Json<Route>, ApiError> {
    let route = visible(&state, session.user_id, id).await?;
    require_write(route.role)?;
    let url = match (&input.url, route.action.as_str()) {
        (Some(url), "endpoint") => Some(target::check(url, &state.settings.webhooks, &state.resolver).await?),
        (Some(_), _) => {
            return Err(
                Invalid::new("unexpected_url", "only `endpoint` routes have a `url`")
                    .field("url")
                    .into(),
            );
        }
        (None, _) => None,
    };
    let (reject_code, reject_message) = reject_reply(input.reject_code, input.reject_message.as_deref())?;
    let spam_threshold = match input.spam_threshold {
        Some(value) => Some(threshold(value)?),
        None => None,
    };
    let change = RouteChange {
        url: url.as_ref().map(url::Url::as_str),
        format: input.format.map(|f| match f {
            InboundFormat::Raw => "raw",
            InboundFormat::Parsed => "parsed",
        }),
        reject_code,
        reject_message: reject_message.as_deref(),
        dmarc_reject: input.dmarc_reject.map(CheckPolicy::as_str),
        spam_threshold,
        spam_action: input.spam_action.map(CheckPolicy::as_str),
    };
    db::routes::update(&state.db, id, change).await?;
    Ok(Json(view(visible(&state, session.user_id, id).await?, &state)))
}

/// Deletes a route (owner or admin), with its endpoint's pending deliveries.
#[utoipa::path(delete, path = "/v1/routes/{route_id}", operation_id = "delete_route", tag = "routes",
    security(("session" = [])), params(("route_id" = Uuid, Path)),
    responses((status = 204, description = "Deleted"),
        (status = 403, description = "Your role does not allow this", body = ErrorBody)))]
pub async fn delete_route(
    State(state): State<AppState>,
    session: UserSession,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<StatusCode, ApiError> {
    require_write(visible(&state, session.user_id, id).await?.role)?;
    db::routes::delete(&state.db, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The endpoint of an `endpoint` route.
fn endpoint_of(route: &RouteRow) -> Result<Uuid, ApiError> {
    route
        .endpoint_id
        .ok_or_else(|| ApiError::not_found("endpoint of this route (it is not an `endpoint` route)"))
}

/// The delivery log of an `endpoint` route: every attempt to POST its
/// messages (`inbound.received`), newest first.
#[utoipa::path(get, path = "/v1/routes/{route_id}/deliveries", operation_id = "list_route_deliveries", tag = "routes",
    security(("session" = [])), params(("route_id" = Uuid, Path), LogParams),
    responses((status = 200, description = "OK", body = WebhookAttemptList)))]
pub async fn list_route_deliveries(
    State(state): State<AppState>,
    session: UserSession,
    ApiPath(id): ApiPath<Uuid>,
    super::extract::ApiQuery(params): super::extract::ApiQuery<LogParams>,
) -> Result<Json<WebhookAttemptList>, ApiError> {
    let endpoint = endpoint_of(&visible(&state, session.user_id, id).await?)?;
    super::webhooks::delivery_log(&state, endpoint, &params).await
}

/// Sends one of the route's deliveries again (owner or admin).
#[utoipa::path(post, path = "/v1/routes/{route_id}/deliveries/{route_delivery_id}/retry", operation_id = "retry_route_delivery", tag = "routes",
    security(("session" = [])), params(("route_id" = Uuid, Path), ("route_delivery_id" = Uuid, Path, description = "A delivery of the route's log (`delivery_id` there)")),
    responses((status = 202, description = "Queued to be sent again"),
        (status = 403, description = "Your role does not allow this", body = ErrorBody),
        (status = 409, description = "The delivery is being sent right now (`delivery_in_progress`)", body = ErrorBody)))]
pub async fn retry_route_delivery(
    State(state): State<AppState>,
    session: UserSession,
    ApiPath((id, delivery)): ApiPath<(Uuid, Uuid)>,
) -> Result<StatusCode, ApiError> {
    let route = visible(&state, session.user_id, id).await?;
    require_write(route.role)?;
    super::webhooks::retry_delivery(&state, endpoint_of(&route)?, delivery).await
}
