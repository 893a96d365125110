//! The file-system core: inodes, lookups, attributes, directory listings, handles and reads over a
//! [`Store`] and a key prefix. It knows nothing of FUSE: a front end (`fuse.rs`, later FSKit or NFS) turns
//! requests into these calls and [`Error::errno`] into its replies.
//!
//! Metadata comes from `list_dir` (one LIST per directory, trusted for the metadata TTL) and `head` (a file's
//! attributes after the TTL). A store that fails or times out gives [`Error::Store`]/[`Error::Timeout`]
//! (EIO): an entry is "not found" only when a fresh answer of the store says so.

mod attrs;
mod dirs;
pub(crate) mod inode;
mod journal;
mod listings;
pub mod pin;
mod read;
mod rename;
mod write;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use storage::{StorageKey, Store};

use crate::cache::{BlockCache, CacheUsage};
use crate::error::{Error, Result};
pub use attrs::SetMode;
use inode::InodeTable;
pub use inode::{Kind, ROOT_INO};
use journal::Journal;
pub use read::MAX_WINDOW_BLOCKS;
use read::{FileVersion, ReadState, Reader};

/// Settings of the core.
#[derive(Debug, Clone)]
pub struct FsConfig {
    /// The key prefix shown as the root (`None`: the whole store).
    pub prefix: Option<StorageKey>,
    /// Refuse every change with EROFS.
    pub read_only: bool,
    /// How long a listing or a file's attributes are trusted before the store is asked again.
    pub metadata_ttl: Duration,
    /// Size of a cached block.
    pub block_size: u64,
    /// Bytes of blocks in memory at once (fetches and prefetches), for the whole mount.
    pub memory_budget: u64,
    /// A store request that takes longer fails with EIO.
    pub request_timeout: Duration,
    /// Bytes written and not yet uploaded, at most (inside the cache bound; never evicted).
    pub dirty_budget: u64,
    /// Wait this long before each upload (tests use it to crash a mount mid-upload; 0 otherwise).
    pub upload_delay: Duration,
    /// The most objects a directory rename moves (copy, then delete, each); a larger directory is EXDEV.
    pub rename_dir_limit: u64,
    /// Owner shown on every entry.
    pub uid: u32,
    /// Group shown on every entry.
    pub gid: u32,
}

/// Attributes of an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attr {
    /// Inode number.
    pub ino: u64,
    /// File or directory.
    pub kind: Kind,
    /// Bytes (0 for directories).
    pub size: u64,
    /// Last modification in the store.
    pub mtime: SystemTime,
    /// Permission bits.
    pub perm: u16,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
}

/// An open file handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Opened {
    /// The handle for reads, writes and release.
    pub handle: u64,
    /// The kernel may keep the file's cached pages: they are of the version this handle reads (an earlier
    /// open read the same version). False drops them, so a changed object is never served from them.
    pub keep_cache: bool,
}

/// One entry of a directory listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    /// Inode number.
    pub ino: u64,
    /// Name within the directory.
    pub name: String,
    /// File or directory.
    pub kind: Kind,
}

/// The file system over one store prefix.
#[derive(Debug)]
pub struct Fs {
    store: Store,
    config: FsConfig,
    inodes: Arc<Mutex<InodeTable>>,
    reader: Arc<Reader>,
    journal: OnceLock<Arc<Journal>>,
    files: Mutex<HashMap<u64, Arc<tokio::sync::Mutex<OpenFile>>>>,
    dirs: Mutex<HashMap<u64, Vec<DirEntry>>>,
    next_handle: AtomicU64,
    /// Listings a clean unmount saved and not yet taken into the table, by directory key.
    saved_listings: Mutex<HashMap<String, listings::SavedListing>>,
    /// Per file, the version whose pages the kernel may hold from an earlier open: a new open of the same
    /// version lets the kernel keep them (a warm re-read never reaches the mount); any other open drops them.
    page_cache: Mutex<HashMap<u64, String>>,
    /// The table's change count when the listing cache was last written.
    listings_saved_at: AtomicU64,
    /// Held while the listing cache is written; `true` once the clean (final) copy is written, after which a
    /// periodic snapshot must not replace it.
    listings_closed: Mutex<bool>,
    /// Pinned paths (see `fs/pin.rs`).
    pins: pin::Pins,
    /// Where directory renames under way are recorded (see `fs/rename.rs`).
    renames_dir: OnceLock<std::path::PathBuf>,
}

#[derive(Debug)]
struct OpenFile {
    ino: u64,
    version: FileVersion,
    state: ReadState,
    /// The journal entry this handle writes to (a handle opened for writing).
    staged: Option<u64>,
}

impl Fs {
    /// A file system over `store` below `config.prefix`, caching blocks in `cache`.
    pub fn new(store: Store, cache: Arc<dyn BlockCache>, config: FsConfig) -> Result<Self> {
        if config.block_size == 0 || config.memory_budget < 2 * config.block_size {
            return Err(Error::Config(format!(
                "the memory budget ({} bytes) must hold at least two blocks of {} bytes",
                config.memory_budget, config.block_size
            )));
        }
        let reader = Arc::new(Reader::new(
            store.clone(),
            cache,
            config.block_size,
            config.memory_budget,
            config.request_timeout,
        ));
        Ok(Self {
            inodes: Arc::new(Mutex::new(InodeTable::new(config.prefix.clone()))),
            journal: OnceLock::new(),
            renames_dir: OnceLock::new(),
            store,
            config,
            reader,
            files: Mutex::new(HashMap::new()),
            dirs: Mutex::new(HashMap::new()),
            next_handle: AtomicU64::new(1),
            saved_listings: Mutex::new(HashMap::new()),
            page_cache: Mutex::new(HashMap::new()),
            listings_saved_at: AtomicU64::new(0),
            listings_closed: Mutex::new(false),
            pins: pin::Pins::default(),
        })
    }

    /// The settings in force.
    pub fn config(&self) -> &FsConfig {
        &self.config
    }

    /// How full the block cache is.
    pub fn cache_usage(&self) -> CacheUsage {
        self.reader.cache().usage()
    }

    /// Writes the cache index (at unmount).
    pub fn persist(&self) -> Result<()> {
        self.reader.cache().persist()
    }

    /// Reads the listing cache a clean unmount left in `cache_dir` (see `fs/listings.rs`).
    pub fn load_listings(&self, cache_dir: &std::path::Path) {
        let saved = listings::load(cache_dir);
        tracing::info!(directories = saved.len(), "listing cache loaded");
        *self
            .saved_listings
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = saved;
    }

    /// Writes the listing cache to `cache_dir` if a listing changed since the last write (always when
    /// `clean`, at unmount). The saved listings not yet used are kept while younger than the TTL.
    pub fn save_listings(&self, cache_dir: &std::path::Path, clean: bool) -> Result<()> {
        let mut closed = self
            .listings_closed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if *closed {
            return Ok(());
        }
        let (changes, mut snapshot) = {
            let table = self.table();
            let changes = table.changes();
            if !clean && changes == self.listings_saved_at.load(Ordering::Relaxed) {
                return Ok(());
            }
            (changes, table.snapshot())
        };
        {
            let saved = self
                .saved_listings
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let taken: std::collections::HashSet<&str> = snapshot.iter().map(|l| l.key.as_str()).collect();
            let kept: Vec<listings::SavedListing> = saved
                .values()
                .filter(|l| {
                    !taken.contains(l.key.as_str())
                        && listings::fresh_instant(l.fetched_ms, self.config.metadata_ttl).is_some()
                })
                .cloned()
                .collect();
            snapshot.extend(kept);
        }
        listings::save(cache_dir, snapshot, clean)?;
        self.listings_saved_at.store(changes, Ordering::Relaxed);
        *closed = clean;
        Ok(())
    }

    /// Opens the write journal in `cache_dir` and starts uploading what it holds (also on a read-only mount:
    /// what an earlier mount promised is still delivered). Call inside the runtime.
    pub fn start_journal(&self, cache_dir: &std::path::Path) -> Result<()> {
        let inodes = Arc::clone(&self.inodes);
        let on_uploaded = Box::new(move |key: &StorageKey| {
            inodes
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .uploaded(key);
        });
        let journal = Journal::start(
            cache_dir,
            self.store.clone(),
            self.config.dirty_budget,
            self.config.request_timeout,
            self.config.upload_delay,
            on_uploaded,
        )?;
        let _ = self.journal.set(journal);
        Ok(())
    }

    /// Bytes written and not yet in the store, and how many files they are.
    pub fn dirty(&self) -> (u64, u64) {
        self.journal.get().map_or((0, 0), |j| j.dirty())
    }

    /// Waits until every write is in the store (or the timeout passes).
    pub async fn flush_all(&self, timeout: Duration) -> Result<()> {
        match self.journal.get() {
            Some(journal) => journal.flush(None, timeout).await,
            None => Ok(()),
        }
    }

    /// Refuses a change on a read-only mount (EROFS).
    pub fn check_writable(&self, _what: &'static str) -> Result<()> {
        if self.config.read_only {
            Err(Error::ReadOnly)
        } else {
            Ok(())
        }
    }

    fn journal(&self) -> Result<&Arc<Journal>> {
        self.journal.get().ok_or(Error::Unsupported {
            what: "writes before the journal is started",
        })
    }

    fn table(&self) -> std::sync::MutexGuard<'_, InodeTable> {
        self.inodes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn attr_of(&self, ino: u64, inode: &inode::Inode) -> Attr {
        let staged = match (&inode.key, self.journal.get()) {
            (Some(key), Some(journal)) if inode.kind == Kind::File => journal.find_with_mtime(key),
            _ => None,
        };
        let writable = if self.config.read_only { 0 } else { 0o200 };
        let perm = match inode.kind {
            Kind::Directory => 0o555 | writable,
            Kind::File => 0o444 | writable,
        };
        Attr {
            ino,
            kind: inode.kind,
            size: staged.map_or(inode.size, |(size, _)| size),
            mtime: staged
                .and_then(|(_, mtime)| mtime)
                .map_or(inode.mtime, SystemTime::from),
            perm,
            uid: self.config.uid,
            gid: self.config.gid,
        }
    }

    async fn timed<T>(
        &self,
        what: &'static str,
        future: impl Future<Output = storage::Result<T>>,
    ) -> Result<T> {
        match tokio::time::timeout(self.config.request_timeout, future).await {
            Ok(result) => Ok(result?),
            Err(_) => Err(Error::Timeout {
                what,
                seconds: self.config.request_timeout.as_secs(),
            }),
        }
    }

    /// Attributes of an inode, asking the store (HEAD) when a file's are older than the TTL.
    pub async fn getattr(&self, ino: u64) -> Result<Attr> {
        let stale_key = {
            let table = self.table();
            let inode = table.get(ino).ok_or_else(|| Error::NotFound {
                name: format!("inode {ino}"),
            })?;
            match (&inode.key, inode.kind) {
                (Some(key), Kind::File)
                    if !inode.local
                        && (inode.expired || inode.checked.elapsed() >= self.config.metadata_ttl) =>
                {
                    Some((key.clone(), inode.parent, inode.name.clone()))
                }
                _ => return Ok(self.attr_of(ino, inode)),
            }
        };
        if let Some((key, parent, name)) = stale_key {
            match self.timed("a HEAD", self.store.head_attributes(&key)).await {
                Ok((meta, attributes)) => self.table().update_file_attributes(ino, &meta, attributes),
                Err(Error::Store(storage::Error::NotFound { .. })) => {
                    self.table().remove_name(parent, &name);
                    return Err(Error::NotFound { name });
                }
                Err(e) => return Err(e),
            }
        }
        let table = self.table();
        let inode = table.get(ino).ok_or_else(|| Error::NotFound {
            name: format!("inode {ino}"),
        })?;
        Ok(self.attr_of(ino, inode))
    }

    /// Reads a stored file's mtime and attributes with a HEAD unless they are known for its version (a
    /// listing does not carry them on S3). Directories and files made here have none to read.
    pub(crate) async fn ensure_attributes(&self, ino: u64) -> Result<()> {
        let unknown = self
            .table()
            .get(ino)
            .is_some_and(|i| i.kind == Kind::File && !i.local && i.attributes.is_none());
        if unknown {
            self.store_version(ino).await?;
        }
        Ok(())
    }

    /// Opens a file. The version read is fixed here: attributes older than the TTL are checked with a HEAD
    /// first (close-to-open consistency), and every read of the handle is of that version. A handle opened
    /// for writing stages the file in the journal (its current bytes first, unless `truncate`).
    pub async fn open(&self, ino: u64, write: bool, truncate: bool) -> Result<Opened> {
        if write {
            self.check_writable("opening a file for writing")?;
        }
        let attr = self.getattr(ino).await?;
        let (version, local) = {
            let table = self.table();
            let inode = table.get(ino).ok_or_else(|| Error::NotFound {
                name: format!("inode {ino}"),
            })?;
            if inode.kind == Kind::Directory {
                return Err(Error::IsDirectory {
                    name: inode.name.clone(),
                });
            }
            let key = inode.key.clone().ok_or_else(|| Error::IsDirectory {
                name: inode.name.clone(),
            })?;
            (
                FileVersion {
                    key,
                    version: inode.version.clone(),
                    size: attr.size,
                },
                inode.local,
            )
        };
        let staged = if write {
            Some(self.stage(ino, &version, local, truncate).await?)
        } else {
            None
        };
        // Pages of the store's version, opened for reading, can be trusted by the next open of that same
        // version; a staged file (read from the journal) or a write never is.
        let cacheable = !write
            && !version.version.is_empty()
            && self.journal.get().is_none_or(|j| j.find(&version.key).is_none());
        let keep_cache = {
            let mut pages = self
                .page_cache
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let keep = cacheable && pages.get(&ino) == Some(&version.version);
            if cacheable {
                pages.insert(ino, version.version.clone());
            } else {
                pages.remove(&ino);
            }
            keep
        };
        let handle = self.next_handle.fetch_add(1, Ordering::Relaxed);
        let file = OpenFile {
            ino,
            version,
            state: ReadState::default(),
            staged,
        };
        self.files
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(handle, Arc::new(tokio::sync::Mutex::new(file)));
        Ok(Opened { handle, keep_cache })
    }

    /// Reads from an open file: its staged bytes when it is being written, else the store's version.
    pub async fn read(&self, handle: u64, offset: u64, size: u32) -> Result<Bytes> {
        let file = self.handle(handle)?;
        let mut file = file.lock().await;
        if let Some(journal) = self.journal.get()
            && let Some((id, _)) = journal.find(&file.version.key)
        {
            match journal.read(id, offset, size) {
                Ok(bytes) => return Ok(Bytes::from(bytes)),
                // Retired by its upload between finding and reading: the store has it now.
                Err(Error::CacheIo(e)) if e.kind() == std::io::ErrorKind::NotFound => {
                    file.version.version.clear();
                }
                Err(e) => return Err(e),
            }
        }
        if file.version.version.is_empty() {
            // Opened while the file was only in the journal; its upload has retired it since.
            file.version = self.store_version(file.ino).await?;
        }
        // The handle is held only to record the read: the kernel sends a sequential reader's requests in
        // parallel (read-ahead), and they must not wait for each other's GETs.
        let window = self.reader.advance(&mut file.state, offset, size);
        let version = file.version.clone();
        drop(file);
        self.reader.read(&version, window, offset, size).await
    }

    /// The version of `ino` in the store now (a HEAD, whatever the TTL), recorded in the table.
    async fn store_version(&self, ino: u64) -> Result<FileVersion> {
        let key = self
            .table()
            .get(ino)
            .and_then(|i| i.key.clone())
            .ok_or_else(|| Error::NotFound {
                name: format!("inode {ino}"),
            })?;
        let (meta, attributes) = self.timed("a HEAD", self.store.head_attributes(&key)).await?;
        self.table().update_file_attributes(ino, &meta, attributes);
        Ok(FileVersion {
            key,
            version: inode::version_of(&meta),
            size: meta.size,
        })
    }

    fn handle(&self, handle: u64) -> Result<Arc<tokio::sync::Mutex<OpenFile>>> {
        self.files
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&handle)
            .cloned()
            .ok_or(Error::BadHandle { handle })
    }

    /// Closes a file handle; a written file is made durable first (see [`Fs::flush`]).
    pub async fn release(&self, handle: u64) -> Result<()> {
        let result = self.flush(handle).await;
        let file = self
            .files
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&handle);
        if let Some(file) = file
            && let Some(id) = file.lock().await.staged
            && let Some(journal) = self.journal.get()
        {
            journal.release(id);
        }
        result
    }

    /// When the metadata of `ino` was last confirmed (for tests and `status`).
    pub fn checked_at(&self, ino: u64) -> Option<Instant> {
        self.table().get(ino).map(|i| i.checked)
    }
}
