//! The one place errors become HTTP: status, stable `code`, and the `{"error":{…}}` envelope. 5xx bodies say
//! nothing internal; the detail is logged once, inside the request's span.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use api::ErrorCode;

use crate::catalog;

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: ErrorCode,
    message: String,
}

impl ApiError {
    /// An answer with this status, code and message.
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    /// 400 naming the field.
    pub fn bad_request(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 404.
    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            ErrorCode::NotFound,
            format!("{what} not found"),
        )
    }

    /// 500 with no detail on the wire; `detail` is logged.
    pub fn internal(detail: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Internal,
            "internal error",
        )
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The code.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// The message for the client (never a secret: errors are built to be shown).
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(api::ErrorBody::new(self.code, self.message))).into_response()
    }
}

impl From<catalog::Error> for ApiError {
    fn from(error: catalog::Error) -> Self {
        match error {
            catalog::Error::NotFound { what } => ApiError::not_found(what),
            catalog::Error::Conflict { what, reason } => ApiError::new(
                StatusCode::CONFLICT,
                ErrorCode::Conflict,
                format!("{what}: {reason}"),
            ),
            catalog::Error::Invalid { field, reason } => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::InvalidField,
                format!("{field}: {reason}"),
            ),
            catalog::Error::Unavailable(source) => {
                tracing::error!(error = %source, "catalog unavailable");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    ErrorCode::Unavailable,
                    "catalog unavailable, retry later",
                )
            }
            catalog::Error::Database(source) => ApiError::internal(&source),
            catalog::Error::Migrate(source) => ApiError::internal(&source),
        }
    }
}

impl From<storage::Error> for ApiError {
    fn from(error: storage::Error) -> Self {
        use storage::Error as E;
        match error {
            E::InvalidKey { key, reason } => {
                ApiError::bad_request(ErrorCode::InvalidKey, format!("invalid key {key:?}: {reason}"))
            }
            E::NotFound { .. } => ApiError::not_found("object"),
            ref e @ E::RangeNotSatisfiable { .. } => ApiError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                ErrorCode::RangeNotSatisfiable,
                e.to_string(),
            ),
            E::DigestMismatch { expected, actual, .. } => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::DigestMismatch,
                format!("body SHA-256 is {actual}, the request announced {expected}; nothing was stored"),
            ),
            ref e @ E::MetadataTooLarge { .. } => {
                ApiError::bad_request(ErrorCode::MetadataTooLarge, e.to_string())
            }
            E::AlreadyExists { .. } | E::PreconditionFailed { .. } => ApiError::new(
                StatusCode::CONFLICT,
                ErrorCode::Conflict,
                "the object changed; retry",
            ),
            E::InvalidTtl {
                requested_secs,
                max_secs,
            } => ApiError::bad_request(
                ErrorCode::InvalidTtl,
                format!("ttl {requested_secs} s is outside 1..={max_secs} s"),
            ),
            E::Body { source, .. } => {
                ApiError::bad_request(ErrorCode::BodyError, format!("reading the body failed: {source}"))
            }
            ref e @ (E::AccessDenied { .. }
            | E::Config { .. }
            | E::Unsupported { .. }
            | E::LocalFile { .. }
            | E::Backend { .. }) => {
                tracing::error!(error = %e, "object store error");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    ErrorCode::StorageUnavailable,
                    "object store unavailable, retry later",
                )
            }
        }
    }
}

/// Whether an error is, somewhere in its chain, the body idle timeout's (`tower_http`'s `TimeoutError`).
pub(crate) fn is_body_timeout(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = Some(error);
    while let Some(e) = source {
        if e.is::<tower_http::timeout::TimeoutError>() {
            return true;
        }
        source = e.source();
    }
    false
}

/// 408: a request body sent nothing for the idle timeout.
pub(crate) fn body_stalled(detail: &str) -> ApiError {
    ApiError::new(
        StatusCode::REQUEST_TIMEOUT,
        ErrorCode::RequestTimeout,
        format!("body: stalled past the idle timeout; {detail}"),
    )
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        if is_body_timeout(&rejection) {
            return body_stalled("nothing was applied");
        }
        let status = rejection.status();
        let code = match status {
            StatusCode::PAYLOAD_TOO_LARGE => ErrorCode::BodyTooLarge,
            StatusCode::UNSUPPORTED_MEDIA_TYPE => ErrorCode::UnsupportedMediaType,
            _ => ErrorCode::InvalidJson,
        };
        ApiError::new(status, code, rejection.body_text())
    }
}

/// The stable `code` of an error answer made below the handlers (axum's method router, tower-http's
/// limits and timeouts), by its status.
fn code_for(status: StatusCode) -> ErrorCode {
    match status {
        StatusCode::BAD_REQUEST => ErrorCode::BadRequest,
        StatusCode::UNAUTHORIZED => ErrorCode::Unauthorized,
        StatusCode::FORBIDDEN => ErrorCode::Forbidden,
        StatusCode::NOT_FOUND => ErrorCode::NotFound,
        StatusCode::METHOD_NOT_ALLOWED => ErrorCode::MethodNotAllowed,
        StatusCode::REQUEST_TIMEOUT => ErrorCode::RequestTimeout,
        StatusCode::PAYLOAD_TOO_LARGE => ErrorCode::BodyTooLarge,
        StatusCode::URI_TOO_LONG => ErrorCode::UriTooLong,
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ErrorCode::UnsupportedMediaType,
        StatusCode::UNPROCESSABLE_ENTITY => ErrorCode::InvalidBody,
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => ErrorCode::HeadersTooLarge,
        s if s.is_server_error() => ErrorCode::Internal,
        _ => ErrorCode::ClientError,
    }
}

/// Longest plain-text rejection body kept as the message.
const REJECTION_TEXT_LIMIT: usize = 4096;

/// Middleware (`map_response`): an error answer without the JSON envelope — axum's bodiless 405, tower-http's
/// 408 and 413, a plain-text rejection — gets it, keeping its status and headers (`Allow`, …) and using its
/// text, if any, as the message. Answers that already carry JSON, the web pages' HTML error pages, and successes pass untouched.
pub(crate) async fn envelope(response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    // JSON is already the envelope; an HTML answer is one of the web pages' own error pages.
    let is_json_or_page = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json") || v.starts_with("text/html"));
    if is_json_or_page {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, REJECTION_TEXT_LIMIT)
        .await
        .ok()
        .and_then(|bytes| String::from_utf8(bytes.to_vec()).ok())
        .map(|text| text.trim().to_owned())
        .filter(|text| !text.is_empty() && !status.is_server_error());
    let message = text.unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_ascii_lowercase());
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    parts.headers.remove(axum::http::header::CONTENT_TYPE);
    let body = Json(api::ErrorBody::new(code_for(status), message)).into_response();
    let (body_parts, body) = body.into_parts();
    parts.headers.extend(body_parts.headers);
    Response::from_parts(parts, body)
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError::bad_request(ErrorCode::InvalidQuery, rejection.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        ApiError::bad_request(ErrorCode::InvalidPath, rejection.body_text())
    }
}
