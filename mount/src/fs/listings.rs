//! The persistent listing cache: `listings.json` in the cache directory holds every directory listing of the
//! inode table (names, kinds, sizes, versions, mtimes, and when the store answered), so a restarted mount
//! answers a listing younger than the metadata TTL without asking the store again.
//!
//! - **Our own writes.** The table's listings already carry what this mount created, renamed or removed, so
//!   the file does too: it is written from the table, never from the store alone.
//! - **Atomic.** Written to a temporary file, fsynced, renamed: a crash leaves the old file or the new one.
//! - **Clean or not.** The file written at unmount says `clean`; the periodic snapshots in between do not.
//!   A start after a crash ignores an unclean file (changes made after its snapshot could be missing from
//!   it), so the listings are fetched again: a crash can cost requests, never show a wrong directory.
//! - **Wall clock.** Ages are kept as Unix milliseconds; a listing from the future (clock moved back) is
//!   treated as expired.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::Write as _;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::error::Result;

/// File name under the cache directory.
pub(crate) const FILE_NAME: &str = "listings.json";

/// One entry of a saved listing.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct SavedEntry {
    pub(crate) name: String,
    pub(crate) dir: bool,
    pub(crate) size: u64,
    /// The version blocks are keyed by (empty for a directory or a file made here).
    pub(crate) version: String,
    /// Nanoseconds since the Unix epoch.
    pub(crate) mtime_ns: u64,
    /// Made here and not yet in the store (staged in the journal, or an empty directory).
    pub(crate) local: bool,
}

/// One saved directory listing.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct SavedListing {
    /// The directory's key (`""` for the root without a prefix).
    pub(crate) key: String,
    /// When the store answered, Unix milliseconds.
    pub(crate) fetched_ms: u64,
    pub(crate) entries: Vec<SavedEntry>,
}

#[derive(Debug, Serialize, Deserialize)]
struct SavedFile {
    /// Written at a clean unmount.
    clean: bool,
    listings: Vec<SavedListing>,
}

/// Unix milliseconds of `time`.
pub(crate) fn unix_ms(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Unix nanoseconds of `time`.
pub(crate) fn unix_ns(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// The `Instant` a listing fetched at `fetched_ms` corresponds to, if it is younger than `ttl`.
pub(crate) fn fresh_instant(fetched_ms: u64, ttl: Duration) -> Option<Instant> {
    let age = Duration::from_millis(unix_ms(SystemTime::now()).checked_sub(fetched_ms)?);
    if age >= ttl {
        return None;
    }
    Instant::now().checked_sub(age)
}

/// Writes the listings atomically.
pub(crate) fn save(cache_dir: &Path, listings: Vec<SavedListing>, clean: bool) -> Result<()> {
    let path = cache_dir.join(FILE_NAME);
    let temporary = cache_dir.join(format!("{FILE_NAME}.tmp"));
    let text = serde_json::to_vec(&SavedFile { clean, listings }).map_err(std::io::Error::other)?;
    let mut file = File::create(&temporary)?;
    file.write_all(&text)?;
    file.sync_all()?;
    fs::rename(&temporary, &path)?;
    Ok(())
}

/// The listings a clean unmount saved, by directory key; nothing after a crash, a missing or a damaged file.
pub(crate) fn load(cache_dir: &Path) -> HashMap<String, SavedListing> {
    let path = cache_dir.join(FILE_NAME);
    let text = match fs::read(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return HashMap::new(),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the listing cache; listing again");
            return HashMap::new();
        }
    };
    match serde_json::from_slice::<SavedFile>(&text) {
        Ok(saved) if saved.clean => saved.listings.into_iter().map(|l| (l.key.clone(), l)).collect(),
        Ok(_) => {
            tracing::info!("the last mount did not unmount cleanly; its listing cache is not trusted");
            HashMap::new()
        }
        Err(e) => {
            tracing::warn!(error = %e, "the listing cache is damaged; listing again");
            HashMap::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing(key: &str) -> SavedListing {
        SavedListing {
            key: key.into(),
            fetched_ms: unix_ms(SystemTime::now()),
            entries: vec![SavedEntry {
                name: "a.bin".into(),
                dir: false,
                size: 3,
                version: "\"etag\"".into(),
                mtime_ns: 5,
                local: false,
            }],
        }
    }

    #[test]
    fn only_a_clean_file_is_trusted() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load(dir.path()).is_empty());
        save(dir.path(), vec![listing("library/x")], false).unwrap();
        assert!(load(dir.path()).is_empty(), "an unclean snapshot is ignored");
        let saved = listing("library/x");
        save(dir.path(), vec![saved.clone()], true).unwrap();
        assert_eq!(load(dir.path())["library/x"], saved);
        fs::write(dir.path().join(FILE_NAME), b"{not json").unwrap();
        assert!(
            load(dir.path()).is_empty(),
            "a damaged file is ignored, not an error"
        );
    }

    #[test]
    fn freshness_follows_the_ttl_and_refuses_the_future() {
        let now = unix_ms(SystemTime::now());
        assert!(fresh_instant(now - 1_000, Duration::from_secs(60)).is_some());
        assert!(fresh_instant(now - 61_000, Duration::from_secs(60)).is_none());
        assert!(fresh_instant(now + 60_000, Duration::from_secs(60)).is_none());
    }
}
