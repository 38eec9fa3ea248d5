//! SQL, one file per table group. Functions take a pool or a transaction;
//! access checks join `memberships` so that a row of another organization is
//! simply not found.

pub mod api_keys;
pub mod domains;
pub mod idempotency;
pub mod inbound;
pub mod messages;
pub mod organizations;
pub mod queue;
pub mod reports;
pub mod routes;
pub mod secrets;
pub mod servers;
pub mod smtp_rules;
pub mod suppressions;
pub mod tracking;
pub mod users;
pub mod webhooks;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, PgPool};
use std::str::FromStr;
use std::time::Duration;

/// The migrations embedded in the binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Opens a pool; statement logging is left to spans, not sqlx.
pub async fn connect(url: &str, max_connections: u32) -> anyhow::Result<PgPool> {
    let options = PgConnectOptions::from_str(url)?
        // Tern's statements have a fixed shape: planning each execution anew
        // (a custom plan, rewriting column defaults and all) cost more CPU
        // than executing it on the send path.
        .options([("plan_cache_mode", "force_generic_plan")])
        .log_statements(tracing::log::LevelFilter::Trace)
        .log_slow_statements(tracing::log::LevelFilter::Warn, Duration::from_millis(500));
    let pool = PgPoolOptions::new()
        .max_connections(max_connections)
        // No ping before each use: it doubled the round trips (and the
        // wake-ups of both processes) of every statement. A connection
        // that broke while idle fails its next statement instead, which
        // every caller already answers as a temporary error, and the pool
        // drops it.
        .test_before_acquire(false)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(options)
        .await?;
    Ok(pool)
}

/// Versions of the migrations applied successfully, for readiness.
#[tracing::instrument(level = "debug", skip(pool))]
pub async fn applied_migrations(pool: &PgPool) -> sqlx::Result<Vec<i64>> {
    sqlx::query_scalar!("SELECT version FROM _sqlx_migrations WHERE success")
        .fetch_all(pool)
        .await
}
