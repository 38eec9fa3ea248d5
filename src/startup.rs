//! Opens the database and binds the HTTP listeners of a process.

use std::future::Future;

use anyhow::Context;
use sqlx::PgPool;
use tokio::net::TcpListener;

use crate::config::Settings;
use crate::state::AppState;
use crate::{api, db};

/// Connects and applies pending migrations.
pub async fn connect_and_migrate(settings: &Settings) -> anyhow::Result<PgPool> {
    let pool = db::connect(settings.database.url.expose(), settings.database.max_connections)
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
        // Peer addresses reach handlers (tracking flags proxy ranges).
        let service = self
            .router
            .into_make_service_with_connect_info::<std::net::SocketAddr>();
        axum::serve(self.listener, service)
            .with_graceful_shutdown(shutdown)
            .await
            .context("HTTP server failed")
    }
}
