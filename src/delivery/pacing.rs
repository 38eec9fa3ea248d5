//! Pacing per destination domain, so that one slow domain cannot fill a
//! worker's hands. A worker keeps in hand only what a domain can take
//! within a short wait (its slots times that wait over its average
//! transaction time, and never fewer than two jobs per slot), as Postfix's
//! qmgr caps each destination's share; jobs claimed beyond that go back to
//! the queue, due again when the domain is expected to take them: one
//! slot's turn of its average transaction time apart, after the jobs
//! already in hand, with jitter. A fast domain is never pushed back.
//! KumoMTA delays messages when a destination's ready queue is full in the
//! same way. So the head of the queue is never one domain's backlog, and
//! each pushed-back row is touched about once per pass rather than on
//! every claim.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rand::Rng;
use tokio::time::Instant;

/// Jobs in hand per slot of a domain, at least: enough to start the next
/// at once.
const IN_HAND_PER_SLOT: usize = 2;
/// A job in hand should start within about this long.
const MAX_WAIT: Duration = Duration::from_secs(10);
/// A domain's transaction time before any has been measured.
const FIRST_GUESS: Duration = Duration::from_millis(500);
/// Weight of the newest measurement in the running average.
const ALPHA: f64 = 0.2;
/// Push back at least this far (a claim round trip) …
const MIN_DELAY: Duration = Duration::from_millis(100);
/// … and at most this far: rows of a very long backlog come round again
/// after this and are paced anew.
const MAX_DELAY: Duration = Duration::from_secs(15 * 60);

#[derive(Debug)]
struct Pace {
    /// Jobs of this domain in the worker's hands.
    in_hand: usize,
    /// Running average of a transaction to the domain.
    average: Duration,
    /// When the last pushed-back job is expected to be taken.
    horizon: Instant,
}

/// Per-domain bookkeeping of one worker.
#[derive(Debug)]
pub struct Pacing {
    slots: usize,
    domains: Mutex<HashMap<String, Pace>>,
}

/// Counts one job as in hand until dropped.
#[derive(Debug)]
pub struct InHand {
    pacing: Arc<Pacing>,
    domain: String,
}

impl Drop for InHand {
    fn drop(&mut self) {
        if let Some(pace) = self.pacing.lock().get_mut(&self.domain) {
            pace.in_hand = pace.in_hand.saturating_sub(1);
        }
    }
}

impl Pacing {
    /// `slots`: the per-domain concurrency.
    pub fn new(slots: usize) -> Arc<Pacing> {
        Arc::new(Pacing {
            slots: slots.max(1),
            domains: Mutex::new(HashMap::new()),
        })
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Pace>> {
        // Counters only: a panic while holding the lock leaves them usable.
        self.domains
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Takes a job for `domain` into hand if the domain has room, else
    /// says after how long it should be due again.
    pub fn admit(self: &Arc<Pacing>, domain: &str) -> Result<InHand, Duration> {
        let now = Instant::now();
        let mut domains = self.lock();
        let pace = domains.entry(domain.to_string()).or_insert_with(|| Pace {
            in_hand: 0,
            average: FIRST_GUESS,
            horizon: now,
        });
        let takes = MAX_WAIT.as_secs_f64() * self.slots as f64 / pace.average.as_secs_f64().max(1e-3);
        let cap = (self.slots * IN_HAND_PER_SLOT).max(takes as usize);
        if pace.in_hand < cap {
            pace.in_hand += 1;
            return Ok(InHand {
                pacing: self.clone(),
                domain: domain.to_string(),
            });
        }
        Err(self.next_turn(pace, now))
    }

    /// When a job of `domain` given back unstarted should be due again.
    pub fn delay(&self, domain: &str) -> Duration {
        let now = Instant::now();
        match self.lock().get_mut(domain) {
            Some(pace) => self.next_turn(pace, now),
            None => MIN_DELAY,
        }
    }

    /// One more job after those in hand and those pushed back already.
    /// The horizon never runs more than `MAX_DELAY` ahead: rows of a
    /// backlog longer than that come round again and are spread anew,
    /// rather than all landing on the same far-off instant.
    fn next_turn(&self, pace: &mut Pace, now: Instant) -> Duration {
        let per_job = pace.average / self.slots as u32;
        let after_hand = now + per_job * pace.in_hand as u32;
        pace.horizon = (pace.horizon.max(after_hand) + per_job).min(now + MAX_DELAY);
        let delay = pace
            .horizon
            .saturating_duration_since(now)
            .clamp(MIN_DELAY, MAX_DELAY);
        delay.mul_f64(rand::rng().random_range(0.9..1.1))
    }

    /// Records how long a transaction to `domain` took.
    pub fn observe(&self, domain: &str, took: Duration) {
        if let Some(pace) = self.lock().get_mut(domain) {
            let average = pace.average.as_secs_f64() * (1.0 - ALPHA) + took.as_secs_f64() * ALPHA;
            pace.average = Duration::from_secs_f64(average.min(MAX_DELAY.as_secs_f64()));
        }
    }

    /// Forgets domains with nothing in hand whose pushed-back jobs are due.
    pub fn prune(&self) {
        let now = Instant::now();
        self.lock()
            .retain(|_, pace| pace.in_hand > 0 || pace.horizon > now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_domain_pushes_jobs_back_one_turn_apart() {
        let pacing = Pacing::new(2);
        // Slow (2 s a transaction, two slots): ten in hand is ten seconds' work.
        let _ = pacing.admit("slow.test");
        for _ in 0..30 {
            pacing.observe("slow.test", Duration::from_secs(2));
        }
        let held: Vec<InHand> = (0..10).map(|_| pacing.admit("slow.test").unwrap()).collect();
        let first = pacing.admit("slow.test").unwrap_err();
        let second = pacing.admit("slow.test").unwrap_err();
        // After the ten in hand, at five jobs' turns (a second each) or more.
        assert!(
            first >= Duration::from_secs(9) && second >= Duration::from_secs(9),
            "{first:?} {second:?}"
        );
        // Another domain is not held up.
        let other = pacing.admit("fast.test").unwrap();
        drop(held);
        assert!(pacing.admit("slow.test").is_ok(), "room once jobs are done");
        drop(other);
        // Delays grow by about one slot's turn (average / slots) each.
        let many: Vec<Duration> = (0..50)
            .map(|_| {
                let _ = pacing.admit("slow.test");
                pacing.delay("slow.test")
            })
            .collect();
        assert!(many.last().unwrap() > &Duration::from_secs(20), "{many:?}");
        assert!(many.iter().all(|d| *d <= MAX_DELAY.mul_f64(1.1)));
    }

    #[tokio::test]
    async fn a_fast_domain_is_not_pushed_back() {
        let pacing = Pacing::new(20);
        let _ = pacing.admit("fast.test");
        for _ in 0..30 {
            pacing.observe("fast.test", Duration::from_millis(10));
        }
        let held: Vec<InHand> = (0..1000).map_while(|_| pacing.admit("fast.test").ok()).collect();
        assert_eq!(held.len(), 1000, "a fast domain was capped");
    }
}
