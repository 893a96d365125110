//! The write journal: written data staged in the cache directory, made durable before `close`/`fsync`
//! return, then uploaded in the background with its state on disk, so `kill -9` or a power cut loses nothing
//! that `close` or `fsync` returned.
//!
//! Layout: `journal/<id>.data` (the whole file as written) and `journal/<id>.meta` (key and the version the
//! file was based on), the meta written atomically (temporary file, fsync, rename, directory fsync) only when
//! the data is fsynced: a `.meta` on disk means "this is promised". A start resumes every promised entry
//! (the upload restarts from the staged file; a multipart upload the crash left open is never completed and
//! expires by the bucket's lifecycle rule). A `.data` without `.meta` was never promised and is removed.
//!
//! Dirty bytes have a budget of their own; a write that would pass it waits for uploads (backpressure) up to
//! the request timeout and then fails with ENOSPC. Staged data is never evicted.
//!
//! Commits are conditional: when the object changed since the file was read (or appeared since it was
//! created), the local version goes to `<name>.conflict-<time>` and the store's version is kept — never a
//! silent overwrite. A file of one part (up to `storage::part_size`, 8 MiB or more) is written with one
//! conditional PUT (`If-Match` the version read, `If-None-Match: *` for a new file), so the store decides and
//! no racing writer slips through. A larger file, or a backend without compare-and-swap (the local file
//! system), is checked with a HEAD before the upload: a writer racing between the two is not detected, since
//! `object_store` offers no conditional multipart completion.
//!
//! After a crash an upload restarts from the staged file (the journal keeps the whole file, so nothing is
//! lost); the multipart upload the crash interrupted cannot be aborted from here (`object_store` neither
//! exposes the upload id nor lists uploads), so its parts wait for the bucket's lifecycle rule
//! (`AbortIncompleteMultipartUpload`, which `deploy/` documents).

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use storage::{PutMode, PutOptions, StorageKey, Store};
use tokio::sync::{Notify, mpsc};

use crate::error::{Error, Result};

/// One staged file.
#[derive(Debug, Clone)]
struct Staged {
    key: StorageKey,
    /// The store version the file started from (`None`: a new file).
    base_version: Option<String>,
    size: u64,
    /// Bumped by every change; an upload only retires the entry if nothing changed while it ran.
    generation: u64,
    /// The generation last uploaded (0: none yet).
    uploaded_generation: u64,
    /// Open handles writing to it: an entry is retired only when none is left.
    writers: usize,
    uploading: bool,
    /// Where a conflicting version goes, chosen once so a retried upload does not make a second copy.
    conflict: Option<StorageKey>,
}

/// The journal of one mount.
#[derive(Debug)]
pub(crate) struct Journal {
    dir: PathBuf,
    store: Store,
    state: Mutex<State>,
    changed: Notify,
    queue: mpsc::UnboundedSender<u64>,
    dirty_budget: u64,
    timeout: Duration,
    upload_delay: Duration,
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
    /// promised entry.
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
        let mut state = State::default();
        for entry in fs::read_dir(&dir)? {
            let path = entry?.path();
            let Some(stem) = path
                .file_stem()
                .and_then(|s| s.to_str())
                .and_then(|s| s.parse::<u64>().ok())
            else {
                continue;
            };
            state.next_id = state.next_id.max(stem + 1);
            if path.extension().is_some_and(|e| e == "meta") {
                let text = fs::read_to_string(&path)?;
                let mut lines = text.lines();
                let key = lines.next().and_then(|k| StorageKey::parse(k).ok());
                let base = lines.next().filter(|b| !b.is_empty()).map(str::to_owned);
                match key {
                    Some(key) => {
                        let size = fs::metadata(dir.join(format!("{stem}.data")))?.len();
                        state.entries.insert(
                            stem,
                            Staged {
                                key,
                                base_version: base,
                                size,
                                generation: 1,
                                uploaded_generation: 0,
                                writers: 0,
                                uploading: false,
                                conflict: None,
                            },
                        );
                    }
                    None => tracing::warn!(path = %path.display(), "skipping an unreadable journal entry"),
                }
            }
        }
        // Data never promised (no meta) is not kept.
        for entry in fs::read_dir(&dir)? {
            let path = entry?.path();
            let promised = path
                .file_stem()
                .and_then(|s| s.to_str())
                .and_then(|s| s.parse::<u64>().ok())
                .is_some_and(|id| state.entries.contains_key(&id));
            if !promised {
                fs::remove_file(&path)?;
            }
        }
        let resumed: Vec<u64> = state.entries.keys().copied().collect();
        let (queue, receiver) = mpsc::unbounded_channel();
        let journal = Arc::new(Journal {
            dir,
            store,
            state: Mutex::new(state),
            changed: Notify::new(),
            queue,
            dirty_budget,
            timeout,
            upload_delay,
        });
        for id in resumed {
            tracing::info!(id, "resuming an upload from the journal");
            let _ = journal.queue.send(id);
        }
        tokio::spawn(uploader(Arc::clone(&journal), receiver, on_uploaded));
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

    /// The staged entry of `key`, if any.
    pub(crate) fn find(&self, key: &StorageKey) -> Option<(u64, u64)> {
        self.lock()
            .entries
            .iter()
            .find(|(_, s)| &s.key == key)
            .map(|(id, s)| (*id, s.size))
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

    /// Starts staging `key` with `initial` bytes (the current content, or nothing).
    pub(crate) async fn create(
        &self,
        key: StorageKey,
        base_version: Option<String>,
        initial: &[u8],
    ) -> Result<u64> {
        self.wait_for_room(initial.len() as u64).await?;
        let id = {
            let mut state = self.lock();
            let id = state.next_id;
            state.next_id += 1;
            state.entries.insert(
                id,
                Staged {
                    key,
                    base_version,
                    size: initial.len() as u64,
                    generation: 1,
                    uploaded_generation: 0,
                    writers: 0,
                    uploading: false,
                    conflict: None,
                },
            );
            id
        };
        fs::write(self.data_path(id), initial)?;
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
        tracing::debug!(%key, "acquire");
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

    /// Writes into a staged file.
    pub(crate) async fn write(&self, id: u64, offset: u64, data: &[u8]) -> Result<()> {
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
        let file = OpenOptions::new().write(true).open(self.data_path(id))?;
        file.write_all_at(data, offset)?;
        let mut state = self.lock();
        if let Some(staged) = state.entries.get_mut(&id) {
            staged.size = staged.size.max(offset + data.len() as u64);
            staged.generation += 1;
        }
        Ok(())
    }

    /// Sets a staged file's size.
    pub(crate) fn truncate(&self, id: u64, size: u64) -> Result<()> {
        tracing::debug!(id, size, "truncate");
        OpenOptions::new()
            .write(true)
            .open(self.data_path(id))?
            .set_len(size)?;
        let mut state = self.lock();
        if let Some(staged) = state.entries.get_mut(&id) {
            staged.size = size;
            staged.generation += 1;
        }
        Ok(())
    }

    /// Reads from a staged file.
    pub(crate) fn read(&self, id: u64, offset: u64, size: u32) -> Result<Vec<u8>> {
        let file = File::open(self.data_path(id))?;
        let mut buffer = vec![0u8; size as usize];
        let mut filled = 0;
        while filled < buffer.len() {
            let n = file.read_at(&mut buffer[filled..], offset + filled as u64)?;
            if n == 0 {
                break;
            }
            filled += n;
        }
        buffer.truncate(filled);
        Ok(buffer)
    }

    /// Makes the staged file durable (data fsynced, then the meta atomically) and queues its upload.
    pub(crate) fn seal(&self, id: u64) -> Result<()> {
        tracing::debug!(id, "seal");
        let (key, base) = {
            let state = self.lock();
            let staged = state.entries.get(&id).ok_or(Error::BadHandle { handle: id })?;
            (staged.key.clone(), staged.base_version.clone())
        };
        File::open(self.data_path(id))?.sync_all()?;
        let meta = self.dir.join(format!("{id}.meta"));
        // Two seals of one entry may run at once (close and fsync): each writes its own temporary file.
        static SEALS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = SEALS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let temporary = self.dir.join(format!("{id}.meta.tmp{n}"));
        let mut file = File::create(&temporary)?;
        std::io::Write::write_all(
            &mut file,
            format!("{key}\n{}\n", base.unwrap_or_default()).as_bytes(),
        )?;
        file.sync_all()?;
        fs::rename(&temporary, &meta)?;
        File::open(&self.dir)?.sync_all()?;
        let _ = self.queue.send(id);
        Ok(())
    }

    /// Drops every staged entry of `key` (the file is unlinked), first waiting out an upload under way so it
    /// cannot recreate the object after the caller deletes it.
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
                        let _ = fs::remove_file(self.dir.join(format!("{id}.meta")));
                        let _ = fs::remove_file(self.data_path(id));
                    }
                    self.changed.notify_waiters();
                    return;
                }
                None => notified.await,
            }
        }
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

    /// Uploads one entry (conflict check, streamed multipart put) unless its current generation is already in
    /// the store, then retires it when nothing changed meanwhile and no handle writes to it.
    async fn upload(&self, id: u64) -> Result<Option<StorageKey>> {
        let (key, base, generation, conflict, needed) = {
            let mut state = self.lock();
            let Some(staged) = state.entries.get_mut(&id) else {
                return Ok(None);
            };
            if staged.uploading {
                return Ok(None);
            }
            let needed = staged.generation != staged.uploaded_generation;
            staged.uploading = needed;
            (
                staged.key.clone(),
                staged.base_version.clone(),
                staged.generation,
                staged.conflict.clone(),
                needed,
            )
        };
        let mut result = Ok(());
        if needed {
            result = self.upload_as(&key, base.as_deref(), conflict.clone(), id).await;
            if result.is_ok() && conflict.is_none() {
                // The next upload of this entry (it may change again) builds on the version just written, so
                // that version is not mistaken for someone else's change.
                match self.store.head(&key).await {
                    Ok(meta) => {
                        if let Some(staged) = self.lock().entries.get_mut(&id) {
                            staged.base_version = Some(crate::fs::inode::version_of(&meta));
                        }
                    }
                    Err(e) => result = Err(e.into()),
                }
            }
        }
        let mut state = self.lock();
        let retire = match state.entries.get_mut(&id) {
            Some(staged) => {
                staged.uploading = false;
                if result.is_ok() {
                    staged.uploaded_generation = generation;
                }
                result.is_ok() && staged.generation == generation && staged.writers == 0
            }
            None => false,
        };
        if retire {
            tracing::debug!(id, %key, "retiring a journal entry");
            state.entries.remove(&id);
            let _ = fs::remove_file(self.dir.join(format!("{id}.meta")));
            let _ = fs::remove_file(self.data_path(id));
        }
        drop(state);
        self.changed.notify_waiters();
        result.map(|()| retire.then_some(key))
    }

    async fn upload_as(
        &self,
        key: &StorageKey,
        base: Option<&str>,
        conflict: Option<StorageKey>,
        id: u64,
    ) -> Result<()> {
        tokio::time::sleep(self.upload_delay).await;
        if let Some(conflict) = conflict {
            return self.put_staged(id, &conflict, PutMode::Overwrite).await;
        }
        let size = tokio::fs::metadata(self.data_path(id)).await?.len();
        if size <= storage::part_size(Some(size)) as u64 {
            // One request: the store itself checks the version (If-Match, or If-None-Match for a new file),
            // so a writer racing in between is caught too.
            let mode = match base {
                Some(base) => PutMode::IfMatch(base.to_owned()),
                None => PutMode::Create,
            };
            match self.put_staged(id, key, mode).await {
                Ok(()) => return Ok(()),
                Err(Error::Store(
                    storage::Error::PreconditionFailed { .. } | storage::Error::AlreadyExists { .. },
                )) => {
                    return self.keep_aside(key, id).await;
                }
                // No compare-and-swap on this backend (the local file system), or the object is gone: the
                // HEAD check below decides.
                Err(Error::Store(storage::Error::Unsupported { .. } | storage::Error::NotFound { .. })) => {}
                Err(e) => return Err(e),
            }
        }
        match self.store.head(key).await {
            Ok(meta) if Some(crate::fs::inode::version_of(&meta).as_str()) != base => {
                self.keep_aside(key, id).await
            }
            Ok(_) | Err(storage::Error::NotFound { .. }) => {
                self.put_staged(id, key, PutMode::Overwrite).await
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The object changed in the store since the file was read: ours goes to a conflict name.
    async fn keep_aside(&self, key: &StorageKey, id: u64) -> Result<()> {
        let conflict = conflict_key(key)?;
        tracing::warn!(%key, %conflict, "the object changed in the store; keeping the local version aside");
        if let Some(staged) = self.lock().entries.get_mut(&id) {
            staged.conflict = Some(conflict.clone());
        }
        self.put_staged(id, &conflict, PutMode::Overwrite).await
    }

    /// Streams the staged file of `id` to `target`.
    async fn put_staged(&self, id: u64, target: &StorageKey, mode: PutMode) -> Result<()> {
        let file = tokio::fs::File::open(self.data_path(id)).await?;
        let size = file.metadata().await?.len();
        let body = tokio_util::io::ReaderStream::with_capacity(file, 1 << 20);
        let options = PutOptions {
            size_hint: Some(size),
            mode,
            ..PutOptions::default()
        };
        self.store.put_stream(target, body, &options).await?;
        Ok(())
    }
}

/// `dir/name.conflict-<unix seconds>`.
fn conflict_key(key: &StorageKey) -> Result<StorageKey> {
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    Ok(StorageKey::parse(format!("{key}.conflict-{seconds}"))?)
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
