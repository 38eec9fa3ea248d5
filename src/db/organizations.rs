//! Organizations and their members.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use crate::domain::Role;

/// An organization, with the caller's role in it.
#[derive(Debug, Clone)]
pub struct OrganizationRow {
    pub id: Uuid,
    pub name: String,
    /// The calling user's role.
    pub role: Role,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A user's membership of an organization.
#[derive(Debug, Clone)]
pub struct MemberRow {
    pub user_id: Uuid,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub created_at: DateTime<Utc>,
}

/// Organizations as `user` sees them; `$1` is the user, `$2`... follow.
macro_rules! select_visible {
    ($tail:literal $(, $arg:expr)* $(,)?) => {
        sqlx::query_as!(
            OrganizationRow,
            r#"SELECT o.id, o.name, m.role AS "role: Role", o.created_at, o.updated_at
               FROM organizations o JOIN memberships m ON m.organization_id = o.id AND m.user_id = $1 "#
                + $tail
            $(, $arg)*
        )
    };
}

/// Members with their user's email and name.
macro_rules! select_members {
    ($tail:literal $(, $arg:expr)* $(,)?) => {
        sqlx::query_as!(
            MemberRow,
            r#"SELECT u.id AS user_id, u.email, u.name, m.role AS "role: Role", m.created_at
               FROM memberships m JOIN users u ON u.id = m.user_id "#
                + $tail
            $(, $arg)*
        )
    };
}

/// Creates an organization with `owner` as its first owner, atomically.
#[tracing::instrument(level = "debug", skip(pool))]
pub async fn create(pool: &PgPool, owner: Uuid, name: &str) -> sqlx::Result<OrganizationRow> {
    let mut tx = pool.begin().await?;
    let id = Uuid::now_v7();
    sqlx::query!("INSERT INTO organizations (id, name) VALUES ($1, $2)", id, name)
        .execute(&mut *tx)
        .await?;
    sqlx::query!(
        "INSERT INTO memberships (organization_id, user_id, role) VALUES ($1, $2, 'owner')",
        id,
        owner
    )
    .execute(&mut *tx)
    .await?;
    let org = select_visible!("WHERE o.id = $2", owner, id)
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(org)
}

#[tracing::instrument(level = "debug", skip(pool))]
pub async fn list_for_user(pool: &PgPool, user: Uuid) -> sqlx::Result<Vec<OrganizationRow>> {
    select_visible!("ORDER BY o.created_at, o.id", user)
        .fetch_all(pool)
        .await
}

/// The organization if `user` is a member of it.
#[tracing::instrument(level = "debug", skip(pool))]
pub async fn get_for_user(pool: &PgPool, user: Uuid, id: Uuid) -> sqlx::Result<Option<OrganizationRow>> {
    select_visible!("WHERE o.id = $2", user, id)
        .fetch_optional(pool)
        .await
}

#[tracing::instrument(level = "debug", skip(pool))]
pub async fn rename(pool: &PgPool, id: Uuid, name: &str) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE organizations SET name = $2, updated_at = now() WHERE id = $1",
        id,
        name
    )
    .execute(pool)
    .await
    .map(|_| ())
}

#[tracing::instrument(level = "debug", skip(pool))]
pub async fn delete(pool: &PgPool, id: Uuid) -> sqlx::Result<()> {
    sqlx::query!("DELETE FROM organizations WHERE id = $1", id)
        .execute(pool)
        .await
        .map(|_| ())
}

#[tracing::instrument(level = "debug", skip(pool))]
pub async fn members(pool: &PgPool, org: Uuid) -> sqlx::Result<Vec<MemberRow>> {
    select_members!("WHERE m.organization_id = $1 ORDER BY m.created_at, u.id", org)
        .fetch_all(pool)
        .await
}

/// Adds `user`, or changes the role of an existing member.
#[tracing::instrument(level = "debug", skip(pool))]
pub async fn upsert_member(pool: &PgPool, org: Uuid, user: Uuid, role: Role) -> sqlx::Result<MemberRow> {
    sqlx::query!(
        "INSERT INTO memberships (organization_id, user_id, role) VALUES ($1, $2, $3)
         ON CONFLICT (organization_id, user_id) DO UPDATE SET role = EXCLUDED.role",
        org,
        user,
        role as Role
    )
    .execute(pool)
    .await?;
    select_members!("WHERE m.organization_id = $1 AND m.user_id = $2", org, user)
        .fetch_one(pool)
        .await
}

/// Removes a member unless that would leave the organization without an
/// owner; returns false when nothing was removed for that reason.
#[tracing::instrument(level = "debug", skip(pool))]
pub async fn remove_member(pool: &PgPool, org: Uuid, user: Uuid) -> sqlx::Result<bool> {
    let removed = sqlx::query!(
        "DELETE FROM memberships WHERE organization_id = $1 AND user_id = $2
         AND (role <> 'owner' OR (SELECT count(*) FROM memberships
              WHERE organization_id = $1 AND role = 'owner') > 1)",
        org,
        user
    )
    .execute(pool)
    .await?;
    Ok(removed.rows_affected() == 1)
}
