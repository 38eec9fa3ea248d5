//! Per-API-key limits on sending: a rate (GCRA, governor) and a number of
//! sends in progress, so that one key (one tenant's runaway job) cannot
//! take the API's capacity from the others. `sending::send` checks them
//! right after the key is authenticated, before anything is built or
//! signed. Per process, like the login throttle: with N API processes a
//! key gets up to N times the configured figures.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use uuid::Uuid;

use crate::config::Limits as Settings;

/// Why a send was turned away by a limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Limited {
    #[error("this API key sends faster than limits.sends_per_second_per_key allows")]
    Rate { retry_after: Duration },
    #[error("this API key has more sends in progress than limits.concurrent_sends_per_key allows")]
    Concurrency,
}

/// The limits of this process, shared by its requests.
pub struct SendLimits {
    rate: Option<DefaultKeyedRateLimiter<Uuid>>,
    clock: DefaultClock,
    max_in_flight: usize,
    in_flight: Mutex<HashMap<Uuid, usize>>,
}

/// A send in progress; dropping it ends it.
pub struct Admitted<'a> {
    limits: &'a SendLimits,
    key: Uuid,
}

impl SendLimits {
    pub fn new(settings: &Settings) -> SendLimits {
        let rate = NonZeroU32::new(settings.sends_per_second_per_key).map(|per_second| {
            let burst = NonZeroU32::new(settings.burst_per_key).unwrap_or(per_second);
            RateLimiter::keyed(Quota::per_second(per_second).allow_burst(burst))
        });
        SendLimits {
            rate,
            clock: DefaultClock::default(),
            max_in_flight: settings.concurrent_sends_per_key,
            in_flight: Mutex::new(HashMap::new()),
        }
    }

    /// Admits one send of `key`, or says when to try again.
    pub fn admit(&self, key: Uuid) -> Result<Admitted<'_>, Limited> {
        if let Some(rate) = &self.rate
            && let Err(not_until) = rate.check_key(&key)
        {
            let retry_after = not_until.wait_time_from(self.clock.now());
            return Err(Limited::Rate { retry_after });
        }
        if self.max_in_flight > 0 {
            let mut in_flight = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
            let count = in_flight.entry(key).or_insert(0);
            if *count >= self.max_in_flight {
                return Err(Limited::Concurrency);
            }
            *count += 1;
        }
        Ok(Admitted { limits: self, key })
    }
}

impl Drop for Admitted<'_> {
    fn drop(&mut self) {
        if self.limits.max_in_flight == 0 {
            return;
        }
        let mut in_flight = self.limits.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = in_flight.get_mut(&self.key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                in_flight.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(per_second: u32, burst: u32, concurrent: usize) -> Settings {
        Settings {
            sends_per_second_per_key: per_second,
            burst_per_key: burst,
            concurrent_sends_per_key: concurrent,
            ..crate::config::Settings::default().limits
        }
    }

    #[test]
    fn a_key_gets_its_burst_then_waits_and_others_are_unaffected() {
        let limits = SendLimits::new(&settings(1, 3, 0));
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        for _ in 0..3 {
            assert!(limits.admit(a).is_ok());
        }
        match limits.admit(a) {
            Err(Limited::Rate { retry_after }) => assert!(retry_after <= Duration::from_secs(1)),
            Err(other) => panic!("{other}"),
            Ok(_) => panic!("admitted past the burst"),
        }
        assert!(limits.admit(b).is_ok());
    }

    #[test]
    fn sends_in_progress_are_counted_until_they_end() {
        let limits = SendLimits::new(&settings(0, 0, 2));
        let key = Uuid::from_u128(7);
        let first = limits.admit(key).unwrap();
        let _second = limits.admit(key).unwrap();
        assert_eq!(limits.admit(key).err(), Some(Limited::Concurrency));
        drop(first);
        assert!(limits.admit(key).is_ok());
    }
}
