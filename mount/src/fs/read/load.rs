//! Loads of blocks into memory, each a task of its own (it completes even when the reader that asked goes
//! away): one block from the disk cache or the store for a reader's demand, or a run of consecutive blocks
//! with one ranged GET for a prefetch. A block is handed to its waiters as soon as its own bytes are in, and
//! written to the disk cache after that, by another task: no reader waits for the cache write or its checksum.

use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt as _;
use futures::future::FutureExt as _;
use storage::{GetObject, StorageKey};
use tokio::sync::{OwnedSemaphorePermit, oneshot};

use super::memory::{Accounted, Loading, Memory};
use super::progress::Progress;
use super::{FileVersion, Reader};
use crate::cache::BlockId;
use crate::error::{Error, Result};
use crate::fs::inode::version_of;

/// A registered load: the block, the budget its bytes will hold, and where its waiters listen.
pub(super) struct Pending {
    id: BlockId,
    len: usize,
    permit: OwnedSemaphorePermit,
    sender: oneshot::Sender<Result<Bytes, Arc<Error>>>,
    /// How far its GET has come, for readers that need only part of it.
    progress: Arc<Progress>,
    /// A reader asked for it (not a prefetch).
    read: bool,
    /// Where in the block its GET starts (0 but for the first block of a stream a reader landed in the middle
    /// of): the bytes before it come after the rest, with a GET of their own (see [`Reader::fill_one`]).
    skip: usize,
}

impl Pending {
    /// The block it loads.
    pub(super) fn id(&self) -> &BlockId {
        &self.id
    }

    /// Where in the block its GET starts.
    pub(super) fn skip(&self) -> usize {
        self.skip
    }

    /// Makes its GET start at byte `at` of the block (kept inside the block).
    pub(super) fn land_at(&mut self, at: usize) {
        self.skip = at.min(self.len);
    }
}

impl Reader {
    /// Registers a load of `id` in `memory` (the caller checked it is not there) and returns it with the
    /// future its waiters share.
    pub(super) fn register(
        &self,
        memory: &mut Memory,
        file: &FileVersion,
        id: BlockId,
        permit: OwnedSemaphorePermit,
        read: bool,
    ) -> (Pending, Loading) {
        let (sender, receiver) = oneshot::channel();
        let shared = async move {
            match receiver.await {
                Ok(result) => result,
                Err(_) => Err(Arc::new(Error::Panicked { what: "block load" })),
            }
        }
        .boxed()
        .shared();
        let progress = Arc::new(Progress::new());
        let loading = Loading {
            load: shared,
            progress: Arc::clone(&progress),
        };
        memory.loading(id.clone(), loading.clone());
        let len = self.block_len(file, id.index);
        let pending = Pending {
            id,
            len,
            permit,
            sender,
            progress,
            read,
            skip: 0,
        };
        (pending, loading)
    }

    /// Loads one block: from the disk cache when it holds it, else from the store.
    pub(super) fn spawn_load(self: &Arc<Self>, file: FileVersion, pending: Pending) {
        let reader = Arc::clone(self);
        tokio::spawn(async move {
            if reader.cache.contains(&pending.id) {
                let cache = reader.cache.clone();
                let lookup = pending.id.clone();
                let buffer = reader.pool.take(pending.len);
                match tokio::task::spawn_blocking(move || cache.get(&lookup, buffer)).await {
                    Ok(Ok(Some(bytes))) => return reader.complete(pending, bytes, true),
                    Ok(Ok(None)) => {}
                    Ok(Err(e)) => tracing::warn!(error = %e, "reading a cached block failed; fetching it"),
                    Err(_) => tracing::warn!("reading a cached block panicked; fetching it"),
                }
            }
            reader.fetch_run(&file, vec![pending]).await;
        });
    }

    /// Fetches consecutive blocks with one ranged GET.
    pub(super) fn spawn_fetch(self: &Arc<Self>, file: FileVersion, run: Vec<Pending>) {
        let reader = Arc::clone(self);
        tokio::spawn(async move { reader.fetch_run(&file, run).await });
    }

    async fn fetch_run(self: &Arc<Self>, file: &FileVersion, run: Vec<Pending>) {
        let (Some(first), Some(last)) = (run.first(), run.last()) else {
            return;
        };
        let start = first.id.index * self.block_size;
        let end = last.id.index * self.block_size + last.len as u64;
        let mut body = match self.open_body(file, start..end).await {
            Ok(body) => body,
            Err(error) => return self.fail_all(run, error),
        };
        let mut run = run.into_iter();
        while let Some(pending) = run.next() {
            if let Err((pending, error)) = self.fill_one(&mut body, file, pending).await {
                return self.fail_all(std::iter::once(pending).chain(run).collect(), error);
            }
        }
    }

    /// A ranged GET of the version `file` was opened at (another version is [`Error::Stale`]).
    pub(super) async fn open_body(&self, file: &FileVersion, range: std::ops::Range<u64>) -> Result<Body> {
        match tokio::time::timeout(self.timeout, self.store.get(&file.key, Some(range))).await {
            Ok(Ok(object)) if version_of(&object.meta) == file.version => Ok(Body::new(object)),
            Ok(Ok(_)) => Err(Error::Stale {
                key: file.key.to_string(),
            }),
            Ok(Err(e)) => Err(Error::Store(e)),
            Err(_) => Err(self.timeout_error()),
        }
    }

    /// Fills `pending`'s block with the body's next bytes, where readers can see them as they come (a read
    /// of this block is answered once its own bytes are in), and completes it; gives it back with the error
    /// otherwise. A block the body starts in the middle of (`skip`) gets its head with a GET of its own once
    /// the body has brought the rest ([`Reader::spawn_head`]); the caller goes on with the body at once.
    pub(super) async fn fill_one(
        self: &Arc<Self>,
        body: &mut Body,
        file: &FileVersion,
        pending: Pending,
    ) -> std::result::Result<(), (Pending, Error)> {
        let skip = pending.skip;
        pending.progress.lend(self.pool.take(pending.len), skip);
        if let Err(error) = self.fill_part(body, file, &pending, skip..pending.len).await {
            return Err((pending, error));
        }
        if skip == 0 {
            self.finish(pending);
            return Ok(());
        }
        // At once rather than after the stream's next block or at its end: measured on the ProRes scrub (bench
        // `video`), a head fetched later held the link when the next seek came (p50 377 ms against 353).
        self.spawn_head(file, pending);
        Ok(())
    }

    /// Fetches the bytes of `pending`'s block before its `skip` with a GET of its own and completes the block.
    fn spawn_head(self: &Arc<Self>, file: &FileVersion, pending: Pending) {
        let reader = Arc::clone(self);
        let file = file.clone();
        tokio::spawn(async move {
            let start = pending.id.index * reader.block_size;
            let skip = pending.skip;
            let head = match reader.open_body(&file, start..start + skip as u64).await {
                Ok(mut head) => reader.fill_part(&mut head, &file, &pending, 0..skip).await,
                Err(error) => Err(error),
            };
            match head {
                Ok(()) => reader.finish(pending),
                Err(error) => reader.fail_all(vec![pending], error),
            }
        });
    }

    /// Fills bytes `range` of `pending`'s block with the body's next bytes.
    async fn fill_part(
        &self,
        body: &mut Body,
        file: &FileVersion,
        pending: &Pending,
        range: std::ops::Range<usize>,
    ) -> Result<()> {
        match tokio::time::timeout(self.timeout, body.fill(&pending.progress, range, &file.key)).await {
            Ok(filled) => filled,
            Err(_) => Err(self.timeout_error()),
        }
    }

    /// Completes `pending` with the buffer its GETs filled.
    fn finish(self: &Arc<Self>, pending: Pending) {
        match pending.progress.take() {
            Some(buffer) => self.complete(pending, Bytes::from_owner(buffer), false),
            None => self.fail_all(
                vec![pending],
                Error::Panicked {
                    what: "a block's buffer",
                },
            ),
        }
    }

    fn timeout_error(&self) -> Error {
        Error::Timeout {
            what: "a ranged GET",
            seconds: self.timeout.as_secs(),
        }
    }

    /// A block's bytes are in: into memory, to its waiters, and (when they came from the store) to the disk
    /// cache.
    fn complete(self: &Arc<Self>, pending: Pending, bytes: Bytes, on_disk: bool) {
        let Pending {
            id,
            permit,
            sender,
            progress,
            read,
            ..
        } = pending;
        let bytes = Bytes::from_owner(Accounted {
            bytes,
            _permit: permit,
        });
        self.memory().loaded(&id, bytes.clone(), on_disk, read);
        let _ = sender.send(Ok(bytes.clone()));
        progress.end();
        if on_disk {
            return;
        }
        let reader = Arc::clone(self);
        tokio::spawn(async move {
            let cache = reader.cache.clone();
            let put_id = id.clone();
            match tokio::task::spawn_blocking(move || cache.put(&put_id, &bytes)).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "caching a block failed; serving it anyway"),
                Err(_) => tracing::warn!("caching a block panicked; serving it anyway"),
            }
            reader.memory().settle(&id);
        });
    }

    pub(super) fn fail_all(&self, run: Vec<Pending>, error: Error) {
        let error = Arc::new(error);
        let mut memory = self.memory();
        for pending in run {
            memory.remove(&pending.id);
            let _ = pending.sender.send(Err(Arc::clone(&error)));
            pending.progress.end();
        }
    }
}

/// A GET's body, handed out block by block (a chunk may straddle two blocks).
pub(super) struct Body {
    stream: futures::stream::BoxStream<'static, storage::Result<Bytes>>,
    leftover: Bytes,
}

impl Body {
    fn new(object: GetObject) -> Self {
        Self {
            stream: object.body,
            leftover: Bytes::new(),
        }
    }

    /// Fills bytes `range` of the block `progress` is lent with the next bytes, chunk by chunk as they come;
    /// a body that ends first means the object changed under us.
    async fn fill(
        &mut self,
        progress: &Progress,
        range: std::ops::Range<usize>,
        key: &StorageKey,
    ) -> Result<()> {
        let (mut filled, len) = (range.start, range.end);
        while filled < len {
            if self.leftover.is_empty() {
                match self.stream.next().await {
                    Some(chunk) => self.leftover = chunk?,
                    None => {
                        return Err(Error::Stale { key: key.to_string() });
                    }
                }
            }
            let n = self.leftover.len().min(len - filled);
            progress.append(filled, &self.leftover.split_to(n));
            filled += n;
        }
        Ok(())
    }
}
