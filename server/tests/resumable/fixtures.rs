//! What the resumable-upload test files share: the server they start (parts of 5 MiB, uploads up to 64 MiB),
//! the photos they sync, and what they check the store for afterwards.

use futures::TryStreamExt as _;
use serde_json::json;
use server::http::HttpSettings;

use crate::app::{Backends, TestApp, item, sha256_hex};

pub const LIB: &str = "Resumable-Library";
pub const PART: u64 = 5 * MIB;
pub const MAX: u64 = 64 * MIB;
pub const MIB: u64 = 1 << 20;
pub const M: usize = 1 << 20;

/// Each behaviour on {SQLite, PostgreSQL} × {local directory, SeaweedFS}; the test file has `start`, `Backends`
/// and the behaviours at its root.
#[macro_export]
macro_rules! resumable_matrix {
    ($($behaviour:ident),* $(,)?) => {
        mod sqlite_local { $( #[tokio::test(flavor = "multi_thread")] async fn $behaviour() { $crate::$behaviour($crate::start($crate::Backends::SqliteLocal).await).await } )* }
        mod sqlite_s3 { $( #[tokio::test(flavor = "multi_thread")] async fn $behaviour() { $crate::$behaviour($crate::start($crate::Backends::SqliteS3).await).await } )* }
        mod postgres_local { $( #[tokio::test(flavor = "multi_thread")] async fn $behaviour() { $crate::$behaviour($crate::start($crate::Backends::PostgresLocal).await).await } )* }
        mod postgres_s3 { $( #[tokio::test(flavor = "multi_thread")] async fn $behaviour() { $crate::$behaviour($crate::start($crate::Backends::PostgresS3).await).await } )* }
    };
}

pub async fn start(backends: Backends) -> TestApp {
    TestApp::start_with(
        backends,
        HttpSettings {
            max_upload_bytes: MAX,
            resumable_part_size: PART,
            ..HttpSettings::default()
        },
    )
    .await
}

/// Bytes that differ from upload to upload.
pub fn data(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Syncs one photo whose original is `bytes` (declared with its SHA-256 when `declare`); returns its upload
/// route.
pub async fn photo(app: &TestApp, token: &str, uuid: &str, bytes: &[u8], declare: bool) -> String {
    let sha = sha256_hex(bytes);
    let body = json!({ "libraryId": LIB, "items": [item(uuid, bytes.len() as u64, declare.then_some(sha.as_str()))] });
    let (status, answer) = app.post_json(token, "/client/iphoto/sync", &body).await;
    assert_eq!(status, 200, "{answer}");
    format!("/client/iphoto/upload/{uuid}/L0/001")
}

/// What the store holds for the user: (key, SHA-256) of every object under `users/<id>/`.
pub async fn stored(app: &TestApp, user: &str) -> Vec<(String, String)> {
    let prefix = storage::StorageKey::parse(format!("users/{user}")).unwrap();
    let objects: Vec<_> = app.store.list(Some(&prefix)).try_collect().await.unwrap();
    let mut out = Vec::new();
    for object in objects {
        out.push((
            object.key.to_string(),
            app.store.sha256(&object.key).await.unwrap().to_hex(),
        ));
    }
    out
}

/// Nothing of any resumable upload of the user is left: no staging object or file, no multipart upload.
pub async fn assert_no_leftovers(app: &TestApp, user: &str) {
    let staging = storage::StorageKey::parse(format!("uploads/{user}")).unwrap();
    let left: Vec<_> = app.store.list(Some(&staging)).try_collect().await.unwrap();
    assert!(left.is_empty(), "staging left: {left:?}");
    if matches!(app.backends, Backends::SqliteLocal | Backends::PostgresLocal) {
        let dir = app.dir().join("blobs").join("uploads").join(user);
        let files = if dir.exists() {
            harness::files_under(&dir)
        } else {
            Vec::new()
        };
        assert!(files.is_empty(), "staging files left: {files:?}");
    } else {
        let uploads = harness::S3Server::shared().multipart_uploads("").await.unwrap();
        let ours: Vec<_> = uploads.iter().filter(|k| k.contains(user)).collect();
        assert!(ours.is_empty(), "multipart uploads left: {ours:?}");
    }
}
