//! `GET /blobs/{key}?exp=&sig=`: the local backend's presigned GETs (with S3 the URLs point at the bucket and
//! this route answers 404).
//!
//! No bearer token: the signature is the authorisation. `storage::LocalSigner::verify` checks it (method,
//! key and expiry are all signed, so a changed character, another key or a later expiry is refused) and
//! an expired or tampered URL gets a JSON 403. The server only presigns keys under the caller's own
//! `users/<id>/` prefix, so a URL for another user's object cannot be had. The file is served with a single
//! `Range` (206; 416 when unsatisfiable), `ETag`/`Last-Modified` with `If-None-Match`/`If-Modified-Since`
//! (304), `If-Range` (a stale validator gets the whole body, 200), an opaque `ETag` (a keyed hash of the
//! store's, which for the local backend would show inode numbers), a `Content-Type` named by the key's extension (which the upload route took from the photo's file
//! name or UTI) and `Cache-Control: private`.

use api::ErrorCode;
use std::ops::Range;

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse as _, Response};
use chrono::{DateTime, Utc};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::error::ApiError;
use super::extract::Path;

pub(super) fn router() -> OpenApiRouter<AppState> {
    super::openapi::routes_with_tail(OpenApiRouter::default(), routes!(get_blob), "key")
}

/// Serves a presigned local blob.
#[utoipa::path(get, path = "/blobs/{key}", tag = "blobs", operation_id = "get_blob",
    params(("key" = String, Path, description = "the object key (as presigned)"),
        ("exp" = i64, Query, description = "expiry, epoch seconds (signed)"),
        ("sig" = String, Query, description = "HMAC-SHA256 signature, base64url")),
    responses((status = 200, description = "the bytes"), (status = 206, description = "the requested range"),
        (status = 304, description = "not modified"), (status = 403, body = api::ErrorBody),
        (status = 404, body = api::ErrorBody), (status = 416, body = api::ErrorBody)))]
#[tracing::instrument(skip_all)]
pub(crate) async fn get_blob(
    State(state): State<AppState>,
    Path(key): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let signer = state
        .store()
        .local_signer()
        .ok_or_else(|| ApiError::not_found("blob"))?;
    let params: Vec<(String, String)> = url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .into_owned()
        .collect();
    let param = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let key = signer
        .verify("GET", &key, param("exp"), param("sig"), Utc::now())
        .map_err(|e| {
            let code = match e {
                storage::PresignError::Expired => ErrorCode::Expired,
                _ => ErrorCode::InvalidSignature,
            };
            ApiError::new(StatusCode::FORBIDDEN, code, e.to_string())
        })?;
    let exp: i64 = param("exp").and_then(|e| e.parse().ok()).unwrap_or(0);
    serve_object(&state, &key, &headers, (exp - Utc::now().timestamp()).max(0)).await
}

/// Serves a stored object the caller may read, honouring `Range`, `If-Range`, `If-None-Match` and
/// `If-Modified-Since`; browsers may keep it privately for `max_age` seconds. Shared by the presigned blobs
/// and the pages' media route.
pub(crate) async fn serve_object(
    state: &AppState,
    key: &storage::StorageKey,
    headers: &HeaderMap,
    max_age: i64,
) -> Result<Response, ApiError> {
    let meta = state.store().head(key).await?;
    // The store's ETag changes with the bytes (local: inode, mtime and size; S3: the object's); a keyed
    // hash of it with the key keeps that and gives away nothing (no inode numbers, no file sizes).
    let etag = meta.etag.as_deref().map(|e| {
        let fingerprint = state
            .settings()
            .cursor_key
            .fingerprint("blob etag", &format!("{key}\n{e}"));
        format!("\"{fingerprint}\"")
    });
    let last_modified = http_date(meta.last_modified);

    let mut common = HeaderMap::new();
    common.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Ok(v) = HeaderValue::from_str(&format!("private, max-age={max_age}")) {
        common.insert(header::CACHE_CONTROL, v);
    }
    if let Some(v) = etag.as_deref().and_then(|e| HeaderValue::from_str(e).ok()) {
        common.insert(header::ETAG, v);
    }
    if let Ok(v) = HeaderValue::from_str(&last_modified) {
        common.insert(header::LAST_MODIFIED, v);
    }

    if not_modified(headers, etag.as_deref(), meta.last_modified) {
        return Ok((StatusCode::NOT_MODIFIED, common).into_response());
    }
    let size = meta.size;
    // `If-Range`: the range only if the client's copy is still this one; otherwise the whole body (200).
    let range_header = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .filter(|_| if_range_holds(headers, etag.as_deref(), meta.last_modified));
    let range = match range_header {
        None => None,
        Some(text) => match parse_range(text, size) {
            RangeAsk::Whole => None,
            RangeAsk::Part(range) => Some(range),
            RangeAsk::Unsatisfiable => {
                let mut response = ApiError::new(
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    ErrorCode::RangeNotSatisfiable,
                    format!("range {text:?} is outside the object's {size} bytes"),
                )
                .into_response();
                if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                    response.headers_mut().insert(header::CONTENT_RANGE, v);
                }
                return Ok(response);
            }
        },
    };
    let object = if size == 0 {
        None
    } else {
        Some(state.store().get(key, range.clone()).await?)
    };
    let mut response = match object {
        Some(object) => Response::new(Body::from_stream(object.body)),
        None => Response::new(Body::empty()),
    };
    let served = range.clone().unwrap_or(0..size);
    let headers_out = response.headers_mut();
    headers_out.extend(common);
    headers_out.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(key.as_str())),
    );
    if let Ok(v) = HeaderValue::from_str(&(served.end - served.start).to_string()) {
        headers_out.insert(header::CONTENT_LENGTH, v);
    }
    if let Some(range) = range {
        if let Ok(v) = HeaderValue::from_str(&format!("bytes {}-{}/{size}", range.start, range.end - 1)) {
            headers_out.insert(header::CONTENT_RANGE, v);
        }
        *response.status_mut() = StatusCode::PARTIAL_CONTENT;
    }
    Ok(response)
}

/// What a `Range` header asks for.
#[derive(Debug, PartialEq, Eq)]
enum RangeAsk {
    /// No usable single range (several ranges, another unit, malformed): serve it all, as RFC 9110 allows.
    Whole,
    /// One satisfiable range, end exclusive and clamped to the size.
    Part(Range<u64>),
    /// A well-formed range past the end: 416.
    Unsatisfiable,
}

fn parse_range(text: &str, size: u64) -> RangeAsk {
    let Some(spec) = text.trim().strip_prefix("bytes=") else {
        return RangeAsk::Whole;
    };
    if spec.contains(',') {
        return RangeAsk::Whole;
    }
    let Some((start, end)) = spec.trim().split_once('-') else {
        return RangeAsk::Whole;
    };
    let (start, end) = (start.trim(), end.trim());
    match (start.parse::<u64>().ok(), end.parse::<u64>().ok()) {
        // `bytes=-n`: the last n bytes.
        (None, Some(n)) if start.is_empty() => {
            if n == 0 || size == 0 {
                RangeAsk::Unsatisfiable
            } else {
                RangeAsk::Part(size.saturating_sub(n)..size)
            }
        }
        (Some(a), None) if end.is_empty() => {
            if a >= size {
                RangeAsk::Unsatisfiable
            } else {
                RangeAsk::Part(a..size)
            }
        }
        (Some(a), Some(b)) if a <= b => {
            if a >= size {
                RangeAsk::Unsatisfiable
            } else {
                RangeAsk::Part(a..b.saturating_add(1).min(size))
            }
        }
        _ => RangeAsk::Whole,
    }
}

/// `If-None-Match` first (it wins over `If-Modified-Since`, RFC 9110 13.2.2).
fn not_modified(headers: &HeaderMap, etag: Option<&str>, modified: DateTime<Utc>) -> bool {
    if let Some(v) = headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) {
        let weak = |t: &str| t.trim().trim_start_matches("W/").to_owned();
        return v
            .split(',')
            .any(|candidate| candidate.trim() == "*" || etag.is_some_and(|e| weak(candidate) == weak(e)));
    }
    if let Some(since) = headers
        .get(header::IF_MODIFIED_SINCE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| DateTime::parse_from_rfc2822(v).ok())
    {
        return modified.timestamp() <= since.timestamp();
    }
    false
}

/// Whether a `Range` may be honoured under `If-Range` (RFC 9110 13.1.5): no `If-Range`, or one naming the
/// current strong ETag exactly, or the current `Last-Modified` exactly. A weak tag, another tag, another date
/// or an unparsable value all mean "send it all".
fn if_range_holds(headers: &HeaderMap, etag: Option<&str>, modified: DateTime<Utc>) -> bool {
    let Some(value) = headers.get(header::IF_RANGE) else {
        return true;
    };
    let Ok(value) = value.to_str() else {
        return false;
    };
    let value = value.trim();
    if value.starts_with('"') {
        return etag.is_some_and(|e| e == value);
    }
    if value.starts_with("W/") {
        return false;
    }
    DateTime::parse_from_rfc2822(value).is_ok_and(|since| since.timestamp() == modified.timestamp())
}

fn http_date(time: DateTime<Utc>) -> String {
    time.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

/// The media type of a key, by the extension the upload route gave it from the photo's name or UTI
/// (`public.heic` → `.heic`, …). Looking the UTI up in the catalog instead would cost a query per request
/// on a route that serves thumbnails by the hundred.
fn content_type(key: &str) -> &'static str {
    let ext = key
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "jpg" | "jpeg" => "image/jpeg",
        "heic" => "image/heic",
        "heif" => "image/heif",
        "png" => "image/png",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "tif" | "tiff" => "image/tiff",
        "dng" => "image/x-adobe-dng",
        "mov" => "video/quicktime",
        "mp4" | "m4v" => "video/mp4",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9", 100), RangeAsk::Part(0..10));
        assert_eq!(parse_range("bytes=90-", 100), RangeAsk::Part(90..100));
        assert_eq!(parse_range("bytes=-10", 100), RangeAsk::Part(90..100));
        assert_eq!(parse_range("bytes=-1000", 100), RangeAsk::Part(0..100));
        assert_eq!(parse_range("bytes=50-1000", 100), RangeAsk::Part(50..100));
        assert_eq!(parse_range("bytes=100-", 100), RangeAsk::Unsatisfiable);
        assert_eq!(parse_range("bytes=200-300", 100), RangeAsk::Unsatisfiable);
        assert_eq!(parse_range("bytes=-0", 100), RangeAsk::Unsatisfiable);
        assert_eq!(parse_range("bytes=0-1,5-6", 100), RangeAsk::Whole);
        assert_eq!(parse_range("items=0-1", 100), RangeAsk::Whole);
        assert_eq!(parse_range("bytes=9-2", 100), RangeAsk::Whole);
        assert_eq!(parse_range("bytes=x-y", 100), RangeAsk::Whole);
    }

    #[test]
    fn content_types() {
        assert_eq!(content_type("users/u/a/B.HEIC"), "image/heic");
        assert_eq!(content_type("users/u/a/B_3.mov"), "video/quicktime");
        assert_eq!(content_type("users/u/a/B"), "application/octet-stream");
    }
}
