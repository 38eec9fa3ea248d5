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
use crate::sealing::SealingKey;
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
    /// Seals and opens DKIM private keys.
    pub sealing: SealingKey,
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
        let sealing = SealingKey::load(&settings.secrets)?;
        seal_stored_keys(&db, &sealing).await?;
        Ok(AppState(Arc::new(AppInner {
            db,
            sessions,
            resolver,
            signers: SignerCache::default(),
            sealing,
            login_throttle: LoginThrottle::default(),
            send_limits: SendLimits::new(&settings.limits),
            settings,
        })))
    }
}

/// Seals DKIM keys stored in clear (rows from before sealing); refuses to
/// start when a key is sealed under another secrets key, since this process
/// could sign nothing for that domain.
async fn seal_stored_keys(db: &PgPool, sealing: &SealingKey) -> anyhow::Result<()> {
    let rows = db::domains::keys_not_sealed_with(db, &sealing.header())
        .await
        .context("reading stored DKIM keys")?;
    let mut sealed = 0;
    for (id, stored) in rows {
        if let Err(err) = sealing.open(&stored, id.as_bytes())
            && err != crate::sealing::OpenError::NotSealed
        {
            anyhow::bail!(
                "the DKIM key of domain {id} cannot be opened with this secrets key (id {}): {err}",
                sealing.id()
            );
        }
        let fresh = sealing.seal(&stored, id.as_bytes());
        db::domains::replace_key(db, id, &stored, &fresh)
            .await
            .context("sealing a stored DKIM key")?;
        sealed += 1;
    }
    if sealed > 0 {
        tracing::info!(sealed, key = %sealing.id(), "sealed DKIM keys stored in clear");
    }
    Ok(())
}
