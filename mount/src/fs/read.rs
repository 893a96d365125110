//! Reading objects through the block cache: demand fetches, sequential-read detection and prefetch, all under
//! one global memory budget.
//!
//! - A block is fetched once however many readers want it: concurrent requests share one in-flight fetch.
//! - Every fetched block holds bytes of the budget (a semaphore) until it is written to the disk cache. A
//!   demand fetch waits for budget; a prefetch only takes budget that is free and is skipped otherwise, so
//!   prefetching can never starve reads or grow memory past the budget, however many files are open.
//! - A handle reading sequentially doubles its prefetch window (up to [`MAX_WINDOW_BLOCKS`]); a seek resets it.
//! - A fetched block whose ETag is not the one the handle opened is an error ([`Error::Stale`]) and is not
//!   cached under the old version: a block of one version is never served as another.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::TryStreamExt as _;
use futures::future::{BoxFuture, FutureExt as _, Shared};
use storage::{StorageKey, Store};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::cache::{BlockCache, BlockId};
use crate::error::{Error, Result};
use crate::fs::inode::version_of;

/// The largest prefetch window, in blocks.
pub const MAX_WINDOW_BLOCKS: u64 = 8;

/// The version of an object a handle reads.
#[derive(Debug, Clone)]
pub(crate) struct FileVersion {
    pub(crate) key: StorageKey,
    pub(crate) version: String,
    pub(crate) size: u64,
}

/// Per-handle read state: where the next sequential read would start, the prefetch window, and the block
/// last read (so a run of small reads inside one block reads it from disk once).
#[derive(Debug, Default)]
pub(crate) struct ReadState {
    next_offset: u64,
    window: u64,
    current: Option<(u64, Bytes, OwnedSemaphorePermit)>,
}

type SharedFetch = Shared<BoxFuture<'static, Result<Bytes, Arc<Error>>>>;

/// The block reader shared by all handles.
#[derive(Debug)]
pub(crate) struct Reader {
    store: Store,
    cache: Arc<dyn BlockCache>,
    block_size: u64,
    budget: Arc<Semaphore>,
    budget_bytes: u64,
    timeout: Duration,
    inflight: Mutex<HashMap<BlockId, SharedFetch>>,
}

impl Reader {
    pub(crate) fn new(
        store: Store,
        cache: Arc<dyn BlockCache>,
        block_size: u64,
        budget_bytes: u64,
        timeout: Duration,
    ) -> Self {
        Self {
            store,
            cache,
            block_size,
            budget: Arc::new(Semaphore::new(
                usize::try_from(budget_bytes).unwrap_or(usize::MAX >> 4),
            )),
            budget_bytes,
            timeout,
            inflight: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn cache(&self) -> &Arc<dyn BlockCache> {
        &self.cache
    }

    /// Reads `size` bytes at `offset` of `file` (fewer at the end of the file).
    pub(crate) async fn read(
        self: &Arc<Self>,
        file: &FileVersion,
        state: &mut ReadState,
        offset: u64,
        size: u32,
    ) -> Result<Bytes> {
        let end = file.size.min(offset.saturating_add(u64::from(size)));
        if offset >= end {
            return Ok(Bytes::new());
        }
        // Sequential detection: a read that starts where the last ended grows the window, a seek resets it.
        if offset == state.next_offset {
            state.window = (state.window * 2).clamp(1, MAX_WINDOW_BLOCKS);
        } else {
            state.window = 0;
        }
        state.next_offset = end;

        let first = offset / self.block_size;
        let last = (end - 1) / self.block_size;
        let mut out = BytesMut::with_capacity(usize::try_from(end - offset).unwrap_or(0));
        for index in first..=last {
            let block = match &state.current {
                Some((current, bytes, _)) if *current == index => bytes.clone(),
                _ => {
                    let bytes = self.block(file, index).await?;
                    // Keep it for the next small read only with budget to spare: a held block counts.
                    state.current = None;
                    if self.budget.available_permits() as u64 > self.budget_bytes / 2
                        && let Ok(permit) = self
                            .budget
                            .clone()
                            .try_acquire_many_owned(permit_count(bytes.len()))
                    {
                        state.current = Some((index, bytes.clone(), permit));
                    }
                    bytes
                }
            };
            let block_start = index * self.block_size;
            let from = usize::try_from(offset.max(block_start) - block_start).unwrap_or(0);
            let to = usize::try_from(end.min(block_start + block.len() as u64) - block_start).unwrap_or(0);
            if from >= to || to > block.len() {
                return Err(Error::Stale {
                    key: file.key.to_string(),
                });
            }
            out.extend_from_slice(&block[from..to]);
        }
        self.prefetch(file, last + 1, state.window);
        Ok(out.freeze())
    }

    /// One block, from the disk cache or the store.
    async fn block(self: &Arc<Self>, file: &FileVersion, index: u64) -> Result<Bytes> {
        let id = BlockId {
            key: file.key.to_string(),
            version: file.version.clone(),
            index,
        };
        let cache = self.cache.clone();
        let lookup = id.clone();
        let cached = tokio::task::spawn_blocking(move || cache.get(&lookup))
            .await
            .map_err(|_| Error::Panicked { what: "cache read" })??;
        if let Some(bytes) = cached {
            return Ok(bytes);
        }
        let fetch = match self.inflight_fetch(&id) {
            Some(fetch) => fetch,
            None => {
                let permit = self
                    .budget
                    .clone()
                    .acquire_many_owned(permit_count(self.block_len(file, index)))
                    .await
                    .map_err(|_| Error::Panicked {
                        what: "memory budget",
                    })?;
                self.start_fetch(file, id, permit)
            }
        };
        fetch.await.map_err(Error::Shared)
    }

    /// Starts fetching the blocks after a sequential read, as far as the budget allows right now.
    fn prefetch(self: &Arc<Self>, file: &FileVersion, from: u64, window: u64) {
        let blocks = file.size.div_ceil(self.block_size);
        for index in from..(from + window).min(blocks) {
            let id = BlockId {
                key: file.key.to_string(),
                version: file.version.clone(),
                index,
            };
            if self.cache.contains(&id) || self.inflight_fetch(&id).is_some() {
                continue;
            }
            let Ok(permit) = self
                .budget
                .clone()
                .try_acquire_many_owned(permit_count(self.block_len(file, index)))
            else {
                return;
            };
            let _fetch = self.start_fetch(file, id, permit);
        }
    }

    fn block_len(&self, file: &FileVersion, index: u64) -> usize {
        let start = index * self.block_size;
        usize::try_from(file.size.saturating_sub(start).min(self.block_size)).unwrap_or(0)
    }

    fn inflight_fetch(&self, id: &BlockId) -> Option<SharedFetch> {
        self.inflight
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(id)
            .cloned()
    }

    /// Starts a fetch as a task of its own (it completes even when the reader that asked goes away) and
    /// registers it; a fetch already running for the block is returned instead.
    fn start_fetch(
        self: &Arc<Self>,
        file: &FileVersion,
        id: BlockId,
        permit: OwnedSemaphorePermit,
    ) -> SharedFetch {
        let mut inflight = self
            .inflight
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(existing) = inflight.get(&id) {
            return existing.clone();
        }
        let reader = Arc::clone(self);
        let file = file.clone();
        let task_id = id.clone();
        // The readers get the bytes as soon as they arrive; the task then writes them to the disk cache and
        // only after that gives back the budget and leaves `inflight` (so nobody fetches the block again
        // while it is being written).
        let (sender, receiver) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let result = reader.fetch(&file, &task_id).await.map_err(Arc::new);
            let _ = sender.send(result.clone());
            if let Ok(bytes) = result {
                let cache = reader.cache.clone();
                let put_id = task_id.clone();
                match tokio::task::spawn_blocking(move || cache.put(&put_id, &bytes)).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => tracing::warn!(error = %e, "caching a block failed; serving it anyway"),
                    Err(_) => tracing::warn!("caching a block panicked; serving it anyway"),
                }
            }
            drop(permit);
            reader
                .inflight
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .remove(&task_id);
        });
        let shared = async move {
            match receiver.await {
                Ok(result) => result,
                Err(_) => Err(Arc::new(Error::Panicked { what: "block fetch" })),
            }
        }
        .boxed()
        .shared();
        inflight.insert(id, shared.clone());
        shared
    }

    /// One ranged GET, within the request timeout, checked against the version the handle opened.
    async fn fetch(&self, file: &FileVersion, id: &BlockId) -> Result<Bytes> {
        let start = id.index * self.block_size;
        let end = file.size.min(start + self.block_size);
        let get = async {
            let object = self.store.get(&file.key, Some(start..end)).await?;
            if version_of(&object.meta) != file.version {
                return Err(Error::Stale {
                    key: file.key.to_string(),
                });
            }
            let chunks: Vec<Bytes> = object.body.try_collect().await?;
            let mut bytes = BytesMut::with_capacity(usize::try_from(end - start).unwrap_or(0));
            for chunk in chunks {
                bytes.extend_from_slice(&chunk);
            }
            if bytes.len() as u64 != end - start {
                return Err(Error::Stale {
                    key: file.key.to_string(),
                });
            }
            Ok(bytes.freeze())
        };
        tokio::time::timeout(self.timeout, get)
            .await
            .map_err(|_| Error::Timeout {
                what: "a ranged GET",
                seconds: self.timeout.as_secs(),
            })?
    }
}

/// Semaphore permits for `len` bytes (one permit per byte; at least one so an empty block still counts).
fn permit_count(len: usize) -> u32 {
    u32::try_from(len.max(1)).unwrap_or(u32::MAX)
}
