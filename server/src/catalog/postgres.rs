//! The PostgreSQL adapter: production. Users and API tokens live in `public`, the photo catalog in schema
//! `icloud` (created by the first migration), so the catalog's SQL names `icloud.photos` exactly as on
//! SQLite. Write transactions are plain `BEGIN` (READ COMMITTED): the per-user version row is updated with
//! `RETURNING`, which serialises concurrent writers of one user from that point, and all row writes are
//! upserts, so a race between two batches of one user cannot fail either.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sqlx::postgres::{PgPool, PgPoolOptions};

use super::{ConnectOptions, Result};

/// The driver the shared SQL in `catalog/sql/` is compiled for in this module.
type Db = sqlx::Postgres;
/// The adapter the shared SQL implements [`super::Catalog`] for.
type Adapter = PostgresCatalog;
/// What a sync batch runs on: see [`PostgresCatalog::begin_sync`].
type SyncConn = SyncOn;

/// How this driver shows a query plan.
const EXPLAIN: &str = "EXPLAIN";
/// What a job lease's inner select adds so concurrent leases skip each other's rows.
const SKIP_LOCKED: &str = "FOR UPDATE SKIP LOCKED";
/// The user's write lock (`sql/gc.rs`): held by the collector's release and by `record_upload` until their
/// transactions end, keyed by a 64-bit hash of `iphoto-user-writes:<user id>`.
const USER_WRITE_LOCK: &str = "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))";
/// The `key` of enrichment `e`'s JSON result (NULL when it has none).
const RESULT_KEY: &str = "(e.result::jsonb ->> 'key')";

#[allow(
    clippy::duplicate_mod,
    reason = "compiled once per driver on purpose: see catalog/sql.rs"
)]
#[path = "sql.rs"]
mod sql;
mod write;

use write::write_batch;

/// The catalog on PostgreSQL.
#[derive(Debug, Clone)]
pub struct PostgresCatalog {
    pool: PgPool,
    analyze: Arc<AnalyzeSchedule>,
}

/// When to refresh the planner's statistics of the catalog tables ourselves.
///
/// Autovacuum analyzes a table after 10% of it changed, checked once a minute; the first sync of a large
/// library outruns that, and until a freshly created table is analyzed PostgreSQL plans the batch lookups
/// (`local_identifier IN (…)`, `photo_id IN (…)`) as scans of all the user's rows, so every batch gets slower
/// as the library grows. Analyzing after the catalog has doubled since the last time (from 1,000 rows on)
/// costs a handful of `ANALYZE` runs over a whole first sync: 1k, 2k, 4k, … rows.
#[derive(Debug, Default)]
struct AnalyzeSchedule {
    /// Photo and resource rows created since this process started.
    created: AtomicU64,
    /// `created` when the next `ANALYZE` is due.
    next: AtomicU64,
}

/// Rows created before the first `ANALYZE`.
const FIRST_ANALYZE_AT: u64 = 1_000;

impl PostgresCatalog {
    /// Connects to `url`; does not migrate.
    pub async fn open(url: &str, options: &ConnectOptions) -> Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await?;
        let analyze = AnalyzeSchedule {
            created: AtomicU64::new(0),
            next: AtomicU64::new(FIRST_ANALYZE_AT),
        };
        Ok(Self {
            pool,
            analyze: Arc::new(analyze),
        })
    }

    /// Counts rows a write created; past the schedule's next mark, refreshes the statistics of the synced
    /// tables in the background (a failure is logged: autovacuum still catches up later).
    fn rows_created(&self, rows: u64) {
        let created = self.analyze.created.fetch_add(rows, Ordering::Relaxed) + rows;
        let next = self.analyze.next.load(Ordering::Relaxed);
        if created < next
            || self
                .analyze
                .next
                .compare_exchange(
                    next,
                    created.saturating_mul(2),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_err()
        {
            return;
        }
        let pool = self.pool.clone();
        tokio::spawn(async move {
            let started = std::time::Instant::now();
            match sqlx::query("ANALYZE icloud.photos, icloud.resources")
                .execute(&pool)
                .await
            {
                Ok(_) => {
                    tracing::debug!(rows = created, elapsed = ?started.elapsed(), "catalog statistics refreshed")
                }
                Err(error) => tracing::warn!(%error, "ANALYZE of the catalog failed"),
            }
        });
    }

    /// Closes the pool; later calls fail with [`super::Error::Unavailable`].
    pub async fn close(&self) {
        self.pool.close().await;
    }

    async fn run_migrations(&self) -> Result<()> {
        sqlx::migrate!("../migrations/postgres").run(&self.pool).await?;
        Ok(())
    }

    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, Db>> {
        Ok(self.pool.begin().await?)
    }

    /// A sync batch runs on a plain connection, outside a transaction block: its reads are single
    /// statements (under READ COMMITTED a transaction would give each its own snapshot anyway) and all its
    /// writes are one statement (`write.rs`), atomic on its own and committed when it ends. So the user's
    /// version row, locked by that statement, is released by the server itself, never held across a round
    /// trip to a client that may not be scheduled for milliseconds: with four batches in flight on a busy
    /// machine, most of a batch's time went into waiting for that lock.
    ///
    /// A `serialised` batch (a user with several libraries, whose items may match photos another library
    /// synced: `sql/sources.rs`) runs in a transaction instead, in which the caller takes the user's sync
    /// lock before its first read, so two libraries' batches never both create the photo they share, and
    /// its writes beside the one statement commit with it.
    async fn begin_sync(&self, serialised: bool) -> Result<SyncConn> {
        Ok(if serialised {
            SyncOn::Transaction(self.pool.begin().await?)
        } else {
            SyncOn::Connection(self.pool.acquire().await?)
        })
    }

    /// Commits a serialised batch; a plain one's write statement committed itself.
    #[allow(clippy::unused_self, reason = "the SQLite adapter's counterpart checkpoints")]
    async fn end_sync(&self, conn: SyncConn) -> Result<()> {
        if let SyncOn::Transaction(tx) = conn {
            tx.commit().await?;
        }
        Ok(())
    }
}

/// A sync batch's connection: plain (the one-statement fast path) or a transaction (serialised batches).
#[derive(Debug)]
enum SyncOn {
    /// Outside a transaction block.
    Connection(sqlx::pool::PoolConnection<Db>),
    /// Inside one, rolled back when dropped uncommitted.
    Transaction(sqlx::Transaction<'static, Db>),
}

impl std::ops::Deref for SyncOn {
    type Target = sqlx::PgConnection;

    fn deref(&self) -> &Self::Target {
        match self {
            SyncOn::Connection(conn) => conn,
            SyncOn::Transaction(tx) => tx,
        }
    }
}

impl std::ops::DerefMut for SyncOn {
    fn deref_mut(&mut self) -> &mut Self::Target {
        match self {
            SyncOn::Connection(conn) => conn,
            SyncOn::Transaction(tx) => tx,
        }
    }
}
