//! Failed sign-ins, counted per user name and per client address: after [`MAX_FAILURES`] failures within
//! [`WINDOW`] under either, further attempts are refused (429, with when to retry) until the oldest of those
//! failures leaves the window. Counting per name stops guessing one account from many addresses; per address
//! stops one client from trying many names.
//!
//! The counts live in this process: each replica keeps its own, so behind a load balancer over `n`
//! replicas an attacker gets at most `n` times the allowance, still far too few for guessing an Argon2id-
//! hashed password of twelve characters or more. Memory is bounded ([`MAX_KEYS`]).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures allowed within [`WINDOW`] before attempts are refused.
pub const MAX_FAILURES: usize = 5;
/// How long a failure counts.
pub const WINDOW: Duration = Duration::from_secs(300);
/// Most names and addresses tracked; past it, those with no failure in the window are forgotten first.
const MAX_KEYS: usize = 100_000;

/// The failure counts (see the module doc).
#[derive(Debug, Default)]
pub struct LoginLimiter {
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl LoginLimiter {
    /// How long until an attempt under any of `keys` is allowed again; `None`: allowed now.
    pub fn retry_after(&self, keys: &[String], now: Instant) -> Option<Duration> {
        let mut failures = self.lock();
        keys.iter()
            .filter_map(|key| {
                let times = failures.get_mut(key)?;
                forget_old(times, now);
                // The attempt is allowed once fewer than MAX_FAILURES remain in the window: when the one
                // MAX_FAILURES back from the newest has left it.
                let blocking = times.len().checked_sub(MAX_FAILURES)?;
                let until = times.get(blocking)?.checked_add(WINDOW)?;
                Some(until.saturating_duration_since(now).max(Duration::from_secs(1)))
            })
            .max()
    }

    /// Counts a failed attempt under each of `keys`.
    pub fn record_failure(&self, keys: &[String], now: Instant) {
        let mut failures = self.lock();
        if failures.len() >= MAX_KEYS {
            failures.retain(|_, times| {
                forget_old(times, now);
                !times.is_empty()
            });
            if failures.len() >= MAX_KEYS {
                tracing::warn!(
                    keys = failures.len(),
                    "too many failing sign-in names and addresses; forgetting them"
                );
                failures.clear();
            }
        }
        for key in keys {
            let times = failures.entry(key.clone()).or_default();
            forget_old(times, now);
            times.push_back(now);
        }
    }

    /// Forgets the failures under `key` (a user's, after they signed in).
    pub fn clear(&self, key: &str) {
        self.lock().remove(key);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, VecDeque<Instant>>> {
        // The map holds no invariant a panic mid-update could break: take it back from a poisoned lock.
        self.failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn forget_old(times: &mut VecDeque<Instant>, now: Instant) {
    while times
        .front()
        .is_some_and(|t| now.saturating_duration_since(*t) >= WINDOW)
    {
        times.pop_front();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_failures_block_until_the_first_leaves_the_window() {
        let limiter = LoginLimiter::default();
        let start = Instant::now();
        let keys = ["user:ann".to_owned(), "addr:10.0.0.1".to_owned()];
        for i in 0..MAX_FAILURES {
            assert_eq!(limiter.retry_after(&keys, start), None, "attempt {i}");
            limiter.record_failure(&keys, start + Duration::from_secs(i as u64));
        }
        let later = start + Duration::from_secs(10);
        assert_eq!(
            limiter.retry_after(&keys, later),
            Some(WINDOW - Duration::from_secs(10))
        );
        // Either key alone blocks.
        assert!(
            limiter
                .retry_after(&["addr:10.0.0.1".to_owned()], later)
                .is_some()
        );
        assert_eq!(limiter.retry_after(&["user:bob".to_owned()], later), None);
        // Once the first failure is out of the window, one more attempt is allowed.
        assert_eq!(limiter.retry_after(&keys, start + WINDOW), None);
        limiter.clear("user:ann");
        assert_eq!(limiter.retry_after(&["user:ann".to_owned()], later), None);
    }
}
