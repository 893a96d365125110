//! A staged file's bytes on disk, written without a copy through the page cache where it can be.
//!
//! FUSE hands writes over in pieces of 64 KiB to 1 MiB, each waiting for its answer. A sequential run of them
//! is gathered in a page-aligned buffer; a full buffer is written with `O_DIRECT` by a blocking task while the
//! next one fills, so a writer never waits for the disk unless the disk is slower than the writer (then for
//! one buffer at most). Direct writes keep the page cache out of it: on a machine whose memory is full of
//! cache, a buffered write of a gigabyte first has to reclaim a gigabyte, and it leaves it dirty for `fsync`
//! to push out at `close`. Writes out of sequence go through the page cache as they come (after the gathered
//! bytes, so the file always holds the latest bytes in order).
//!
//! The gathered bytes are not durable until [`StagedFile::sync`], which writes them and fsyncs: exactly the
//! promise of `close`/`fsync`, nothing earlier. A read first writes them out, so it sees every byte written.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc;

use crate::cache::buffer::{ALIGN, BlockBuf, BufferPool, open_direct, read_full};

/// Bytes gathered before a direct write.
pub(super) const GATHER: usize = 4 << 20;

/// The data file of one journal entry.
#[derive(Debug)]
pub(super) struct StagedFile {
    path: PathBuf,
    /// Reads, writes out of sequence, truncation and fsync.
    file: File,
    /// The same file opened with `O_DIRECT`; `None` where the file system refuses it (tmpfs, some network
    /// file systems) or off Linux.
    direct: Option<Arc<File>>,
    /// Where full buffers are written in the background.
    runtime: tokio::runtime::Handle,
    /// Sequential bytes not written yet, starting at a page-aligned offset.
    gathered: Option<Gathered>,
    /// The direct write under way, if any.
    in_flight: Option<mpsc::Receiver<Written>>,
    /// Where gathering buffers come from and go back to (shared by the journal's files, so writing many
    /// files one after another reuses the same few buffers).
    pool: Arc<BufferPool>,
    /// A background write that failed after its error went to someone other than the writer (an upload
    /// waiting for the bytes): the next `sync` reports it, so `close`/`fsync` never promises lost bytes.
    failed: Option<std::io::Error>,
}

#[derive(Debug)]
struct Gathered {
    offset: u64,
    buffer: BlockBuf,
    filled: usize,
}

/// What a background write reports: its outcome, and its bytes (to retry through the page cache if the file
/// system refused the direct write, and to reuse the buffer).
struct Written {
    result: std::io::Result<()>,
    gathered: Gathered,
}

impl StagedFile {
    /// Creates (or truncates) the data file at `path`.
    pub(super) fn create(
        path: &Path,
        runtime: tokio::runtime::Handle,
        pool: Arc<BufferPool>,
    ) -> std::io::Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)?;
        Ok(Self::with_file(path, file, runtime, pool))
    }

    /// Opens an existing data file (a promised entry found at start).
    pub(super) fn open(
        path: &Path,
        runtime: tokio::runtime::Handle,
        pool: Arc<BufferPool>,
    ) -> std::io::Result<Self> {
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        Ok(Self::with_file(path, file, runtime, pool))
    }

    fn with_file(path: &Path, file: File, runtime: tokio::runtime::Handle, pool: Arc<BufferPool>) -> Self {
        let direct = open_direct(OpenOptions::new().write(true), path)
            .ok()
            .map(Arc::new);
        Self {
            path: path.to_owned(),
            file,
            direct,
            runtime,
            gathered: None,
            in_flight: None,
            pool,
            failed: None,
        }
    }

    /// Writes `data` at `offset`.
    pub(super) fn write(&mut self, mut offset: u64, mut data: &[u8]) -> std::io::Result<()> {
        while !data.is_empty() {
            let appends = self
                .gathered
                .as_ref()
                .is_some_and(|g| g.offset + g.filled as u64 == offset && g.filled < GATHER);
            if !appends {
                self.write_out(false)?;
                if self.direct.is_none() || !offset.is_multiple_of(ALIGN as u64) {
                    return self.file.write_all_at(data, offset);
                }
                let buffer = self.pool.take(GATHER);
                self.gathered = Some(Gathered {
                    offset,
                    buffer,
                    filled: 0,
                });
            }
            let Some(gathered) = self.gathered.as_mut() else {
                return self.file.write_all_at(data, offset);
            };
            let n = data.len().min(GATHER - gathered.filled);
            gathered.buffer.as_mut_slice()[gathered.filled..gathered.filled + n].copy_from_slice(&data[..n]);
            gathered.filled += n;
            offset += n as u64;
            data = &data[n..];
            if gathered.filled == GATHER {
                self.submit()?;
            }
        }
        Ok(())
    }

    /// Hands the full gathered buffer to a background direct write (after the previous one is done).
    fn submit(&mut self) -> std::io::Result<()> {
        self.wait()?;
        let (Some(gathered), Some(direct)) = (self.gathered.take(), self.direct.clone()) else {
            return self.write_out(false);
        };
        let (sender, receiver) = mpsc::channel();
        self.runtime.spawn_blocking(move || {
            let bytes = &gathered.buffer.as_ref()[..gathered.filled];
            let result = direct.write_all_at(bytes, gathered.offset);
            let _ = sender.send(Written { result, gathered });
        });
        self.in_flight = Some(receiver);
        Ok(())
    }

    /// Waits for the background write; one the file system refused is done again through the page cache.
    fn wait(&mut self) -> std::io::Result<()> {
        let Some(receiver) = self.in_flight.take() else {
            return Ok(());
        };
        let Written { result, gathered } = receiver
            .recv()
            .map_err(|_| std::io::Error::other("the journal's background write was lost"))?;
        match result {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                self.refuse_direct(&e);
                self.file
                    .write_all_at(&gathered.buffer.as_ref()[..gathered.filled], gathered.offset)?;
            }
            Err(e) => return Err(e),
        }
        Ok(())
    }

    fn refuse_direct(&mut self, error: &std::io::Error) {
        tracing::info!(%error, path = %self.path.display(), "the journal's file system refuses direct I/O; using the page cache");
        self.direct = None;
    }

    /// Writes the gathered bytes to the file now: whole pages directly, a partial last page through the page
    /// cache. With `keep_tail`, the partial page stays gathered (at its aligned offset) so the sequential run
    /// can go on directly after a read.
    fn write_out(&mut self, keep_tail: bool) -> std::io::Result<()> {
        self.wait()?;
        let Some(mut gathered) = self.gathered.take() else {
            return Ok(());
        };
        let bytes = &gathered.buffer.as_ref()[..gathered.filled];
        let whole = bytes.len() / ALIGN * ALIGN;
        let direct_written = match &self.direct {
            Some(direct) if whole > 0 && bytes.as_ptr().align_offset(ALIGN) == 0 => {
                match direct.write_all_at(&bytes[..whole], gathered.offset) {
                    Ok(()) => true,
                    Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                        self.refuse_direct(&e);
                        false
                    }
                    Err(e) => return Err(e),
                }
            }
            _ => false,
        };
        let from = if direct_written { whole } else { 0 };
        if from < bytes.len() {
            self.file
                .write_all_at(&bytes[from..], gathered.offset + from as u64)?;
        }
        if keep_tail && direct_written && whole < bytes.len() {
            let tail = bytes.len() - whole;
            let (head, rest) = gathered.buffer.as_mut_slice().split_at_mut(whole);
            head[..tail].copy_from_slice(&rest[..tail]);
            gathered.offset += whole as u64;
            gathered.filled = tail;
            self.gathered = Some(gathered);
        }
        Ok(())
    }

    /// Reads up to `size` bytes at `offset` (fewer at the end of the file).
    pub(super) fn read(&mut self, offset: u64, size: u32) -> std::io::Result<Vec<u8>> {
        self.write_out(true)?;
        let mut buffer = vec![0u8; size as usize];
        let mut filled = 0;
        while filled < buffer.len() {
            let n = self.file.read_at(&mut buffer[filled..], offset + filled as u64)?;
            if n == 0 {
                break;
            }
            filled += n;
        }
        buffer.truncate(filled);
        Ok(buffer)
    }

    /// Sets the file's length.
    pub(super) fn truncate(&mut self, size: u64) -> std::io::Result<()> {
        self.write_out(false)?;
        self.file.set_len(size)
    }

    /// Writes everything gathered and fsyncs the data: when this returns, the bytes survive a crash.
    pub(super) fn sync(&mut self) -> std::io::Result<()> {
        if let Some(failed) = self.failed.take() {
            return Err(failed);
        }
        self.write_out(false)?;
        self.file.sync_all()
    }

    /// Makes every byte written below `end` reach the file (not fsynced), for an upload reading it while the
    /// writer goes on: a gathered run that starts below `end` is written out, keeping its partial last page.
    pub(super) fn written_below(&mut self, end: u64) -> std::io::Result<()> {
        if let Err(e) = self.wait() {
            self.failed = Some(std::io::Error::new(e.kind(), e.to_string()));
            return Err(e);
        }
        if self.gathered.as_ref().is_some_and(|g| g.offset < end) {
            self.write_out(true)?;
        }
        Ok(())
    }

    /// Writes everything gathered (not fsynced) and returns the file's length: what an upload starting now
    /// reads.
    pub(super) fn settle(&mut self) -> std::io::Result<u64> {
        self.write_out(false)?;
        Ok(self.file.metadata()?.len())
    }
}

/// Reads `buffer.len()` bytes at `offset` of the data file at `path` into `buffer` (directly where the file
/// system allows), for an upload: the bytes go to the store without passing through the page cache.
pub(super) fn read_part(path: &Path, offset: u64, mut buffer: BlockBuf) -> std::io::Result<BlockBuf> {
    let len = buffer.len();
    let direct = match open_direct(OpenOptions::new().read(true), path) {
        Ok(file) if offset.is_multiple_of(ALIGN as u64) && buffer.is_aligned() => Some(file),
        _ => None,
    };
    let read = match direct {
        Some(file) => match read_full(&file, buffer.padded_mut(), offset) {
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                read_full(&File::open(path)?, buffer.as_mut_slice(), offset)?
            }
            other => other?,
        },
        None => read_full(&File::open(path)?, buffer.as_mut_slice(), offset)?,
    };
    if read < len {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            format!("{} ended {} bytes early", path.display(), len - read),
        ));
    }
    buffer.truncate(len);
    Ok(buffer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gathered_direct_and_scattered_writes_read_back_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("1.data");
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let pool = BufferPool::new(GATHER, 1);
        let mut file = StagedFile::create(&path, runtime.handle().clone(), pool).unwrap();
        let mut expected = vec![0u8; 10 * GATHER / 4 + 777];
        for (i, byte) in expected.iter_mut().enumerate() {
            *byte = (i % 253) as u8;
        }
        // Sequential pieces of odd sizes (gathered and written directly), a read in the middle of the run,
        // then a write back inside what was written and one past the end (through the page cache).
        let mut offset = 0;
        for piece in expected.chunks(130_001) {
            file.write(offset, piece).unwrap();
            offset += piece.len() as u64;
            if offset > GATHER as u64 && offset < 2 * GATHER as u64 {
                assert_eq!(file.read(100, 5).unwrap(), &expected[100..105]);
            }
        }
        file.write(5000, b"patched").unwrap();
        expected[5000..5007].copy_from_slice(b"patched");
        file.sync().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), expected);
        assert_eq!(file.settle().unwrap(), expected.len() as u64);
        let part = read_part(&path, ALIGN as u64, BlockBuf::unpooled(3 * ALIGN + 5)).unwrap();
        assert_eq!(part.as_ref(), &expected[ALIGN..4 * ALIGN + 5]);
        file.truncate(10).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), &expected[..10]);
    }
}
