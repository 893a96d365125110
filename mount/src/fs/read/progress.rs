//! How far a block's GET has come. A block is fetched whole (the cache keeps whole blocks), but a reader that
//! needs only some of its bytes is answered as soon as those are in, not when the block's last byte is: over a
//! link of 200 Mbit/s a 4 MiB block takes 170 ms to arrive, and a player or editor seeking into the middle of a
//! clip (`ffmpeg -ss`) reads a few hundred KiB at a time, in order, from where it landed. Its reads then follow
//! the bytes as they arrive, as a streamed download would serve them, and the block is still cached whole.
//!
//! A block may come in as two runs: from where a reader landed to its end first, then its head (see
//! `Pending::skip`), so a reader landing 3 MiB into a block does not wait for the 3 MiB before it.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use tokio::sync::watch;

use crate::cache::buffer::BlockBuf;

/// How much of a block is in: bytes `skip..tail` (the run that came first) and `0..head` (the head, which
/// comes after it when `skip` is not 0).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Filled {
    skip: usize,
    tail: usize,
    head: usize,
    /// The load is over (done or failed): waiting readers then take the load's own result.
    over: bool,
}

impl Filled {
    /// Whether bytes `from..to` are all in.
    fn has(&self, from: usize, to: usize) -> bool {
        let head_in = from >= self.skip || self.head >= to.min(self.skip);
        let tail_in = to <= self.skip || self.tail >= to;
        head_in && tail_in
    }
}

/// A block being filled by its GET, readable up to where it is filled.
#[derive(Debug)]
pub(super) struct Progress {
    /// The block's buffer while its GET fills it; taken back, full, when the block is complete.
    buffer: Mutex<Option<BlockBuf>>,
    /// The bytes of the block in the buffer so far.
    filled: watch::Sender<Filled>,
    /// A reader has taken bytes of the block while it was loading (see [`Progress::mark_read`]).
    read: AtomicBool,
}

impl Progress {
    pub(super) fn new() -> Self {
        Self {
            buffer: Mutex::new(None),
            filled: watch::Sender::new(Filled::default()),
            read: AtomicBool::new(false),
        }
    }

    fn buffer(&self) -> std::sync::MutexGuard<'_, Option<BlockBuf>> {
        // Every step leaves the buffer whole before it could panic, so a poisoned lock is still usable.
        self.buffer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records that a reader took bytes of the block before it was complete: a prefetched block read that way
    /// is as read as one found in memory, so its budget can go to the next prefetch once it is on disk.
    pub(super) fn mark_read(&self) {
        self.read.store(true, Ordering::Relaxed);
    }

    /// Whether [`Progress::mark_read`] was called.
    pub(super) fn was_read(&self) -> bool {
        self.read.load(Ordering::Relaxed)
    }

    /// Hands the block's (empty) buffer over for its GETs to fill: bytes `skip..` first, then `..skip`.
    pub(super) fn lend(&self, buffer: BlockBuf, skip: usize) {
        *self.buffer() = Some(buffer);
        self.filled.send_replace(Filled {
            skip,
            tail: skip,
            ..Filled::default()
        });
    }

    /// Copies `chunk` in at `at` (the bytes of its run before it are in) and wakes the readers waiting for it.
    pub(super) fn append(&self, at: usize, chunk: &[u8]) {
        let end = at + chunk.len();
        {
            let mut buffer = self.buffer();
            let Some(buffer) = buffer.as_mut() else {
                return;
            };
            let Some(target) = buffer.as_mut_slice().get_mut(at..end) else {
                return;
            };
            target.copy_from_slice(chunk);
        }
        self.filled.send_modify(|filled| {
            if at >= filled.skip {
                filled.tail = end;
            } else {
                filled.head = end;
            }
        });
    }

    /// Takes the buffer back once the GET has filled it.
    pub(super) fn take(&self) -> Option<BlockBuf> {
        self.buffer().take()
    }

    /// The load is over: readers waiting from now on use its result.
    pub(super) fn end(&self) {
        self.buffer().take();
        self.filled.send_modify(|filled| filled.over = true);
    }

    /// Bytes `from..to` of the block, as soon as the GET has brought them; `None` when the load ended first
    /// (its result has them, or says why not).
    pub(super) async fn wait(&self, from: usize, to: usize) -> Option<Bytes> {
        let mut filled = self.filled.subscribe();
        let reached = filled
            .wait_for(|filled| filled.over || filled.has(from, to))
            .await
            .ok()
            .map(|f| *f)?;
        if reached.over {
            return None;
        }
        let buffer = self.buffer();
        let bytes = buffer.as_ref()?.as_ref().get(from..to)?;
        Some(Bytes::copy_from_slice(bytes))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    /// A reader of bytes `from..to`, waiting on a task of its own.
    fn waiter(progress: &Arc<Progress>, from: usize, to: usize) -> tokio::task::JoinHandle<Option<Bytes>> {
        let progress = Arc::clone(progress);
        tokio::spawn(async move { progress.wait(from, to).await })
    }

    /// What `waiter` was answered, within a bound (a reader never answered fails the test, not hangs it).
    async fn answer(waiter: tokio::task::JoinHandle<Option<Bytes>>) -> Option<Bytes> {
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("never answered")
            .unwrap()
    }

    /// A reader of the first bytes of a block is answered once those are in, while the rest has not come; a
    /// reader of bytes that never come in before the load ends gets `None` (the load's result answers it).
    #[tokio::test]
    async fn a_read_is_answered_as_soon_as_its_bytes_are_in() {
        let progress = Arc::new(Progress::new());
        progress.lend(BlockBuf::unpooled(1000), 0);
        let (head, tail) = (waiter(&progress, 10, 20), waiter(&progress, 900, 1000));
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!head.is_finished(), "answered before its bytes were in");
        progress.append(0, &[7u8; 15]);
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!head.is_finished(), "answered with 15 of its 20 bytes in");
        progress.append(15, &(15u8..100).collect::<Vec<u8>>());
        let head = answer(head).await;
        let mut expected = vec![7u8; 5];
        expected.extend(15u8..20);
        assert_eq!(head.as_deref(), Some(&expected[..]));
        assert!(!tail.is_finished(), "the tail's bytes are not in");
        assert!(progress.take().is_some());
        progress.end();
        let tail = answer(tail).await;
        assert_eq!(tail, None);
        // After the end, a new reader does not wait.
        assert_eq!(progress.wait(0, 10).await, None);
    }

    /// A block that comes in from where a reader landed (byte 600) and then its head: the landed reader is
    /// answered before the head is in, a reader of the head (or across both runs) only once it is.
    #[tokio::test]
    async fn a_block_landed_in_serves_its_tail_before_its_head() {
        let progress = Arc::new(Progress::new());
        progress.lend(BlockBuf::unpooled(1000), 600);
        let data: Vec<u8> = (0..1000).map(|i| (i % 251) as u8).collect();
        let (landed, head, across) = (
            waiter(&progress, 600, 700),
            waiter(&progress, 100, 200),
            waiter(&progress, 500, 650),
        );
        progress.append(600, &data[600..1000]);
        let landed = answer(landed).await;
        assert_eq!(landed.as_deref(), Some(&data[600..700]));
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!head.is_finished(), "the head was answered before it came in");
        assert!(
            !across.is_finished(),
            "a read across both runs was answered with the head missing"
        );
        progress.append(0, &data[..550]);
        let head = answer(head).await;
        assert_eq!(head.as_deref(), Some(&data[100..200]));
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!across.is_finished(), "answered with bytes 550..600 missing");
        progress.append(550, &data[550..600]);
        let across = answer(across).await;
        assert_eq!(across.as_deref(), Some(&data[500..650]));
    }
}
