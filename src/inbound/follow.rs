//! What the SMTP server holds in memory (the IP rules, the route lookups)
//! follows the database: triggers notify a channel when what it was made
//! of changes. One listening connection serves both. Everything is loaded
//! again (or forgotten) once the channels are listened to (so no change
//! falls between a load and the listen), when the connection comes back
//! after a loss (what was notified meanwhile is lost), and every `REFRESH`
//! in any case; a notification reloads what it names.

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgListener;

use super::ip_rules::IpRules;
use super::routes::RouteCache;
use crate::db;

/// A reload even without a notification, should one be missed.
const REFRESH: Duration = Duration::from_secs(60);
/// The wait before connecting again after the notification connection failed.
const RECONNECT: Duration = Duration::from_secs(1);

/// Keeps `ip_rules` and `routes` current; runs until dropped (aborted).
pub async fn follow(pool: PgPool, ip_rules: Arc<IpRules>, routes: Arc<RouteCache>) {
    let channels = [db::smtp_rules::CHANNEL, db::routes::CHANNEL];
    loop {
        let mut listener = match listen(&pool, &channels).await {
            Ok(listener) => listener,
            Err(err) => {
                tracing::warn!(error = %err, "listening for changes of IP rules and routes failed");
                tokio::time::sleep(RECONNECT).await;
                continue;
            }
        };
        changed(&pool, &ip_rules, &routes, None).await;
        loop {
            match tokio::time::timeout(REFRESH, listener.try_recv()).await {
                Ok(Ok(Some(note))) => changed(&pool, &ip_rules, &routes, Some(note.channel())).await,
                // `Ok(None)`: the connection was lost and is back.
                Ok(Ok(None)) | Err(_) => changed(&pool, &ip_rules, &routes, None).await,
                Ok(Err(err)) => {
                    tracing::warn!(error = %err, "the notifications of IP rule and route changes stopped");
                    tokio::time::sleep(RECONNECT).await;
                    break;
                }
            }
        }
    }
}

async fn listen(pool: &PgPool, channels: &[&str]) -> sqlx::Result<PgListener> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen_all(channels.iter().copied()).await?;
    Ok(listener)
}

/// Reloads what `channel` names; everything when it is `None`.
async fn changed(pool: &PgPool, ip_rules: &IpRules, routes: &RouteCache, channel: Option<&str>) {
    if channel.is_none_or(|c| c == db::routes::CHANNEL) {
        routes.clear();
    }
    if channel.is_none_or(|c| c == db::smtp_rules::CHANNEL) {
        ip_rules.reload(pool).await;
    }
}
