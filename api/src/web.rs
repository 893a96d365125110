//! The web surface (scope `web`): the photo timeline, albums and one photo's details.

use chrono::{DateTime, FixedOffset, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{AlbumKind, AssetKind, ResourceType};

/// One photo in a list (`GET /my/photos/`, `GET /my/photos/albums/{albumId}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebListItem {
    /// The photo's catalog id (for `GET /my/photos/{id}`).
    pub id: String,
    /// PhotoKit's `localIdentifier` on the Mac.
    pub local_identifier: String,
    /// When it was taken, with the offset it was taken at.
    pub taken_at: DateTime<FixedOffset>,
    /// `photo` or `video`.
    pub kind: AssetKind,
    /// Marked as favourite.
    pub favorite: bool,
    /// Pixels.
    pub width: u32,
    /// Pixels.
    pub height: u32,
    /// SHA-256 of the stored original, when stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// A presigned, short-lived GET of the thumbnail, when the thumbnail worker made one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thumbnail_url: Option<String>,
    /// What a browser shows as the large image: a presigned, short-lived GET of the preview (a JPEG of long
    /// edge about 2048 px) once the worker made it; until then the thumbnail's URL, with `previewPending`.
    /// Absent when neither exists yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preview_url: Option<String>,
    /// True while the preview is not made: `previewUrl`, if present, is then the thumbnail, to be shown with
    /// a note rather than as a broken image.
    pub preview_pending: bool,
    /// A presigned, short-lived GET of the original, when stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_url: Option<String>,
}

/// A page of photos.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebPhotoPage {
    /// The photos, newest first (or in album order).
    pub items: Vec<WebListItem>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// One album or folder with its count and cover.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebAlbum {
    /// The album's catalog id (for `GET /my/photos/albums/{albumId}` and the `album` filter).
    pub id: String,
    /// Title.
    pub title: String,
    /// `album`, `folder` or `shared`.
    pub kind: AlbumKind,
    /// The containing folder's catalog id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<String>,
    /// Members that are not deleted.
    pub count: u64,
    /// The first member in album order, as a list item (with its presigned URLs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cover: Option<WebListItem>,
}

/// `GET /my/photos/albums` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebAlbums {
    /// Albums and folders, in the Mac's display order.
    pub albums: Vec<WebAlbum>,
}

/// `GET /my/photos/albums/{albumId}` answer: the album and one page of its photos in album order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebAlbumPage {
    /// The album.
    pub album: WebAlbum,
    /// The photos, in the album's order.
    pub items: Vec<WebListItem>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// One stored or declared file of a photo.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebResource {
    /// Which file.
    #[serde(rename = "type")]
    pub resource_type: ResourceType,
    /// `pending`, `stored`, `unavailable` or `failed`.
    pub state: String,
    /// Why it is unavailable or failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Size the Mac declared, bytes.
    pub size: u64,
    /// SHA-256 of the stored bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// A presigned, short-lived GET, when stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// One enrichment result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebEnrichment {
    /// `thumbnail`, `classify` or `face`.
    pub kind: crate::JobKind,
    /// The worker's result document.
    #[schema(value_type = Object)]
    pub result: serde_json::Value,
    /// When it was stored.
    pub updated_at: DateTime<Utc>,
}

/// `GET /my/photos/{id}` answer: everything the catalog knows about one photo.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebPhoto {
    /// The list item (id, dates, flags, presigned URLs).
    #[serde(flatten)]
    pub item: WebListItem,
    /// iCloud GUID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloud_guid: Option<String>,
    /// Apple's stable fingerprint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    /// Photos' subtype.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subtype: Option<String>,
    /// A Live Photo.
    pub live_photo: bool,
    /// Video length.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// IANA time zone name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    /// Last change on the Mac.
    pub modified_at: DateTime<Utc>,
    /// Hidden in Photos.
    pub hidden: bool,
    /// In Photos' Recently Deleted.
    pub trashed: bool,
    /// Degrees.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latitude: Option<f64>,
    /// Degrees.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub longitude: Option<f64>,
    /// Import file name.
    pub original_filename: String,
    /// Uniform type identifier.
    pub uti: String,
    /// Edited in Photos.
    pub edited: bool,
    /// Title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Caption.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caption: Option<String>,
    /// Keywords.
    pub keywords: Vec<String>,
    /// Named people.
    pub people: Vec<String>,
    /// Catalog ids of the albums it is in.
    pub albums: Vec<String>,
    /// Its files.
    pub resources: Vec<WebResource>,
    /// Results of the enrichment workers.
    pub enrichments: Vec<WebEnrichment>,
}
