//! `GET /my/photos/people` and `GET /my/photos/keywords`: the names the caller's photos carry, each with
//! how many photos carry it, most first. A name is usable as is in the timeline's `person` and `keyword`
//! filters (exact) and finds the same photos, among others, as a search `q`.

use axum::extract::State;

use crate::catalog::{TagCount, TagKind, UserId};
use crate::http::AppState;
use crate::http::auth::WebAuth;
use crate::http::error::ApiError;
use crate::http::extract::Json;

/// The people named in the caller's photos (the default view: not hidden, not trashed), with counts.
#[utoipa::path(get, path = "/my/photos/people", tag = "web", operation_id = "get_people",
    responses((status = 200, body = api::WebTags), (status = 401, body = api::ErrorBody),
        (status = 403, body = api::ErrorBody)),
    security(("bearer" = ["web"])))]
#[tracing::instrument(skip_all)]
pub(crate) async fn get_people(
    state: State<AppState>,
    caller: WebAuth,
) -> Result<Json<api::WebTags>, ApiError> {
    tags(state, caller, TagKind::Person).await
}

/// The keywords of the caller's photos (the default view: not hidden, not trashed), with counts.
#[utoipa::path(get, path = "/my/photos/keywords", tag = "web", operation_id = "get_keywords",
    responses((status = 200, body = api::WebTags), (status = 401, body = api::ErrorBody),
        (status = 403, body = api::ErrorBody)),
    security(("bearer" = ["web"])))]
#[tracing::instrument(skip_all)]
pub(crate) async fn get_keywords(
    state: State<AppState>,
    caller: WebAuth,
) -> Result<Json<api::WebTags>, ApiError> {
    tags(state, caller, TagKind::Keyword).await
}

async fn tags(
    State(state): State<AppState>,
    WebAuth(caller): WebAuth,
    kind: TagKind,
) -> Result<Json<api::WebTags>, ApiError> {
    let counts = tag_counts(&state, &caller.user.id, kind).await?;
    Ok(Json(api::WebTags {
        items: counts
            .into_iter()
            .map(|t| api::WebTag {
                name: t.name,
                count: t.count,
            })
            .collect(),
    }))
}

/// The user's people or keywords with counts, most photos first, then by name: what the JSON routes and the
/// people and keywords pages both list.
pub(crate) async fn tag_counts(
    state: &AppState,
    user_id: &UserId,
    kind: TagKind,
) -> Result<Vec<TagCount>, ApiError> {
    Ok(state.catalog().tag_counts(user_id, kind).await?)
}
