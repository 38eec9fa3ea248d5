//! The shared, read-only state of a Tern process: the pool, settings, keys
//! and caches every part (HTTP API, delivery, the coming SMTP server) uses.
//! Imports no HTTP code.

use std::ops::Deref;
use std::sync::Arc;

use anyhow::Context;
use hickory_resolver::TokioResolver;
use sqlx::PgPool;

use crate::auth::send_limits::SendLimits;
use crate::auth::session::SessionKeys;
use crate::auth::throttle::LoginThrottle;
use crate::config::Settings;
use crate::mail::dkim::SignerCache;
use crate::{db, dns, observability};

/// Shared, read-only state; cheap to clone.
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
    pub send_limits: SendLimits,
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
            Some(secret) => secret.expose().as_bytes().to_vec(),
            None => db::secrets::get_or_create(&db, "session_jwt", 32)
                .await
                .context("loading the session secret")?,
        };
        let sessions = SessionKeys::new(&secret, settings.auth.session_ttl_secs);
        observability::metrics::handle();
        let resolver = dns::resolver::build(&settings.dns).context("building the DNS resolver")?;
        Ok(AppState(Arc::new(AppInner {
            db,
            sessions,
            resolver,
            signers: SignerCache::default(),
            login_throttle: LoginThrottle::default(),
            send_limits: SendLimits::new(&settings.limits),
            settings,
        })))
    }
}
