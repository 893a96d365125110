//! The resumable migration of stored objects to their bundle path (issue 12, "one copy at the bundle path").
//!
//! Objects uploaded before the agent sent bundle paths were keyed by the import name
//! (`originals/3/<UUID>.jpg` where the bundle has `<UUID>.jpeg`), and a resource linked by content to another
//! photo's object is stored under that photo's key. Each such resource is moved in four steps, each safe to
//! repeat, so a pass cut short anywhere is finished by the next: copy the object to the bundle path
//! (server-side, only when the path is free), verify the copy's SHA-256, repoint the catalog row (only while
//! it still names the old object), and leave the old object to the garbage collector, which deletes it once
//! nothing — another photo, a retained history row — references it. Nothing is ever written over: a bundle
//! path already holding other bytes is left alone, and the resource stays where it is.

use std::sync::Arc;
use std::time::Duration;

use storage::{LibraryLayout, Sha256Digest, StorageKey, Store};

use crate::catalog::{Catalog, Misplaced};

/// Rows read per page.
const PAGE: u32 = 200;

/// How often `serve` looks for objects to move, after a first look at start.
pub const INTERVAL: Duration = Duration::from_secs(3600);

/// What a pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RelocateReport {
    /// Copied to the bundle path, verified and repointed.
    pub moved: u64,
    /// The bundle path already held the same bytes: repointed without a copy.
    pub adopted: u64,
    /// The bundle path holds other bytes: left where they are.
    pub left: u64,
    /// Not moved this time (a store or catalog error, a copy that did not verify), with why.
    pub failed: Vec<String>,
}

/// One pass over every misplaced resource.
pub async fn relocate_all(
    catalog: &dyn Catalog,
    store: &Store,
) -> Result<RelocateReport, crate::catalog::Error> {
    let mut report = RelocateReport::default();
    let mut after: Option<Misplaced> = None;
    loop {
        let page = catalog
            .misplaced(after.as_ref().map(|m| (&m.photo_id, m.resource)), PAGE)
            .await?;
        let Some(last) = page.last().cloned() else {
            break;
        };
        for item in &page {
            match relocate_one(catalog, store, item).await {
                Ok(Outcome::Moved) => report.moved += 1,
                Ok(Outcome::Adopted) => report.adopted += 1,
                Ok(Outcome::Left) => report.left += 1,
                Err(reason) => {
                    tracing::warn!(photo = %item.photo_id, key = %item.key, %reason, "not relocated");
                    report
                        .failed
                        .push(format!("{} {}: {reason}", item.photo_id, item.resource.as_str()));
                }
            }
        }
        after = Some(last);
    }
    if report != RelocateReport::default() {
        tracing::info!(
            moved = report.moved,
            adopted = report.adopted,
            left = report.left,
            failed = report.failed.len(),
            "relocated objects to their bundle paths"
        );
    }
    Ok(report)
}

/// Runs [`relocate_all`] at start and every [`INTERVAL`] until the process ends.
pub async fn run_in_background(catalog: Arc<dyn Catalog>, store: Store) {
    loop {
        if let Err(error) = relocate_all(catalog.as_ref(), &store).await {
            tracing::warn!(%error, "relocating objects failed; trying again later");
        }
        tokio::time::sleep(INTERVAL).await;
    }
}

enum Outcome {
    Moved,
    Adopted,
    Left,
}

/// SHA-256 of a stored object, as the reason a move failed.
async fn sha256_of(store: &Store, key: &StorageKey) -> Result<Sha256Digest, String> {
    store.sha256(key).await.map_err(|e| e.to_string())
}

async fn relocate_one(catalog: &dyn Catalog, store: &Store, item: &Misplaced) -> Result<Outcome, String> {
    let layout =
        LibraryLayout::new(item.user_id.as_str(), item.library_id.as_str()).map_err(|e| e.to_string())?;
    let to = layout.bundle(&item.bundle_path).map_err(|e| e.to_string())?;
    let from = StorageKey::parse(item.key.as_str()).map_err(|e| e.to_string())?;
    let expected = Sha256Digest::from_hex(&item.sha256).ok_or("the recorded SHA-256 is not hex")?;
    let outcome = match store.head(&to).await {
        Ok(_) if sha256_of(store, &to).await? == expected => Outcome::Adopted,
        Ok(_) => return Ok(Outcome::Left),
        Err(storage::Error::NotFound { .. }) => {
            store.copy(&from, &to).await.map_err(|e| e.to_string())?;
            if sha256_of(store, &to).await? != expected {
                // Only this pass wrote it, and nothing references it yet: remove the bad copy.
                store.delete(&to).await.map_err(|e| e.to_string())?;
                return Err(format!("the copy at {to} does not hash to {}", item.sha256));
            }
            Outcome::Moved
        }
        Err(e) => return Err(e.to_string()),
    };
    if catalog
        .repoint(item, to.as_str())
        .await
        .map_err(|e| e.to_string())?
    {
        Ok(outcome)
    } else {
        Err("the resource changed meanwhile; the next pass looks again".into())
    }
}
