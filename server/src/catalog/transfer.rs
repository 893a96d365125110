//! Domain types of the upload side of the catalog: the pending list, the lookup an upload route makes before
//! reading a body, recorded uploads, the dedup table and the stats. Like [`super::model`], not wire types.

use chrono::{DateTime, Utc};

use api::ResourceType;

use super::model::{DeclaredResource, LibraryId, PhotoId, UserId};

/// A keyset page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// Pass back to get the next page; `None` on the last page.
    pub next_cursor: Option<String>,
}

/// What [`super::Catalog::pending_uploads`] lists.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PendingQuery {
    /// Only this library; all of the user's when `None`.
    pub library_id: Option<LibraryId>,
    /// Page size, 1..=1000.
    pub limit: u32,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Why the server still needs a resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PendingReason {
    /// Never uploaded.
    NotUploaded,
    /// Uploaded once, but the Mac now declares different content.
    ContentChanged,
    /// The last upload attempt failed.
    Failed {
        /// What failed.
        detail: String,
    },
}

impl PendingReason {
    /// A stable code for the wire (`not_uploaded`, `content_changed`, `failed`).
    pub fn code(&self) -> &'static str {
        match self {
            PendingReason::NotUploaded => "not_uploaded",
            PendingReason::ContentChanged => "content_changed",
            PendingReason::Failed { .. } => "failed",
        }
    }
}

/// One resource the server still needs, from the one library asked to upload it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingUpload {
    /// Photo id.
    pub photo_id: PhotoId,
    /// The library that holds the resource's declaration (the one to upload it).
    pub library_id: LibraryId,
    /// The agent's id of that library.
    pub library_key: String,
    /// The asset, by that library's identifier.
    pub local_identifier: String,
    /// Which file.
    pub resource: ResourceType,
    /// Why.
    pub reason: PendingReason,
    /// Declared size.
    pub declared_size: u64,
    /// Declared SHA-256, when the agent sent one.
    pub declared_sha256: Option<String>,
}

/// Which resource an upload is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadLookup {
    /// The library, when the client names it; otherwise the identifier must be unique among the user's.
    pub library_id: Option<LibraryId>,
    /// The asset.
    pub local_identifier: String,
    /// Which file.
    pub resource: ResourceType,
}

/// Upload state of a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResourceState {
    /// The server needs the bytes.
    Pending,
    /// The bytes are stored.
    Stored,
    /// The Mac cannot upload it (iCloud only, missing, unreadable).
    Unavailable,
    /// The last upload failed; still needed.
    Failed,
}

impl ResourceState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceState::Pending => "pending",
            ResourceState::Stored => "stored",
            ResourceState::Unavailable => "unavailable",
            ResourceState::Failed => "failed",
        }
    }

    pub(crate) fn parse(name: &str) -> Option<Self> {
        [Self::Pending, Self::Stored, Self::Unavailable, Self::Failed]
            .into_iter()
            .find(|s| s.as_str() == name)
    }
}

/// Bytes the catalog knows are in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredObject {
    /// Lower-case hex SHA-256.
    pub sha256: String,
    /// Object key.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// When it was recorded.
    pub uploaded_at: DateTime<Utc>,
}

/// What the upload route learns before reading a body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadTarget {
    /// Photo id.
    pub photo_id: PhotoId,
    /// The library the identifier was found in (the caller's).
    pub library_id: LibraryId,
    /// The library whose declaration of the resource the catalog holds: the one asked to upload it, under
    /// whose prefix its bundle path lies (the object key's library). The caller's library for a resource
    /// never declared. Differs from `library_id` for a photo another library (a second Mac) uploads.
    pub resource_library_id: LibraryId,
    /// The caller's library's agent id.
    pub library_key: String,
    /// The asset.
    pub local_identifier: String,
    /// Import file name (its extension names the object).
    pub original_filename: String,
    /// Type identifier.
    pub uti: String,
    /// Which file.
    pub resource: ResourceType,
    /// What the Mac declared for it; `None` when this resource type was never declared.
    pub declared: Option<DeclaredResource>,
    /// Its state; `None` when never declared.
    pub state: Option<ResourceState>,
    /// What is stored for it, if anything.
    pub stored: Option<StoredObject>,
    /// The photo is soft-deleted.
    pub deleted: bool,
}

/// Content the user stores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    /// Lower-case hex SHA-256.
    pub sha256: String,
    /// Object key.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
}

/// A finished upload to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadRecord {
    /// The photo (from [`UploadTarget::photo_id`]).
    pub photo_id: PhotoId,
    /// Which file.
    pub resource: ResourceType,
    /// Lower-case hex SHA-256 of the stored bytes.
    pub sha256: String,
    /// Stored size.
    pub size: u64,
    /// Object key.
    pub key: String,
    /// When it finished.
    pub at: DateTime<Utc>,
    /// No bytes were transferred (the content was already stored); rates leave it out.
    pub deduplicated: bool,
}

/// Answer of [`super::Catalog::record_upload`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordedUpload {
    /// The user's version afterwards.
    pub version: i64,
    /// Other pending resources of the user that declared the same SHA-256 and are now stored too.
    pub linked: u64,
}

/// Counts and bytes over a set of photos. Resources of soft-deleted photos are left out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    /// Photos not deleted.
    pub photos: u64,
    /// Their resources.
    pub resources: u64,
    /// Resources stored.
    pub uploaded: u64,
    /// Resources still needed (pending or failed).
    pub pending: u64,
    /// Resources the Mac cannot upload.
    pub unavailable: u64,
    /// Of `pending`, those whose last upload failed.
    pub failed: u64,
    /// Declared bytes of all resources (stored size where stored).
    pub bytes_total: u64,
    /// Stored bytes.
    pub bytes_uploaded: u64,
    /// Declared bytes still needed.
    pub bytes_pending: u64,
    /// Stored bytes that really crossed the wire (not deduplicated).
    pub bytes_transferred: u64,
    /// First transferred upload.
    pub first_upload_at: Option<DateTime<Utc>>,
    /// Last transferred upload.
    pub last_upload_at: Option<DateTime<Utc>>,
    /// Transfers since `recent_since`.
    pub recent_uploads: u64,
    /// Bytes transferred since `recent_since`.
    pub recent_bytes: u64,
}

/// One library's figures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LibraryStats {
    /// Library id.
    pub library_id: LibraryId,
    /// The agent's id.
    pub library_key: String,
    /// Figures.
    pub counts: Counts,
}

/// Answer of [`super::Catalog::stats`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stats {
    /// The user's version.
    pub version: i64,
    /// All libraries together.
    pub totals: Counts,
    /// Per library, ordered by library key.
    pub libraries: Vec<LibraryStats>,
}

/// A stored resource whose object is not at the key its bundle path gives (see [`super::Catalog::misplaced`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Misplaced {
    /// Owner.
    pub user_id: UserId,
    /// The photo.
    pub photo_id: PhotoId,
    /// Which file.
    pub resource: ResourceType,
    /// The photo's library (part of the key it belongs at).
    pub library_id: LibraryId,
    /// Its path inside the Photos bundle.
    pub bundle_path: String,
    /// Where its bytes are now.
    pub key: String,
    /// Their SHA-256 (lower-case hex), which the copy must hash to.
    pub sha256: String,
    /// Their size.
    pub size: u64,
}
