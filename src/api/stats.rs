//! A server's numbers per day, for the dashboard: what was accepted,
//! delivered, bounced, complained about, opened and clicked.

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::extract::{ApiPath, ApiQuery, UserSession};
use super::servers::visible as visible_server;
use crate::api::error::{ApiError, ErrorBody};
use crate::db;
use crate::state::AppState;

/// Days one request may span.
const MAX_DAYS: i64 = 366;

/// The days to count: `[from, to)`, UTC; default the last 30 days.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatsParams {
    /// First day (RFC 3339 time or `YYYY-MM-DD`); default 30 days before `to`.
    pub from: Option<String>,
    /// End, not included; default now.
    pub to: Option<String>,
}

/// Opens or clicks of a day.
#[derive(Debug, Serialize, ToSchema)]
pub struct Engagement {
    /// Every hit, machine-flagged ones included.
    pub total: i64,
    /// Recipients with at least one hit not flagged `machine`.
    pub unique: i64,
    /// Hits that looked automatic (privacy proxies, scanners, prefetch).
    pub machine: i64,
}

/// One UTC day of a server's events.
#[derive(Debug, Serialize, ToSchema)]
pub struct DayStats {
    #[schema(value_type = String, format = Date, example = "2026-11-30")]
    pub day: NaiveDate,
    /// Recipients accepted (queued or held).
    pub accepted: i64,
    /// Recipients a receiving server accepted (`message.sent`).
    pub delivered: i64,
    pub deferred: i64,
    pub bounced: i64,
    pub failed: i64,
    pub suppressed: i64,
    pub complained: i64,
    pub unsubscribed: i64,
    pub opened: Engagement,
    pub clicked: Engagement,
}

/// What waits in the delivery queue for the server now.
#[derive(Debug, Serialize, ToSchema)]
pub struct QueueStats {
    /// Recipients waiting for a first attempt.
    pub queued: i64,
    /// Recipients waiting for a retry after a temporary failure.
    pub deferred: i64,
    /// When the oldest message still waiting was accepted; absent when
    /// nothing waits.
    pub oldest_accepted_at: Option<DateTime<Utc>>,
}

/// The days that had events, oldest first, and the queue as it is now.
#[derive(Debug, Serialize, ToSchema)]
pub struct ServerStats {
    pub server_id: Uuid,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub days: Vec<DayStats>,
    pub queue: QueueStats,
}

/// A time of the query, between 1970 and 9999.
fn instant(text: &str, field: &str) -> Result<DateTime<Utc>, ApiError> {
    let at = DateTime::parse_from_rfc3339(text)
        .map(|at| at.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map(|t| t.and_utc())
        });
    at.filter(|at| (1970..=9999).contains(&at.year())).ok_or_else(|| {
        ApiError::bad_request(
            "invalid_query",
            format!("`{field}` is not a date or an RFC 3339 time between 1970 and 9999"),
        )
        .field(field)
    })
}

/// A server's events per UTC day and its queue now (administrators).
#[utoipa::path(get, path = "/v1/servers/{server_id}/stats", operation_id = "get_server_stats", tag = "servers",
    security(("session" = [])), params(("server_id" = Uuid, Path), StatsParams),
    responses((status = 200, description = "OK", body = ServerStats), (status = 400, description = "Malformed request", body = ErrorBody), (status = 404, description = "Not found (or not visible to you)", body = ErrorBody)))]
pub async fn get_server_stats(
    State(state): State<AppState>,
    session: UserSession,
    ApiPath(server): ApiPath<Uuid>,
    ApiQuery(params): ApiQuery<StatsParams>,
) -> Result<Json<ServerStats>, ApiError> {
    visible_server(&state, session.user_id, server).await?;
    let to = match &params.to {
        Some(to) => instant(to, "to")?,
        None => Utc::now(),
    };
    let from = match &params.from {
        Some(from) => instant(from, "from")?,
        None => to - Duration::days(30),
    };
    if from >= to || to - from > Duration::days(MAX_DAYS) {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("`from` must come before `to`, at most {MAX_DAYS} days before"),
        )
        .field("from"));
    }
    let (days, queue) = tokio::try_join!(
        db::tracking::server_days(&state.db, server, from, to),
        db::queue::server_depth(&state.db, server),
    )?;
    let days = days
        .into_iter()
        .map(|d| DayStats {
            day: d.day,
            accepted: d.accepted,
            delivered: d.delivered,
            deferred: d.deferred,
            bounced: d.bounced,
            failed: d.failed,
            suppressed: d.suppressed,
            complained: d.complained,
            unsubscribed: d.unsubscribed,
            opened: Engagement {
                total: d.opened,
                unique: d.opened_unique,
                machine: d.opened_machine,
            },
            clicked: Engagement {
                total: d.clicked,
                unique: d.clicked_unique,
                machine: d.clicked_machine,
            },
        })
        .collect();
    Ok(Json(ServerStats {
        server_id: server,
        from,
        to,
        days,
        queue: QueueStats {
            queued: queue.queued,
            deferred: queue.deferred,
            oldest_accepted_at: queue.oldest_accepted_at,
        },
    }))
}
