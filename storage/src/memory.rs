//! An in-memory store for other crates' unit tests (feature `test-util`). It presigns like the local adapter,
//! for a server at `http://127.0.0.1:8080`. Never the only test of an adapter: the contract suite runs against
//! the real ones, and against this double so it cannot drift.

use std::sync::Arc;

use object_store::memory::InMemory;
use url::Url;

use crate::config::Secret;
use crate::error::{Error, Result};
use crate::presign::{LocalSigner, PresignPolicy};
use crate::store::{Presigner, Store};

impl Store {
    /// A fresh, empty in-memory store.
    pub fn in_memory() -> Result<Store> {
        let secret = Secret::new("in-memory-test-secret-in-memory-test".into());
        let base = Url::parse("http://127.0.0.1:8080").map_err(|e| Error::Config {
            variable: "IPHOTO_PUBLIC_URL",
            reason: e.to_string(),
        })?;
        let presigner = Presigner::Local(Box::new(LocalSigner::new(&secret, &base)?));
        Ok(Store::from_parts(
            Arc::new(InMemory::new()),
            presigner,
            PresignPolicy::default(),
            "memory".into(),
            true,
            None,
            None,
        ))
    }
}
