//! Resumable writes: one object written over many requests, possibly by many server replicas, each append
//! made durable before its offset is acknowledged (an acknowledged offset is a promise never to ask for those
//! bytes again).
//!
//! The caller persists a [`ResumableProgress`] after every checkpoint and passes it back to continue. On S3 the
//! bytes become one multipart upload to the final key: every `part_size` bytes are one part, and bytes after
//! the last whole part (an append cut short, or one smaller than a part) are kept as a *tail* object under the
//! upload's staging prefix, read back and prepended by the next append. On the local backend they are appended
//! to a staging file under that prefix, synced before each checkpoint, and hard-linked to the final key at the
//! end (create-only). The SHA-256 is carried in the progress ([`Sha256State`]), so completion checks the
//! digest without reading the object back.
//!
//! Nothing written after the last checkpoint is relied on: a part uploaded again replaces the one of the same
//! number, a newer tail has a new key, and the staging file is cut back to the acknowledged offset when it is
//! opened. [`Store::resumable_abort`] removes the multipart upload and everything under the staging prefix.

use bytes::Bytes;
use object_store::ObjectStoreExt as _;

use crate::digest::Sha256Digest;
use crate::error::{Error, Result};
use crate::key::StorageKey;
use crate::sha256_state::Sha256State;
use crate::store::{Presigner, Store, path};

/// How far a resumable write got: what the caller persists between appends.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct ResumableProgress {
    /// Bytes kept durably: the offset acknowledged to the client.
    pub offset: u64,
    /// S3: the multipart upload to the final key.
    pub multipart_id: Option<String>,
    /// S3: the ETags of the parts uploaded, in order.
    pub parts: Vec<String>,
    /// S3: bytes in those parts (the rest, `offset - parts_bytes`, is in the tail).
    pub parts_bytes: u64,
    /// S3: the object holding the bytes after the last part, if any.
    pub tail: Option<String>,
    /// The SHA-256 of bytes `0..offset` ([`Sha256State::encode`]).
    pub sha256: String,
}

/// A resumable write's staging prefix and final key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResumableTarget {
    /// Where tails (S3) or the staging file (local) live; everything under it goes at abort or completion.
    pub staging: StorageKey,
    /// Where the object ends up, create-only.
    pub key: StorageKey,
}

impl Store {
    /// Starts a resumable write: on S3 the multipart upload to `target.key` (persist the progress at once, so
    /// the upload can be aborted), on the local backend an empty staging file.
    pub async fn resumable_start(&self, target: &ResumableTarget) -> Result<ResumableProgress> {
        let multipart_id = match &self.inner.presigner {
            Presigner::S3 { .. } => Some(self.create_multipart(&target.key).await?),
            Presigner::Local(_) => {
                let file = self.local_staging_file(target)?;
                tokio::task::spawn_blocking(move || {
                    if let Some(dir) = file.parent() {
                        std::fs::create_dir_all(dir)?;
                    }
                    std::fs::File::create(&file)?.sync_all()
                })
                .await
                .map_err(|e| local_error(&target.staging, std::io::Error::other(e)))?
                .map_err(|e| local_error(&target.staging, e))?;
                None
            }
        };
        Ok(ResumableProgress {
            multipart_id,
            sha256: Sha256State::new().encode(),
            ..ResumableProgress::default()
        })
    }

    /// Opens `progress` for more bytes. S3 reads the tail back into memory (at most one part); the local
    /// backend opens the staging file and cuts it back to the acknowledged offset.
    pub async fn resumable_append(
        &self,
        target: &ResumableTarget,
        progress: ResumableProgress,
        part_size: u64,
    ) -> Result<Appender> {
        let hasher = Sha256State::decode(&progress.sha256)
            .filter(|h| h.length() == progress.offset)
            .ok_or_else(|| corrupt(target, "its SHA-256 state does not match its offset"))?;
        let kind = match &self.inner.presigner {
            Presigner::S3 { .. } => {
                let tail_len = progress
                    .offset
                    .checked_sub(progress.parts_bytes)
                    .ok_or_else(|| corrupt(target, "more bytes in parts than acknowledged"))?;
                let mut buffer = Vec::with_capacity(usize::try_from(part_size).unwrap_or(0));
                if let Some(tail) = &progress.tail {
                    let bytes = self.get_bytes(&StorageKey::parse(tail.as_str())?).await?;
                    if bytes.len() as u64 != tail_len {
                        return Err(corrupt(target, "its tail object is not the size recorded"));
                    }
                    buffer.extend_from_slice(&bytes);
                } else if tail_len != 0 {
                    return Err(corrupt(target, "bytes after the last part but no tail object"));
                }
                Kind::S3 { buffer }
            }
            Presigner::Local(_) => {
                let path = self.local_staging_file(target)?;
                let offset = progress.offset;
                let file = tokio::task::spawn_blocking(move || {
                    let file = std::fs::OpenOptions::new().write(true).open(path)?;
                    if file.metadata()?.len() < offset {
                        return Err(std::io::Error::other(
                            "the staging file is shorter than acknowledged",
                        ));
                    }
                    file.set_len(offset)?;
                    Ok(file)
                })
                .await
                .map_err(|e| local_error(&target.staging, std::io::Error::other(e)))?
                .map_err(|e| local_error(&target.staging, e))?;
                let mut file = tokio::fs::File::from_std(file);
                use tokio::io::AsyncSeekExt as _;
                file.seek(std::io::SeekFrom::Start(progress.offset))
                    .await
                    .map_err(|e| local_error(&target.staging, e))?;
                Kind::Local { file, unsynced: 0 }
            }
        };
        Ok(Appender {
            store: self.clone(),
            target: target.clone(),
            part_size: part_size.max(1),
            written: progress.offset,
            progress,
            hasher,
            kind,
            obsolete: Vec::new(),
        })
    }

    /// Removes everything of a resumable write: the multipart upload and its parts, every tail, the staging
    /// file. Safe to repeat; the final key is not touched.
    pub async fn resumable_abort(
        &self,
        target: &ResumableTarget,
        progress: &ResumableProgress,
    ) -> Result<()> {
        if let Some(id) = &progress.multipart_id {
            self.abort_multipart(&target.key, id).await?;
        }
        self.remove_prefix(&target.staging).await
    }

    /// Deletes every object under `prefix`.
    async fn remove_prefix(&self, prefix: &StorageKey) -> Result<()> {
        use futures::TryStreamExt as _;
        let objects: Vec<crate::ObjectMeta> = self.list(Some(prefix)).try_collect().await?;
        for object in objects {
            self.delete(&object.key).await?;
        }
        Ok(())
    }

    /// The local staging file of `target` (`<root>/<staging>/data`).
    fn local_staging_file(&self, target: &ResumableTarget) -> Result<std::path::PathBuf> {
        let root = self.inner.staging_root.as_ref().ok_or(Error::Unsupported {
            what: "a local staging file with this backend",
        })?;
        Ok(root.join(target.staging.as_str()).join(STAGING_FILE))
    }
}

/// The name of the local staging file under the staging prefix.
const STAGING_FILE: &str = "data";

/// An open resumable write: bytes go in with [`Appender::write`], become durable with
/// [`Appender::checkpoint`], and end with [`Appender::complete`].
#[derive(Debug)]
pub struct Appender {
    store: Store,
    target: ResumableTarget,
    part_size: u64,
    /// The last durable state.
    progress: ResumableProgress,
    /// Bytes received, durable or not.
    written: u64,
    /// SHA-256 of bytes `0..written`.
    hasher: Sha256State,
    kind: Kind,
    /// Tails no longer needed once the newer progress is persisted.
    obsolete: Vec<StorageKey>,
}

#[derive(Debug)]
enum Kind {
    /// Bytes after the last part, in memory (at most one part).
    S3 { buffer: Vec<u8> },
    /// The staging file, positioned at `written`; `unsynced` bytes written since the last sync.
    Local { file: tokio::fs::File, unsynced: u64 },
}

impl Appender {
    /// Bytes received so far (the acknowledged offset plus what this append added).
    pub fn written(&self) -> u64 {
        self.written
    }

    /// The last durable progress.
    pub fn progress(&self) -> &ResumableProgress {
        &self.progress
    }

    /// Takes `chunk`. Every `part_size` bytes (a part uploaded on S3, a sync on the local backend) the bytes so
    /// far are durable: the new progress is returned, for the caller to persist and acknowledge.
    pub async fn write(&mut self, mut chunk: Bytes) -> Result<Option<ResumableProgress>> {
        let mut reached = None;
        while !chunk.is_empty() {
            match &mut self.kind {
                Kind::S3 { buffer } => {
                    let room = usize::try_from(self.part_size).unwrap_or(usize::MAX) - buffer.len();
                    let take = chunk.split_to(room.min(chunk.len()));
                    self.hasher.update(&take);
                    buffer.extend_from_slice(&take);
                    self.written += take.len() as u64;
                    if buffer.len() as u64 == self.part_size {
                        let part = Bytes::from(std::mem::take(buffer));
                        self.upload_part(part).await?;
                        reached = Some(self.durable());
                    }
                }
                Kind::Local { file, unsynced } => {
                    use tokio::io::AsyncWriteExt as _;
                    let room = usize::try_from(self.part_size - *unsynced).unwrap_or(usize::MAX);
                    let take = chunk.split_to(room.min(chunk.len()));
                    self.hasher.update(&take);
                    file.write_all(&take)
                        .await
                        .map_err(|e| local_error(&self.target.staging, e))?;
                    *unsynced += take.len() as u64;
                    self.written += take.len() as u64;
                    if *unsynced == self.part_size {
                        file.sync_data()
                            .await
                            .map_err(|e| local_error(&self.target.staging, e))?;
                        *unsynced = 0;
                        reached = Some(self.durable());
                    }
                }
            }
        }
        Ok(reached)
    }

    /// Makes every byte received durable (S3: the bytes after the last part become the new tail object;
    /// local: a sync) and returns the progress to persist.
    pub async fn checkpoint(&mut self) -> Result<ResumableProgress> {
        if self.written == self.progress.offset {
            return Ok(self.progress.clone());
        }
        match &mut self.kind {
            Kind::S3 { buffer } => {
                if !buffer.is_empty() {
                    let key =
                        self.target
                            .staging
                            .join(&format!("tail-{}-{:016x}", self.written, rand_u64()))?;
                    self.store
                        .inner
                        .objects
                        .put(&path(&key), Bytes::copy_from_slice(buffer).into())
                        .await
                        .map_err(|e| Error::from_backend(key.as_str(), e))?;
                    if let Some(old) = self.progress.tail.replace(key.to_string()) {
                        self.obsolete.push(StorageKey::parse(old)?);
                    }
                }
            }
            Kind::Local { file, unsynced } => {
                file.sync_data()
                    .await
                    .map_err(|e| local_error(&self.target.staging, e))?;
                *unsynced = 0;
            }
        }
        Ok(self.durable())
    }

    /// Removes the tails the persisted progress no longer names. Call after persisting a progress; a failure
    /// leaves them to [`Store::resumable_abort`] or completion, which clear the whole staging prefix.
    pub async fn persisted(&mut self) {
        for key in std::mem::take(&mut self.obsolete) {
            if let Err(error) = self.store.delete(&key).await {
                tracing::warn!(%error, key = %key, "an obsolete tail stays until the upload ends");
            }
        }
    }

    /// Ends the write with the bytes received: checks the SHA-256 against `expected` (a mismatch is
    /// [`Error::DigestMismatch`] and leaves everything for the caller to abort), then stores the object at
    /// the final key, create-only ([`Error::AlreadyExists`] if something is there), and removes the staging.
    /// Returns the digest and size.
    pub async fn complete(mut self, expected: Option<Sha256Digest>) -> Result<(Sha256Digest, u64)> {
        let digest = self.hasher.digest();
        let key = self.target.key.clone();
        if let Some(expected) = expected
            && expected != digest
        {
            return Err(Error::DigestMismatch {
                key: key.to_string(),
                expected: expected.to_hex(),
                actual: digest.to_hex(),
            });
        }
        match &mut self.kind {
            Kind::S3 { buffer } => {
                if !buffer.is_empty() || self.progress.parts.is_empty() {
                    let part = Bytes::from(std::mem::take(buffer));
                    self.upload_part(part).await?;
                }
                let id = self
                    .progress
                    .multipart_id
                    .clone()
                    .ok_or_else(|| corrupt(&self.target, "no multipart upload"))?;
                // object_store completes a multipart upload unconditionally: the create-only check is made
                // here, just before, on a key that (like every final key) is only written with its digest
                // verified.
                match self.store.head(&key).await {
                    Ok(_) => return Err(Error::AlreadyExists { key: key.to_string() }),
                    Err(Error::NotFound { .. }) => {}
                    Err(e) => return Err(e),
                }
                self.store
                    .complete_multipart(&key, &id, self.progress.parts.clone())
                    .await?;
            }
            Kind::Local { file, .. } => {
                file.sync_all()
                    .await
                    .map_err(|e| local_error(&self.target.staging, e))?;
                let staging = self.target.staging.join(STAGING_FILE)?;
                // A hard link then an unlink: fails, leaving the staging file, if anything is at the key.
                self.store
                    .inner
                    .objects
                    .rename_if_not_exists(&path(&staging), &path(&key))
                    .await
                    .map_err(|e| Error::from_backend(key.as_str(), e))?;
            }
        }
        if let Err(error) = self.store.remove_prefix(&self.target.staging).await {
            tracing::warn!(%error, "a completed upload's staging stays until the collector's pass");
        }
        Ok((digest, self.written))
    }

    async fn upload_part(&mut self, part: Bytes) -> Result<()> {
        let id = self
            .progress
            .multipart_id
            .clone()
            .ok_or_else(|| corrupt(&self.target, "no multipart upload"))?;
        let len = part.len() as u64;
        let index = self.progress.parts.len();
        let etag = self.store.put_part(&self.target.key, &id, index, part).await?;
        self.progress.parts.push(etag);
        self.progress.parts_bytes += len;
        if let Some(old) = self.progress.tail.take() {
            self.obsolete.push(StorageKey::parse(old)?);
        }
        Ok(())
    }

    /// Records that bytes `0..written` are durable.
    fn durable(&mut self) -> ResumableProgress {
        self.progress.offset = self.written;
        self.progress.sha256 = self.hasher.encode();
        self.progress.clone()
    }
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher as _, Hasher as _};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    hasher.finish()
}

fn corrupt(target: &ResumableTarget, reason: &str) -> Error {
    local_error(
        &target.staging,
        std::io::Error::other(format!("resumable upload state: {reason}")),
    )
}

fn local_error(key: &StorageKey, source: std::io::Error) -> Error {
    Error::Backend {
        key: key.to_string(),
        source: object_store::Error::Generic {
            store: "resumable",
            source: Box::new(source),
        },
    }
}
