//! The IP rules, held in memory: a connection is judged without a query.
//! They are loaded at start and again whenever the table changes (its
//! trigger notifies `db::smtp_rules::CHANNEL`; `follow` listens). A
//! change applies to new connections a moment after its commit.

use std::net::IpAddr;
use std::sync::{Arc, RwLock};

use ipnet::IpNet;
use sqlx::PgPool;

use crate::db;

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

    /// Loads the rules again; on failure the last ones stay.
    pub async fn reload(&self, pool: &PgPool) {
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
