//! What can go wrong while reading a library, phrased for the caller: each variant names the file and says whether
//! the user pointed us at the wrong thing (missing, not a database, not Photos) or the read itself failed.

use std::path::PathBuf;

/// A library could not be opened or read.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Nothing at the path: the library was moved, renamed or never existed.
    #[error("{}: not found ({reason})", path.display())]
    NotFound {
        /// The path that was looked up.
        path: PathBuf,
        /// What was expected there.
        reason: &'static str,
    },
    /// The OS refused to let us read the library (EACCES/EPERM). On a Mac this is nearly always privacy
    /// protection: the Photos library may only be read by an app the user gave Full Disk Access.
    #[error(
        "{}: not allowed to read the Photos library; on macOS give iphoto-agent (or the app that starts it: \
         Terminal, or the launchd job's binary) Full Disk Access in System Settings › Privacy & Security › \
         Full Disk Access, then run it again",
        path.display()
    )]
    PermissionDenied {
        /// The file or directory that could not be read.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The file exists but is not a readable SQLite database (truncated, encrypted or random bytes).
    #[error("{}: not a readable SQLite database", path.display())]
    NotSqlite {
        /// The database file.
        path: PathBuf,
        /// SQLite's own complaint.
        #[source]
        source: rusqlite::Error,
    },
    /// A valid SQLite database, but not one written by Photos 5 or later.
    #[error("{}: not a Photos library database: {reason}", path.display())]
    NotPhotosLibrary {
        /// The database file.
        path: PathBuf,
        /// Which expected table or row is absent.
        reason: String,
    },
    /// A query failed on a database that looked like a Photos library; the schema may be newer than we know.
    #[error("{}: reading the Photos database failed", path.display())]
    Database {
        /// The database file.
        path: PathBuf,
        /// The failing query's error.
        #[source]
        source: rusqlite::Error,
    },
    /// A file-system operation failed (copying a locked database, walking a folder, reading metadata).
    #[error("{}: {action} failed", path.display())]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// What we were doing.
        action: &'static str,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// An I/O error on a library path: [`Error::PermissionDenied`] when the OS refused access, else
    /// [`Error::Io`] with `action`.
    pub(crate) fn io(path: &std::path::Path, action: &'static str, source: std::io::Error) -> Error {
        if source.kind() == std::io::ErrorKind::PermissionDenied {
            Error::PermissionDenied {
                path: path.to_path_buf(),
                source,
            }
        } else {
            Error::Io {
                path: path.to_path_buf(),
                action,
                source,
            }
        }
    }
}

/// Result of library reads.
pub type Result<T, E = Error> = std::result::Result<T, E>;
