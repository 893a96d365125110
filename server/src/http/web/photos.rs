//! `GET /my/photos/` (the timeline, searched and filtered) and `GET /my/photos/{id}` (one photo).

use api::ErrorCode;
use axum::extract::State;

use super::filter::{ListParams, list_scope};
use super::{CursorKey, item, items, limit, presign};
use crate::catalog::{ListedPhoto, PhotoId, TimelineKey, TimelineQuery, UserId};
use crate::http::AppState;
use crate::http::auth::WebAuth;
use crate::http::error::ApiError;
use crate::http::extract::{Json, Path, Query};

/// Lists the caller's photos, newest first (ties by id), keyset-paged; with `q`, those the search finds.
#[utoipa::path(get, path = "/my/photos/", tag = "web", operation_id = "get_photos",
    params(ListParams),
    responses((status = 200, body = api::WebPhotoPage), (status = 400, body = api::ErrorBody),
        (status = 401, body = api::ErrorBody), (status = 403, body = api::ErrorBody)),
    security(("bearer" = ["web"])))]
#[tracing::instrument(skip_all)]
pub(crate) async fn get_photos(
    state: State<AppState>,
    caller: WebAuth,
    params: Query<ListParams>,
) -> Result<Json<api::WebPhotoPage>, ApiError> {
    list_photos(state, caller, params).await
}

/// `GET /my/photos/` without its trailing slash.
#[utoipa::path(get, path = "/my/photos", tag = "web", operation_id = "get_photos_unslashed",
    description = "The same list as `GET /my/photos/`.",
    params(ListParams),
    responses((status = 200, body = api::WebPhotoPage), (status = 400, body = api::ErrorBody),
        (status = 401, body = api::ErrorBody), (status = 403, body = api::ErrorBody)),
    security(("bearer" = ["web"])))]
#[tracing::instrument(skip_all)]
pub(crate) async fn get_photos_unslashed(
    state: State<AppState>,
    caller: WebAuth,
    params: Query<ListParams>,
) -> Result<Json<api::WebPhotoPage>, ApiError> {
    list_photos(state, caller, params).await
}

async fn list_photos(
    State(state): State<AppState>,
    WebAuth(caller): WebAuth,
    Query(params): Query<ListParams>,
) -> Result<Json<api::WebPhotoPage>, ApiError> {
    let limit = limit(params.limit)?;
    let filter = params.filter()?;
    let key: &CursorKey = &state.settings().cursor_key;
    let scope = list_scope(caller.user.id.as_str(), &filter);
    let after = params
        .cursor
        .as_deref()
        .map(|text| open_cursor(key, &scope, text))
        .transpose()?;
    let query = TimelineQuery {
        filter,
        limit,
        after,
        before_local_ms: None,
    };
    page(&state, &caller.user.id, &scope, query).await
}

/// A timeline page and the cursor of the next one, sealed under `scope`.
pub(super) async fn page(
    state: &AppState,
    user_id: &UserId,
    scope: &str,
    query: TimelineQuery,
) -> Result<Json<api::WebPhotoPage>, ApiError> {
    let (rows, next_cursor) = rows(state, user_id, scope, query).await?;
    Ok(Json(api::WebPhotoPage {
        items: items(state, user_id, &rows).await?,
        next_cursor,
    }))
}

/// A timeline page's rows and the cursor of the next page, sealed under `scope` (`None` at the end).
pub(crate) async fn rows(
    state: &AppState,
    user_id: &UserId,
    scope: &str,
    query: TimelineQuery,
) -> Result<(Vec<ListedPhoto>, Option<String>), ApiError> {
    let limit = query.limit as usize;
    let mut rows = state.catalog().list_photos(user_id, &query).await?;
    let next_cursor = if rows.len() > limit {
        rows.truncate(limit);
        rows.last().map(|last| {
            state
                .settings()
                .cursor_key
                .seal(scope, &format!("t|{}|{}", last.taken_at_ms, last.id))
        })
    } else {
        None
    };
    Ok((rows, next_cursor))
}

/// The keyset position in a cursor this list handed out under `scope`, or a 400.
pub(crate) fn open_cursor(key: &CursorKey, scope: &str, text: &str) -> Result<TimelineKey, ApiError> {
    parse_position(&key.open(scope, text)?)
}
/// One photo: all its metadata, resources (with presigned URLs of stored ones), albums and enrichment results.
#[utoipa::path(get, path = "/my/photos/{photoId}", tag = "web", operation_id = "get_photo",
    params(("photoId" = String, Path, description = "the photo's id (from a list)")),
    responses((status = 200, body = api::WebPhoto), (status = 401, body = api::ErrorBody),
        (status = 403, body = api::ErrorBody), (status = 404, body = api::ErrorBody)),
    security(("bearer" = ["web"])))]
#[tracing::instrument(skip_all)]
pub(crate) async fn get_photo(
    State(state): State<AppState>,
    WebAuth(caller): WebAuth,
    Path(photo_id): Path<String>,
) -> Result<Json<api::WebPhoto>, ApiError> {
    let user_id = &caller.user.id;
    if !super::is_catalog_id(&photo_id) {
        return Err(ApiError::not_found("photo"));
    }
    let photo = state
        .catalog()
        .photo(user_id, &PhotoId::new(photo_id))
        .await?
        .ok_or_else(|| ApiError::not_found("photo"))?;
    let mut resources = Vec::with_capacity(photo.resources.len());
    for r in &photo.resources {
        resources.push(api::WebResource {
            resource_type: r.resource_type,
            state: r.state.as_str().to_owned(),
            reason: r.reason.clone(),
            size: r.declared_size,
            sha256: r.stored.as_ref().map(|s| s.sha256.clone()),
            url: match &r.stored {
                Some(stored) => presign(&state, user_id, &stored.key).await?,
                None => None,
            },
        });
    }
    Ok(Json(api::WebPhoto {
        item: item(&state, user_id, &photo.listed).await?,
        cloud_guid: photo.cloud_guid,
        fingerprint: photo.fingerprint,
        subtype: photo.subtype,
        live_photo: photo.live_photo,
        duration_ms: photo.duration_ms,
        time_zone: photo.time_zone,
        modified_at: photo.modified_at,
        hidden: photo.hidden,
        trashed: photo.trashed,
        latitude: photo.latitude,
        longitude: photo.longitude,
        original_filename: photo.original_filename,
        uti: photo.uti,
        edited: photo.edited,
        title: photo.title,
        caption: photo.caption,
        keywords: photo.keywords,
        people: photo.people,
        albums: photo.albums,
        resources,
        enrichments: photo
            .enrichments
            .into_iter()
            .map(|e| api::WebEnrichment {
                kind: e.kind,
                result: e.result,
                updated_at: e.updated_at,
            })
            .collect(),
    }))
}

/// `t|<taken_at ms>|<photo id>` back to a keyset position.
fn parse_position(payload: &str) -> Result<TimelineKey, ApiError> {
    let bad = || {
        ApiError::bad_request(
            ErrorCode::InvalidCursor,
            "cursor: not a cursor this list handed out",
        )
    };
    let mut parts = payload.splitn(3, '|');
    let (Some("t"), Some(taken), Some(id)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad());
    };
    Ok(TimelineKey {
        taken_at_ms: taken.parse().map_err(|_| bad())?,
        photo_id: id.to_owned(),
    })
}
