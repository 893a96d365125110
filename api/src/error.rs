//! The one error envelope every route answers with, and the codes it carries.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `{ "error": { "code": "snake_case_code", "message": "…" } }`: the body of every non-2xx answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// A stable machine-readable code and a human message naming the field or value at fault.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable code a client may branch on.
    pub code: ErrorCode,
    /// What is wrong, for a person; never internal detail on a 5xx.
    pub message: String,
}

impl ErrorBody {
    /// Builds an envelope from a code and a message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            error: ErrorDetail {
                code,
                message: message.into(),
            },
        }
    }
}

macro_rules! error_codes {
    ($($(#[doc = $doc:literal])* $variant:ident => $name:literal,)*) => {
        /// Every `code` the server answers with, by what the client can do about it. Codes are never renamed;
        /// new ones may be added (a client built before them reads them as `Unknown`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum ErrorCode {
            $($(#[doc = $doc])* $variant,)*
            /// A code this build does not know (sent by a newer server); never sent.
            #[serde(other, skip_serializing)]
            Unknown,
        }

        impl ErrorCode {
            /// Every code the server sends, in declaration order.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)*];

            /// The wire name.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $name,)*
                    ErrorCode::Unknown => "unknown",
                }
            }
        }
    };
}

error_codes! {
    /// 400: the request is malformed at the HTTP level (hyper's or axum's own rejection).
    BadRequest => "bad_request",
    /// 400: the body is not JSON, or not the JSON the route takes.
    InvalidJson => "invalid_json",
    /// 400: a query parameter is missing, unknown or out of its range.
    InvalidQuery => "invalid_query",
    /// 400: a path segment is not what the route takes.
    InvalidPath => "invalid_path",
    /// 400: a header is malformed (`Content-Length`, `X-Content-SHA256`, `Content-Digest`).
    InvalidHeader => "invalid_header",
    /// 400: a page cursor this list did not hand out (forged, cut short, of another list or user).
    InvalidCursor => "invalid_cursor",
    /// 400: a search (`q`) that is empty or longer than 200 characters.
    InvalidSearch => "invalid_search",
    /// 400: an object key that is not valid.
    InvalidKey => "invalid_key",
    /// 400: a presigned URL's lifetime outside what the store allows.
    InvalidTtl => "invalid_ttl",
    /// 400: reading the request body failed.
    BodyError => "body_error",
    /// 400: a resumable upload's append ended before its content did; the bytes received are kept (ask for
    /// the offset with `HEAD` and append from there).
    BodyInterrupted => "body_interrupted",
    /// 400: an append to a resumable upload that is already complete (the answer carries `Upload-Offset`).
    CompletedUpload => "completed_upload",
    /// 400: a resumable upload's `Upload-Length` differs from the one announced before, or is below the bytes
    /// already received.
    InconsistentUploadLength => "inconsistent_upload_length",
    /// 400 or 422: a field's value is not acceptable; the message names the field.
    InvalidField => "invalid_field",
    /// 400: an object's metadata (a mount's extended attributes) is larger than the store keeps.
    MetadataTooLarge => "metadata_too_large",
    /// 401: no bearer token, or an unknown or revoked one.
    Unauthorized => "unauthorized",
    /// 403: the token is valid but of another scope than the route's.
    WrongScope => "wrong_scope",
    /// 403: access refused.
    Forbidden => "forbidden",
    /// 403: a presigned URL past its expiry.
    Expired => "expired",
    /// 403: a presigned URL whose signature does not verify.
    InvalidSignature => "invalid_signature",
    /// 404: no such route, or nothing of the caller's by that id.
    NotFound => "not_found",
    /// 405: the route exists but not with this method (`Allow` lists the ones it takes).
    MethodNotAllowed => "method_not_allowed",
    /// 408: the request, or its body, took longer than the server waits.
    RequestTimeout => "request_timeout",
    /// 409: the request clashes with what is stored; the message says how.
    Conflict => "conflict",
    /// 409: another upload stored other bytes for this resource first.
    UploadConflict => "upload_conflict",
    /// 409: another of the caller's libraries (a second Mac of one iCloud library) uploads this resource.
    HeldByAnotherLibrary => "held_by_another_library",
    /// 409: an append's `Upload-Offset` is not the resumable upload's offset (the answer carries the right
    /// one in `Upload-Offset`).
    MismatchingUploadOffset => "mismatching_upload_offset",
    /// 409: another request (on another replica) is appending to this resumable upload; ask for the offset
    /// again shortly.
    UploadInProgress => "upload_in_progress",
    /// 409: a newer request for this resumable upload took it over while this append ran; ask for the offset.
    UploadSuperseded => "upload_superseded",
    /// 413: the body is larger than the route takes.
    BodyTooLarge => "body_too_large",
    /// 413: more items in one request than the server takes.
    BatchTooLarge => "batch_too_large",
    /// 414: the request target is longer than the server reads.
    UriTooLong => "uri_too_long",
    /// 415: the body's `Content-Type` is not the one the route takes.
    UnsupportedMediaType => "unsupported_media_type",
    /// 416: a `Range` outside the object.
    RangeNotSatisfiable => "range_not_satisfiable",
    /// 422: the body's SHA-256 is not the one announced or declared; nothing was stored.
    DigestMismatch => "digest_mismatch",
    /// 422: the body's size is not the one declared at sync; nothing was stored.
    SizeMismatch => "size_mismatch",
    /// 422: the body is well-formed JSON that the route cannot apply.
    InvalidBody => "invalid_body",
    /// 431: the request headers are larger than the server reads.
    HeadersTooLarge => "headers_too_large",
    /// 4xx: another client error.
    ClientError => "client_error",
    /// 500: the server failed; the detail is in its log, never in the answer.
    Internal => "internal",
    /// 503: the catalog is unreachable; retry later.
    Unavailable => "unavailable",
    /// 503: the object store is unreachable; retry later.
    StorageUnavailable => "storage_unavailable",
    /// 503 from `/readyz`: the catalog or the object store does not answer.
    NotReady => "not_ready",
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_serialise_as_their_snake_case_names() {
        for code in ErrorCode::ALL {
            let json = serde_json::to_value(code).unwrap();
            assert_eq!(json, serde_json::json!(code.as_str()));
            let back: ErrorCode = serde_json::from_value(json).unwrap();
            assert_eq!(back, *code);
        }
        let body = ErrorBody::new(ErrorCode::WrongScope, "needs web");
        assert_eq!(
            serde_json::to_value(&body).unwrap(),
            serde_json::json!({"error": {"code": "wrong_scope", "message": "needs web"}})
        );
    }

    #[test]
    fn a_code_from_a_newer_server_reads_as_unknown_and_keeps_the_message() {
        let body: ErrorBody =
            serde_json::from_str(r#"{"error":{"code":"added_later","message":"m"}}"#).unwrap();
        assert_eq!(body.error.code, ErrorCode::Unknown);
        assert_eq!(body.error.message, "m");
        assert!(serde_json::to_value(ErrorCode::Unknown).is_err(), "never sent");
    }
}
