//! The IP rules, held in memory: a connection is judged without a query.
//! They are loaded at start and again whenever the table changes (its
//! trigger notifies `db::smtp_rules::CHANNEL`), when the notification
//! connection comes back after a loss, and every `REFRESH` in any case.
//! A change applies to new connections a moment after its commit.

use std::net::IpAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use ipnet::IpNet;
use sqlx::PgPool;
use sqlx::postgres::PgListener;

use crate::db;

/// A reload even without a notification, should one be missed.
const REFRESH: Duration = Duration::from_secs(60);
/// The wait before connecting again after the notification connection failed.
const RECONNECT: Duration = Duration::from_secs(1);

/// What the rules say of a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    /// A block rule covers it and no allow rule does.
    pub blocked: bool,
    /// An allow rule covers it (no DNSBL lookups either).
    pub allowed: bool,
}

#[derive(Debug, Default)]
struct Rules {
    block: Vec<IpNet>,
    allow: Vec<IpNet>,
}

/// The rules as last loaded.
pub struct IpRules {
    current: RwLock<Arc<Rules>>,
}

impl IpRules {
    /// Loads the rules.
    pub async fn load(pool: &PgPool) -> sqlx::Result<IpRules> {
        Ok(IpRules {
            current: RwLock::new(Arc::new(read(pool).await?)),
        })
    }

    pub fn verdict(&self, ip: IpAddr) -> Verdict {
        let rules = self.current.read().unwrap_or_else(|e| e.into_inner()).clone();
        let covers = |nets: &[IpNet]| nets.iter().any(|net| net.contains(&ip));
        let allowed = covers(&rules.allow);
        Verdict {
            blocked: !allowed && covers(&rules.block),
            allowed,
        }
    }

    /// Keeps the rules current; runs until dropped (aborted).
    pub async fn follow(self: Arc<Self>, pool: PgPool) {
        loop {
            let mut listener = match PgListener::connect_with(&pool).await {
                Ok(listener) => listener,
                Err(err) => {
                    tracing::warn!(error = %err, "listening for IP rule changes failed");
                    tokio::time::sleep(RECONNECT).await;
                    continue;
                }
            };
            if let Err(err) = listener.listen(db::smtp_rules::CHANNEL).await {
                tracing::warn!(error = %err, "listening for IP rule changes failed");
                tokio::time::sleep(RECONNECT).await;
                continue;
            }
            // Listening first: no change can fall between load and listen.
            self.reload(&pool).await;
            loop {
                // `None`: the connection was lost and is back; what was
                // notified meanwhile is lost, so load anyway.
                match tokio::time::timeout(REFRESH, listener.try_recv()).await {
                    Ok(Ok(_)) | Err(_) => self.reload(&pool).await,
                    Ok(Err(err)) => {
                        tracing::warn!(error = %err, "the IP rule notifications stopped");
                        tokio::time::sleep(RECONNECT).await;
                        break;
                    }
                }
            }
        }
    }

    /// Loads the rules again; on failure the last ones stay.
    async fn reload(&self, pool: &PgPool) {
        match read(pool).await {
            Ok(rules) => *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(rules),
            Err(err) => {
                tracing::warn!(error = %err, "reloading the SMTP IP rules failed; the last ones stay")
            }
        }
    }
}

async fn read(pool: &PgPool) -> sqlx::Result<Rules> {
    let mut rules = Rules::default();
    for row in db::smtp_rules::list(pool).await? {
        // PostgreSQL's `cidr` text is canonical; anything else is skipped.
        let Ok(net) = row.network.parse::<IpNet>() else {
            tracing::warn!(network = %row.network, "an IP rule's network cannot be read");
            continue;
        };
        match row.action.as_str() {
            "block" => rules.block.push(net),
            _ => rules.allow.push(net),
        }
    }
    Ok(rules)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(block: &[&str], allow: &[&str]) -> IpRules {
        let parse = |nets: &[&str]| nets.iter().map(|n| n.parse().unwrap()).collect();
        IpRules {
            current: RwLock::new(Arc::new(Rules {
                block: parse(block),
                allow: parse(allow),
            })),
        }
    }

    #[test]
    fn allow_rules_win_over_block_rules() {
        let rules = rules(&["10.0.0.0/8", "2001:db8::/32"], &["10.1.0.0/16"]);
        let verdict = |ip: &str| rules.verdict(ip.parse().unwrap());
        assert_eq!(
            verdict("10.2.3.4"),
            Verdict {
                blocked: true,
                allowed: false
            }
        );
        assert_eq!(
            verdict("10.1.3.4"),
            Verdict {
                blocked: false,
                allowed: true
            }
        );
        assert_eq!(
            verdict("2001:db8::1"),
            Verdict {
                blocked: true,
                allowed: false
            }
        );
        assert_eq!(
            verdict("192.0.2.1"),
            Verdict {
                blocked: false,
                allowed: false
            }
        );
    }
}
