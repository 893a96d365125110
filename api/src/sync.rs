//! Metadata sync and upload: what the agent sends and what the server answers.

use chrono::{DateTime, FixedOffset};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Photo or video, as Photos' `ZKIND` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AssetKind {
    /// A still image (Live Photos included: their video is a resource).
    Photo,
    /// A movie.
    Video,
}

/// Which file of an asset a resource is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ResourceType {
    /// The original as imported (`originals/<X>/<UUID>.<ext>`).
    Original,
    /// The paired video of a Live Photo (`<UUID>_3.mov`).
    LiveVideo,
    /// The edited render Photos shows after an edit.
    Render,
    /// The RAW half of a RAW+JPEG pair.
    Raw,
}

impl ResourceType {
    /// Every resource type, in wire order.
    pub const ALL: [ResourceType; 4] = [
        ResourceType::Original,
        ResourceType::LiveVideo,
        ResourceType::Render,
        ResourceType::Raw,
    ];

    /// The wire name (`original`, `live_video`, `render`, `raw`).
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceType::Original => "original",
            ResourceType::LiveVideo => "live_video",
            ResourceType::Render => "render",
            ResourceType::Raw => "raw",
        }
    }

    /// Parses a wire name; `None` for anything else.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == name)
    }
}

/// Why a resource cannot be uploaded from this Mac.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UnavailableReason {
    /// "Optimise Mac storage": the file is only in iCloud.
    IcloudOnly,
    /// The database names a file that is not on disk.
    Missing,
    /// The file is on disk but cannot be read.
    Unreadable,
}

/// One file of an asset as the Mac sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Resource {
    /// Which file this is.
    #[serde(rename = "type")]
    pub resource_type: ResourceType,
    /// Size in bytes (declared by Photos, or measured on disk).
    #[serde(deserialize_with = "crate::int::exact")]
    #[schema(format = "uint64", maximum = 18446744073709551615_u64)]
    pub size: u64,
    /// Lower-case hex SHA-256 of the bytes, when the agent has hashed the file; lets the server link content it
    /// already stores instead of asking for an upload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Whether the bytes are on this Mac and can be uploaded.
    pub available: bool,
    /// Why not, when `available` is false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unavailable_reason: Option<UnavailableReason>,
    /// Where the file is inside the Photos library bundle, as Photos lays it out (`ZDIRECTORY`/`ZFILENAME`):
    /// `originals/3/<UUID>.jpeg`, a Live Photo's `originals/3/<UUID>_3.mov`, a render under
    /// `resources/renders/`. The server stores the bytes at exactly this path under the library, so a mount
    /// of the library's `originals/` serves them and `seed-originals` finds them there. Absent for files
    /// outside a bundle (a plain folder, a referenced file): those get a content-addressed key. Relative,
    /// `/`-separated, no `.`/`..`/empty segment, no backslash or control character, at most 512 bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bundle_path: Option<String>,
}

/// One asset's metadata, as the agent sends it in a sync batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SyncItem {
    /// PhotoKit's `localIdentifier`, `<UUID>/L0/001`: the asset's identity within one library. Another Mac
    /// of the same iCloud library has another one for the same photo; the server keeps each as a name of it.
    pub local_identifier: String,
    /// iCloud Photos' cloud GUID (`ZCLOUDASSETGUID`), when the library syncs with iCloud: the same on every
    /// Mac, so an item new to the server under this identifier joins the user's photo with this GUID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloud_guid: Option<String>,
    /// Apple's stable fingerprint of the original (`ZORIGINALSTABLEHASH`, `ZMASTERFINGERPRINT` before Photos
    /// 9.9): the same on every Mac; an item with no GUID match joins the user's photo without a GUID that has
    /// this fingerprint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    /// Photo or video.
    pub kind: AssetKind,
    /// Photos' subtype (`panorama`, `live_photo`, `screenshot`, `slomo`, `timelapse`, `screen_recording`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subtype: Option<String>,
    /// A Live Photo: a still with a paired video resource.
    pub live_photo: bool,
    /// Display width in pixels.
    #[serde(deserialize_with = "crate::int::exact")]
    #[schema(format = "uint32", maximum = 4294967295_u32)]
    pub width: u32,
    /// Display height in pixels.
    #[serde(deserialize_with = "crate::int::exact")]
    #[schema(format = "uint32", maximum = 4294967295_u32)]
    pub height: u32,
    /// Duration of a video, milliseconds.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::int::exact_opt"
    )]
    #[schema(format = "uint64", maximum = 18446744073709551615_u64)]
    pub duration_ms: Option<u64>,
    /// When it was taken, with the offset the camera recorded.
    pub taken_at: DateTime<FixedOffset>,
    /// IANA zone name, when Photos knows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    /// Last change of the record in Photos (any change).
    pub modified_at: DateTime<FixedOffset>,
    /// Marked as favourite.
    pub favorite: bool,
    /// Hidden from the library view.
    pub hidden: bool,
    /// In "Recently Deleted".
    pub trashed: bool,
    /// Latitude in degrees, absent when Photos has no location.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latitude: Option<f64>,
    /// Longitude in degrees, absent when Photos has no location.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub longitude: Option<f64>,
    /// The file name the asset was imported with.
    pub original_filename: String,
    /// Uniform type identifier of the original (`public.heic`, `com.apple.quicktime-movie`).
    pub uti: String,
    /// Edited in Photos (a render exists).
    pub edited: bool,
    /// Title set in Photos.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Caption / description set in Photos.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caption: Option<String>,
    /// Keywords.
    #[serde(default)]
    pub keywords: Vec<String>,
    /// Named people recognised in the asset.
    #[serde(default)]
    pub people: Vec<String>,
    /// The files of the asset.
    #[serde(default)]
    pub resources: Vec<Resource>,
    /// The asset is gone from the Mac library: the server soft-deletes it and keeps its blobs for a grace period.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deleted: bool,
}

/// `POST /client/iphoto/sync` body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SyncRequest {
    /// Which of the user's libraries this batch belongs to (the agent's stable library id): 1 to 200
    /// characters, none of them a control character.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]+$"
    )]
    pub library_id: String,
    /// The batch, at most the server's configured maximum.
    pub items: Vec<SyncItem>,
}

/// What the server did with one item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SyncOutcome {
    /// New to the catalog.
    Created,
    /// Metadata changed; or the photo, synced first from another library of the user (another Mac of the
    /// same iCloud library), is now also known by this item's identifier.
    Updated,
    /// Nothing changed; the version did not move.
    Unchanged,
    /// Not applied; `reason` says why. The rest of the batch still applied.
    Rejected,
}

/// Per-item answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SyncResult {
    /// The item's identity, as sent.
    pub local_identifier: String,
    /// What happened.
    pub outcome: SyncOutcome,
    /// Why it was rejected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Resources whose bytes the server still needs.
    #[serde(default)]
    pub needs_upload: Vec<ResourceType>,
}

/// `POST /client/iphoto/sync` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SyncAnswer {
    /// One result per item, in request order.
    pub results: Vec<SyncResult>,
    /// The user's catalog version after the batch.
    pub version: i64,
}

/// `POST /client/iphoto/upload/{localIdentifier}` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UploadAnswer {
    /// The asset.
    pub local_identifier: String,
    /// Which of its files.
    pub resource: ResourceType,
    /// Lower-case hex SHA-256 of the stored bytes.
    pub sha256: String,
    /// Stored size in bytes.
    pub size: u64,
    /// Object key in the store.
    pub key: String,
    /// The bytes were already stored; nothing was uploaded.
    pub deduplicated: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_type_names_round_trip() {
        for t in ResourceType::ALL {
            assert_eq!(ResourceType::parse(t.as_str()), Some(t));
            let json = serde_json::to_string(&t).unwrap();
            assert_eq!(json, format!("\"{}\"", t.as_str()));
        }
        assert_eq!(ResourceType::parse("thumbnail"), None);
    }

    #[test]
    fn sync_item_is_camel_case_and_rfc3339() {
        let item: SyncItem = serde_json::from_value(serde_json::json!({
            "localIdentifier": "A/L0/001", "kind": "photo", "livePhoto": true, "width": 4032, "height": 3024,
            "takenAt": "2024-05-01T10:00:00+02:00", "modifiedAt": "2024-05-02T10:00:00Z",
            "favorite": false, "hidden": false, "trashed": false, "originalFilename": "IMG_1.HEIC",
            "uti": "public.heic", "edited": false,
            "resources": [{"type": "live_video", "size": 10, "available": false, "unavailableReason": "icloud_only"}]
        }))
        .unwrap();
        assert_eq!(item.taken_at.offset().local_minus_utc(), 7200);
        assert_eq!(
            item.resources[0].unavailable_reason,
            Some(UnavailableReason::IcloudOnly)
        );
        let back = serde_json::to_value(&item).unwrap();
        assert_eq!(back["takenAt"], "2024-05-01T10:00:00+02:00");
        assert_eq!(back["resources"][0]["type"], "live_video");
        assert!(back.get("deleted").is_none());
    }
}
