//! Multipart uploads driven part by part (the mount's resumable uploads), against a real SeaweedFS: parts
//! complete into the object, a part uploaded again replaces the first one, an aborted upload leaves nothing
//! (its parts and the upload itself are gone, as `ListMultipartUploads` shows); the local backend says it has
//! none.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use bytes::Bytes;
use harness::{S3Server, unique_name};
use storage::{Secret, StorageKey};

fn s3(server: &S3Server, prefix: &str) -> storage::Store {
    let config = common::s3_config(server, &server.secret_access_key, prefix);
    storage::create_s3_store(&config, Default::default()).unwrap()
}

fn pattern(len: usize, seed: u8) -> Bytes {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn parts_complete_replace_and_abort_on_s3() {
    let server = S3Server::shared();
    let prefix = unique_name("multipart");
    let store = s3(server, &prefix);
    assert!(store.supports_multipart());
    let key = StorageKey::parse("big.bin").unwrap();

    let id = store.create_multipart(&key).await.unwrap();
    let first = pattern(5 << 20, 1);
    let second = pattern(1000, 2);
    let stale = store.put_part(&key, &id, 0, pattern(5 << 20, 9)).await.unwrap();
    // The same index again replaces the part (what a resumed upload does with a part whose bytes changed).
    let part0 = store.put_part(&key, &id, 0, first.clone()).await.unwrap();
    let part1 = store.put_part(&key, &id, 1, second.clone()).await.unwrap();
    assert_ne!(stale, part0);
    assert_eq!(
        server.multipart_uploads(&prefix).await.unwrap(),
        [format!("{prefix}/big.bin")]
    );
    store
        .complete_multipart(&key, &id, vec![part0, part1])
        .await
        .unwrap();
    let stored = store.get_bytes(&key).await.unwrap();
    assert_eq!(stored.len(), first.len() + second.len());
    assert!(stored[..first.len()] == first[..] && stored[first.len()..] == second[..]);
    assert!(server.multipart_uploads(&prefix).await.unwrap().is_empty());

    // Aborted: no object, no upload; aborting again (a retry after a crash) still succeeds.
    let other = StorageKey::parse("aborted.bin").unwrap();
    let id = store.create_multipart(&other).await.unwrap();
    store.put_part(&other, &id, 0, pattern(5 << 20, 3)).await.unwrap();
    store.abort_multipart(&other, &id).await.unwrap();
    store.abort_multipart(&other, &id).await.unwrap();
    assert!(server.multipart_uploads(&prefix).await.unwrap().is_empty());
    assert!(matches!(
        store.head(&other).await,
        Err(storage::Error::NotFound { .. })
    ));
    // A part for an upload that is gone is "not found": the caller starts a new upload.
    assert!(matches!(
        store.put_part(&other, &id, 1, pattern(10, 4)).await,
        Err(storage::Error::NotFound { .. })
    ));
}

#[tokio::test]
async fn the_local_backend_has_no_resumable_uploads() {
    let root = tempfile::tempdir().unwrap();
    let store = storage::create_object_store(&storage::StorageConfig {
        backend: storage::BackendConfig::Local(storage::LocalConfig {
            root: root.path().join("blobs"),
            presign_secret: Secret::new("multipart-test-secret-0123456789abcdef".into()),
            public_url: "http://127.0.0.1:1".parse().unwrap(),
        }),
        presign: Default::default(),
    })
    .unwrap();
    assert!(!store.supports_multipart());
    let key = StorageKey::parse("x.bin").unwrap();
    assert!(matches!(
        store.create_multipart(&key).await,
        Err(storage::Error::Unsupported { .. })
    ));
}
