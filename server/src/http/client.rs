//! The client surface (scope `client`): what the Mac agent calls.

pub(crate) mod albums;
pub(crate) mod pending;
pub(crate) mod resumable;
pub(crate) mod stats;
pub(crate) mod sync;
pub(crate) mod upload;

use axum::Router;
use axum::routing::{get, head, post};

use super::AppState;
use super::error::ApiError;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/client/iphoto/sync", post(sync::post_sync))
        .route("/client/iphoto/albums", post(albums::post_albums))
        .route("/client/iphoto/upload/pending", get(pending::get_pending))
        .route("/client/iphoto/stats", get(stats::get_stats))
}

/// The upload routes (plain and resumable), apart: it is exempt from the request timeout and the JSON body limit (a body of
/// gigabytes takes as long as it takes while bytes keep coming; the body idle timeout still applies).
pub(super) fn upload_router() -> Router<AppState> {
    Router::new()
        .route(
            "/client/iphoto/upload/{*local_identifier}",
            post(upload::post_upload).options(resumable::options_upload),
        )
        .route(
            "/client/iphoto/uploads/{id}",
            head(resumable::head_upload)
                .patch(resumable::patch_upload)
                .delete(resumable::delete_upload)
                .options(resumable::options_upload),
        )
}

/// The agent's library id: 1 to 200 characters.
fn check_library_id(id: &str) -> Result<(), ApiError> {
    if id.is_empty() || id.len() > 200 || id.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            "invalid_field",
            "libraryId: must be 1 to 200 printable characters",
        ));
    }
    Ok(())
}
