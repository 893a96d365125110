//! The client surface (scope `client`): what the Mac agent calls.

pub(crate) mod albums;
pub(crate) mod pending;
pub(crate) mod resumable;
pub(crate) mod stats;
pub(crate) mod sync;
pub(crate) mod upload;

use api::ErrorCode;
use tracing::Instrument as _;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::error::ApiError;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::default()
        .routes(routes!(sync::post_sync))
        .routes(routes!(albums::post_albums))
        .routes(routes!(pending::get_pending))
        .routes(routes!(stats::get_stats))
}

/// The upload routes (plain and resumable), apart: they are exempt from the request timeout and the JSON body
/// limit (a body of gigabytes takes as long as it takes while bytes keep coming; the body idle timeout still applies).
pub(super) fn upload_router() -> OpenApiRouter<AppState> {
    super::openapi::routes_with_tail(
        OpenApiRouter::default(),
        routes!(upload::post_upload, resumable::options::options_upload_route),
        "localIdentifier",
    )
    .routes(routes!(
        resumable::head_upload,
        resumable::patch_upload,
        resumable::delete_upload,
        resumable::options::options_upload
    ))
}

/// The agent's library id named `field`: 1 to 200 characters, none a control character (the document's
/// `minLength`, `maxLength` and `pattern`, which count characters, not bytes).
fn check_library_id(field: &str, id: &str) -> Result<(), ApiError> {
    let length = id.chars().count();
    if length == 0 || length > 200 || id.chars().any(char::is_control) {
        let code = if field == "library" {
            ErrorCode::InvalidQuery
        } else {
            ErrorCode::InvalidField
        };
        return Err(ApiError::bad_request(
            code,
            format!("{field}: must be 1 to 200 characters, none a control character"),
        ));
    }
    Ok(())
}

/// Runs an upload's `work` to its end in a task of its own, in the request's span: a client gone once its body
/// is in (killed, or given up waiting for the answer) drops the handler with its connection, and what the store
/// already has must still be recorded, or the next sync sends the same bytes again.
async fn to_the_end<T: Send + 'static>(
    work: impl Future<Output = Result<T, ApiError>> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::spawn(work.in_current_span())
        .await
        .unwrap_or_else(|e| Err(ApiError::internal(&e)))
}
