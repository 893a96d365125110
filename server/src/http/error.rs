//! The one place errors become HTTP: status, stable `code`, and the `{"error":{…}}` envelope. 5xx bodies say
//! nothing internal; the detail is logged once, inside the request's span.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::catalog;

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    /// An answer with this status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    /// 400 naming the field.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 404.
    pub fn not_found(what: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", format!("{what} not found"))
    }

    /// 500 with no detail on the wire; `detail` is logged.
    pub fn internal(detail: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "internal error");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error")
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
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
            catalog::Error::Conflict { what, reason } => {
                ApiError::new(StatusCode::CONFLICT, "conflict", format!("{what}: {reason}"))
            }
            catalog::Error::Invalid { field, reason } => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_field",
                format!("{field}: {reason}"),
            ),
            catalog::Error::Unavailable(source) => {
                tracing::error!(error = %source, "catalog unavailable");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
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
                ApiError::bad_request("invalid_key", format!("invalid key {key:?}: {reason}"))
            }
            E::NotFound { .. } => ApiError::not_found("object"),
            ref e @ E::RangeNotSatisfiable { .. } => ApiError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "range_not_satisfiable",
                e.to_string(),
            ),
            E::DigestMismatch { expected, actual, .. } => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "digest_mismatch",
                format!("body SHA-256 is {actual}, the request announced {expected}; nothing was stored"),
            ),
            E::AlreadyExists { .. } | E::PreconditionFailed { .. } => {
                ApiError::new(StatusCode::CONFLICT, "conflict", "the object changed; retry")
            }
            E::InvalidTtl {
                requested_secs,
                max_secs,
            } => ApiError::bad_request(
                "invalid_ttl",
                format!("ttl {requested_secs} s is outside 1..={max_secs} s"),
            ),
            E::Body { source, .. } => {
                ApiError::bad_request("body_error", format!("reading the body failed: {source}"))
            }
            ref e @ (E::AccessDenied { .. }
            | E::Config { .. }
            | E::Unsupported { .. }
            | E::LocalFile { .. }
            | E::Backend { .. }) => {
                tracing::error!(error = %e, "object store error");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "storage_unavailable",
                    "object store unavailable, retry later",
                )
            }
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        let status = rejection.status();
        let code = if status == StatusCode::PAYLOAD_TOO_LARGE {
            "body_too_large"
        } else {
            "invalid_json"
        };
        ApiError::new(status, code, rejection.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError::bad_request("invalid_query", rejection.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        ApiError::bad_request("invalid_path", rejection.body_text())
    }
}
