//! What can go wrong in the mount, by what the caller (the kernel, then the application) sees. All errno
//! mapping happens here, in [`Error::errno`], and nowhere else: a front end (FUSE today) only forwards it.

/// A file-system error. Variants say what the application will see; the cause is kept as the source.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No such entry; only said when a fresh listing proves it (a failed listing is [`Error::Store`]).
    #[error("no such file or directory: {name}")]
    NotFound {
        /// The name or inode looked up.
        name: String,
    },

    /// A write on a read-only mount.
    #[error("the mount is read-only")]
    ReadOnly,

    /// A file operation on a directory.
    #[error("is a directory: {name}")]
    IsDirectory {
        /// The entry.
        name: String,
    },

    /// A directory operation on a file.
    #[error("not a directory: {name}")]
    NotDirectory {
        /// The entry.
        name: String,
    },

    /// A name that cannot be an object key (control characters, `#123` suffixes, too long).
    #[error("invalid name {name:?}")]
    InvalidName {
        /// The name.
        name: String,
    },

    /// A file handle the core does not know (closed already).
    #[error("bad file handle {handle}")]
    BadHandle {
        /// The handle.
        handle: u64,
    },

    /// The object changed in the store while it was open: its bytes can no longer be read consistently.
    #[error("{key} changed in the store while it was open")]
    Stale {
        /// The object.
        key: String,
    },

    /// The object changed in the store while our version of it was being uploaded (found by the check before
    /// a multipart upload completes): the upload keeps ours aside under a conflict name instead.
    #[error("{key} changed in the store during the upload")]
    Conflict {
        /// The object.
        key: String,
    },

    /// The store failed or refused: the entry is unknown, never treated as deleted.
    #[error("object store: {0}")]
    Store(#[from] storage::Error),

    /// The store did not answer within the request timeout.
    #[error("the object store did not answer {what} within {seconds} s")]
    Timeout {
        /// The operation.
        what: &'static str,
        /// The timeout.
        seconds: u64,
    },

    /// The cache directory failed (disk full, permissions).
    #[error("cache directory: {0}")]
    CacheIo(#[from] std::io::Error),

    /// The cache index could not be read back.
    #[error("cache index {path}: {reason}")]
    CacheIndex {
        /// The index file.
        path: String,
        /// What is wrong.
        reason: String,
    },

    /// The dirty-data budget stayed full for the whole timeout: uploads are not keeping up.
    #[error("no room for more unsaved data")]
    NoSpace,

    /// A directory that still has entries.
    #[error("directory not empty: {name}")]
    NotEmpty {
        /// The directory.
        name: String,
    },

    /// The name is taken.
    #[error("already exists: {name}")]
    Exists {
        /// The entry.
        name: String,
    },

    /// Renaming a directory: done by the caller as copy + delete (`mv` does that on EXDEV).
    #[error("renaming a directory is not done in place: {name}")]
    CrossDevice {
        /// The directory.
        name: String,
    },

    /// The operation is not implemented for this mount (writes before the write path exists).
    #[error("not supported: {what}")]
    Unsupported {
        /// What was asked for.
        what: &'static str,
    },

    /// A fetch shared by several readers failed; each of them gets the same error.
    #[error("{0}")]
    Shared(std::sync::Arc<Error>),

    /// A background task panicked: a bug, reported as an I/O error rather than taking the mount down.
    #[error("internal task failed: {what}")]
    Panicked {
        /// Which task.
        what: &'static str,
    },

    /// Mounting or unmounting failed.
    #[error("mount {mountpoint}: {source}")]
    Mount {
        /// Where.
        mountpoint: String,
        /// The kernel's answer.
        #[source]
        source: std::io::Error,
    },

    /// An extended attribute the entry does not have.
    #[error("no attribute {name}")]
    NoAttribute {
        /// The attribute.
        name: String,
    },

    /// An attribute the mount answers itself and does not let be changed.
    #[error("the attribute {name} cannot be changed")]
    ReadOnlyAttribute {
        /// The attribute.
        name: String,
    },

    /// The object's metadata (mtime and extended attributes) would exceed what the store keeps per object.
    #[error(
        "the attributes of {name} would take {bytes} bytes of object metadata; the store keeps at most {limit}"
    )]
    AttributesTooLarge {
        /// The entry.
        name: String,
        /// The metadata's size with the change.
        bytes: usize,
        /// The store's limit.
        limit: usize,
    },

    /// A pin that would take all pins past their share of the cache.
    #[error("{reason}")]
    PinTooLarge {
        /// The figures.
        reason: String,
    },

    /// The configuration contradicts itself.
    #[error("configuration: {0}")]
    Config(String),
}

/// Short for `Result<T, mount::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The errno an application sees for this error. The one place errors become numbers.
    pub fn errno(&self) -> i32 {
        match self {
            Error::NotFound { .. } => libc::ENOENT,
            Error::ReadOnly => libc::EROFS,
            Error::IsDirectory { .. } => libc::EISDIR,
            Error::NotDirectory { .. } => libc::ENOTDIR,
            Error::InvalidName { .. } => libc::EINVAL,
            Error::BadHandle { .. } => libc::EBADF,
            Error::Store(storage::Error::NotFound { .. }) => libc::ENOENT,
            Error::Store(storage::Error::AccessDenied { .. }) => libc::EACCES,
            Error::Store(storage::Error::InvalidKey { .. }) => libc::EINVAL,
            Error::CacheIo(e) if e.raw_os_error() == Some(libc::ENOSPC) => libc::ENOSPC,
            Error::Unsupported { .. } => libc::ENOTSUP,
            Error::NoSpace | Error::PinTooLarge { .. } => libc::ENOSPC,
            Error::NotEmpty { .. } => libc::ENOTEMPTY,
            Error::Exists { .. } => libc::EEXIST,
            Error::CrossDevice { .. } => libc::EXDEV,
            Error::NoAttribute { .. } => libc::ENODATA,
            Error::ReadOnlyAttribute { .. } => libc::EPERM,
            Error::AttributesTooLarge { .. } => libc::E2BIG,
            Error::Shared(inner) => inner.errno(),
            Error::Stale { .. }
            | Error::Conflict { .. }
            | Error::Store(_)
            | Error::Timeout { .. }
            | Error::CacheIo(_)
            | Error::CacheIndex { .. }
            | Error::Panicked { .. }
            | Error::Mount { .. }
            | Error::Config(_) => libc::EIO,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(error: Error, errno: i32) {
        assert_eq!(error.errno(), errno, "{error}");
    }

    #[test]
    fn errors_map_to_errno() {
        check(Error::NotFound { name: "a".into() }, libc::ENOENT);
        check(Error::ReadOnly, libc::EROFS);
        check(
            Error::Timeout {
                what: "get",
                seconds: 1,
            },
            libc::EIO,
        );
        check(
            Error::Store(storage::Error::NotFound { key: "k".into() }),
            libc::ENOENT,
        );
        check(Error::Store(storage::Error::Unsupported { what: "x" }), libc::EIO);
        check(
            Error::CacheIo(std::io::Error::from_raw_os_error(libc::ENOSPC)),
            libc::ENOSPC,
        );
        check(Error::CacheIo(std::io::Error::other("x")), libc::EIO);
        check(Error::Conflict { key: "k".into() }, libc::EIO);
        check(
            Error::NoAttribute {
                name: "user.a".into(),
            },
            libc::ENODATA,
        );
        check(
            Error::AttributesTooLarge {
                name: "a".into(),
                bytes: 3000,
                limit: 2048,
            },
            libc::E2BIG,
        );
    }
}
