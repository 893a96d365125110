//! The catalog's SQL, shared by both adapters and compiled once per driver: `sqlite.rs` and `postgres.rs`
//! each include this module with `#[path]` after naming their catalog type `Adapter`, which implements
//! [`Driver`]: the interface this SQL expects of an adapter (its sqlx driver, the few fragments where the
//! two dialects differ, how a write transaction and a sync batch begin and end, and how a sync batch's writes
//! are applied: see `sql/write.rs`). Nothing under `sql/` names anything else of the adapter's module.
//!
//! Why not one generic implementation over `sqlx::Database`: the bounds that needs (higher-ranked executor
//! and encode/decode bounds on every function) make the futures hard to prove `Send` for `async_trait`, and
//! sqlx's `Any` driver is ruled out (it loses types). Compiling the same text twice keeps every query typed
//! against the concrete driver at the cost of a second compilation. The SQL itself is portable: `$n`
//! placeholders (SQLite reads them as numbered), `ON CONFLICT … DO UPDATE`, `RETURNING`, row-value keyset
//! comparisons, integer epoch milliseconds, TEXT ids, sums cast to BIGINT (PostgreSQL widens SUM(bigint)
//! to numeric).

#[allow(
    clippy::duplicate_mod,
    reason = "compiled once per driver on purpose: see catalog/sql.rs"
)]
#[path = "sql/albums.rs"]
mod albums;
#[allow(
    clippy::duplicate_mod,
    reason = "compiled once per driver on purpose: see catalog/sql.rs"
)]
#[path = "sql/auth.rs"]
mod auth;
#[allow(
    clippy::duplicate_mod,
    reason = "compiled once per driver on purpose: see catalog/sql.rs"
)]
#[path = "sql/before_images.rs"]
mod before_images;
#[allow(
    clippy::duplicate_mod,
    reason = "compiled once per driver on purpose: see catalog/sql.rs"
)]
#[path = "sql/gc.rs"]
mod gc;
#[allow(
    clippy::duplicate_mod,
    reason = "compiled once per driver on purpose: see catalog/sql.rs"
)]
#[path = "sql/history.rs"]
mod history;
#[allow(
    clippy::duplicate_mod,
    reason = "compiled once per driver on purpose: see catalog/sql.rs"
)]
#[path = "sql/jobs.rs"]
pub(super) mod jobs;
#[allow(
    clippy::duplicate_mod,
    reason = "compiled once per driver on purpose: see catalog/sql.rs"
)]
#[path = "sql/photos.rs"]
mod photos;
#[allow(
    clippy::duplicate_mod,
    reason = "compiled once per driver on purpose: see catalog/sql.rs"
)]
#[path = "sql/port.rs"]
mod port;
#[allow(
    clippy::duplicate_mod,
    reason = "compiled once per driver on purpose: see catalog/sql.rs"
)]
#[path = "sql/relocate.rs"]
mod relocate;
#[allow(
    clippy::duplicate_mod,
    reason = "compiled once per driver on purpose: see catalog/sql.rs"
)]
#[path = "sql/resources.rs"]
pub(super) mod resources;
#[allow(
    clippy::duplicate_mod,
    reason = "compiled once per driver on purpose: see catalog/sql.rs"
)]
#[path = "sql/restore.rs"]
mod restore;
#[allow(
    clippy::duplicate_mod,
    reason = "compiled once per driver on purpose: see catalog/sql.rs"
)]
#[path = "sql/resumable.rs"]
mod resumable;
#[allow(
    clippy::duplicate_mod,
    reason = "compiled once per driver on purpose: see catalog/sql.rs"
)]
#[path = "sql/search.rs"]
mod search;
#[path = "sql/sessions.rs"]
mod sessions;
#[allow(
    clippy::duplicate_mod,
    reason = "compiled once per driver on purpose: see catalog/sql.rs"
)]
#[path = "sql/sources.rs"]
mod sources;
#[allow(
    clippy::duplicate_mod,
    reason = "compiled once per driver on purpose: see catalog/sql.rs"
)]
#[path = "sql/stats.rs"]
mod stats;
#[allow(
    clippy::duplicate_mod,
    reason = "compiled once per driver on purpose: see catalog/sql.rs"
)]
#[path = "sql/uploads.rs"]
mod uploads;
#[allow(
    clippy::duplicate_mod,
    reason = "compiled once per driver on purpose: see catalog/sql.rs"
)]
#[path = "sql/web.rs"]
mod web;
#[allow(
    clippy::duplicate_mod,
    reason = "compiled once per driver on purpose: see catalog/sql.rs"
)]
#[path = "sql/write.rs"]
pub(super) mod write;

use chrono::{DateTime, Utc};

use super::Adapter;
use crate::catalog::search::SearchTerms;
use crate::catalog::{Error, LibraryId, Result, UserId};

/// What this SQL expects of the adapter it is compiled into; `Adapter` implements it. One trait per
/// compilation (each adapter's copy of this module declares its own), so each adapter implements exactly
/// the one its SQL was compiled against.
pub(super) trait Driver {
    /// The sqlx driver every query runs on.
    type Db: sqlx::Database;
    /// What a sync batch runs on from [`Driver::begin_sync`] to [`Driver::end_sync`].
    type SyncConn: std::ops::DerefMut<Target = <Self::Db as sqlx::Database>::Connection> + Send;

    /// How this driver shows a query plan: the prefix of the statement.
    const EXPLAIN: &'static str;
    /// What a job lease's inner select adds so concurrent leases skip each other's rows (or nothing).
    const SKIP_LOCKED: &'static str;
    /// The statement that takes the user's write lock until the transaction ends, its name bound as `$1`;
    /// empty where write transactions are serialised anyway (`sql/gc.rs`).
    const USER_WRITE_LOCK: &'static str;
    /// The `key` of enrichment `e`'s JSON result as an expression (NULL when it has none).
    const RESULT_KEY: &'static str;
    /// A condition on photo `p`: its folded words match the search bound at its one `?`, rendered by
    /// [`Driver::search_query`] (`sql/search.rs`).
    const SEARCH_MATCH: &'static str;
    /// Photo `p`'s month on its own clock, as `YYYY-MM` text.
    const LOCAL_MONTH: &'static str;

    /// The search bound into [`Driver::SEARCH_MATCH`].
    fn search_query(terms: &SearchTerms) -> String;
    /// The elements of photo `p`'s JSON array column `column` as rows `j` with a text column `value`, for a
    /// `FROM` list.
    fn json_items(column: &str) -> String;
    /// The `preview.key` of enrichment `e`'s JSON result (a thumbnail job's preview; NULL when it has none).
    const RESULT_PREVIEW_KEY: &'static str;

    /// The pool reads and single-statement writes run on.
    fn pool(&self) -> &sqlx::Pool<Self::Db>;
    /// Brings the schema up to date.
    async fn run_migrations(&self) -> Result<()>;
    /// A write transaction.
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, Self::Db>>;
    /// Where a sync batch reads, decides and writes (see each adapter); `serialised` for a batch that must not
    /// interleave with another library's batch of the same user (`sql/sources.rs`).
    async fn begin_sync(&self, serialised: bool) -> Result<Self::SyncConn>;
    /// Ends a sync batch begun with [`Driver::begin_sync`], its writes kept.
    async fn end_sync(&self, conn: Self::SyncConn) -> Result<()>;
    /// Counts the photo and resource rows a sync batch created.
    fn rows_created(&self, rows: u64);
    /// Applies a sync batch's writes with the version bump, on the connection of [`Driver::begin_sync`].
    async fn write_batch(
        conn: &mut <Self::Db as sqlx::Database>::Connection,
        user_id: &UserId,
        library_id: &LibraryId,
        batch: &write::BatchWrite<'_>,
        now: i64,
    ) -> Result<write::Written>;
}

/// The sqlx driver this copy of the SQL is compiled for.
type Db = <Adapter as Driver>::Db;
/// A connection of this driver (what `&mut *transaction` gives).
type Conn = <Db as sqlx::Database>::Connection;

/// Scopes a photos query to library `$1` of user `$2`. Written so that SQLite, which plans without
/// statistics, searches UNIQUE (library_id, local_identifier) for `local_identifier IN (…)`: given a
/// `user_id = ?` term it preferred any index led by `user_id` (which, for one user, holds all the rows).
/// The user is checked through the library, whose user every one of its photos has.
const IN_USER_LIBRARY: &str =
    "library_id = $1 AND library_id IN (SELECT l.id FROM icloud.libraries l WHERE l.user_id = $2)";

/// Most ids bound in one `IN (…)` list: far below SQLite's 32,766 and PostgreSQL's 65,535 parameters.
const CHUNK: usize = 500;

/// A fresh id, 32 hex characters: the creation time in milliseconds (48 bits, as in UUIDv7) then 80 random
/// bits. Ids made one after another sort one after another, so a batch's rows land at the right edge of each
/// id index instead of dirtying a page per row at random places (a profile of a 100-photo batch on SQLite
/// was dominated by writing those pages to the WAL); 80 random bits keep ids unguessable and unique.
pub(super) fn new_id() -> String {
    let millis = u128::try_from(Utc::now().timestamp_millis()).unwrap_or(0) & ((1 << 48) - 1);
    let random = rand::random::<u128>() & ((1 << 80) - 1);
    format!("{:032x}", (millis << 80) | random)
}

/// Epoch milliseconds, the catalog's time representation.
fn ms(time: DateTime<Utc>) -> i64 {
    time.timestamp_millis()
}

/// Back from epoch milliseconds (the catalog only stores values it produced, all in chrono's range).
fn time(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or(DateTime::UNIX_EPOCH)
}

/// A size or count for a BIGINT column; validation keeps sizes far below `i64::MAX`.
fn to_i64(field: &str, value: u64) -> Result<i64> {
    i64::try_from(value).map_err(|_| Error::invalid(field, "too large"))
}

/// A BIGINT column back to an unsigned figure (never negative in practice; clamp rather than fail).
fn to_u64(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

/// `$start, $start+1, …` for `n` parameters.
fn placeholders(start: usize, n: usize) -> String {
    (start..start + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The user's version, 0 before the first change.
async fn current_version(conn: &mut Conn, user_id: &UserId) -> Result<i64> {
    let version: Option<i64> = sqlx::query_scalar("SELECT version FROM icloud.versions WHERE user_id = $1")
        .bind(user_id.as_str())
        .fetch_optional(&mut *conn)
        .await?;
    Ok(version.unwrap_or(0))
}

/// Bumps user `$1`'s version by one and returns it as `version` (also the first step of the PostgreSQL
/// adapter's batch statement).
pub(super) const BUMP_VERSION: &str = "INSERT INTO icloud.versions AS v (user_id, version) VALUES ($1, 1) \
     ON CONFLICT (user_id) DO UPDATE SET version = v.version + 1 RETURNING version";

/// Bumps the user's version by one and returns it. Inside a write transaction: on PostgreSQL the row lock
/// serialises concurrent writers of the same user until commit.
async fn bump_version(conn: &mut Conn, user_id: &UserId) -> Result<i64> {
    let version: i64 = sqlx::query_scalar(BUMP_VERSION)
        .bind(user_id.as_str())
        .fetch_one(&mut *conn)
        .await?;
    Ok(version)
}

/// Checks that the library is the user's (every write path starts here, so another user's library id
/// behaves as unknown); returns its key.
async fn library_key(conn: &mut Conn, user_id: &UserId, library_id: &LibraryId) -> Result<String> {
    sqlx::query_scalar("SELECT library_key FROM icloud.libraries WHERE id = $1 AND user_id = $2")
        .bind(library_id.as_str())
        .bind(user_id.as_str())
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(Error::NotFound { what: "library" })
}
