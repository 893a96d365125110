//! `seed-originals`: copies a Photos library's `originals/` folder into the object store, keyed by the path
//! inside the bundle (`<prefix>/<X>/<UUID>.<ext>`, the Live Photo video as `<UUID>_3.mov`), so the prefix can
//! later be mounted as the library's own `originals/` folder (see `deploy/install-photos-mount.sh`). It replaces
//! the shell version's temporary read-write mount with direct writes through the `storage` crate.
//!
//! Resumable: an object already in the store with the file's size and SHA-256 is skipped, so a rerun after an
//! interruption copies only what is missing. Stored objects are immutable: writes are create-only, and a file
//! whose key holds other bytes is reported, never written over (the server's catalog may reference them). Every write announces the file's SHA-256, so a file
//! that changes while it is copied is refused by the store instead of stored half old, half new. One file that
//! cannot be copied is reported with its reason and does not stop the others.

use std::path::{Path, PathBuf};

use futures::StreamExt as _;
use storage::{LibraryLayout, PutMode, PutOptions, Sha256Digest, StorageKey, Store};
use tokio_util::io::ReaderStream;

use crate::error::{Error, Result};
use crate::hash::sha256_file;

/// Where the originals go in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SeedTarget {
    /// Under this key prefix, as is.
    Prefix(StorageKey),
    /// Under the server's layout of this user's library (`users/<user>/libraries/<library>/originals`).
    Layout {
        /// User id.
        user: String,
        /// Library id.
        library: String,
    },
}

impl SeedTarget {
    /// The key prefix every original is written under.
    pub fn prefix(&self) -> Result<StorageKey> {
        match self {
            SeedTarget::Prefix(prefix) => Ok(prefix.clone()),
            SeedTarget::Layout { user, library } => LibraryLayout::new(user, library)
                .and_then(|layout| layout.originals_prefix())
                .map_err(|source| Error::Config {
                    name: "--user / --library-id",
                    reason: source.to_string(),
                }),
        }
    }

    /// The shell version's default: `<bundle name>/originals`.
    pub fn default_for(library: &Path) -> Result<SeedTarget> {
        let name = library
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        StorageKey::parse(format!("{name}/originals"))
            .map(SeedTarget::Prefix)
            .map_err(|source| Error::Config {
                name: "--prefix (IPHOTO_SEED_PREFIX)",
                reason: format!("not set, and the bundle name gives no valid prefix: {source}"),
            })
    }
}

/// What a seed run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SeedReport {
    /// The prefix written under.
    pub prefix: String,
    /// Files written.
    pub copied: u64,
    /// Bytes written.
    pub bytes_copied: u64,
    /// Files already in the store with the same size and SHA-256.
    pub already_there: u64,
    /// Files that could not be copied, with why.
    pub failed: Vec<SeedFailure>,
}

/// One file that could not be copied.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SeedFailure {
    /// The file.
    pub path: PathBuf,
    /// Why.
    pub reason: String,
}

/// The library's own `originals/` directory; refused when it is missing or a symlink (once the mount is
/// installed, `originals` points into the bucket: seeding from it would copy the bucket onto itself).
pub fn originals_dir(library: &Path) -> Result<PathBuf> {
    let bundle = if library.file_name().is_some_and(|n| n == "Photos.sqlite") {
        library
            .parent()
            .and_then(Path::parent)
            .unwrap_or(library)
            .to_path_buf()
    } else {
        library.to_path_buf()
    };
    let originals = bundle.join("originals");
    let refuse = |reason: &str| Error::Config {
        name: "--library (IPHOTO_LIBRARY)",
        reason: format!("{}: {reason}", originals.display()),
    };
    match std::fs::symlink_metadata(&originals) {
        Ok(meta) if meta.file_type().is_symlink() => Err(refuse(
            "is a symlink (the mount is installed?); seed from the library's own directory",
        )),
        Ok(meta) if meta.is_dir() => Ok(originals),
        Ok(_) => Err(refuse("is not a directory")),
        Err(error) => Err(refuse(&format!(
            "cannot be read ({error}); is this a .photoslibrary bundle?"
        ))),
    }
}

/// Every regular file under `originals`, hidden files (`.DS_Store`…) left out, in path order.
fn originals_files(originals: &Path) -> Result<Vec<(PathBuf, u64)>> {
    let mut files = Vec::new();
    let walker = walkdir::WalkDir::new(originals)
        .follow_links(false)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| e.depth() == 0 || !e.file_name().to_string_lossy().starts_with('.'));
    for entry in walker {
        let entry = entry.map_err(|error| Error::Io {
            path: error.path().unwrap_or(originals).to_path_buf(),
            action: "listing the originals",
            source: error.into(),
        })?;
        if entry.file_type().is_file() {
            let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
            files.push((entry.into_path(), size));
        }
    }
    Ok(files)
}

/// Copies every original missing from the store (or different there), `jobs` at a time.
#[tracing::instrument(skip_all, fields(library = %library.display()))]
pub async fn seed_originals(
    store: &Store,
    library: &Path,
    target: &SeedTarget,
    jobs: usize,
) -> Result<SeedReport> {
    let originals = originals_dir(library)?;
    let prefix = target.prefix()?;
    let files = originals_files(&originals)?;
    tracing::info!(files = files.len(), prefix = %prefix, "seeding originals");
    let mut report = SeedReport {
        prefix: prefix.to_string(),
        ..SeedReport::default()
    };
    let mut copies = Vec::with_capacity(files.len());
    for (path, size) in files {
        copies.push(seed_one(store, &originals, &prefix, path, size));
    }
    let mut results = futures::stream::iter(copies).buffer_unordered(jobs.max(1));
    while let Some((path, outcome)) = results.next().await {
        match outcome {
            Ok(Copied::Written(bytes)) => {
                report.copied += 1;
                report.bytes_copied += bytes;
            }
            Ok(Copied::AlreadyThere) => report.already_there += 1,
            Err(reason) => {
                tracing::warn!(path = %path.display(), %reason, "original not copied");
                report.failed.push(SeedFailure { path, reason });
            }
        }
    }
    report.failed.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(report)
}

enum Copied {
    Written(u64),
    AlreadyThere,
}

#[tracing::instrument(skip_all, fields(path = %path.display(), size = size))]
async fn seed_one(
    store: &Store,
    originals: &Path,
    prefix: &StorageKey,
    path: PathBuf,
    size: u64,
) -> (PathBuf, std::result::Result<Copied, String>) {
    let outcome = copy_file(store, originals, prefix, &path, size).await;
    (path, outcome)
}

async fn copy_file(
    store: &Store,
    originals: &Path,
    prefix: &StorageKey,
    path: &Path,
    size: u64,
) -> std::result::Result<Copied, String> {
    let key = object_key(originals, prefix, path)?;
    let local = sha256_file(path).await.map_err(|e| e.to_string())?;
    let expected = Sha256Digest::from_hex(&local.sha256).ok_or("bad local digest")?;
    match store.head(&key).await {
        Ok(meta) => return already_there(store, &key, meta.size, local.size, expected).await,
        Err(storage::Error::NotFound { .. }) => {}
        Err(other) => return Err(other.to_string()),
    }
    let file = tokio::fs::File::open(path)
        .await
        .map_err(|e| format!("opening: {e}"))?;
    let options = PutOptions {
        expected_sha256: Some(expected),
        size_hint: Some(size.max(local.size)),
        mode: PutMode::Create,
    };
    match store
        .put_stream(&key, ReaderStream::with_capacity(file, 1 << 20), &options)
        .await
    {
        Ok(receipt) => {
            tracing::debug!(key = %key, bytes = receipt.size, "copied");
            Ok(Copied::Written(receipt.size))
        }
        // Another writer (the server, or a second seed) stored it meanwhile.
        Err(storage::Error::AlreadyExists { .. }) => {
            let stored = store.head(&key).await.map_err(|e| e.to_string())?;
            already_there(store, &key, stored.size, local.size, expected).await
        }
        Err(e) => Err(e.to_string()),
    }
}

/// An object is already at the file's key: the same bytes count as copied; other bytes are never replaced
/// (objects are immutable, and the catalog may reference them), so the file is reported instead.
async fn already_there(
    store: &Store,
    key: &StorageKey,
    stored_size: u64,
    local_size: u64,
    expected: Sha256Digest,
) -> std::result::Result<Copied, String> {
    if stored_size == local_size && store.sha256(key).await.map_err(|e| e.to_string())? == expected {
        return Ok(Copied::AlreadyThere);
    }
    Err(format!(
        "the store already holds other bytes at {key}; stored objects are never replaced, \
         so this file was not copied (seed into another prefix, or remove that object first)"
    ))
}

/// `<prefix>/<path inside originals>`, each segment checked by [`StorageKey`].
fn object_key(originals: &Path, prefix: &StorageKey, path: &Path) -> std::result::Result<StorageKey, String> {
    let relative = path
        .strip_prefix(originals)
        .map_err(|_| "outside the originals folder".to_owned())?;
    let mut key = prefix.clone();
    for part in relative.components() {
        let segment = part
            .as_os_str()
            .to_str()
            .ok_or_else(|| "the file name is not UTF-8".to_owned())?;
        key = key.join(segment).map_err(|e| e.to_string())?;
    }
    Ok(key)
}
