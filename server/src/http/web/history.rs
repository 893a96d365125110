//! `GET /my/photos/{id}/history` (a photo's versions) and `GET /my/photos/changes` (the changes feed, for
//! web clients and ETLs that follow the catalog without re-listing it).

use api::ErrorCode;
use axum::extract::State;

use super::item;
use crate::catalog::{ChangesSince, PhotoId};
use crate::http::AppState;
use crate::http::auth::WebAuth;
use crate::http::error::ApiError;
use crate::http::extract::{Json, Path, Query};

/// Changes per page when the client names no `limit`.
pub const DEFAULT_CHANGES_LIMIT: u32 = 100;
/// Largest changes page; above is a 400.
pub const MAX_CHANGES_LIMIT: u32 = 1000;

/// Query of the changes feed.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ChangesParams {
    /// A catalog version (default `0`: everything), or the `nextSince` of the previous page (`V:photoId`).
    #[param(pattern = r"^[0-9]{1,18}(:[0-9A-Za-z]{1,64})?$")]
    since: Option<String>,
    /// Page size, 1 to 1000 (default 100); outside is a 400.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

/// The versions of one of the caller's photos, newest first.
#[utoipa::path(get, path = "/my/photos/{photoId}/history", tag = "web", operation_id = "get_photo_history",
    description = "Every version of the photo kept by the retention (`--trash-days`, default 30), newest \
        first: what changed, when, from which library, and each resource's stored SHA-256 at that version. \
        A photo removed on the Mac keeps its history until its tombstone is purged.",
    params(("photoId" = String, Path, description = "the photo's id")),
    responses((status = 200, body = api::WebPhotoHistory), (status = 401, body = api::ErrorBody),
        (status = 403, body = api::ErrorBody), (status = 404, body = api::ErrorBody)),
    security(("bearer" = ["web"])))]
#[tracing::instrument(skip_all)]
pub(crate) async fn get_photo_history(
    State(state): State<AppState>,
    WebAuth(caller): WebAuth,
    Path(photo_id): Path<String>,
) -> Result<Json<api::WebPhotoHistory>, ApiError> {
    if !super::is_catalog_id(&photo_id) {
        return Err(ApiError::not_found("photo"));
    }
    let versions = state
        .catalog()
        .photo_history(&caller.user.id, &PhotoId::new(photo_id))
        .await?
        .ok_or_else(|| ApiError::not_found("photo"))?;
    Ok(Json(api::WebPhotoHistory {
        versions: versions
            .into_iter()
            .map(|v| api::WebPhotoVersion {
                version: v.version,
                changed_at: v.changed_at,
                change: v.change.as_str().to_owned(),
                library_id: v.library_id.as_str().to_owned(),
                changed_fields: v.changed_fields,
                metadata: v.snapshot,
                resources: v
                    .resources
                    .into_iter()
                    .map(|(resource_type, sha256)| api::WebVersionResource {
                        resource_type,
                        sha256,
                    })
                    .collect(),
            })
            .collect(),
    }))
}

/// The caller's photos changed after `since`, in version order.
#[utoipa::path(get, path = "/my/photos/changes", tag = "web", operation_id = "get_photo_changes",
    description = "Upserts and deletes after `since`, in version order (ties by photo id), each photo once \
        with its current state. Start with `since=0`, then pass `nextSince` until `hasMore` is false; keep the \
        last `nextSince` to ask again later. A delete is listed until its tombstone is purged after the \
        retention (`--trash-days`): a follower that falls further behind should list the catalog again.",
    params(ChangesParams),
    responses((status = 200, body = api::WebChanges), (status = 400, body = api::ErrorBody),
        (status = 401, body = api::ErrorBody), (status = 403, body = api::ErrorBody)),
    security(("bearer" = ["web"])))]
#[tracing::instrument(skip_all)]
pub(crate) async fn get_changes(
    State(state): State<AppState>,
    WebAuth(caller): WebAuth,
    Query(params): Query<ChangesParams>,
) -> Result<Json<api::WebChanges>, ApiError> {
    let limit = params.limit.unwrap_or(DEFAULT_CHANGES_LIMIT);
    if !(1..=MAX_CHANGES_LIMIT).contains(&limit) {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidQuery,
            format!("limit: {limit} is outside 1..={MAX_CHANGES_LIMIT}"),
        ));
    }
    let since = match params.since.as_deref() {
        None => ChangesSince::default(),
        Some(text) => parse_since(text)?,
    };
    let user_id = &caller.user.id;
    let mut rows = state.catalog().photo_changes(user_id, &since, limit).await?;
    let has_more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let next_since = match rows.last() {
        None => format_since(&since),
        // Cut inside a version (one sync batch is one version): resume after this photo.
        Some(last) if has_more => format!("{}:{}", last.version, last.photo_id),
        Some(last) => last.version.to_string(),
    };
    let mut changes = Vec::with_capacity(rows.len());
    for row in rows {
        let photo = match &row.photo {
            Some(photo) => Some(item(&state, user_id, photo).await?),
            None => None,
        };
        changes.push(api::WebChange {
            version: row.version,
            photo_id: row.photo_id.as_str().to_owned(),
            change: if photo.is_some() { "upsert" } else { "delete" }.to_owned(),
            photo,
        });
    }
    Ok(Json(api::WebChanges {
        changes,
        next_since,
        has_more,
    }))
}

/// `V` or `V:photoId` (a `nextSince` that resumes inside version `V`).
fn parse_since(text: &str) -> Result<ChangesSince, ApiError> {
    let bad = || {
        ApiError::bad_request(
            ErrorCode::InvalidQuery,
            format!("since: {text:?} is not a version (a non-negative integer) or a nextSince"),
        )
    };
    let (version, photo_id) = match text.split_once(':') {
        Some((version, id)) => (version, Some(id)),
        None => (text, None),
    };
    // Exactly what the document's pattern admits: 1 to 18 digits (no sign, always inside an i64).
    if version.is_empty() || version.len() > 18 || !version.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let version: i64 = version.parse().map_err(|_| bad())?;
    if let Some(id) = photo_id
        && (id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_alphanumeric()))
    {
        return Err(bad());
    }
    Ok(ChangesSince {
        version,
        photo_id: photo_id.map(str::to_owned),
    })
}

fn format_since(since: &ChangesSince) -> String {
    match &since.photo_id {
        Some(id) => format!("{}:{id}", since.version),
        None => since.version.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_is_a_version_or_a_version_and_an_id() {
        assert_eq!(parse_since("0").unwrap(), ChangesSince::default());
        let inside = parse_since("12:0a1b").unwrap();
        assert_eq!((inside.version, inside.photo_id.as_deref()), (12, Some("0a1b")));
        assert_eq!(format_since(&inside), "12:0a1b");
        assert_eq!(
            parse_since("999999999999999999").unwrap().version,
            999_999_999_999_999_999
        );
        for bad in [
            "",
            "-1",
            "+1",
            "x",
            "1.5",
            "3:",
            "3:a/b",
            "3:a:b",
            " 3",
            "1000000000000000000",
        ] {
            assert!(parse_since(bad).is_err(), "{bad:?}");
        }
    }
}
