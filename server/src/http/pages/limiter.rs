//! Failed sign-ins, counted per user name and per client address: after [`MAX_FAILURES`] failures within
//! [`WINDOW`] under either, further attempts are refused (429, with when to retry) until the oldest of those
//! failures leaves the window. Counting per name stops guessing one account from many addresses; per address
//! stops one client from trying many names.
//!
//! The failures are kept in the catalog (`login_failures`), so every replica counts every failure: behind a
//! load balancer over any number of replicas an attacker gets the same allowance as against one server.
//! Old rows are deleted as new failures come, so the table holds at most a window's worth.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::catalog::{Catalog, Result};

/// Failures allowed within [`WINDOW`] before attempts are refused.
pub const MAX_FAILURES: u32 = 5;
/// How long a failure counts.
pub const WINDOW: Duration = Duration::from_secs(300);

fn window() -> chrono::Duration {
    chrono::Duration::from_std(WINDOW).unwrap_or(chrono::Duration::minutes(5))
}

/// How long until an attempt under any of `keys` is allowed again; `None`: allowed now.
pub async fn retry_after(
    catalog: &dyn Catalog,
    keys: &[String],
    now: DateTime<Utc>,
) -> Result<Option<Duration>> {
    let mut wait: Option<Duration> = None;
    for key in keys {
        // Allowed once fewer than MAX_FAILURES remain in the window: when the MAX_FAILURES-th newest has
        // left it.
        let since = now - window();
        if let Some(at) = catalog.login_failure_nth(key, since, MAX_FAILURES).await? {
            let until = (at + window() - now)
                .to_std()
                .unwrap_or_default()
                .max(Duration::from_secs(1));
            wait = Some(wait.map_or(until, |w| w.max(until)));
        }
    }
    Ok(wait)
}

/// Counts a failed attempt under each of `keys`.
pub async fn record_failure(catalog: &dyn Catalog, keys: &[String], now: DateTime<Utc>) -> Result<()> {
    catalog.record_login_failure(keys, now, now - window()).await
}

/// Forgets the failures under `key` (a user's, after they signed in).
pub async fn clear(catalog: &dyn Catalog, key: &str) -> Result<()> {
    catalog.clear_login_failures(key).await
}
