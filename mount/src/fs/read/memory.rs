//! The blocks in memory: loading or loaded, their order of last use, and which may be given back.
//!
//! A loaded block is evictable once the disk cache holds it (dropping it earlier would free nothing: its
//! cache write holds the bytes). A block loaded ahead of a reader and not read yet is marked so that another
//! prefetch does not take its memory; a demand load may take any evictable block.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use bytes::Bytes;
use futures::future::{BoxFuture, Shared};
use tokio::sync::OwnedSemaphorePermit;

use crate::cache::BlockId;
use crate::error::Error;

use super::progress::Progress;

/// A load of one block, awaited by every reader that wants it.
pub(super) type SharedLoad = Shared<BoxFuture<'static, Result<Bytes, Arc<Error>>>>;

/// A load under way: its result, shared by every reader that waits for the whole block, and its progress,
/// from which a reader that needs only some of the block's bytes is answered as soon as they are in.
#[derive(Debug, Clone)]
pub(super) struct Loading {
    pub(super) load: SharedLoad,
    pub(super) progress: Arc<Progress>,
}

/// A block in memory, or on its way there.
#[derive(Debug)]
pub(super) enum Slot {
    Loading(Loading),
    Ready(Resident),
}

#[derive(Debug)]
pub(super) struct Resident {
    bytes: Bytes,
    /// Its place in [`Memory::lru`]; `None` while it is being written to the disk cache.
    tick: Option<u64>,
    /// A reader has used it (prefetched blocks not read yet are not taken by another prefetch).
    read: bool,
}

/// What a reader finds for a block.
#[derive(Debug)]
pub(super) enum Found {
    Ready(Bytes),
    Loading(Loading),
}

#[derive(Debug, Default)]
pub(super) struct Memory {
    slots: HashMap<BlockId, Slot>,
    /// Evictable blocks by last use: the smallest tick goes first.
    lru: BTreeMap<u64, BlockId>,
    tick: u64,
}

impl Memory {
    /// The block if it is loaded or loading (a loaded one counts as used now).
    pub(super) fn find(&mut self, id: &BlockId) -> Option<Found> {
        match self.slots.get(id) {
            Some(Slot::Loading(load)) => Some(Found::Loading(load.clone())),
            Some(Slot::Ready(_)) => self.touch(id).map(Found::Ready),
            None => None,
        }
    }

    pub(super) fn contains(&self, id: &BlockId) -> bool {
        self.slots.contains_key(id)
    }

    /// Registers a load under way.
    pub(super) fn loading(&mut self, id: BlockId, load: Loading) {
        self.slots.insert(id, Slot::Loading(load));
    }

    /// A load finished: the block is in memory. `on_disk`: it came from the disk cache (evictable at once);
    /// otherwise it becomes evictable when [`Memory::settle`] says its cache write is over. `read`: a reader
    /// asked for it (not a prefetch), or took bytes of it while it loaded.
    pub(super) fn loaded(&mut self, id: &BlockId, bytes: Bytes, on_disk: bool, read: bool) {
        let read = read || matches!(self.slots.get(id), Some(Slot::Loading(l)) if l.progress.was_read());
        self.slots.insert(
            id.clone(),
            Slot::Ready(Resident {
                bytes,
                tick: None,
                read,
            }),
        );
        if on_disk {
            self.settle(id);
        }
    }

    fn touch(&mut self, id: &BlockId) -> Option<Bytes> {
        self.tick += 1;
        let tick = self.tick;
        match self.slots.get_mut(id) {
            Some(Slot::Ready(resident)) => {
                resident.read = true;
                if let Some(old) = resident.tick {
                    self.lru.remove(&old);
                    self.lru.insert(tick, id.clone());
                    resident.tick = Some(tick);
                }
                Some(resident.bytes.clone())
            }
            _ => None,
        }
    }

    /// Makes a loaded block evictable (its disk write is over, or failed).
    pub(super) fn settle(&mut self, id: &BlockId) {
        self.tick += 1;
        let tick = self.tick;
        if let Some(Slot::Ready(resident)) = self.slots.get_mut(id)
            && resident.tick.is_none()
        {
            resident.tick = Some(tick);
            self.lru.insert(tick, id.clone());
        }
    }

    /// Forgets a block (a failed load, or one a reader is done with).
    pub(super) fn remove(&mut self, id: &BlockId) {
        if let Some(Slot::Ready(Resident { tick: Some(tick), .. })) = self.slots.remove(id) {
            self.lru.remove(&tick);
        }
    }

    /// Records that a reader took bytes of a block it found loading: read now if it has come in since, else
    /// when it does. Without this a prefetched block read while it arrived stayed "unread" for good, and
    /// its budget could not go to the next prefetch: four sequential readers with the kernel's 128 KiB
    /// read-ahead filled the budget with such blocks and then read block by block.
    pub(super) fn mark_read(&mut self, id: &BlockId) {
        match self.slots.get_mut(id) {
            Some(Slot::Ready(resident)) => resident.read = true,
            Some(Slot::Loading(loading)) => loading.progress.mark_read(),
            None => {}
        }
    }

    /// Drops a block a sequential reader has passed, if the disk cache has it.
    pub(super) fn release_passed(&mut self, id: &BlockId) {
        if matches!(
            self.slots.get(id),
            Some(Slot::Ready(Resident { tick: Some(_), .. }))
        ) {
            self.remove(id);
        }
    }

    /// Drops the least recently used evictable block (only one already read, when `read_only`). False when
    /// there is none.
    pub(super) fn evict_one(&mut self, read_only: bool) -> bool {
        let victim = self
            .lru
            .iter()
            .find(|(_, id)| !read_only || matches!(self.slots.get(*id), Some(Slot::Ready(r)) if r.read))
            .map(|(tick, id)| (*tick, id.clone()));
        match victim {
            Some((tick, id)) => {
                self.lru.remove(&tick);
                self.slots.remove(&id);
                true
            }
            None => false,
        }
    }
}

/// The bytes of a block and the budget they hold: dropped together, when the last slice of the block goes.
pub(super) struct Accounted {
    pub(super) bytes: Bytes,
    pub(super) _permit: OwnedSemaphorePermit,
}

impl AsRef<[u8]> for Accounted {
    fn as_ref(&self) -> &[u8] {
        &self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(index: u64) -> BlockId {
        BlockId {
            key: "k".into(),
            version: "v".into(),
            index,
            block_size: 1,
        }
    }

    #[test]
    fn only_blocks_on_disk_are_evicted_and_prefetches_spare_unread_ones() {
        let mut memory = Memory::default();
        // 0: read and on disk; 1: prefetched, on disk, not read; 2: read, still being written.
        memory.loaded(&id(0), Bytes::from_static(b"0"), true, true);
        memory.loaded(&id(1), Bytes::from_static(b"1"), true, false);
        memory.loaded(&id(2), Bytes::from_static(b"2"), false, true);
        assert!(memory.evict_one(true));
        assert!(!memory.contains(&id(0)));
        // A prefetch may not take the unread block; a demand load may.
        assert!(!memory.evict_one(true));
        assert!(memory.evict_one(false));
        assert!(!memory.contains(&id(1)));
        // The block being written is never evicted, until its write is over.
        assert!(!memory.evict_one(false));
        memory.settle(&id(2));
        assert!(memory.evict_one(false));
        assert!(!memory.contains(&id(2)));
    }

    /// A prefetched block a reader took bytes of while it was arriving counts as read, whether the mark came
    /// before the block was complete or after: a prefetch may then take its budget once it is on disk.
    #[test]
    fn a_prefetch_read_while_it_loaded_is_read() {
        use futures::FutureExt as _;
        let loading = || Loading {
            load: futures::future::pending().boxed().shared(),
            progress: Arc::new(Progress::new()),
        };
        let mut memory = Memory::default();
        // 0: marked while loading; 1: marked once in; 2: never read.
        for index in 0..3 {
            memory.loading(id(index), loading());
        }
        memory.mark_read(&id(0));
        for index in 0..3 {
            memory.loaded(&id(index), Bytes::from_static(b"x"), false, false);
        }
        memory.mark_read(&id(1));
        for index in 0..3 {
            memory.settle(&id(index));
        }
        assert!(memory.evict_one(true));
        assert!(memory.evict_one(true));
        assert!(!memory.contains(&id(0)) && !memory.contains(&id(1)));
        assert!(!memory.evict_one(true), "the unread prefetch was given up");
        assert!(memory.contains(&id(2)));
    }
}
