//! The block cache on disk.
//!
//! Layout under the cache directory: `blocks/<2 hex>/<64 hex>` (the SHA-256 of key, version and index) and
//! `index.log`. Invariants:
//! - **Hard bound.** Every block is accounted (its full size) *before* its file is written, and room is made
//!   by deleting least recently used blocks *before* that, under one lock: the files on disk never add up to
//!   more than the bound, at any instant, with any number of concurrent inserts. No periodic sweep.
//! - **Checksum.** The index keeps each block's CRC-32; a block whose bytes disagree (torn write, bit rot) is
//!   dropped and reported as a miss, never served. CRC-32 and not SHA-256: the checksum guards against
//!   accidents, not an adversary (the cache directory is ours), and at ~10 GB/s (PCLMULQDQ) it costs nothing
//!   next to the copy, where SHA-256 hashing every block on insert and on every read was a quarter of the CPU
//!   time of a cold read.
//! - **Restart.** `index.log` is an append-only log of `+` (block accounted) and `-` (block removed) records,
//!   rewritten atomically (temporary file, fsync, rename) when it grows to several times the live entries. A
//!   restart replays the log and never walks or wipes the block directory. A `+` is logged before the block
//!   file is written, so a crash leaves at worst a block accounted but torn (its checksum fails, it is
//!   dropped) — never a file the bound does not know about.
//!
//! Recency is kept in memory only; after a restart blocks age in the order the log lists them.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead as _, BufReader, Write as _};
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use sha2::{Digest as _, Sha256};

/// How a checksum is written in the index: `crc32:` and eight hex digits. Records of an older format
/// (SHA-256) are kept accounted but never served: their blocks are dropped when read, or evicted.
const CHECKSUM_PREFIX: &str = "crc32:";

use crate::cache::buffer::{ALIGN, BlockBuf, open_direct, read_full};
use crate::cache::{BlockCache, BlockId, CacheUsage};
use crate::error::{Error, Result};

/// Least bytes set aside in the bound for `index.log` itself (and its rewrite), so blocks plus index stay
/// under the bound. Larger caches set aside 1/512 of the bound: a record is ~140 bytes, so with blocks of
/// 1 MiB or more the live index takes under a fifth of that.
const INDEX_ALLOWANCE: u64 = 256 * 1024;

/// The index allowance for a bound.
fn index_allowance(max_bytes: u64) -> u64 {
    INDEX_ALLOWANCE.max(max_bytes / 512)
}

/// A block cache in a directory, with a hard byte bound.
#[derive(Debug)]
pub struct DiskCache {
    dir: PathBuf,
    max_bytes: u64,
    state: Mutex<State>,
    /// Block files are written and read with direct I/O (off once the file system refuses it).
    direct: AtomicBool,
}

#[derive(Debug)]
struct State {
    entries: HashMap<String, Entry>,
    /// Recency: tick → block name. The smallest tick is evicted first.
    lru: BTreeMap<u64, String>,
    tick: u64,
    used: u64,
    log: File,
    log_bytes: u64,
}

#[derive(Debug, Clone)]
struct Entry {
    size: u64,
    /// CRC-32 of the bytes; `None` for a record of an older format (never served).
    crc32: Option<u32>,
    tick: u64,
    /// Being written: accounted, not yet readable, not evictable.
    writing: bool,
    /// Pinned: never evicted (logged as `P <name>`, unpinned as `U <name>`).
    pinned: bool,
}

impl DiskCache {
    /// Opens (or creates) the cache in `dir` with a bound of `max_bytes`, replaying the index. A cache left
    /// over a bound that has since shrunk is trimmed now.
    pub fn open(dir: &Path, max_bytes: u64) -> Result<Self> {
        if max_bytes <= index_allowance(max_bytes) {
            return Err(Error::Config(format!(
                "the cache bound must be above {INDEX_ALLOWANCE} bytes, got {max_bytes}"
            )));
        }
        fs::create_dir_all(dir.join("blocks"))?;
        let log_path = dir.join("index.log");
        let mut entries = HashMap::new();
        let mut log_bytes = 0u64;
        if log_path.exists() {
            let reader = BufReader::new(File::open(&log_path)?);
            for line in reader.lines() {
                let line = line?;
                log_bytes += line.len() as u64 + 1;
                let mut parts = line.split(' ');
                match (parts.next(), parts.next(), parts.next(), parts.next()) {
                    (Some("+"), Some(name), Some(size), Some(checksum)) => {
                        let size = size.parse().map_err(|_| Error::CacheIndex {
                            path: log_path.display().to_string(),
                            reason: format!("bad size in {line:?}"),
                        })?;
                        entries.insert(
                            name.to_owned(),
                            Entry {
                                size,
                                crc32: parse_checksum(checksum),
                                tick: 0,
                                writing: false,
                                pinned: false,
                            },
                        );
                    }
                    (Some("-"), Some(name), None, None) => {
                        entries.remove(name);
                    }
                    (Some(mark @ ("P" | "U")), Some(name), None, None) => {
                        if let Some(entry) = entries.get_mut(name) {
                            entry.pinned = mark == "P";
                        }
                    }
                    // A torn last line (crash mid-append) carries nothing we need.
                    _ => tracing::warn!(%line, "skipping a malformed cache index record"),
                }
            }
        }
        let mut lru = BTreeMap::new();
        let mut used = 0;
        let mut tick = 0;
        for (name, entry) in &mut entries {
            tick += 1;
            entry.tick = tick;
            lru.insert(tick, name.clone());
            used += entry.size;
        }
        let log = OpenOptions::new().create(true).append(true).open(&log_path)?;
        let cache = Self {
            dir: dir.to_owned(),
            max_bytes,
            state: Mutex::new(State {
                entries,
                lru,
                tick,
                used,
                log,
                log_bytes,
            }),
            direct: AtomicBool::new(cfg!(target_os = "linux")),
        };
        {
            let mut state = cache.lock();
            let capacity = cache.capacity();
            cache.make_room(&mut state, 0, capacity)?;
            cache.write_index(&mut state)?;
        }
        Ok(cache)
    }

    /// Room for blocks: the bound less the index allowance.
    fn capacity(&self) -> u64 {
        self.max_bytes - index_allowance(self.max_bytes)
    }

    /// Appends one record, rewriting the log first when it would pass half its allowance (the other half
    /// is room for the rewrite's temporary file).
    fn append(&self, state: &mut State, record: &str) -> Result<()> {
        if state.log_bytes + record.len() as u64 > index_allowance(self.max_bytes) / 2 {
            self.write_index(state)?;
        }
        state.log.write_all(record.as_bytes())?;
        state.log_bytes += record.len() as u64;
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock leaves consistent accounting (every step updates it before
        // touching files), so a poisoned lock is still usable.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn block_path(&self, name: &str) -> PathBuf {
        self.dir.join("blocks").join(&name[..2]).join(name)
    }

    /// Evicts LRU blocks (not those being written) until `needed` more bytes fit in `capacity`. Files are
    /// deleted here, under the lock, so no other insert can write into the room before it is really free.
    fn make_room(&self, state: &mut State, needed: u64, capacity: u64) -> Result<bool> {
        let mut skipped = Vec::new();
        while state.used + needed > capacity {
            let Some((tick, name)) = state.lru.pop_first() else {
                break;
            };
            if state.entries.get(&name).is_some_and(|e| e.writing || e.pinned) {
                skipped.push((tick, name));
                continue;
            }
            self.remove_locked(state, &name)?;
        }
        for (tick, name) in skipped {
            state.lru.insert(tick, name);
        }
        Ok(state.used + needed <= capacity)
    }

    fn remove_locked(&self, state: &mut State, name: &str) -> Result<()> {
        if let Some(entry) = state.entries.remove(name) {
            state.lru.remove(&entry.tick);
            match fs::remove_file(self.block_path(name)) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    // Still accounted as used: the file may still be there.
                    state.entries.insert(name.to_owned(), entry);
                    return Err(e.into());
                }
            }
            state.used -= entry.size;
            self.append(state, &format!("- {name}\n"))?;
        }
        Ok(())
    }

    /// Rewrites the log with only the live entries, atomically (temporary file, fsync, rename).
    fn write_index(&self, state: &mut State) -> Result<()> {
        let path = self.dir.join("index.log");
        let temporary = self.dir.join("index.log.tmp");
        let mut file = File::create(&temporary)?;
        let mut text = String::new();
        // Blocks being written are listed too: their `+` was logged before their file is written, and a
        // rewrite between the two must not drop it (the file would then be one the bound does not know about
        // after a restart). A write that never finishes leaves a block whose checksum fails: a miss.
        for (name, entry) in &state.entries {
            text.push_str(&record(name, entry));
            if entry.pinned {
                text.push_str(&format!("P {name}\n"));
            }
        }
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        fs::rename(&temporary, &path)?;
        if let Ok(dir) = File::open(&self.dir) {
            dir.sync_all()?;
        }
        state.log = OpenOptions::new().append(true).open(&path)?;
        state.log_bytes = text.len() as u64;
        Ok(())
    }

    /// Writes a block file: the whole pages with direct I/O when the bytes start at a page boundary (no copy
    /// into the page cache, which on a small machine costs more CPU than the rest of a cold read together),
    /// the last partial page through the page cache.
    fn write_block(&self, path: &Path, data: &[u8]) -> std::io::Result<()> {
        let whole = data.len() / ALIGN * ALIGN;
        if self.direct.load(Ordering::Relaxed) && whole > 0 && data.as_ptr().align_offset(ALIGN) == 0 {
            match open_direct(OpenOptions::new().write(true).create(true).truncate(true), path) {
                Ok(file) => {
                    file.write_all_at(&data[..whole], 0)?;
                    if whole < data.len() {
                        OpenOptions::new()
                            .write(true)
                            .open(path)?
                            .write_all_at(&data[whole..], whole as u64)?;
                    }
                    return Ok(());
                }
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => self.no_direct_io(&e),
                Err(e) => return Err(e),
            }
        }
        fs::write(path, data)
    }

    /// Reads a block file into `buffer` (whole pages with direct I/O when it is aligned); returns the bytes
    /// read.
    fn read_block(&self, path: &Path, buffer: &mut BlockBuf) -> std::io::Result<usize> {
        if self.direct.load(Ordering::Relaxed) && buffer.is_aligned() {
            match open_direct(OpenOptions::new().read(true), path) {
                Ok(file) => return read_full(&file, buffer.padded_mut(), 0),
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => self.no_direct_io(&e),
                Err(e) => return Err(e),
            }
        }
        read_full(&File::open(path)?, buffer.as_mut_slice(), 0)
    }

    /// The file system refused direct I/O (tmpfs, some network file systems): use the page cache from now on.
    fn no_direct_io(&self, error: &std::io::Error) {
        if self.direct.swap(false, Ordering::Relaxed) {
            tracing::info!(%error, dir = %self.dir.display(), "the cache's file system refuses direct I/O; using the page cache");
        }
    }

    /// A put's first phase, under the lock: the block accounted (room made first) and its `+` logged, marked
    /// as being written so it is not served yet.
    fn account(&self, name: &str, size: u64, crc32: u32) -> Result<Accounted> {
        let mut state = self.lock();
        if state.entries.contains_key(name) {
            Self::touch(&mut state, name);
            return Ok(Accounted::Present);
        }
        if !self.make_room(&mut state, size, self.capacity())? {
            return Ok(Accounted::NoRoom);
        }
        state.tick += 1;
        let tick = state.tick;
        let entry = Entry {
            size,
            crc32: Some(crc32),
            tick,
            writing: true,
            pinned: false,
        };
        let line = record(name, &entry);
        state.entries.insert(name.to_owned(), entry);
        state.lru.insert(tick, name.to_owned());
        state.used += size;
        self.append(&mut state, &line)?;
        Ok(Accounted::Reserved)
    }

    /// A put's second phase, outside the lock: the file written, then the block served from (or, if the
    /// write failed, removed).
    fn write_accounted(&self, name: &str, data: &[u8]) -> Result<()> {
        let path = self.block_path(name);
        let written = (|| -> std::io::Result<()> {
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent)?;
            }
            self.write_block(&path, data)
        })();
        let mut state = self.lock();
        if let Some(entry) = state.entries.get_mut(name) {
            entry.writing = false;
        }
        match written {
            Ok(()) => Ok(()),
            Err(e) => {
                self.remove_locked(&mut state, name)?;
                Err(e.into())
            }
        }
    }

    fn touch(state: &mut State, name: &str) {
        state.tick += 1;
        let tick = state.tick;
        if let Some(entry) = state.entries.get_mut(name) {
            state.lru.remove(&entry.tick);
            entry.tick = tick;
            state.lru.insert(tick, name.to_owned());
        }
    }
}

/// What a put's first phase found.
enum Accounted {
    /// The block was there already.
    Present,
    /// No room for it within the bound.
    NoRoom,
    /// Accounted and logged; its file is to be written.
    Reserved,
}

/// The index record of a block: `+ <name> <size> crc32:<8 hex>`.
fn record(name: &str, entry: &Entry) -> String {
    let checksum = entry
        .crc32
        .map_or_else(|| "unknown".to_owned(), |c| format!("{CHECKSUM_PREFIX}{c:08x}"));
    format!("+ {name} {} {checksum}\n", entry.size)
}

/// The CRC-32 of an index record's checksum field; `None` for any other format.
fn parse_checksum(field: &str) -> Option<u32> {
    field
        .strip_prefix(CHECKSUM_PREFIX)
        .and_then(|hex| u32::from_str_radix(hex, 16).ok())
}

/// The block's file name: SHA-256 of its identity, so any key is a safe, fixed-length name.
fn block_name(id: &BlockId) -> String {
    let mut hasher = Sha256::new();
    hasher.update(id.key.as_bytes());
    hasher.update([0]);
    hasher.update(id.version.as_bytes());
    hasher.update([0]);
    hasher.update(id.index.to_be_bytes());
    hasher.update(id.block_size.to_be_bytes());
    hex::encode(hasher.finalize())
}

impl BlockCache for DiskCache {
    fn get(&self, id: &BlockId, mut buffer: BlockBuf) -> Result<Option<Bytes>> {
        let name = block_name(id);
        let expected = {
            let mut state = self.lock();
            match state.entries.get(&name) {
                Some(entry) if !entry.writing => {
                    let expected = (entry.size, entry.crc32);
                    Self::touch(&mut state, &name);
                    expected
                }
                _ => return Ok(None),
            }
        };
        let size = usize::try_from(expected.0).unwrap_or(usize::MAX);
        if buffer.len() != size {
            // Not the block the caller expects (its size disagrees): drop it rather than guess.
            buffer = BlockBuf::unpooled(0);
        }
        let read = match self.read_block(&self.block_path(&name), &mut buffer) {
            Ok(read) => read,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut state = self.lock();
                self.remove_locked(&mut state, &name)?;
                return Ok(None);
            }
            Err(e) => return Err(e.into()),
        };
        buffer.truncate(read);
        if read != size || Some(crc32fast::hash(buffer.as_ref())) != expected.1 {
            tracing::warn!(key = %id.key, index = id.index, "dropping a cached block whose checksum fails");
            let mut state = self.lock();
            self.remove_locked(&mut state, &name)?;
            return Ok(None);
        }
        Ok(Some(Bytes::from_owner(buffer)))
    }

    fn put(&self, id: &BlockId, data: &[u8]) -> Result<bool> {
        let name = block_name(id);
        match self.account(&name, data.len() as u64, crc32fast::hash(data))? {
            Accounted::Present => Ok(true),
            Accounted::NoRoom => Ok(false),
            Accounted::Reserved => self.write_accounted(&name, data).map(|()| true),
        }
    }

    fn contains(&self, id: &BlockId) -> bool {
        let name = block_name(id);
        self.lock().entries.get(&name).is_some_and(|e| !e.writing)
    }

    fn usage(&self) -> CacheUsage {
        let state = self.lock();
        CacheUsage {
            used_bytes: state.used + state.log_bytes,
            max_bytes: self.max_bytes,
            blocks: state.entries.len() as u64,
            pinned_bytes: state.entries.values().filter(|e| e.pinned).map(|e| e.size).sum(),
        }
    }

    fn set_pinned(&self, id: &BlockId, pinned: bool) -> Result<bool> {
        let name = block_name(id);
        let mut state = self.lock();
        let changed = match state.entries.get_mut(&name) {
            Some(entry) if !entry.writing => {
                let changed = entry.pinned != pinned;
                entry.pinned = pinned;
                changed
            }
            _ => return Ok(false),
        };
        if changed {
            let mark = if pinned { "P" } else { "U" };
            self.append(&mut state, &format!("{mark} {name}\n"))?;
        }
        Ok(true)
    }

    fn persist(&self) -> Result<()> {
        let mut state = self.lock();
        self.write_index(&mut state)
    }
}

#[cfg(test)]
mod tests;
