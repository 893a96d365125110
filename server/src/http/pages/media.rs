//! `GET /media/{photoId}/{variant}`: a photo's thumbnail, preview, original or video for the pages, served
//! through the server under the session cookie. The JSON API hands out presigned URLs instead; the pages do
//! not, because with S3 those point at the bucket (another origin, which the pages' CSP and promise of "no
//! request off the server" forbid) and expire in minutes while a page stays open for hours.
//!
//! Only the signed-in user's own photos are found (the catalog query is per user, and the key must be under
//! the user's prefix); anything else is a 404. `Range` is honoured, so videos seek.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;

use super::session::SignedIn;
use crate::catalog::{PhotoId, ResourceType};
use crate::http::AppState;
use crate::http::blobs::serve_object;
use crate::http::error::ApiError;
use crate::http::extract::Path;
use crate::http::web::own_key;

/// How long a browser keeps a derivative or original (privately): the bytes under a key never change, a
/// changed photo gets a new key and its page asks again.
const MAX_AGE_S: i64 = 3600;

/// What a media URL names.
#[derive(Debug, Clone, Copy)]
enum Variant {
    /// The 512-px thumbnail.
    Thumbnail,
    /// The 2048-px preview, or the thumbnail until the preview is made.
    Preview,
    /// The stored original.
    Original,
    /// A video's original, or a Live Photo's paired video.
    Video,
}

impl Variant {
    fn parse(text: &str) -> Option<Self> {
        match text {
            "thumbnail" => Some(Self::Thumbnail),
            "preview" => Some(Self::Preview),
            "original" => Some(Self::Original),
            "video" => Some(Self::Video),
            _ => None,
        }
    }
}

pub(super) async fn get_media(
    State(state): State<AppState>,
    SignedIn(signed): SignedIn,
    Path((photo_id, variant)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let variant = Variant::parse(&variant).ok_or_else(|| ApiError::not_found("media variant"))?;
    let user_id = &signed.session.user.id;
    if !crate::http::web::is_catalog_id(&photo_id) {
        return Err(ApiError::not_found("photo"));
    }
    let photo_id = PhotoId::new(photo_id);
    let listed = state
        .catalog()
        .listed_photo(user_id, &photo_id)
        .await?
        .ok_or_else(|| ApiError::not_found("photo"))?;
    let key = match variant {
        Variant::Thumbnail => listed.thumbnail_key,
        Variant::Preview => listed.preview_key.or(listed.thumbnail_key),
        Variant::Original => listed.original.map(|o| o.key),
        Variant::Video if listed.kind == api::AssetKind::Video => listed.original.map(|o| o.key),
        // A Live Photo's paired video is a resource of its own: the whole photo's record has it.
        Variant::Video => state
            .catalog()
            .photo(user_id, &photo_id)
            .await?
            .and_then(|photo| {
                photo
                    .resources
                    .into_iter()
                    .find(|r| r.resource_type == ResourceType::LiveVideo)
                    .and_then(|r| r.stored)
            })
            .map(|s| s.key),
    };
    let key = key
        .and_then(|key| own_key(user_id, &key))
        .ok_or_else(|| ApiError::not_found("media"))?;
    serve_object(&state, &key, &headers, MAX_AGE_S).await
}
