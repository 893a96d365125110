//! The `icloud` WAL checkpointed beside the writer rather than by it.
//!
//! SQLite checkpoints in the connection whose commit takes the WAL past its autocheckpoint threshold: that
//! commit copies the WAL's pages into the database file and fsyncs it before it returns, and with one
//! writer connection every sync batch queued behind it waits. A profile of the ingest put a fifth of the
//! writer's time there. A connection of the read pool can run the same checkpoint concurrently: a PASSIVE
//! checkpoint neither blocks nor waits for the writer or readers (it copies what no reader still needs).
//! The writer's own autocheckpoint stays as the backstop for writes that outrun this one.

use std::sync::Arc;
use std::time::Duration;

use sqlx::sqlite::SqlitePool;
use tokio::sync::Notify;
use tokio::task::AbortHandle;

/// How long after a commit the checkpoint starts: commits arriving meanwhile share it, and a page written
/// by several of them is copied once.
const GATHER: Duration = Duration::from_millis(100);

/// Runs a PASSIVE checkpoint of `icloud` shortly after writes, on its own task; stops when dropped.
#[derive(Debug)]
pub(super) struct Checkpointer {
    wake: Arc<Notify>,
    task: AbortHandle,
}

impl Checkpointer {
    /// Starts the task on the current runtime, checkpointing through `pool`.
    pub(super) fn start(pool: SqlitePool) -> Self {
        let wake = Arc::new(Notify::new());
        let woken = Arc::clone(&wake);
        let task = tokio::spawn(async move {
            loop {
                woken.notified().await;
                tokio::time::sleep(GATHER).await;
                // A failure costs nothing but time: the writer's autocheckpoint still bounds the WAL.
                if let Err(error) = sqlx::query("PRAGMA icloud.wal_checkpoint(PASSIVE)")
                    .execute(&pool)
                    .await
                {
                    tracing::debug!(%error, "background checkpoint of the catalog failed");
                }
            }
        });
        Self {
            wake,
            task: task.abort_handle(),
        }
    }

    /// Says a write transaction committed (several calls before the checkpoint runs make one checkpoint).
    pub(super) fn wrote(&self) {
        self.wake.notify_one();
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
