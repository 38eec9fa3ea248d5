//! Admin users.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

/// An admin user, as the API shows it (never the password hash).
#[derive(Debug, Clone)]
pub struct UserRow {
    pub id: Uuid,
    pub email: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

/// A user with the hash, for logging in.
#[derive(Debug)]
pub struct Credentials {
    pub id: Uuid,
    pub password_hash: String,
}

#[tracing::instrument(level = "debug", skip(pool, password_hash))]
pub async fn create(pool: &PgPool, email: &str, name: &str, password_hash: &str) -> sqlx::Result<UserRow> {
    sqlx::query_as!(
        UserRow,
        "INSERT INTO users (id, email, name, password_hash) VALUES ($1, $2, $3, $4)
         RETURNING id, email, name, created_at",
        Uuid::now_v7(),
        email,
        name,
        password_hash
    )
    .fetch_one(pool)
    .await
}

#[tracing::instrument(level = "debug", skip(pool, password_hash))]
pub async fn set_password(pool: &PgPool, id: Uuid, password_hash: &str) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE users SET password_hash = $2 WHERE id = $1",
        id,
        password_hash
    )
    .execute(pool)
    .await
    .map(|_| ())
}

#[tracing::instrument(level = "debug", skip(pool))]
pub async fn credentials(pool: &PgPool, email: &str) -> sqlx::Result<Option<Credentials>> {
    sqlx::query_as!(
        Credentials,
        "SELECT id, password_hash FROM users WHERE lower(email) = lower($1)",
        email
    )
    .fetch_optional(pool)
    .await
}

#[tracing::instrument(level = "debug", skip(pool))]
pub async fn get(pool: &PgPool, id: Uuid) -> sqlx::Result<Option<UserRow>> {
    sqlx::query_as!(
        UserRow,
        "SELECT id, email, name, created_at FROM users WHERE id = $1",
        id
    )
    .fetch_optional(pool)
    .await
}

#[tracing::instrument(level = "debug", skip(pool))]
pub async fn find_by_email(pool: &PgPool, email: &str) -> sqlx::Result<Option<UserRow>> {
    sqlx::query_as!(
        UserRow,
        "SELECT id, email, name, created_at FROM users WHERE lower(email) = lower($1)",
        email
    )
    .fetch_optional(pool)
    .await
}

#[tracing::instrument(level = "debug", skip(pool))]
pub async fn exists(pool: &PgPool, id: Uuid) -> sqlx::Result<bool> {
    sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM users WHERE id = $1) AS "exists!""#,
        id
    )
    .fetch_one(pool)
    .await
}

/// Makes a user an instance administrator (or not).
#[tracing::instrument(level = "debug", skip(pool))]
pub async fn set_instance_admin(pool: &PgPool, id: Uuid, admin: bool) -> sqlx::Result<()> {
    sqlx::query!("UPDATE users SET instance_admin = $2 WHERE id = $1", id, admin)
        .execute(pool)
        .await
        .map(|_| ())
}

/// Whether a user administers the whole installation (instance-wide
/// settings such as the SMTP server's IP rules).
#[tracing::instrument(level = "debug", skip(pool))]
pub async fn is_instance_admin(pool: &PgPool, id: Uuid) -> sqlx::Result<bool> {
    sqlx::query_scalar!(
        r#"SELECT coalesce((SELECT instance_admin FROM users WHERE id = $1), false) AS "admin!""#,
        id
    )
    .fetch_one(pool)
    .await
}
