//! The storage contract: one `pub async fn` per behaviour, run against every adapter by `contract.rs`.
//!
//! Each function takes a [`Subject`]: a store over a fresh, empty namespace (a temp dir, or a unique prefix
//! in the shared SeaweedFS bucket) and the way to fetch its presigned URLs (a plain HTTP GET for S3; for the
//! local backend the URL goes to the server's `/blobs/` route, which only calls `LocalSigner::verify` and
//! `get`, so the test does exactly that).

#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::time::Duration;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt, stream};
use storage::{Error, LibraryLayout, PutMode, PutOptions, Sha256Digest, StorageKey, Store};

mod attributes;
mod staging;
mod subject;

#[allow(
    unused_imports,
    reason = "multipart.rs shares this module and runs no attribute behaviour"
)]
pub use attributes::*;
#[allow(
    unused_imports,
    reason = "multipart.rs shares this module and runs no staging behaviour"
)]
pub use staging::*;
pub use subject::*;

async fn assert_absent(store: &Store, k: &StorageKey) {
    assert!(
        matches!(store.head(k).await, Err(Error::NotFound { .. })),
        "{k} should not exist"
    );
    let listed: Vec<_> = store.list(None).try_collect().await.unwrap();
    assert!(listed.iter().all(|m| &m.key != k), "{k} should not be listed");
}

pub async fn round_trip_bytes(s: &Subject) {
    let k = key("a/b/photo.jpg");
    let body = data(1000, 1);
    let receipt = s
        .store
        .put(&k, body.clone().into(), &PutOptions::default())
        .await
        .unwrap();
    assert_eq!(receipt.size, 1000);
    assert_eq!(receipt.sha256, Sha256Digest::of(&body));
    assert!(receipt.etag.is_some());
    assert_eq!(s.store.get_bytes(&k).await.unwrap(), body);
    let meta = s.store.head(&k).await.unwrap();
    assert_eq!(meta.size, 1000);
    assert_eq!(meta.etag, receipt.etag);
    let empty = key("a/empty");
    s.store
        .put(&empty, Bytes::new(), &PutOptions::default())
        .await
        .unwrap();
    assert_eq!(s.store.get_bytes(&empty).await.unwrap().len(), 0);
    assert_eq!(s.store.head(&empty).await.unwrap().size, 0);
}

pub async fn round_trip_stream(s: &Subject) {
    // Small (one request) and past one part (multipart), with a declared digest that matches.
    for (len, name) in [
        (300_000usize, "small.bin"),
        (storage::MIN_PART_SIZE * 2 + 12_345, "large.bin"),
    ] {
        let body = data(len, len as u64);
        let k = key(&format!("streams/{name}"));
        let options = PutOptions {
            expected_sha256: Some(Sha256Digest::of(&body)),
            ..Default::default()
        };
        let receipt = s
            .store
            .put_stream(&k, chunked(&body, 65_537), &options)
            .await
            .unwrap();
        assert_eq!(receipt.size, len as u64);
        assert_eq!(receipt.sha256, Sha256Digest::of(&body));
        let got = s.store.get(&k, None).await.unwrap();
        assert_eq!(got.meta.size, len as u64);
        let chunks: Vec<Bytes> = got.body.try_collect().await.unwrap();
        assert_eq!(Sha256Digest::of(&chunks.concat()), receipt.sha256, "{name}");
    }
}

pub async fn byte_ranges(s: &Subject) {
    let k = key("ranges/r.bin");
    let body = data(10_000, 7);
    s.store
        .put(&k, body.clone().into(), &PutOptions::default())
        .await
        .unwrap();
    for range in [0..1, 5000..5100, 9999..10_000, 0..10_000] {
        let got = s.store.get(&k, Some(range.clone())).await.unwrap();
        assert_eq!(got.range, range);
        assert_eq!(got.meta.size, 10_000);
        assert_eq!(
            got.bytes().await.unwrap(),
            body[range.start as usize..range.end as usize],
            "{range:?}"
        );
    }
    // An end past the object is clamped, as HTTP does.
    let got = s.store.get(&k, Some(9990..20_000)).await.unwrap();
    assert_eq!(got.bytes().await.unwrap(), body[9990..]);
    for bad in [10_000..10_001, 20_000..20_010, 5..5] {
        match s.store.get(&k, Some(bad.clone())).await {
            Err(Error::RangeNotSatisfiable { start, end, .. }) => {
                assert_eq!((start, end), (bad.start, bad.end))
            }
            other => panic!(
                "{bad:?}: expected RangeNotSatisfiable, got {:?}",
                other.map(|g| g.range)
            ),
        }
    }
}

pub async fn parallel_get_is_in_order(s: &Subject) {
    let k = key("parallel/p.bin");
    let body = data(3 * 1024 * 1024 + 17, 21);
    s.store
        .put(&k, body.clone().into(), &PutOptions::default())
        .await
        .unwrap();
    for (part, concurrency) in [(256 * 1024, 4), (1024 * 1024, 2), (10 * 1024 * 1024, 4)] {
        let got = s.store.get_parallel(&k, part, concurrency).await.unwrap();
        assert_eq!(got.range, 0..body.len() as u64);
        assert_eq!(got.bytes().await.unwrap(), body, "part {part}");
    }
    assert!(matches!(
        s.store.get_parallel(&key("parallel/none"), 1024, 2).await,
        Err(Error::NotFound { .. })
    ));
}

pub async fn download_to_file_in_parts(s: &Subject) {
    let k = key("download/d.bin");
    let body = data(20 * 1024 * 1024 + 5, 31);
    s.store
        .put_stream(&k, chunked(&body, 1 << 20), &PutOptions::default())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    // 0 and 64 are taken as 1 and 16: a caller cannot ask for no stream or for unbounded memory.
    for streams in [0, 1, 3, 8, 64] {
        let dst = dir.path().join(format!("out-{streams}"));
        let meta = s.store.download_to_file(&k, &dst, streams).await.unwrap();
        assert_eq!(meta.size, body.len() as u64);
        assert_eq!(std::fs::read(&dst).unwrap(), body, "{streams} streams");
    }
    let small = key("download/small.txt");
    s.store
        .put(&small, Bytes::from_static(b"tiny"), &PutOptions::default())
        .await
        .unwrap();
    let dst = dir.path().join("small");
    s.store.download_to_file(&small, &dst, 4).await.unwrap();
    assert_eq!(std::fs::read(&dst).unwrap(), b"tiny");
    let missing = dir.path().join("missing");
    assert!(matches!(
        s.store.download_to_file(&key("download/none"), &missing, 4).await,
        Err(Error::NotFound { .. })
    ));
    assert!(!missing.exists(), "nothing is created for a missing object");
    let unwritable = dir.path().join("no/such/dir/file");
    assert!(matches!(
        s.store.download_to_file(&k, &unwritable, 2).await,
        Err(Error::LocalFile { .. })
    ));
}

pub async fn missing_is_not_found(s: &Subject) {
    let k = key("nothing/here.jpg");
    assert!(matches!(s.store.head(&k).await, Err(Error::NotFound { .. })));
    assert!(matches!(s.store.get(&k, None).await, Err(Error::NotFound { .. })));
    assert!(matches!(
        s.store.get(&k, Some(0..10)).await,
        Err(Error::NotFound { .. })
    ));
    s.store.check().await.unwrap();
}

pub async fn overwrite_replaces(s: &Subject) {
    let k = key("over/write.txt");
    let first = s
        .store
        .put(&k, Bytes::from_static(b"first version"), &PutOptions::default())
        .await
        .unwrap();
    let second = s
        .store
        .put(&k, Bytes::from_static(b"second"), &PutOptions::default())
        .await
        .unwrap();
    assert_eq!(
        s.store.get_bytes(&k).await.unwrap(),
        Bytes::from_static(b"second")
    );
    assert_eq!(s.store.head(&k).await.unwrap().size, 6);
    assert_ne!(first.sha256, second.sha256);
}

pub async fn conditional_puts(s: &Subject) {
    let k = key("cond/c.txt");
    let create = PutOptions {
        mode: PutMode::Create,
        ..Default::default()
    };
    let first = s
        .store
        .put(&k, Bytes::from_static(b"one"), &create)
        .await
        .unwrap();
    assert!(matches!(
        s.store.put(&k, Bytes::from_static(b"two"), &create).await,
        Err(Error::AlreadyExists { .. })
    ));
    let stale = PutOptions {
        mode: PutMode::IfMatch("\"not-the-etag\"".into()),
        ..Default::default()
    };
    if s.kind == Kind::Local {
        // The local file system has no compare-and-swap: refused, never emulated with a race.
        let result = s.store.put(&k, Bytes::from_static(b"three"), &stale).await;
        assert!(matches!(result, Err(Error::Unsupported { .. })), "{result:?}");
        assert_eq!(s.store.get_bytes(&k).await.unwrap(), Bytes::from_static(b"one"));
        return;
    }
    let refused = s.store.put(&k, Bytes::from_static(b"three"), &stale).await;
    assert!(
        matches!(refused, Err(Error::PreconditionFailed { .. })),
        "{refused:?}"
    );
    let fresh = PutOptions {
        mode: PutMode::IfMatch(first.etag.clone().unwrap()),
        ..Default::default()
    };
    s.store
        .put(&k, Bytes::from_static(b"four"), &fresh)
        .await
        .unwrap();
    assert_eq!(s.store.get_bytes(&k).await.unwrap(), Bytes::from_static(b"four"));
}

/// Nothing lost: a create-only stream, one part or many, never replaces what is stored, and leaves the stored
/// bytes as they were.
pub async fn created_streams_never_replace(s: &Subject) {
    let create = PutOptions {
        mode: PutMode::Create,
        ..Default::default()
    };
    for (len, name) in [
        (1000usize, "one-part"),
        (storage::MIN_PART_SIZE + 4096, "multipart"),
    ] {
        let k = key(&format!("immutable/{name}"));
        let first = data(len, 1);
        s.store
            .put_stream(&k, chunked(&first, 65_537), &create)
            .await
            .unwrap();
        let second = data(len, 2);
        let refused = s.store.put_stream(&k, chunked(&second, 65_537), &create).await;
        assert!(
            matches!(refused, Err(Error::AlreadyExists { .. })),
            "{name}: {refused:?}"
        );
        assert_eq!(
            Sha256Digest::of(&s.store.get_bytes(&k).await.unwrap()),
            Sha256Digest::of(&first),
            "{name}: the stored bytes changed"
        );
    }
}

pub async fn list_pages_by_prefix(s: &Subject) {
    // More keys than one S3 ListObjects page (1,000), put 16 at a time.
    let n = 1_050;
    stream::iter(0..n)
        .map(|i| {
            let store = s.store.clone();
            async move {
                let k = key(&format!("many/{:02}/k{i:05}", i % 7));
                store
                    .put(&k, Bytes::from(vec![b'x'; i % 5]), &PutOptions::default())
                    .await
                    .unwrap();
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<()>>()
        .await;
    s.store
        .put(&key("other/k"), Bytes::from_static(b"o"), &PutOptions::default())
        .await
        .unwrap();
    s.store
        .put(&key("manyx/k"), Bytes::from_static(b"o"), &PutOptions::default())
        .await
        .unwrap();

    let prefix = key("many");
    let all: Vec<_> = s.store.list(Some(&prefix)).try_collect().await.unwrap();
    assert_eq!(
        all.len(),
        n,
        "a prefix is whole segments: manyx/ is not under many/"
    );
    let listed: Vec<_> = all.iter().map(|m| m.key.to_string()).collect();
    let mut keys = listed.clone();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), n);
    if s.kind != Kind::Local {
        assert_eq!(listed, keys, "S3 and memory list in key order");
    }

    // Paging walks each key once, in order.
    let mut seen = Vec::new();
    let mut after: Option<StorageKey> = None;
    loop {
        let page = s
            .store
            .list_page(Some(&prefix), after.as_ref(), 100)
            .await
            .unwrap();
        assert!(page.objects.len() <= 100);
        seen.extend(page.objects.iter().map(|m| m.key.to_string()));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(seen, keys);

    let dir = s.store.list_dir(Some(&prefix)).await.unwrap();
    assert!(dir.objects.is_empty());
    assert_eq!(dir.prefixes.len(), 7);
    assert_eq!(dir.prefixes[0].as_str(), "many/00");
    let sub = s.store.list_dir(Some(&key("many/03"))).await.unwrap();
    assert_eq!(sub.objects.len(), (0..n).filter(|i| i % 7 == 3).count());
    assert!(
        sub.objects
            .iter()
            .find(|m| m.key.as_str() == "many/03/k00003")
            .is_some_and(|m| m.size == 3)
    );
}

pub async fn delete_removes(s: &Subject) {
    let k = key("del/x.jpg");
    s.store
        .put(&k, Bytes::from_static(b"x"), &PutOptions::default())
        .await
        .unwrap();
    s.store.delete(&k).await.unwrap();
    assert_absent(&s.store, &k).await;
    // Deleting again is not an error: retries are safe.
    s.store.delete(&k).await.unwrap();
}

pub async fn copy_is_server_side(s: &Subject) {
    let from = key("copy/from.bin");
    let to = key("copy/to.bin");
    let body = data(5000, 3);
    s.store
        .put(&from, body.clone().into(), &PutOptions::default())
        .await
        .unwrap();
    s.store.copy(&from, &to).await.unwrap();
    assert_eq!(s.store.get_bytes(&to).await.unwrap(), body);
    assert_eq!(s.store.get_bytes(&from).await.unwrap(), body);
    assert!(matches!(
        s.store.copy(&key("copy/missing"), &to).await,
        Err(Error::NotFound { .. })
    ));
}

pub async fn digest_mismatch_leaves_nothing(s: &Subject) {
    for len in [1000usize, storage::MIN_PART_SIZE + 4096] {
        let k = key(&format!("mismatch/{len}.bin"));
        let body = data(len, 11);
        let wrong = Sha256Digest::of(b"something else");
        let options = PutOptions {
            expected_sha256: Some(wrong),
            ..Default::default()
        };
        match s.store.put_stream(&k, chunked(&body, 100_000), &options).await {
            Err(Error::DigestMismatch { expected, actual, .. }) => {
                assert_eq!(expected, wrong.to_hex());
                assert_eq!(actual, Sha256Digest::of(&body).to_hex());
            }
            other => panic!("expected DigestMismatch, got {other:?}"),
        }
        assert_absent(&s.store, &k).await;
        assert!(matches!(
            s.store.put(&k, body.clone().into(), &options).await,
            Err(Error::DigestMismatch { .. })
        ));
        assert_absent(&s.store, &k).await;
    }
    assert_no_staging_files(s);
}

pub async fn failed_or_cancelled_stream_leaves_nothing(s: &Subject) {
    // The body fails after more than one part: the multipart upload is aborted.
    let k = key("broken/body.bin");
    let part = data(storage::MIN_PART_SIZE + 1, 5);
    let failing = stream::iter(vec![
        Ok(Bytes::from(part.clone())),
        Ok(Bytes::from(part.clone())),
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "client went away",
        )),
    ]);
    let result = s.store.put_stream(&k, failing, &PutOptions::default()).await;
    assert!(matches!(result, Err(Error::Body { .. })), "{result:?}");
    assert_absent(&s.store, &k).await;

    // The future is dropped mid-stream (a request cancelled by a disconnect).
    let k2 = key("broken/cancelled.bin");
    let (tx, rx) = futures::channel::mpsc::channel::<std::io::Result<Bytes>>(1);
    let store = s.store.clone();
    let k2c = k2.clone();
    let task = tokio::spawn(async move { store.put_stream(&k2c, rx, &PutOptions::default()).await });
    let mut tx = tx;
    for _ in 0..3 {
        futures::SinkExt::send(&mut tx, Ok(Bytes::from(part.clone())))
            .await
            .unwrap();
    }
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_absent(&s.store, &k2).await;
    assert_no_staging_files(s);
}

/// The local adapter stages as `<name>#<n>`; none may be left behind.
fn assert_no_staging_files(s: &Subject) {
    let Some(root) = &s.root else { return };
    let mut stack = vec![root.path().to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            assert!(
                !path.to_string_lossy().contains('#'),
                "staging file left: {}",
                path.display()
            );
            if path.is_dir() {
                stack.push(path);
            }
        }
    }
}

pub async fn presigned_urls(s: &Subject) {
    let layout = LibraryLayout::new("u1", "lib1").unwrap();
    let k = layout
        .original("AB12CD34-0000-4000-8000-00000000AAAA", "heic")
        .unwrap();
    let body = data(4321, 9);
    s.store
        .put(&k, body.clone().into(), &PutOptions::default())
        .await
        .unwrap();

    let url = s.store.presign_get(&k, None).await.unwrap();
    let ttl = url.expires_at - chrono::Utc::now();
    assert!(
        ttl > chrono::Duration::seconds(290) && ttl <= chrono::Duration::seconds(300),
        "{ttl}"
    );
    assert_eq!(s.fetch(&url.url).await, Fetched::Ok(body.clone()));

    // Change one character of the key's path, or of the signature: refused.
    let mut other_key = url.url.clone();
    other_key.set_path(&url.url.path().replace("AAAA", "AAAB"));
    assert_eq!(s.fetch(&other_key).await, Fetched::Refused);
    let sig_param = if s.kind == Kind::S3 {
        "X-Amz-Signature"
    } else {
        "sig"
    };
    let pairs: Vec<(String, String)> = url.url.query_pairs().into_owned().collect();
    let sig = pairs.iter().find(|(k, _)| k == sig_param).unwrap().1.clone();
    for position in [0, sig.len() / 2, sig.len() - 1] {
        let mut tampered = url.url.clone();
        let mut bad = sig.clone().into_bytes();
        bad[position] = if bad[position] == b'a' { b'b' } else { b'a' };
        let bad = String::from_utf8(bad).unwrap();
        tampered.query_pairs_mut().clear().extend_pairs(
            pairs
                .iter()
                .map(|(k, v)| (k.as_str(), if k == sig_param { bad.as_str() } else { v.as_str() })),
        );
        assert_eq!(
            s.fetch(&tampered).await,
            Fetched::Refused,
            "signature char {position}"
        );
    }

    // A TTL above the maximum is an error; a one-second URL works, then expires.
    assert!(matches!(
        s.store.presign_get(&k, Some(Duration::from_secs(3601))).await,
        Err(Error::InvalidTtl { max_secs: 3600, .. })
    ));
    let short = s
        .store
        .presign_get(&k, Some(Duration::from_secs(2)))
        .await
        .unwrap();
    assert_eq!(s.fetch(&short.url).await, Fetched::Ok(body));
    tokio::time::sleep(Duration::from_millis(3100)).await;
    assert_eq!(s.fetch(&short.url).await, Fetched::Refused);
}

pub async fn concurrent_puts(s: &Subject) {
    let results: Vec<_> = stream::iter(0..50u64)
        .map(|i| {
            let store = s.store.clone();
            async move {
                let body = data(20_000 + i as usize, i);
                let k = key(&format!("concurrent/{i}.bin"));
                let receipt = store
                    .put_stream(&k, chunked(&body, 4096), &PutOptions::default())
                    .await
                    .unwrap();
                (k, receipt.sha256)
            }
        })
        .buffer_unordered(50)
        .collect()
        .await;
    assert_eq!(results.len(), 50);
    for (k, digest) in results {
        assert_eq!(Sha256Digest::of(&s.store.get_bytes(&k).await.unwrap()), digest);
    }
}

pub async fn invalid_keys_never_reach_the_backend(s: &Subject) {
    for bad in ["../escape", "/abs", "a//b", "a\\b", "a\0b"] {
        assert!(matches!(StorageKey::parse(bad), Err(Error::InvalidKey { .. })));
    }
    let listed: Vec<_> = s.store.list(None).try_collect().await.unwrap();
    assert!(listed.is_empty());
}
