//! The S3 adapter: `object_store`'s `AmazonS3`, SigV4 on every request and every presigned URL.

use std::sync::Arc;
use std::time::Duration;

use object_store::ClientOptions;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::prefix::PrefixStore;

use crate::config::S3Config;
use crate::error::{Error, Result};
use crate::presign::PresignPolicy;
use crate::store::{Presigner, Store};

/// Connection timeouts: a store that is down fails a request within seconds rather than hanging.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// A request with no progress for this long fails (and is retried by `object_store`).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// Builds a store over an S3-compatible bucket. No request is made: use [`Store::check`] to prove the
/// credentials.
pub fn build(config: &S3Config, policy: PresignPolicy) -> Result<Store> {
    // Client options first: `with_client_options` replaces them all, `allow_http` included.
    let options = ClientOptions::new()
        .with_connect_timeout(CONNECT_TIMEOUT)
        .with_timeout(REQUEST_TIMEOUT)
        .with_allow_http(config.endpoint.as_ref().is_some_and(|u| u.scheme() == "http"));
    let mut builder = AmazonS3Builder::new()
        .with_client_options(options)
        .with_region(&config.region)
        .with_bucket_name(&config.bucket)
        .with_access_key_id(&config.access_key_id)
        .with_secret_access_key(config.secret_access_key.expose())
        .with_virtual_hosted_style_request(!config.path_style);
    if let Some(endpoint) = &config.endpoint {
        builder = builder.with_endpoint(endpoint.as_str().trim_end_matches('/'));
    }
    let s3: Arc<AmazonS3> = Arc::new(builder.build().map_err(|e| Error::Config {
        variable: "IPHOTO_S3_ENDPOINT",
        reason: format!("cannot build the S3 client: {e}"),
    })?);
    let objects: Arc<dyn object_store::ObjectStore> = match &config.prefix {
        Some(prefix) => Arc::new(PrefixStore::new(Arc::clone(&s3), crate::store::path(prefix))),
        None => Arc::clone(&s3) as Arc<dyn object_store::ObjectStore>,
    };
    let describe = format!(
        "s3:{}@{}{}",
        config.bucket,
        config
            .endpoint
            .as_ref()
            .map_or("aws", |u| u.as_str())
            .trim_end_matches('/'),
        config
            .prefix
            .as_ref()
            .map(|p| format!("/{p}"))
            .unwrap_or_default()
    );
    let presigner = Presigner::S3 {
        signer: s3,
        prefix: config.prefix.clone(),
    };
    Ok(Store::from_parts(
        objects, presigner, policy, describe, true, None, None,
    ))
}
