//! The header fields of draft-ietf-httpbis-resumable-upload, across the interop versions Apple's URLSession
//! and other clients speak: parsing requests, and the fields every answer carries.
//!
//! Interop versions (the `Upload-Draft-Interop-Version` field): 3 and 4 (drafts -01/-02) say
//! `Upload-Incomplete: ?1` where later ones say `Upload-Complete: ?0`; 5 (drafts -03/-04) brings
//! `Upload-Complete`; 6 (draft -05) `Upload-Length`; 7 (draft -06) `Upload-Limit` and the
//! `application/partial-upload` media type of appends; 8 is draft -15. A request without the field is taken
//! as version 8 (what a client of the final RFC, which drops the field, sends).

use api::ErrorCode;
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use storage::Sha256Digest;

use crate::http::error::ApiError;

/// `Upload-Draft-Interop-Version`.
pub(crate) const INTEROP_VERSION: HeaderName = HeaderName::from_static("upload-draft-interop-version");
/// `Upload-Complete` (version 5 on).
pub(crate) const UPLOAD_COMPLETE: HeaderName = HeaderName::from_static("upload-complete");
/// `Upload-Incomplete` (versions 3 and 4).
pub(crate) const UPLOAD_INCOMPLETE: HeaderName = HeaderName::from_static("upload-incomplete");
/// `Upload-Offset`.
pub(crate) const UPLOAD_OFFSET: HeaderName = HeaderName::from_static("upload-offset");
/// `Upload-Length`.
pub(crate) const UPLOAD_LENGTH: HeaderName = HeaderName::from_static("upload-length");
/// `Upload-Limit`.
pub(crate) const UPLOAD_LIMIT: HeaderName = HeaderName::from_static("upload-limit");
/// `Repr-Digest` (RFC 9530): the digest of the whole upload.
pub(crate) const REPR_DIGEST: HeaderName = HeaderName::from_static("repr-digest");
/// The media type of an append (version 7 on).
pub(crate) const PARTIAL_UPLOAD: &str = "application/partial-upload";
/// The interop versions answered.
pub(crate) const VERSIONS: std::ops::RangeInclusive<u8> = 3..=8;

/// The interop version a request speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Interop(pub(crate) u8);

impl Interop {
    /// From `Upload-Draft-Interop-Version` (absent: 8); another number is a 400.
    pub(crate) fn of(headers: &HeaderMap) -> Result<Self, ApiError> {
        let Some(value) = headers.get(INTEROP_VERSION) else {
            return Ok(Self(8));
        };
        let version = value
            .to_str()
            .ok()
            .and_then(|v| v.trim().parse::<u8>().ok())
            .filter(|v| VERSIONS.contains(v))
            .ok_or_else(|| {
                ApiError::bad_request(
                    ErrorCode::InvalidHeader,
                    "Upload-Draft-Interop-Version: this server speaks interop versions 3 to 8",
                )
            })?;
        Ok(Self(version))
    }

    /// Whether a request asks for a resumable upload: it carries the completion field of its version.
    pub(crate) fn is_resumable(headers: &HeaderMap) -> bool {
        headers.contains_key(UPLOAD_COMPLETE) || headers.contains_key(UPLOAD_INCOMPLETE)
    }

    /// Whether the request's content ends the upload (`Upload-Complete: ?1`, or `Upload-Incomplete: ?0`
    /// before version 5). Missing or not a structured boolean: 400.
    pub(crate) fn complete(self, headers: &HeaderMap) -> Result<bool, ApiError> {
        let (name, inverted) = if self.0 < 5 {
            (UPLOAD_INCOMPLETE, true)
        } else {
            (UPLOAD_COMPLETE, false)
        };
        let value = headers.get(&name).ok_or_else(|| {
            ApiError::bad_request(ErrorCode::InvalidHeader, format!("{name}: required (?0 or ?1)"))
        })?;
        let flag = boolean(value).ok_or_else(|| {
            ApiError::bad_request(ErrorCode::InvalidHeader, format!("{name}: must be ?0 or ?1"))
        })?;
        Ok(flag != inverted)
    }

    /// The fields that say whether the upload is complete, in this version's words.
    pub(crate) fn completion(self, complete: bool, headers: &mut HeaderMap) {
        let flag = |b: bool| HeaderValue::from_static(if b { "?1" } else { "?0" });
        if self.0 < 5 {
            headers.insert(UPLOAD_INCOMPLETE, flag(!complete));
        } else {
            headers.insert(UPLOAD_COMPLETE, flag(complete));
        }
        self.announce(headers);
    }

    /// The version field alone, for an answer that says nothing of completion (the `104`).
    pub(crate) fn announce(self, headers: &mut HeaderMap) {
        headers.insert(INTEROP_VERSION, HeaderValue::from(u16::from(self.0)));
    }

    /// Whether an append must be `application/partial-upload`.
    pub(crate) fn needs_partial_upload_type(self) -> bool {
        self.0 >= 7
    }
}

/// A structured-field boolean.
fn boolean(value: &HeaderValue) -> Option<bool> {
    match value.as_bytes() {
        b"?1" => Some(true),
        b"?0" => Some(false),
        _ => None,
    }
}

/// A non-negative structured-field integer field (`Upload-Offset`, `Upload-Length`); absent: `None`.
pub(crate) fn integer(headers: &HeaderMap, name: &HeaderName) -> Result<Option<u64>, ApiError> {
    headers
        .get(name)
        .map(|v| {
            v.to_str()
                .ok()
                .filter(|s| !s.is_empty() && s.len() <= 15 && s.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| {
                    ApiError::bad_request(
                        ErrorCode::InvalidHeader,
                        format!("{name}: must be a non-negative integer"),
                    )
                })
        })
        .transpose()
}

/// `Repr-Digest: sha-256=:<base64>:` (other algorithms are ignored, as RFC 9530 allows).
pub(crate) fn repr_digest(headers: &HeaderMap) -> Result<Option<Sha256Digest>, ApiError> {
    let Some(value) = headers.get(REPR_DIGEST) else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or_default();
    let Some(item) = text.split(',').map(str::trim).find(|i| i.starts_with("sha-256=")) else {
        return Ok(None);
    };
    item.strip_prefix("sha-256=:")
        .and_then(|rest| rest.strip_suffix(':'))
        .and_then(Sha256Digest::from_base64)
        .map(Some)
        .ok_or_else(|| {
            ApiError::bad_request(
                ErrorCode::InvalidHeader,
                "Repr-Digest: expected sha-256=:<base64>:",
            )
        })
}

/// What the server takes: `max-size` (the upload limit), `min-append-size` (one part: each append but the
/// last should fill at least one), `max-age` (seconds an upload may stay idle before it is aborted).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) max_size: u64,
    pub(crate) min_append_size: u64,
    pub(crate) max_age: std::time::Duration,
}

impl Limits {
    /// `Upload-Limit` as a structured dictionary.
    pub(crate) fn insert(&self, headers: &mut HeaderMap) {
        let text = format!(
            "max-size={}, min-append-size={}, max-age={}",
            self.max_size,
            self.min_append_size,
            self.max_age.as_secs()
        );
        if let Ok(value) = HeaderValue::from_str(&text) {
            headers.insert(UPLOAD_LIMIT, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(fields: &[(&'static str, &'static str)]) -> HeaderMap {
        fields
            .iter()
            .map(|(n, v)| (HeaderName::from_static(n), HeaderValue::from_static(v)))
            .collect()
    }

    #[test]
    fn completion_reads_the_field_of_each_version() {
        for (fields, complete) in [
            (vec![("upload-complete", "?1")], Some(true)),
            (vec![("upload-complete", "?0")], Some(false)),
            (
                vec![("upload-draft-interop-version", "6"), ("upload-complete", "?0")],
                Some(false),
            ),
            (
                vec![("upload-draft-interop-version", "3"), ("upload-incomplete", "?1")],
                Some(false),
            ),
            (
                vec![("upload-draft-interop-version", "3"), ("upload-incomplete", "?0")],
                Some(true),
            ),
            (
                vec![("upload-draft-interop-version", "3"), ("upload-complete", "?1")],
                None,
            ),
            (vec![("upload-complete", "1")], None),
            (vec![], None),
        ] {
            let h = headers(&fields);
            let got = Interop::of(&h).and_then(|v| v.complete(&h)).ok();
            assert_eq!(got, complete, "{fields:?}");
        }
        assert!(Interop::of(&headers(&[("upload-draft-interop-version", "2")])).is_err());
        assert!(Interop::of(&headers(&[("upload-draft-interop-version", "9")])).is_err());
    }

    #[test]
    fn integers_are_plain_non_negative_numbers() {
        for (value, parsed) in [
            ("0", Some(0)),
            ("1048576", Some(1_048_576)),
            ("-1", None),
            ("1.5", None),
            ("", None),
        ] {
            let mut h = HeaderMap::new();
            h.insert(UPLOAD_OFFSET, HeaderValue::from_static(value));
            assert_eq!(integer(&h, &UPLOAD_OFFSET).ok().flatten(), parsed, "{value:?}");
        }
    }
}
