//! `GET /client/iphoto/upload/pending`: what the server still needs, keyset-paged. `library=` narrows it to
//! what one library (one Mac) is asked to upload: of a photo two Macs of one iCloud library share, each
//! resource is listed for one of them only, so nothing is uploaded twice.

use axum::extract::State;

use crate::catalog::{PendingQuery, PendingReason};
use crate::http::AppState;
use crate::http::auth::ClientAuth;
use crate::http::error::ApiError;
use crate::http::extract::{Json, Query};

/// Query of the pending list.
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct PendingParams {
    /// Page size, 1..=1000 (default 100).
    limit: Option<u32>,
    /// `nextCursor` of the previous page.
    cursor: Option<String>,
    /// Only what this library (the agent's id) is asked to upload.
    library: Option<String>,
}

/// Lists resources whose bytes the server still needs, with the reason.
#[utoipa::path(get, path = "/client/iphoto/upload/pending", tag = "client", operation_id = "get_pending_uploads",
    params(("limit" = Option<u32>, Query, description = "page size, 1..=1000, default 100"),
        ("cursor" = Option<String>, Query, description = "nextCursor of the previous page"),
        ("library" = Option<String>, Query, description = "only what this library (the agent's id, as in sync requests) is asked to upload")),
    responses((status = 200, body = api::PendingPage), (status = 400, body = api::ErrorBody), (status = 401, body = api::ErrorBody),
        (status = 404, body = api::ErrorBody, description = "`library` is not one of the caller's libraries")),
    security(("bearer" = ["client"])))]
pub(crate) async fn get_pending(
    State(state): State<AppState>,
    ClientAuth(caller): ClientAuth,
    Query(params): Query<PendingParams>,
) -> Result<Json<api::PendingPage>, ApiError> {
    let limit = params.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("limit: {limit} is outside 1..=1000"),
        ));
    }
    let library_id = match params.library.as_deref() {
        None => None,
        Some(key) => {
            if key.is_empty() || key.len() > 200 || key.chars().any(char::is_control) {
                return Err(ApiError::bad_request(
                    "invalid_query",
                    "library: must be 1 to 200 printable characters",
                ));
            }
            // Another user's library key is simply not one of the caller's.
            let library = state.catalog().library(&caller.user.id, key).await?;
            Some(library.ok_or_else(|| ApiError::not_found("library"))?.id)
        }
    };
    let query = PendingQuery {
        library_id,
        limit,
        cursor: params.cursor,
    };
    let page = state.catalog().pending_uploads(&caller.user.id, &query).await?;
    let items = page
        .items
        .into_iter()
        .map(|p| api::PendingUpload {
            library_id: p.library_key,
            local_identifier: p.local_identifier,
            resource: p.resource,
            reason: p.reason.code().to_owned(),
            detail: match p.reason {
                PendingReason::Failed { detail } => Some(detail),
                _ => None,
            },
            size: p.declared_size,
            sha256: p.declared_sha256,
        })
        .collect();
    Ok(Json(api::PendingPage {
        items,
        next_cursor: page.next_cursor,
    }))
}
