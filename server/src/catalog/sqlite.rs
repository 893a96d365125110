//! The SQLite adapter: the embedded default. Two files: the main database (users, tokens, the migration
//! table) and a second file attached as `icloud` on every pool connection, so the catalog's SQL names
//! `icloud.photos` exactly as on PostgreSQL. Both files run in WAL mode with a busy timeout.
//!
//! Write transactions start with `BEGIN IMMEDIATE`: a deferred transaction that reads first and then writes
//! can fail with `SQLITE_BUSY` at once when another connection wrote in between, whatever the busy timeout.
//! Everything one sync batch writes lives in `icloud`, because a transaction over two WAL files is atomic
//! per file only.

use std::path::{Path, PathBuf};
use std::str::FromStr as _;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt as _;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use super::{ConnectOptions, LibraryId, Result, UserId};

/// The adapter the shared SQL in `catalog/sql/` implements [`super::Catalog`] for, through [`sql::Driver`].
type Adapter = SqliteCatalog;

mod checkpoint;
#[allow(
    clippy::duplicate_mod,
    reason = "compiled once per driver on purpose: see catalog/sql.rs"
)]
#[path = "sql.rs"]
mod sql;

/// How much of the `icloud` database is read through a memory map (the rest through read(2)).
const MMAP_BYTES: u64 = 1 << 30;
/// WAL pages (4 KiB each) after which a commit checkpoints the `icloud` WAL into its database file itself;
/// normally the checkpointer (`sqlite/checkpoint.rs`) has done it before.
const CHECKPOINT_PAGES: u32 = 10_000;

/// The catalog on two SQLite files.
#[derive(Debug, Clone)]
pub struct SqliteCatalog {
    /// Reads and the few single-statement writes (token `last_used_at`, a new library, a new user).
    pool: SqlitePool,
    /// The one connection write transactions run on. SQLite has one writer at a time anyway; with several
    /// pool connections racing for `BEGIN IMMEDIATE`, the losers sleep in SQLite's busy handler (1, 2, 5,
    /// 10 … ms, blind to when the lock frees) while the lock sits idle. A pool
    /// of one queues writers in order instead, and they start the moment the previous one commits. This is
    /// scheduling, not correctness: another process on the same files still serialises through SQLite's lock.
    writer: SqlitePool,
    /// Checkpoints the WAL beside the writer (shared by the clones; stops with the last one).
    checkpointer: Arc<checkpoint::Checkpointer>,
    main: PathBuf,
    icloud: PathBuf,
}

impl SqliteCatalog {
    /// Opens (creating when missing) `main` and `icloud`; does not migrate.
    pub async fn open(main: &Path, icloud: &Path, options: &ConnectOptions) -> Result<Self> {
        let writer = pool(main, icloud, 1).await?;
        let pool = pool(main, icloud, options.max_connections.max(1)).await?;
        let checkpointer = Arc::new(checkpoint::Checkpointer::start(pool.clone()));
        Ok(Self {
            pool,
            writer,
            checkpointer,
            main: main.to_owned(),
            icloud: icloud.to_owned(),
        })
    }

    /// The main database file.
    pub fn main_path(&self) -> &Path {
        &self.main
    }

    /// The file attached as `icloud`.
    pub fn icloud_path(&self) -> &Path {
        &self.icloud
    }

    /// Closes the pools; later calls fail with [`super::Error::Unavailable`].
    pub async fn close(&self) {
        self.pool.close().await;
        self.writer.close().await;
    }
}

/// What the shared SQL needs of SQLite.
impl sql::Driver for SqliteCatalog {
    type Db = sqlx::Sqlite;
    /// The write transaction: see [`sql::Driver::begin_sync`] below.
    type SyncConn = sqlx::Transaction<'static, sqlx::Sqlite>;

    const EXPLAIN: &'static str = "EXPLAIN QUERY PLAN";
    /// Nothing: `BEGIN IMMEDIATE` already serialises writers.
    const SKIP_LOCKED: &'static str = "";
    /// Nothing: `BEGIN IMMEDIATE` already serialises every writer.
    const USER_WRITE_LOCK: &'static str = "";
    const RESULT_KEY: &'static str = "json_extract(e.result, '$.key')";
    /// The FTS5 index of migration 0014 (external content: its rowids are the photos').
    const SEARCH_MATCH: &'static str =
        "p.rowid IN (SELECT rowid FROM icloud.photo_search WHERE photo_search MATCH ?)";
    const LOCAL_MONTH: &'static str =
        "strftime('%Y-%m', (p.taken_at + p.taken_at_offset_s * 1000) / 1000.0, 'unixepoch')";

    fn search_query(terms: &super::search::SearchTerms) -> String {
        terms.fts5()
    }

    fn json_items(column: &str) -> String {
        format!("json_each(p.{column}) AS j")
    }
    const RESULT_PREVIEW_KEY: &'static str = "json_extract(e.result, '$.preview.key')";

    fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    async fn run_migrations(&self) -> Result<()> {
        sqlx::migrate!("../migrations/sqlite").run(&self.pool).await?;
        Ok(())
    }

    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>> {
        Ok(self.writer.begin_with("BEGIN IMMEDIATE").await?)
    }

    /// A sync batch reads, decides and writes in one write transaction: SQLite has one writer anyway,
    /// so reading under its lock costs nothing and the decisions cannot go stale (a `serialised` batch, see
    /// the PostgreSQL adapter, is already).
    async fn begin_sync(&self, _serialised: bool) -> Result<Self::SyncConn> {
        sql::Driver::begin_write(self).await
    }

    /// Commits a sync batch, and has the WAL checkpointed soon, off the writer.
    async fn end_sync(&self, tx: Self::SyncConn) -> Result<()> {
        tx.commit().await?;
        self.checkpointer.wrote();
        Ok(())
    }

    /// SQLite plans the batch lookups by the unique index whatever the statistics say: nothing to do.
    fn rows_created(&self, _rows: u64) {}

    /// The portable multi-row statements. Only one writer runs at a time here, so nothing is gained by
    /// folding them into fewer round trips (which SQLite's in-process calls hardly have).
    async fn write_batch(
        conn: &mut sqlx::SqliteConnection,
        user_id: &UserId,
        library_id: &LibraryId,
        batch: &sql::write::BatchWrite<'_>,
        now: i64,
    ) -> Result<sql::write::Written> {
        sql::write::write_portable(conn, user_id, library_id, batch, now).await
    }
}

/// A pool of `size` connections to `main`, each with `icloud` attached and both files in WAL mode.
async fn pool(main: &Path, icloud: &Path, size: u32) -> Result<SqlitePool> {
    let connect = SqliteConnectOptions::from_str("sqlite:")?
        .filename(main)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(Duration::from_secs(10))
        .foreign_keys(true)
        // Statement journals (every multi-row upsert keeps one) in memory rather than in temp files:
        // a profile of a sync batch showed most of its time in the kernel writing them.
        .pragma("temp_store", "memory")
        // Rows reach the async side through a bounded channel of this many; at sqlx's default of 50 a
        // batch's lookup of 100 rows parked the database thread mid-statement until the reader caught up.
        .row_buffer_size(512);
    let icloud_path = icloud.to_string_lossy().into_owned();
    let pool = SqlitePoolOptions::new()
        .max_connections(size)
        .after_connect(move |conn, _meta| {
            let path = icloud_path.clone();
            async move {
                // ATTACH creates the file when missing; the path is bound, never spliced into SQL.
                sqlx::query("ATTACH DATABASE $1 AS icloud")
                    .bind(path)
                    .execute(&mut *conn)
                    .await?;
                // Connect options set pragmas for `main` only.
                sqlx::query("PRAGMA icloud.journal_mode = WAL")
                    .execute(&mut *conn)
                    .await?;
                sqlx::query("PRAGMA icloud.synchronous = NORMAL")
                    .execute(&mut *conn)
                    .await?;
                // Checkpoint the WAL into the database file every 40 MB rather than every 4 MB (SQLite's
                // default). A sync batch dirties index leaves all over the timeline indexes (photos arrive in
                // library order, not by date), and a checkpoint writes and fsyncs each page once however
                // often it changed since the last one: with the default, a profile of the ingest spent
                // more time checkpointing than running statements. Commits stay as durable as before.
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "PRAGMA icloud.wal_autocheckpoint = {CHECKPOINT_PAGES}"
                )))
                .execute(&mut *conn)
                .await?;
                // Reads through a shared memory map instead of copying pages into each connection's
                // 2 MiB cache: a profile of a sync batch showed the indexes of the library reread with
                // read(2) on every batch. The mapping is the file's page cache, shared by connections.
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "PRAGMA icloud.mmap_size = {MMAP_BYTES}"
                )))
                .execute(&mut *conn)
                .await?;
                Ok(())
            }
            .boxed()
        })
        .connect_with(connect)
        .await?;
    Ok(pool)
}
