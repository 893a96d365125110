//! The upload step: page through the server's pending list (the source of truth for what it still needs, so a
//! pass killed at any point is finished by the next one) and stream each resource from disk, at most N at once.
//! An upload is recorded as done only after the server answered; a refusal (4xx) is recorded with its reason
//! and the pass goes on; a server that stays unreachable through every retry ends the pass.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use api::{PendingUpload, ResourceType};
use futures::StreamExt as _;

use super::prepare::LocalFile;
use super::{PassReport, Phase, Progress};
use crate::client::{Server, Upload};
use crate::error::{Error, Result};
use crate::state::{FailureStatus, StateDb, UploadFigures};

/// Pending-list page size (the server allows up to 1000).
const PAGE: u32 = 500;

enum Outcome {
    Stored { sent: u64, deduplicated: bool },
    Refused,
    Unreadable,
}

/// How the uploads of a pass run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Settings<'a> {
    /// The library id sync batches used.
    pub(crate) library_id: &'a str,
    /// Uploads in flight at once.
    pub(crate) concurrency: usize,
    /// Files of at least this many bytes go resumably.
    pub(crate) resumable_threshold: u64,
}

/// Uploads everything the server lists as pending for this library and has a file here.
pub(crate) async fn upload_pending(
    server: &Server,
    state: &StateDb,
    settings: Settings<'_>,
    files: &HashMap<(String, ResourceType), LocalFile>,
    progress: &dyn Progress,
    report: &mut PassReport,
) -> Result<()> {
    let Settings {
        library_id,
        concurrency,
        ..
    } = settings;
    let pending = pending_list(server, library_id).await?;
    report.pending = pending.len() as u64;
    let mut jobs = Vec::new();
    for entry in pending {
        match files.get(&(entry.local_identifier.clone(), entry.resource)) {
            Some(file) => jobs.push((entry, file)),
            None => report.not_on_disk += 1,
        }
    }
    let total_bytes: u64 = jobs.iter().map(|(_, file)| file.size).sum();
    let previous = state.figures().await?;
    state
        .set_figures(&UploadFigures {
            pending_uploads: jobs.len() as u64,
            pending_bytes: total_bytes,
            ..previous
        })
        .await?;
    progress.start(Phase::Uploads, total_bytes);

    let started = Instant::now();
    let mut done_bytes = 0u64;
    let mut sent_bytes = 0u64;
    let mut remaining = jobs.len() as u64;
    let sent_counter = Arc::new(AtomicU64::new(0));
    let mut shown = 0u64;
    let mut ticker = tokio::time::interval(Duration::from_millis(200));
    // The futures are built in a plain loop, not a `map` closure: a closure returning borrowing futures trips
    // the compiler's higher-ranked `Send` check when the pass is spawned. They are lazy, so nothing starts yet.
    let mut uploads = Vec::with_capacity(jobs.len());
    for (entry, file) in jobs {
        uploads.push(upload_one(
            server,
            state,
            settings,
            entry,
            file,
            &sent_counter,
            progress,
        ));
    }
    let mut results = futures::stream::iter(uploads).buffer_unordered(concurrency.max(1));
    loop {
        let result = tokio::select! {
            next = results.next() => match next {
                Some(result) => result,
                None => break,
            },
            _ = ticker.tick() => {
                let now = sent_counter.load(Ordering::Relaxed);
                progress.advance(Phase::Uploads, now.saturating_sub(shown));
                shown = now;
                continue;
            }
        };
        let (size, outcome) = result?;
        match outcome {
            Outcome::Stored { sent, deduplicated } => {
                report.uploaded += 1;
                report.deduplicated += u64::from(deduplicated);
                report.bytes_uploaded += sent;
                sent_bytes += sent;
                done_bytes += size;
                remaining -= 1;
            }
            Outcome::Refused => report.upload_failures += 1,
            Outcome::Unreadable => report.unreadable += 1,
        }
    }
    drop(results);
    progress.advance(
        Phase::Uploads,
        sent_counter.load(Ordering::Relaxed).saturating_sub(shown),
    );
    progress.finish(Phase::Uploads);

    let elapsed = started.elapsed().as_secs_f64();
    let upload_rate = if sent_bytes > 0 && elapsed > 0.0 {
        sent_bytes as f64 / elapsed
    } else {
        previous.upload_rate
    };
    let pending_bytes = total_bytes.saturating_sub(done_bytes);
    let eta = if pending_bytes == 0 {
        Some(0)
    } else if upload_rate > 0.0 {
        Some((pending_bytes as f64 / upload_rate).ceil() as u64)
    } else {
        None
    };
    state
        .set_figures(&UploadFigures {
            bytes_uploaded: previous.bytes_uploaded,
            upload_rate,
            eta,
            pending_uploads: remaining,
            pending_bytes,
            ..previous
        })
        .await
}

/// Every page of the pending list of this library: what it is asked to upload (of a photo another Mac of the
/// same iCloud library also has, only what the server holds this library's declaration of).
async fn pending_list(server: &Server, library_id: &str) -> Result<Vec<PendingUpload>> {
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = match server.pending(library_id, PAGE, cursor.as_deref()).await {
            Ok(page) => page,
            // The server has no such library of ours (nothing was ever sent from it): nothing to upload.
            Err(Error::Refused { status: 404, .. }) => return Ok(all),
            Err(error) => return Err(error),
        };
        all.extend(page.items.into_iter().filter(|p| p.library_id == library_id));
        match page.next_cursor {
            Some(next) if Some(&next) != cursor.as_ref() => cursor = Some(next),
            _ => return Ok(all),
        }
    }
}

/// One upload, in its own span: which resource, its size and digest, then what the server did with it, how
/// many bytes went over the wire and how long it took (retries logged inside carry these fields).
#[tracing::instrument(name = "upload", skip_all, fields(
    local_identifier = %entry.local_identifier,
    resource = entry.resource.as_str(),
    size = file.size,
    sha256 = %file.sha256.get(..12).unwrap_or_default(),
    outcome = tracing::field::Empty,
    sent = tracing::field::Empty,
    ms = tracing::field::Empty,
))]
async fn upload_one(
    server: &Server,
    state: &StateDb,
    settings: Settings<'_>,
    entry: PendingUpload,
    file: &LocalFile,
    sent_counter: &Arc<AtomicU64>,
    progress: &dyn Progress,
) -> Result<(u64, Outcome)> {
    let upload = Upload {
        library_id: settings.library_id,
        local_identifier: &entry.local_identifier,
        resource: entry.resource,
        path: &file.path,
        sha256: &file.sha256,
        size: file.size,
    };
    let started = Instant::now();
    let span = tracing::Span::current();
    let result = if file.size >= settings.resumable_threshold {
        upload_resumably(server, state, &upload, sent_counter).await
    } else {
        server.upload(&upload, sent_counter).await
    };
    span.record("ms", started.elapsed().as_millis() as u64);
    match result {
        Ok(answer) => {
            let sent = if answer.deduplicated { 0 } else { answer.size };
            span.record(
                "outcome",
                if answer.deduplicated {
                    "deduplicated"
                } else {
                    "stored"
                },
            );
            span.record("sent", sent);
            tracing::debug!("uploaded");
            state.record_upload(&answer, sent).await?;
            progress.uploaded(&answer);
            Ok((
                file.size,
                Outcome::Stored {
                    sent,
                    deduplicated: answer.deduplicated,
                },
            ))
        }
        Err(error @ (Error::Refused { .. } | Error::Io { .. })) => {
            // A file that cannot be read now (it was when hashed) is this Mac's problem, not the server's.
            let (status, outcome) = match error {
                Error::Io { .. } => (FailureStatus::Unreadable, Outcome::Unreadable),
                _ => (FailureStatus::Refused, Outcome::Refused),
            };
            let reason = error.with_causes();
            span.record("outcome", status.as_str());
            tracing::warn!(error = %reason, "upload failed; recorded");
            state
                .record_failure(&entry.local_identifier, entry.resource.as_str(), status, &reason)
                .await?;
            Ok((file.size, outcome))
        }
        Err(other) => Err(other),
    }
}

/// Sends `upload` as a resumable upload: the upload's URL (kept in the state DB from an earlier pass, else
/// created now and kept), then appends of the rest of the file from the offset the server reports, asking
/// for it again after every interruption, until the server answers with the stored object. Gives up after
/// the client's retry budget of interruptions without progress. Records the bytes resumed (kept by the
/// server when the agent went on) and re-sent (sent in an append but not kept).
async fn upload_resumably(
    server: &Server,
    state: &StateDb,
    upload: &Upload<'_>,
    sent_counter: &Arc<AtomicU64>,
) -> Result<api::UploadAnswer> {
    use crate::client::{Appended, Created, Offset};
    let (id, resource) = (upload.local_identifier, upload.resource.as_str());
    let mut url = state.resumable_url(id, resource, upload.sha256).await?;
    let mut fresh = false;
    let (mut resumed, mut resent) = (0u64, 0u64);
    // The last append: where it started and the bytes it sent.
    let mut last: Option<(u64, u64)> = None;
    let mut stalls = 0u32;
    let mut delay = Duration::from_millis(250);
    loop {
        let at = match &url {
            Some(at) => at.clone(),
            None => match server.create_upload(upload).await? {
                Created::Stored(answer) => {
                    state.forget_resumable_url(id, resource).await?;
                    state.add_resumption(resumed, resent).await?;
                    return Ok(answer);
                }
                Created::At(at) => {
                    state.set_resumable_url(id, resource, upload.sha256, &at).await?;
                    url = Some(at.clone());
                    fresh = true;
                    last = None;
                    at
                }
            },
        };
        let offset = if fresh {
            0
        } else {
            match server.upload_offset(&at).await? {
                Offset::At(offset) => offset,
                Offset::Complete | Offset::Gone => {
                    // Done (its answer lost: creating it again answers "stored") or forgotten: start over.
                    state.forget_resumable_url(id, resource).await?;
                    url = None;
                    continue;
                }
            }
        };
        if let Some((started, sent)) = last.take() {
            let kept = offset.saturating_sub(started);
            resent += sent.saturating_sub(kept);
            if kept == 0 {
                stalls += 1;
            } else {
                stalls = 0;
            }
        }
        if offset > 0 {
            resumed += offset;
            tracing::info!(offset, "resuming an upload");
        }
        fresh = false;
        let attempt = Arc::new(AtomicU64::new(0));
        let counted = Arc::new(AtomicU64::new(0));
        let forward = {
            let (attempt, counted, total) = (
                Arc::clone(&attempt),
                Arc::clone(&counted),
                Arc::clone(sent_counter),
            );
            move || {
                let now = attempt.load(Ordering::Relaxed);
                let before = counted.swap(now, Ordering::Relaxed);
                total.fetch_add(now.saturating_sub(before), Ordering::Relaxed);
            }
        };
        let result = server.append_upload(&at, upload, offset, &attempt).await;
        forward();
        match result? {
            Appended::Done(answer) => {
                state.forget_resumable_url(id, resource).await?;
                state.add_resumption(resumed, resent).await?;
                return Ok(answer);
            }
            Appended::Gone => {
                state.forget_resumable_url(id, resource).await?;
                url = None;
            }
            Appended::Interrupted(detail) => {
                last = Some((offset, attempt.load(Ordering::Relaxed)));
                if stalls >= server.retry_attempts() {
                    state.add_resumption(resumed, resent).await?;
                    return Err(Error::Unreachable {
                        what: format!("resumable upload of {id} {resource}"),
                        attempts: stalls,
                        detail,
                    });
                }
                tracing::warn!(error = %detail, offset, "upload interrupted; asking for the offset");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(15));
            }
        }
    }
}
