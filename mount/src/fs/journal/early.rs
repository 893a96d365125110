//! Write-back while writing: a large file written in sequence (a render) is uploaded part by part while it is
//! being written, so it is in the store shortly after `close` rather than a whole upload later.
//!
//! Once a whole part (8 MiB) lies a gathering buffer behind the end of what was written, a pass starts a
//! multipart upload of the file (its id saved in `<id>.upload` like any other, see `upload.rs`) and sends the
//! parts that are ready, in order, [`PARTS_IN_FLIGHT`] at a time, each recorded in `<id>.upload` as the store
//! acknowledges it. Every part stays in the journal's data file until the whole file is in the store: the
//! parts are not counted out of the dirty budget, and a crash after a promise (`close`/`fsync`) resumes the
//! same upload from the journal. Nothing is completed early: at `close` the ordinary upload takes the saved
//! upload over, sends what is left and completes it. A part sent early is trusted without reading it again
//! only while no write has touched it since; one that was rewritten (an application patching a header at the
//! end) is read, and sent again when its CRC changed.
//!
//! A write into a part already sent (random writes), a truncate, a send that fails, or an object that changed
//! in the store since the file was read ends the early upload of that file: it falls back to the upload at
//! `close`. The multipart upload is created without the file's mtime (the store sets an object's metadata when
//! the upload is created, long before the last write): such an object's mtime is the store's time of
//! completion. Its extended attributes are stored; if they (or the mtime, by `utimes`) are changed after the
//! upload started, the upload at `close` starts afresh.

use bytes::Bytes;
use futures::StreamExt as _;

use super::staged::{GATHER, read_part};
use super::upload::{PARTS_IN_FLIGHT, SavedUpload, SentPart, read_saved};
use super::{Journal, lock_file};
use crate::error::{Error, Result};

/// The part size of uploads made while writing (the store's smallest, so a render is in the store after at
/// most a part's worth of waiting; part sizes only have to grow for files past 9,000 of them).
pub(super) const EARLY_PART: u64 = storage::MIN_PART_SIZE as u64;

/// What an entry knows about its parts sent while it was written.
#[derive(Debug, Default)]
pub(super) struct Early {
    /// No (more) parts are sent early for this entry.
    off: bool,
    /// Parts sent, from the first: the next one to send.
    sent: usize,
    /// Per part: the generation of the last write that touched it.
    touched: Vec<u64>,
    /// Per part: the generation whose bytes were sent early (0: not sent early).
    sent_at: Vec<u64>,
}

impl Early {
    /// No early upload for an entry (one found at start: its upload is resumed at once anyway).
    pub(super) fn off() -> Self {
        Self {
            off: true,
            ..Self::default()
        }
    }

    /// A write of `len` bytes at `offset` made the entry's generation `generation`.
    pub(super) fn note_write(&mut self, offset: u64, len: u64, generation: u64) {
        if len == 0 {
            return;
        }
        let first = usize::try_from(offset / EARLY_PART).unwrap_or(usize::MAX);
        let last = usize::try_from((offset + len - 1) / EARLY_PART).unwrap_or(usize::MAX);
        if first < self.sent {
            // Not a sequential writer: nothing more is sent before close.
            self.off = true;
        }
        if !self.off || !self.sent_at.is_empty() {
            if self.touched.len() <= last {
                self.touched.resize(last + 1, 0);
            }
            for touched in &mut self.touched[first..=last] {
                *touched = generation;
            }
        }
    }

    /// The entry was truncated: nothing sent early is trusted any more, and nothing more is sent early.
    pub(super) fn note_truncate(&mut self) {
        self.off = true;
        self.sent_at.clear();
    }

    /// Whether part `index` of [`EARLY_PART`] bytes is in the store as the data file holds it now.
    pub(super) fn trusted(&self, index: usize) -> bool {
        let sent = self.sent_at.get(index).copied().unwrap_or(0);
        sent > 0 && sent >= self.touched.get(index).copied().unwrap_or(0)
    }

    /// Whether part `index` can be sent while writing goes on: early uploads are on, and the part is whole
    /// with a gathering buffer after it (so its bytes have left the writer's buffer).
    fn ready(&self, index: usize, size: u64) -> bool {
        !self.off && size >= (index as u64 + 1) * EARLY_PART + GATHER as u64
    }

    /// Whether a pass should start for an entry of `size` bytes.
    pub(super) fn due(&self, size: u64) -> bool {
        self.ready(self.sent, size)
    }
}

impl Journal {
    /// One pass of early parts for entry `id`, which the caller marked as uploading; when it ends the entry
    /// is free again and queued for its upload if one is due (it was closed meanwhile).
    pub(super) async fn send_early(&self, id: u64) {
        if let Err(e) = self.send_early_parts(id).await {
            tracing::warn!(error = %e, id, "uploading while writing failed; the file is uploaded at close");
            if let Some(staged) = self.lock().entries.get_mut(&id) {
                staged.early.off = true;
            }
        }
        let again = match self.lock().entries.get_mut(&id) {
            Some(staged) => {
                staged.uploading = false;
                staged.upload_due()
            }
            None => false,
        };
        if again {
            let _ = self.queue.send(id);
        }
        self.changed.notify_waiters();
    }

    async fn send_early_parts(&self, id: u64) -> Result<()> {
        let (key, base, mut attributes) = {
            let state = self.lock();
            let staged = state.entries.get(&id).ok_or(Error::BadHandle { handle: id })?;
            (
                staged.key.clone(),
                staged.base_version.clone(),
                staged.attributes.clone(),
            )
        };
        let saved_path = self.dir.join(format!("{id}.upload"));
        let mut saved = match read_saved(&saved_path) {
            Some(saved) if saved.target == key.as_str() && saved.part_size == EARLY_PART => saved,
            other => {
                if other.is_some() {
                    self.abort_saved_upload(&saved_path);
                }
                if self.changed_in_store(&key, base.as_deref()).await? {
                    // The upload at close keeps the store's version and puts this one aside.
                    if let Some(staged) = self.lock().entries.get_mut(&id) {
                        staged.early.off = true;
                    }
                    return Ok(());
                }
                attributes.mtime = None;
                let upload_id = self
                    .store
                    .create_multipart_with_attributes(&key, &attributes)
                    .await?;
                let fresh = SavedUpload::new(&key, upload_id, EARLY_PART, &attributes);
                self.save(id, &fresh)?;
                tracing::debug!(%key, "uploading while writing");
                fresh
            }
        };
        let data = self.data_path(id);
        loop {
            let first = self.lock().entries.get(&id).map_or(0, |s| s.early.sent);
            // Evaluated lazily: the next index is taken when a send ends, if its part is ready by then.
            let ready = (first..).take_while(|&index| {
                self.lock()
                    .entries
                    .get(&id)
                    .is_some_and(|s| s.early.ready(index, s.size))
            });
            let sends = futures::stream::iter(ready)
                .map(|index| {
                    let data = data.clone();
                    let key = &key;
                    let upload_id = saved.upload_id.clone();
                    async move {
                        let generation = self
                            .lock()
                            .entries
                            .get(&id)
                            .map(|s| s.generation)
                            .ok_or(Error::BadHandle { handle: id })?;
                        let file = self.file(id)?;
                        let offset = index as u64 * EARLY_PART;
                        let buffer = self.part_pool.take(storage::MIN_PART_SIZE);
                        // Every write up to `generation` is in the file (or its gathering buffer) now; the bytes of
                        // the part are made to leave the buffer, then read.
                        let part = tokio::task::spawn_blocking(move || {
                            lock_file(&file).written_below(offset + EARLY_PART)?;
                            read_part(&data, offset, buffer)
                        })
                        .await
                        .map_err(|_| Error::Panicked {
                            what: "reading a part",
                        })??;
                        let crc32 = crc32fast::hash(part.as_ref());
                        let etag = self
                            .store
                            .put_part(key, &upload_id, index, Bytes::from_owner(part))
                            .await?;
                        Ok::<_, Error>((index, generation, SentPart { etag, crc32 }))
                    }
                })
                .buffered(PARTS_IN_FLIGHT);
            let mut sends = std::pin::pin!(sends);
            let mut any = false;
            while let Some(sent) = sends.next().await {
                let (index, generation, part) = sent?;
                if saved.parts.len() <= index {
                    saved.parts.resize(index + 1, None);
                }
                saved.parts[index] = Some(part);
                self.save(id, &saved)?;
                let mut state = self.lock();
                let Some(staged) = state.entries.get_mut(&id) else {
                    return Ok(());
                };
                staged.early.sent = index + 1;
                if staged.early.sent_at.len() <= index {
                    staged.early.sent_at.resize(index + 1, 0);
                }
                staged.early.sent_at[index] = generation;
                any = true;
            }
            if !any {
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_part_is_trusted_until_a_write_touches_it() {
        let mut early = Early::default();
        let part = EARLY_PART;
        early.note_write(0, part, 1);
        // A whole part, but the writer's gathering buffer may still hold its end.
        assert!(!early.due(part));
        early.note_write(part, part, 2);
        early.note_write(2 * part, GATHER as u64, 3);
        assert!(early.due(part + GATHER as u64));
        // Part 0 sent with generation 3's bytes, part 1 read at generation 2 and rewritten at 3.
        early.sent = 2;
        early.sent_at = vec![3, 2];
        early.touched[1] = 3;
        assert!(early.trusted(0));
        assert!(!early.trusted(1));
        assert!(!early.trusted(2));
        // A write into a part already sent ends early uploads and untrusts it.
        early.note_write(10, 5, 4);
        assert!(!early.trusted(0));
        assert!(!early.due(100 * part));
        early.note_truncate();
        assert!(!early.trusted(0));
    }
}
