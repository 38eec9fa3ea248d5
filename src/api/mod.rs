//! The HTTP API: routes, middleware and the OpenAPI document built from the
//! same handler annotations.

pub mod api_keys;
pub mod auth;
pub mod dashboard;
pub mod doc;
pub mod domains;
pub mod error;
pub mod extract;
pub mod health;
pub mod messages;
pub mod organizations;
pub mod routes;
pub mod send;
pub mod server_messages;
pub mod servers;
pub mod smtp_rules;
pub mod stats;
pub mod suppressions;
pub mod tracking;
pub mod unsubscribe;
pub mod webhooks;

use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, Request, StatusCode};
use axum::response::IntoResponse;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use utoipa_swagger_ui::SwaggerUi;

use crate::api::error::ApiError;
use crate::state::AppState;

/// The header carrying each request's id, in requests and responses.
pub const REQUEST_ID: &str = "x-request-id";

fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(doc::ApiDoc::openapi())
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(health::metrics))
        .routes(routes!(auth::login))
        .routes(routes!(auth::me))
        .routes(routes!(
            organizations::list_organizations,
            organizations::create_organization
        ))
        .routes(routes!(
            organizations::get_organization,
            organizations::update_organization,
            organizations::delete_organization
        ))
        .routes(routes!(organizations::list_members, organizations::add_member))
        .routes(routes!(organizations::remove_member))
        .routes(routes!(servers::list_servers, servers::create_server))
        .routes(routes!(
            servers::get_server,
            servers::update_server,
            servers::delete_server
        ))
        .routes(routes!(tracking::verify_tracking_host))
        .routes(routes!(stats::get_server_stats))
        .routes(routes!(domains::list_domains, domains::create_domain))
        .routes(routes!(domains::get_domain, domains::delete_domain))
        .routes(routes!(domains::verify_domain))
        .routes(routes!(api_keys::list_api_keys, api_keys::create_api_key))
        .routes(routes!(
            api_keys::get_api_key,
            api_keys::update_api_key,
            api_keys::revoke_api_key
        ))
        .routes(routes!(webhooks::list_webhooks, webhooks::create_webhook))
        .routes(routes!(
            webhooks::get_webhook,
            webhooks::update_webhook,
            webhooks::delete_webhook
        ))
        .routes(routes!(webhooks::rotate_webhook_secret))
        .routes(routes!(webhooks::list_webhook_deliveries))
        .routes(routes!(webhooks::retry_webhook_delivery))
        .routes(routes!(webhooks::test_webhook))
        .routes(routes!(webhooks::replay_webhook))
        .routes(routes!(routes::list_routes, routes::create_route))
        .routes(routes!(routes::list_route_deliveries))
        .routes(routes!(routes::retry_route_delivery))
        .routes(routes!(smtp_rules::list_ip_rules, smtp_rules::create_ip_rule))
        .routes(routes!(smtp_rules::delete_ip_rule))
        .routes(routes!(
            routes::get_route,
            routes::update_route,
            routes::delete_route
        ))
        .routes(routes!(
            suppressions::list_suppressions,
            suppressions::import_suppressions
        ))
        .routes(routes!(
            suppressions::get_suppression,
            suppressions::put_suppression,
            suppressions::delete_suppression
        ))
        .routes(routes!(
            suppressions::list_server_suppressions,
            suppressions::import_server_suppressions
        ))
        .routes(routes!(
            suppressions::get_server_suppression,
            suppressions::put_server_suppression,
            suppressions::delete_server_suppression
        ))
        .routes(routes!(send::send_message, messages::list_messages))
        .routes(routes!(send::send_raw_message))
        .routes(routes!(messages::get_message))
        .routes(routes!(messages::get_message_source))
        .routes(routes!(messages::get_message_attachment))
        .routes(routes!(server_messages::list_server_messages))
        .routes(routes!(server_messages::get_server_message))
        .routes(routes!(server_messages::get_server_message_source))
}

/// The OpenAPI document, as served at `/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut openapi = routes().split_for_parts().1;
    doc::complete(&mut openapi);
    openapi
}

/// The OpenAPI document as committed under `openapi/openapi.json`.
pub fn openapi_json() -> String {
    let mut json = openapi().to_pretty_json().unwrap_or_default();
    json.push('\n');
    json
}

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> axum::response::Response {
    ApiError::Internal(anyhow::anyhow!("handler panicked")).into_response()
}

/// The operations listener (`http.ops_listen`): probes and metrics only.
pub fn ops_router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", axum::routing::get(health::healthz))
        .route("/readyz", axum::routing::get(health::readyz))
        .route("/metrics", axum::routing::get(health::metrics))
        .fallback(health::not_found)
        .with_state(state)
}

/// The whole HTTP application.
pub fn router(state: AppState) -> Router {
    let body_limit = state.settings.max_request_bytes();
    let timeout = Duration::from_secs(state.settings.http.request_timeout_secs);
    let (api, mut document) = routes().split_for_parts();
    doc::complete(&mut document);
    let request_id = HeaderName::from_static(REQUEST_ID);
    let middleware = ServiceBuilder::new()
        .layer(SetSensitiveRequestHeadersLayer::new([
            axum::http::header::AUTHORIZATION,
        ]))
        .layer(SetRequestIdLayer::new(request_id.clone(), MakeRequestUuid))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
            let id = req
                .headers()
                .get(REQUEST_ID)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-");
            tracing::info_span!("request", method = %req.method(), uri = %req.uri().path(), request_id = %id)
        }))
        .layer(PropagateRequestIdLayer::new(request_id))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            timeout,
        ));
    api.merge(SwaggerUi::new("/docs").url("/openapi.json", document))
        // Not part of the JSON API: pages for recipients.
        .route(
            "/u/{token}",
            axum::routing::get(unsubscribe::unsubscribe_page).post(unsubscribe::unsubscribe),
        )
        .route("/o/{token}", axum::routing::get(tracking::open))
        .route("/c/{token}", axum::routing::get(tracking::click))
        // The dashboard (web/) and its own routes; other paths: JSON 404.
        .fallback(dashboard::serve)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(middleware)
        .with_state(state)
}
