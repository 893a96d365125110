//! History and trash (scope `web` to read, scope `admin` to restore): a photo's versions, the changes feed
//! and the restore request.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{ResourceType, WebListItem};

/// `GET /my/photos/{id}/history` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebPhotoHistory {
    /// The photo's versions, newest first, as far back as the retention keeps them.
    pub versions: Vec<WebPhotoVersion>,
}

/// One version of a photo.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebPhotoVersion {
    /// The user's catalog version of the change.
    pub version: i64,
    /// When it was written.
    pub changed_at: DateTime<Utc>,
    /// `created`, `updated`, `deleted` or `restored`.
    pub change: String,
    /// The library (catalog id) the change came from.
    pub library_id: String,
    /// Metadata fields (catalog column names) that differ from the previous version kept, and `resources`
    /// when a stored object changed; every field for the oldest version kept.
    pub changed_fields: Vec<String>,
    /// The metadata after the change, keyed by catalog column name.
    #[schema(value_type = Object)]
    pub metadata: serde_json::Value,
    /// Each resource's stored SHA-256 at this version (absent: declared, not stored yet).
    pub resources: Vec<WebVersionResource>,
}

/// A resource at one version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebVersionResource {
    /// Which resource.
    #[serde(rename = "type")]
    pub resource_type: ResourceType,
    /// SHA-256 of the stored object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

/// `GET /my/photos/changes` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebChanges {
    /// Photos changed after `since`, in version order (ties by id), each with its current state.
    pub changes: Vec<WebChange>,
    /// Pass as `since` for what follows; equal to `since` when nothing changed.
    pub next_since: String,
    /// More changes are waiting (ask again at once with `nextSince`).
    pub has_more: bool,
}

/// One changed photo.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebChange {
    /// The photo's version (of its last change).
    pub version: i64,
    /// The photo's catalog id.
    pub photo_id: String,
    /// `upsert` (the photo is as `photo` says) or `delete` (removed on the Mac, or restored away).
    pub change: String,
    /// The photo as a list item, for an upsert.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub photo: Option<WebListItem>,
}

/// `POST /admin/restore` body: exactly one of `photoId`, `albumId` or `libraryId` (its schema, written out
/// below, says so with a `oneOf`, which the derive cannot).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RestoreRequest {
    /// The user (name) whose catalog is restored.
    pub user: String,
    /// Restore one photo (catalog id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub photo_id: Option<String>,
    /// Restore one album (catalog id): its title, order, membership and member photos.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub album_id: Option<String>,
    /// Restore every photo and album of one library (catalog id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub library_id: Option<String>,
    /// The time to restore to (RFC 3339), not in the future.
    pub as_of: String,
}

impl utoipa::ToSchema for RestoreRequest {}

impl utoipa::PartialSchema for RestoreRequest {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{
            AdditionalProperties, AllOfBuilder, KnownFormat, ObjectBuilder, OneOfBuilder, SchemaFormat, Type,
        };
        let string = |description: &str| {
            ObjectBuilder::new()
                .schema_type(Type::String)
                .description(Some(description))
        };
        let id = |description: &str| {
            ObjectBuilder::new()
                .schema_type(
                    [Type::String, Type::Null]
                        .into_iter()
                        .collect::<utoipa::openapi::schema::SchemaType>(),
                )
                .description(Some(description))
        };
        let fields = ObjectBuilder::new()
            .schema_type(Type::Object)
            .property("user", string("The user (name) whose catalog is restored."))
            .required("user")
            .property(
                "asOf",
                string("The time to restore to (RFC 3339), not in the future.")
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime))),
            )
            .required("asOf")
            .property("photoId", id("Restore one photo (catalog id)."))
            .property(
                "albumId",
                id("Restore one album (catalog id): its title, order, membership and member photos."),
            )
            .property(
                "libraryId",
                id("Restore every photo and album of one library (catalog id)."),
            )
            .additional_properties(Some(AdditionalProperties::FreeForm(false)));
        // Exactly one target is a string; the others are absent or null.
        let target = |name: &str| {
            ObjectBuilder::new()
                .property(name, ObjectBuilder::new().schema_type(Type::String))
                .required(name)
        };
        AllOfBuilder::new()
            .description(Some(
                "`POST /admin/restore` body: exactly one of `photoId`, `albumId` or `libraryId`.",
            ))
            .item(fields)
            .item(
                OneOfBuilder::new()
                    .item(target("photoId"))
                    .item(target("albumId"))
                    .item(target("libraryId")),
            )
            .into()
    }
}

/// `POST /admin/restore` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RestoreAnswer {
    /// The user's catalog version after the restore (unchanged when nothing differed).
    pub version: i64,
    /// Photos written back.
    pub photos: u64,
    /// Of those, photos that did not exist at `asOf` and are now tombstones.
    pub tombstoned: u64,
    /// Albums written back.
    pub albums: u64,
}
