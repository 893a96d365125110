//! What can go wrong with the store, by what the caller can do about it.

/// A storage error. Variants say what the caller can do; the backend's own error is kept as the source.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The key breaks a rule of [`crate::StorageKey`]: a client error, nothing was touched.
    #[error("invalid storage key \"{key}\": {reason}")]
    InvalidKey {
        /// The rejected key, escaped and shortened for display.
        key: String,
        /// Which rule it broke.
        reason: &'static str,
    },

    /// No object under that key.
    #[error("no object at {key}")]
    NotFound {
        /// The missing key.
        key: String,
    },

    /// The byte range starts at or past the end of the object, or is empty.
    #[error("byte range {start}..{end} cannot be satisfied for {key}")]
    RangeNotSatisfiable {
        /// The object.
        key: String,
        /// First byte asked for.
        start: u64,
        /// One past the last byte asked for.
        end: u64,
    },

    /// The bytes did not hash to the SHA-256 the caller expected; nothing was stored under the key.
    #[error("SHA-256 of the body for {key} is {actual}, expected {expected}; nothing was stored")]
    DigestMismatch {
        /// The key that was not written.
        key: String,
        /// Lower-case hex digest the caller announced.
        expected: String,
        /// Lower-case hex digest of what arrived.
        actual: String,
    },

    /// A create-only write found an object already there.
    #[error("an object already exists at {key}")]
    AlreadyExists {
        /// The key.
        key: String,
    },

    /// File-system attributes that do not fit in the metadata an object may carry.
    #[error("the attributes of {key} take {bytes} bytes of object metadata; at most {limit} fit")]
    MetadataTooLarge {
        /// The key.
        key: String,
        /// Bytes the metadata would take.
        bytes: usize,
        /// The limit.
        limit: usize,
    },

    /// A conditional write or read found the object changed.
    #[error("the object at {key} changed since it was read")]
    PreconditionFailed {
        /// The key.
        key: String,
    },

    /// The store refused the credentials or the signature: a configuration problem, not a missing object.
    #[error("the object store refused access ({hint}): {source}")]
    AccessDenied {
        /// Which settings to check.
        hint: &'static str,
        /// The backend's answer.
        #[source]
        source: object_store::Error,
    },

    /// A presigned URL was asked for with a TTL outside the allowed range.
    #[error("presign TTL of {requested_secs} s is not allowed (must be 1 to {max_secs} s)")]
    InvalidTtl {
        /// Asked for, seconds.
        requested_secs: u64,
        /// The configured maximum, seconds.
        max_secs: u64,
    },

    /// The storage configuration is missing a setting or contradicts itself; names the variable.
    #[error("storage configuration: {variable}: {reason}")]
    Config {
        /// The environment variable (or flag) at fault.
        variable: &'static str,
        /// What is wrong with it.
        reason: String,
    },

    /// Reading the caller's body stream failed; nothing was stored under the key.
    #[error("reading the body for {key} failed; nothing was stored: {source}")]
    Body {
        /// The key that was not written.
        key: String,
        /// The body's error.
        #[source]
        source: std::io::Error,
    },

    /// A local file (the destination of a download) could not be written.
    #[error("cannot write {path}: {source}")]
    LocalFile {
        /// The file.
        path: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },

    /// The operation is not supported in this form.
    #[error("not supported: {what}")]
    Unsupported {
        /// What was asked for.
        what: &'static str,
    },

    /// The backend failed (network, disk, server error): retrying may help.
    #[error("object store failed on {key}: {source}")]
    Backend {
        /// The key (or prefix) of the operation.
        key: String,
        /// The backend's error.
        #[source]
        source: object_store::Error,
    },
}

/// Short for `Result<T, storage::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Maps an `object_store` error on `key` to the variant the caller can act on.
    pub(crate) fn from_backend(key: &str, source: object_store::Error) -> Self {
        let key = key.to_owned();
        match source {
            object_store::Error::NotFound { .. } => Error::NotFound { key },
            object_store::Error::AlreadyExists { .. } => Error::AlreadyExists { key },
            object_store::Error::Precondition { .. } => Error::PreconditionFailed { key },
            object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. } => {
                Error::AccessDenied {
                    hint: CREDENTIALS_HINT,
                    source,
                }
            }
            // S3 list answers a refused signature as a Generic error with the S3 code in its text.
            ref generic @ object_store::Error::Generic { .. } if is_access_denied(generic) => {
                Error::AccessDenied {
                    hint: CREDENTIALS_HINT,
                    source,
                }
            }
            source => Error::Backend { key, source },
        }
    }
}

const CREDENTIALS_HINT: &str =
    "check IPHOTO_S3_ACCESS_KEY_ID, IPHOTO_S3_SECRET_ACCESS_KEY and the bucket policy";

fn is_access_denied(error: &object_store::Error) -> bool {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(inner) = source {
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    [
        "SignatureDoesNotMatch",
        "InvalidAccessKeyId",
        "AccessDenied",
        "403 Forbidden",
    ]
    .iter()
    .any(|code| text.contains(code))
}
