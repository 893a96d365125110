//! `GET /my/photos/albums` (albums and folders with counts and covers) and `GET /my/photos/albums/{albumId}`
//! (one album and a page of its photos in the album's order).

use api::ErrorCode;
use axum::extract::State;

use super::{cursor, item, items};
use crate::catalog::{AlbumKind, AlbumPageQuery, AlbumSummary, ListedPhoto, UserId};
use crate::http::AppState;
use crate::http::auth::WebAuth;
use crate::http::error::ApiError;
use crate::http::extract::{Json, Path, Query};

/// Query of an album page.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct AlbumParams {
    /// Page size, 1 to 500 (default 100); outside is a 400, never clamped.
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    /// `nextCursor` of the previous page of this album (opaque and signed: any other value is a 400).
    pub cursor: Option<String>,
}

/// The caller's albums and folders, in the Mac's display order, each with its count and cover.
#[utoipa::path(get, path = "/my/photos/albums", tag = "web", operation_id = "get_albums",
    responses((status = 200, body = api::WebAlbums), (status = 401, body = api::ErrorBody),
        (status = 403, body = api::ErrorBody)),
    security(("bearer" = ["web"])))]
#[tracing::instrument(skip_all)]
pub(crate) async fn get_albums(
    State(state): State<AppState>,
    WebAuth(caller): WebAuth,
) -> Result<Json<api::WebAlbums>, ApiError> {
    let rows = state.catalog().list_albums(&caller.user.id, None).await?;
    let mut albums = Vec::with_capacity(rows.len());
    for row in &rows {
        albums.push(album(&state, &caller.user.id, row).await?);
    }
    Ok(Json(api::WebAlbums { albums }))
}

/// One album and a page of its photos, in the album's order.
#[utoipa::path(get, path = "/my/photos/albums/{albumId}", tag = "web", operation_id = "get_album",
    params(("albumId" = String, Path, description = "the album's id (from the album list)"), AlbumParams),
    responses((status = 200, body = api::WebAlbumPage), (status = 400, body = api::ErrorBody),
        (status = 401, body = api::ErrorBody), (status = 403, body = api::ErrorBody),
        (status = 404, body = api::ErrorBody)),
    security(("bearer" = ["web"])))]
#[tracing::instrument(skip_all)]
pub(crate) async fn get_album(
    State(state): State<AppState>,
    WebAuth(caller): WebAuth,
    Path(album_id): Path<String>,
    Query(params): Query<AlbumParams>,
) -> Result<Json<api::WebAlbumPage>, ApiError> {
    let user_id = &caller.user.id;
    let page = album_page(&state, user_id, &album_id, params.limit, params.cursor.as_deref()).await?;
    Ok(Json(api::WebAlbumPage {
        album: album(&state, user_id, &page.album).await?,
        items: items(&state, user_id, &page.rows).await?,
        next_cursor: page.next_cursor,
    }))
}

/// A page of one album's photos, in the album's order, as the catalog has them: what the JSON route and the
/// album's web page both show, so the two page alike and take each other's cursors.
#[derive(Debug)]
pub(crate) struct AlbumPage {
    /// The album, with its count and cover.
    pub album: AlbumSummary,
    /// Up to `limit` members after the cursor's.
    pub rows: Vec<ListedPhoto>,
    /// The signed cursor of the next page, when there is one.
    pub next_cursor: Option<String>,
}

/// The page of `album_id` (the user's, else a 404) after `cursor` (one this album handed out, else a 400),
/// `limit` rows (1 to 500, default 100, else a 400).
pub(crate) async fn album_page(
    state: &AppState,
    user_id: &UserId,
    album_id: &str,
    limit: Option<u32>,
    cursor: Option<&str>,
) -> Result<AlbumPage, ApiError> {
    let limit = super::limit(limit)?;
    // Catalog ids are 32 hex digits: what cannot be one (a NUL byte, which PostgreSQL refuses in text, or
    // more than any id's length) is not found without asking the catalog.
    if album_id.len() > 128 || album_id.chars().any(char::is_control) {
        return Err(ApiError::not_found("album"));
    }
    let summary = state
        .catalog()
        .list_albums(user_id, Some(album_id))
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::not_found("album"))?;
    let key = &state.settings().cursor_key;
    let scope = cursor::scope(&["album", user_id.as_str(), album_id]);
    let after = match cursor {
        None => None,
        Some(text) => Some(parse_position(&key.open(&scope, text)?)?),
    };
    let query = AlbumPageQuery {
        album_id: album_id.to_owned(),
        limit,
        after,
    };
    let mut rows = state.catalog().album_photos(user_id, &query).await?;
    let next_cursor = if rows.len() > limit as usize {
        rows.truncate(limit as usize);
        rows.last()
            .map(|last| key.seal(&scope, &format!("a|{}|{}", last.position, last.id)))
    } else {
        None
    };
    Ok(AlbumPage {
        album: summary,
        rows,
        next_cursor,
    })
}

async fn album(state: &AppState, user_id: &UserId, row: &AlbumSummary) -> Result<api::WebAlbum, ApiError> {
    Ok(api::WebAlbum {
        id: row.id.clone(),
        title: row.title.clone(),
        kind: match row.kind {
            AlbumKind::Album => api::AlbumKind::Album,
            AlbumKind::Folder => api::AlbumKind::Folder,
            AlbumKind::Shared => api::AlbumKind::Shared,
        },
        parent_id: row.parent_id.clone(),
        count: row.count,
        cover: match &row.cover {
            Some(cover) => Some(item(state, user_id, cover).await?),
            None => None,
        },
    })
}

fn parse_position(payload: &str) -> Result<(i64, String), ApiError> {
    let bad = || {
        ApiError::bad_request(
            ErrorCode::InvalidCursor,
            "cursor: not a cursor this list handed out",
        )
    };
    let mut parts = payload.splitn(3, '|');
    let (Some("a"), Some(position), Some(id)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad());
    };
    Ok((position.parse().map_err(|_| bad())?, id.to_owned()))
}
