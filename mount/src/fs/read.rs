//! Reading objects through memory and the block cache: demand loads, sequential-read detection and prefetch,
//! all under one global memory budget.
//!
//! - Every block in memory holds bytes of the budget (a semaphore) for exactly as long as its bytes live: the
//!   permit is owned by the allocation ([`Bytes::from_owner`]), so a slice handed to a FUSE reply keeps it
//!   counted until the reply is sent, and nothing in memory escapes the count.
//! - A block is loaded once however many readers want it: a load (from the disk cache, or a ranged GET) is a
//!   task of its own, registered so that concurrent readers share it. A read is answered as soon as the bytes
//!   it needs have come in, while the rest of the block is still arriving (`progress`).
//! - A block fetched from the store is served from memory at once and written to the disk cache behind the
//!   readers' backs (no reader waits for the write or the checksum). It stays in memory while it is ahead of a
//!   sequential reader; memory is given back LRU-first whenever a demand load needs budget, and a block a
//!   sequential reader has passed is dropped (it is on disk).
//! - A demand load waits for budget (evicting blocks already on disk first) up to the request timeout; a
//!   prefetch only takes budget that is free or held by blocks already read, and is skipped otherwise, so
//!   prefetching can never starve reads or grow memory past the budget, however many files are open.
//! - A handle reading sequentially prefetches as far ahead as its run has read so far, in whole blocks rounded
//!   up to a power of two (up to [`MAX_WINDOW_BLOCKS`]); a seek resets it. A run shorter than a block
//!   prefetches nothing: a player reads a clip's header (a MiB or so, in many requests) before it seeks, and
//!   growing the window per request made that header read prefetch 64 MiB, which then held the link while the
//!   seek waited. Reads that arrive slightly out of order (the kernel sends read-ahead requests in parallel)
//!   still count as sequential.
//! - The windows share the budget: each is capped at three quarters of it divided among the handles reading
//!   sequentially now ([`Reader::advance`]). Four readers with 64 MiB windows each asked twice the default
//!   budget; their prefetches were refused, and they read block by block behind demand loads that had to
//!   wait for one another's cache writes (4 parallel readers: 122 MiB/s against one reader's 680, with the
//!   kernel's 128 KiB read-ahead).
//! - A reader's GET of a block goes on into the next blocks while readers ask for them (`stream`): after a
//!   seek, the kernel's read-ahead of the following blocks joins the GET bringing the block being waited for
//!   instead of splitting the link with it.
//! - A demand load landing in the middle of a block starts its GET where the read landed and fetches the
//!   block's head after (`stream::LAND_MIN`): a seek waits for the bytes it reads, not the block before them.
//! - A fetched block whose ETag is not the one the handle opened is an error ([`Error::Stale`]) and is not
//!   cached under the old version: a block of one version is never served as another.

mod load;
mod memory;
mod progress;
mod stream;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use storage::{StorageKey, Store};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::cache::buffer::BufferPool;
use crate::cache::{BlockCache, BlockId};
use crate::error::{Error, Result};
use memory::{Found, Memory};

/// Consecutive blocks a prefetch fetches with one ranged GET: fewer, larger requests cost the store and the
/// mount less per byte (a third less CPU in the store than one GET per 4 MiB block), and each block still
/// reaches its readers as soon as its own bytes are in.
pub(crate) const BLOCKS_PER_GET: u64 = 8;

/// The largest prefetch window, in blocks (with 4 MiB blocks, 64 MiB ahead of a sequential reader: sixteen
/// ranged GETs in flight keep a fast link and the store busy).
pub const MAX_WINDOW_BLOCKS: u64 = 16;

/// The version of an object a handle reads.
#[derive(Debug, Clone)]
pub(crate) struct FileVersion {
    pub(crate) key: StorageKey,
    pub(crate) version: String,
    pub(crate) size: u64,
}

/// Per-handle read state: where the current sequential run started and has reached, and its prefetch window.
#[derive(Debug, Default)]
pub(crate) struct ReadState {
    run_start: u64,
    next_offset: u64,
    window: u64,
    /// Counted among the handles reading sequentially while its window is open (see [`Reader::advance`]).
    sequential: Option<Sequential>,
}

/// One handle's share in [`Reader`]'s count of sequential readers, given back when dropped.
#[derive(Debug)]
struct Sequential(Arc<AtomicU64>);

impl Sequential {
    fn new(count: &Arc<AtomicU64>) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Self(Arc::clone(count))
    }
}

impl Drop for Sequential {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl ReadState {
    /// Records a read of `offset..end` and returns the prefetch window (blocks of `block_size`). A read within
    /// two blocks of where the run has reached continues it; the window is then the run's length in whole
    /// blocks, rounded up to a power of two (0 below one block). Any other read is a seek and resets it.
    fn advance(&mut self, offset: u64, end: u64, block_size: u64) -> u64 {
        let tolerance = 2 * block_size;
        let sequential = offset <= self.next_offset.saturating_add(tolerance)
            && offset.saturating_add(tolerance) >= self.next_offset;
        if sequential {
            self.next_offset = self.next_offset.max(end);
            let run_blocks = (self.next_offset - self.run_start) / block_size.max(1);
            self.window = match run_blocks {
                0 => 0,
                n => n.next_power_of_two().min(MAX_WINDOW_BLOCKS),
            };
        } else {
            self.window = 0;
            self.run_start = offset;
            self.next_offset = end;
        }
        self.window
    }
}

/// The block reader shared by all handles.
#[derive(Debug)]
pub(crate) struct Reader {
    store: Store,
    cache: Arc<dyn BlockCache>,
    block_size: u64,
    budget: Arc<Semaphore>,
    /// The budget in blocks.
    budget_blocks: u64,
    /// Handles reading sequentially now (with a prefetch window open).
    sequential: Arc<AtomicU64>,
    /// Buffers for blocks, reused (the budget bounds how many are in use).
    pool: Arc<BufferPool>,
    timeout: Duration,
    memory: Mutex<Memory>,
    /// Demand GETs that readers' next blocks may join (`stream`). Locked before `memory` when both are.
    tails: Mutex<stream::Tails>,
}

impl Reader {
    pub(crate) fn new(
        store: Store,
        cache: Arc<dyn BlockCache>,
        block_size: u64,
        budget_bytes: u64,
        timeout: Duration,
    ) -> Self {
        let budget_blocks = budget_bytes / block_size.max(1);
        Self {
            store,
            cache,
            block_size,
            budget: Arc::new(Semaphore::new(
                usize::try_from(budget_bytes).unwrap_or(usize::MAX >> 4),
            )),
            budget_blocks,
            sequential: Arc::new(AtomicU64::new(0)),
            pool: BufferPool::new(
                usize::try_from(block_size).unwrap_or(usize::MAX),
                usize::try_from(budget_blocks).unwrap_or(0),
            ),
            timeout,
            memory: Mutex::new(Memory::default()),
            tails: Mutex::new(stream::Tails::default()),
        }
    }

    pub(crate) fn cache(&self) -> &Arc<dyn BlockCache> {
        &self.cache
    }

    fn memory(&self) -> std::sync::MutexGuard<'_, Memory> {
        // Every step leaves the map consistent before it could panic, so a poisoned lock is still usable.
        self.memory
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records a read of `size` bytes at `offset` in a handle's state; returns its prefetch window, at most
    /// three quarters of the budget's blocks divided among the handles reading sequentially (at least one
    /// block; the quarter left is for demand loads and blocks still being written to disk): with the default
    /// 128 MiB, one reader's window reaches [`MAX_WINDOW_BLOCKS`], four readers get six blocks each, so every
    /// prefetch finds budget and none of them waits on another's.
    pub(crate) fn advance(&self, state: &mut ReadState, offset: u64, size: u32) -> u64 {
        let end = offset.saturating_add(u64::from(size));
        let window = state.advance(offset, end, self.block_size);
        if window == 0 {
            state.sequential = None;
            return 0;
        }
        if state.sequential.is_none() {
            state.sequential = Some(Sequential::new(&self.sequential));
        }
        let readers = self.sequential.load(Ordering::Relaxed).max(1);
        window.min((self.budget_blocks * 3 / (4 * readers)).max(1))
    }

    /// Reads `size` bytes at `offset` of `file` (fewer at the end of the file), prefetching `window` blocks
    /// past them. A read inside one block is a slice of it, not a copy.
    pub(crate) async fn read(
        self: &Arc<Self>,
        file: &FileVersion,
        window: u64,
        offset: u64,
        size: u32,
    ) -> Result<Bytes> {
        let end = file.size.min(offset.saturating_add(u64::from(size)));
        if offset >= end {
            return Ok(Bytes::new());
        }
        let first = offset / self.block_size;
        let last = (end - 1) / self.block_size;
        // Start every load first (demand blocks take their budget before any prefetch), then wait.
        let mut found = Vec::new();
        for index in first..=last {
            // Where this read lands in the block (0 past the first).
            let at = usize::try_from(offset.saturating_sub(index * self.block_size)).unwrap_or(0);
            found.push((index, self.find_or_load(file, index, at).await?));
        }
        self.prefetch(file, last + 1, window);
        if window > 0 && first >= 2 {
            // A sequential reader is past this block: its memory goes back (the disk cache has it).
            let passed = self.block_id(file, first - 2);
            self.memory().release_passed(&passed);
        }
        let mut parts = Vec::with_capacity(found.len());
        for (index, found) in found {
            let block_start = index * self.block_size;
            let block = match found {
                Found::Ready(bytes) => bytes,
                Found::Loading(loading) => {
                    // The bytes this read needs, as soon as they are in (the block may still be arriving).
                    let from = usize::try_from(offset.max(block_start) - block_start).unwrap_or(usize::MAX);
                    let to =
                        usize::try_from(end.min(block_start + self.block_size) - block_start).unwrap_or(0);
                    let early = loading.progress.wait(from, to).await;
                    self.memory().mark_read(&self.block_id(file, index));
                    if let Some(bytes) = early {
                        parts.push(bytes);
                        continue;
                    }
                    loading.load.await.map_err(Error::Shared)?
                }
            };
            let from = usize::try_from(offset.max(block_start) - block_start).unwrap_or(usize::MAX);
            let to = usize::try_from(end.min(block_start + block.len() as u64) - block_start).unwrap_or(0);
            if from >= to || to > block.len() {
                return Err(Error::Stale {
                    key: file.key.to_string(),
                });
            }
            parts.push(block.slice(from..to));
        }
        if parts.len() == 1 {
            return Ok(parts.remove(0));
        }
        let mut out = BytesMut::with_capacity(usize::try_from(end - offset).unwrap_or(0));
        for part in parts {
            out.extend_from_slice(&part);
        }
        Ok(out.freeze())
    }

    fn block_id(&self, file: &FileVersion, index: u64) -> BlockId {
        let block_size = self.block_size;
        BlockId {
            key: file.key.to_string(),
            version: file.version.clone(),
            index,
            block_size,
        }
    }

    fn block_len(&self, file: &FileVersion, index: u64) -> usize {
        let start = index * self.block_size;
        usize::try_from(file.size.saturating_sub(start).min(self.block_size)).unwrap_or(0)
    }

    /// The block from memory, or a load of it (shared with whoever else wants it), started now with budget
    /// waited for: from the disk cache, else by joining the GET of a reader's stream that reaches this block
    /// next, else with a stream of its own (see `stream`), which starts where the read lands (`at`, a byte of
    /// the block) when that is far enough in to be worth a second GET for the head.
    async fn find_or_load(self: &Arc<Self>, file: &FileVersion, index: u64, at: usize) -> Result<Found> {
        let id = self.block_id(file, index);
        if let Some(found) = self.memory().find(&id) {
            return Ok(found);
        }
        let permit = self.acquire(self.block_len(file, index)).await?;
        let on_disk = self.cache.contains(&id);
        // The streams stay locked from the registration to the join, so a stream cannot end in between.
        let mut tails = self.tails();
        let (pending, load) = {
            let mut memory = self.memory();
            // Someone else may have started it while this waited for budget.
            if let Some(found) = memory.find(&id) {
                return Ok(found);
            }
            self.register(&mut memory, file, id, permit, true)
        };
        if on_disk {
            drop(tails);
            self.spawn_load(file.clone(), pending);
        } else if let Err(mut pending) = tails.join(pending) {
            drop(tails);
            if at >= stream::LAND_MIN {
                pending.land_at(at);
            }
            self.spawn_stream(file.clone(), pending);
        }
        Ok(Found::Loading(load))
    }

    /// Budget for a demand load: free budget, else blocks already on disk given back (least recently used
    /// first), else wait for loads and cache writes under way to finish, up to the request timeout.
    async fn acquire(&self, len: usize) -> Result<OwnedSemaphorePermit> {
        let count = permit_count(len);
        loop {
            if let Ok(permit) = self.budget.clone().try_acquire_many_owned(count) {
                return Ok(permit);
            }
            if !self.memory().evict_one(false) {
                break;
            }
        }
        let wait = self.budget.clone().acquire_many_owned(count);
        match tokio::time::timeout(self.timeout, wait).await {
            Ok(Ok(permit)) => Ok(permit),
            Ok(Err(_)) => Err(Error::Panicked {
                what: "memory budget",
            }),
            Err(_) => Err(Error::Timeout {
                what: "memory for a block",
                seconds: self.timeout.as_secs(),
            }),
        }
    }

    /// Budget for a prefetch: only what is free or held by blocks readers are done with; `None` otherwise.
    fn try_acquire(&self, len: usize) -> Option<OwnedSemaphorePermit> {
        let count = permit_count(len);
        loop {
            if let Ok(permit) = self.budget.clone().try_acquire_many_owned(count) {
                return Some(permit);
            }
            if !self.memory().evict_one(true) {
                return None;
            }
        }
    }

    /// Starts loading the `window` blocks from `from` on, as far as the budget allows right now: blocks the
    /// disk cache holds one by one, the others in runs of up to [`BLOCKS_PER_GET`] consecutive blocks per GET.
    fn prefetch(self: &Arc<Self>, file: &FileVersion, from: u64, window: u64) {
        let blocks = file.size.div_ceil(self.block_size);
        let end = from.saturating_add(window).min(blocks);
        let mut index = from;
        while index < end && self.memory().contains(&self.block_id(file, index)) {
            index += 1;
        }
        // The window slides a block at a time; fetching each block as it enters would make every GET one
        // block. Wait until a run is missing (unless the reader has caught up, or the file ends): half the
        // window, so a window smaller than two GETs (a share of a busy budget) is refilled before it has
        // drained, not once the reader has caught up with it.
        let run_len = BLOCKS_PER_GET.min(window.div_ceil(2)).max(1);
        if index > from && end - index < run_len && end < blocks {
            return;
        }
        while index < end {
            let id = self.block_id(file, index);
            if self.memory().contains(&id) {
                index += 1;
                continue;
            }
            let on_disk = self.cache.contains(&id);
            let mut ids = vec![id];
            while !on_disk && (ids.len() as u64) < BLOCKS_PER_GET && index + (ids.len() as u64) < end {
                let next = self.block_id(file, index + ids.len() as u64);
                if self.memory().contains(&next) || self.cache.contains(&next) {
                    break;
                }
                ids.push(next);
            }
            let mut permits = Vec::with_capacity(ids.len());
            for id in &ids {
                match self.try_acquire(self.block_len(file, id.index)) {
                    Some(permit) => permits.push(permit),
                    None => break,
                }
            }
            if permits.is_empty() {
                return;
            }
            let out_of_budget = permits.len() < ids.len();
            let mut run = Vec::with_capacity(permits.len());
            {
                let mut memory = self.memory();
                for (id, permit) in ids.into_iter().zip(permits) {
                    // A reader may have started one since: the run stops there, so it stays consecutive.
                    if memory.contains(&id) {
                        break;
                    }
                    run.push(self.register(&mut memory, file, id, permit, false).0);
                }
            }
            index += run.len().max(1) as u64;
            if on_disk {
                for pending in run {
                    self.spawn_load(file.clone(), pending);
                }
            } else if !run.is_empty() {
                self.spawn_fetch(file.clone(), run);
            }
            if out_of_budget {
                return;
            }
        }
    }
}

/// Semaphore permits for `len` bytes (one permit per byte; at least one so an empty block still counts).
fn permit_count(len: usize) -> u32 {
    u32::try_from(len.max(1)).unwrap_or(u32::MAX)
}

#[cfg(test)]
pub(super) mod tests {
    use storage::{BackendConfig, LocalConfig, Secret, StorageConfig};

    use super::*;
    use crate::cache::disk::DiskCache;

    const MIB: u64 = 1 << 20;

    /// A reader over a local store and a disk cache in `dir`, with blocks of `block` bytes and a memory budget
    /// of `budget_blocks` of them.
    pub(crate) fn local_reader(dir: &std::path::Path, block: u64, budget_blocks: u64) -> Reader {
        let store = storage::create_object_store(&StorageConfig {
            backend: BackendConfig::Local(LocalConfig {
                root: dir.join("blobs"),
                presign_secret: Secret::new("mount-unit-test-secret-0123456789abcdef".into()),
                public_url: "http://127.0.0.1:1".parse().unwrap(),
            }),
            presign: Default::default(),
        })
        .unwrap();
        let cache = Arc::new(DiskCache::open(&dir.join("cache"), 4 * budget_blocks * block).unwrap());
        Reader::new(
            store,
            cache,
            block,
            budget_blocks * block,
            Duration::from_secs(30),
        )
    }

    /// Reads `blocks` blocks in sequence on `state`; the last window.
    fn read_on(reader: &Reader, state: &mut ReadState, blocks: u64) -> u64 {
        let block = reader.block_size;
        let from = state.next_offset;
        (0..blocks)
            .map(|i| reader.advance(state, from + i * block, u32::try_from(block).unwrap()))
            .last()
            .unwrap_or(0)
    }

    /// One sequential reader's window reaches the largest; four share three quarters of the budget (six
    /// blocks each of 32); when they close or seek, the one left gets the whole window back.
    #[test]
    fn sequential_readers_share_the_budget() {
        let dir = tempfile::tempdir().unwrap();
        let reader = local_reader(dir.path(), 4 * MIB, 32);
        let mut states: Vec<ReadState> = (0..4).map(|_| ReadState::default()).collect();
        assert_eq!(read_on(&reader, &mut states[0], 40), MAX_WINDOW_BLOCKS);
        for state in &mut states {
            read_on(&reader, state, 40);
        }
        for state in &mut states {
            assert_eq!(read_on(&reader, state, 1), 6);
        }
        assert_eq!(reader.sequential.load(Ordering::Relaxed), 4);
        // A seek closes a handle's window (and its share); closing the handle does too.
        assert_eq!(reader.advance(&mut states[1], 0, 4096), 0);
        states.truncate(1);
        assert_eq!(reader.sequential.load(Ordering::Relaxed), 1);
        assert_eq!(read_on(&reader, &mut states[0], 1), MAX_WINDOW_BLOCKS);
    }

    #[test]
    fn sequential_runs_grow_the_window_and_seeks_reset_it() {
        let mut state = ReadState::default();
        let block = 4 * MIB;
        // A header read in many small requests (a player's, before it seeks) prefetches nothing.
        for i in 0..12 {
            assert_eq!(state.advance((i * 128) << 10, ((i + 1) * 128) << 10, block), 0);
        }
        assert_eq!(state.advance(0, MIB, block), 0);
        assert_eq!(state.advance(MIB, 4 * MIB, block), 1);
        // Out of order by a request or two (parallel read-ahead): still the same run.
        assert_eq!(state.advance(9 * MIB, 10 * MIB, block), 2);
        assert_eq!(state.advance(5 * MIB, 6 * MIB, block), 2);
        assert_eq!(state.advance(10 * MIB, 13 * MIB, block), 4);
        // Ahead as far as it has read, up to the largest window.
        for i in 13..100 {
            state.advance(i * MIB, (i + 1) * MIB, block);
        }
        assert_eq!(state.window, MAX_WINDOW_BLOCKS);
        // A seek far away resets it; reading on from there starts a new run, which grows from nothing.
        assert_eq!(state.advance(500 * MIB, 501 * MIB, block), 0);
        assert_eq!(state.advance(501 * MIB, 502 * MIB, block), 0);
        assert_eq!(state.advance(502 * MIB, 509 * MIB, block), 2);
        assert_eq!(state.advance(100 * MIB, 101 * MIB, block), 0);
    }
}
