//! Streams: a reader's GET of a block that goes on into the following blocks for as long as readers ask for
//! them, instead of one GET per block.
//!
//! Why: a player or editor that lands in a clip (`ffmpeg -ss`) reads on from there, and the kernel's
//! read-ahead asks for the next blocks (up to 16 MiB on with `--kernel-read-ahead 16MiB`) within milliseconds
//! of the first read, as a reader reading on across a block boundary does. With a GET of
//! its own for each of them, the blocks split the link between them, so the one the reader is waiting for
//! came at a fraction of the link's rate while the read-ahead's blocks, needed later or never, took the rest.
//! Now the first block's GET asks for the range up to [`STREAM_BLOCKS`] blocks on, a demand load of the block
//! the stream reaches next joins it (its bytes come in order, behind the ones being waited for), and when the
//! stream has finished its blocks and nobody has asked for the next one, the GET is dropped: nothing is fetched
//! that no reader asked for (the bytes already in flight on the connection aside).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use super::load::Pending;
use super::{FileVersion, Reader};

/// How many blocks one stream's GET may cover (with 4 MiB blocks, 64 MiB): a reader that goes on past that
/// starts a new GET. Bounds what the store is asked for at once, not what is fetched: a stream stops at the
/// last block a reader asked for.
pub(super) const STREAM_BLOCKS: u64 = 16;

/// A reader landing at least this far into a block the disk cache does not have starts the block's GET where
/// it landed, and the bytes before come after the rest, with a GET of their own: over a link of 200 Mbit/s
/// the 3 MiB before a frame 3 MiB into a 4 MiB block take 125 ms, which a scrub (`ffmpeg -ss`) waited for on
/// every seek. Closer to the block's start, the bytes before cost less than the second GET's round trip.
pub(super) const LAND_MIN: usize = 256 << 10;

/// A stream under way: the blocks queued behind the one its GET is filling.
pub(super) struct Tail {
    key: String,
    version: String,
    /// The block a load may join the stream with (the one after the last queued).
    next: u64,
    /// One past the last block the GET's range covers.
    end: u64,
    queue: VecDeque<Pending>,
}

impl std::fmt::Debug for Tail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tail")
            .field("next", &self.next)
            .field("end", &self.end)
            .field("queued", &self.queue.len())
            .finish_non_exhaustive()
    }
}

/// The streams under way, by an id of their own.
#[derive(Debug, Default)]
pub(super) struct Tails {
    streams: HashMap<u64, Tail>,
    last_id: u64,
}

impl Tails {
    /// Queues `pending` on the stream of its file that reaches its block next; gives it back when there is
    /// none.
    pub(super) fn join(&mut self, pending: Pending) -> Result<(), Pending> {
        let id = pending.id();
        let tail = self
            .streams
            .values_mut()
            .find(|t| t.next == id.index && id.index < t.end && t.key == id.key && t.version == id.version);
        match tail {
            Some(tail) => {
                tail.next += 1;
                tail.queue.push_back(pending);
                Ok(())
            }
            None => Err(pending),
        }
    }

    /// Registers a stream that starts with `first` and may cover blocks up to `end` (exclusive).
    fn start(&mut self, first: &Pending, end: u64) -> u64 {
        self.last_id += 1;
        let id = first.id();
        self.streams.insert(
            self.last_id,
            Tail {
                key: id.key.clone(),
                version: id.version.clone(),
                next: id.index + 1,
                end,
                queue: VecDeque::new(),
            },
        );
        self.last_id
    }

    /// The next block the stream fills, or `None` (and the stream is over: nothing can join it any more).
    fn next(&mut self, stream: u64) -> Option<Pending> {
        let tail = self.streams.get_mut(&stream)?;
        let next = tail.queue.pop_front();
        if next.is_none() {
            self.streams.remove(&stream);
        }
        next
    }

    /// Ends the stream and gives back what was queued on it.
    fn close(&mut self, stream: u64) -> Vec<Pending> {
        self.streams
            .remove(&stream)
            .map(|t| t.queue.into())
            .unwrap_or_default()
    }
}

impl Reader {
    /// Fetches `first` (a demand load of a block the disk cache does not have) with a GET that goes on into
    /// the blocks readers then ask for.
    pub(super) fn spawn_stream(self: &Arc<Self>, file: FileVersion, first: Pending) {
        let blocks = file.size.div_ceil(self.block_size);
        let end = first.id().index.saturating_add(STREAM_BLOCKS).min(blocks);
        let stream = self.tails().start(&first, end);
        let reader = Arc::clone(self);
        tokio::spawn(async move { reader.stream(&file, stream, first, end).await });
    }

    async fn stream(self: &Arc<Self>, file: &FileVersion, stream: u64, first: Pending, end: u64) {
        let start = first.id().index * self.block_size + first.skip() as u64;
        let end = (end * self.block_size).min(file.size);
        let mut body = match self.open_body(file, start..end).await {
            Ok(body) => body,
            Err(error) => {
                let rest = self.tails().close(stream);
                return self.fail_all(std::iter::once(first).chain(rest).collect(), error);
            }
        };
        let mut current = Some(first);
        while let Some(pending) = current {
            if let Err((pending, error)) = self.fill_one(&mut body, file, pending).await {
                let rest = self.tails().close(stream);
                return self.fail_all(std::iter::once(pending).chain(rest).collect(), error);
            }
            current = self.tails().next(stream);
        }
        // Dropping the body ends the GET: no reader asked for the blocks after the last one filled.
    }

    /// The streams, locked.
    pub(super) fn tails(&self) -> std::sync::MutexGuard<'_, Tails> {
        // Every step leaves the map consistent before it could panic, so a poisoned lock is still usable.
        self.tails
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bytes::Bytes;
    use storage::{PutOptions, StorageKey};

    use super::*;
    use crate::fs::inode::version_of;
    use crate::fs::read::memory::Found;

    const BLOCK: u64 = 64 << 10;

    /// A one-thread runtime (a stream's task runs only when the test awaits, so what joins is deterministic)
    /// and a reader over a local store in `dir` holding `data`, with the version it reads.
    fn reader_over(
        dir: &std::path::Path,
        block: u64,
        budget_blocks: u64,
        data: &[u8],
    ) -> (tokio::runtime::Runtime, Arc<Reader>, FileVersion) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let reader = Arc::new(crate::fs::read::tests::local_reader(dir, block, budget_blocks));
        let key = StorageKey::try_from("clip.bin").unwrap();
        let file = runtime.block_on(async {
            let store = &reader.store;
            store
                .put(&key, Bytes::copy_from_slice(data), &PutOptions::default())
                .await
                .unwrap();
            let meta = store.head(&key).await.unwrap();
            FileVersion {
                key,
                version: version_of(&meta),
                size: meta.size,
            }
        });
        (runtime, reader, file)
    }

    /// A reader of the next block joins the GET that is bringing the block before it (one stream, its bytes in
    /// order), the stream ends after the last block asked for (the blocks after it are not loaded), and a
    /// block asked for later starts a stream of its own. Bytes read back equal the object's.
    #[test]
    fn the_next_block_joins_the_stream_and_the_stream_stops_where_readers_stop() {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..6 * BLOCK).map(|i| (i % 251) as u8).collect();
        let (runtime, reader, file) = reader_over(dir.path(), BLOCK, 16, &data);
        runtime.block_on(async {
            let block = |found: Found| async {
                match found {
                    Found::Ready(bytes) => bytes,
                    Found::Loading(loading) => loading.load.await.unwrap(),
                }
            };
            let first = reader.find_or_load(&file, 1, 0).await.unwrap();
            let second = reader.find_or_load(&file, 2, 0).await.unwrap();
            assert_eq!(
                reader.tails().streams.len(),
                1,
                "block 2 opened a stream of its own"
            );
            assert_eq!(reader.tails().streams.values().next().unwrap().queue.len(), 1);
            let (first, second) = (block(first).await, block(second).await);
            assert_eq!(&first[..], &data[BLOCK as usize..2 * BLOCK as usize]);
            assert_eq!(&second[..], &data[2 * BLOCK as usize..3 * BLOCK as usize]);
            // Nobody asked for block 3: the stream ended after block 2 and did not load it.
            tokio::time::sleep(Duration::from_millis(50)).await;
            assert!(reader.tails().streams.is_empty());
            assert!(!reader.memory().contains(&reader.block_id(&file, 3)));
            // A later reader of block 4 starts a stream of its own, which block 5 joins.
            let fourth = reader.find_or_load(&file, 4, 0).await.unwrap();
            let fifth = reader.find_or_load(&file, 5, 0).await.unwrap();
            assert_eq!(reader.tails().streams.len(), 1);
            assert_eq!(
                &block(fourth).await[..],
                &data[4 * BLOCK as usize..5 * BLOCK as usize]
            );
            assert_eq!(&block(fifth).await[..], &data[5 * BLOCK as usize..]);
        });
    }

    /// A load landing in the middle of a block (past [`LAND_MIN`]) opens a stream that the next block can
    /// join, answers the bytes it landed on right, and completes the block whole, head included, with the object's
    /// bytes, as does a load landing nearer the start (one GET from the start). Where the GETs start, as seen
    /// on the wire: `read::a_read_landing_in_a_block_fetches_from_there_first`.
    #[test]
    fn a_load_landing_in_a_block_starts_there_and_completes_the_block() {
        let block = 1 << 20;
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..3 * block).map(|i| (i % 253) as u8).collect();
        let (runtime, reader, file) = reader_over(dir.path(), block, 8, &data);
        runtime.block_on(async {
            let landed = 700 << 10;
            let Found::Loading(loading) = reader.find_or_load(&file, 1, landed).await.unwrap() else {
                panic!("block 1 was in memory before any load");
            };
            let stream = reader.tails().streams.values().next().map(|t| t.next);
            assert_eq!(stream, Some(2), "no stream for block 1");
            let at = block as usize + landed;
            // `None` when the whole block came in before this waited (then the load's result has the bytes).
            if let Some(early) = loading.progress.wait(landed, landed + 100).await {
                assert_eq!(&early[..], &data[at..at + 100]);
            }
            // Within a bound: a head never fetched would leave the block loading for good.
            let whole = tokio::time::timeout(Duration::from_secs(10), loading.load)
                .await
                .expect("the block never completed")
                .unwrap();
            assert_eq!(&whole[..], &data[block as usize..2 * block as usize]);

            let Found::Loading(near) = reader.find_or_load(&file, 2, LAND_MIN - 1).await.unwrap() else {
                panic!("block 2 was in memory before any load");
            };
            assert_eq!(&near.load.await.unwrap()[..], &data[2 * block as usize..]);
        });
    }
}
