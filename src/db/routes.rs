//! Inbound routes: which addresses of a server's domains take mail, and
//! what happens to it. An `endpoint` route owns a webhook endpoint row
//! (purpose `route`), created and deleted with it.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use crate::domain::Role;

/// Notified (by triggers) when routes, or what a lookup reads of their
/// domains, change.
pub const CHANNEL: &str = "tern_routes";

/// A route as its server's members see it.
#[derive(Debug, Clone)]
pub struct RouteRow {
    pub id: Uuid,
    pub server_id: Uuid,
    pub domain_id: Uuid,
    pub domain: String,
    /// Lower case; `*` for the catch-all.
    pub local_part: String,
    /// `endpoint`, `hold` or `reject`.
    pub action: String,
    pub endpoint_id: Option<Uuid>,
    pub url: Option<String>,
    pub signing: Option<String>,
    pub public_key: Option<Vec<u8>>,
    /// `raw` or `parsed`.
    pub format: String,
    pub reject_code: Option<i16>,
    pub reject_message: Option<String>,
    pub dmarc_reject: String,
    pub spam_threshold: Option<f32>,
    pub spam_action: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub role: Role,
}

/// The endpoint a new `endpoint` route delivers to.
pub struct NewRouteEndpoint<'a> {
    /// Chosen by the caller: the secret is sealed to it.
    pub id: Uuid,
    pub url: &'a str,
    pub signing: &'a str,
    pub sealed_secret: &'a [u8],
    pub public_key: Option<&'a [u8]>,
}

/// A new route.
pub struct NewRoute<'a> {
    pub id: Uuid,
    pub server_id: Uuid,
    pub domain_id: Uuid,
    pub local_part: &'a str,
    pub action: &'a str,
    pub endpoint: Option<NewRouteEndpoint<'a>>,
    pub format: &'a str,
    pub reject_code: Option<i16>,
    pub reject_message: Option<&'a str>,
    pub dmarc_reject: &'a str,
    pub spam_threshold: Option<f32>,
    pub spam_action: &'a str,
}

/// Why a route was not created.
#[derive(Debug, thiserror::Error)]
pub enum CreateRouteError {
    #[error("the domain already has a route for this address")]
    Duplicate,
    #[error("the server has as many routes as it may")]
    TooMany,
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// Routes as `user` sees them; `$1` is the user, `$2`... follow.
macro_rules! select_visible {
    ($tail:literal $(, $arg:expr)* $(,)?) => {
        sqlx::query_as!(
            RouteRow,
            r#"SELECT r.id, r.server_id, r.domain_id, d.name AS domain, r.local_part, r.action,
                      r.endpoint_id, w.url AS "url?", w.signing AS "signing?",
                      w.public_key AS "public_key?", r.format, r.reject_code, r.reject_message,
                      r.dmarc_reject, r.spam_threshold, r.spam_action, r.created_at, r.updated_at,
                      m.role AS "role: Role"
               FROM routes r
               JOIN domains d ON d.id = r.domain_id
               JOIN servers s ON s.id = r.server_id
               JOIN memberships m ON m.organization_id = s.organization_id AND m.user_id = $1
               LEFT JOIN webhook_endpoints w ON w.id = r.endpoint_id
               WHERE "# + $tail
            $(, $arg)*
        )
    };
}

/// Creates a route (and its endpoint) unless the server has `limit`.
#[tracing::instrument(level = "debug", skip(pool, new), fields(server.id = %new.server_id))]
pub async fn create(
    pool: &PgPool,
    user: Uuid,
    new: NewRoute<'_>,
    limit: i64,
) -> Result<RouteRow, CreateRouteError> {
    let mut tx = pool.begin().await?;
    // Creations for one server wait for each other here, so the count holds.
    sqlx::query!(
        "SELECT 1 AS one FROM servers WHERE id = $1 FOR UPDATE",
        new.server_id
    )
    .fetch_optional(&mut *tx)
    .await?;
    let count = sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM routes WHERE server_id = $1"#,
        new.server_id
    )
    .fetch_one(&mut *tx)
    .await?;
    if count >= limit {
        return Err(CreateRouteError::TooMany);
    }
    if let Some(endpoint) = &new.endpoint {
        sqlx::query!(
            "INSERT INTO webhook_endpoints (id, server_id, url, description, secret, signing, public_key,
                                            purpose)
             VALUES ($1, $2, $3, 'inbound route', $4, $5, $6, 'route')",
            endpoint.id,
            new.server_id,
            endpoint.url,
            endpoint.sealed_secret,
            endpoint.signing,
            endpoint.public_key
        )
        .execute(&mut *tx)
        .await?;
    }
    let inserted = sqlx::query!(
        "INSERT INTO routes (id, server_id, domain_id, local_part, action, endpoint_id, format,
                             reject_code, reject_message, dmarc_reject, spam_threshold, spam_action)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
         ON CONFLICT (domain_id, local_part) DO NOTHING",
        new.id,
        new.server_id,
        new.domain_id,
        new.local_part,
        new.action,
        new.endpoint.as_ref().map(|e| e.id),
        new.format,
        new.reject_code,
        new.reject_message,
        new.dmarc_reject,
        new.spam_threshold,
        new.spam_action
    )
    .execute(&mut *tx)
    .await?;
    if inserted.rows_affected() == 0 {
        return Err(CreateRouteError::Duplicate);
    }
    tx.commit().await?;
    get_for_user(pool, user, new.id)
        .await?
        .ok_or(CreateRouteError::Db(sqlx::Error::RowNotFound))
}

#[tracing::instrument(level = "debug", skip(pool))]
pub async fn list(pool: &PgPool, user: Uuid, server: Uuid) -> sqlx::Result<Vec<RouteRow>> {
    select_visible!("r.server_id = $2 ORDER BY d.name, r.local_part", user, server)
        .fetch_all(pool)
        .await
}

#[tracing::instrument(level = "debug", skip(pool))]
pub async fn get_for_user(pool: &PgPool, user: Uuid, id: Uuid) -> sqlx::Result<Option<RouteRow>> {
    select_visible!("r.id = $2", user, id).fetch_optional(pool).await
}

/// Changes to a route's handling; `None` leaves a field as it is.
pub struct RouteChange<'a> {
    pub url: Option<&'a str>,
    pub format: Option<&'a str>,
    pub reject_code: Option<i16>,
    pub reject_message: Option<&'a str>,
    pub dmarc_reject: Option<&'a str>,
    /// `Some(None)` removes the threshold.
    pub spam_threshold: Option<Option<f32>>,
    pub spam_action: Option<&'a str>,
}

/// Changes a route; the action stays what it is.
#[tracing::instrument(level = "debug", skip(pool, change))]
pub async fn update(pool: &PgPool, id: Uuid, change: RouteChange<'_>) -> sqlx::Result<()> {
    let (threshold_set, threshold) = match change.spam_threshold {
        Some(value) => (true, value),
        None => (false, None),
    };
    sqlx::query!(
        "WITH r AS (
            UPDATE routes
            SET format = coalesce($2, format),
                reject_code = CASE WHEN action = 'reject' THEN coalesce($3, reject_code) END,
                reject_message = CASE WHEN action = 'reject' THEN coalesce($4, reject_message) END,
                dmarc_reject = coalesce($5, dmarc_reject),
                spam_threshold = CASE WHEN $6 THEN $7 ELSE spam_threshold END,
                spam_action = coalesce($8, spam_action),
                updated_at = now()
            WHERE id = $1
            RETURNING endpoint_id
         )
         UPDATE webhook_endpoints SET url = $9, updated_at = now()
         WHERE $9::text IS NOT NULL AND id = (SELECT endpoint_id FROM r)",
        id,
        change.format,
        change.reject_code,
        change.reject_message,
        change.dmarc_reject,
        threshold_set,
        threshold,
        change.spam_action,
        change.url
    )
    .execute(pool)
    .await
    .map(|_| ())
}

/// Deletes a route and its endpoint (with what that endpoint had pending).
#[tracing::instrument(level = "debug", skip(pool))]
pub async fn delete(pool: &PgPool, id: Uuid) -> sqlx::Result<()> {
    sqlx::query!(
        "WITH r AS (DELETE FROM routes WHERE id = $1 RETURNING endpoint_id)
         DELETE FROM webhook_endpoints WHERE id = (SELECT endpoint_id FROM r)",
        id
    )
    .execute(pool)
    .await
    .map(|_| ())
}

/// The route an address is delivered by, for the SMTP server.
#[derive(Debug, Clone)]
pub struct RouteMatch {
    pub route_id: Uuid,
    pub server_id: Uuid,
    pub domain_id: Uuid,
    pub action: String,
    pub endpoint_id: Option<Uuid>,
    pub format: String,
    pub reject_code: Option<i16>,
    pub reject_message: Option<String>,
    pub dmarc_reject: String,
    pub spam_threshold: Option<f32>,
    pub spam_action: String,
}

/// What the SMTP server learns of a recipient address.
#[derive(Debug, Clone)]
pub enum Lookup {
    Route(RouteMatch),
    /// A domain that receives mail, but not at this address.
    UnknownUser,
    /// No server receives mail for the domain.
    UnknownDomain,
}

/// The route for `local@domain` (both lower case): an exact match first,
/// then `base` (the local part without its `+tag`), then the catch-all.
/// When several servers have the domain name, one of them owns its mail: a
/// verified domain before an unverified one, then the oldest; so a tenant
/// adding someone else's domain, unverified, receives none of its mail.
#[tracing::instrument(level = "debug", skip(pool))]
pub async fn lookup(pool: &PgPool, domain: &str, local: &str, base: &str) -> sqlx::Result<Lookup> {
    let rows = sqlx::query!(
        r#"WITH owner AS (
              SELECT d.id FROM domains d
              WHERE lower(d.name) = $1 AND EXISTS (SELECT 1 FROM routes r WHERE r.domain_id = d.id)
              ORDER BY (d.verified_at IS NOT NULL) DESC, d.created_at, d.id
              LIMIT 1
           )
           SELECT r.id, r.server_id, r.domain_id, r.action, r.endpoint_id, r.format, r.reject_code,
                  r.reject_message, r.dmarc_reject, r.spam_threshold, r.spam_action,
                  r.local_part IN ($2, $3, '*') AS "matches!"
           FROM owner JOIN routes r ON r.domain_id = owner.id
           ORDER BY r.local_part IN ($2, $3, '*') DESC,
                    CASE r.local_part WHEN $2 THEN 0 WHEN $3 THEN 1 ELSE 2 END, r.created_at
           LIMIT 1"#,
        domain,
        local,
        base
    )
    .fetch_optional(pool)
    .await?;
    Ok(match rows {
        None => Lookup::UnknownDomain,
        Some(row) if !row.matches => Lookup::UnknownUser,
        Some(row) => Lookup::Route(RouteMatch {
            route_id: row.id,
            server_id: row.server_id,
            domain_id: row.domain_id,
            action: row.action,
            endpoint_id: row.endpoint_id,
            format: row.format,
            reject_code: row.reject_code,
            reject_message: row.reject_message,
            dmarc_reject: row.dmarc_reject,
            spam_threshold: row.spam_threshold,
            spam_action: row.spam_action,
        }),
    })
}
