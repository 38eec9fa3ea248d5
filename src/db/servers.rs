//! Mail servers: the unit that owns domains, keys and messages.

use chrono::{DateTime, Utc};
use sqlx::{FromRow, PgPool};
use uuid::Uuid;

use crate::domain::{Role, ServerMode};

/// A mail server.
#[derive(Debug, Clone, FromRow)]
pub struct ServerRow {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub name: String,
    pub mode: ServerMode,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The calling user's role in the server's organization.
    pub role: Role,
}

macro_rules! select {
    () => {
        "SELECT s.id, s.organization_id, s.name, s.mode, s.created_at, s.updated_at, m.role
    FROM servers s JOIN memberships m ON m.organization_id = s.organization_id AND m.user_id = $1"
    };
}

pub async fn create(
    pool: &PgPool,
    user: Uuid,
    org: Uuid,
    name: &str,
    mode: ServerMode,
) -> sqlx::Result<ServerRow> {
    let id = Uuid::now_v7();
    sqlx::query("INSERT INTO servers (id, organization_id, name, mode) VALUES ($1, $2, $3, $4)")
        .bind(id)
        .bind(org)
        .bind(name)
        .bind(mode)
        .execute(pool)
        .await?;
    get_for_user(pool, user, id)
        .await?
        .ok_or(sqlx::Error::RowNotFound)
}

pub async fn list(pool: &PgPool, user: Uuid, org: Uuid) -> sqlx::Result<Vec<ServerRow>> {
    sqlx::query_as(concat!(
        select!(),
        " WHERE s.organization_id = $2 ORDER BY s.created_at, s.id"
    ))
    .bind(user)
    .bind(org)
    .fetch_all(pool)
    .await
}

/// The server if `user` belongs to its organization.
pub async fn get_for_user(pool: &PgPool, user: Uuid, id: Uuid) -> sqlx::Result<Option<ServerRow>> {
    sqlx::query_as(concat!(select!(), " WHERE s.id = $2"))
        .bind(user)
        .bind(id)
        .fetch_optional(pool)
        .await
}

pub async fn update(pool: &PgPool, id: Uuid, name: &str, mode: ServerMode) -> sqlx::Result<()> {
    sqlx::query("UPDATE servers SET name = $2, mode = $3, updated_at = now() WHERE id = $1")
        .bind(id)
        .bind(name)
        .bind(mode)
        .execute(pool)
        .await
        .map(|_| ())
}

pub async fn delete(pool: &PgPool, id: Uuid) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM servers WHERE id = $1")
        .bind(id)
        .execute(pool)
        .await
        .map(|_| ())
}
