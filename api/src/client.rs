//! The rest of the client surface: albums, the pending-upload list and stats.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::ResourceType;

/// Album, folder or shared album.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AlbumKind {
    /// An album with members.
    Album,
    /// A folder of albums and folders.
    Folder,
    /// A shared album.
    Shared,
}

/// One album or folder as the Mac shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Album {
    /// The album's id on the Mac (its UUID), unique in the request: 1 to 256 characters, no NUL.
    #[schema(min_length = 1, max_length = 256, pattern = r"^[^\u0000]*$")]
    pub id: String,
    /// Title: at most 1024 characters, no NUL.
    #[schema(max_length = 1024, pattern = r"^[^\u0000]*$")]
    pub title: String,
    /// Kind.
    pub kind: AlbumKind,
    /// The containing folder's `id` (never the album's own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(min_length = 1, max_length = 256, pattern = r"^[^\u0000]*$")]
    pub parent_id: Option<String>,
    /// Members by `localIdentifier`, in the order Photos shows them: each 1 to 256 characters, no NUL.
    #[serde(default)]
    #[schema(schema_with = member_ids)]
    pub members: Vec<String>,
    /// iCloud's GUID of the album (`ZCLOUDGUID`), when the library syncs with iCloud: the same album sent by
    /// two Macs of one iCloud library is listed once on the web. 1 to 256 characters, no NUL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(min_length = 1, max_length = 256, pattern = r"^[^\u0000]*$")]
    pub cloud_guid: Option<String>,
}

/// The schema of [`Album::members`]: identifiers of 1 to 256 characters without NUL.
fn member_ids() -> utoipa::openapi::schema::Array {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Type};
    ArrayBuilder::new()
        .items(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .max_length(Some(256))
                .pattern(Some(r"^[^\u0000]*$")),
        )
        .build()
}

/// `POST /client/iphoto/albums` body: every album of one library; those left out are deleted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AlbumsRequest {
    /// The library (as in sync requests): 1 to 200 characters, none of them a control character.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]+$"
    )]
    pub library_id: String,
    /// All albums and folders, in display order.
    pub albums: Vec<Album>,
}

/// `POST /client/iphoto/albums` answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AlbumsAnswer {
    /// New albums.
    pub created: u64,
    /// Changed albums.
    pub updated: u64,
    /// Albums as they were.
    pub unchanged: u64,
    /// Albums no longer listed, now deleted.
    pub deleted: u64,
    /// Member identifiers not synced yet (skipped; send albums again after the photos).
    pub unknown_members: u64,
    /// The user's catalog version after the call.
    pub version: i64,
}

/// One resource the server still needs. A photo synced from several libraries (two Macs of one iCloud
/// library) is listed for one of them only: the one whose declaration of the resource the server holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PendingUpload {
    /// The library to upload it from (the agent's id).
    pub library_id: String,
    /// The asset, by that library's identifier.
    pub local_identifier: String,
    /// Which file.
    pub resource: ResourceType,
    /// Why it is needed: `not_uploaded`, `content_changed` or `failed`.
    pub reason: String,
    /// The last failure, when `reason` is `failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Declared size in bytes.
    pub size: u64,
    /// Declared SHA-256, when the agent sent one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

/// A page of pending uploads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PendingPage {
    /// The items.
    pub items: Vec<PendingUpload>,
    /// Pass as `cursor` for the next page; absent on the last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// Counts and bytes over a set of photos.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Counts {
    /// Photos (not deleted).
    pub photos: u64,
    /// Their resources.
    pub resources: u64,
    /// Resources stored.
    pub uploaded: u64,
    /// Resources still needed.
    pub pending: u64,
    /// Resources the Mac cannot upload (iCloud only, missing).
    pub unavailable: u64,
    /// Declared bytes of all resources.
    pub bytes_total: u64,
    /// Bytes stored.
    pub bytes_uploaded: u64,
    /// Bytes still needed.
    pub bytes_pending: u64,
}

/// One library's figures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LibraryStats {
    /// The agent's library id.
    pub library_id: String,
    /// Figures.
    #[serde(flatten)]
    pub counts: Counts,
}

/// `GET /client/iphoto/stats` answer. Rates come from upload times in the catalog, so a restart of the
/// server or the agent does not reset them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    /// The user's catalog version.
    pub version: i64,
    /// All libraries together.
    #[serde(flatten)]
    pub totals: Counts,
    /// Bytes that crossed the wire (stored bytes less what was deduplicated).
    pub bytes_transferred: u64,
    /// Recent upload rate, bytes per second.
    pub upload_rate: f64,
    /// Seconds until the pending bytes are uploaded at that rate; absent when there is no rate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eta: Option<u64>,
    /// Per library.
    pub libraries: Vec<LibraryStats>,
}
