//! Block buffers: page-aligned (so the disk cache can write and read them with direct I/O, without a copy
//! through the page cache) and reused (so the memory of a mount that streams gigabytes stays that of its
//! budget: freed multi-MiB blocks returned to the allocator linger in per-thread arenas, and the process
//! held twice its budget and more). Also the two direct-I/O helpers the block cache and the journal share.

use std::sync::{Arc, Mutex};

/// The alignment direct I/O needs on Linux (the logical block size of the devices we meet is 512 or 4096).
pub const ALIGN: usize = 4096;

/// A free list of whole-block buffers, shared by everything that holds blocks in memory.
#[derive(Debug)]
pub struct BufferPool {
    block_size: usize,
    /// Idle buffers, at most `keep`.
    free: Mutex<Vec<Vec<u8>>>,
    keep: usize,
}

impl BufferPool {
    /// A pool of buffers for blocks of `block_size` bytes, keeping up to `keep` idle ones.
    pub fn new(block_size: usize, keep: usize) -> Arc<Self> {
        Arc::new(Self {
            block_size,
            free: Mutex::new(Vec::new()),
            keep,
        })
    }

    /// A buffer for `len` bytes: a reused one when `len` is most of a block (a small last block gets its own,
    /// so it holds no more memory than the budget counts for it).
    pub fn take(self: &Arc<Self>, len: usize) -> BlockBuf {
        if len > self.block_size || len < self.block_size / 2 {
            return BlockBuf::unpooled(len);
        }
        let reused = self
            .free
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop();
        let data = reused.unwrap_or_else(|| vec![0u8; self.block_size + 2 * ALIGN]);
        BlockBuf::from_vec(data, len, Some(Arc::clone(self)))
    }

    fn give_back(&self, data: Vec<u8>) {
        let mut free = self
            .free
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if free.len() < self.keep && data.len() == self.block_size + 2 * ALIGN {
            free.push(data);
        }
    }
}

/// Bytes of one block, starting at a page boundary, with room to round the length up to whole pages.
#[derive(Debug)]
pub struct BlockBuf {
    data: Vec<u8>,
    start: usize,
    len: usize,
    pool: Option<Arc<BufferPool>>,
}

impl BlockBuf {
    /// A buffer of its own (not from a pool) for `len` bytes.
    pub fn unpooled(len: usize) -> Self {
        Self::from_vec(vec![0u8; len + 2 * ALIGN], len, None)
    }

    fn from_vec(data: Vec<u8>, len: usize, pool: Option<Arc<BufferPool>>) -> Self {
        // `align_offset` may decline to compute (never for bytes in practice): then the buffer is simply not
        // aligned, and the disk cache uses buffered I/O for it.
        let start = match data.as_ptr().align_offset(ALIGN) {
            offset if offset < ALIGN => offset,
            _ => 0,
        };
        Self {
            data,
            start,
            len,
            pool,
        }
    }

    /// The bytes in use.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        &mut self.data[self.start..self.start + self.len]
    }

    /// The bytes in use rounded up to whole pages (direct I/O reads and writes whole pages).
    pub fn padded_mut(&mut self) -> &mut [u8] {
        let padded = self.len.div_ceil(ALIGN) * ALIGN;
        let end = (self.start + padded).min(self.data.len());
        &mut self.data[self.start..end]
    }

    /// Whether the buffer starts at a page boundary.
    pub fn is_aligned(&self) -> bool {
        self.data[self.start..].as_ptr().align_offset(ALIGN) == 0
    }

    /// Shortens the bytes in use (a read that found fewer).
    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }

    /// Bytes in use.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no bytes are in use.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl AsRef<[u8]> for BlockBuf {
    fn as_ref(&self) -> &[u8] {
        &self.data[self.start..self.start + self.len]
    }
}

impl Drop for BlockBuf {
    fn drop(&mut self) {
        if let Some(pool) = self.pool.take() {
            pool.give_back(std::mem::take(&mut self.data));
        }
    }
}

/// Opens with `O_DIRECT` where there is one (Linux); elsewhere fails with `Unsupported`, so the caller uses
/// the page cache.
pub(crate) fn open_direct(
    options: &mut std::fs::OpenOptions,
    path: &std::path::Path,
) -> std::io::Result<std::fs::File> {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.custom_flags(libc::O_DIRECT);
        options.open(path)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (options, path);
        Err(std::io::Error::from(std::io::ErrorKind::Unsupported))
    }
}

/// Reads at `offset` of `file` until `buffer` is full or the file ends; returns the bytes read.
pub(crate) fn read_full(file: &std::fs::File, buffer: &mut [u8], offset: u64) -> std::io::Result<usize> {
    use std::os::unix::fs::FileExt as _;
    let mut filled = 0;
    while filled < buffer.len() {
        match file.read_at(&mut buffer[filled..], offset + filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_aligned_and_reused() {
        let pool = BufferPool::new(64 * 1024, 2);
        let mut first = pool.take(64 * 1024);
        assert!(first.is_aligned());
        assert_eq!(first.as_mut_slice().len(), 64 * 1024);
        let address = first.as_ref().as_ptr();
        drop(first);
        let second = pool.take(40 * 1024);
        assert_eq!(second.as_ref().as_ptr(), address, "an idle buffer is reused");
        assert_eq!(second.len(), 40 * 1024);
        // A small block does not take a whole block's buffer.
        let small = pool.take(100);
        assert!(small.pool.is_none());
        let mut odd = BlockBuf::unpooled(5000);
        assert!(odd.is_aligned());
        assert_eq!(odd.padded_mut().len(), 8192);
    }
}
