//! `POST /client/iphoto/upload/{localIdentifier}?resource=…`: one resource's bytes, streamed to the store.
//!
//! The body is never held whole: it goes through `storage::Store::put_stream`, which hashes it on the way and
//! aborts on a digest mismatch, a body error or a client that goes away — nothing is left under the key and
//! the catalog is only told once the bytes are stored. When the client announces a digest the server already
//! has (for this resource, or as content of the user's), it answers before reading the body.

use api::ErrorCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse as _, Response};
use chrono::Utc;
use futures::TryStreamExt as _;
use storage::{LibraryLayout, PutMode, PutOptions, Sha256Digest, StorageKey};

use crate::catalog::{Blob, UploadLookup, UploadRecord, UploadTarget};
use crate::http::AppState;
use crate::http::auth::ClientAuth;
use crate::http::error::ApiError;
use crate::http::extract::{Json, Path, Query};

/// Query of an upload.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct UploadParams {
    /// Which file of the asset (default `original`).
    pub(super) resource: Option<api::ResourceType>,
    /// The library (the agent's id, as in sync requests), when the identifier is in several of the user's
    /// libraries.
    #[param(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]+$"
    )]
    pub(super) library: Option<String>,
}

/// The schema of an upload body: any bytes.
pub(super) struct Bytes;

impl utoipa::PartialSchema for Bytes {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Binary)))
            .description(Some("the resource's bytes"))
            .into()
    }
}

impl utoipa::ToSchema for Bytes {}

/// Stores one resource's bytes.
#[utoipa::path(post, path = "/client/iphoto/upload/{localIdentifier}", tag = "client", operation_id = "post_upload",
    description = "The body is streamed to the store and hashed on the way. With `X-Content-SHA256` or \
        `Content-Digest` (both: they must name the same digest, else a 400) the bytes must hash to it; \
        without, to the SHA-256 (and size) declared at sync, if any. Bytes the server already holds are \
        linked and the body is not read. With `Upload-Complete` the request creates a resumable upload \
        (draft-ietf-httpbis-resumable-upload-15; interop versions 3 to 7 by `Upload-Draft-Interop-Version`, \
        3 and 4 with `Upload-Incomplete` instead): its body is the first append, `Location` names the upload \
        resource, and `PATCH` there continues it (see `/client/iphoto/uploads/{id}`). An HTTP/1.1 client gets \
        that `Location` before the body is read, in a `104 Upload Resumption Supported` interim answer (with \
        `Upload-Draft-Interop-Version` and `Upload-Limit`), so a creation cut mid-body can be resumed.",
    params(("localIdentifier" = String, Path, min_length = 1,
            description = "PhotoKit localIdentifier (`<UUID>/L0/001`); its slashes may be sent as they are"),
        UploadParams,
        ("X-Content-SHA256" = Option<String>, Header, nullable = false, pattern = r"^[0-9A-Fa-f]{64}$",
            description = "hex SHA-256 of the body"),
        ("Content-Digest" = Option<String>, Header, nullable = false,
            pattern = r"^([\u0020-\u002B\u002D-\u007E\t]*,)*[ \t]*sha-256=:[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=:[ \t]*(,[\u0020-\u002B\u002D-\u007E\t]*)*$",
            description = "RFC 9530: a list with a `sha-256=:<base64>:` member"),
        ("Upload-Complete" = Option<String>, Header, nullable = false, pattern = r"^\?[01]$",
            description = "a resumable upload: `?1` when this body is the whole file, `?0` when more follows"),
        ("Upload-Length" = Option<u64>, Header, nullable = false, maximum = 999_999_999_999_999_u64,
            description = "a resumable upload's total length, when known"),
        ("Repr-Digest" = Option<String>, Header, nullable = false,
            pattern = r"^([\u0020-\u002B\u002D-\u007E\t]*,)*[ \t]*sha-256=:[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=:[ \t]*(,[\u0020-\u002B\u002D-\u007E\t]*)*$",
            description = "RFC 9530 `sha-256=:<base64>:` of a resumable upload's whole file (with `X-Content-SHA256`: the same digest)")),
    request_body(content = Bytes, content_type = "application/octet-stream"),
    responses((status = 200, body = api::UploadAnswer, description = "stored (a resumable upload: complete)", headers(
            ("Location" = String, description = "a resumable upload's resource"),
            ("Upload-Offset" = u64, description = "a resumable upload: the bytes the server holds"),
            ("Upload-Complete" = String, description = "a resumable upload: `?1`"),
            ("Upload-Draft-Interop-Version" = u8, description = "a resumable upload: the interop version the answer speaks"),
            ("Upload-Limit" = String, description = "a resumable upload: `max-size=…, min-append-size=…, max-age=…`"))),
        (status = 201, description = "a resumable upload made and its body appended; not complete yet", headers(
            ("Location" = String, description = "the upload resource (`/client/iphoto/uploads/{id}`)"),
            ("Upload-Offset" = u64, description = "the bytes the server holds"),
            ("Upload-Complete" = String, description = "`?0`"),
            ("Upload-Draft-Interop-Version" = u8, description = "the interop version the answer speaks"),
            ("Upload-Limit" = String, description = "`max-size=…, min-append-size=…, max-age=…`"))),
        (status = 400, body = api::ErrorBody),
        (status = 401, body = api::ErrorBody), (status = 403, body = api::ErrorBody),
        (status = 404, body = api::ErrorBody),
        (status = 409, body = api::ErrorBody, description = "another upload of this resource stored other bytes first, or another of the caller's libraries uploads it"),
        (status = 408, body = api::ErrorBody, description = "the body sent nothing for the body idle timeout; nothing stored"),
        (status = 413, body = api::ErrorBody),
        (status = 422, body = api::ErrorBody, description = "the body's SHA-256 or size is not the one announced or declared at sync; nothing stored")),
    security(("bearer" = ["client"])))]
#[tracing::instrument(skip_all, fields(resource))]
pub(crate) async fn post_upload(
    state: State<AppState>,
    caller: ClientAuth,
    local_identifier: Path<String>,
    params: Query<UploadParams>,
    interim: crate::http::serve::InterimAnswers,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if super::resumable::is_resumable(&headers) {
        let (State(state), ClientAuth(caller), Path(local_identifier), Query(params)) =
            (state, caller, local_identifier, params);
        let request = super::resumable::Creation {
            local_identifier,
            params,
            headers,
            interim: interim.0,
        };
        return super::resumable::create(state, caller.user.id, request, body)
            .await
            .unwrap_or_else(axum::response::IntoResponse::into_response);
    }
    let read = Arc::new(AtomicBool::new(false));
    let result = super::to_the_end(upload(
        state,
        caller,
        local_identifier,
        params,
        headers,
        body,
        Arc::clone(&read),
    ))
    .await;
    let mut response = result.into_response();
    // An answer given before the body was read leaves unread bytes on the connection: close it, so the
    // client does not reuse a connection the server is about to drop.
    if !read.load(Ordering::Relaxed) {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

async fn upload(
    State(state): State<AppState>,
    ClientAuth(caller): ClientAuth,
    Path(local_identifier): Path<String>,
    Query(params): Query<UploadParams>,
    headers: HeaderMap,
    body: Body,
    body_read: Arc<AtomicBool>,
) -> Result<Json<api::UploadAnswer>, ApiError> {
    let client_expected = client_digest(&headers)?;
    let max = state.settings().max_upload_bytes;
    if let Some(length) = content_length(&headers)?
        && length > max
    {
        return Err(too_large(max));
    }
    let catalog = state.catalog();
    let (resource, target) = find_target(&state, &caller.user.id, local_identifier, &params).await?;

    // Without a digest header the bytes must be what the Mac declared at sync: its SHA-256 and size.
    let declared = target.declared.as_ref();
    let declared_sha = declared
        .and_then(|d| d.sha256.as_deref())
        .and_then(Sha256Digest::from_hex);
    let (expected, declared_size) = match (client_expected, declared_sha) {
        (Some(digest), _) => (Some(digest), None),
        (None, Some(digest)) => (Some(digest), declared.map(|d| d.size)),
        (None, None) => (None, None),
    };
    if let (Some(size), Some(length)) = (declared_size, content_length(&headers)?)
        && size != length
    {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::SizeMismatch,
            format!("Content-Length: {length} bytes, but the sync declared {size}; sync the item again"),
        ));
    }

    // Answered before the body is read: this resource already holds these bytes, or the user stores them.
    if let Some(expected) = expected {
        let hex = expected.to_hex();
        if let Some(stored) = target.stored.as_ref().filter(|s| s.sha256 == hex) {
            return Ok(answer(&target, &hex, stored.size, &stored.key, true));
        }
        if let Some(blob) = catalog.blob_by_sha(&caller.user.id, &hex).await? {
            return link(&state, &caller.user.id, &target, blob, false).await;
        }
    }

    // The bytes go under the library whose declaration the catalog holds: a photo two Macs share is uploaded
    // by the one the pending list names, at its bundle path. Another library's bytes are not written there.
    if params.library.is_some() && target.resource_library_id != target.library_id {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            ErrorCode::HeldByAnotherLibrary,
            "this resource is uploaded from another of your libraries (see the pending list of this library)",
        ));
    }
    let layout = LibraryLayout::new(caller.user.id.as_str(), target.resource_library_id.as_str())?;
    let ext = extension(&target.original_filename, &target.uti);
    let key = match place(&state, &caller.user.id, &layout, &target, expected, &ext).await? {
        Placed::Write(key) => key,
        Placed::Found(blob) => return link(&state, &caller.user.id, &target, blob, true).await,
    };
    let over_limit = Arc::new(AtomicBool::new(false));
    let stalled = Arc::new(AtomicBool::new(false));
    let body = limited(body, max, Arc::clone(&over_limit), Arc::clone(&stalled));
    let options = PutOptions {
        expected_sha256: expected,
        size_hint: content_length(&headers)?,
        mode: PutMode::Create,
    };
    let receipt = state.store().put_stream(&key, body, &options).await;
    body_read.store(true, Ordering::Relaxed);
    let receipt = match receipt {
        Ok(receipt) => receipt,
        Err(_) if over_limit.load(Ordering::Relaxed) => {
            state.metrics().upload("rejected", 0);
            return Err(too_large(max));
        }
        Err(_) if stalled.load(Ordering::Relaxed) => {
            state.metrics().upload("rejected", 0);
            return Err(crate::http::error::body_stalled("nothing was stored"));
        }
        Err(storage::Error::DigestMismatch { actual, .. }) if client_expected.is_none() => {
            state.metrics().upload("rejected", 0);
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::DigestMismatch,
                format!(
                    "body: its SHA-256 is {actual}, not the one the sync declared; nothing was stored \
                     (sync the item again, or send X-Content-SHA256)"
                ),
            ));
        }
        Err(storage::Error::AlreadyExists { .. }) => {
            // Another request stored this key between the check and the write: the same bytes are linked,
            // other bytes left alone.
            let found = match expected {
                Some(digest) => holding(&state, &key, state.store().head(&key).await?.size, digest).await?,
                None => None,
            };
            return match found {
                Some(blob) => link(&state, &caller.user.id, &target, blob, true).await,
                None => Err(ApiError::new(
                    StatusCode::CONFLICT,
                    ErrorCode::UploadConflict,
                    "another upload of this resource finished first; ask for the pending list again",
                )),
            };
        }
        Err(e) => {
            state.metrics().upload("rejected", 0);
            return Err(e.into());
        }
    };
    let hex = receipt.sha256.to_hex();
    let key = settle(&state, &layout, key, &receipt, &ext).await?;

    // Content the user already stores under another key: keep one copy. The object just written is ours
    // alone (created, never recorded), so removing it loses nothing.
    if let Some(blob) = catalog.blob_by_sha(&caller.user.id, &hex).await?
        && blob.key != key.as_str()
    {
        state.store().delete(&key).await?;
        return link(&state, &caller.user.id, &target, blob, false).await;
    }
    let record = UploadRecord {
        photo_id: target.photo_id.clone(),
        resource,
        sha256: hex.clone(),
        size: receipt.size,
        key: key.to_string(),
        at: Utc::now(),
        deduplicated: false,
    };
    catalog.record_upload(&caller.user.id, &record).await?;
    state.metrics().upload("stored", receipt.size);
    tracing::info!(bytes = receipt.size, "stored");
    Ok(answer(&target, &hex, receipt.size, key.as_str(), false))
}

/// The resource an upload names (404 when unknown or deleted), its type recorded in the request span.
pub(super) async fn find_target(
    state: &AppState,
    user_id: &crate::catalog::UserId,
    local_identifier: String,
    params: &UploadParams,
) -> Result<(api::ResourceType, UploadTarget), ApiError> {
    let resource = params.resource.unwrap_or(api::ResourceType::Original);
    if let Some(key) = &params.library {
        super::check_library_id("library", key)?;
    }
    tracing::Span::current().record("resource", resource.as_str());
    let catalog = state.catalog();
    let library_id = match &params.library {
        Some(key) => Some(catalog.ensure_library(user_id, key).await?.id),
        None => None,
    };
    let lookup = UploadLookup {
        library_id,
        local_identifier,
        resource,
    };
    let target = catalog
        .resource_for_upload(user_id, &lookup)
        .await?
        .filter(|t| !t.deleted)
        .ok_or_else(|| ApiError::not_found("photo"))?;
    Ok((resource, target))
}

/// Where an upload goes.
pub(super) enum Placed {
    /// Write the body to this key (create-only).
    Write(StorageKey),
    /// The bytes are already stored: link them, read no body.
    Found(Blob),
}

/// Picks the key of an upload so that nothing stored is ever written over:
/// - a resource with a bundle path goes exactly there when that key is free; bytes already there that hash
///   to the expected digest (written by `seed-originals`, or by an upload whose catalog write a crash cut
///   short) are adopted without reading the body; other bytes there are left alone;
/// - everything else goes to the content-addressed key of the expected digest (already there: adopted, since
///   such a key is only ever written with its bytes verified), or, when no digest is known, to a fresh
///   `incoming/` key that [`settle`] moves to its content key once the bytes are hashed.
pub(super) async fn place(
    state: &AppState,
    user_id: &crate::catalog::UserId,
    layout: &LibraryLayout,
    target: &UploadTarget,
    expected: Option<Sha256Digest>,
    ext: &str,
) -> Result<Placed, ApiError> {
    let bundle = target.declared.as_ref().and_then(|d| d.bundle_path.as_deref());
    if let Some(path) = bundle {
        let key = layout.bundle(path)?;
        match state.catalog().blob_by_key(user_id, key.as_str()).await? {
            // Known content: this resource's bytes (handled before) or other bytes: not here.
            Some(_) => {}
            None => match state.store().head(&key).await {
                Err(storage::Error::NotFound { .. }) => return Ok(Placed::Write(key)),
                Ok(meta) => {
                    if let Some(expected) = expected
                        && let Some(blob) = holding(state, &key, meta.size, expected).await?
                    {
                        return Ok(Placed::Found(blob));
                    }
                }
                Err(e) => return Err(e.into()),
            },
        }
    }
    let Some(digest) = expected else {
        return Ok(Placed::Write(
            layout.incoming(&format!("{:032x}", rand::random::<u128>()), ext)?,
        ));
    };
    let key = layout.content(&digest, ext)?;
    match state.store().head(&key).await {
        Err(storage::Error::NotFound { .. }) => Ok(Placed::Write(key)),
        // Only ever written with these bytes verified (an upload whose catalog write a crash cut short).
        Ok(meta) => Ok(Placed::Found(Blob {
            sha256: digest.to_hex(),
            key: key.to_string(),
            size: meta.size,
        })),
        Err(e) => Err(e.into()),
    }
}

/// The object of `size` bytes at `key` as a blob, when it hashes to `digest` (hashed here: it was not
/// written by this request).
pub(super) async fn holding(
    state: &AppState,
    key: &StorageKey,
    size: u64,
    digest: Sha256Digest,
) -> Result<Option<Blob>, ApiError> {
    Ok((state.store().sha256(key).await? == digest).then(|| Blob {
        sha256: digest.to_hex(),
        key: key.to_string(),
        size,
    }))
}

/// Moves an upload written under `incoming/` (its digest unknown until the body ended) to its content key:
/// a server-side copy when that key is free, then the incoming object is removed. Other keys are final.
pub(super) async fn settle(
    state: &AppState,
    layout: &LibraryLayout,
    key: StorageKey,
    receipt: &storage::PutReceipt,
    ext: &str,
) -> Result<StorageKey, ApiError> {
    if !layout.is_incoming(&key) {
        return Ok(key);
    }
    let content = layout.content(&receipt.sha256, ext)?;
    match state.store().head(&content).await {
        // A content key only ever holds its content: nothing to copy.
        Ok(_) => {}
        Err(storage::Error::NotFound { .. }) => state.store().copy(&key, &content).await?,
        Err(e) => return Err(e.into()),
    }
    state.store().delete(&key).await?;
    Ok(content)
}

/// Records that this resource's bytes are the user's existing `blob`: no transfer in this request. A blob
/// `found` in the store (hashed just now: left by `seed-originals`, or by an upload a crash cut off before
/// the catalog heard of it) is recorded as stored, not as a link to a blob row, which it has none of.
pub(super) async fn link(
    state: &AppState,
    user_id: &crate::catalog::UserId,
    target: &UploadTarget,
    blob: Blob,
    found: bool,
) -> Result<Json<api::UploadAnswer>, ApiError> {
    let record = UploadRecord {
        photo_id: target.photo_id.clone(),
        resource: target.resource,
        sha256: blob.sha256.clone(),
        size: blob.size,
        key: blob.key.clone(),
        at: Utc::now(),
        deduplicated: !found,
    };
    state.catalog().record_upload(user_id, &record).await?;
    state.metrics().upload("deduplicated", 0);
    Ok(answer(target, &blob.sha256, blob.size, &blob.key, true))
}

pub(super) fn answer(
    target: &UploadTarget,
    sha256: &str,
    size: u64,
    key: &str,
    deduplicated: bool,
) -> Json<api::UploadAnswer> {
    Json(api::UploadAnswer {
        local_identifier: target.local_identifier.clone(),
        resource: target.resource,
        sha256: sha256.to_owned(),
        size,
        key: key.to_owned(),
        deduplicated,
    })
}

/// The file extension: from the import name, else from the type identifier.
pub(super) fn extension(original_filename: &str, uti: &str) -> String {
    let from_name = original_filename
        .rsplit_once('.')
        .map(|(_, ext)| ext.to_ascii_lowercase())
        .filter(|e| !e.is_empty() && e.len() <= 8 && e.bytes().all(|b| b.is_ascii_alphanumeric()));
    from_name.unwrap_or_else(|| {
        match uti {
            "public.jpeg" => "jpeg",
            "public.heic" => "heic",
            "public.png" => "png",
            "com.apple.quicktime-movie" => "mov",
            "public.mpeg-4" => "mp4",
            _ => "bin",
        }
        .to_owned()
    })
}

/// `X-Content-SHA256: <hex>` or `Content-Digest: sha-256=:<base64>:` (RFC 9530); both must agree.
pub(super) fn client_digest(headers: &HeaderMap) -> Result<Option<Sha256Digest>, ApiError> {
    let hex = match headers.get("x-content-sha256") {
        None => None,
        Some(v) => Some(v.to_str().ok().and_then(Sha256Digest::from_hex).ok_or_else(|| {
            ApiError::bad_request(
                ErrorCode::InvalidHeader,
                "X-Content-SHA256: must be 64 hex digits",
            )
        })?),
    };
    let digest = match headers.get("content-digest") {
        None => None,
        Some(v) => {
            let text = v.to_str().unwrap_or_default();
            let parsed = text
                .split(',')
                .map(str::trim)
                .find_map(|item| {
                    item.strip_prefix("sha-256=:")
                        .and_then(|rest| rest.strip_suffix(':'))
                })
                .and_then(Sha256Digest::from_base64);
            Some(parsed.ok_or_else(|| {
                ApiError::bad_request(
                    ErrorCode::InvalidHeader,
                    "Content-Digest: expected sha-256=:<base64>:",
                )
            })?)
        }
    };
    match (hex, digest) {
        (Some(a), Some(b)) if a != b => Err(ApiError::bad_request(
            ErrorCode::InvalidHeader,
            "X-Content-SHA256 and Content-Digest disagree",
        )),
        (a, b) => Ok(a.or(b)),
    }
}

pub(super) fn content_length(headers: &HeaderMap) -> Result<Option<u64>, ApiError> {
    headers
        .get(axum::http::header::CONTENT_LENGTH)
        .map(|v| {
            v.to_str().ok().and_then(|s| s.parse().ok()).ok_or_else(|| {
                ApiError::bad_request(ErrorCode::InvalidHeader, "Content-Length: not a number")
            })
        })
        .transpose()
}

pub(super) fn too_large(max: u64) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::BodyTooLarge,
        format!("body: over the limit of {max} bytes"),
    )
}

/// The body as a stream that fails once more than `max` bytes arrived (a chunked body has no length to
/// check up front), flagging why; a body that fails because it stalled past the idle timeout flags `stalled`.
pub(super) fn limited(
    body: Body,
    max: u64,
    over: Arc<AtomicBool>,
    stalled: Arc<AtomicBool>,
) -> impl futures::Stream<Item = std::io::Result<bytes::Bytes>> + Send {
    let mut seen = 0u64;
    body.into_data_stream()
        .map_err(move |error| {
            if crate::http::error::is_body_timeout(&error) {
                stalled.store(true, Ordering::Relaxed);
            }
            std::io::Error::other(error)
        })
        .and_then(move |chunk| {
            seen += chunk.len() as u64;
            let result = if seen > max {
                over.store(true, Ordering::Relaxed);
                Err(std::io::Error::other("body over the size limit"))
            } else {
                Ok(chunk)
            };
            futures::future::ready(result)
        })
}
