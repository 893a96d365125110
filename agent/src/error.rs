//! What can stop the agent, phrased for the caller: the library cannot be read, the state DB cannot be used, the
//! server refused the whole request, or it could not be reached even after retrying. A refusal of one asset is not
//! an error of the pass: it is recorded in the state DB and the pass goes on.

use std::path::PathBuf;

/// An agent operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The Photos library or folder could not be read.
    #[error(transparent)]
    Library(#[from] crate::library::Error),
    /// The agent's own state database could not be opened, read or written.
    #[error("{}: state database: {action} failed", path.display())]
    State {
        /// The state database file.
        path: PathBuf,
        /// What we were doing.
        action: &'static str,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// A local file could not be read (a resource, the token file).
    #[error("{}: {action} failed", path.display())]
    Io {
        /// The file involved.
        path: PathBuf,
        /// What we were doing.
        action: &'static str,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The server answered with a client error (4xx): retrying the same request will not help.
    #[error("server refused {what}: {status} {code}: {message}")]
    Refused {
        /// Which request.
        what: String,
        /// HTTP status.
        status: u16,
        /// The stable error code from the body (`unauthorized`, `not_found`…), or `http_<status>`.
        code: String,
        /// The server's message.
        message: String,
    },
    /// The server could not be reached, or kept failing (5xx), through every retry.
    #[error("server unreachable for {what} after {attempts} attempts: {detail}")]
    Unreachable {
        /// Which request.
        what: String,
        /// How many times it was tried.
        attempts: u32,
        /// The last failure.
        detail: String,
    },
    /// The server answered 2xx with a body that is not the expected JSON.
    #[error("server answered {what} with an unexpected body")]
    BadAnswer {
        /// Which request.
        what: String,
        /// The decoding error.
        #[source]
        source: reqwest::Error,
    },
    /// The object store could not be configured or used.
    #[error(transparent)]
    Storage(#[from] storage::Error),
    /// A run finished but some of its items failed (each reported with its reason).
    #[error("{what}: {failed} items failed (listed above)")]
    Incomplete {
        /// The command.
        what: &'static str,
        /// How many failed.
        failed: u64,
    },
    /// A configuration value is unusable (empty token file, bad server URL).
    #[error("{name}: {reason}")]
    Config {
        /// The flag (and variable) at fault.
        name: &'static str,
        /// Why.
        reason: String,
    },
}

impl Error {
    /// The message followed by each of its causes, `: `-separated: for a file, its path, what was being done
    /// and the OS's own words (`…/IMG_1.HEIC: hashing failed: Permission denied (os error 13)`), which is what
    /// a person needs to act and what the state DB keeps.
    pub fn with_causes(&self) -> String {
        let mut text = self.to_string();
        let mut cause = std::error::Error::source(self);
        while let Some(error) = cause {
            text.push_str(": ");
            text.push_str(&error.to_string());
            cause = error.source();
        }
        text
    }
}

/// Result of agent operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;
