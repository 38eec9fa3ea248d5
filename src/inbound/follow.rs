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
    let changed = |channel: Option<&str>| {
        let (ip_rules, routes, pool) = (ip_rules.clone(), routes.clone(), pool.clone());
        let all = channel.is_none();
        let reload_rules = all || channel == Some(db::smtp_rules::CHANNEL);
        let clear_routes = all || channel == Some(db::routes::CHANNEL);
        async move {
            if clear_routes {
                routes.clear();
            }
            if reload_rules {
                ip_rules.reload(&pool).await;
            }
        }
    };
    loop {
        let mut listener = match PgListener::connect_with(&pool).await {
            Ok(listener) => listener,
            Err(err) => {
                tracing::warn!(error = %err, "listening for changes of IP rules and routes failed");
                tokio::time::sleep(RECONNECT).await;
                continue;
            }
        };
        let channels = [db::smtp_rules::CHANNEL, db::routes::CHANNEL];
        if let Err(err) = listener.listen_all(channels).await {
            tracing::warn!(error = %err, "listening for changes of IP rules and routes failed");
            tokio::time::sleep(RECONNECT).await;
            continue;
        }
        changed(None).await;
        loop {
            match tokio::time::timeout(REFRESH, listener.try_recv()).await {
                Ok(Ok(Some(notification))) => changed(Some(notification.channel())).await,
                // `Ok(None)`: the connection was lost and is back.
                Ok(Ok(None)) | Err(_) => changed(None).await,
                Ok(Err(err)) => {
                    tracing::warn!(error = %err, "the notifications of IP rule and route changes stopped");
                    tokio::time::sleep(RECONNECT).await;
                    break;
                }
            }
        }
    }
}
