//! Uploading a journal entry: the conflict check, then one conditional PUT for a file of one part, or a
//! multipart upload whose state is on disk, so a crash resumes it.
//!
//! Commits are conditional: when the object changed since the file was read (or appeared since it was
//! created), the local version goes to `<name>.conflict-<time>` and the store's version is kept — never a
//! silent overwrite. A file of one part (up to `storage::part_size`, 8 MiB or more) is written with one
//! conditional PUT (`If-Match` the version read, `If-None-Match: *` for a new file), so the store decides and
//! no racing writer slips through. A larger file is checked with a HEAD before its upload starts and again
//! right before the upload is completed (`object_store` offers no conditional completion): only a writer
//! racing between that HEAD and the completion goes undetected. The local backend has no compare-and-swap:
//! there the HEAD decides.
//!
//! A multipart upload (S3) is driven part by part (`Store::put_part`): its id is saved in `<id>.upload`
//! (atomically, fsynced) before the first part, and every finished part (index, ETag, CRC-32 of its bytes)
//! after it. The next attempt — a retry, or the next start after a crash — resumes it: a recorded part whose
//! bytes still have that CRC is not sent again; one that changed is sent again under its number (which
//! replaces it). An upload that no longer fits the file (another part size, another target) or whose entry is
//! gone is aborted, never left to a lifecycle rule. Parts are read with direct I/O into aligned buffers and
//! sent as they are: no copy, no hash besides the CRC.

use std::path::Path;

use bytes::Bytes;
use futures::StreamExt as _;
use serde::{Deserialize, Serialize};
use storage::{ObjectAttributes, PutMode, PutOptions, StorageKey};

use super::staged::read_part;
use super::{Journal, lock_file, write_atomically};
use crate::error::{Error, Result};
use crate::fs::inode::version_of;

/// Parts sent at once: with 8 MiB parts, 32 MiB of part buffers per upload.
pub(super) const PARTS_IN_FLIGHT: usize = 4;

/// A multipart upload under way, as saved in `<id>.upload`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct SavedUpload {
    /// Where the parts go: the file's key, or its conflict name.
    pub(super) target: String,
    pub(super) upload_id: String,
    pub(super) part_size: u64,
    /// The parts sent, by index.
    pub(super) parts: Vec<Option<SentPart>>,
    /// The object metadata the upload was created with (`None` in uploads saved before it was recorded).
    #[serde(default)]
    metadata: Option<Vec<(String, String)>>,
}

impl SavedUpload {
    /// A fresh upload of `target` whose object carries `attributes`.
    pub(super) fn new(
        target: &StorageKey,
        upload_id: String,
        part_size: u64,
        attributes: &ObjectAttributes,
    ) -> Self {
        Self {
            target: target.to_string(),
            upload_id,
            part_size,
            parts: Vec::new(),
            metadata: Some(metadata_of(attributes)),
        }
    }

    /// Whether this upload can carry on for a file of `size` bytes to be stored with `attributes`: same
    /// target, parts large enough for it, and the metadata it was created with. An upload made while the
    /// file was written left the mtime out; that is kept unless `utimes` set one (`attributes_set`).
    fn fits(
        &self,
        target: &StorageKey,
        size: u64,
        attributes: &ObjectAttributes,
        attributes_set: bool,
    ) -> bool {
        let parts_fit =
            self.part_size >= storage::MIN_PART_SIZE as u64 && size.div_ceil(self.part_size) <= MAX_PARTS;
        let metadata_fits = match &self.metadata {
            None => true,
            Some(metadata) => {
                let without_mtime = ObjectAttributes {
                    mtime: None,
                    ..attributes.clone()
                };
                *metadata == metadata_of(attributes)
                    || (!attributes_set && *metadata == metadata_of(&without_mtime))
            }
        };
        self.target == target.as_str() && parts_fit && metadata_fits
    }
}

/// S3's limit of parts in one upload.
const MAX_PARTS: u64 = 10_000;

fn metadata_of(attributes: &ObjectAttributes) -> Vec<(String, String)> {
    attributes
        .metadata()
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value))
        .collect()
}

/// A part the store acknowledged: its ETag and the CRC-32 of its bytes.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(super) struct SentPart {
    pub(super) etag: String,
    pub(super) crc32: u32,
}

impl Journal {
    /// Uploads one entry unless its current generation is already in the store, then retires it when nothing
    /// changed meanwhile and no handle writes to it (or queues it again when a promise came in meanwhile).
    pub(super) async fn upload(&self, id: u64) -> Result<Option<StorageKey>> {
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
                            staged.base_version = Some(version_of(&meta));
                        }
                    }
                    Err(e) => result = Err(e.into()),
                }
            }
        }
        let mut state = self.lock();
        let (retire, again) = match state.entries.get_mut(&id) {
            Some(staged) => {
                staged.uploading = false;
                if result.is_ok() {
                    staged.uploaded_generation = generation;
                }
                let retire = result.is_ok() && staged.generation == generation && staged.writers == 0;
                (retire, result.is_ok() && !retire && staged.upload_due())
            }
            None => (false, false),
        };
        if retire {
            tracing::debug!(id, %key, "retiring a journal entry");
            state.entries.remove(&id);
        }
        drop(state);
        if retire {
            self.remove_files(id);
        }
        if again {
            let _ = self.queue.send(id);
        }
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
            return self.put_staged(id, &conflict, PutMode::Overwrite, None).await;
        }
        let size = self.settle(id)?;
        if size <= storage::part_size(Some(size)) as u64 {
            // One request: the store itself checks the version (If-Match, or If-None-Match for a new file),
            // so a writer racing in between is caught too.
            let mode = match base {
                Some(base) => PutMode::IfMatch(base.to_owned()),
                None => PutMode::Create,
            };
            match self.put_staged(id, key, mode, None).await {
                Ok(()) => return Ok(()),
                Err(Error::Store(
                    storage::Error::PreconditionFailed { .. } | storage::Error::AlreadyExists { .. },
                )) => return self.keep_aside(key, id).await,
                // No compare-and-swap on this backend (the local file system), or the object is gone: the
                // HEAD check below decides.
                Err(Error::Store(storage::Error::Unsupported { .. } | storage::Error::NotFound { .. })) => {}
                Err(e) => return Err(e),
            }
        }
        if self.changed_in_store(key, base).await? {
            return self.keep_aside(key, id).await;
        }
        match self.put_staged(id, key, PutMode::Overwrite, Some(base)).await {
            Err(Error::Conflict { .. }) => self.keep_aside(key, id).await,
            other => other,
        }
    }

    /// Whether the object is no longer the version the file was based on (`None`: there was none).
    pub(super) async fn changed_in_store(&self, key: &StorageKey, base: Option<&str>) -> Result<bool> {
        match self.store.head(key).await {
            Ok(meta) => Ok(Some(version_of(&meta).as_str()) != base),
            Err(storage::Error::NotFound { .. }) => Ok(false),
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
        self.put_staged(id, &conflict, PutMode::Overwrite, None).await
    }

    /// Writes what the handles gathered and returns the data file's length: what this upload sends.
    fn settle(&self, id: u64) -> Result<u64> {
        let file = self.file(id)?;
        let size = lock_file(&file).settle()?;
        Ok(size)
    }

    /// Sends the staged file of `id` to `target`: resumable multipart parts when the store has them and the
    /// file is larger than a part, else one streamed put. `check`: the base version to verify (with a HEAD)
    /// right before a multipart upload is completed.
    async fn put_staged(
        &self,
        id: u64,
        target: &StorageKey,
        mode: PutMode,
        check: Option<Option<&str>>,
    ) -> Result<()> {
        let size = self.settle(id)?;
        let attributes = self.attributes(id).unwrap_or_default();
        if self.store.supports_multipart() && size > storage::part_size(Some(size)) as u64 {
            return self.put_parts(id, target, size, check, &attributes).await;
        }
        let file = tokio::fs::File::open(self.data_path(id)).await?;
        let body = tokio_util::io::ReaderStream::with_capacity(file, 1 << 20);
        let options = PutOptions {
            size_hint: Some(size),
            mode,
            ..PutOptions::default()
        };
        self.store
            .put_stream_with_attributes(target, body, &options, Some(&attributes))
            .await?;
        Ok(())
    }

    /// A resumable multipart upload of the first `size` bytes of `id`'s data to `target`.
    async fn put_parts(
        &self,
        id: u64,
        target: &StorageKey,
        size: u64,
        check: Option<Option<&str>>,
        attributes: &storage::ObjectAttributes,
    ) -> Result<()> {
        let saved_path = self.dir.join(format!("{id}.upload"));
        let attributes_set = self.lock().entries.get(&id).is_some_and(|s| s.attributes_set);
        let mut saved = match read_saved(&saved_path) {
            Some(saved) if saved.fits(target, size, attributes, attributes_set) => {
                tracing::info!(
                    %target,
                    parts = saved.parts.iter().flatten().count(),
                    "resuming a multipart upload"
                );
                saved
            }
            other => {
                if let Some(other) = other {
                    tracing::info!(
                        %target,
                        saved = %other.target,
                        part_size = other.part_size,
                        metadata = ?other.metadata,
                        "a saved multipart upload does not fit the file any more; starting afresh"
                    );
                    self.abort_saved_upload(&saved_path);
                }
                let upload_id = self
                    .store
                    .create_multipart_with_attributes(target, attributes)
                    .await?;
                let fresh = SavedUpload::new(
                    target,
                    upload_id,
                    storage::part_size(Some(size)) as u64,
                    attributes,
                );
                self.save(id, &fresh)?;
                fresh
            }
        };
        let part_size = saved.part_size;
        let count = usize::try_from(size.div_ceil(part_size)).unwrap_or(usize::MAX);
        // Parts sent while the file was written and not touched since are in the store as the file has them:
        // not read again.
        let trusted: Vec<bool> = {
            let state = self.lock();
            let early = state.entries.get(&id).map(|s| &s.early);
            (0..count)
                .map(|index| {
                    part_size == super::early::EARLY_PART
                        && (index as u64 + 1) * part_size <= size
                        && early.is_some_and(|e| e.trusted(index))
                })
                .collect()
        };
        saved.parts.resize(count, None);
        let data = self.data_path(id);
        let known = saved.parts.clone();
        let upload_id = saved.upload_id.clone();
        let mut sends = futures::stream::iter(0..count)
            .map(|index| {
                let known = known[index].clone();
                let trusted = trusted[index];
                let data = data.clone();
                let upload_id = upload_id.clone();
                async move {
                    if trusted && known.is_some() {
                        return Ok((index, None));
                    }
                    let offset = index as u64 * part_size;
                    let len = usize::try_from(part_size.min(size - offset)).unwrap_or(0);
                    let buffer = self.part_pool.take(len);
                    let part = tokio::task::spawn_blocking(move || read_part(&data, offset, buffer))
                        .await
                        .map_err(|_| Error::Panicked {
                            what: "reading a part",
                        })??;
                    let crc32 = crc32fast::hash(part.as_ref());
                    if known.as_ref().is_some_and(|k| k.crc32 == crc32) {
                        return Ok((index, None));
                    }
                    let etag = self
                        .store
                        .put_part(target, &upload_id, index, Bytes::from_owner(part))
                        .await?;
                    Ok::<_, Error>((index, Some(SentPart { etag, crc32 })))
                }
            })
            .buffer_unordered(PARTS_IN_FLIGHT);
        while let Some(sent) = sends.next().await {
            match sent {
                Ok((index, Some(part))) => {
                    saved.parts[index] = Some(part);
                    self.save(id, &saved)?;
                }
                Ok((_, None)) => {}
                // The upload is gone (completed before a crash, or aborted by a lifecycle rule): the retry
                // starts a new one.
                Err(e @ Error::Store(storage::Error::NotFound { .. })) => {
                    let _ = std::fs::remove_file(&saved_path);
                    return Err(e);
                }
                Err(e) => return Err(e),
            }
        }
        drop(sends);
        if let Some(base) = check
            && self.changed_in_store(target, base).await?
        {
            self.abort_saved_upload(&saved_path);
            let _ = std::fs::remove_file(&saved_path);
            return Err(Error::Conflict {
                key: target.to_string(),
            });
        }
        // Every index got its part above (or the loop returned an error), so this is all of them, in order.
        let etags: Vec<String> = saved.parts.iter().flatten().map(|p| p.etag.clone()).collect();
        let completed = self
            .store
            .complete_multipart(target, &saved.upload_id, etags)
            .await;
        if matches!(completed, Ok(_) | Err(storage::Error::NotFound { .. })) {
            // Done, or gone (completed before a crash, aborted by a lifecycle rule): either way the next
            // attempt must not resume it.
            let _ = std::fs::remove_file(&saved_path);
        }
        completed?;
        Ok(())
    }

    pub(super) fn save(&self, id: u64, saved: &SavedUpload) -> Result<()> {
        let text = serde_json::to_vec(saved).map_err(|e| Error::CacheIo(std::io::Error::other(e)))?;
        write_atomically(&self.dir, &format!("{id}.upload"), &text)?;
        Ok(())
    }

    /// Aborts the multipart upload saved at `path`, in the background (its parts are deleted in the store).
    pub(super) fn abort_saved_upload(&self, path: &Path) {
        let Some(saved) = read_saved(path) else {
            return;
        };
        let store = self.store.clone();
        tokio::spawn(async move {
            let aborted = match StorageKey::parse(&saved.target) {
                Ok(target) => store.abort_multipart(&target, &saved.upload_id).await,
                Err(e) => Err(e),
            };
            match aborted {
                Ok(()) => tracing::info!(target = %saved.target, "aborted a multipart upload left behind"),
                Err(e) => {
                    tracing::warn!(error = %e, target = %saved.target, "aborting a multipart upload failed")
                }
            }
        });
    }
}

pub(super) fn read_saved(path: &Path) -> Option<SavedUpload> {
    let text = std::fs::read(path).ok()?;
    serde_json::from_slice(&text).ok()
}

/// `dir/name.conflict-<unix seconds>`.
fn conflict_key(key: &StorageKey) -> Result<StorageKey> {
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    Ok(StorageKey::parse(format!("{key}.conflict-{seconds}"))?)
}
