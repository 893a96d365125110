//! Writes: from bytes, and from a stream that is hashed on the way and never held whole in memory.
//!
//! A streamed body up to one part is buffered and written in one request; past that it becomes a multipart
//! upload with bounded parts in flight, so memory stays flat whatever the size. When the caller announced a
//! SHA-256 and the bytes disagree, or the body fails, or the future is dropped (a client that disconnects), the
//! multipart upload is aborted: nothing appears under the key and no parts are left behind.

use std::io;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use object_store::{PutPayload, WriteMultipart};

use crate::attributes::ObjectAttributes;
use crate::digest::{Sha256Digest, Sha256Hasher};
use crate::error::{Error, Result};
use crate::key::StorageKey;
use crate::store::{PutMode, Store, path};

/// Smallest multipart part, and the size up to which a stream is written in one request.
pub const MIN_PART_SIZE: usize = 8 * 1024 * 1024;

/// S3 allows 10,000 parts; part sizes grow with the announced size so that the largest file fits with room.
const TARGET_MAX_PARTS: u64 = 9_000;

/// Parts uploaded at once. With [`MIN_PART_SIZE`] that is about 40 MiB in flight per upload.
const PARTS_IN_FLIGHT: usize = 4;

/// The local backend's "part": one positioned write into the staging file. Small, so the bytes are written
/// while still in the CPU cache from hashing; memory bandwidth, not the disk, bounds a local put.
pub(crate) const LOCAL_WRITE_PART: usize = 1024 * 1024;

/// Past the first part the hash runs on a thread of its own, fed batches of at least this many bytes, so that
/// hashing (the slowest step: SHA-NI does about 2 GB/s on cached data) overlaps reading the body and writing.
const HASH_BATCH_BYTES: usize = 512 * 1024;

/// Batches queued for the hashing thread: with [`HASH_BATCH_BYTES`] a few MiB, on top of the parts in flight.
const HASH_QUEUE: usize = 8;

/// Options of a write.
#[derive(Debug, Clone, Default)]
pub struct PutOptions {
    /// When set, the write succeeds only if the bytes hash to this; otherwise nothing is stored.
    pub expected_sha256: Option<Sha256Digest>,
    /// The body's size if known: picks a part size that keeps a huge body under S3's part limit.
    pub size_hint: Option<u64>,
    /// What to do when the key exists. A one-part write is conditional in the store itself
    /// (`If-None-Match: *` on S3, a hard link on the local backend). A stream larger than one part supports
    /// `Overwrite` and `Create`; its `Create` is checked before the first part is sent, because object_store
    /// completes multipart uploads unconditionally. Callers that write immutable objects therefore also set
    /// `expected_sha256` and write only keys that name one content (a content-addressed key, or a bundle
    /// path checked free): a writer racing past the check can only complete the same bytes.
    pub mode: PutMode,
}

/// What a successful write stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutReceipt {
    /// Where.
    pub key: StorageKey,
    /// How many bytes.
    pub size: u64,
    /// The store's ETag of the new object.
    pub etag: Option<String>,
    /// SHA-256 of the bytes, computed while writing.
    pub sha256: Sha256Digest,
}

impl Store {
    /// Writes `bytes` under `key` in one request.
    pub async fn put(&self, key: &StorageKey, bytes: Bytes, options: &PutOptions) -> Result<PutReceipt> {
        self.put_with_attributes(key, bytes, options, None).await
    }

    /// [`Store::put`] with file-system attributes stored as the object's metadata (see
    /// [`ObjectAttributes`]); past [`crate::METADATA_LIMIT`] nothing is written.
    pub async fn put_with_attributes(
        &self,
        key: &StorageKey,
        bytes: Bytes,
        options: &PutOptions,
        attributes: Option<&ObjectAttributes>,
    ) -> Result<PutReceipt> {
        let sha256 = Sha256Digest::of(&bytes);
        self.put_hashed(key, bytes, sha256, options, attributes).await
    }

    /// The attributes object_store takes with a write: S3's metadata; none for the local backend, whose
    /// file gets them after the write ([`Store::apply_local_attributes`]).
    fn write_attributes(&self, attributes: Option<&ObjectAttributes>) -> object_store::Attributes {
        match attributes {
            Some(attributes) if self.local_path_of_root().is_none() => attributes.to_attributes(),
            _ => object_store::Attributes::new(),
        }
    }

    async fn put_hashed(
        &self,
        key: &StorageKey,
        bytes: Bytes,
        sha256: Sha256Digest,
        options: &PutOptions,
        attributes: Option<&ObjectAttributes>,
    ) -> Result<PutReceipt> {
        check_digest(key, options.expected_sha256, sha256)?;
        if let Some(attributes) = attributes {
            attributes.check_limit(key)?;
        }
        let size = bytes.len() as u64;
        let mode = match &options.mode {
            PutMode::Overwrite => object_store::PutMode::Overwrite,
            PutMode::Create => object_store::PutMode::Create,
            PutMode::IfMatch(etag) => object_store::PutMode::Update(object_store::UpdateVersion {
                e_tag: Some(etag.clone()),
                version: None,
            }),
        };
        let put_options = object_store::PutOptions {
            mode,
            attributes: self.write_attributes(attributes),
            ..Default::default()
        };
        let result = self
            .inner
            .objects
            .put_opts(&path(key), PutPayload::from_bytes(bytes), put_options)
            .await
            .map_err(|e| match e {
                // LocalFileSystem has no compare-and-swap on ETags; say so rather than race.
                object_store::Error::NotImplemented { .. } => Error::Unsupported {
                    what: "a write conditional on the ETag with this backend",
                },
                e => Error::from_backend(key.as_str(), e),
            })?;
        if let Some(attributes) = attributes {
            self.apply_local_attributes(key, attributes).await?;
        }
        Ok(PutReceipt {
            key: key.clone(),
            size,
            etag: result.e_tag,
            sha256,
        })
    }

    /// Writes a stream under `key`, hashing it on the way. Memory stays bounded by a few parts whatever the
    /// size. On a digest mismatch, a body error or cancellation nothing is left under the key.
    pub async fn put_stream<S>(&self, key: &StorageKey, body: S, options: &PutOptions) -> Result<PutReceipt>
    where
        S: Stream<Item = io::Result<Bytes>> + Send,
    {
        self.put_stream_with_attributes(key, body, options, None).await
    }

    /// [`Store::put_stream`] with file-system attributes stored as the object's metadata.
    pub async fn put_stream_with_attributes<S>(
        &self,
        key: &StorageKey,
        body: S,
        options: &PutOptions,
        attributes: Option<&ObjectAttributes>,
    ) -> Result<PutReceipt>
    where
        S: Stream<Item = io::Result<Bytes>> + Send,
    {
        if let Some(attributes) = attributes {
            attributes.check_limit(key)?;
        }
        let part_size = part_size(options.size_hint);
        let mut body = std::pin::pin!(body);
        let mut hasher = Sha256Hasher::new();
        let mut size = 0u64;
        let mut buffered: Vec<Bytes> = Vec::new();
        let mut buffered_len = 0usize;
        let mut upload: Option<(AbortOnDrop, BackgroundHasher)> = None;

        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|source| Error::Body {
                key: key.to_string(),
                source,
            })?;
            size += chunk.len() as u64;
            match &mut upload {
                Some((writer, background)) => {
                    background.update(&chunk, key).await?;
                    writer.write(chunk, key).await?;
                }
                None => {
                    hasher.update(&chunk);
                    buffered_len += chunk.len();
                    buffered.push(chunk);
                    if buffered_len > part_size {
                        match &options.mode {
                            PutMode::Overwrite => {}
                            // object_store 0.14 completes a multipart upload unconditionally, so a create is
                            // checked before the first part; see `PutOptions::mode` for why that is enough.
                            PutMode::Create => self.refuse_existing(key).await?,
                            PutMode::IfMatch(_) => {
                                return Err(Error::Unsupported {
                                    what: "a write conditional on the ETag larger than one part",
                                });
                            }
                        }
                        let multipart_options = object_store::PutMultipartOptions {
                            attributes: self.write_attributes(attributes),
                            ..Default::default()
                        };
                        let multipart = self
                            .inner
                            .objects
                            .put_multipart_opts(&path(key), multipart_options)
                            .await
                            .map_err(|e| Error::from_backend(key.as_str(), e))?;
                        let write_part = self.inner.write_part.unwrap_or(part_size);
                        let mut writer =
                            AbortOnDrop(Some(WriteMultipart::new_with_chunk_size(multipart, write_part)));
                        for chunk in buffered.drain(..) {
                            writer.write(chunk, key).await?;
                        }
                        upload = Some((writer, BackgroundHasher::start(std::mem::take(&mut hasher))));
                    }
                }
            }
        }

        match upload {
            None => {
                let sha256 = hasher.finish();
                let bytes: Bytes = if buffered.len() == 1 {
                    buffered.remove(0)
                } else {
                    buffered.concat().into()
                };
                self.put_hashed(key, bytes, sha256, options, attributes).await
            }
            Some((mut writer, background)) => {
                let sha256 = background.finish(key).await?;
                if let Err(mismatch) = check_digest(key, options.expected_sha256, sha256) {
                    writer.abort().await;
                    return Err(mismatch);
                }
                let result = writer
                    .finish()
                    .await
                    .map_err(|e| Error::from_backend(key.as_str(), e))?;
                if let Some(attributes) = attributes {
                    self.apply_local_attributes(key, attributes).await?;
                }
                Ok(PutReceipt {
                    key: key.clone(),
                    size,
                    etag: result.e_tag,
                    sha256,
                })
            }
        }
    }
}

impl Store {
    /// [`Error::AlreadyExists`] when something is stored under `key`.
    async fn refuse_existing(&self, key: &StorageKey) -> Result<()> {
        match self.head(key).await {
            Ok(_) => Err(Error::AlreadyExists { key: key.to_string() }),
            Err(Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

fn check_digest(key: &StorageKey, expected: Option<Sha256Digest>, actual: Sha256Digest) -> Result<()> {
    match expected {
        Some(expected) if expected != actual => Err(Error::DigestMismatch {
            key: key.to_string(),
            expected: expected.to_hex(),
            actual: actual.to_hex(),
        }),
        _ => Ok(()),
    }
}

/// Part size for a body of `size_hint` bytes: at least [`MIN_PART_SIZE`], large enough for
/// [`TARGET_MAX_PARTS`] parts to hold it, rounded up to a MiB.
pub fn part_size(size_hint: Option<u64>) -> usize {
    const MIB: u64 = 1024 * 1024;
    let needed = size_hint.unwrap_or(0).div_ceil(TARGET_MAX_PARTS).div_ceil(MIB) * MIB;
    usize::try_from(needed).unwrap_or(usize::MAX).max(MIN_PART_SIZE)
}

/// SHA-256 on a blocking thread: the stream's task only hands it (reference-counted) chunks, so the next read
/// and the part writes proceed while it hashes. Dropping it (a cancelled put) ends the thread.
struct BackgroundHasher {
    sender: Option<tokio::sync::mpsc::Sender<Vec<Bytes>>>,
    batch: Vec<Bytes>,
    batch_len: usize,
    task: tokio::task::JoinHandle<Sha256Hasher>,
}

impl BackgroundHasher {
    fn start(mut hasher: Sha256Hasher) -> Self {
        let (sender, mut receiver) = tokio::sync::mpsc::channel::<Vec<Bytes>>(HASH_QUEUE);
        let task = tokio::task::spawn_blocking(move || {
            while let Some(batch) = receiver.blocking_recv() {
                for chunk in &batch {
                    hasher.update(chunk);
                }
            }
            hasher
        });
        Self {
            sender: Some(sender),
            batch: Vec::new(),
            batch_len: 0,
            task,
        }
    }

    async fn update(&mut self, chunk: &Bytes, key: &StorageKey) -> Result<()> {
        self.batch_len += chunk.len();
        self.batch.push(chunk.clone());
        if self.batch_len >= HASH_BATCH_BYTES {
            self.send(key).await?;
        }
        Ok(())
    }

    async fn send(&mut self, key: &StorageKey) -> Result<()> {
        let batch = std::mem::take(&mut self.batch);
        self.batch_len = 0;
        let sent = match &self.sender {
            Some(sender) => sender.send(batch).await.is_ok(),
            None => false,
        };
        if sent {
            Ok(())
        } else {
            // The thread only stops receiving if it panicked; `finish` reports why.
            Err(self.failed(key))
        }
    }

    fn failed(&self, key: &StorageKey) -> Error {
        Error::Backend {
            key: key.to_string(),
            source: object_store::Error::Generic {
                store: "iphoto",
                source: "the hashing thread stopped".into(),
            },
        }
    }

    async fn finish(mut self, key: &StorageKey) -> Result<Sha256Digest> {
        if !self.batch.is_empty() {
            self.send(key).await?;
        }
        self.sender = None;
        match (&mut self.task).await {
            Ok(hasher) => Ok(hasher.finish()),
            Err(source) => Err(Error::Backend {
                key: key.to_string(),
                source: object_store::Error::JoinError { source },
            }),
        }
    }
}

/// A multipart upload that is aborted if it is dropped before `finish`: a cancelled request (the client went
/// away) must not leave parts or a staging file behind.
struct AbortOnDrop(Option<WriteMultipart>);

impl AbortOnDrop {
    async fn write(&mut self, chunk: Bytes, key: &StorageKey) -> Result<()> {
        if let Some(writer) = &mut self.0 {
            writer
                .wait_for_capacity(PARTS_IN_FLIGHT)
                .await
                .map_err(|e| Error::from_backend(key.as_str(), e))?;
            writer.put(chunk);
        }
        Ok(())
    }

    async fn abort(&mut self) {
        if let Some(writer) = self.0.take()
            && let Err(e) = writer.abort().await
        {
            tracing::warn!(error = %e, "aborting a multipart upload failed");
        }
    }

    async fn finish(&mut self) -> object_store::Result<object_store::PutResult> {
        match self.0.take() {
            Some(writer) => writer.finish().await,
            None => Err(object_store::Error::Generic {
                store: "iphoto",
                source: "upload already ended".into(),
            }),
        }
    }
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(writer) = self.0.take() {
            match tokio::runtime::Handle::try_current() {
                Ok(handle) => {
                    handle.spawn(async move {
                        if let Err(e) = writer.abort().await {
                            tracing::warn!(error = %e, "aborting a cancelled multipart upload failed");
                        }
                    });
                }
                Err(_) => tracing::warn!("multipart upload dropped outside a runtime; it is left to expire"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_size_grows_with_the_body() {
        assert_eq!(part_size(None), MIN_PART_SIZE);
        assert_eq!(part_size(Some(1)), MIN_PART_SIZE);
        let size = 200u64 << 30; // 200 GiB fits in fewer than 10,000 parts
        let part = part_size(Some(size)) as u64;
        assert!(size.div_ceil(part) <= 10_000, "{part}");
        assert_eq!(part % (1024 * 1024), 0);
    }
}
