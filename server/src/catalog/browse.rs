//! Domain types of the read side (the web timeline, albums, one photo) and of enrichment jobs. Like
//! [`super::model`], not wire types: the HTTP layer converts them, presigns their keys and encodes cursors.

use chrono::{DateTime, FixedOffset, Utc};

use api::{AssetKind, JobKind, ResourceType};

use super::model::{AlbumKind, LibraryId, PhotoId};
use super::search::SearchTerms;
use super::transfer::ResourceState;

/// Which photos a list shows.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PhotoFilter {
    /// Only members of this album (catalog id).
    pub album_id: Option<String>,
    /// Only photos or only videos.
    pub kind: Option<AssetKind>,
    /// Only favourites (`true`) or only non-favourites (`false`).
    pub favorite: Option<bool>,
    /// Only Live Photos (`true`) or only the others (`false`).
    pub live_photo: Option<bool>,
    /// Only photos carrying this keyword (exactly).
    pub keyword: Option<String>,
    /// Only photos of this person (exactly).
    pub person: Option<String>,
    /// Only photos the search finds (see [`super::search`]).
    pub search: Option<SearchTerms>,
    /// Taken at or after (epoch milliseconds).
    pub from_ms: Option<i64>,
    /// Taken before (epoch milliseconds).
    pub to_ms: Option<i64>,
    /// Taken at or after this time on the photo's own clock (its wall time read as UTC, epoch
    /// milliseconds): a date range in the days the photos show.
    pub from_local_ms: Option<i64>,
    /// Taken before this time on the photo's own clock (as `from_local_ms`).
    pub to_local_ms: Option<i64>,
    /// Hidden photos too.
    pub include_hidden: bool,
    /// Photos in Photos' Recently Deleted too.
    pub include_trashed: bool,
}

/// Where a timeline page starts: after this (taken-at, id), newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimelineKey {
    /// Taken-at of the last item of the previous page, epoch milliseconds.
    pub taken_at_ms: i64,
    /// Its id.
    pub photo_id: String,
}

/// A timeline page request. The catalog returns up to `limit + 1` rows so the caller knows whether a next
/// page exists without a count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimelineQuery {
    /// Which photos.
    pub filter: PhotoFilter,
    /// Page size.
    pub limit: u32,
    /// Start after this key; the first page when `None`.
    pub after: Option<TimelineKey>,
    /// Only photos taken before this time on their own clock (wall time read as UTC, epoch milliseconds):
    /// the first page of a jump to a month. Later pages go on with `after` alone.
    pub before_local_ms: Option<i64>,
}

/// Photos of one month (of the photos' own time) for the date scrubber.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MonthCount {
    /// Year.
    pub year: i32,
    /// 1 to 12.
    pub month: u32,
    /// Photos.
    pub count: u64,
}

/// Which names of the photos to count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagKind {
    /// Keywords.
    Keyword,
    /// Named people.
    Person,
}

/// A keyword or person with the number of photos carrying it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagCount {
    /// As the Mac names it.
    pub name: String,
    /// Photos (not deleted, hidden or trashed).
    pub count: u64,
}

/// An album page request: members in album order after (`position`, photo id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlbumPageQuery {
    /// The album's catalog id.
    pub album_id: String,
    /// Page size (up to `limit + 1` rows come back).
    pub limit: u32,
    /// Start after this (position, photo id).
    pub after: Option<(i64, String)>,
}

/// Stored bytes of a resource, to presign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRef {
    /// Lower-case hex SHA-256.
    pub sha256: String,
    /// Object key.
    pub key: String,
}

/// One photo as a list shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedPhoto {
    /// Catalog id.
    pub id: PhotoId,
    /// PhotoKit's identifier.
    pub local_identifier: String,
    /// Taken-at, epoch milliseconds (the keyset column).
    pub taken_at_ms: i64,
    /// Taken-at with its offset.
    pub taken_at: DateTime<FixedOffset>,
    /// Photo or video.
    pub kind: AssetKind,
    /// Favourite.
    pub favorite: bool,
    /// Pixels.
    pub width: u32,
    /// Pixels.
    pub height: u32,
    /// Its title in Photos, if any (the pages' alt text, else the file name).
    pub title: Option<String>,
    /// The camera's file name (`IMG_1234.HEIC`).
    pub original_filename: String,
    /// A Live Photo (a still with a paired video).
    pub live_photo: bool,
    /// The stored original.
    pub original: Option<StoredRef>,
    /// The thumbnail's object key (from the thumbnail enrichment's result).
    pub thumbnail_key: Option<String>,
    /// The preview's object key (from the same result), once the worker made it.
    pub preview_key: Option<String>,
    /// The position in the album, for album pages (0 elsewhere).
    pub position: i64,
}

/// An album or folder with its count and cover.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlbumSummary {
    /// Catalog id.
    pub id: String,
    /// Title.
    pub title: String,
    /// Kind.
    pub kind: AlbumKind,
    /// The containing folder's catalog id.
    pub parent_id: Option<String>,
    /// Members shown by default (not deleted, hidden or trashed).
    pub count: u64,
    /// The first of them in album order.
    pub cover: Option<ListedPhoto>,
}

/// One resource of a photo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhotoResource {
    /// Which file.
    pub resource_type: ResourceType,
    /// Its state.
    pub state: ResourceState,
    /// Why unavailable or failed.
    pub reason: Option<String>,
    /// Declared size.
    pub declared_size: u64,
    /// The stored bytes.
    pub stored: Option<StoredRef>,
}

/// One enrichment result.
#[derive(Debug, Clone, PartialEq)]
pub struct Enrichment {
    /// What kind.
    pub kind: JobKind,
    /// The worker's JSON document.
    pub result: serde_json::Value,
    /// When it was written.
    pub updated_at: DateTime<Utc>,
}

/// Everything about one photo.
#[derive(Debug, Clone, PartialEq)]
pub struct PhotoDetail {
    /// The list fields.
    pub listed: ListedPhoto,
    /// iCloud GUID.
    pub cloud_guid: Option<String>,
    /// Apple's fingerprint.
    pub fingerprint: Option<String>,
    /// Photos' subtype.
    pub subtype: Option<String>,
    /// Live Photo.
    pub live_photo: bool,
    /// Video length.
    pub duration_ms: Option<u64>,
    /// Time zone name.
    pub time_zone: Option<String>,
    /// Last change on the Mac.
    pub modified_at: DateTime<Utc>,
    /// Hidden.
    pub hidden: bool,
    /// Trashed.
    pub trashed: bool,
    /// Degrees.
    pub latitude: Option<f64>,
    /// Degrees.
    pub longitude: Option<f64>,
    /// Import name.
    pub original_filename: String,
    /// Type identifier.
    pub uti: String,
    /// Edited.
    pub edited: bool,
    /// Title.
    pub title: Option<String>,
    /// Caption.
    pub caption: Option<String>,
    /// Keywords.
    pub keywords: Vec<String>,
    /// Named people.
    pub people: Vec<String>,
    /// Albums (catalog ids) it is in.
    pub albums: Vec<String>,
    /// Files.
    pub resources: Vec<PhotoResource>,
    /// Enrichment results.
    pub enrichments: Vec<Enrichment>,
}

/// A job's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    /// Waiting for a worker (new, or failed and to be retried).
    Queued,
    /// A worker holds it until the lease ends.
    Leased,
    /// A result is stored; never offered again.
    Done,
    /// Failed too often; kept with its last error, never offered again.
    Parked,
}

impl JobState {
    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Leased => "leased",
            JobState::Done => "done",
            JobState::Parked => "parked",
        }
    }

    pub(crate) fn parse(name: &str) -> Option<Self> {
        [Self::Queued, Self::Leased, Self::Done, Self::Parked]
            .into_iter()
            .find(|s| s.as_str() == name)
    }
}

/// A lease request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseRequest {
    /// Which kind of job.
    pub kind: JobKind,
    /// Most jobs to lease.
    pub max: u32,
    /// How long the lease holds, milliseconds.
    pub lease_ms: i64,
}

/// A job and what a worker needs to do it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobInfo {
    /// Job id.
    pub id: String,
    /// Kind.
    pub kind: JobKind,
    /// State.
    pub state: JobState,
    /// The photo.
    pub photo_id: PhotoId,
    /// Its library (for the derivatives prefix).
    pub library_id: LibraryId,
    /// PhotoKit identifier (its UUID names derivatives).
    pub local_identifier: String,
    /// Photo or video.
    pub photo_kind: AssetKind,
    /// Type identifier of the original.
    pub uti: String,
    /// The stored original; `None` when it is gone.
    pub original: Option<StoredRef>,
    /// The original's size.
    pub size: u64,
    /// Leases handed out before the current one.
    pub attempts: u32,
    /// Failures so far.
    pub failures: u32,
    /// The current lease's end.
    pub lease_expires_at: Option<DateTime<Utc>>,
    /// The last failure.
    pub last_error: Option<String>,
}

/// The unfinished jobs of one kind, across users: what `/metrics` reports as the queue's depth and age.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobQueue {
    /// Kind.
    pub kind: JobKind,
    /// Jobs queued or leased: neither done nor parked.
    pub depth: u64,
    /// When the longest-waiting of them was queued (for the original it is queued for); `None` when none.
    pub oldest_queued_at: Option<DateTime<Utc>>,
}

/// A job's state after a result or a failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobStatus {
    /// Job id.
    pub id: String,
    /// State afterwards.
    pub state: JobState,
    /// Failures so far.
    pub failures: u32,
}
