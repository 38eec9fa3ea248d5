//! Liveness and readiness probes.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use crate::api::error::ApiError;
use crate::db::{self, MIGRATOR};
use crate::observability::logs::chain;
use crate::state::AppState;

/// A probe's answer.
#[derive(Serialize, ToSchema)]
pub struct Health {
    #[schema(example = "ok")]
    pub status: &'static str,
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", operation_id = "healthz", tag = "health",
    responses((status = 200, description = "Process is running", body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// The database is reachable and every migration of this build is applied.
#[utoipa::path(get, path = "/readyz", operation_id = "readyz", tag = "health",
    responses(
        (status = 200, description = "Ready to serve", body = Health),
        (status = 503, description = "Database unreachable or schema behind", body = crate::api::error::ErrorBody),
    ))]
pub async fn readyz(
    State(state): State<AppState>,
) -> Result<Json<Health>, (axum::http::StatusCode, Json<crate::api::error::ErrorBody>)> {
    let unavailable = |message: &str| {
        (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            Json(crate::api::error::ErrorBody {
                error: crate::api::error::ErrorDetail {
                    code: "not_ready",
                    message: message.to_string(),
                    field: None,
                },
            }),
        )
    };
    let applied = db::applied_migrations(&state.db).await.map_err(|err| {
        tracing::warn!(error = %chain(&err), "readiness check failed");
        unavailable("database unreachable")
    })?;
    let missing = MIGRATOR.iter().any(|m| !applied.contains(&m.version));
    if missing {
        return Err(unavailable("migrations pending"));
    }
    Ok(Json(Health { status: "ok" }))
}

/// Fallback for unknown paths.
pub async fn not_found() -> ApiError {
    ApiError::not_found("route")
}

/// Prometheus metrics of this process, plus the shared queue's depth and age.
#[utoipa::path(get, path = "/metrics", operation_id = "metrics", tag = "health",
    responses((status = 200, description = "Prometheus text exposition format",
        content_type = "text/plain; version=0.0.4", body = String,
        example = "tern_queue_depth{status=\"queued\"} 0")))]
pub async fn metrics(State(state): State<AppState>) -> impl axum::response::IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        crate::observability::metrics::render(&state.db).await,
    )
}
