//! From what the reader sees to what must be sent: each available resource gets its SHA-256 (from the cache when
//! the file's size and mtime are unchanged) and its measured size, then every item is compared with the metadata
//! the server last accepted. Only new or changed items are sent, plus a `deleted` item for each asset that is
//! gone from the library.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use api::{ResourceType, SyncItem, UnavailableReason};
use sha2::{Digest as _, Sha256};

use super::{Phase, Progress};
use crate::error::{Error, Result};
use crate::hash::sha256_file;
use crate::library::ReadAsset;
use crate::state::{FileStamp, SentAsset, StateDb};

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
}

/// One item to send and the hash to remember once the server accepts it.
#[derive(Debug, Clone)]
pub(crate) struct Outgoing {
    pub item: SyncItem,
    pub metadata_hash: String,
}

/// Hashes what is on disk (cache first) and fills `sha256`, measured `size` and availability in.
pub(crate) async fn prepare(
    state: &StateDb,
    assets: Vec<ReadAsset>,
    progress: &dyn Progress,
) -> Result<Prepared> {
    let cache = state.file_hashes().await?;
    let mut prepared = Prepared::default();
    progress.start(Phase::Hashing, assets.len() as u64);
    for asset in assets {
        let ReadAsset { mut item, files, .. } = asset;
        for resource in &mut item.resources {
            let path = files
                .iter()
                .find(|f| f.resource_type == resource.resource_type)
                .map(|f| f.path.clone());
            if let (true, Some(path)) = (resource.available, path) {
                match digest(state, &cache, &path, &mut prepared.hashed).await {
                    Ok((sha256, size)) => {
                        resource.sha256 = Some(sha256.clone());
                        resource.size = size;
                        prepared.files.insert(
                            (item.local_identifier.clone(), resource.resource_type),
                            LocalFile { path, sha256, size },
                        );
                    }
                    Err(error @ Error::Io { .. }) => {
                        tracing::warn!(error = %error, "resource not readable; reported unavailable");
                        resource.available = false;
                        resource.unavailable_reason = Some(UnavailableReason::Unreadable);
                    }
                    Err(other) => return Err(other),
                }
            } else {
                resource.available = false;
            }
            if !resource.available {
                prepared.unavailable += 1;
                if resource.unavailable_reason == Some(UnavailableReason::IcloudOnly) {
                    prepared.icloud_only += 1;
                }
            }
        }
        prepared.items.push(item);
        progress.advance(Phase::Hashing, 1);
    }
    progress.finish(Phase::Hashing);
    Ok(prepared)
}

/// The digest of one file: cached when path, size and mtime match, else computed and cached.
async fn digest(
    state: &StateDb,
    cache: &HashMap<String, (FileStamp, String)>,
    path: &Path,
    hashed: &mut u64,
) -> Result<(String, u64)> {
    let metadata = tokio::fs::metadata(path).await.map_err(|source| Error::Io {
        path: path.to_path_buf(),
        action: "reading metadata",
        source,
    })?;
    let mtime_ns = metadata
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .and_then(|d| i64::try_from(d.as_nanos()).ok())
        .unwrap_or(0);
    let stamp = FileStamp {
        size: metadata.len(),
        mtime_ns,
    };
    let key = path.to_string_lossy();
    if let Some((cached, sha256)) = cache.get(key.as_ref())
        && *cached == stamp
    {
        return Ok((sha256.clone(), stamp.size));
    }
    let digest = sha256_file(path).await?;
    *hashed += 1;
    let stamp = FileStamp {
        size: digest.size,
        ..stamp
    };
    state.record_hash(&key, stamp, &digest.sha256).await?;
    Ok((digest.sha256, digest.size))
}

/// A stable hash of an item's wire form: equal hashes mean nothing to send.
pub(crate) fn metadata_hash(item: &SyncItem) -> String {
    let json = serde_json::to_vec(item).unwrap_or_default();
    hex::encode(Sha256::digest(&json))
}

/// New and changed items, then deletions for assets the server knows and the library no longer has.
pub(crate) fn diff(items: &[SyncItem], sent: &HashMap<String, SentAsset>) -> Vec<Outgoing> {
    let mut outgoing = Vec::new();
    for item in items {
        let metadata_hash = metadata_hash(item);
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
    let mut gone: Vec<(&String, &SentAsset)> = sent
        .iter()
        .filter(|(id, s)| !s.deleted && !current.contains(id.as_str()))
        .collect();
    gone.sort_by(|a, b| a.0.cmp(b.0));
    for (id, last) in gone {
        match serde_json::from_str::<SyncItem>(&last.item) {
            Ok(mut item) => {
                item.deleted = true;
                let metadata_hash = metadata_hash(&item);
                outgoing.push(Outgoing { item, metadata_hash });
            }
            Err(error) => {
                tracing::warn!(local_identifier = %id, %error, "state DB item unreadable; deletion not sent")
            }
        }
    }
    outgoing
}
