//! Multipart uploads driven part by part, for callers that must survive a crash in the middle of one (the
//! mount's write journal): the upload id and the finished parts are the caller's to persist, so a restart can
//! resume the upload where it stopped, or abort it instead of leaving its parts to a lifecycle rule.
//!
//! Built on `object_store`'s `MultipartStore` (`AmazonS3`); the key prefix is applied here, as presigning
//! does, since the `PrefixStore` underneath the port does not expose multipart uploads of a shared handle. The
//! local backend has no resumable uploads: [`Store::supports_multipart`] says so and every call answers
//! [`Error::Unsupported`].

use bytes::Bytes;
use object_store::PutPayload;
use object_store::multipart::{MultipartStore as _, PartId};

use crate::error::{Error, Result};
use crate::key::StorageKey;
use crate::store::{Presigner, Store, path};

impl Store {
    /// Whether this backend has resumable multipart uploads (S3: yes; local files: no).
    pub fn supports_multipart(&self) -> bool {
        matches!(self.inner.presigner, Presigner::S3 { .. })
    }

    /// The S3 handle and the full path of `key` in the bucket.
    fn multipart_target(
        &self,
        key: &StorageKey,
    ) -> Result<(&object_store::aws::AmazonS3, object_store::path::Path)> {
        match &self.inner.presigner {
            Presigner::S3 { signer, prefix } => {
                let full = match prefix {
                    Some(prefix) => prefix.join(key.as_str())?,
                    None => key.clone(),
                };
                Ok((signer.as_ref(), path(&full)))
            }
            Presigner::Local(_) => Err(Error::Unsupported {
                what: "resumable multipart uploads with this backend",
            }),
        }
    }

    /// Starts a multipart upload to `key`; returns its id (persist it before uploading parts, so a crash can
    /// abort or resume it).
    pub async fn create_multipart(&self, key: &StorageKey) -> Result<String> {
        let (s3, location) = self.multipart_target(key)?;
        s3.create_multipart(&location)
            .await
            .map_err(|e| Error::from_backend(key.as_str(), e))
    }

    /// [`Store::create_multipart`] of an object that will carry file-system attributes as its metadata
    /// (the local backend has no multipart uploads; see [`Store::supports_multipart`]).
    pub async fn create_multipart_with_attributes(
        &self,
        key: &StorageKey,
        attributes: &crate::ObjectAttributes,
    ) -> Result<String> {
        attributes.check_limit(key)?;
        let (s3, location) = self.multipart_target(key)?;
        let options = object_store::PutMultipartOptions {
            attributes: attributes.to_attributes(),
            ..Default::default()
        };
        s3.create_multipart_opts(&location, options)
            .await
            .map_err(|e| Error::from_backend(key.as_str(), e))
    }

    /// Uploads part `index` (from 0) of upload `upload_id`; returns the part's ETag, needed to complete.
    /// Uploading an index again replaces that part. An upload that no longer exists (completed or aborted)
    /// is [`Error::NotFound`].
    pub async fn put_part(
        &self,
        key: &StorageKey,
        upload_id: &str,
        index: usize,
        bytes: Bytes,
    ) -> Result<String> {
        let (s3, location) = self.multipart_target(key)?;
        let part = s3
            .put_part(&location, &upload_id.to_owned(), index, PutPayload::from(bytes))
            .await
            .map_err(|e| Error::from_backend(key.as_str(), e))?;
        Ok(part.content_id)
    }

    /// Completes upload `upload_id` with the ETags of parts `0..n`, in order; returns the object's ETag.
    pub async fn complete_multipart(
        &self,
        key: &StorageKey,
        upload_id: &str,
        part_etags: Vec<String>,
    ) -> Result<Option<String>> {
        let (s3, location) = self.multipart_target(key)?;
        let parts = part_etags
            .into_iter()
            .map(|content_id| PartId { content_id })
            .collect();
        let result = s3
            .complete_multipart(&location, &upload_id.to_owned(), parts)
            .await
            .map_err(|e| Error::from_backend(key.as_str(), e))?;
        Ok(result.e_tag)
    }

    /// Aborts upload `upload_id`: its parts are deleted. Aborting an upload that no longer exists succeeds,
    /// so a retry after a crash is safe.
    pub async fn abort_multipart(&self, key: &StorageKey, upload_id: &str) -> Result<()> {
        let (s3, location) = self.multipart_target(key)?;
        match s3.abort_multipart(&location, &upload_id.to_owned()).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(Error::from_backend(key.as_str(), e)),
        }
    }
}
