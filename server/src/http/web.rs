//! The web surface (scope `web`): the photo timeline, albums and one photo's details, each item with
//! short-lived presigned URLs of its thumbnail, preview and original (never bare object URLs).
//!
//! Lists are keyset-paged: a page is "the next `limit` rows after this position", read from an index, so the
//! millionth photo costs what the first does. The position travels in an opaque cursor signed by the server
//! ([`CursorKey`]); a forged, truncated or foreign cursor is a 400.

pub(crate) mod albums;
mod cursor;
pub(crate) mod filter;
pub(crate) mod history;
pub(crate) mod months;
pub(crate) mod photos;
pub(crate) mod tags;

use api::ErrorCode;
use storage::StorageKey;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use cursor::CursorKey;

use super::AppState;
use super::error::ApiError;
use crate::catalog::{ListedPhoto, UserId};

/// Page size when the client names none.
pub const DEFAULT_LIMIT: u32 = 100;
/// Largest page; a larger `limit` is a 400 (not silently clamped, so a client never mistakes a short page
/// for the end of the list).
pub const MAX_LIMIT: u32 = 500;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::default()
        .routes(routes!(photos::get_photos))
        .routes(routes!(photos::get_photos_unslashed))
        .routes(routes!(months::get_months))
        .routes(routes!(months::get_month))
        .routes(routes!(tags::get_people))
        .routes(routes!(tags::get_keywords))
        .routes(routes!(albums::get_albums))
        .routes(routes!(albums::get_album))
        .routes(routes!(history::get_changes))
        .routes(routes!(history::get_photo_history))
        .routes(routes!(photos::get_photo))
}

/// Whether `id` can be a catalog id (32 lower-case hex digits, `catalog/sql.rs`'s `new_id`): anything else
/// (a NUL byte, which PostgreSQL refuses in text, or any other shape) is not found without asking the catalog.
pub(crate) fn is_catalog_id(id: &str) -> bool {
    id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The page size asked for, checked.
fn limit(requested: Option<u32>) -> Result<u32, ApiError> {
    let limit = requested.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidQuery,
            format!("limit: {limit} is outside 1..={MAX_LIMIT}"),
        ));
    }
    Ok(limit)
}

/// A presigned GET of `key`, if the key is the user's. The catalog only records keys under the user's
/// prefix; checking again here means a bad row can never hand out another user's object.
async fn presign(state: &AppState, user_id: &UserId, key: &str) -> Result<Option<String>, ApiError> {
    let Some(key) = own_key(user_id, key) else {
        return Ok(None);
    };
    Ok(Some(state.store().presign_get(&key, None).await?.url.to_string()))
}

/// A catalog key as a storage key, if it is under the user's own prefix: the last guard before a key is
/// presigned or served, so a catalog row naming another user's object can never hand it out.
pub(crate) fn own_key(user_id: &UserId, key: &str) -> Option<StorageKey> {
    let prefix = storage::LibraryLayout::user_prefix(user_id.as_str()).ok()?;
    let key = StorageKey::parse(key).ok()?;
    if !key.as_str().starts_with(&format!("{}/", prefix.as_str())) {
        tracing::warn!("a catalog key outside the user's prefix was not served");
        return None;
    }
    Some(key)
}

/// A list item with its presigned URLs.
async fn item(state: &AppState, user_id: &UserId, photo: &ListedPhoto) -> Result<api::WebListItem, ApiError> {
    let original_url = match &photo.original {
        Some(original) => presign(state, user_id, &original.key).await?,
        None => None,
    };
    let thumbnail_url = match &photo.thumbnail_key {
        Some(key) => presign(state, user_id, key).await?,
        None => None,
    };
    let preview = match &photo.preview_key {
        Some(key) => presign(state, user_id, key).await?,
        None => None,
    };
    // Until the preview is made the page shows the thumbnail in its place, with a note: never a broken image.
    let preview_pending = preview.is_none();
    let preview_url = preview.or_else(|| thumbnail_url.clone());
    Ok(api::WebListItem {
        id: photo.id.as_str().to_owned(),
        local_identifier: photo.local_identifier.clone(),
        taken_at: photo.taken_at,
        kind: photo.kind,
        favorite: photo.favorite,
        width: photo.width,
        height: photo.height,
        sha256: photo.original.as_ref().map(|o| o.sha256.clone()),
        thumbnail_url,
        preview_url,
        preview_pending,
        original_url,
    })
}

/// List items for a page of rows.
async fn items(
    state: &AppState,
    user_id: &UserId,
    photos: &[ListedPhoto],
) -> Result<Vec<api::WebListItem>, ApiError> {
    let mut items = Vec::with_capacity(photos.len());
    for photo in photos {
        items.push(item(state, user_id, photo).await?);
    }
    Ok(items)
}
