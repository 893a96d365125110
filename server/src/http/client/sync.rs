//! `POST /client/iphoto/sync`: a batch of photo metadata, upserted by identity.

use api::ErrorCode;
use axum::extract::State;
use axum::http::StatusCode;

use crate::catalog::{ItemOutcome, PhotoUpsert};
use crate::http::AppState;
use crate::http::auth::ClientAuth;
use crate::http::error::ApiError;
use crate::http::extract::Json;

/// Upserts a batch; each item gets its own outcome and the resources the server still needs.
#[utoipa::path(post, path = "/client/iphoto/sync", tag = "client", operation_id = "post_sync",
    request_body = api::SyncRequest,
    responses((status = 200, body = api::SyncAnswer), (status = 400, body = api::ErrorBody, description = "not JSON, or not the JSON this route takes"),
        (status = 401, body = api::ErrorBody), (status = 403, body = api::ErrorBody),
        (status = 413, body = api::ErrorBody, description = "a body over 16 MiB, or more items than the server takes"),
        (status = 415, body = api::ErrorBody, description = "a Content-Type other than application/json"),
        (status = 422, body = api::ErrorBody)),
    security(("bearer" = ["client"])))]
#[tracing::instrument(skip_all, fields(items = request.items.len()))]
pub(crate) async fn post_sync(
    State(state): State<AppState>,
    ClientAuth(caller): ClientAuth,
    Json(request): Json<api::SyncRequest>,
) -> Result<Json<api::SyncAnswer>, ApiError> {
    let max = state.settings().max_sync_batch;
    if request.items.len() > max {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::BatchTooLarge,
            format!("items: {} in one batch, at most {max}", request.items.len()),
        ));
    }
    super::check_library_id("libraryId", &request.library_id)?;
    let library = state
        .catalog()
        .ensure_library(&caller.user.id, &request.library_id)
        .await?;
    let items = request.items.into_iter().map(PhotoUpsert::from).collect();
    let result = state
        .catalog()
        .sync_photos(&caller.user.id, &library.id, items)
        .await?;
    let results = result
        .results
        .into_iter()
        .map(|r| {
            let (outcome, reason) = match r.outcome {
                ItemOutcome::Created => (api::SyncOutcome::Created, None),
                ItemOutcome::Updated => (api::SyncOutcome::Updated, None),
                ItemOutcome::Unchanged => (api::SyncOutcome::Unchanged, None),
                ItemOutcome::Rejected { reason } => (api::SyncOutcome::Rejected, Some(reason)),
            };
            api::SyncResult {
                local_identifier: r.local_identifier,
                outcome,
                reason,
                needs_upload: r.needs_upload,
            }
        })
        .collect();
    Ok(Json(api::SyncAnswer {
        results,
        version: result.version,
    }))
}
