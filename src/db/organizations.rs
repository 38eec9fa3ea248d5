//! Organizations and their members.

use chrono::{DateTime, Utc};
use sqlx::{FromRow, PgPool};
use uuid::Uuid;

use crate::domain::Role;

/// An organization, with the caller's role in it.
#[derive(Debug, Clone, FromRow)]
pub struct OrganizationRow {
    pub id: Uuid,
    pub name: String,
    /// The calling user's role.
    pub role: Role,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A user's membership of an organization.
#[derive(Debug, Clone, FromRow)]
pub struct MemberRow {
    pub user_id: Uuid,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub created_at: DateTime<Utc>,
}

macro_rules! select {
    () => {
        "SELECT o.id, o.name, m.role, o.created_at, o.updated_at
    FROM organizations o JOIN memberships m ON m.organization_id = o.id AND m.user_id = $1"
    };
}

/// Creates an organization with `owner` as its first owner, atomically.
pub async fn create(pool: &PgPool, owner: Uuid, name: &str) -> sqlx::Result<OrganizationRow> {
    let mut tx = pool.begin().await?;
    let id = Uuid::now_v7();
    sqlx::query("INSERT INTO organizations (id, name) VALUES ($1, $2)")
        .bind(id)
        .bind(name)
        .execute(&mut *tx)
        .await?;
    sqlx::query("INSERT INTO memberships (organization_id, user_id, role) VALUES ($1, $2, 'owner')")
        .bind(id)
        .bind(owner)
        .execute(&mut *tx)
        .await?;
    let org = sqlx::query_as(concat!(select!(), " WHERE o.id = $2"))
        .bind(owner)
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(org)
}

pub async fn list_for_user(pool: &PgPool, user: Uuid) -> sqlx::Result<Vec<OrganizationRow>> {
    sqlx::query_as(concat!(select!(), " ORDER BY o.created_at, o.id"))
        .bind(user)
        .fetch_all(pool)
        .await
}

/// The organization if `user` is a member of it.
pub async fn get_for_user(pool: &PgPool, user: Uuid, id: Uuid) -> sqlx::Result<Option<OrganizationRow>> {
    sqlx::query_as(concat!(select!(), " WHERE o.id = $2"))
        .bind(user)
        .bind(id)
        .fetch_optional(pool)
        .await
}

pub async fn rename(pool: &PgPool, id: Uuid, name: &str) -> sqlx::Result<()> {
    sqlx::query("UPDATE organizations SET name = $2, updated_at = now() WHERE id = $1")
        .bind(id)
        .bind(name)
        .execute(pool)
        .await
        .map(|_| ())
}

pub async fn delete(pool: &PgPool, id: Uuid) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM organizations WHERE id = $1")
        .bind(id)
        .execute(pool)
        .await
        .map(|_| ())
}

pub async fn members(pool: &PgPool, org: Uuid) -> sqlx::Result<Vec<MemberRow>> {
    sqlx::query_as(
        "SELECT u.id AS user_id, u.email, u.name, m.role, m.created_at
         FROM memberships m JOIN users u ON u.id = m.user_id
         WHERE m.organization_id = $1 ORDER BY m.created_at, u.id",
    )
    .bind(org)
    .fetch_all(pool)
    .await
}

/// Adds `user`, or changes the role of an existing member.
pub async fn upsert_member(pool: &PgPool, org: Uuid, user: Uuid, role: Role) -> sqlx::Result<MemberRow> {
    sqlx::query(
        "INSERT INTO memberships (organization_id, user_id, role) VALUES ($1, $2, $3)
         ON CONFLICT (organization_id, user_id) DO UPDATE SET role = EXCLUDED.role",
    )
    .bind(org)
    .bind(user)
    .bind(role)
    .execute(pool)
    .await?;
    sqlx::query_as(
        "SELECT u.id AS user_id, u.email, u.name, m.role, m.created_at
         FROM memberships m JOIN users u ON u.id = m.user_id
         WHERE m.organization_id = $1 AND m.user_id = $2",
    )
    .bind(org)
    .bind(user)
    .fetch_one(pool)
    .await
}

/// Removes a member unless that would leave the organization without an
/// owner; returns false when nothing was removed for that reason.
pub async fn remove_member(pool: &PgPool, org: Uuid, user: Uuid) -> sqlx::Result<bool> {
    let removed = sqlx::query(
        "DELETE FROM memberships WHERE organization_id = $1 AND user_id = $2
         AND (role <> 'owner' OR (SELECT count(*) FROM memberships
              WHERE organization_id = $1 AND role = 'owner') > 1)",
    )
    .bind(org)
    .bind(user)
    .execute(pool)
    .await?;
    Ok(removed.rows_affected() == 1)
}
