//! `GET /client/iphoto/upload/pending`: what the server still needs, keyset-paged. `library=` narrows it to
//! what one library (one Mac) is asked to upload: of a photo two Macs of one iCloud library share, each
//! resource is listed for one of them only, so nothing is uploaded twice.

use api::ErrorCode;
use axum::extract::State;

use crate::catalog::{PendingQuery, PendingReason};
use crate::http::AppState;
use crate::http::auth::ClientAuth;
use crate::http::error::ApiError;
use crate::http::extract::{Json, Query};

/// Query of the pending list.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct PendingParams {
    /// Page size, 1 to 1000 (default 100); outside is a 400.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    /// `nextCursor` of the previous page: the last item's photo id and resource.
    #[param(pattern = r"^[0-9a-fA-F]{32}/(original|live_video|render|raw)$")]
    cursor: Option<String>,
    /// Only what this library (the agent's id, as in sync requests) is asked to upload.
    #[param(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]+$"
    )]
    library: Option<String>,
}

/// Lists resources whose bytes the server still needs, with the reason.
#[utoipa::path(get, path = "/client/iphoto/upload/pending", tag = "client", operation_id = "get_pending_uploads",
    params(PendingParams),
    responses((status = 200, body = api::PendingPage), (status = 400, body = api::ErrorBody),
        (status = 401, body = api::ErrorBody), (status = 403, body = api::ErrorBody),
        (status = 404, body = api::ErrorBody, description = "`library` is not one of the caller's libraries"),
        (status = 422, body = api::ErrorBody, description = "a cursor this list did not hand out")),
    security(("bearer" = ["client"])))]
pub(crate) async fn get_pending(
    State(state): State<AppState>,
    ClientAuth(caller): ClientAuth,
    Query(params): Query<PendingParams>,
) -> Result<Json<api::PendingPage>, ApiError> {
    let limit = params.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidQuery,
            format!("limit: {limit} is outside 1..=1000"),
        ));
    }
    let library_id = match params.library.as_deref() {
        None => None,
        Some(key) => {
            if key.is_empty() || key.chars().count() > 200 || key.chars().any(char::is_control) {
                return Err(ApiError::bad_request(
                    ErrorCode::InvalidQuery,
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
