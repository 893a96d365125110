//! Domain types of history and trash: a photo's versions, the changes feed, restore and the purge. Like
//! [`super::model`], not wire types: the HTTP layer converts them.
//!
//! The rows behind them are written by database triggers (migration 0008), not by the write paths, so every
//! way a photo, a resource's stored object or an album changes is recorded without the writer knowing.

use chrono::{DateTime, Utc};

use api::ResourceType;

use super::browse::ListedPhoto;
use super::model::{LibraryId, PhotoId};

/// What one version of a photo was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// The row was written for the first time.
    Created,
    /// Metadata, resources or enrichment changed (or a deleted photo came back from the Mac).
    Updated,
    /// Removed on the Mac (or restored to a time before it existed): a tombstone.
    Deleted,
    /// Written by a restore as of an earlier time.
    Restored,
}

impl Change {
    /// The value stored in `photo_history.change`.
    pub fn as_str(self) -> &'static str {
        match self {
            Change::Created => "created",
            Change::Updated => "updated",
            Change::Deleted => "deleted",
            Change::Restored => "restored",
        }
    }

    /// Back from the stored value (the column's CHECK allows only these).
    pub(crate) fn parse(text: &str) -> Change {
        match text {
            "created" => Change::Created,
            "deleted" => Change::Deleted,
            "restored" => Change::Restored,
            _ => Change::Updated,
        }
    }
}

/// One version of a photo, as its history row recorded it.
#[derive(Debug, Clone, PartialEq)]
pub struct PhotoVersion {
    /// The user's catalog version of the change.
    pub version: i64,
    /// When it was written.
    pub changed_at: DateTime<Utc>,
    /// What kind of change.
    pub change: Change,
    /// The library the photo belongs to.
    pub library_id: LibraryId,
    /// The metadata after the change, keyed by catalog column (`title`, `favorite`, `deleted_at`…).
    pub snapshot: serde_json::Value,
    /// Snapshot fields that differ from the previous version (all fields for the first one kept).
    pub changed_fields: Vec<String>,
    /// The SHA-256 of each stored resource at this version (`None`: declared, not stored).
    pub resources: Vec<(ResourceType, Option<String>)>,
}

/// Where a changes page starts: after this version, and within it after this photo id.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChangesSince {
    /// Changes with a larger version (or this version and a larger id, see `photo_id`).
    pub version: i64,
    /// Set when the previous page ended inside a version (one sync batch is one version).
    pub photo_id: Option<String>,
}

/// One entry of the changes feed: the photo's current state, at the version of its last change.
#[derive(Debug, Clone, PartialEq)]
pub struct PhotoChange {
    /// The photo's version (of its last change).
    pub version: i64,
    /// Its id.
    pub photo_id: PhotoId,
    /// Its current state; `None` when it is a tombstone (a delete).
    pub photo: Option<ListedPhoto>,
}

/// What a restore brings back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestoreTarget {
    /// One photo.
    Photo(PhotoId),
    /// One album: its title, order, membership and the photos that were its members.
    Album(String),
    /// Every photo and album of one library.
    Library(LibraryId),
}

/// What a restore did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RestoreReport {
    /// The user's version of the restore (unchanged when nothing differed).
    pub version: i64,
    /// Photos written back (metadata, tombstone state or resources).
    pub photos: u64,
    /// Photos that did not exist at the time and became tombstones.
    pub tombstoned: u64,
    /// Albums written back.
    pub albums: u64,
}

/// What a purge removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PurgeReport {
    /// Tombstoned photos removed for good (with their resources, memberships and history).
    pub photos: u64,
    /// History rows older than the retention.
    pub history_rows: u64,
}

/// The retention of tombstones and history: what [`super::Catalog::purge`] keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Days a tombstone and a superseded version are kept.
    pub days: u32,
}

impl Retention {
    /// The oldest time still kept at `now`, epoch milliseconds.
    pub fn cutoff_ms(self, now: DateTime<Utc>) -> i64 {
        now.timestamp_millis() - i64::from(self.days) * 86_400_000
    }
}

impl RestoreTarget {
    /// The target named by exactly one of three ids (the admin route's body, the CLI's flags);
    /// [`super::Error::Invalid`] naming the fields otherwise.
    pub fn from_ids(
        photo_id: Option<String>,
        album_id: Option<String>,
        library_id: Option<String>,
    ) -> super::Result<RestoreTarget> {
        match (photo_id, album_id, library_id) {
            (Some(id), None, None) => Ok(RestoreTarget::Photo(PhotoId::new(id))),
            (None, Some(id), None) => Ok(RestoreTarget::Album(id)),
            (None, None, Some(id)) => Ok(RestoreTarget::Library(LibraryId::new(id))),
            _ => Err(super::Error::invalid(
                "photoId/albumId/libraryId",
                "name exactly one of a photo, an album or a library",
            )),
        }
    }
}

/// An RFC 3339 time to restore to; [`super::Error::Invalid`] naming `field` otherwise.
pub fn parse_as_of(field: &str, text: &str) -> super::Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| super::Error::invalid(field, format!("{text:?} is not an RFC 3339 time ({e})")))
}
