//! Download an object into a local file with several ranged streams at once, each writing its own part of
//! the file at its offset: what `rclone copyto` does for a large object. One TCP stream to S3 leaves most of a
//! fast link idle, and nothing here holds more than a chunk per stream in memory.

use std::io::SeekFrom;
use std::path::Path;

use futures::StreamExt as _;
use object_store::{GetOptions, GetRange};
use tokio::io::{AsyncSeekExt as _, AsyncWriteExt as _};

use crate::error::{Error, Result};
use crate::key::StorageKey;
use crate::store::{ObjectMeta, Store, path};

/// Smallest part worth a stream of its own.
const MIN_STREAM_PART: u64 = 8 * 1024 * 1024;

impl Store {
    /// Writes the object at `key` to the file `destination` (created or truncated) with up to `streams`
    /// ranged GETs in flight, each pinned to the object's ETag so a replaced object fails with
    /// [`Error::PreconditionFailed`] instead of mixing versions. Returns the object's metadata.
    pub async fn download_to_file(
        &self,
        key: &StorageKey,
        destination: &Path,
        streams: usize,
    ) -> Result<ObjectMeta> {
        let meta = self.head(key).await?;
        let local = |source: std::io::Error| Error::LocalFile {
            path: destination.display().to_string(),
            source,
        };
        let file = tokio::fs::File::create(destination).await.map_err(local)?;
        file.set_len(meta.size).await.map_err(local)?;
        drop(file);
        let part = meta.size.div_ceil(streams.max(1) as u64).max(MIN_STREAM_PART);
        let ranges: Vec<std::ops::Range<u64>> = (0..meta.size)
            .step_by(usize::try_from(part).unwrap_or(usize::MAX))
            .map(|s| s..(s + part).min(meta.size))
            .collect();
        let results = futures::future::join_all(ranges.into_iter().map(|range| {
            let etag = meta.etag.clone();
            async move {
                let options = GetOptions {
                    range: Some(GetRange::Bounded(range.clone())),
                    if_match: etag,
                    ..Default::default()
                };
                let result = self
                    .inner
                    .objects
                    .get_opts(&path(key), options)
                    .await
                    .map_err(|e| Error::from_backend(key.as_str(), e))?;
                let mut out = tokio::fs::OpenOptions::new()
                    .write(true)
                    .open(destination)
                    .await
                    .map_err(local)?;
                out.seek(SeekFrom::Start(range.start)).await.map_err(local)?;
                let mut body = result.into_stream();
                while let Some(chunk) = body.next().await {
                    out.write_all(&chunk.map_err(|e| Error::from_backend(key.as_str(), e))?)
                        .await
                        .map_err(local)?;
                }
                out.flush().await.map_err(local)?;
                Ok::<(), Error>(())
            }
        }))
        .await;
        for result in results {
            if let Err(e) = result {
                let _ = tokio::fs::remove_file(destination).await;
                return Err(e);
            }
        }
        Ok(meta)
    }
}
