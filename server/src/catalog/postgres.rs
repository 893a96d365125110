//! The PostgreSQL adapter: production. Users and API tokens live in `public`, the photo catalog in schema
//! `icloud` (created by the first migration), so the catalog's SQL names `icloud.photos` exactly as on
//! SQLite. Write transactions are plain `BEGIN` (READ COMMITTED): the per-user version row is updated with
//! `RETURNING`, which serialises concurrent writers of one user from that point, and all row writes are
//! upserts, so a race between two batches of one user cannot fail either.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sqlx::postgres::{PgPool, PgPoolOptions};

use super::{ConnectOptions, LibraryId, Result, UserId};

/// The adapter the shared SQL in `catalog/sql/` implements [`super::Catalog`] for, through [`sql::Driver`].
type Adapter = PostgresCatalog;

#[allow(
    clippy::duplicate_mod,
    reason = "compiled once per driver on purpose: see catalog/sql.rs"
)]
#[path = "sql.rs"]
mod sql;
mod write;

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

    /// Closes the pool; later calls fail with [`super::Error::Unavailable`].
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// What the shared SQL needs of PostgreSQL.
impl sql::Driver for PostgresCatalog {
    type Db = sqlx::Postgres;
    /// A plain connection or a transaction: see [`sql::Driver::begin_sync`] below.
    type SyncConn = SyncOn;

    const EXPLAIN: &'static str = "EXPLAIN";
    const SKIP_LOCKED: &'static str = "FOR UPDATE SKIP LOCKED";
    /// Held by the collector's release and by `record_upload` until their transactions end, keyed by a
    /// 64-bit hash of `iphoto-user-writes:<user id>`.
    const USER_WRITE_LOCK: &'static str = "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))";
    const RESULT_KEY: &'static str = "(e.result::jsonb ->> 'key')";
    /// The expression of the GIN index `photos_search` (migration 0014), written exactly as indexed.
    const SEARCH_MATCH: &'static str =
        "array_to_tsvector(string_to_array(p.search_text, ' ')) @@ CAST(? AS tsquery)";
    const LOCAL_MONTH: &'static str = "to_char(to_timestamp((p.taken_at + p.taken_at_offset_s * 1000)::float8 / 1000) \
        AT TIME ZONE 'UTC', 'YYYY-MM')";

    fn search_query(terms: &super::search::SearchTerms) -> String {
        terms.tsquery()
    }

    fn json_items(column: &str) -> String {
        format!("jsonb_array_elements_text(p.{column}::jsonb) AS j(value)")
    }
    const RESULT_PREVIEW_KEY: &'static str = "(e.result::jsonb -> 'preview' ->> 'key')";

    fn pool(&self) -> &PgPool {
        &self.pool
    }

    async fn run_migrations(&self) -> Result<()> {
        sqlx::migrate!("../migrations/postgres").run(&self.pool).await?;
        Ok(())
    }

    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>> {
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
    async fn begin_sync(&self, serialised: bool) -> Result<Self::SyncConn> {
        Ok(if serialised {
            SyncOn::Transaction(self.pool.begin().await?)
        } else {
            SyncOn::Connection(self.pool.acquire().await?)
        })
    }

    /// Commits a serialised batch; a plain one's write statement committed itself.
    async fn end_sync(&self, conn: Self::SyncConn) -> Result<()> {
        if let SyncOn::Transaction(tx) = conn {
            tx.commit().await?;
        }
        Ok(())
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

    /// One statement: see `postgres/write.rs`.
    async fn write_batch(
        conn: &mut sqlx::PgConnection,
        user_id: &UserId,
        library_id: &LibraryId,
        batch: &sql::write::BatchWrite<'_>,
        now: i64,
    ) -> Result<sql::write::Written> {
        write::write_batch(conn, user_id, library_id, batch, now).await
    }
}

/// A sync batch's connection: plain (the one-statement fast path) or a transaction (serialised batches).
#[derive(Debug)]
enum SyncOn {
    /// Outside a transaction block.
    Connection(sqlx::pool::PoolConnection<sqlx::Postgres>),
    /// Inside one, rolled back when dropped uncommitted.
    Transaction(sqlx::Transaction<'static, sqlx::Postgres>),
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
