//! The garbage collector (issue 12): removes objects nothing in the catalog names any more, and staging
//! left by interrupted writes, without ever losing an acknowledged byte.
//!
//! What keeps it safe:
//! - **Grace.** Only objects whose store last-modified is older than the grace period are candidates: an
//!   upload writes its object before the catalog records it, so a fresh unreferenced object is an upload in
//!   flight. An object is HEADed again just before its deletion and kept if it was rewritten meanwhile.
//! - **References.** A candidate is an object under `users/<id>/` of a known user whose key the user's
//!   catalog does not name ([`Catalog::gc_referenced_keys`]: resources, tombstones included, derivatives in
//!   enrichment results, retained history). Nothing outside `users/` is ever touched.
//! - **Originals the catalog never recorded are kept.** A library's `originals/` prefix has the Photos
//!   bundle layout so that the mount can serve it as the library's own originals folder, and
//!   `iphoto-agent seed-originals --user --library-id` writes there directly, before (or without) the
//!   catalog recording those files. So under `users/<u>/libraries/<l>/originals/` only an object a blob
//!   row names (uploaded and recorded once, no longer referenced) is collected; an unrecorded one there may
//!   be the only copy of a Mac's original.
//! - **Release, then delete.** Candidates are released by [`Catalog::gc_release_unreferenced`], which
//!   re-checks them in a transaction serialised with the user's uploads and deletes their blob rows; objects
//!   are deleted only after it committed. A dedup link racing with it either committed first (the key is
//!   referenced and kept) or finds its blob row gone and uploads the bytes again.
//! - **Settle.** On PostgreSQL a sync batch reads blob rows and links them a moment later, outside that
//!   lock; so after releasing every user's garbage, the pass waits [`GcSettings::settle`] (30 s; one pause
//!   per pass) and checks the references once more, keeping any object a batch linked meanwhile. A batch
//!   slower than that from its read to its commit could still link a deleted object: closing that for good
//!   needs the sync write to check its blob rows under the same lock.
//! - **Lease.** A pass that deletes runs only while its replica holds the `gc` lease (renewed as it goes);
//!   a replica that does not hold it does nothing. Every step is idempotent (deleting a deleted object
//!   succeeds), so a pass that dies midway is simply redone by the next holder.
//!
//! - **Resumable uploads** (issue 16) idle past their max-age are aborted: the collector holds the upload's
//!   row (so no append can start on it meanwhile), aborts its multipart upload, removes its staging prefix
//!   `uploads/<user>/<id>/` (tails, the local staging file), then forgets the row. A completed upload's row is
//!   only forgotten: its object is the catalog's like any other. Staging under `uploads/` that no row names
//!   (a crash between starting an upload and recording it) goes once older than the grace.
//!
//! A dry run takes no lease and deletes nothing; it reports what a pass would free.

use std::time::Duration;

use futures::TryStreamExt as _;
use storage::{StagingSweep, StorageKey, Store};

use crate::catalog::{self, Catalog, UserId};

/// The lease every replica's collector competes for.
pub const LEASE: &str = "gc";

/// Releases (and object deletions) per catalog transaction.
const RELEASE_CHUNK: usize = 500;

/// How a pass runs.
#[derive(Debug, Clone)]
pub struct GcSettings {
    /// Objects (and staging files) last written more recently than this are never collected.
    pub grace: Duration,
    /// Count what would be freed; take no lease, delete nothing.
    pub dry_run: bool,
    /// Pause between releasing blob rows and deleting objects, after which references are checked again.
    pub settle: Duration,
    /// How long the lease holds without renewal; renewed before every user and every release.
    pub lease_ttl: Duration,
    /// Resumable uploads untouched for this long are aborted.
    pub upload_max_age: Duration,
}

impl GcSettings {
    /// Defaults for a grace period: a 30 s settle and a 10 min lease.
    pub fn new(grace: Duration) -> Self {
        Self {
            grace,
            dry_run: false,
            settle: Duration::from_secs(30),
            lease_ttl: Duration::from_secs(600),
            upload_max_age: Duration::from_secs(24 * 3600),
        }
    }
}

/// What a pass freed (or, dry, would free) for one user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserReport {
    /// The user.
    pub user_id: UserId,
    /// Unreferenced objects past the grace found.
    pub reclaimable_keys: u64,
    /// Their bytes.
    pub reclaimable_bytes: u64,
    /// Objects deleted (0 in a dry run).
    pub reclaimed_keys: u64,
    /// Their bytes.
    pub reclaimed_bytes: u64,
}

/// What one pass did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GcReport {
    /// False when another replica held the lease: nothing was looked at.
    pub ran: bool,
    /// A dry run: nothing was deleted, the figures are what a pass would free.
    pub dry_run: bool,
    /// Per user with anything reclaimable.
    pub users: Vec<UserReport>,
    /// Staging files of interrupted writes removed (or, dry, found).
    pub staging: StagingSweep,
    /// Resumable uploads idle past their max-age aborted (or, dry, found).
    pub expired_uploads: u64,
}

impl GcReport {
    /// Bytes this pass found to free: unreferenced objects past the grace, and old staging.
    pub fn reclaimable_bytes(&self) -> u64 {
        self.users.iter().map(|u| u.reclaimable_bytes).sum::<u64>() + self.staging.bytes
    }

    /// Bytes this pass deleted, staging included (0 for a dry run).
    pub fn reclaimed_bytes(&self) -> u64 {
        if self.dry_run {
            return 0;
        }
        self.users.iter().map(|u| u.reclaimed_bytes).sum::<u64>() + self.staging.bytes
    }

    /// Objects (not staging) found to free, and their bytes.
    pub fn reclaimable_objects(&self) -> (u64, u64) {
        let keys = self.users.iter().map(|u| u.reclaimable_keys).sum();
        let bytes = self.users.iter().map(|u| u.reclaimable_bytes).sum();
        (keys, bytes)
    }

    /// Objects (not staging) deleted, and their bytes.
    pub fn reclaimed_objects(&self) -> (u64, u64) {
        let keys = self.users.iter().map(|u| u.reclaimed_keys).sum();
        let bytes = self.users.iter().map(|u| u.reclaimed_bytes).sum();
        (keys, bytes)
    }
}

/// Why a pass stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The catalog failed; nothing past the failing step was done. The next pass redoes it.
    #[error("garbage collection: catalog")]
    Catalog(#[from] catalog::Error),
    /// The store failed; objects released so far stay unreferenced and are deleted by the next pass.
    #[error("garbage collection: object store")]
    Storage(#[from] storage::Error),
    /// The lease expired or was taken over mid-pass (a pass slower than its TTL): this replica stopped.
    #[error("garbage collection: the lease was lost mid-pass")]
    LeaseLost,
}

/// One pass over every user: see the module docs. `holder` names this replica in the lease.
pub async fn run_pass(
    catalog: &dyn Catalog,
    store: &Store,
    holder: &str,
    settings: &GcSettings,
) -> Result<GcReport, Error> {
    let mut report = GcReport {
        dry_run: settings.dry_run,
        ..GcReport::default()
    };
    if !settings.dry_run && !renew(catalog, holder, settings).await? {
        return Ok(report);
    }
    report.ran = true;
    let outcome = collect(catalog, store, holder, settings, &mut report).await;
    if !settings.dry_run {
        // Let the next pass start at once rather than after the TTL; a failure here only delays it.
        if let Err(error) = catalog.gc_release_lease(LEASE, holder).await {
            tracing::warn!(%error, "could not release the gc lease; it expires by itself");
        }
    }
    outcome.map(|()| report)
}

async fn collect(
    catalog: &dyn Catalog,
    store: &Store,
    holder: &str,
    settings: &GcSettings,
    report: &mut GcReport,
) -> Result<(), Error> {
    // Release every user's garbage first, then one settle pause for all, then delete.
    let mut released = Vec::new();
    for user_id in catalog.gc_users().await? {
        if !settings.dry_run && !renew(catalog, holder, settings).await? {
            return Err(Error::LeaseLost);
        }
        released.push(release_user(catalog, store, holder, settings, &user_id).await?);
    }
    if released.iter().any(|r| !r.keys.is_empty()) && !settings.settle.is_zero() {
        tokio::time::sleep(settings.settle).await;
    }
    let users = &mut report.users;
    for user in released {
        let Released {
            report: mut user_report,
            keys,
            cutoff,
        } = user;
        if !keys.is_empty() {
            if !renew(catalog, holder, settings).await? {
                return Err(Error::LeaseLost);
            }
            delete_released(catalog, store, &mut user_report, &keys, cutoff).await?;
        }
        if user_report.reclaimable_keys > 0 || user_report.reclaimed_keys > 0 {
            tracing::info!(
                user_id = %user_report.user_id,
                reclaimable_keys = user_report.reclaimable_keys,
                reclaimable_bytes = user_report.reclaimable_bytes,
                reclaimed_keys = user_report.reclaimed_keys,
                reclaimed_bytes = user_report.reclaimed_bytes,
                dry_run = settings.dry_run,
                "garbage collection"
            );
            users.push(user_report);
        }
    }
    report.staging = store.remove_staging(settings.grace, settings.dry_run).await?;
    report.expired_uploads = expire_uploads(catalog, store, holder, settings).await?;
    remove_orphan_staging(catalog, store, settings).await?;
    Ok(())
}

/// Aborts the resumable uploads idle past the max-age; returns how many (a dry run only counts them).
async fn expire_uploads(
    catalog: &dyn Catalog,
    store: &Store,
    holder: &str,
    settings: &GcSettings,
) -> Result<u64, Error> {
    let now = chrono::Utc::now();
    let before = now
        .checked_sub_signed(
            chrono::Duration::from_std(settings.upload_max_age).unwrap_or(chrono::Duration::MAX),
        )
        .unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC);
    let mut expired = 0;
    loop {
        let idle = catalog.resumable_idle(before, now, 100).await?;
        if idle.is_empty() || settings.dry_run {
            return Ok(expired + idle.len() as u64);
        }
        for upload in idle {
            // Held, so no append starts on it while its parts go; re-checked idle under the hold.
            let until = now + chrono::Duration::minutes(10);
            let Some(upload) = catalog
                .resumable_hold(&upload.user_id, &upload.id, holder, chrono::Utc::now(), until)
                .await?
                .filter(|u| u.updated_at < before)
            else {
                continue;
            };
            if upload.answer.is_none() {
                let target = storage::ResumableTarget {
                    staging: StorageKey::parse(upload.staging_key.as_str())?,
                    key: StorageKey::parse(upload.target_key.as_str())?,
                };
                let progress: storage::ResumableProgress =
                    serde_json::from_str(&upload.progress).unwrap_or_default();
                store.resumable_abort(&target, &progress).await?;
            }
            catalog.resumable_delete(&upload.id).await?;
            tracing::info!(upload = %upload.id, user_id = %upload.user_id, "resumable upload expired");
            expired += 1;
        }
    }
}

/// Removes staging under `uploads/` older than the grace that no upload row names.
async fn remove_orphan_staging(
    catalog: &dyn Catalog,
    store: &Store,
    settings: &GcSettings,
) -> Result<(), Error> {
    let root = StorageKey::parse("uploads")?;
    let cutoff = cutoff(settings.grace);
    let objects: Vec<storage::ObjectMeta> = store.list(Some(&root)).try_collect().await?;
    for object in objects {
        let mut parts = object.key.as_str().splitn(4, '/').skip(1);
        let (Some(user), Some(id)) = (parts.next(), parts.next()) else {
            continue;
        };
        if object.last_modified >= cutoff || catalog.resumable_get(&UserId::new(user), id).await?.is_some() {
            continue;
        }
        if !settings.dry_run {
            store.delete(&object.key).await?;
        }
        tracing::info!(key = %object.key, dry_run = settings.dry_run, "orphan upload staging");
    }
    Ok(())
}

/// One user's garbage, released in the catalog and waiting for its objects' deletion.
struct Released {
    report: UserReport,
    /// Keys whose blob rows are gone and which nothing referenced under the lock.
    keys: Vec<String>,
    /// Objects written after this are not candidates (the grace, as of the listing).
    cutoff: chrono::DateTime<chrono::Utc>,
}

/// Finds the user's garbage and releases it (a dry run only counts it).
async fn release_user(
    catalog: &dyn Catalog,
    store: &Store,
    holder: &str,
    settings: &GcSettings,
    user_id: &UserId,
) -> Result<Released, Error> {
    let mut report = UserReport {
        user_id: user_id.clone(),
        reclaimable_keys: 0,
        reclaimable_bytes: 0,
        reclaimed_keys: 0,
        reclaimed_bytes: 0,
    };
    let cutoff = cutoff(settings.grace);
    // References first, listing second: an object recorded after this read is younger than the grace
    // (uploads write before they record), or a dedup link, which the release re-checks under the lock.
    let referenced = catalog.gc_referenced_keys(user_id).await?;
    let prefix = StorageKey::parse(format!("users/{user_id}"))?;
    let mut listing = store.list(Some(&prefix));
    let mut candidates = Vec::new();
    while let Some(object) = listing.try_next().await? {
        if object.last_modified < cutoff && !referenced.contains(object.key.as_str()) {
            report.reclaimable_keys += 1;
            report.reclaimable_bytes += object.size;
            candidates.push((object.key.to_string(), object.size));
        }
    }
    drop(referenced);
    let originals: Vec<String> = candidates
        .iter()
        .filter(|(k, _)| in_originals(k))
        .map(|(k, _)| k.clone())
        .collect();
    if !originals.is_empty() {
        let recorded = catalog.gc_recorded_among(user_id, &originals).await?;
        let mut kept = 0u64;
        candidates.retain(|(k, size)| {
            let keep = in_originals(k) && !recorded.contains(k);
            if keep {
                kept += 1;
                report.reclaimable_keys -= 1;
                report.reclaimable_bytes -= size;
            }
            !keep
        });
        if kept > 0 {
            tracing::info!(%user_id, kept, "kept unreferenced originals the catalog never recorded (seeded?)");
        }
    }
    let candidates: Vec<String> = candidates.into_iter().map(|(k, _)| k).collect();
    let mut keys = Vec::new();
    if !settings.dry_run {
        for chunk in candidates.chunks(RELEASE_CHUNK) {
            if !renew(catalog, holder, settings).await? {
                return Err(Error::LeaseLost);
            }
            keys.extend(catalog.gc_release_unreferenced(user_id, chunk).await?);
        }
    }
    Ok(Released { report, keys, cutoff })
}

/// After the settle pause: checks the references once more and deletes what is still free.
async fn delete_released(
    catalog: &dyn Catalog,
    store: &Store,
    report: &mut UserReport,
    released: &[String],
    cutoff: chrono::DateTime<chrono::Utc>,
) -> Result<(), Error> {
    let relinked = catalog.gc_referenced_among(&report.user_id, released).await?;
    if !relinked.is_empty() {
        tracing::warn!(user_id = %report.user_id, kept = relinked.len(), "released objects were linked meanwhile; kept");
    }
    for key in released.iter().filter(|k| !relinked.contains(*k)) {
        let key = StorageKey::parse(key)?;
        // Rewritten since it was listed (an upload to the same key in flight): no longer a candidate.
        let size = match store.head(&key).await {
            Ok(meta) if meta.last_modified < cutoff => meta.size,
            Ok(_) | Err(storage::Error::NotFound { .. }) => continue,
            Err(error) => return Err(error.into()),
        };
        store.delete(&key).await?;
        report.reclaimed_keys += 1;
        report.reclaimed_bytes += size;
    }
    Ok(())
}

/// Whether a key is under a library's originals: `users/<u>/libraries/<l>/originals/…`.
fn in_originals(key: &str) -> bool {
    let segments: Vec<&str> = key.splitn(6, '/').collect();
    matches!(segments.as_slice(), ["users", _, "libraries", _, "originals", _])
}

/// Takes or renews the lease for another TTL.
async fn renew(catalog: &dyn Catalog, holder: &str, settings: &GcSettings) -> Result<bool, Error> {
    let now = chrono::Utc::now();
    let ttl = chrono::Duration::from_std(settings.lease_ttl).unwrap_or(chrono::Duration::minutes(10));
    Ok(catalog.gc_take_lease(LEASE, holder, now, now + ttl).await?)
}

fn cutoff(grace: Duration) -> chrono::DateTime<chrono::Utc> {
    let grace = chrono::Duration::from_std(grace).unwrap_or(chrono::Duration::MAX);
    chrono::Utc::now()
        .checked_sub_signed(grace)
        .unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC)
}

/// A holder name unique to this process: the pid and 64 random bits.
pub fn holder_id() -> String {
    format!(
        "pid{}-{}",
        std::process::id(),
        hex::encode(rand::random::<[u8; 8]>())
    )
}

#[cfg(test)]
mod tests {
    use super::in_originals;

    #[test]
    fn originals_are_a_librarys_originals_prefix() {
        for (key, expected) in [
            ("users/u/libraries/l/originals/A/A1.heic", true),
            ("users/u/libraries/l/originals/A1.heic", true),
            ("users/u/libraries/l/derivatives/thumbnail/A/A1.jpg", false),
            ("users/u/libraries/l/originals", false),
            ("users/u/other/l/originals/A1.heic", false),
            ("seed/originals/A/A1.heic", false),
        ] {
            assert_eq!(in_originals(key), expected, "{key}");
        }
    }
}
