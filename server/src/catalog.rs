//! The catalog port: users and API tokens, the Mac libraries, photos with their resources, albums, the
//! per-user version and the dedup table of stored content.
//!
//! [`Catalog`] is what the HTTP surfaces, the admin CLI and the workers call; they never see SQL. Two adapters
//! implement it: [`sqlite::SqliteCatalog`] (the embedded default: a main file plus a second file attached as
//! `icloud`) and [`postgres::PostgresCatalog`] (production: schema `icloud`). Both run the same SQL, kept in
//! `catalog/sql/` and compiled once per driver, so the adapters only differ in how they connect, migrate and
//! open a write transaction. [`connect`] picks the adapter from a [`Location`].
//!
//! What this module leaves to others: wire types and their conversion (the `api` crate and the HTTP layer),
//! object keys (the `storage` crate formats them; the catalog only records them), status codes (the HTTP
//! layer maps [`Error`]).
//!
//! Invariants every adapter keeps (the contract suite in `server/tests/catalog.rs` checks them):
//! - every query filters by the calling user, so one user never reads or changes another's rows;
//! - only the SHA-256 of a token is stored;
//! - a sync batch is one transaction: a database error applies nothing, a bad item is rejected alone;
//! - every change bumps the user's version once per call, and a call that changes nothing leaves it alone.

pub mod postgres;
pub mod sqlite;

mod browse;
mod history;
mod location;
mod model;
mod resumable;
pub mod search;
mod session;
mod transfer;
mod validate;

use std::fmt::Debug;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

pub use api::{AssetKind, ResourceType, UnavailableReason};
pub use browse::{
    AlbumPageQuery, AlbumSummary, Enrichment, JobInfo, JobQueue, JobState, JobStatus, LeaseRequest,
    ListedPhoto, MonthCount, PhotoDetail, PhotoFilter, PhotoResource, StoredRef, TagCount, TagKind,
    TimelineKey, TimelineNeighbours, TimelineQuery,
};
pub use history::{
    Change, ChangesSince, PhotoChange, PhotoVersion, PurgeReport, RestoreReport, RestoreTarget, Retention,
    parse_as_of,
};
pub use location::{ConnectOptions, Location, connect};
pub use model::{
    AlbumKind, AlbumUpsert, AlbumsResult, Authenticated, DeclaredResource, ItemOutcome, ItemResult, Library,
    LibraryId, NewToken, PhotoId, PhotoUpsert, Scope, SyncBatchResult, TokenId, TokenInfo, TokenSecret, User,
    UserId,
};
pub use resumable::{ResumableSave, ResumableUpload};
pub use session::{LoginRecord, NewSession, WebSession};
pub use transfer::{
    Blob, Counts, LibraryStats, Misplaced, Page, PendingQuery, PendingReason, PendingUpload, RecordedUpload,
    ResourceState, Stats, StoredObject, UploadLookup, UploadRecord, UploadTarget,
};
pub use validate::{MAX_LOCAL_IDENTIFIER_LEN, MAX_RESOURCE_SIZE};

/// What went wrong, by what the caller can do about it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The named thing does not exist for this user (or at all): a 404.
    #[error("{what} not found")]
    NotFound {
        /// What was looked up (`user`, `library`, `token`, `photo`).
        what: &'static str,
    },
    /// The request clashes with what is stored (a taken user name, an ambiguous identifier): a 409.
    #[error("{what}: {reason}")]
    Conflict {
        /// What clashed.
        what: &'static str,
        /// Why, for a person.
        reason: String,
    },
    /// A value the caller sent is not acceptable; nothing was written: a 4xx naming the field.
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// The field at fault, as the wire names it where there is one.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The database could not be reached in time (pool closed or exhausted, I/O): retry later, a 503.
    #[error("catalog database unavailable")]
    Unavailable(#[source] sqlx::Error),
    /// The database refused or failed a statement; nothing of the call was applied: a 500.
    #[error("catalog database error")]
    Database(#[source] sqlx::Error),
    /// The schema could not be brought up to date: the process should not start.
    #[error("catalog migration failed")]
    Migrate(#[source] sqlx::migrate::MigrateError),
}

impl Error {
    pub(crate) fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

impl From<sqlx::Error> for Error {
    fn from(error: sqlx::Error) -> Self {
        match error {
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
                Error::Unavailable(error)
            }
            other => Error::Database(other),
        }
    }
}

impl From<sqlx::migrate::MigrateError> for Error {
    fn from(error: sqlx::migrate::MigrateError) -> Self {
        Error::Migrate(error)
    }
}

/// Result of every catalog call.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The catalog port. Every method that touches user data takes the caller's [`UserId`] and only ever sees
/// that user's rows; ids of another user's rows behave as if they did not exist.
#[async_trait]
pub trait Catalog: Send + Sync + Debug {
    /// Brings the schema up to date (idempotent). [`connect`] already does this unless told not to.
    async fn migrate(&self) -> Result<()>;

    /// One round trip to the database, for `/readyz`.
    async fn ping(&self) -> Result<()>;

    /// Creates a user; [`Error::Conflict`] when the name is taken, [`Error::Invalid`] for an unusable name.
    async fn create_user(&self, name: &str) -> Result<User>;

    /// The user with this name, if any.
    async fn find_user_by_name(&self, name: &str) -> Result<Option<User>>;

    /// Issues a token: 32 random bytes, shown once in the answer, stored only as a SHA-256.
    async fn create_token(&self, user_id: &UserId, scope: Scope, name: &str) -> Result<NewToken>;

    /// The user and scope a plaintext token grants; `None` for an unknown, malformed or revoked token.
    async fn authenticate(&self, plaintext: &str) -> Result<Option<Authenticated>>;

    /// One token by id, of any user (the admin CLI's `token revoke` looks the owner up with it).
    async fn find_token(&self, token_id: &TokenId) -> Result<Option<TokenInfo>>;

    /// Tokens of one user, or of everyone for `None` (admin listing), oldest first.
    async fn list_tokens(&self, user_id: Option<&UserId>) -> Result<Vec<TokenInfo>>;

    /// Revokes one of the user's tokens (idempotent); [`Error::NotFound`] when it is not theirs.
    async fn revoke_token(&self, user_id: &UserId, token_id: &TokenId) -> Result<()>;

    // Web sign-in (issue 14)

    /// The user with this name and their web password hash, for the login form.
    async fn login_record(&self, name: &str) -> Result<Option<LoginRecord>>;

    /// Sets the user's web password (an Argon2id PHC string) and, in the same transaction, revokes every
    /// session they have open; returns how many were revoked. [`Error::NotFound`] for an unknown user.
    async fn set_password(&self, user_id: &UserId, password_hash: &str, now: DateTime<Utc>) -> Result<u64>;

    /// Opens a session for the user until `expires_at`: 32 random bytes, shown once in the answer, stored only
    /// as a SHA-256. The user's expired sessions are deleted on the way.
    async fn create_session(
        &self,
        user_id: &UserId,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<NewSession>;

    /// The session a secret opens at `now`; `None` for an unknown, malformed, expired or revoked one.
    async fn authenticate_session(&self, secret: &str, now: DateTime<Utc>) -> Result<Option<WebSession>>;

    /// Revokes one of the user's sessions (idempotent); [`Error::NotFound`] when it is not theirs.
    async fn revoke_session(&self, user_id: &UserId, session_id: &str, now: DateTime<Utc>) -> Result<()>;

    /// The shared key named `name`: `candidate` if no replica stored one before, else the stored one.
    async fn web_key(&self, name: &str, candidate: &str) -> Result<String>;

    /// When the `nth` newest failed sign-in under `key` at or after `since` happened (1 is the newest);
    /// `None` when there are fewer.
    async fn login_failure_nth(
        &self,
        key: &str,
        since: DateTime<Utc>,
        nth: u32,
    ) -> Result<Option<DateTime<Utc>>>;

    /// Records a failed sign-in at `at` under each of `keys`, and forgets every failure before `forget_before`.
    async fn record_login_failure(
        &self,
        keys: &[String],
        at: DateTime<Utc>,
        forget_before: DateTime<Utc>,
    ) -> Result<()>;

    /// Forgets the failures under `key` (a user's, once they signed in).
    async fn clear_login_failures(&self, key: &str) -> Result<()>;

    /// The user's library with the agent's id `library_key`, created on first use.
    async fn ensure_library(&self, user_id: &UserId, library_key: &str) -> Result<Library>;

    /// The user's library with the agent's id `library_key`, if it exists (another user's is not found).
    async fn library(&self, user_id: &UserId, library_key: &str) -> Result<Option<Library>>;

    /// Applies one sync batch in one transaction; see [`SyncBatchResult`] for what each item gets. Items that
    /// fail validation are `Rejected` and the rest still applies; a database error applies nothing. A user's
    /// libraries share their photos: an item new to this library joins the user's photo with its cloud GUID
    /// (else, among photos without one, its fingerprint), its identifier kept as another name of the photo.
    async fn sync_photos(
        &self,
        user_id: &UserId,
        library_id: &LibraryId,
        items: Vec<PhotoUpsert>,
    ) -> Result<SyncBatchResult>;

    /// Replaces the library's albums and folders: listed ones are upserted with their ordered members,
    /// missing ones soft-deleted, all in one transaction. Unknown member identifiers are skipped and counted.
    async fn replace_albums(
        &self,
        user_id: &UserId,
        library_id: &LibraryId,
        albums: Vec<AlbumUpsert>,
    ) -> Result<AlbumsResult>;

    /// Resources whose bytes the server still needs (state pending or failed), keyset-paged, each for the one
    /// library asked to upload it (of a photo several libraries have, the one whose declaration is held).
    async fn pending_uploads(&self, user_id: &UserId, query: &PendingQuery) -> Result<Page<PendingUpload>>;

    /// What the upload route needs before reading a body: the photo, the resource's state and what is
    /// stored. `None` when the user has no such photo; [`Error::Conflict`] when the identifier exists in
    /// several of the user's libraries and none was named.
    async fn resource_for_upload(
        &self,
        user_id: &UserId,
        lookup: &UploadLookup,
    ) -> Result<Option<UploadTarget>>;

    /// Content the user already stores with this SHA-256 (lower-case hex), for dedup.
    async fn blob_by_sha(&self, user_id: &UserId, sha256: &str) -> Result<Option<Blob>>;

    /// The content the catalog knows under `key` (one of the user's): which bytes an upload found there.
    async fn blob_by_key(&self, user_id: &UserId, key: &str) -> Result<Option<Blob>>;

    /// Maintenance, across users: stored resources whose object is not at the key their bundle path gives,
    /// keyset-paged by (photo, resource) after `after`.
    async fn misplaced(&self, after: Option<(&PhotoId, ResourceType)>, limit: u32) -> Result<Vec<Misplaced>>;

    /// Points `moved`'s resource (and the dedup index) at `to_key`, an object already copied there and
    /// verified; `false` when the row changed meanwhile (nothing is written then).
    async fn repoint(&self, moved: &Misplaced, to_key: &str) -> Result<bool>;

    /// Marks a resource stored (creating the row for an undeclared resource type), records the content in
    /// the user's blob table (idempotent) and links the user's other pending resources that declared the
    /// same SHA-256. Bumps the version.
    async fn record_upload(&self, user_id: &UserId, upload: &UploadRecord) -> Result<RecordedUpload>;

    /// Marks a declared, not yet stored resource as failed with a reason (it stays in the pending list).
    async fn record_upload_failure(
        &self,
        user_id: &UserId,
        photo_id: &PhotoId,
        resource: ResourceType,
        reason: &str,
    ) -> Result<()>;

    /// Counts and bytes per library and in total; `recent_since` bounds the "recent" figures the HTTP layer
    /// turns into an upload rate and an ETA (from catalog times, so a restart does not reset them).
    async fn stats(&self, user_id: &UserId, recent_since: DateTime<Utc>) -> Result<Stats>;

    /// The user's catalog version (0 before the first change).
    async fn version(&self, user_id: &UserId) -> Result<i64>;

    /// One timeline page: the user's photos matching the filter, newest first (ties by id, descending),
    /// after `query.after`; up to `limit + 1` rows, so the caller sees whether there is a next page.
    async fn list_photos(&self, user_id: &UserId, query: &TimelineQuery) -> Result<Vec<ListedPhoto>>;

    /// The database's plan for [`Catalog::list_photos`] (for the query-plan test and operators).
    async fn explain_timeline(&self, user_id: &UserId, query: &TimelineQuery) -> Result<String>;

    /// The user's photos listed just before and just after `key` in the timeline under `filter` (the order
    /// of [`Catalog::list_photos`]): one keyset read of the timeline's index each way, no offset, no count.
    /// `key` need not be a photo the filter selects (a hidden photo opened from its link still has
    /// neighbours), and ids of another user's photos never come back.
    async fn timeline_neighbours(
        &self,
        user_id: &UserId,
        filter: &PhotoFilter,
        key: &TimelineKey,
    ) -> Result<TimelineNeighbours>;

    /// The database's plans for [`Catalog::timeline_neighbours`]: the newer read's, then the older's.
    async fn explain_neighbours(
        &self,
        user_id: &UserId,
        filter: &PhotoFilter,
        key: &TimelineKey,
    ) -> Result<String>;

    /// The user's photos under `filter` counted per month of their own time, newest month first (the
    /// date scrubber).
    async fn month_counts(&self, user_id: &UserId, filter: &PhotoFilter) -> Result<Vec<MonthCount>>;

    /// The database's plan for [`Catalog::month_counts`].
    async fn explain_months(&self, user_id: &UserId, filter: &PhotoFilter) -> Result<String>;

    /// The people or keywords of the user's photos (not deleted, hidden or trashed), each with the number
    /// of photos carrying it; most first, ties by name.
    async fn tag_counts(&self, user_id: &UserId, kind: TagKind) -> Result<Vec<TagCount>>;

    /// The user's albums and folders (or only `album_id`), display order, with counts and covers.
    async fn list_albums(&self, user_id: &UserId, album_id: Option<&str>) -> Result<Vec<AlbumSummary>>;

    /// One page of an album's photos in album order; up to `limit + 1` rows.
    async fn album_photos(&self, user_id: &UserId, query: &AlbumPageQuery) -> Result<Vec<ListedPhoto>>;

    /// One photo with its resources, albums and enrichment results; `None` when the user has no such photo
    /// (or it is deleted).
    async fn photo(&self, user_id: &UserId, photo_id: &PhotoId) -> Result<Option<PhotoDetail>>;

    /// One photo as a list shows it (its original, thumbnail and preview keys), in one query: what the
    /// pages' media route needs for every thumbnail; `None` as for [`Catalog::photo`].
    async fn listed_photo(&self, user_id: &UserId, photo_id: &PhotoId) -> Result<Option<ListedPhoto>>;

    /// Leases up to `request.max` of the user's jobs of one kind that are queued or whose lease expired,
    /// atomically: two concurrent calls never get the same job. Jobs whose original is gone are parked.
    async fn lease_jobs(&self, user_id: &UserId, request: &LeaseRequest) -> Result<Vec<JobInfo>>;

    /// One of the user's jobs.
    async fn job(&self, user_id: &UserId, job_id: &str) -> Result<Option<JobInfo>>;

    /// The queue of every job kind (all of them, empty ones included), across users: counts and a time, no
    /// user's data. For `/metrics`, at each scrape: one indexed read of the unfinished jobs.
    async fn job_queues(&self) -> Result<Vec<JobQueue>>;

    /// Stores a job's result as the photo's enrichment of that kind and marks the job done (never leased
    /// again). A job already done is left as it is. [`Error::NotFound`] when it is not the user's.
    async fn complete_job(
        &self,
        user_id: &UserId,
        job_id: &str,
        result: &serde_json::Value,
    ) -> Result<JobStatus>;

    /// Records a leased job's failure: queued again after `retry_after_ms`, or parked with `error` once it
    /// failed `max_failures` times. A job not currently leased is left as it is.
    async fn fail_job(
        &self,
        user_id: &UserId,
        job_id: &str,
        error: &str,
        max_failures: u32,
        retry_after_ms: i64,
    ) -> Result<JobStatus>;

    // History and trash (issue 12)

    /// The photo's versions, newest first, as the history triggers recorded them (tombstones keep theirs
    /// until the purge); `None` when the user has no such photo.
    async fn photo_history(&self, user_id: &UserId, photo_id: &PhotoId) -> Result<Option<Vec<PhotoVersion>>>;

    /// The user's photos whose last change comes after `since`, in version order (ties by id), each with its
    /// current state or as a delete (a tombstone); up to `limit + 1`, so the caller sees whether there is
    /// more. Tombstones purged after the retention are no longer listed.
    async fn photo_changes(
        &self,
        user_id: &UserId,
        since: &ChangesSince,
        limit: u32,
    ) -> Result<Vec<PhotoChange>>;

    /// Restores a photo, an album or a library as it was at `as_of`, as one new version stamped `now`
    /// ([`Error::Invalid`] for `as_of` after `now`, [`Error::NotFound`] for an id that is not the user's).
    /// Nothing differing leaves the version alone.
    async fn restore(
        &self,
        user_id: &UserId,
        target: &RestoreTarget,
        as_of: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<RestoreReport>;

    /// For every user: removes tombstones deleted before `now - retention` and history older than that
    /// (keeping, per photo, album and membership, the last state before it). `now` is a parameter so tests
    /// can run the clock forward.
    async fn purge(&self, retention: Retention, now: DateTime<Utc>) -> Result<PurgeReport>;

    // Garbage collection (issue 12)

    /// Takes or renews the lease `name` for `holder` until `until`: true when `holder` holds it now (it was
    /// free, expired at `now`, or already `holder`'s). One conditional statement, so of replicas racing for
    /// it exactly one wins.
    async fn gc_take_lease(
        &self,
        name: &str,
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool>;

    /// Gives the lease up if `holder` holds it (idempotent), so the next pass need not wait for it to expire.
    async fn gc_release_lease(&self, name: &str, holder: &str) -> Result<()>;

    /// Every user, oldest first: the collector walks each one's `users/<id>/` prefix.
    async fn gc_users(&self) -> Result<Vec<UserId>>;

    /// Every object key the user's catalog references: the stored key of every resource (live or
    /// tombstoned), every derivative named by an enrichment result, and (once the history table exists) every
    /// retained version. A blob row alone is not a reference: it only indexes content for dedup.
    async fn gc_referenced_keys(&self, user_id: &UserId) -> Result<std::collections::HashSet<String>>;

    /// Of `keys`, those the user's catalog references now (same rule as [`Catalog::gc_referenced_keys`]).
    async fn gc_referenced_among(
        &self,
        user_id: &UserId,
        keys: &[String],
    ) -> Result<std::collections::HashSet<String>>;

    /// Of `keys`, those a row of the user's blob table names: content the catalog recorded as uploaded.
    async fn gc_recorded_among(
        &self,
        user_id: &UserId,
        keys: &[String],
    ) -> Result<std::collections::HashSet<String>>;

    /// Releases the objects about to be deleted: in one write transaction serialised with the user's
    /// uploads (a per-user advisory lock on PostgreSQL, the single writer on SQLite), re-checks which of
    /// `keys` nothing references, deletes the blob rows naming them, and returns those keys. Only after this
    /// returned (committed) may the caller delete the objects; an upload that links one of those blobs
    /// afterwards finds its row gone and stores the bytes again.
    async fn gc_release_unreferenced(&self, user_id: &UserId, keys: &[String]) -> Result<Vec<String>>;

    // Resumable uploads (issue 16)

    /// Records a new upload resource.
    async fn resumable_insert(&self, upload: &ResumableUpload) -> Result<()>;

    /// The user's upload `id`; `None` when unknown or another user's.
    async fn resumable_get(&self, user_id: &UserId, id: &str) -> Result<Option<ResumableUpload>>;

    /// Takes the user's upload `id` for `holder` until `until`, if nobody else holds it (or their hold lapsed
    /// at `now`); returns it as it is then. `None`: unknown, or held by another append. One conditional
    /// statement, so of two appends racing for an upload exactly one gets it.
    async fn resumable_hold(
        &self,
        user_id: &UserId,
        id: &str,
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Option<ResumableUpload>>;

    /// Writes a checkpoint while `save.holder` holds the upload; false (nothing written) when it lost it.
    async fn resumable_save(&self, save: &ResumableSave<'_>) -> Result<bool>;

    /// Lets the upload go if `holder` holds it.
    async fn resumable_release(&self, id: &str, holder: &str) -> Result<()>;

    /// Forgets upload `id` (after its staging was removed).
    async fn resumable_delete(&self, id: &str) -> Result<()>;

    /// Uploads untouched since `before` and not held at `now`, oldest first: what the collector expires.
    async fn resumable_idle(
        &self,
        before: DateTime<Utc>,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<ResumableUpload>>;
}
