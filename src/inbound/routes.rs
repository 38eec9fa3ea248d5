//! Route lookups, held in memory: a recipient is decided without a query
//! once its address was looked up. Every entry is forgotten when routes,
//! or what a lookup reads of their domains, change (triggers notify
//! `db::routes::CHANNEL`; `follow` listens), so a change applies to new
//! recipients a moment after its commit. Unknown addresses are kept too;
//! a flood of made-up ones only empties the cache when it is full.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use sqlx::PgPool;

use crate::db;
use crate::db::routes::Lookup;

/// Addresses held at most; a full cache starts again empty.
const MAX_ENTRIES: usize = 10_000;

/// Lower-case domain, local part and base (the local part without its tag).
type Key = (String, String, String);

#[derive(Default)]
pub struct RouteCache {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Counts the clears: a lookup that a change overtook is not kept.
    generation: u64,
    entries: HashMap<Key, Lookup>,
}

impl RouteCache {
    /// `db::routes::lookup`, answered from memory when it can be.
    pub async fn lookup(&self, pool: &PgPool, domain: &str, local: &str, base: &str) -> sqlx::Result<Lookup> {
        let key = (domain.to_string(), local.to_string(), base.to_string());
        let generation = {
            let inner = self.lock();
            if let Some(found) = inner.entries.get(&key) {
                return Ok(found.clone());
            }
            inner.generation
        };
        let found = db::routes::lookup(pool, domain, local, base).await?;
        let mut inner = self.lock();
        if inner.generation == generation {
            if inner.entries.len() >= MAX_ENTRIES {
                inner.entries.clear();
            }
            inner.entries.insert(key, found.clone());
        }
        Ok(found)
    }

    /// Forgets every lookup, and any that is under way.
    pub fn clear(&self) {
        let mut inner = self.lock();
        inner.generation += 1;
        inner.entries.clear();
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}
