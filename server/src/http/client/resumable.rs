//! Resumable uploads (draft-ietf-httpbis-resumable-upload-15, interop version 8, and interop versions 3 to 7
//! as Apple's URLSession and older clients speak them).
//!
//! - *Creation* is the upload route itself (`POST /client/iphoto/upload/{localIdentifier}`) with
//!   `Upload-Complete` (or `Upload-Incomplete`): the resource is looked up and its key chosen as for a plain
//!   upload, then an upload resource `/client/iphoto/uploads/{id}` is made and the request's content is its
//!   first append. Its URL is sent in a `104 (Upload Resumption Supported)` interim answer as soon as the
//!   resource exists, before the content is read (hyper cannot send one itself: `http::serve::interim` does),
//!   and again in `Location` on the final answer (201 while incomplete).
//! - `HEAD` on the upload resource: `Upload-Offset`, `Upload-Complete`, `Upload-Length`, `Upload-Limit`.
//! - `PATCH` appends at `Upload-Offset` (`application/partial-upload`); another offset is a 409 carrying the
//!   right one; the append that says `Upload-Complete: ?1` ends the upload and gets the upload route's answer.
//! - `DELETE` cancels: the parts and staging go, the resource is forgotten.
//! - `OPTIONS` on either route gives `Upload-Limit`.
//!
//! The digest is checked at completion against `Repr-Digest` / `X-Content-SHA256`, else the SHA-256
//! declared at sync; a mismatch stores nothing. `Content-Digest` covers one request's content: an append
//! whose content does not match it is not acknowledged at all. Upload state is a catalog row, so any replica
//! answers for any upload; one append at a time holds the row, and a newer request on the same replica ends
//! the older transfer (the client cannot be sending both), as the draft allows.

use api::ErrorCode;
mod append;
pub(crate) mod options;
mod protocol;
mod running;

pub use self::running::Running;

use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse as _, Response};
use chrono::Utc;
use storage::{LibraryLayout, ResumableTarget, StorageKey};

use self::append::{Append, Outcome};
use self::protocol::{Interop, Limits, UPLOAD_LENGTH, UPLOAD_OFFSET, integer};
use super::upload::{Placed, UploadParams, client_digest, content_length, place, too_large};
use crate::catalog::{ResumableUpload, UserId};
use crate::http::AppState;
use crate::http::auth::ClientAuth;
use crate::http::error::ApiError;
use crate::http::extract::Path;
use crate::http::serve::Interim;

use super::upload::{holding, settle};

/// The limits in force.
fn limits(state: &AppState) -> Limits {
    let settings = state.settings();
    Limits {
        max_size: settings.max_upload_bytes,
        min_append_size: settings.resumable_part_size,
        max_age: settings.upload_max_age,
    }
}

/// The upload resource's path.
fn location(id: &str) -> HeaderValue {
    HeaderValue::from_str(&format!("/client/iphoto/uploads/{id}")).unwrap_or(HeaderValue::from_static("/"))
}

/// A creation request: the upload route's request with `Upload-Complete`.
pub(super) struct Creation {
    pub(super) local_identifier: String,
    pub(super) params: UploadParams,
    pub(super) headers: HeaderMap,
    /// The way to send `104` on this request's connection, and the request's HTTP version (none when the
    /// router is called without the server's accept loop, as in-process tests do).
    pub(super) interim: Option<(axum::http::Version, Interim)>,
}

/// Creates a resumable upload on the upload route; the request's content is its first append.
pub(super) async fn create(
    state: AppState,
    user_id: UserId,
    request: Creation,
    body: Body,
) -> Result<Response, ApiError> {
    let Creation {
        local_identifier,
        params,
        headers,
        interim,
    } = request;
    let interop = Interop::of(&headers)?;
    let complete = interop.complete(&headers)?;
    let length = integer(&headers, &UPLOAD_LENGTH)?;
    let repr = protocol::repr_digest(&headers)?;
    let (x_sha, content_digest) = split_client_digest(&headers)?;
    if let (Some(a), Some(b)) = (repr, x_sha)
        && a != b
    {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidHeader,
            "Repr-Digest and X-Content-SHA256 disagree",
        ));
    }
    let max = state.settings().max_upload_bytes;
    if length.or(content_length(&headers)?).is_some_and(|l| l > max) {
        return Err(too_large(max));
    }
    let (_, target) = super::upload::find_target(&state, &user_id, local_identifier, &params).await?;
    let declared = target.declared.as_ref();
    let declared_sha = declared
        .and_then(|d| d.sha256.as_deref())
        .and_then(storage::Sha256Digest::from_hex);
    let announced = repr.or(x_sha);
    let expected = announced.or(declared_sha);
    if announced.is_none()
        && let (Some(declared), Some(length)) = (declared.filter(|_| declared_sha.is_some()), length)
        && declared.size != length
    {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::SizeMismatch,
            format!(
                "Upload-Length: {length} bytes, but the sync declared {}; sync the item again",
                declared.size
            ),
        ));
    }

    // Stored already (this resource's bytes, or content the user has): answered without the body.
    if let Some(expected) = expected {
        let hex = expected.to_hex();
        if let Some(stored) = target.stored.as_ref().filter(|s| s.sha256 == hex) {
            let answer = super::upload::answer(&target, &hex, stored.size, &stored.key, true);
            return Ok(unread(answer.into_response(), interop));
        }
        if let Some(blob) = state.catalog().blob_by_sha(&user_id, &hex).await? {
            let answer = super::upload::link(&state, &user_id, &target, blob, false).await?;
            return Ok(unread(answer.into_response(), interop));
        }
    }
    // As for a plain upload: the bytes go under the library holding the declaration, and another library's
    // bytes are not written there.
    if params.library.is_some() && target.resource_library_id != target.library_id {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            ErrorCode::HeldByAnotherLibrary,
            "this resource is uploaded from another of your libraries (see the pending list of this library)",
        ));
    }
    let layout = LibraryLayout::new(user_id.as_str(), target.resource_library_id.as_str())?;
    let ext = super::upload::extension(&target.original_filename, &target.uti);
    let key = match place(&state, &user_id, &layout, &target, expected, &ext).await? {
        Placed::Write(key) => key,
        Placed::Found(blob) => {
            let answer = super::upload::link(&state, &user_id, &target, blob, true).await?;
            return Ok(unread(answer.into_response(), interop));
        }
    };

    let id = format!("{:032x}", rand::random::<u128>());
    let resumable = ResumableTarget {
        staging: LibraryLayout::upload_staging(user_id.as_str(), &id)?,
        key,
    };
    let progress = state.store().resumable_start(&resumable).await?;
    let now = Utc::now();
    let upload = ResumableUpload {
        id: id.clone(),
        user_id: user_id.clone(),
        library_id: target.resource_library_id.clone(),
        photo_id: target.photo_id.clone(),
        local_identifier: target.local_identifier.clone(),
        resource: target.resource,
        target_key: resumable.key.to_string(),
        staging_key: resumable.staging.to_string(),
        expected_sha256: expected.map(|d| d.to_hex()),
        length,
        offset: 0,
        progress: serde_json::to_string(&progress).map_err(|e| ApiError::internal(&e))?,
        answer: None,
        created_at: now,
        updated_at: now,
    };
    if let Err(e) = state.catalog().resumable_insert(&upload).await {
        let _ = state.store().resumable_abort(&resumable, &progress).await;
        return Err(e.into());
    }
    tracing::info!(upload = %id, "resumable upload created");
    let holder = format!("{:032x}", rand::random::<u128>());
    let Some(upload) = take(&state, &user_id, &id, &holder).await? else {
        return Err(busy());
    };
    // The upload resource exists: say where it is before reading the content, so a client cut off
    // mid-creation resumes there (section 4.2). An empty content needs no resuming.
    if let Some((version, interim)) = interim
        && content_length(&headers)? != Some(0)
    {
        let mut fields = HeaderMap::new();
        fields.insert(header::LOCATION, location(&id));
        interop.announce(&mut fields);
        limits(&state).insert(&mut fields);
        interim.upload_resumption_supported(version, &fields);
    }
    let outcome = spawn(
        &state,
        upload,
        holder,
        complete,
        length,
        content_digest,
        announced,
        body,
    )
    .await;
    let mut response = answer(&state, interop, outcome, StatusCode::CREATED);
    response.headers_mut().insert(header::LOCATION, location(&id));
    Ok(response)
}

/// `X-Content-SHA256` (the whole upload) and `Content-Digest` (this request's content), apart.
fn split_client_digest(
    headers: &HeaderMap,
) -> Result<(Option<storage::Sha256Digest>, Option<storage::Sha256Digest>), ApiError> {
    let mut only_hex = headers.clone();
    only_hex.remove("content-digest");
    let mut only_content = headers.clone();
    only_content.remove("x-content-sha256");
    Ok((client_digest(&only_hex)?, client_digest(&only_content)?))
}

/// An answer given before the body was read: the connection is closed (unread bytes are on it).
fn unread(mut response: Response, interop: Interop) -> Response {
    interop.completion(true, response.headers_mut());
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// Runs one append as a task of its own (see `append.rs`) and waits for it.
#[allow(
    clippy::too_many_arguments,
    reason = "the parts of one append, each checked by the caller"
)]
async fn spawn(
    state: &AppState,
    upload: ResumableUpload,
    holder: String,
    complete: bool,
    length: Option<u64>,
    content_digest: Option<storage::Sha256Digest>,
    repr_digest: Option<storage::Sha256Digest>,
    body: Body,
) -> Result<Outcome, ApiError> {
    let id = upload.id.clone();
    let cancel = state.running().start(&id, &holder);
    let running_state = state.clone();
    let task_holder = holder.clone();
    let append = Append {
        state: state.clone(),
        upload,
        holder,
        complete,
        length,
        content_digest,
        repr_digest,
        cancel,
    };
    super::to_the_end(async move {
        let outcome = append::run(append, body).await;
        running_state.running().finish(&id, &task_holder);
        outcome
    })
    .await
}

/// The answer to an append: 200 with the upload route's answer when complete, else `incomplete` (201 for
/// a creation, 204 for an append) with the offset.
fn answer(
    state: &AppState,
    interop: Interop,
    outcome: Result<Outcome, ApiError>,
    incomplete: StatusCode,
) -> Response {
    let (mut response, offset, complete) = match outcome {
        Ok(Outcome::Complete { offset, answer }) => (axum::Json(answer).into_response(), offset, true),
        Ok(Outcome::Incomplete { offset }) => (incomplete.into_response(), offset, false),
        Err(e) => return e.into_response(),
    };
    let headers = response.headers_mut();
    headers.insert(UPLOAD_OFFSET, HeaderValue::from(offset));
    interop.completion(complete, headers);
    limits(state).insert(headers);
    response
}

/// Holds upload `id` for `holder`; if another request of this process holds it, ends that one's transfer
/// and waits a little for it to let go. `None`: held elsewhere (or unknown).
async fn take(
    state: &AppState,
    user_id: &UserId,
    id: &str,
    holder: &str,
) -> Result<Option<ResumableUpload>, ApiError> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let mut preempted = false;
    loop {
        let now = Utc::now();
        let until = now + append::hold_for(state);
        if let Some(upload) = state
            .catalog()
            .resumable_hold(user_id, id, holder, now, until)
            .await?
        {
            return Ok(Some(upload));
        }
        if !preempted {
            preempted = state.running().cancel(id);
            if !preempted {
                return Ok(None);
            }
        }
        if tokio::time::Instant::now() > deadline {
            return Ok(None);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn busy() -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        ErrorCode::UploadInProgress,
        "another request is appending to this upload; ask for the offset again shortly",
    )
}

/// An error answer with `Upload-Offset`.
fn with_offset(error: ApiError, offset: u64) -> Response {
    let mut response = error.into_response();
    response
        .headers_mut()
        .insert(UPLOAD_OFFSET, HeaderValue::from(offset));
    response
}

/// The user's upload `id`, or 404.
async fn find(state: &AppState, user_id: &UserId, id: &str) -> Result<ResumableUpload, ApiError> {
    state
        .catalog()
        .resumable_get(user_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("upload"))
}

/// The offset of an upload.
#[utoipa::path(head, path = "/client/iphoto/uploads/{id}", tag = "client", operation_id = "head_upload",
    description = "Where to resume: `Upload-Offset` is every byte the server kept. An append of this server still \
        reading an earlier request for this upload is ended first, its bytes kept. A HEAD answer has no body: \
        its status says what is wrong.",
    params(("id" = String, Path, min_length = 1, description = "the upload resource, from the creation's `Location`")),
    responses((status = 204, description = "the upload's state", headers(
        ("Upload-Offset" = u64, description = "the bytes the server holds (the next append starts there)"),
        ("Upload-Complete" = String, description = "`?1` once the upload is complete, else `?0`"),
        ("Upload-Draft-Interop-Version" = u8, description = "the interop version the answer speaks (8 unless the request named another)"),
        ("Upload-Limit" = String, description = "`max-size=…, min-append-size=…, max-age=…` (seconds idle before the upload is aborted)"),
            ("Upload-Length" = u64, description = "the total length, once announced"),
            ("Cache-Control" = String, description = "`no-store`"))),
        (status = 400, description = "`Upload-Draft-Interop-Version` other than 3 to 8"),
        (status = 401, description = "no valid bearer token"), (status = 403, description = "a token of another scope"),
        (status = 404, description = "no such upload of the caller's: never made, cancelled, or expired"),
        (status = 503, description = "the catalog is unreachable; retry later")),
    security(("bearer" = ["client"])))]
#[tracing::instrument(skip_all, fields(upload = %id.0))]
pub(crate) async fn head_upload(
    State(state): State<AppState>,
    ClientAuth(caller): ClientAuth,
    id: Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let interop = Interop::of(&headers)?;
    let mut upload = find(&state, &caller.user.id, &id.0).await?;
    if upload.answer.is_none() {
        // A client asking for the offset has given up on its previous append: an append of this process
        // still reading that request is ended, and its bytes made durable, before the offset is read.
        let holder = format!("{:032x}", rand::random::<u128>());
        if let Some(held) = take(&state, &caller.user.id, &id.0, &holder).await? {
            state.catalog().resumable_release(&held.id, &holder).await?;
            upload = held;
        }
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    let out = response.headers_mut();
    out.insert(UPLOAD_OFFSET, HeaderValue::from(upload.offset));
    if let Some(length) = upload.length {
        out.insert(UPLOAD_LENGTH, HeaderValue::from(length));
    }
    interop.completion(upload.answer.is_some(), out);
    limits(&state).insert(out);
    out.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// Appends to an upload at `Upload-Offset`; `Upload-Complete: ?1` ends it.
#[utoipa::path(patch, path = "/client/iphoto/uploads/{id}", tag = "client", operation_id = "patch_upload",
    description = "Appends the content at `Upload-Offset`, which must be the upload's offset (`HEAD`). The \
        append that says `Upload-Complete: ?1` ends the upload: the whole must hash to `Repr-Digest` or \
        `X-Content-SHA256` (else the SHA-256 declared at sync), and the answer is the upload route's. Bytes \
        received are kept even when the request is cut. Interop versions 3 to 7 of the draft \
        (`Upload-Draft-Interop-Version`; 3 and 4 say `Upload-Incomplete` for `Upload-Complete`, and before 7 \
        any `Content-Type` is taken) are answered in their own words.",
    params(("id" = String, Path, min_length = 1, description = "the upload resource, from the creation's `Location`"),
        ("Upload-Offset" = u64, Header, maximum = 999_999_999_999_999_u64, description = "where this content starts: the offset `HEAD` gave"),
        ("Upload-Complete" = String, Header, pattern = r"^\?[01]$", description = "`?1` when this content ends the upload, else `?0`"),
        ("Upload-Length" = Option<u64>, Header, nullable = false, maximum = 999_999_999_999_999_u64,
            description = "the total length, when known (it cannot change once announced)"),
        ("Repr-Digest" = Option<String>, Header, nullable = false,
            pattern = r"^([\u0020-\u002B\u002D-\u007E\t]*,)*[ \t]*sha-256=:[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=:[ \t]*(,[\u0020-\u002B\u002D-\u007E\t]*)*$",
            description = "RFC 9530 `sha-256=:<base64>:` of the whole upload"),
        ("X-Content-SHA256" = Option<String>, Header, nullable = false, pattern = r"^[0-9A-Fa-f]{64}$",
            description = "hex SHA-256 of the whole upload (as `Repr-Digest`; both: the same digest)"),
        ("Content-Digest" = Option<String>, Header, nullable = false,
            pattern = r"^([\u0020-\u002B\u002D-\u007E\t]*,)*[ \t]*sha-256=:[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=:[ \t]*(,[\u0020-\u002B\u002D-\u007E\t]*)*$",
            description = "RFC 9530 `sha-256=:<base64>:` of this request's content: content that does not match is not kept")),
    request_body(content = super::upload::Bytes, content_type = "application/partial-upload"),
    responses((status = 200, body = api::UploadAnswer, description = "complete: stored", headers(
        ("Upload-Offset" = u64, description = "the bytes the server holds (the next append starts there)"),
        ("Upload-Complete" = String, description = "`?1` once the upload is complete, else `?0`"),
        ("Upload-Draft-Interop-Version" = u8, description = "the interop version the answer speaks (8 unless the request named another)"),
        ("Upload-Limit" = String, description = "`max-size=…, min-append-size=…, max-age=…` (seconds idle before the upload is aborted)"))),
        (status = 204, description = "appended", headers(
        ("Upload-Offset" = u64, description = "the bytes the server holds (the next append starts there)"),
        ("Upload-Complete" = String, description = "`?1` once the upload is complete, else `?0`"),
        ("Upload-Draft-Interop-Version" = u8, description = "the interop version the answer speaks (8 unless the request named another)"),
        ("Upload-Limit" = String, description = "`max-size=…, min-append-size=…, max-age=…` (seconds idle before the upload is aborted)"))),
        (status = 400, body = api::ErrorBody, description = "a missing or malformed field (`invalid_header`), an append to a completed upload (`completed_upload`), an `Upload-Length` that changed or is below the offset (`inconsistent_upload_length`), content that ended early (`body_interrupted`; its bytes are kept)"),
        (status = 401, body = api::ErrorBody), (status = 403, body = api::ErrorBody),
        (status = 404, body = api::ErrorBody, description = "no such upload of the caller's: never made, cancelled, or expired"),
        (status = 408, body = api::ErrorBody, description = "the content sent nothing for the body idle timeout; the bytes received are kept"),
        (status = 409, body = api::ErrorBody, description = "`Upload-Offset` is not the upload's (`mismatching_upload_offset`: the answer's `Upload-Offset` is), an append runs on another replica (`upload_in_progress`), a newer request took the upload over (`upload_superseded`), or other bytes were stored for the resource first (`upload_conflict`)",
            headers(("Upload-Offset" = u64, description = "the upload's offset"))),
        (status = 413, body = api::ErrorBody, description = "the upload would exceed the largest upload taken"),
        (status = 415, body = api::ErrorBody, description = "content that is not `application/partial-upload`"),
        (status = 422, body = api::ErrorBody, description = "the whole upload's SHA-256 or size is not the one announced or declared: nothing stored, the upload is gone")),
    security(("bearer" = ["client"])))]
#[tracing::instrument(skip_all, fields(upload = %id.0))]
pub(crate) async fn patch_upload(
    State(state): State<AppState>,
    ClientAuth(caller): ClientAuth,
    id: Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let interop = Interop::of(&headers)?;
    let complete = interop.complete(&headers)?;
    let offset = integer(&headers, &UPLOAD_OFFSET)?
        .ok_or_else(|| ApiError::bad_request(ErrorCode::InvalidHeader, "Upload-Offset: required"))?;
    let length = integer(&headers, &UPLOAD_LENGTH)?;
    if interop.needs_partial_upload_type() {
        let media = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if media.split(';').next().map(str::trim) != Some(protocol::PARTIAL_UPLOAD) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                ErrorCode::UnsupportedMediaType,
                "Content-Type: an append is application/partial-upload",
            ));
        }
    }
    let repr = protocol::repr_digest(&headers)?;
    let (x_sha, content_digest) = split_client_digest(&headers)?;
    let user_id = caller.user.id;
    let upload = find(&state, &user_id, &id.0).await?;
    if upload.answer.is_some() {
        return Ok(completed(upload.offset, interop));
    }
    let holder = format!("{:032x}", rand::random::<u128>());
    let Some(upload) = take(&state, &user_id, &id.0, &holder).await? else {
        return Ok(with_offset(busy(), upload.offset));
    };
    let release = || async { state.catalog().resumable_release(&upload.id, &holder).await };
    if upload.answer.is_some() {
        release().await?;
        return Ok(completed(upload.offset, interop));
    }
    if offset != upload.offset {
        release().await?;
        return Ok(with_offset(
            ApiError::new(
                StatusCode::CONFLICT,
                ErrorCode::MismatchingUploadOffset,
                format!("Upload-Offset: {offset}, but the upload is at {}", upload.offset),
            ),
            upload.offset,
        ));
    }
    let length = match (length, upload.length) {
        (Some(a), Some(b)) if a != b => {
            release().await?;
            return Err(ApiError::bad_request(
                ErrorCode::InconsistentUploadLength,
                format!("Upload-Length: {a}, but the upload was announced as {b}"),
            ));
        }
        (Some(a), _) if a < upload.offset => {
            release().await?;
            return Err(ApiError::bad_request(
                ErrorCode::InconsistentUploadLength,
                format!(
                    "Upload-Length: {a} is below the bytes already received ({})",
                    upload.offset
                ),
            ));
        }
        (a, b) => a.or(b),
    };
    let max = state.settings().max_upload_bytes;
    if length.is_some_and(|l| l > max) || content_length(&headers)?.is_some_and(|l| upload.offset + l > max) {
        release().await?;
        return Err(too_large(max));
    }
    let outcome = spawn(
        &state,
        upload,
        holder,
        complete,
        length,
        content_digest,
        repr.or(x_sha),
        body,
    )
    .await;
    Ok(answer(&state, interop, outcome, StatusCode::NO_CONTENT))
}

/// 400 for an append to a completed upload.
fn completed(offset: u64, interop: Interop) -> Response {
    let mut response = with_offset(
        ApiError::bad_request(
            ErrorCode::CompletedUpload,
            "the upload is complete; nothing more can be appended",
        ),
        offset,
    );
    interop.completion(true, response.headers_mut());
    response
}

/// Cancels an upload: its parts and staging are removed and it is forgotten.
#[utoipa::path(delete, path = "/client/iphoto/uploads/{id}", tag = "client", operation_id = "delete_upload",
    params(("id" = String, Path, min_length = 1, description = "the upload resource, from the creation's `Location`")),
    responses((status = 204, description = "cancelled: nothing of it is kept"),
        (status = 401, body = api::ErrorBody), (status = 403, body = api::ErrorBody),
        (status = 404, body = api::ErrorBody, description = "no such upload of the caller's: never made, cancelled, or expired"),
        (status = 409, body = api::ErrorBody, description = "an append runs on another replica (`upload_in_progress`)")),
    security(("bearer" = ["client"])))]
#[tracing::instrument(skip_all, fields(upload = %id.0))]
pub(crate) async fn delete_upload(
    State(state): State<AppState>,
    ClientAuth(caller): ClientAuth,
    id: Path<String>,
) -> Result<Response, ApiError> {
    // Unknown (or another user's): 404 before anything else.
    find(&state, &caller.user.id, &id.0).await?;
    let holder = format!("{:032x}", rand::random::<u128>());
    let Some(upload) = take(&state, &caller.user.id, &id.0, &holder).await? else {
        return Err(busy());
    };
    if upload.answer.is_none() {
        let target = ResumableTarget {
            staging: StorageKey::parse(upload.staging_key.as_str())?,
            key: StorageKey::parse(upload.target_key.as_str())?,
        };
        let progress = serde_json::from_str(&upload.progress).map_err(|e| ApiError::internal(&e))?;
        state.store().resumable_abort(&target, &progress).await?;
    }
    state.catalog().resumable_delete(&upload.id).await?;
    tracing::info!("resumable upload cancelled");
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Whether a request to the upload route asks for a resumable upload.
pub(super) fn is_resumable(headers: &HeaderMap) -> bool {
    Interop::is_resumable(headers)
}
