//! The block cache port: fixed-size blocks of objects, keyed by key + ETag + block index and size, so a block
//! of an old version is never served once the object's ETag changed (the new ETag simply misses).
//!
//! The only adapter is [`disk::DiskCache`]: blocks as files under the cache directory, a hard byte bound
//! enforced at insert time, LRU eviction, an index that survives restarts. The read path (`fs/read.rs`)
//! talks to the trait so a test or another front end can put another cache under it.

pub mod buffer;
pub mod disk;

use bytes::Bytes;

use self::buffer::BlockBuf;

use crate::error::Result;

/// One block of one version of one object.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BlockId {
    /// The object's key, as the store names it.
    pub key: String,
    /// The version the bytes belong to (ETag, or size + mtime when the store gives no ETag).
    pub version: String,
    /// Block number: bytes `index * block_size ..`.
    pub index: u64,
    /// The block size the index counts in: a cache filled with another `--block-size` must not serve its
    /// blocks under the same numbers (block 1 of 4 MiB blocks is not block 1 of 1 MiB blocks).
    pub block_size: u64,
}

/// How full the cache is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CacheUsage {
    /// Bytes the cache accounts for (blocks written or being written, and the index).
    pub used_bytes: u64,
    /// The hard bound.
    pub max_bytes: u64,
    /// Blocks held.
    pub blocks: u64,
    /// Bytes of pinned blocks (never evicted).
    pub pinned_bytes: u64,
}

/// A cache of object blocks. Implementations must never exceed their bound, never return bytes whose
/// checksum does not match, and may drop any block at any time (a miss is always safe).
pub trait BlockCache: Send + Sync + std::fmt::Debug {
    /// The block's bytes if cached and intact, read into `buffer` (which must hold the whole block; a
    /// smaller one is replaced).
    fn get(&self, id: &BlockId, buffer: BlockBuf) -> Result<Option<Bytes>>;

    /// Stores a block, evicting least recently used blocks first so the bound holds. A block larger than the
    /// whole cache is not stored (`Ok(false)`). Bytes starting at a page boundary (a [`BlockBuf`]) are
    /// written without a copy through the page cache where the platform allows.
    fn put(&self, id: &BlockId, data: &[u8]) -> Result<bool>;

    /// Whether the block is cached (no read of its bytes).
    fn contains(&self, id: &BlockId) -> bool;

    /// Current usage.
    fn usage(&self) -> CacheUsage;

    /// Pins a cached block (never evicted, kept across restarts) or unpins it. `Ok(false)`: the block is
    /// not cached (fetch and [`BlockCache::put`] it first).
    fn set_pinned(&self, id: &BlockId, pinned: bool) -> Result<bool>;

    /// Writes the index so the next start finds every block (also done as the index grows).
    fn persist(&self) -> Result<()>;
}
