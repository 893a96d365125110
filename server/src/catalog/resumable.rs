//! Rows of resumable uploads (issue 16): what the catalog keeps of each upload resource so that any replica
//! can answer for it, continue it, or abort it when it expires.

use chrono::{DateTime, Utc};

use super::{LibraryId, PhotoId, ResourceType, UserId};

/// One upload resource (`/client/iphoto/uploads/{id}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResumableUpload {
    /// The resource's id: 128 random bits, hex (it is in the URL, so unguessable).
    pub id: String,
    /// Whose upload; every lookup is scoped to it, so another user's id is simply unknown.
    pub user_id: UserId,
    /// The library holding the resource's declaration: its bytes go under that library's keys.
    pub library_id: LibraryId,
    /// The photo whose resource this is.
    pub photo_id: PhotoId,
    /// Its asset's identifier, as the upload named it.
    pub local_identifier: String,
    /// Which of its files.
    pub resource: ResourceType,
    /// Where the object ends up (create-only).
    pub target_key: String,
    /// The prefix of the upload's tails or staging file.
    pub staging_key: String,
    /// The SHA-256 the bytes must hash to (announced by the client or declared at sync), lower-case hex.
    pub expected_sha256: Option<String>,
    /// The total length, once the client announced it (`Upload-Length`).
    pub length: Option<u64>,
    /// Bytes acknowledged.
    pub offset: u64,
    /// The store's record of those bytes (`storage::ResumableProgress` as JSON).
    pub progress: String,
    /// The final answer (JSON) once the upload completed.
    pub answer: Option<String>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// The last append or checkpoint: an upload idle past the max-age is aborted.
    pub updated_at: DateTime<Utc>,
}

/// A checkpoint of an append, written only while the writer holds the upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResumableSave<'a> {
    /// The upload.
    pub id: &'a str,
    /// The holder that took it ([`crate::catalog::Catalog::resumable_hold`]).
    pub holder: &'a str,
    /// Bytes acknowledged now.
    pub offset: u64,
    /// The store's record of them.
    pub progress: &'a str,
    /// The total length, when this append announced it.
    pub length: Option<u64>,
    /// The final answer, when this save completes the upload.
    pub answer: Option<&'a str>,
    /// Now.
    pub at: DateTime<Utc>,
    /// Renews the hold until then; `None` releases it.
    pub hold_until: Option<DateTime<Utc>>,
}
