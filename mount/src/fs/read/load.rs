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
}

impl Pending {
    /// The block it loads.
    pub(super) fn id(&self) -> &BlockId {
        &self.id
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
    /// otherwise.
    pub(super) async fn fill_one(
        self: &Arc<Self>,
        body: &mut Body,
        file: &FileVersion,
        pending: Pending,
    ) -> std::result::Result<(), (Pending, Error)> {
        pending.progress.lend(self.pool.take(pending.len));
        let filled =
            tokio::time::timeout(self.timeout, body.fill(&pending.progress, pending.len, &file.key)).await;
        let error = match (filled, pending.progress.take()) {
            (Ok(Ok(())), Some(buffer)) => {
                self.complete(pending, Bytes::from_owner(buffer), false);
                return Ok(());
            }
            (Ok(Ok(())), None) => Error::Panicked {
                what: "a block's buffer",
            },
            (Ok(Err(e)), _) => e,
            (Err(_), _) => self.timeout_error(),
        };
        Err((pending, error))
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

    /// Fills the `len` bytes of the block `progress` is lent with the next bytes, chunk by chunk as they
    /// come; a body that ends first means the object changed under us.
    async fn fill(&mut self, progress: &Progress, len: usize, key: &StorageKey) -> Result<()> {
        let mut filled = 0;
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
