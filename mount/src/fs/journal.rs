//! The write journal: written data staged in the cache directory, made durable before `close`/`fsync`
//! return, then uploaded in the background with its state on disk, so `kill -9` or a power cut loses nothing
//! that `close` or `fsync` returned.
//!
//! Layout: `journal/<id>.data` (the whole file as written, see `journal/staged.rs`), `journal/<id>.meta` (key
//! and the version the file was based on), written atomically (temporary file, fsync, rename, directory
//! fsync) only when the data is fsynced: a `.meta` on disk means "this is promised"; and `journal/<id>.upload`
//! (a multipart upload under way: its id and finished parts, see `journal/upload.rs`). A start resumes every
//! promised entry, and its multipart upload with it; an upload whose entry was never promised is aborted. A
//! `.data` without `.meta` was never promised and is removed.
//!
//! Dirty bytes have a budget of their own; a write that would pass it waits for uploads (backpressure) up to
//! the request timeout and then fails with ENOSPC. Staged data is never evicted.

mod early;
mod staged;
mod upload;

use std::collections::HashMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use storage::{ObjectAttributes, StorageKey, Store};
use tokio::sync::{Notify, mpsc};

use crate::cache::buffer::BufferPool;
use crate::error::{Error, Result};
use early::Early;
use staged::StagedFile;

/// Gathering buffers kept for reuse (one per file being written at once, usually one or two).
const GATHER_BUFFERS_KEPT: usize = 4;

/// One staged file.
#[derive(Debug)]
struct Staged {
    key: StorageKey,
    /// The store version the file started from (`None`: a new file).
    base_version: Option<String>,
    size: u64,
    /// Bumped by every change; an upload only retires the entry if nothing changed while it ran.
    generation: u64,
    /// The generation last uploaded (0: none yet).
    uploaded_generation: u64,
    /// The generation last made durable by `close`/`fsync` (0: never: not promised).
    sealed_generation: u64,
    /// Open handles writing to it: an entry is retired only when none is left.
    writers: usize,
    uploading: bool,
    /// Where a conflicting version goes, chosen once so a retried upload does not make a second copy.
    conflict: Option<StorageKey>,
    /// The data file, shared by the handles writing it and the uploader.
    file: Arc<Mutex<StagedFile>>,
    /// The mtime and extended attributes the upload stores with the object: the stored object's when the
    /// file was staged from it, the mtime moved by every write and by `utimes`.
    attributes: ObjectAttributes,
    /// Whether `utimes` or an extended attribute changed the attributes (not only writes).
    attributes_set: bool,
    /// Its parts sent while it is written (see `journal/early.rs`).
    early: Early,
}

impl Staged {
    /// Whether another upload is due after one ends: a promise not in the store yet, or changes of a file no
    /// longer open for writing (an open one is uploaded at its next `close`/`fsync`).
    fn upload_due(&self) -> bool {
        self.generation != self.uploaded_generation
            && (self.writers == 0 || self.sealed_generation > self.uploaded_generation)
    }
}

/// The journal of one mount.
#[derive(Debug)]
pub(crate) struct Journal {
    dir: PathBuf,
    store: Store,
    state: Mutex<State>,
    changed: Notify,
    queue: mpsc::UnboundedSender<u64>,
    /// Entries with parts ready to be sent while they are written (`None`: the store has no multipart
    /// uploads).
    early_queue: Option<mpsc::UnboundedSender<u64>>,
    dirty_budget: u64,
    timeout: Duration,
    upload_delay: Duration,
    /// Where staged files write their full buffers in the background.
    runtime: tokio::runtime::Handle,
    /// Buffers of gathered writes and of parts being sent, reused: a freed multi-MiB buffer lingers in the
    /// allocator's per-thread arenas, and a mount that had read and then written a gigabyte held 130 MB more
    /// than it used.
    gather_pool: Arc<BufferPool>,
    part_pool: Arc<BufferPool>,
}

#[derive(Debug, Default)]
struct State {
    entries: HashMap<u64, Staged>,
    next_id: u64,
}

/// What a finished upload reports to the file system (so the inode is revalidated against the store).
pub(crate) type OnUploaded = Box<dyn Fn(&StorageKey) + Send + Sync>;

impl Journal {
    /// Opens the journal under `cache_dir` and starts the uploader on the current runtime, resuming every
    /// promised entry and aborting the multipart uploads of entries that were never promised.
    pub(crate) fn start(
        cache_dir: &Path,
        store: Store,
        dirty_budget: u64,
        timeout: Duration,
        upload_delay: Duration,
        on_uploaded: OnUploaded,
    ) -> Result<Arc<Journal>> {
        let dir = cache_dir.join("journal");
        fs::create_dir_all(&dir)?;
        let gather_pool = BufferPool::new(staged::GATHER, GATHER_BUFFERS_KEPT);
        let mut state = State::default();
        for entry in fs::read_dir(&dir)? {
            let path = entry?.path();
            let Some(id) = entry_id(&path) else { continue };
            state.next_id = state.next_id.max(id + 1);
            if path.extension().is_some_and(|e| e == "meta") {
                match read_meta(&path) {
                    Some((key, base, attributes)) => {
                        let data = dir.join(format!("{id}.data"));
                        let size = fs::metadata(&data)?.len();
                        state.entries.insert(
                            id,
                            Staged {
                                key,
                                base_version: base,
                                size,
                                generation: 1,
                                uploaded_generation: 0,
                                sealed_generation: 1,
                                writers: 0,
                                uploading: false,
                                conflict: None,
                                file: Arc::new(Mutex::new(StagedFile::open(
                                    &data,
                                    tokio::runtime::Handle::current(),
                                    Arc::clone(&gather_pool),
                                )?)),
                                attributes,
                                attributes_set: false,
                                early: Early::off(),
                            },
                        );
                    }
                    None => tracing::warn!(path = %path.display(), "skipping an unreadable journal entry"),
                }
            }
        }
        let resumed: Vec<u64> = state.entries.keys().copied().collect();
        let (queue, receiver) = mpsc::unbounded_channel();
        let (early_queue, early_receiver) = mpsc::unbounded_channel();
        let early_queue = store.supports_multipart().then_some(early_queue);
        let journal = Arc::new(Journal {
            dir,
            store,
            state: Mutex::new(state),
            changed: Notify::new(),
            queue,
            early_queue,
            dirty_budget,
            timeout,
            upload_delay,
            runtime: tokio::runtime::Handle::current(),
            gather_pool,
            part_pool: BufferPool::new(storage::MIN_PART_SIZE, upload::PARTS_IN_FLIGHT + 1),
        });
        // Data never promised (no meta) is not kept; its multipart upload, if one was started, is aborted.
        for entry in fs::read_dir(&journal.dir)? {
            let path = entry?.path();
            let promised = entry_id(&path).is_some_and(|id| journal.lock().entries.contains_key(&id))
                && path
                    .extension()
                    .is_some_and(|e| e == "meta" || e == "data" || e == "upload");
            if !promised {
                if path.extension().is_some_and(|e| e == "upload") {
                    journal.abort_saved_upload(&path);
                }
                fs::remove_file(&path)?;
            }
        }
        for id in resumed {
            tracing::info!(id, "resuming an upload from the journal");
            let _ = journal.queue.send(id);
        }
        tokio::spawn(uploader(Arc::clone(&journal), receiver, on_uploaded));
        tokio::spawn(early_sender(Arc::clone(&journal), early_receiver));
        Ok(journal)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn data_path(&self, id: u64) -> PathBuf {
        self.dir.join(format!("{id}.data"))
    }

    fn file(&self, id: u64) -> Result<Arc<Mutex<StagedFile>>> {
        self.lock()
            .entries
            .get(&id)
            .map(|s| Arc::clone(&s.file))
            .ok_or(Error::BadHandle { handle: id })
    }

    /// The staged entry of `key`, if any, and its size.
    pub(crate) fn find(&self, key: &StorageKey) -> Option<(u64, u64)> {
        self.lock()
            .entries
            .iter()
            .find(|(_, s)| &s.key == key)
            .map(|(id, s)| (*id, s.size))
    }

    /// The size and mtime of `key`'s staged entry, if any.
    pub(crate) fn find_with_mtime(
        &self,
        key: &StorageKey,
    ) -> Option<(u64, Option<chrono::DateTime<chrono::Utc>>)> {
        self.lock()
            .entries
            .values()
            .find(|s| &s.key == key)
            .map(|s| (s.size, s.attributes.mtime))
    }

    /// The keys staged and not yet retired.
    pub(crate) fn keys(&self) -> Vec<StorageKey> {
        self.lock().entries.values().map(|s| s.key.clone()).collect()
    }

    /// Bytes staged and not yet in the store, and how many files.
    pub(crate) fn dirty(&self) -> (u64, u64) {
        let state = self.lock();
        (
            state.entries.values().map(|s| s.size).sum(),
            state.entries.len() as u64,
        )
    }

    /// Starts staging `key`, empty, to be stored with `attributes`.
    pub(crate) async fn create(
        &self,
        key: StorageKey,
        base_version: Option<String>,
        attributes: ObjectAttributes,
    ) -> Result<u64> {
        let id = {
            let mut state = self.lock();
            let id = state.next_id;
            state.next_id += 1;
            id
        };
        let file = StagedFile::create(
            &self.data_path(id),
            self.runtime.clone(),
            Arc::clone(&self.gather_pool),
        )?;
        self.lock().entries.insert(
            id,
            Staged {
                key,
                base_version,
                size: 0,
                generation: 1,
                uploaded_generation: 0,
                sealed_generation: 0,
                writers: 0,
                uploading: false,
                conflict: None,
                file: Arc::new(Mutex::new(file)),
                attributes,
                attributes_set: false,
                early: Early::default(),
            },
        );
        Ok(id)
    }

    /// A handle starts writing to the entry: it is not retired while the handle is open.
    pub(crate) fn acquire(&self, id: u64) {
        if let Some(staged) = self.lock().entries.get_mut(&id) {
            staged.writers += 1;
        }
    }

    /// The staged entry of `key`, taken for a writing handle in the same step (so it cannot be retired
    /// between finding and taking it).
    pub(crate) fn find_and_acquire(&self, key: &StorageKey) -> Option<u64> {
        let mut state = self.lock();
        let (id, staged) = state.entries.iter_mut().find(|(_, s)| &s.key == key)?;
        staged.writers += 1;
        Some(*id)
    }

    /// A writing handle closed (after [`Journal::seal`]); the uploader retires the entry once it is in the
    /// store and no handle writes to it.
    pub(crate) fn release(&self, id: u64) {
        if let Some(staged) = self.lock().entries.get_mut(&id) {
            staged.writers = staged.writers.saturating_sub(1);
        }
        let _ = self.queue.send(id);
    }

    /// Waits until `growth` more dirty bytes fit, or fails with ENOSPC after the timeout.
    async fn wait_for_room(&self, growth: u64) -> Result<()> {
        let deadline = tokio::time::Instant::now() + self.timeout;
        loop {
            let notified = self.changed.notified();
            if self.dirty().0 + growth <= self.dirty_budget {
                return Ok(());
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Err(Error::NoSpace);
            }
        }
    }

    /// Writes into a staged file; returns its size after the write.
    pub(crate) async fn write(&self, id: u64, offset: u64, data: &[u8]) -> Result<u64> {
        let size = self
            .lock()
            .entries
            .get(&id)
            .map(|s| s.size)
            .ok_or(Error::BadHandle { handle: id })?;
        let growth = (offset + data.len() as u64).saturating_sub(size);
        if growth > 0 {
            self.wait_for_room(growth).await?;
        }
        self.write_now(id, offset, data)
    }

    /// Writes into a staged file now if that needs no waiting for room in the dirty budget (`None`: it
    /// does; call [`Journal::write`]). For the FUSE session thread, which answers a write in place rather
    /// than waking another thread for it.
    pub(crate) fn try_write(&self, id: u64, offset: u64, data: &[u8]) -> Option<Result<u64>> {
        let (size, dirty) = {
            let state = self.lock();
            let size = state.entries.get(&id)?.size;
            (size, state.entries.values().map(|s| s.size).sum::<u64>())
        };
        let growth = (offset + data.len() as u64).saturating_sub(size);
        if growth > 0 && dirty + growth > self.dirty_budget {
            return None;
        }
        Some(self.write_now(id, offset, data))
    }

    fn write_now(&self, id: u64, offset: u64, data: &[u8]) -> Result<u64> {
        let file = self.file(id)?;
        lock_file(&file).write(offset, data)?;
        let mut state = self.lock();
        let staged = state
            .entries
            .get_mut(&id)
            .ok_or(Error::BadHandle { handle: id })?;
        staged.size = staged.size.max(offset + data.len() as u64);
        staged.generation += 1;
        staged.attributes.mtime = Some(chrono::Utc::now());
        staged
            .early
            .note_write(offset, data.len() as u64, staged.generation);
        if let Some(early) = &self.early_queue
            && !staged.uploading
            && staged.conflict.is_none()
            && staged.early.due(staged.size)
        {
            staged.uploading = true;
            let _ = early.send(id);
        }
        Ok(staged.size)
    }

    /// Sets a staged file's size.
    pub(crate) fn truncate(&self, id: u64, size: u64) -> Result<()> {
        let file = self.file(id)?;
        lock_file(&file).truncate(size)?;
        let mut state = self.lock();
        if let Some(staged) = state.entries.get_mut(&id) {
            staged.size = size;
            staged.generation += 1;
            staged.attributes.mtime = Some(chrono::Utc::now());
            staged.early.note_truncate();
        }
        Ok(())
    }

    /// The attributes a staged file will be stored with.
    pub(crate) fn attributes(&self, id: u64) -> Option<ObjectAttributes> {
        self.lock().entries.get(&id).map(|s| s.attributes.clone())
    }

    /// Changes the attributes a staged file will be stored with (durable at the next [`Journal::seal`]).
    pub(crate) fn set_attributes(&self, id: u64, attributes: ObjectAttributes) -> Result<()> {
        let mut state = self.lock();
        let staged = state
            .entries
            .get_mut(&id)
            .ok_or(Error::BadHandle { handle: id })?;
        staged.attributes = attributes;
        staged.attributes_set = true;
        staged.generation += 1;
        Ok(())
    }

    /// Reads from a staged file.
    pub(crate) fn read(&self, id: u64, offset: u64, size: u32) -> Result<Vec<u8>> {
        // Retired by its upload between finding and reading: "not found", and the caller reads the store.
        let file = self
            .file(id)
            .map_err(|_| Error::CacheIo(std::io::Error::from(std::io::ErrorKind::NotFound)))?;
        Ok(lock_file(&file).read(offset, size)?)
    }

    /// Makes the staged file durable (data fsynced, then the meta atomically) and queues its upload.
    pub(crate) fn seal(&self, id: u64) -> Result<()> {
        let (key, base, generation, file, attributes) = {
            let state = self.lock();
            let staged = state.entries.get(&id).ok_or(Error::BadHandle { handle: id })?;
            (
                staged.key.clone(),
                staged.base_version.clone(),
                staged.generation,
                Arc::clone(&staged.file),
                staged.attributes.clone(),
            )
        };
        lock_file(&file).sync()?;
        let mut meta = format!("{key}\n{}\n", base.unwrap_or_default());
        for (name, value) in attributes.metadata() {
            meta.push_str(&format!("{name} {value}\n"));
        }
        write_atomically(&self.dir, &format!("{id}.meta"), meta.as_bytes())?;
        if let Some(staged) = self.lock().entries.get_mut(&id) {
            staged.sealed_generation = staged.sealed_generation.max(generation);
        }
        let _ = self.queue.send(id);
        Ok(())
    }

    /// Drops every staged entry of `key` (the file is unlinked), first waiting out an upload under way so it
    /// cannot recreate the object after the caller deletes it; a multipart upload left is aborted.
    pub(crate) async fn discard(&self, key: &StorageKey) {
        loop {
            let notified = self.changed.notified();
            let removed = {
                let mut state = self.lock();
                if state.entries.values().any(|s| &s.key == key && s.uploading) {
                    None
                } else {
                    let ids: Vec<u64> = state
                        .entries
                        .iter()
                        .filter(|(_, s)| &s.key == key)
                        .map(|(id, _)| *id)
                        .collect();
                    for id in &ids {
                        state.entries.remove(id);
                    }
                    Some(ids)
                }
            };
            match removed {
                Some(ids) => {
                    for id in ids {
                        self.remove_files(id);
                    }
                    self.changed.notify_waiters();
                    return;
                }
                None => notified.await,
            }
        }
    }

    /// Removes an entry's files, aborting its multipart upload if one is left.
    fn remove_files(&self, id: u64) {
        let upload = self.dir.join(format!("{id}.upload"));
        if upload.exists() {
            self.abort_saved_upload(&upload);
            let _ = fs::remove_file(&upload);
        }
        let _ = fs::remove_file(self.dir.join(format!("{id}.meta")));
        let _ = fs::remove_file(self.data_path(id));
    }

    /// Waits until nothing of `key` (or nothing at all, `None`) is left to upload, up to `timeout`.
    pub(crate) async fn flush(&self, key: Option<&StorageKey>, timeout: Duration) -> Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.changed.notified();
            let pending = {
                let state = self.lock();
                state.entries.values().any(|s| key.is_none_or(|k| &s.key == k))
            };
            if !pending {
                return Ok(());
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Err(Error::Timeout {
                    what: "an upload",
                    seconds: timeout.as_secs(),
                });
            }
        }
    }
}

/// The data file's lock. A panic while holding it leaves the file as the last write left it, which the next
/// write or upload handles like any other state, so a poisoned lock is still usable.
fn lock_file(file: &Mutex<StagedFile>) -> std::sync::MutexGuard<'_, StagedFile> {
    file.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The entry id a journal file belongs to (`<id>.data`, `<id>.meta`, `<id>.upload`); `None` for temporary
/// files and strangers.
fn entry_id(path: &Path) -> Option<u64> {
    path.file_stem()
        .and_then(|s| s.to_str())
        .and_then(|s| s.parse::<u64>().ok())
}

/// The key, base version and attributes a `.meta` promises: the key, the base version, then one line
/// `name value` per metadata entry of the attributes.
fn read_meta(path: &Path) -> Option<(StorageKey, Option<String>, ObjectAttributes)> {
    let text = fs::read_to_string(path).ok()?;
    let mut lines = text.lines();
    let key = StorageKey::parse(lines.next()?).ok()?;
    let base = lines.next().filter(|b| !b.is_empty()).map(str::to_owned);
    let attributes = ObjectAttributes::from_metadata(lines.filter_map(|line| line.split_once(' ')));
    Some((key, base, attributes))
}

/// Writes `name` in `dir` so that a crash leaves the old file or the new one, never a torn one: a temporary
/// file (unique, as two seals of one entry may run at once), fsync, rename, directory fsync.
fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let temporary = dir.join(format!("{name}.tmp{n}"));
    let mut file = File::create(&temporary)?;
    std::io::Write::write_all(&mut file, bytes)?;
    file.sync_all()?;
    fs::rename(&temporary, dir.join(name))?;
    File::open(dir)?.sync_all()
}

/// Runs the passes of parts sent while files are written, each on its own task so no file waits for
/// another's.
async fn early_sender(journal: Arc<Journal>, mut queue: mpsc::UnboundedReceiver<u64>) {
    while let Some(id) = queue.recv().await {
        let journal = Arc::clone(&journal);
        tokio::spawn(async move { journal.send_early(id).await });
    }
}

async fn uploader(journal: Arc<Journal>, mut queue: mpsc::UnboundedReceiver<u64>, on_uploaded: OnUploaded) {
    while let Some(id) = queue.recv().await {
        let journal = Arc::clone(&journal);
        match journal.upload(id).await {
            Ok(Some(key)) => on_uploaded(&key),
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(error = %e, id, "upload failed; retrying");
                let retry = journal.queue.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    let _ = retry.send(id);
                });
            }
        }
    }
}
