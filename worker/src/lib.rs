//! The thumbnail worker: leases `thumbnail` jobs from an `iphoto-server` over HTTP (`POST /worker/jobs/lease`,
//! `/result`, `/fail`: the wire types are in `api`), reads each original through its presigned URL and writes
//! the derivative to the object store under the key the lease names. It never opens the catalog.
//!
//! - [`thumbnail`] — the codec, pure and blocking: one original on disk in, one decode, a bounded-size JPEG
//!   thumbnail and a large JPEG preview out.
//! - [`run_thumbnail_worker`] and [`run_once`] — the lease loop around it.
//! - [`cli`] — the command line (`iphoto-worker thumbnail`, also `iphoto-server worker thumbnail`), which
//!   `iphoto-server serve --workers thumbnail` shares through [`cli::ThumbnailOptions`] to run the same loop
//!   in-process.

pub mod cli;
mod run;
pub mod thumbnail;

pub use run::{
    Outcome, Worked, WorkerSettings, default_concurrency, read_token_file, run_once, run_thumbnail_worker,
};
