//! The admin surface (scope `admin`): operator actions on a named user's catalog. Thin over the catalog, like
//! the `iphoto-server` CLI commands that do the same.

use axum::extract::State;
use chrono::Utc;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::AdminAuth;
use super::error::ApiError;
use super::extract::Json;
use crate::catalog::{RestoreTarget, parse_as_of};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::default().routes(routes!(post_restore))
}

/// Restores a photo, an album or a library of a user as it was at a time.
#[utoipa::path(post, path = "/admin/restore", tag = "admin", operation_id = "post_restore",
    description = "Restores one photo, one album (title, order, membership and its member photos) or a whole \
        library as of `asOf`: each photo gets its latest metadata at or before that time (deleted since: it \
        comes back; created since: it becomes a tombstone) and each resource the stored object it had then. \
        The restore is one new catalog version, so it shows in `GET /my/photos/changes` and in the photos' \
        history; nothing differing leaves the version alone. Sync is one-way: when the Mac syncs again, \
        whatever differs on the Mac overwrites the restored state. History older than the retention \
        (`--trash-days`) is gone, so a restore cannot reach before it.",
    request_body = api::RestoreRequest,
    responses((status = 200, body = api::RestoreAnswer),
        (status = 400, body = api::ErrorBody, description = "not JSON, or not the JSON this route takes"),
        (status = 401, body = api::ErrorBody), (status = 403, body = api::ErrorBody),
        (status = 404, body = api::ErrorBody, description = "no such user, or no such photo, album or library of theirs"),
        (status = 413, body = api::ErrorBody, description = "a body over 16 MiB"),
        (status = 415, body = api::ErrorBody, description = "a Content-Type other than application/json"),
        (status = 422, body = api::ErrorBody, description = "`asOf` in the future")),
    security(("bearer" = ["admin"])))]
#[tracing::instrument(skip_all, fields(user_id))]
pub(crate) async fn post_restore(
    State(state): State<AppState>,
    AdminAuth(_admin): AdminAuth,
    Json(request): Json<api::RestoreRequest>,
) -> Result<Json<api::RestoreAnswer>, ApiError> {
    let user = state
        .catalog()
        .find_user_by_name(&request.user)
        .await?
        .ok_or_else(|| ApiError::not_found("user"))?;
    let target = RestoreTarget::from_ids(request.photo_id, request.album_id, request.library_id)?;
    let as_of = parse_as_of("asOf", &request.as_of)?;
    tracing::Span::current().record("user_id", tracing::field::display(&user.id));
    let report = state
        .catalog()
        .restore(&user.id, &target, as_of, Utc::now())
        .await?;
    tracing::info!(
        version = report.version,
        photos = report.photos,
        albums = report.albums,
        "restored"
    );
    Ok(Json(api::RestoreAnswer {
        version: report.version,
        photos: report.photos,
        tombstoned: report.tombstoned,
        albums: report.albums,
    }))
}
