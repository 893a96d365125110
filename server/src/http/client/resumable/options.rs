//! `OPTIONS` on the upload route and on an upload resource: the limits every resumable upload has
//! (`Upload-Limit`), answered without a token.

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse as _, Response};

use super::limits;
use crate::http::AppState;

/// What an upload resource takes: `Upload-Limit`.
#[utoipa::path(options, path = "/client/iphoto/uploads/{id}", tag = "client", operation_id = "options_upload",
    description = "No token needed: the limits are the same for every upload.",
    params(("id" = String, Path, min_length = 1, description = "any upload resource")),
    responses((status = 204, description = "the limits", headers(
        ("Upload-Limit" = String, description = "`max-size=…, min-append-size=…, max-age=…`"),
        ("Allow" = String, description = "`HEAD, PATCH, DELETE, OPTIONS`")))))]
pub(crate) async fn options_upload(State(state): State<AppState>) -> Response {
    options(&state, "HEAD, PATCH, DELETE, OPTIONS")
}

/// What the upload route takes for a resumable upload: `Upload-Limit`.
#[utoipa::path(options, path = "/client/iphoto/upload/{localIdentifier}", tag = "client",
    operation_id = "options_upload_route",
    description = "No token needed: the limits are the same for every upload.",
    params(("localIdentifier" = String, Path, min_length = 1, description = "any asset's identifier")),
    responses((status = 204, description = "the limits", headers(
        ("Upload-Limit" = String, description = "`max-size=…, min-append-size=…, max-age=…`"),
        ("Allow" = String, description = "`POST, OPTIONS`")))))]
pub(crate) async fn options_upload_route(State(state): State<AppState>) -> Response {
    options(&state, "POST, OPTIONS")
}

/// A 204 with `Upload-Limit` and `allow`.
fn options(state: &AppState, allow: &'static str) -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    limits(state).insert(response.headers_mut());
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    response
}
