//! One thumbnail job's body: download, decode once, store the thumbnail and the preview, build the result —
//! or a reasoned failure.
//!
//! A thumbnail already stored under the job's key (an earlier lease of the same job, another photo with
//! the same original, or a photo queued again only for its preview after the upgrade that brought
//! previews) is kept as it is: its size is read from the stored JPEG's header, and only the preview is made.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use api::{JobFailure, JobKind, LeasedJob, PreviewResult, ThumbnailResult};
use futures::StreamExt as _;
use tokio::io::AsyncWriteExt as _;

use super::{Worker, failure};
use crate::thumbnail::{self, DerivativeSpecs, Thumbnail, ThumbnailError};

/// A derivative in the store: its key, what it is and its size there.
struct Stored {
    key: String,
    content_type: String,
    width: u32,
    height: u32,
    size: u64,
}

impl Worker {
    /// Download, decode, store: everything that ends in a result or a reasoned failure.
    pub(super) async fn derivatives(&self, job: &LeasedJob) -> Result<ThumbnailResult, JobFailure> {
        if job.kind != JobKind::Thumbnail {
            return Err(failure("unsupported", format!("a {} job", job.kind.as_str())));
        }
        let key = parse_key(job.derivative_key.as_deref(), "derivativeKey")?
            .ok_or_else(|| failure("bad_job", "the job carries no derivativeKey"))?;
        // A server from before previews names no preview key: then none is made.
        let preview_key = match self.settings.preview {
            Some(_) => parse_key(job.preview_key.as_deref(), "previewKey")?,
            None => None,
        };
        let kept = self.stored_thumbnail(&key).await;
        let wanted = DerivativeSpecs {
            thumbnail: kept.is_none().then_some(self.settings.spec),
            preview: preview_key.as_ref().and(self.settings.preview),
        };
        let made = if wanted == DerivativeSpecs::default() {
            thumbnail::Derivatives::default()
        } else {
            let dir = tempfile::tempdir().map_err(|e| failure("io", e.to_string()))?;
            let original = dir.path().join("original");
            self.download(&job.original_url, job.size, &original)
                .await
                .map_err(|e| failure("download_failed", format!("{e:#}")))?;
            let uti = job.uti.clone();
            tokio::task::spawn_blocking(move || thumbnail::make_derivatives(&original, &uti, &wanted))
                .await
                .map_err(|e| failure("internal", format!("the decoder thread died: {e}")))?
                .map_err(|e: ThumbnailError| failure(e.reason(), e.to_string()))?
        };
        let thumb = match (kept, made.thumbnail) {
            (Some(kept), _) => kept,
            (None, Some(thumb)) => self.store(&key, thumb).await?,
            (None, None) => return Err(failure("internal", "no thumbnail was made")),
        };
        let preview = match (preview_key, made.preview) {
            (Some(key), Some(preview)) => Some(self.store(&key, preview).await?),
            _ => None,
        };
        Ok(ThumbnailResult {
            key: thumb.key,
            content_type: thumb.content_type,
            width: thumb.width,
            height: thumb.height,
            size: thumb.size,
            preview: preview.map(|p| PreviewResult {
                key: p.key,
                content_type: p.content_type,
                width: p.width,
                height: p.height,
                size: p.size,
            }),
        })
    }

    /// The thumbnail already stored under `key`, if there is one whose header reads as an image. Any doubt
    /// (missing, unreadable, a store error) means "make it": storing is create-only, so nothing is lost.
    async fn stored_thumbnail(&self, key: &storage::StorageKey) -> Option<Stored> {
        let bytes = self.store.get_bytes(key).await.ok()?;
        let reader = image::ImageReader::new(std::io::Cursor::new(&bytes))
            .with_guessed_format()
            .ok()?;
        let content_type = reader.format()?.to_mime_type().to_owned();
        let (width, height) = reader.into_dimensions().ok()?;
        Some(Stored {
            key: key.as_str().to_owned(),
            content_type,
            width,
            height,
            size: bytes.len() as u64,
        })
    }

    /// Stores a derivative under `key`. Objects are immutable: a derivative of this content already stored
    /// (by an earlier lease of the same job, or for another photo with the same original) is the result.
    async fn store(&self, key: &storage::StorageKey, made: Thumbnail) -> Result<Stored, JobFailure> {
        let create = storage::PutOptions {
            mode: storage::PutMode::Create,
            ..Default::default()
        };
        let size = match self.store.put(key, bytes::Bytes::from(made.bytes), &create).await {
            Ok(receipt) => receipt.size,
            Err(storage::Error::AlreadyExists { .. }) => {
                self.store
                    .head(key)
                    .await
                    .map_err(|e| failure("store_failed", e.to_string()))?
                    .size
            }
            Err(e) => return Err(failure("store_failed", e.to_string())),
        };
        Ok(Stored {
            key: key.as_str().to_owned(),
            content_type: made.content_type.to_owned(),
            width: made.width,
            height: made.height,
            size,
        })
    }

    /// Streams `url` into `path` (bounded memory), checking the size the job announced.
    async fn download(&self, url: &str, expected: u64, path: &Path) -> Result<()> {
        let response = self
            .http
            .get(url)
            .timeout(Duration::from_secs(600))
            .send()
            .await
            .context("GET original")?;
        let status = response.status();
        if !status.is_success() {
            bail!("GET original: HTTP {status}");
        }
        let mut file = tokio::fs::File::create(path).await?;
        let mut body = response.bytes_stream();
        let mut written = 0u64;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.context("reading the original")?;
            written += chunk.len() as u64;
            if expected > 0 && written > expected {
                bail!("the original is larger than the {expected} bytes the job announced");
            }
            file.write_all(&chunk).await?;
        }
        file.flush().await?;
        if expected > 0 && written != expected {
            bail!("got {written} bytes of an original of {expected}");
        }
        Ok(())
    }
}

/// A key the job names, parsed; a malformed one fails the job as `bad_job`.
fn parse_key(key: Option<&str>, what: &str) -> Result<Option<storage::StorageKey>, JobFailure> {
    key.map(|k| storage::StorageKey::parse(k).map_err(|e| failure("bad_job", format!("{what}: {e}"))))
        .transpose()
}
