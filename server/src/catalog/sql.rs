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
#[path = "sql/neighbours.rs"]
mod neighbours;
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

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::Adapter;
use crate::catalog::search::SearchTerms;
use crate::catalog::{
    AlbumPageQuery, AlbumSummary, AlbumUpsert, AlbumsResult, Authenticated, Blob, Catalog, Error, JobInfo,
    JobQueue, JobStatus, LeaseRequest, Library, LibraryId, ListedPhoto, LoginRecord, Misplaced, MonthCount,
    NewSession, NewToken, Page, PendingQuery, PendingUpload, PhotoDetail, PhotoFilter, PhotoId, PhotoUpsert,
    RecordedUpload, ResourceType, Result, ResumableSave, ResumableUpload, Scope, Stats, SyncBatchResult,
    TagCount, TagKind, TimelineKey, TimelineNeighbours, TimelineQuery, TokenId, TokenInfo, UploadLookup,
    UploadRecord, UploadTarget, User, UserId, WebSession,
};
use crate::catalog::{
    ChangesSince, PhotoChange, PhotoVersion, PurgeReport, RestoreReport, RestoreTarget, Retention,
};

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

#[async_trait]
impl Catalog for Adapter {
    async fn migrate(&self) -> Result<()> {
        self.run_migrations().await?;
        // Rows written before the search existed (or by bulk SQL) get their searchable words now.
        let folded = search::fold_backlog(self).await?;
        if folded > 0 {
            tracing::info!(folded, "folded the searchable text of existing photos");
        }
        Ok(())
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(self.pool()).await?;
        Ok(())
    }

    async fn create_user(&self, name: &str) -> Result<User> {
        auth::create_user(self, name).await
    }

    async fn find_user_by_name(&self, name: &str) -> Result<Option<User>> {
        auth::find_user_by_name(self, name).await
    }

    async fn create_token(&self, user_id: &UserId, scope: Scope, name: &str) -> Result<NewToken> {
        auth::create_token(self, user_id, scope, name).await
    }

    async fn authenticate(&self, plaintext: &str) -> Result<Option<Authenticated>> {
        auth::authenticate(self, plaintext).await
    }

    async fn find_token(&self, token_id: &TokenId) -> Result<Option<TokenInfo>> {
        auth::find_token(self, token_id).await
    }

    async fn list_tokens(&self, user_id: Option<&UserId>) -> Result<Vec<TokenInfo>> {
        auth::list_tokens(self, user_id).await
    }

    async fn revoke_token(&self, user_id: &UserId, token_id: &TokenId) -> Result<()> {
        auth::revoke_token(self, user_id, token_id).await
    }

    async fn login_record(&self, name: &str) -> Result<Option<LoginRecord>> {
        sessions::login_record(self, name).await
    }

    async fn set_password(&self, user_id: &UserId, password_hash: &str, now: DateTime<Utc>) -> Result<u64> {
        sessions::set_password(self, user_id, password_hash, now).await
    }

    async fn create_session(
        &self,
        user_id: &UserId,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<NewSession> {
        sessions::create_session(self, user_id, now, expires_at).await
    }

    async fn authenticate_session(&self, secret: &str, now: DateTime<Utc>) -> Result<Option<WebSession>> {
        sessions::authenticate_session(self, secret, now).await
    }

    async fn revoke_session(&self, user_id: &UserId, session_id: &str, now: DateTime<Utc>) -> Result<()> {
        sessions::revoke_session(self, user_id, session_id, now).await
    }

    async fn web_key(&self, name: &str, candidate: &str) -> Result<String> {
        sessions::web_key(self, name, candidate).await
    }

    async fn ensure_library(&self, user_id: &UserId, library_key: &str) -> Result<Library> {
        photos::ensure_library(self, user_id, library_key).await
    }

    async fn library(&self, user_id: &UserId, library_key: &str) -> Result<Option<Library>> {
        photos::library(self, user_id, library_key).await
    }

    async fn sync_photos(
        &self,
        user_id: &UserId,
        library_id: &LibraryId,
        items: Vec<PhotoUpsert>,
    ) -> Result<SyncBatchResult> {
        photos::sync_photos(self, user_id, library_id, items).await
    }

    async fn replace_albums(
        &self,
        user_id: &UserId,
        library_id: &LibraryId,
        albums: Vec<AlbumUpsert>,
    ) -> Result<AlbumsResult> {
        albums::replace_albums(self, user_id, library_id, albums).await
    }

    async fn pending_uploads(&self, user_id: &UserId, query: &PendingQuery) -> Result<Page<PendingUpload>> {
        uploads::pending_uploads(self, user_id, query).await
    }

    async fn resource_for_upload(
        &self,
        user_id: &UserId,
        lookup: &UploadLookup,
    ) -> Result<Option<UploadTarget>> {
        uploads::resource_for_upload(self, user_id, lookup).await
    }

    async fn blob_by_sha(&self, user_id: &UserId, sha256: &str) -> Result<Option<Blob>> {
        uploads::blob_by_sha(self, user_id, sha256).await
    }

    async fn blob_by_key(&self, user_id: &UserId, key: &str) -> Result<Option<Blob>> {
        uploads::blob_by_key(self, user_id, key).await
    }

    async fn misplaced(&self, after: Option<(&PhotoId, ResourceType)>, limit: u32) -> Result<Vec<Misplaced>> {
        relocate::misplaced(self, after, limit).await
    }

    async fn repoint(&self, moved: &Misplaced, to_key: &str) -> Result<bool> {
        relocate::repoint(self, moved, to_key).await
    }

    async fn record_upload(&self, user_id: &UserId, upload: &UploadRecord) -> Result<RecordedUpload> {
        uploads::record_upload(self, user_id, upload).await
    }

    async fn record_upload_failure(
        &self,
        user_id: &UserId,
        photo_id: &PhotoId,
        resource: ResourceType,
        reason: &str,
    ) -> Result<()> {
        uploads::record_upload_failure(self, user_id, photo_id, resource, reason).await
    }

    async fn stats(&self, user_id: &UserId, recent_since: DateTime<Utc>) -> Result<Stats> {
        stats::stats(self, user_id, recent_since).await
    }

    async fn version(&self, user_id: &UserId) -> Result<i64> {
        let mut conn = self.pool().acquire().await?;
        current_version(&mut conn, user_id).await
    }

    async fn list_photos(&self, user_id: &UserId, query: &TimelineQuery) -> Result<Vec<ListedPhoto>> {
        web::list_photos(self, user_id, query).await
    }

    async fn explain_timeline(&self, user_id: &UserId, query: &TimelineQuery) -> Result<String> {
        web::explain_timeline(self, user_id, query).await
    }

    async fn timeline_neighbours(
        &self,
        user_id: &UserId,
        filter: &PhotoFilter,
        key: &TimelineKey,
    ) -> Result<TimelineNeighbours> {
        neighbours::timeline_neighbours(self, user_id, filter, key).await
    }

    async fn explain_neighbours(
        &self,
        user_id: &UserId,
        filter: &PhotoFilter,
        key: &TimelineKey,
    ) -> Result<String> {
        neighbours::explain_neighbours(self, user_id, filter, key).await
    }

    async fn month_counts(&self, user_id: &UserId, filter: &PhotoFilter) -> Result<Vec<MonthCount>> {
        search::month_counts(self, user_id, filter).await
    }

    async fn explain_months(&self, user_id: &UserId, filter: &PhotoFilter) -> Result<String> {
        search::explain_months(self, user_id, filter).await
    }

    async fn tag_counts(&self, user_id: &UserId, kind: TagKind) -> Result<Vec<TagCount>> {
        search::tag_counts(self, user_id, kind).await
    }

    async fn list_albums(&self, user_id: &UserId, album_id: Option<&str>) -> Result<Vec<AlbumSummary>> {
        web::list_albums(self, user_id, album_id).await
    }

    async fn album_photos(&self, user_id: &UserId, query: &AlbumPageQuery) -> Result<Vec<ListedPhoto>> {
        web::album_photos(self, user_id, query).await
    }

    async fn photo(&self, user_id: &UserId, photo_id: &PhotoId) -> Result<Option<PhotoDetail>> {
        web::photo(self, user_id, photo_id).await
    }

    async fn listed_photo(&self, user_id: &UserId, photo_id: &PhotoId) -> Result<Option<ListedPhoto>> {
        web::listed_photo(self, user_id, photo_id).await
    }

    async fn lease_jobs(&self, user_id: &UserId, request: &LeaseRequest) -> Result<Vec<JobInfo>> {
        jobs::lease_jobs(self, user_id, request).await
    }

    async fn job(&self, user_id: &UserId, job_id: &str) -> Result<Option<JobInfo>> {
        jobs::job(self, user_id, job_id).await
    }

    async fn job_queues(&self) -> Result<Vec<JobQueue>> {
        jobs::job_queues(self).await
    }

    async fn complete_job(
        &self,
        user_id: &UserId,
        job_id: &str,
        result: &serde_json::Value,
    ) -> Result<JobStatus> {
        jobs::complete_job(self, user_id, job_id, result).await
    }

    async fn fail_job(
        &self,
        user_id: &UserId,
        job_id: &str,
        error: &str,
        max_failures: u32,
        retry_after_ms: i64,
    ) -> Result<JobStatus> {
        jobs::fail_job(self, user_id, job_id, error, max_failures, retry_after_ms).await
    }

    // History and trash (issue 12)

    async fn photo_history(&self, user_id: &UserId, photo_id: &PhotoId) -> Result<Option<Vec<PhotoVersion>>> {
        history::photo_history(self, user_id, photo_id).await
    }

    async fn photo_changes(
        &self,
        user_id: &UserId,
        since: &ChangesSince,
        limit: u32,
    ) -> Result<Vec<PhotoChange>> {
        history::photo_changes(self, user_id, since, limit).await
    }

    async fn restore(
        &self,
        user_id: &UserId,
        target: &RestoreTarget,
        as_of: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<RestoreReport> {
        restore::restore(self, user_id, target, as_of, now).await
    }

    async fn purge(&self, retention: Retention, now: DateTime<Utc>) -> Result<PurgeReport> {
        history::purge(self, retention, now).await
    }

    async fn gc_take_lease(
        &self,
        name: &str,
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool> {
        gc::take_lease(self, name, holder, now, until).await
    }

    async fn gc_release_lease(&self, name: &str, holder: &str) -> Result<()> {
        gc::release_lease(self, name, holder).await
    }

    async fn gc_users(&self) -> Result<Vec<UserId>> {
        gc::users(self).await
    }

    async fn gc_referenced_keys(&self, user_id: &UserId) -> Result<std::collections::HashSet<String>> {
        gc::referenced_keys(self, user_id).await
    }

    async fn gc_referenced_among(
        &self,
        user_id: &UserId,
        keys: &[String],
    ) -> Result<std::collections::HashSet<String>> {
        let mut conn = self.pool().acquire().await?;
        gc::referenced_among(&mut conn, user_id, keys).await
    }

    async fn gc_recorded_among(
        &self,
        user_id: &UserId,
        keys: &[String],
    ) -> Result<std::collections::HashSet<String>> {
        gc::recorded_among(self, user_id, keys).await
    }

    async fn gc_release_unreferenced(&self, user_id: &UserId, keys: &[String]) -> Result<Vec<String>> {
        gc::release_unreferenced(self, user_id, keys).await
    }

    async fn resumable_insert(&self, upload: &ResumableUpload) -> Result<()> {
        resumable::insert(self, upload).await
    }

    async fn resumable_get(&self, user_id: &UserId, id: &str) -> Result<Option<ResumableUpload>> {
        resumable::get(self, user_id, id).await
    }

    async fn resumable_hold(
        &self,
        user_id: &UserId,
        id: &str,
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Option<ResumableUpload>> {
        resumable::hold(self, user_id, id, holder, now, until).await
    }

    async fn resumable_save(&self, save: &ResumableSave<'_>) -> Result<bool> {
        resumable::save(self, save).await
    }

    async fn resumable_release(&self, id: &str, holder: &str) -> Result<()> {
        resumable::release(self, id, holder).await
    }

    async fn resumable_delete(&self, id: &str) -> Result<()> {
        resumable::delete(self, id).await
    }

    async fn resumable_idle(
        &self,
        before: DateTime<Utc>,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<ResumableUpload>> {
        resumable::idle(self, before, now, limit).await
    }
}

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
