//! Builds the application (pool, migrations, state, router) and runs it.

use std::future::Future;
use std::ops::Deref;
use std::sync::Arc;

use anyhow::Context;
use hickory_resolver::TokioResolver;
use sqlx::PgPool;
use tokio::net::TcpListener;

use crate::auth::session::SessionKeys;
use crate::auth::throttle::LoginThrottle;
use crate::config::Settings;
use crate::mail::dkim::SignerCache;
use crate::{api, db, dns};

/// Shared, read-only state of an API process.
#[derive(Clone)]
pub struct AppState(Arc<AppInner>);

/// What [`AppState`] holds.
pub struct AppInner {
    pub db: PgPool,
    pub settings: Settings,
    pub sessions: SessionKeys,
    pub resolver: TokioResolver,
    pub signers: SignerCache,
    pub login_throttle: LoginThrottle,
}

impl Deref for AppState {
    type Target = AppInner;
    fn deref(&self) -> &AppInner {
        &self.0
    }
}

impl AppState {
    /// Builds the state on an open, migrated pool.
    pub async fn new(db: PgPool, settings: Settings) -> anyhow::Result<AppState> {
        let secret = match &settings.auth.jwt_secret {
            Some(secret) => secret.as_bytes().to_vec(),
            None => db::secrets::get_or_create(&db, "session_jwt", 32)
                .await
                .context("loading the session secret")?,
        };
        let sessions = SessionKeys::new(&secret, settings.auth.session_ttl_secs);
        crate::monitoring::handle();
        let resolver = dns::resolver::build(&settings.dns).context("building the DNS resolver")?;
        Ok(AppState(Arc::new(AppInner {
            db,
            sessions,
            resolver,
            signers: SignerCache::default(),
            login_throttle: LoginThrottle::default(),
            settings,
        })))
    }
}

/// Connects and applies pending migrations.
pub async fn connect_and_migrate(settings: &Settings) -> anyhow::Result<PgPool> {
    let pool = db::connect(&settings.database.url, settings.database.max_connections)
        .await
        .with_context(|| "connecting to the database (database.url)".to_string())?;
    db::MIGRATOR.run(&pool).await.context("applying migrations")?;
    Ok(pool)
}

/// A bound, ready-to-run HTTP server.
pub struct Application {
    listener: TcpListener,
    router: axum::Router,
}

impl Application {
    /// Binds the listener from the settings (port 0 picks a free one).
    pub async fn build(state: AppState) -> anyhow::Result<Application> {
        let listener = TcpListener::bind(state.settings.http.listen)
            .await
            .with_context(|| format!("binding http.listen {}", state.settings.http.listen))?;
        Ok(Application {
            listener,
            router: api::router(state),
        })
    }

    /// Binds `http.ops_listen`, if set, for probes and metrics only.
    pub async fn build_ops(state: AppState) -> anyhow::Result<Option<Application>> {
        let Some(addr) = state.settings.http.ops_listen else {
            return Ok(None);
        };
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding http.ops_listen {addr}"))?;
        Ok(Some(Application {
            listener,
            router: api::ops_router(state),
        }))
    }

    pub fn local_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` resolves, then drains open requests.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        axum::serve(self.listener, self.router)
            .with_graceful_shutdown(shutdown)
            .await
            .context("HTTP server failed")
    }
}
