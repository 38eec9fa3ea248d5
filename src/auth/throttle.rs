//! Failed-login throttling: after too many wrong passwords for one email in
//! a window, logins for it answer 429 until the window ends.
//!
//! Counted per process; with several API processes an attacker gets
//! `MAX_FAILURES` tries per process and window, still far too few to guess
//! an Argon2-hashed password.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const MAX_FAILURES: u32 = 10;
const WINDOW: Duration = Duration::from_secs(15 * 60);
const MAX_TRACKED: usize = 100_000;

/// Failure counts by lower-cased email.
#[derive(Default)]
pub struct LoginThrottle {
    failures: Mutex<HashMap<String, (u32, Instant)>>,
}

impl LoginThrottle {
    fn with_map<T>(&self, f: impl FnOnce(&mut HashMap<String, (u32, Instant)>) -> T) -> T {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut map)
    }

    /// Whether `email` may try to log in now.
    pub fn allowed(&self, email: &str) -> bool {
        let key = email.to_lowercase();
        self.with_map(|map| match map.get(&key) {
            Some((count, since)) if since.elapsed() < WINDOW => *count < MAX_FAILURES,
            _ => true,
        })
    }

    pub fn record_failure(&self, email: &str) {
        let key = email.to_lowercase();
        self.with_map(|map| {
            if map.len() >= MAX_TRACKED {
                map.retain(|_, (_, since)| since.elapsed() < WINDOW);
            }
            let entry = map.entry(key).or_insert((0, Instant::now()));
            if entry.1.elapsed() >= WINDOW {
                *entry = (0, Instant::now());
            }
            entry.0 += 1;
        });
    }

    pub fn record_success(&self, email: &str) {
        let key = email.to_lowercase();
        self.with_map(|map| map.remove(&key));
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn blocks_after_the_limit_and_resets_on_success() {
        let throttle = super::LoginThrottle::default();
        for _ in 0..super::MAX_FAILURES {
            assert!(throttle.allowed("A@x.test"));
            throttle.record_failure("a@x.test");
        }
        assert!(!throttle.allowed("a@X.test"));
        assert!(throttle.allowed("b@x.test"));
        throttle.record_success("a@x.test");
        assert!(throttle.allowed("a@x.test"));
    }
}
