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
use crate::domain::Redacted;
use crate::mail::dkim::SignerCache;
use crate::mail::verp::Verp;
use crate::sealing::SealingKey;
use crate::tracking::token::Tokens;
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
    /// Seals and opens DKIM private keys; only processes that sign or
    /// create domains (the API, `tern demo`) hold it.
    pub sealing: Option<SealingKey>,
    pub login_throttle: LoginThrottle,
    pub send_limits: SendLimits,
    /// Signs and checks return-path and unsubscribe tokens.
    pub verp: Verp,
    /// Signs and checks open and click tokens.
    pub tracking: Tokens,
}

impl Deref for AppState {
    type Target = AppInner;
    fn deref(&self) -> &AppInner {
        &self.0
    }
}

impl AppState {
    /// The state of a process that serves the API (or makes domains): with
    /// the secrets key, after sealing DKIM keys stored in clear.
    pub async fn new(db: PgPool, settings: Settings) -> anyhow::Result<AppState> {
        let sealing = load_sealing(&db, &settings).await?;
        seal_stored_keys(&db, &sealing).await?;
        AppState::build(db, settings, Some(sealing)).await
    }

    /// The state of a process that neither signs nor makes domains (a
    /// delivery worker's probes, `tern admin token`): no secrets key, so it
    /// never creates a key file of its own.
    pub async fn without_sealing(db: PgPool, settings: Settings) -> anyhow::Result<AppState> {
        AppState::build(db, settings, None).await
    }

    /// The secrets key, which only API processes hold.
    pub fn sealing(&self) -> anyhow::Result<&SealingKey> {
        self.sealing
            .as_ref()
            .context("this process holds no secrets key (it is not an API process)")
    }

    async fn build(db: PgPool, settings: Settings, sealing: Option<SealingKey>) -> anyhow::Result<AppState> {
        let secret = match &settings.auth.jwt_secret {
            Some(secret) => secret.expose().as_bytes().to_vec(),
            None => db::secrets::get_or_create(&db, "session_jwt", 32)
                .await
                .context("loading the session secret")?,
        };
        let sessions = SessionKeys::new(&secret, settings.auth.session_ttl_secs);
        observability::metrics::handle();
        let resolver = dns::resolver::build(&settings.dns).context("building the DNS resolver")?;
        let verp_key = db::secrets::get_or_create(&db, "verp_hmac", 32)
            .await
            .context("loading the VERP key")?;
        let tracking_key = db::secrets::get_or_create(&db, "tracking_hmac", 32)
            .await
            .context("loading the tracking key")?;
        Ok(AppState(Arc::new(AppInner {
            verp: Verp::new(&verp_key),
            tracking: Tokens::new(&tracking_key),
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

/// The configured secrets key. A new key file is made only while no key
/// in the database is sealed yet: otherwise the process was not given the
/// installation's key, and one of its own would lock every domain out.
async fn load_sealing(db: &PgPool, settings: &Settings) -> anyhow::Result<SealingKey> {
    let secrets = &settings.secrets;
    if secrets.key.is_none() && !secrets.key_file.exists() {
        let sealed = db::domains::any_key_sealed(db, crate::sealing::MAGIC)
            .await
            .context("reading stored DKIM keys")?;
        anyhow::ensure!(
            !sealed,
            "DKIM keys in the database are sealed, but neither secrets.key is set nor secrets.key_file {} \
             exists: give this process the installation's secrets key",
            secrets.key_file.display()
        );
    }
    SealingKey::load(secrets)
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
        let stored = Redacted::new(stored);
        match sealing.open(stored.expose(), id.as_bytes()) {
            Err(crate::sealing::OpenError::NotSealed) => {}
            Ok(_) => continue,
            Err(err) => anyhow::bail!(
                "the DKIM key of domain {id} cannot be opened with this secrets key (id {}): {err}",
                sealing.id()
            ),
        }
        let fresh = sealing.seal(stored.expose(), id.as_bytes());
        db::domains::replace_key(db, id, stored.expose(), &fresh)
            .await
            .context("sealing a stored DKIM key")?;
        sealed += 1;
    }
    if sealed > 0 {
        tracing::info!(sealed, key = %sealing.id(), "sealed DKIM keys stored in clear");
    }
    Ok(())
}
