//! First-run helpers: admin users and the demo tenant the run script sets up.

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sqlx::PgPool;
use uuid::Uuid;

use crate::auth::{api_key, password};
use crate::config::Settings;
use crate::db;
use crate::db::domains::NewDomain;
use crate::db::users::UserRow;
use crate::domain::DkimAlgorithm;
use crate::domain::EmailAddress;
use crate::domain::ServerMode;
use crate::mail::keys;
use crate::sealing::SealingKey;

fn random_password() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 15]>())
}

async fn hash(password: String) -> anyhow::Result<String> {
    tokio::task::spawn_blocking(move || password::hash(&password)).await?
}

/// Creates an admin user; returns the generated password if none was given.
pub async fn create_admin(
    pool: &PgPool,
    email: &str,
    name: &str,
    given: Option<String>,
) -> anyhow::Result<(UserRow, Option<String>)> {
    EmailAddress::parse(email).map_err(|e| anyhow::anyhow!("--email {e}"))?;
    let generated = given.is_none().then(random_password);
    let plain = given.or_else(|| generated.clone()).unwrap_or_default();
    if plain.len() < 8 {
        anyhow::bail!("the password must be at least 8 characters");
    }
    let user = db::users::create(pool, email, name, &hash(plain).await?)
        .await
        .context("creating the user (does the email exist already?)")?;
    Ok((user, generated))
}

/// The demo tenant, with fresh credentials.
pub struct Demo {
    pub email: String,
    pub password: String,
    pub organization_id: Uuid,
    pub server_id: Uuid,
    pub domain: String,
    pub api_key: String,
}

const DEMO_EMAIL: &str = "demo@tern.localhost";
const DEMO_DOMAIN: &str = "example.com";

/// Creates what is missing of the demo tenant. Passwords and API keys are
/// stored only as hashes, so each run sets a new demo password and replaces
/// the demo API key, and prints both.
pub async fn demo(pool: &PgPool, sealing: &SealingKey) -> anyhow::Result<Demo> {
    let password = random_password();
    let user = match db::users::find_by_email(pool, DEMO_EMAIL).await? {
        Some(user) => {
            db::users::set_password(pool, user.id, &hash(password.clone()).await?).await?;
            user
        }
        None => {
            let user = create_admin(pool, DEMO_EMAIL, "Demo admin", Some(password.clone()))
                .await?
                .0;
            // The demo's admin is the installation's first operator.
            db::users::set_instance_admin(pool, user.id, true).await?;
            user
        }
    };
    let org = match db::organizations::list_for_user(pool, user.id)
        .await?
        .into_iter()
        .find(|o| o.name == "Demo")
    {
        Some(org) => org,
        None => db::organizations::create(pool, user.id, "Demo").await?,
    };
    let server = match db::servers::list(pool, user.id, org.id).await?.into_iter().next() {
        Some(server) => server,
        None => {
            db::servers::create(
                pool,
                user.id,
                org.id,
                "Demo server",
                ServerMode::Development,
                false,
            )
            .await?
        }
    };
    if !db::domains::list(pool, user.id, server.id)
        .await?
        .iter()
        .any(|d| d.name == DEMO_DOMAIN)
    {
        let key = tokio::task::spawn_blocking(|| keys::generate(DkimAlgorithm::Rsa)).await??;
        let id = Uuid::now_v7();
        let sealed = sealing.seal(&key.private_pkcs8, id.as_bytes());
        db::domains::create(
            pool,
            user.id,
            NewDomain {
                id,
                server_id: server.id,
                name: DEMO_DOMAIN,
                algorithm: DkimAlgorithm::Rsa,
                selector: "tern-demo",
                sealed_private_key: &sealed,
                public_key: &key.public_b64,
                return_path_host: &format!("rp.{DEMO_DOMAIN}"),
            },
        )
        .await?;
    }
    // A catch-all route that holds what it receives: a first message to
    // the SMTP server (scripts/run listens on 127.0.0.1:2525) is stored.
    if db::routes::list(pool, user.id, server.id).await?.is_empty()
        && let Some(domain) = db::domains::list(pool, user.id, server.id)
            .await?
            .into_iter()
            .find(|d| d.name == DEMO_DOMAIN)
    {
        let route = db::routes::NewRoute {
            id: Uuid::now_v7(),
            server_id: server.id,
            domain_id: domain.id,
            local_part: "*",
            action: "hold",
            endpoint: None,
            format: "parsed",
            reject_code: None,
            reject_message: None,
            dmarc_reject: "reject",
            spam_threshold: None,
            spam_action: "flag",
        };
        if let Err(err) = db::routes::create(pool, user.id, route, i64::MAX).await {
            anyhow::bail!("creating the demo route: {err}");
        }
    }
    for old in db::api_keys::list(pool, user.id, server.id).await? {
        if old.name == "demo" && old.revoked_at.is_none() {
            db::api_keys::revoke(pool, old.id).await?;
        }
    }
    let new = api_key::generate();
    db::api_keys::create(pool, user.id, server.id, "demo", &new.prefix, &new.hash).await?;
    Ok(Demo {
        email: user.email,
        password,
        organization_id: org.id,
        server_id: server.id,
        domain: DEMO_DOMAIN.into(),
        api_key: new.secret,
    })
}

impl Demo {
    /// What the run script prints: credentials and a first send.
    pub fn instructions(&self, settings: &Settings) -> String {
        let base = format!("http://{}", settings.http.listen);
        format!(
            r#"
==================== Tern demo ====================
Dashboard:      {base}/ (log in with the admin below)
API and docs:   {base}/docs
Admin login:    {email} / {password}
Organization:   {org}
Server:         {server} (development mode: mail is held, never delivered)
Sending domain: {domain}
API key:        {key}

Send a message:

  curl -s {base}/v1/messages \
    -H 'Authorization: Bearer {key}' \
    -H 'Content-Type: application/json' \
    -d '{{"from": "Tern Demo <hello@{domain}>", "to": "someone@example.org",
         "subject": "Hello from Tern", "text": "It works."}}'

Then look at it (use the "id" from the answer):

  curl -s {base}/v1/messages/<id> -H 'Authorization: Bearer {key}'
  curl -s {base}/v1/messages/<id>/source -H 'Authorization: Bearer {key}'

Receive one (every address of {domain} is routed to "hold"), when the SMTP
server listens (smtp.listen; scripts/run uses 127.0.0.1:2525):

  swaks --server 127.0.0.1:2525 --to inbox@{domain} --from you@example.org
  curl -s '{base}/v1/messages?direction=incoming' -H 'Authorization: Bearer {key}'
====================================================
"#,
            email = self.email,
            password = self.password,
            org = self.organization_id,
            server = self.server_id,
            domain = self.domain,
            key = self.api_key,
        )
    }
}
