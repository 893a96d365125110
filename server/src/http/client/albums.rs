//! `POST /client/iphoto/albums`: every album of a library, membership replaced atomically.

use api::ErrorCode;
use axum::extract::State;
use axum::http::StatusCode;

use crate::catalog::AlbumUpsert;
use crate::http::AppState;
use crate::http::auth::ClientAuth;
use crate::http::error::ApiError;
use crate::http::extract::Json;

/// Most albums in one request.
const MAX_ALBUMS: usize = 20_000;

/// Replaces the library's albums and folders.
#[utoipa::path(post, path = "/client/iphoto/albums", tag = "client", operation_id = "post_albums",
    request_body = api::AlbumsRequest,
    responses((status = 200, body = api::AlbumsAnswer), (status = 400, body = api::ErrorBody, description = "not JSON, or not the JSON this route takes"),
        (status = 401, body = api::ErrorBody), (status = 403, body = api::ErrorBody),
        (status = 413, body = api::ErrorBody, description = "a body over 16 MiB, or more items than the server takes"),
        (status = 415, body = api::ErrorBody, description = "a Content-Type other than application/json"),
        (status = 422, body = api::ErrorBody)),
    security(("bearer" = ["client"])))]
#[tracing::instrument(skip_all, fields(albums = request.albums.len()))]
pub(crate) async fn post_albums(
    State(state): State<AppState>,
    ClientAuth(caller): ClientAuth,
    Json(request): Json<api::AlbumsRequest>,
) -> Result<Json<api::AlbumsAnswer>, ApiError> {
    if request.albums.len() > MAX_ALBUMS {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::BatchTooLarge,
            format!(
                "albums: {} in one request, at most {MAX_ALBUMS}",
                request.albums.len()
            ),
        ));
    }
    super::check_library_id("libraryId", &request.library_id)?;
    let library = state
        .catalog()
        .ensure_library(&caller.user.id, &request.library_id)
        .await?;
    let albums = request.albums.into_iter().map(AlbumUpsert::from).collect();
    let r = state
        .catalog()
        .replace_albums(&caller.user.id, &library.id, albums)
        .await?;
    Ok(Json(api::AlbumsAnswer {
        created: r.created,
        updated: r.updated,
        unchanged: r.unchanged,
        deleted: r.deleted,
        unknown_members: r.unknown_members,
        version: r.version,
    }))
}
