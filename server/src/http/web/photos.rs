//! `GET /my/photos/` (the timeline) and `GET /my/photos/{id}` (one photo).

use api::ErrorCode;
use axum::extract::State;
use chrono::{DateTime, NaiveDate};

use super::{CursorKey, cursor, item, items, limit, presign};
use crate::catalog::{PhotoFilter, PhotoId, TimelineKey, TimelineQuery};
use crate::http::AppState;
use crate::http::auth::WebAuth;
use crate::http::error::ApiError;
use crate::http::extract::{Json, Path, Query};

/// Query of the timeline.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListParams {
    /// Page size, 1 to 500 (default 100); outside is a 400, never clamped.
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u32>,
    /// `nextCursor` of the previous page of this same list (opaque and signed: any other value is a 400).
    cursor: Option<String>,
    /// Only members of this album (its id).
    album: Option<String>,
    /// Only photos or only videos.
    kind: Option<api::AssetKind>,
    /// Only favourites (`true`) or only the others (`false`).
    favorite: Option<bool>,
    /// Taken at or after: an RFC 3339 time, or a `YYYY-MM-DD` date meaning its midnight UTC.
    #[param(schema_with = time_or_date)]
    from: Option<String>,
    /// Taken before: an RFC 3339 time, or a `YYYY-MM-DD` date meaning its midnight UTC.
    #[param(schema_with = time_or_date)]
    to: Option<String>,
    /// Hidden photos too (default false).
    include_hidden: Option<bool>,
    /// Photos in Recently Deleted too (default false).
    include_trashed: Option<bool>,
}

/// The schema of `from` and `to`: a date-time or a date.
fn time_or_date() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{AnyOfBuilder, KnownFormat, ObjectBuilder, SchemaFormat, Type};
    let string = |format| {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(format)))
    };
    AnyOfBuilder::new()
        .item(string(KnownFormat::DateTime))
        .item(string(KnownFormat::Date))
        .into()
}

/// Lists the caller's photos, newest first (ties by id), keyset-paged.
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
    let filter = PhotoFilter {
        album_id: params.album.clone(),
        kind: params.kind,
        favorite: params.favorite,
        from_ms: params.from.as_deref().map(|t| time("from", t)).transpose()?,
        to_ms: params.to.as_deref().map(|t| time("to", t)).transpose()?,
        include_hidden: params.include_hidden.unwrap_or(false),
        include_trashed: params.include_trashed.unwrap_or(false),
    };
    let key: &CursorKey = &state.settings().cursor_key;
    let scope = list_scope(caller.user.id.as_str(), &filter);
    let after = match &params.cursor {
        None => None,
        Some(text) => Some(parse_position(&key.open(&scope, text)?)?),
    };
    let query = TimelineQuery { filter, limit, after };
    let mut rows = state.catalog().list_photos(&caller.user.id, &query).await?;
    let next_cursor = if rows.len() > limit as usize {
        rows.truncate(limit as usize);
        rows.last()
            .map(|last| key.seal(&scope, &format!("t|{}|{}", last.taken_at_ms, last.id)))
    } else {
        None
    };
    Ok(Json(api::WebPhotoPage {
        items: items(&state, &caller.user.id, &rows).await?,
        next_cursor,
    }))
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

/// What a timeline cursor is bound to: the user and every filter.
fn list_scope(user_id: &str, filter: &PhotoFilter) -> String {
    let kind = filter.kind.map(|k| format!("{k:?}")).unwrap_or_default();
    cursor::scope(&[
        "timeline",
        user_id,
        filter.album_id.as_deref().unwrap_or(""),
        &kind,
        &format!("{:?}", filter.favorite),
        &format!("{:?}", filter.from_ms),
        &format!("{:?}", filter.to_ms),
        &filter.include_hidden.to_string(),
        &filter.include_trashed.to_string(),
    ])
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

/// An RFC 3339 time or a `YYYY-MM-DD` date (midnight UTC), as epoch milliseconds. The date is exactly
/// RFC 3339's `full-date` (what the document's `format: date` says): four, two and two digits.
fn time(field: &str, text: &str) -> Result<i64, ApiError> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.timestamp_millis());
    }
    let full_date = text.len() == 10
        && text.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    if let Some(t) = NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .filter(|_| full_date)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
    {
        return Ok(t.and_utc().timestamp_millis());
    }
    Err(ApiError::bad_request(
        ErrorCode::InvalidQuery,
        format!("{field}: {text:?} is not an RFC 3339 time or a YYYY-MM-DD date"),
    ))
}
