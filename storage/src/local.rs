//! The local adapter: `object_store`'s `LocalFileSystem` under one root directory.
//!
//! `LocalFileSystem` writes to a staging file and renames it into place, so a crash never leaves a half file
//! under a real key; keys are validated by [`crate::StorageKey`] before they reach it, so none resolves outside
//! the root. Presigned URLs point at the server's `/blobs/` route and are checked by [`crate::LocalSigner`].

use std::sync::Arc;

use object_store::local::LocalFileSystem;

use crate::config::LocalConfig;
use crate::error::{Error, Result};
use crate::presign::{LocalSigner, PresignPolicy};
use crate::store::{Presigner, Store};

/// Builds a store under `config.root`, creating the directory if needed.
pub fn build(config: &LocalConfig, policy: PresignPolicy) -> Result<Store> {
    std::fs::create_dir_all(&config.root).map_err(|e| Error::Config {
        variable: "IPHOTO_STORAGE_LOCAL_PATH",
        reason: format!("cannot create {}: {e}", config.root.display()),
    })?;
    let fs = LocalFileSystem::new_with_prefix(&config.root)
        .map_err(|e| Error::Config {
            variable: "IPHOTO_STORAGE_LOCAL_PATH",
            reason: format!("cannot use {}: {e}", config.root.display()),
        })?
        // Deleting the last object of a directory removes the directory, so listings do not fill with
        // empty prefixes.
        .with_automatic_cleanup(true);
    let signer = LocalSigner::new(&config.presign_secret, &config.public_url)?;
    let describe = format!("local:{}", config.root.display());
    Ok(Store::from_parts(
        Arc::new(fs),
        Presigner::Local(Box::new(signer)),
        policy,
        describe,
        false,
        Some(crate::put::LOCAL_WRITE_PART),
        Some(config.root.clone()),
    ))
}
