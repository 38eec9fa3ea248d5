//! Mail servers: the unit that owns domains, keys and messages.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use crate::domain::{Role, ServerMode};

/// A mail server.
#[derive(Debug, Clone)]
pub struct ServerRow {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub name: String,
    pub mode: ServerMode,
    /// Add `List-Unsubscribe` to messages (one recipient each).
    pub list_unsubscribe: bool,
    /// Track opens and clicks by default.
    pub track_opens: bool,
    pub track_clicks: bool,
    /// The customer's tracking host (a CNAME to Tern), and its checks.
    pub tracking_host: Option<String>,
    pub tracking_checked_at: Option<DateTime<Utc>>,
    pub tracking_verified_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The calling user's role in the server's organization.
    pub role: Role,
}

/// Servers as `user` sees them; `$1` is the user, `$2`... follow.
macro_rules! select_visible {
    ($tail:literal $(, $arg:expr)* $(,)?) => {
        sqlx::query_as!(
            ServerRow,
            r#"SELECT s.id, s.organization_id, s.name, s.mode AS "mode: ServerMode", s.list_unsubscribe, s.track_opens,
                      s.track_clicks, s.tracking_host, s.tracking_checked_at, s.tracking_verified_at, s.created_at,
                      s.updated_at, m.role AS "role: Role"
               FROM servers s
               JOIN memberships m ON m.organization_id = s.organization_id AND m.user_id = $1 "#
                + $tail
            $(, $arg)*
        )
    };
}

#[tracing::instrument(level = "debug", skip(pool))]
pub async fn create(
    pool: &PgPool,
    user: Uuid,
    org: Uuid,
    name: &str,
    mode: ServerMode,
    list_unsubscribe: bool,
) -> sqlx::Result<ServerRow> {
    let id = Uuid::now_v7();
    sqlx::query!(
        "INSERT INTO servers (id, organization_id, name, mode, list_unsubscribe) VALUES ($1, $2, $3, $4, $5)",
        id,
        org,
        name,
        mode as ServerMode,
        list_unsubscribe
    )
    .execute(pool)
    .await?;
    get_for_user(pool, user, id)
        .await?
        .ok_or(sqlx::Error::RowNotFound)
}

#[tracing::instrument(level = "debug", skip(pool))]
pub async fn list(pool: &PgPool, user: Uuid, org: Uuid) -> sqlx::Result<Vec<ServerRow>> {
    select_visible!(
        "WHERE s.organization_id = $2 ORDER BY s.created_at, s.id",
        user,
        org
    )
    .fetch_all(pool)
    .await
}

/// The server if `user` belongs to its organization.
#[tracing::instrument(level = "debug", skip(pool))]
pub async fn get_for_user(pool: &PgPool, user: Uuid, id: Uuid) -> sqlx::Result<Option<ServerRow>> {
    select_visible!("WHERE s.id = $2", user, id)
        .fetch_optional(pool)
        .await
}

/// A server's settings, as an update leaves them.
#[derive(Debug, Clone)]
pub struct ServerSettings<'a> {
    pub name: &'a str,
    pub mode: ServerMode,
    pub list_unsubscribe: bool,
    pub track_opens: bool,
    pub track_clicks: bool,
}

#[tracing::instrument(level = "debug", skip(pool))]
pub async fn update(pool: &PgPool, id: Uuid, settings: &ServerSettings<'_>) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE servers SET name = $2, mode = $3, list_unsubscribe = $4, track_opens = $5,
             track_clicks = $6, updated_at = now()
         WHERE id = $1",
        id,
        settings.name,
        settings.mode as ServerMode,
        settings.list_unsubscribe,
        settings.track_opens,
        settings.track_clicks
    )
    .execute(pool)
    .await
    .map(|_| ())
}

#[tracing::instrument(level = "debug", skip(pool))]
pub async fn delete(pool: &PgPool, id: Uuid) -> sqlx::Result<()> {
    sqlx::query!("DELETE FROM servers WHERE id = $1", id)
        .execute(pool)
        .await
        .map(|_| ())
}
