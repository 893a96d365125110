//! One append to a resumable upload: the request body streamed into the store's [`storage::Appender`], a
//! checkpoint in the catalog at every part, and at the end either a last checkpoint (the upload goes on) or
//! the completion (digest checked, object stored create-only, catalog told).
//!
//! It runs as a task of its own, not inside the handler's future: when the client's connection drops,
//! hyper drops the handler, but the bytes that did arrive must still become durable and acknowledged — the
//! draft asks the server to keep as much as it received, and the client's next `HEAD` reads the offset.

use api::ErrorCode;
use std::time::Duration;

use axum::body::Body;
use axum::http::StatusCode;
use chrono::Utc;
use futures::StreamExt as _;
use storage::{LibraryLayout, ResumableProgress, ResumableTarget, Sha256Digest, Sha256Hasher, StorageKey};
use tokio_util::sync::CancellationToken;

use crate::catalog::{Blob, ResumableSave, ResumableUpload, UploadRecord};
use crate::http::AppState;
use crate::http::error::ApiError;

/// One append, as the handler prepared it (the upload held by `holder`, the offset checked).
#[derive(Debug)]
pub(crate) struct Append {
    pub(crate) state: AppState,
    pub(crate) upload: ResumableUpload,
    pub(crate) holder: String,
    /// The request's content ends the upload.
    pub(crate) complete: bool,
    /// `Upload-Length`, when known (from this request or an earlier one).
    pub(crate) length: Option<u64>,
    /// `Content-Digest` of this request's content: checked before any of it is acknowledged.
    pub(crate) content_digest: Option<Sha256Digest>,
    /// `Repr-Digest` (or `X-Content-SHA256`) of the whole upload, when this request names it.
    pub(crate) repr_digest: Option<Sha256Digest>,
    /// Cancelled when a newer request for the same upload takes over (the draft lets the server end the
    /// older transfer: the client cannot be sending both).
    pub(crate) cancel: CancellationToken,
}

/// How an append ended.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Bytes `0..offset` are kept; the upload goes on.
    Incomplete { offset: u64 },
    /// The upload is stored.
    Complete { offset: u64, answer: api::UploadAnswer },
}

/// After a newer request took over, how long the body may go quiet before the append ends.
const DRAIN: Duration = Duration::from_millis(200);

/// How long a hold lasts without renewal: a holder renews it at every part and every third of this.
pub(crate) fn hold_for(state: &AppState) -> Duration {
    (state.settings().body_idle_timeout * 2).max(Duration::from_secs(60))
}

/// Runs `append` with `body` to its end.
pub(crate) async fn run(append: Append, body: Body) -> Result<Outcome, ApiError> {
    let Append {
        state,
        upload,
        holder,
        complete,
        length,
        content_digest,
        repr_digest,
        cancel,
    } = append;
    let target = ResumableTarget {
        staging: StorageKey::parse(upload.staging_key.as_str())?,
        key: StorageKey::parse(upload.target_key.as_str())?,
    };
    let progress: ResumableProgress =
        serde_json::from_str(&upload.progress).map_err(|e| ApiError::internal(&e))?;
    let checkpoint = Checkpoint {
        state: &state,
        upload: &upload,
        holder: &holder,
        length,
    };
    let mut appender = match state
        .store()
        .resumable_append(&target, progress.clone(), state.settings().resumable_part_size)
        .await
    {
        Ok(appender) => appender,
        Err(e) => {
            checkpoint.release().await;
            return Err(e.into());
        }
    };
    let max = state.settings().max_upload_bytes;
    let mut request_hash = content_digest.map(|_| Sha256Hasher::new());
    let mut stream = body.into_data_stream();
    let mut failure: Option<ApiError> = None;
    let mut renewed = tokio::time::Instant::now();
    let renew_every = hold_for(&state) / 3;
    let mut draining = false;
    loop {
        // Once a newer request took over, the bytes already on their way (in the socket, in hyper's buffers)
        // are still taken — the client sent them — until the body goes quiet; then the append ends.
        let next = if draining {
            match tokio::time::timeout(DRAIN, stream.next()).await {
                Ok(next) => next,
                Err(_) => {
                    failure = Some(ApiError::new(
                        StatusCode::CONFLICT,
                        ErrorCode::UploadSuperseded,
                        "a newer request for this upload took over; ask for the offset",
                    ));
                    break;
                }
            }
        } else {
            tokio::select! {
                () = cancel.cancelled() => {
                    draining = true;
                    continue;
                }
                next = stream.next() => next,
            }
        };
        let chunk = match next {
            None => break,
            Some(Ok(chunk)) => chunk,
            Some(Err(error)) => {
                failure = Some(if crate::http::error::is_body_timeout(&error) {
                    crate::http::error::body_stalled("the bytes received are kept; ask for the offset")
                } else {
                    ApiError::bad_request(
                        ErrorCode::BodyInterrupted,
                        "the body ended early; the bytes received are kept",
                    )
                });
                break;
            }
        };
        let after = appender.written() + chunk.len() as u64;
        if after > max {
            failure = Some(super::too_large(max));
            break;
        }
        if let Some(length) = length
            && after > length
        {
            failure = Some(ApiError::bad_request(
                ErrorCode::InconsistentUploadLength,
                format!("more bytes than Upload-Length: {length}"),
            ));
            break;
        }
        if let Some(hash) = &mut request_hash {
            hash.update(&chunk);
        }
        match appender.write(chunk).await {
            // With a Content-Digest nothing of the request is acknowledged before the whole is checked.
            Ok(Some(progress)) if request_hash.is_none() => {
                if !checkpoint.save(&progress, None, true).await? {
                    return Err(lost());
                }
                appender.persisted().await;
                renewed = tokio::time::Instant::now();
            }
            Ok(_) => {}
            Err(e) => {
                // The appender's memory may be ahead of the store: keep the last checkpoint, nothing newer.
                checkpoint.release().await;
                return Err(e.into());
            }
        }
        if renewed.elapsed() > renew_every {
            checkpoint.renew().await?;
            renewed = tokio::time::Instant::now();
        }
    }

    if let (Some(expected), Some(hash)) = (content_digest, request_hash) {
        let actual = hash.finish();
        if failure.is_some() || actual != expected {
            checkpoint.release().await;
            return Err(failure.unwrap_or_else(|| {
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    ErrorCode::DigestMismatch,
                    format!(
                        "Content-Digest: this request's content hashes to {actual}; none of it was kept \
                         (resume from Upload-Offset {})",
                        progress.offset
                    ),
                )
            }));
        }
    }
    let total = appender.written();
    let inconsistent = complete && length.is_some_and(|l| l != total);
    if failure.is_some() || !complete || inconsistent {
        let progress = match appender.checkpoint().await {
            Ok(progress) => progress,
            Err(e) => {
                checkpoint.release().await;
                return Err(e.into());
            }
        };
        if !checkpoint.save(&progress, None, false).await? {
            return Err(lost());
        }
        appender.persisted().await;
        if let Some(failure) = failure {
            return Err(failure);
        }
        if inconsistent {
            return Err(ApiError::bad_request(
                ErrorCode::InconsistentUploadLength,
                format!("the upload ends at {total} bytes, not at its Upload-Length"),
            ));
        }
        return Ok(Outcome::Incomplete {
            offset: progress.offset,
        });
    }

    // Complete: the digest named now, else at creation (the client's, or the one declared at sync).
    let expected = repr_digest.or_else(|| upload.expected_sha256.as_deref().and_then(Sha256Digest::from_hex));
    let last = appender.progress().clone();
    match appender.complete(expected).await {
        Ok((digest, size)) => finish(&checkpoint, &target, &last, digest, size).await,
        Err(storage::Error::DigestMismatch { actual, .. }) => {
            discard(&state, &upload, &target, &last).await;
            state.metrics().upload("rejected", 0);
            Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::DigestMismatch,
                format!(
                    "the upload's SHA-256 is {actual}, not the one announced or declared at sync; nothing was stored"
                ),
            ))
        }
        Err(storage::Error::AlreadyExists { .. }) => {
            // Another upload stored this key meanwhile: the same bytes are linked, other bytes left alone.
            let found = match expected {
                Some(digest) => {
                    super::holding(
                        &state,
                        &target.key,
                        state.store().head(&target.key).await?.size,
                        digest,
                    )
                    .await?
                }
                None => None,
            };
            discard(&state, &upload, &target, &last).await;
            match found {
                Some(blob) => {
                    let answer = record(&state, &upload, blob, true).await?;
                    Ok(Outcome::Complete {
                        offset: answer.size,
                        answer,
                    })
                }
                None => Err(ApiError::new(
                    StatusCode::CONFLICT,
                    ErrorCode::UploadConflict,
                    "another upload of this resource finished first; ask for the pending list again",
                )),
            }
        }
        Err(e) => {
            checkpoint.release().await;
            Err(e.into())
        }
    }
}

/// The object is at its key: move it to its content key if it was written under `incoming/`, keep one copy
/// of content the user already stores, record it, and keep the answer in the upload's row.
async fn finish(
    checkpoint: &Checkpoint<'_>,
    target: &ResumableTarget,
    last: &ResumableProgress,
    digest: Sha256Digest,
    size: u64,
) -> Result<Outcome, ApiError> {
    let (state, upload) = (checkpoint.state, checkpoint.upload);
    let layout = LibraryLayout::new(upload.user_id.as_str(), upload.library_id.as_str())?;
    let ext = target
        .key
        .as_str()
        .rsplit_once('.')
        .map_or("bin", |(_, ext)| ext)
        .to_owned();
    let receipt = storage::PutReceipt {
        key: target.key.clone(),
        size,
        etag: None,
        sha256: digest,
    };
    let key = super::settle(state, &layout, target.key.clone(), &receipt, &ext).await?;
    let hex = digest.to_hex();
    let catalog = state.catalog();
    let answer = match catalog.blob_by_sha(&upload.user_id, &hex).await? {
        // The object just written is ours alone (created, never recorded): removing it loses nothing.
        Some(blob) if blob.key != key.as_str() => {
            state.store().delete(&key).await?;
            record(state, upload, blob, false).await?
        }
        _ => {
            let blob = Blob {
                sha256: hex,
                key: key.to_string(),
                size,
            };
            let answer = record(state, upload, blob, true).await?;
            state.metrics().upload("stored", size);
            api::UploadAnswer {
                deduplicated: false,
                ..answer
            }
        }
    };
    let progress = ResumableProgress {
        offset: size,
        ..last.clone()
    };
    let text = serde_json::to_string(&answer).map_err(|e| ApiError::internal(&e))?;
    checkpoint.save(&progress, Some(&text), false).await?;
    tracing::info!(bytes = size, "resumable upload stored");
    Ok(Outcome::Complete { offset: size, answer })
}

/// Records `blob` as the resource's bytes (`found`: stored for it now, not a link to other content).
async fn record(
    state: &AppState,
    upload: &ResumableUpload,
    blob: Blob,
    found: bool,
) -> Result<api::UploadAnswer, ApiError> {
    let record = UploadRecord {
        photo_id: upload.photo_id.clone(),
        resource: upload.resource,
        sha256: blob.sha256.clone(),
        size: blob.size,
        key: blob.key.clone(),
        at: Utc::now(),
        deduplicated: !found,
    };
    state.catalog().record_upload(&upload.user_id, &record).await?;
    Ok(api::UploadAnswer {
        local_identifier: upload.local_identifier.clone(),
        resource: upload.resource,
        sha256: blob.sha256,
        size: blob.size,
        key: blob.key,
        deduplicated: true,
    })
}

/// Aborts the upload's storage and forgets it: nothing of it is stored.
pub(crate) async fn discard(
    state: &AppState,
    upload: &ResumableUpload,
    target: &ResumableTarget,
    progress: &ResumableProgress,
) {
    match state.store().resumable_abort(target, progress).await {
        Ok(()) => {
            if let Err(error) = state.catalog().resumable_delete(&upload.id).await {
                tracing::warn!(%error, "an aborted upload's row stays until it expires");
            }
        }
        Err(error) => tracing::warn!(%error, "an aborted upload's staging stays until it expires"),
    }
}

/// The catalog writes of one append, all conditional on its hold.
struct Checkpoint<'a> {
    state: &'a AppState,
    upload: &'a ResumableUpload,
    holder: &'a str,
    length: Option<u64>,
}

impl Checkpoint<'_> {
    /// Persists `progress` (and the final `answer`), keeping the hold when `keep`; false if it was lost.
    async fn save(
        &self,
        progress: &ResumableProgress,
        answer: Option<&str>,
        keep: bool,
    ) -> Result<bool, ApiError> {
        let text = serde_json::to_string(progress).map_err(|e| ApiError::internal(&e))?;
        let now = Utc::now();
        let hold_until = keep.then(|| now + hold_for(self.state));
        Ok(self
            .state
            .catalog()
            .resumable_save(&ResumableSave {
                id: &self.upload.id,
                holder: self.holder,
                offset: progress.offset,
                progress: &text,
                length: self.length,
                answer,
                at: now,
                hold_until,
            })
            .await?)
    }

    /// Extends the hold; an error if another request took the upload.
    async fn renew(&self) -> Result<(), ApiError> {
        let now = Utc::now();
        let held = self
            .state
            .catalog()
            .resumable_hold(
                &self.upload.user_id,
                &self.upload.id,
                self.holder,
                now,
                now + hold_for(self.state),
            )
            .await?;
        match held {
            Some(_) => Ok(()),
            None => Err(lost()),
        }
    }

    /// Lets the upload go, keeping the last checkpoint.
    async fn release(&self) {
        if let Err(error) = self
            .state
            .catalog()
            .resumable_release(&self.upload.id, self.holder)
            .await
        {
            tracing::warn!(%error, "the upload's hold lapses on its own");
        }
    }
}

fn lost() -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        ErrorCode::UploadSuperseded,
        "another request took over this upload; ask for the offset",
    )
}
