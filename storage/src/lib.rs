//! The object-store port of iPhoto sync: where originals and derivatives are kept.
//!
//! One type, [`Store`], with `put` (bytes or a stream hashed on the way, multipart past one part), `get`
//! (whole or a byte range, streamed), `head`, `delete`, `list` (paged lazily), `copy` and `presign_get`; and
//! multipart uploads driven part by part (`create_multipart`, `put_part`, …) for callers that persist them; and
//! resumable writes over many requests (`resumable_start`, `resumable_append`, [`Appender`]). Two
//! real adapters behind it, both `object_store` backends: S3-compatible services ([`create_s3_store`], SigV4)
//! and a local directory (HMAC-signed URLs for the server's `/blobs/` route). Keys are validated in one place,
//! [`StorageKey`], and laid out in one place, [`LibraryLayout`].
//!
//! This crate knows no HTTP routes and no catalog. The server passes its `Store` through its state;
//! [`default_store`] is the memoized store for CLIs and workers.
//!
//! Why a concrete type and not a trait: `object_store::ObjectStore` already is the backend trait, with the
//! real adapters and an in-memory double. What differs per backend here (presigning, a key prefix) is chosen
//! once in the factory, so a second trait would only repeat `object_store`'s.

mod attributes;
mod config;
mod digest;
mod download;
mod error;
mod key;
mod layout;
mod local;
#[cfg(feature = "test-util")]
mod memory;
mod multipart;
mod presign;
mod put;
mod resumable;
mod s3;
mod sha256_state;
mod staging;
mod store;

use std::sync::OnceLock;

pub use attributes::{METADATA_LIMIT, ObjectAttributes};
pub use config::{
    Backend, BackendConfig, LocalConfig, RENAMED_ENV, S3Config, Secret, StorageArgs, StorageConfig,
};
pub use digest::{Sha256Digest, Sha256Hasher};
pub use error::{Error, Result};
pub use key::{MAX_KEY_BYTES, MAX_SEGMENT_BYTES, StorageKey};
pub use layout::{LibraryLayout, MAX_BUNDLE_PATH, bundle_path};
pub use presign::{BLOB_ROUTE, LocalSigner, PresignError, PresignPolicy, PresignedUrl};
pub use put::{MIN_PART_SIZE, PutOptions, PutReceipt, part_size};
pub use resumable::{Appender, ResumableProgress, ResumableTarget};
pub use sha256_state::Sha256State;
pub use staging::StagingSweep;
pub use store::{DirListing, GetObject, ListPage, ObjectMeta, PutMode, Store};

/// Builds the store a configuration names (`createObjectStore()` of the original system). Makes no request;
/// call [`Store::check`] to prove the store answers.
pub fn create_object_store(config: &StorageConfig) -> Result<Store> {
    match &config.backend {
        BackendConfig::Local(local) => local::build(local, config.presign),
        BackendConfig::S3(s3) => s3::build(s3, config.presign),
    }
}

/// A store over an S3 bucket with explicit credentials (`createS3Store()`): for ETL jobs that read another
/// bucket than the one configured.
pub fn create_s3_store(config: &S3Config, presign: PresignPolicy) -> Result<Store> {
    s3::build(config, presign)
}

static DEFAULT_STORE: OnceLock<Store> = OnceLock::new();

/// The process-wide store configured by the environment (`IPHOTO_STORAGE_BACKEND`, …), built on first use and
/// shared after (`defaultObjectStore()`). For CLIs and workers; the server passes its store explicitly.
pub fn default_store() -> Result<Store> {
    if let Some(store) = DEFAULT_STORE.get() {
        return Ok(store.clone());
    }
    #[derive(clap::Parser)]
    struct FromEnv {
        #[command(flatten)]
        storage: StorageArgs,
    }
    let (command, warnings) = cli_support::env::with_renamed(
        <FromEnv as clap::CommandFactory>::command(),
        RENAMED_ENV,
        &|name| std::env::var_os(name),
    );
    for warning in warnings {
        tracing::warn!("{warning}");
    }
    let config_error = |e: clap::Error| Error::Config {
        variable: "IPHOTO_STORAGE_BACKEND",
        reason: e.to_string(),
    };
    let matches = command
        .try_get_matches_from(["iphoto-storage"])
        .map_err(config_error)?;
    let parsed = <FromEnv as clap::FromArgMatches>::from_arg_matches(&matches).map_err(config_error)?;
    let store = create_object_store(&parsed.storage.into_config()?)?;
    // Two threads racing here build two equal stores; the first one set wins and both callers get it.
    Ok(DEFAULT_STORE.get_or_init(|| store).clone())
}
