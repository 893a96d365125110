//! The adapter under test and the helpers every behaviour uses.

#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use bytes::Bytes;
use futures::stream;
use harness::S3Server;
use storage::{S3Config, Secret, StorageKey, Store};

/// The settings of a store over `server`'s bucket under `prefix` (each test a namespace of its own in the
/// shared bucket), signing with `secret`.
pub fn s3_config(server: &S3Server, secret: &str, prefix: &str) -> S3Config {
    S3Config {
        endpoint: Some(server.endpoint.parse().unwrap()),
        region: server.region.clone(),
        bucket: server.bucket.clone(),
        access_key_id: server.access_key_id.clone(),
        secret_access_key: Secret::new(secret.into()),
        prefix: Some(StorageKey::parse(prefix).unwrap()),
        path_style: true,
    }
}

/// What a presigned URL fetch answered.
#[derive(Debug, PartialEq, Eq)]
pub enum Fetched {
    /// 200 with these bytes.
    Ok(Vec<u8>),
    /// Refused (403 from S3, a verify error locally).
    Refused,
}

/// The adapter under test.
pub struct Subject {
    pub store: Store,
    pub kind: Kind,
    /// Keeps the local root alive.
    pub root: Option<tempfile::TempDir>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Local,
    S3,
    Memory,
}

impl Subject {
    pub async fn fetch(&self, url: &url::Url) -> Fetched {
        match self.kind {
            Kind::S3 => {
                let response = reqwest::get(url.clone()).await.unwrap();
                match response.status().as_u16() {
                    200 => Fetched::Ok(response.bytes().await.unwrap().to_vec()),
                    403 => Fetched::Refused,
                    other => panic!("unexpected status {other} for a presigned GET"),
                }
            }
            Kind::Local | Kind::Memory => {
                let signer = self.store.local_signer().expect("local signer");
                let path = url.path().strip_prefix("/blobs/").expect("blob route");
                let key = percent_decode(path);
                let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
                let verified = signer.verify(
                    "GET",
                    &key,
                    q.get("exp").map(String::as_str),
                    q.get("sig").map(String::as_str),
                    chrono::Utc::now(),
                );
                match verified {
                    Ok(key) => Fetched::Ok(self.store.get_bytes(&key).await.unwrap().to_vec()),
                    Err(_) => Fetched::Refused,
                }
            }
        }
    }
}

fn percent_decode(path: &str) -> String {
    percent_encoding::percent_decode_str(path)
        .decode_utf8()
        .unwrap()
        .into_owned()
}

pub fn key(s: &str) -> StorageKey {
    StorageKey::parse(s).unwrap()
}

/// Deterministic pseudo-random bytes (xorshift), so a failure is reproducible.
pub fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A body as a stream of uneven chunks.
pub fn chunked(
    bytes: &[u8],
    chunk: usize,
) -> impl futures::Stream<Item = std::io::Result<Bytes>> + Send + 'static {
    let chunks: Vec<std::io::Result<Bytes>> = bytes
        .chunks(chunk.max(1))
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    stream::iter(chunks)
}
