//! From what the reader sees to what must be sent: each available resource gets its SHA-256 (from the cache when
//! the file's size and mtime, taken by the reader's one `stat`, are unchanged) and its measured size, then every
//! item is compared with the metadata the server last accepted. Only new or changed items are sent, plus a
//! `deleted` item for each asset that is gone from the library.
//!
//! The comparison is by digest: each item's wire JSON is hashed (SHA-256), and the digests of the whole library,
//! in reader order, are hashed again into one library digest. When that equals the digest stored after the last
//! pass whose every item the server accepted, nothing changed and the state DB's per-asset rows are not even
//! read; otherwise they are, and compared one by one. Every item is still built from a fresh read, so no change
//! can be missed: a changed item changes the library digest.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use api::{ResourceType, SyncItem, UnavailableReason};
use sha2::{Digest as _, Sha256};

use super::{Phase, Progress};
use crate::error::{Error, Result};
use crate::hash::sha256_files;
use crate::library::{FileStamp, ReadAsset};
use crate::state::StateDb;

/// The `meta` key of the library digest the server is known to hold.
pub(crate) const LIBRARY_DIGEST: &str = "library_digest";

/// Files hashed between two writes to the hash cache: a pass killed while hashing a large library keeps most of
/// its work, and the cache is written in few transactions.
const HASH_CHUNK: usize = 256;

/// A resource the agent can upload: its file and digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LocalFile {
    pub path: PathBuf,
    pub sha256: String,
    pub size: u64,
}

/// Every current item (digests filled in) and the uploadable files by `(localIdentifier, resource)`.
#[derive(Debug, Default)]
pub(crate) struct Prepared {
    pub items: Vec<SyncItem>,
    pub files: HashMap<(String, ResourceType), LocalFile>,
    pub hashed: u64,
    pub unavailable: u64,
    pub icloud_only: u64,
    /// Files that are here but could not be read: `(local identifier, resource, error with its causes)`.
    pub unreadable: Vec<(String, String, String)>,
}

/// One item to send and the hash to remember once the server accepts it.
#[derive(Debug, Clone)]
pub(crate) struct Outgoing {
    pub item: SyncItem,
    pub metadata_hash: String,
}

/// What must be sent, and the library digest to store once the server accepted all of it.
#[derive(Debug, Default)]
pub(crate) struct Diff {
    pub outgoing: Vec<Outgoing>,
    pub library_digest: String,
}

/// A resource whose file is not in the hash cache (or changed): where it is in the item list, and its file.
struct ToHash {
    item: usize,
    resource: usize,
    path: PathBuf,
    stamp: FileStamp,
}

/// Fills `sha256`, measured `size` and availability in, hashing only what the cache does not know.
pub(crate) async fn prepare(
    state: &StateDb,
    assets: Vec<ReadAsset>,
    progress: &dyn Progress,
) -> Result<Prepared> {
    let cache = state.file_hashes().await?;
    let mut prepared = Prepared {
        items: Vec::with_capacity(assets.len()),
        ..Prepared::default()
    };
    let mut todo = Vec::new();
    let mut paths = Vec::with_capacity(assets.len());
    for asset in assets {
        let ReadAsset { mut item, files, .. } = asset;
        for (index, resource) in item.resources.iter_mut().enumerate() {
            let file = files.iter().find(|f| f.resource_type == resource.resource_type);
            match file.and_then(|f| f.stamp.map(|stamp| (f, stamp))) {
                Some((file, stamp)) if resource.available => {
                    resource.size = stamp.size;
                    let cached = cache
                        .get(file.path.to_string_lossy().as_ref())
                        .filter(|(known, _)| *known == stamp);
                    match cached {
                        Some((_, sha256)) => resource.sha256 = Some(sha256.clone()),
                        None => todo.push(ToHash {
                            item: prepared.items.len(),
                            resource: index,
                            path: file.path.clone(),
                            stamp,
                        }),
                    }
                }
                _ => resource.available = false,
            }
        }
        paths.push(files);
        prepared.items.push(item);
    }
    drop(cache);

    progress.start(Phase::Hashing, todo.len() as u64);
    for chunk in todo.chunks(HASH_CHUNK) {
        let files: Vec<PathBuf> = chunk.iter().map(|t| t.path.clone()).collect();
        let digests = sha256_files(files, progress).await;
        let mut cached = Vec::with_capacity(chunk.len());
        for (job, digest) in chunk.iter().zip(digests) {
            let resource = &mut prepared.items[job.item].resources[job.resource];
            match digest {
                Ok(digest) => {
                    prepared.hashed += 1;
                    resource.sha256 = Some(digest.sha256.clone());
                    resource.size = digest.size;
                    let stamp = FileStamp {
                        size: digest.size,
                        ..job.stamp
                    };
                    cached.push((job.path.to_string_lossy().into_owned(), stamp, digest.sha256));
                }
                Err(error @ Error::Io { .. }) => {
                    let reason = error.with_causes();
                    tracing::warn!(error = %reason, "resource not readable; reported unavailable");
                    resource.available = false;
                    resource.unavailable_reason = Some(UnavailableReason::Unreadable);
                    let resource = resource.resource_type.as_str().to_owned();
                    let local_identifier = prepared.items[job.item].local_identifier.clone();
                    prepared.unreadable.push((local_identifier, resource, reason));
                }
                Err(other) => return Err(other),
            }
        }
        state.record_hashes(cached).await?;
    }
    progress.finish(Phase::Hashing);

    for (item, files) in prepared.items.iter().zip(&paths) {
        for resource in &item.resources {
            if !resource.available {
                prepared.unavailable += 1;
                if resource.unavailable_reason == Some(UnavailableReason::IcloudOnly) {
                    prepared.icloud_only += 1;
                }
                continue;
            }
            let path = files
                .iter()
                .find(|f| f.resource_type == resource.resource_type)
                .map(|f| f.path.clone());
            if let (Some(path), Some(sha256)) = (path, resource.sha256.clone()) {
                prepared.files.insert(
                    (item.local_identifier.clone(), resource.resource_type),
                    LocalFile {
                        path,
                        sha256,
                        size: resource.size,
                    },
                );
            }
        }
    }
    Ok(prepared)
}

/// New and changed items, then deletions for assets the server knows and the library no longer has; nothing,
/// without reading the per-asset state, when the library digest is the one the server is known to hold.
pub(crate) async fn diff(state: &StateDb, items: &[SyncItem]) -> Result<Diff> {
    let hashes = metadata_hashes(items);
    let mut library = Sha256::new();
    for (item, hash) in items.iter().zip(&hashes) {
        library.update(item.local_identifier.as_bytes());
        library.update([0]);
        library.update(hash.as_bytes());
    }
    let mut json = Vec::new();
    let library_digest = hex::encode(library.finalize());
    if state.meta(LIBRARY_DIGEST).await?.as_deref() == Some(library_digest.as_str()) {
        return Ok(Diff {
            outgoing: Vec::new(),
            library_digest,
        });
    }

    let sent = state.sent_digests().await?;
    let mut outgoing = Vec::new();
    for (item, metadata_hash) in items.iter().zip(hashes) {
        let unchanged = sent
            .get(&item.local_identifier)
            .is_some_and(|s| !s.deleted && s.metadata_hash == metadata_hash);
        if !unchanged {
            outgoing.push(Outgoing {
                item: item.clone(),
                metadata_hash,
            });
        }
    }
    let current: HashSet<&str> = items.iter().map(|i| i.local_identifier.as_str()).collect();
    let mut gone: Vec<String> = sent
        .iter()
        .filter(|(id, s)| !s.deleted && !current.contains(id.as_str()))
        .map(|(id, _)| id.clone())
        .collect();
    gone.sort();
    let last = state.sent_items(gone.clone()).await?;
    for id in gone {
        match last.get(&id).map(|json| serde_json::from_str::<SyncItem>(json)) {
            Some(Ok(mut item)) => {
                item.deleted = true;
                let metadata_hash = metadata_hash_into(&item, &mut json);
                outgoing.push(Outgoing { item, metadata_hash });
            }
            Some(Err(error)) => {
                tracing::warn!(local_identifier = %id, %error, "state DB item unreadable; deletion not sent")
            }
            None => tracing::warn!(local_identifier = %id, "state DB item gone; deletion not sent"),
        }
    }
    Ok(Diff {
        outgoing,
        library_digest,
    })
}

/// [`metadata_hash_into`] of every item, in order, the list split over the cores: at 100,000 items this is a
/// good part of an unchanged pass, and each item's hash is independent. Plain CPU work on scoped threads,
/// finished before this returns (a tenth of a second for a whole library; no I/O to wait for).
fn metadata_hashes(items: &[SyncItem]) -> Vec<String> {
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let per_thread = items.len().div_ceil(threads).max(1024);
    std::thread::scope(|scope| {
        let workers: Vec<_> = items
            .chunks(per_thread)
            .map(|chunk| {
                scope.spawn(move || {
                    let mut json = Vec::with_capacity(4096);
                    chunk
                        .iter()
                        .map(|item| metadata_hash_into(item, &mut json))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut hashes = Vec::with_capacity(items.len());
        for worker in workers {
            // Serialising plain data does not panic; if it ever did, that is a bug to surface, not to hide.
            hashes.extend(
                worker
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            );
        }
        hashes
    })
}

/// A stable hash of an item's wire form: equal hashes mean nothing to send. `json` is a reused buffer, so
/// hashing 100,000 items allocates only their hex digests.
fn metadata_hash_into(item: &SyncItem, json: &mut Vec<u8>) -> String {
    json.clear();
    // Serialising plain data into memory cannot fail; an empty buffer would only make the item look changed.
    if serde_json::to_writer(&mut *json, item).is_err() {
        json.clear();
    }
    hex::encode(Sha256::digest(json.as_slice()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_is_that_of_the_wire_json() {
        let item: SyncItem = serde_json::from_value(serde_json::json!({
            "localIdentifier": "A/L0/001", "kind": "photo", "livePhoto": false, "width": 1, "height": 2,
            "takenAt": "2024-01-01T00:00:00Z", "modifiedAt": "2024-01-01T00:00:00Z", "favorite": false,
            "hidden": false, "trashed": false, "originalFilename": "a.jpg", "uti": "public.jpeg",
            "edited": false, "keywords": [], "people": [], "resources": []
        }))
        .unwrap();
        let mut buffer = b"left over".to_vec();
        let expected = hex::encode(Sha256::digest(serde_json::to_vec(&item).unwrap()));
        assert_eq!(metadata_hash_into(&item, &mut buffer), expected);
        let mut favorite = item.clone();
        favorite.favorite = true;
        assert_ne!(metadata_hash_into(&favorite, &mut buffer), expected);
    }
}
