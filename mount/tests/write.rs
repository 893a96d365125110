//! The write path through a real FUSE mount (video-projects profile), over the local adapter and SeaweedFS:
//! create, sequential and random writes, truncate, rename, unlink, mkdir, rmdir all end up in the store;
//! a conflicting change in the store keeps both versions; `kill -9` of the mount process right after `close`
//! (while the upload runs) and a restart leave the object in the store equal to what was written.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::FileExt as _;
use std::time::{Duration, Instant};

use common::{
    Backend, MIB, Options, ProcessMount, TestMount, bytes, errno, file_sha256, get, keys, object_sha256, put,
    sha256, store,
};

fn read_write() -> Options {
    Options {
        read_only: false,
        ..Options::default()
    }
}

fn writes_reach_the_store(backend: Backend) {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("mount=debug")
        .with_test_writer()
        .try_init();
    let test_store = store(backend);
    let s = &test_store.store;
    put(s, "library/existing.bin", &bytes(3 * MIB, 1));
    let mount = TestMount::start(s, &read_write());

    // Create + sequential write, read back through the mount before the upload.
    let data = bytes(10 * MIB + 3, 2);
    std::fs::write(mount.path("new.bin"), &data).unwrap();
    assert_eq!(
        sha256(&std::fs::read(mount.path("new.bin")).unwrap()),
        sha256(&data)
    );

    // Random writes into an existing object: its bytes are kept around them.
    let mut expected = bytes(3 * MIB, 1);
    {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(mount.path("existing.bin"))
            .unwrap();
        file.write_all_at(b"patch", 1000).unwrap();
        file.write_all_at(b"tail", 3 * MIB + 10).unwrap();
        file.sync_all().unwrap();
    }
    expected[1000..1005].copy_from_slice(b"patch");
    expected.resize(3 * MIB as usize + 10, 0);
    expected.extend_from_slice(b"tail");

    // Truncate.
    std::fs::write(mount.path("short.txt"), b"0123456789").unwrap();
    let short = std::fs::OpenOptions::new()
        .write(true)
        .open(mount.path("short.txt"))
        .unwrap();
    short.set_len(4).unwrap();
    drop(short);

    // mkdir, a file in it, rmdir refused while not empty.
    std::fs::create_dir(mount.path("renders")).unwrap();
    std::fs::write(mount.path("renders/cut.mov"), b"movie").unwrap();
    assert_eq!(
        errno(&std::fs::remove_dir(mount.path("renders")).unwrap_err()),
        libc::ENOTEMPTY
    );
    std::fs::create_dir(mount.path("empty")).unwrap();
    assert!(std::fs::metadata(mount.path("empty")).unwrap().is_dir());
    std::fs::remove_dir(mount.path("empty")).unwrap();
    assert_eq!(
        errno(&std::fs::metadata(mount.path("empty")).unwrap_err()),
        libc::ENOENT
    );

    // Rename and unlink.
    std::fs::write(mount.path("draft.txt"), b"draft").unwrap();
    std::fs::rename(mount.path("draft.txt"), mount.path("renders/final.txt")).unwrap();
    std::fs::write(mount.path("gone.txt"), b"gone").unwrap();
    std::fs::remove_file(mount.path("gone.txt")).unwrap();

    mount.flush();
    assert_eq!(sha256(&get(s, "library/new.bin").unwrap()), sha256(&data));
    assert_eq!(
        sha256(&get(s, "library/existing.bin").unwrap()),
        sha256(&expected)
    );
    assert_eq!(get(s, "library/short.txt").unwrap(), b"0123");
    assert_eq!(get(s, "library/renders/cut.mov").unwrap(), b"movie");
    assert_eq!(get(s, "library/renders/final.txt").unwrap(), b"draft");
    assert_eq!(get(s, "library/draft.txt"), None);
    assert_eq!(get(s, "library/gone.txt"), None);
    assert_eq!(
        keys(s, "library"),
        [
            "library/existing.bin",
            "library/new.bin",
            "library/renders/.iphoto-dir",
            "library/renders/cut.mov",
            "library/renders/final.txt",
            "library/short.txt"
        ]
    );
    // The mount reads its own uploads back from the store.
    assert_eq!(
        sha256(&std::fs::read(mount.path("existing.bin")).unwrap()),
        sha256(&expected)
    );
    let status = mount.mount.as_ref().unwrap().fs().dirty();
    assert_eq!(status, (0, 0));
}

fn a_conflict_keeps_both_versions(backend: Backend) {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("mount=debug")
        .with_test_writer()
        .try_init();
    let test_store = store(backend);
    let s = &test_store.store;
    put(s, "library/shared.txt", b"base");
    let options = Options {
        upload_delay: Duration::from_millis(1500),
        ..read_write()
    };
    let mount = TestMount::start(s, &options);
    assert_eq!(std::fs::read(mount.path("shared.txt")).unwrap(), b"base");
    std::fs::write(mount.path("shared.txt"), b"ours").unwrap();
    // Someone else changes the object before our upload starts.
    put(s, "library/shared.txt", b"theirs");
    mount.flush();
    assert_eq!(get(s, "library/shared.txt").unwrap(), b"theirs");
    let conflicts: Vec<String> = keys(s, "library")
        .into_iter()
        .filter(|k| k.starts_with("library/shared.txt.conflict-"))
        .collect();
    assert_eq!(conflicts.len(), 1, "{conflicts:?}");
    assert_eq!(get(s, &conflicts[0]).unwrap(), b"ours");

    // A file created here while someone else creates the same key: the write is conditional on there being
    // none (If-None-Match), so theirs stays and ours goes aside.
    std::fs::write(mount.path("new.txt"), b"ours, new").unwrap();
    put(s, "library/new.txt", b"theirs, new");
    mount.flush();
    assert_eq!(get(s, "library/new.txt").unwrap(), b"theirs, new");
    let conflicts: Vec<String> = keys(s, "library")
        .into_iter()
        .filter(|k| k.starts_with("library/new.txt.conflict-"))
        .collect();
    assert_eq!(conflicts.len(), 1, "{conflicts:?}");
    assert_eq!(get(s, &conflicts[0]).unwrap(), b"ours, new");
}

macro_rules! on_both_backends {
    ($($test:ident),* $(,)?) => {
        mod local_adapter { $( #[test] fn $test() { super::$test(super::Backend::Local) } )* }
        mod s3_adapter { $( #[test] fn $test() { super::$test(super::Backend::S3) } )* }
    };
}

on_both_backends!(writes_reach_the_store, a_conflict_keeps_both_versions);

/// The mount binary, killed with SIGKILL after `close` of a large file once its multipart upload has sent a
/// part, then started again over the same cache: the upload is resumed, the object in the store equals what
/// was written, and no multipart upload is left in the store.
#[test]
fn kill_9_during_upload_then_restart_completes_it() {
    let server = harness::S3Server::shared();
    let prefix = harness::unique_name("mount-kill");
    let s = common::s3_store_at(server, &prefix);
    let dirs = tempfile::tempdir().unwrap();
    let cache = dirs.path().join("cache");
    let at = common::StoreAt::S3 {
        server,
        prefix: &prefix,
    };
    let start = |mountpoint: &std::path::Path, upload_delay_ms: &str, log: &str| {
        ProcessMount::start(
            &at,
            mountpoint,
            &cache,
            &dirs.path().join(log),
            &[("IPHOTO_MOUNT_UPLOAD_DELAY_MS", upload_delay_ms)],
        )
    };

    // The issue's 1 GiB: its upload (128 parts of 8 MiB) takes seconds, so the kill lands in the middle of it.
    let data = bytes(1024 * MIB, 99);
    let expected = sha256(&data);
    let mut first = start(&dirs.path().join("mnt1"), "0", "mount1.log");
    let started = Instant::now();
    std::fs::write(first.mountpoint.join("render.mov"), &data).unwrap();
    drop(data);
    eprintln!("1 GiB written and closed in {:?}", started.elapsed());
    // Kill once the multipart upload is under way and its first part is recorded in the journal.
    let journal = cache.join("journal");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !saved_upload_has_parts(&journal) {
        assert!(
            Instant::now() < deadline,
            "no multipart upload was recorded in the journal"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    first.kill_9();
    assert_ne!(
        object_sha256(&s, "videos/render.mov").as_deref(),
        Some(&*expected),
        "the upload had finished before the kill: the test did not test a crash mid-upload"
    );
    drop(first);

    // The second start waits 3 s before resuming the upload: meanwhile the file is listed, from the journal.
    let second = start(&dirs.path().join("mnt2"), "3000", "mount2.log");
    assert_eq!(
        std::fs::metadata(second.mountpoint.join("render.mov"))
            .unwrap()
            .len(),
        1024 * MIB
    );
    ProcessMount::flush(&cache);
    assert_eq!(object_sha256(&s, "videos/render.mov"), Some(expected.clone()));
    assert_eq!(file_sha256(&second.mountpoint.join("render.mov")), expected);
    // The interrupted upload was resumed and completed: none is left in the store.
    assert_eq!(
        common::block_on(server.multipart_uploads(&prefix)).unwrap(),
        Vec::<String>::new()
    );
    let log = std::fs::read_to_string(dirs.path().join("mount2.log")).unwrap();
    assert!(log.contains("resuming a multipart upload"), "{log}");
}

/// Whether a `<id>.upload` in the journal records at least one part sent.
fn saved_upload_has_parts(journal: &std::path::Path) -> bool {
    std::fs::read_dir(journal).is_ok_and(|entries| {
        entries.flatten().any(|e| {
            e.path().extension().is_some_and(|x| x == "upload")
                && std::fs::read_to_string(e.path()).is_ok_and(|t| t.contains("\"etag\""))
        })
    })
}

/// A multipart upload the journal recorded for an entry that was never promised (no `.meta`: a crash before
/// `close` returned) is aborted at the next start, not left to a lifecycle rule.
#[test]
fn an_upload_never_promised_is_aborted_at_start() {
    let server = harness::S3Server::shared();
    let prefix = harness::unique_name("mount-orphan");
    let s = common::s3_store_at(server, &prefix);
    let key = storage::StorageKey::parse("library/partial.bin").unwrap();
    let upload_id = common::block_on(async {
        let id = s.create_multipart(&key).await.unwrap();
        s.put_part(&key, &id, 0, bytes::Bytes::from(bytes(5 * MIB, 1)))
            .await
            .unwrap();
        id
    });
    assert_eq!(
        common::block_on(server.multipart_uploads(&prefix)).unwrap().len(),
        1
    );
    let dirs = tempfile::tempdir().unwrap();
    let cache = dirs.path().join("cache");
    std::fs::create_dir_all(cache.join("journal")).unwrap();
    std::fs::write(
        cache.join("journal/7.upload"),
        format!(
            r#"{{"target":"library/partial.bin","upload_id":"{upload_id}","part_size":8388608,"parts":[null]}}"#
        ),
    )
    .unwrap();
    std::fs::write(cache.join("journal/7.data"), bytes(MIB, 2)).unwrap();
    let mount = TestMount::start_with_cache(&s, &read_write(), dirs, cache.clone());
    let deadline = Instant::now() + Duration::from_secs(20);
    while !common::block_on(server.multipart_uploads(&prefix))
        .unwrap()
        .is_empty()
    {
        assert!(Instant::now() < deadline, "the orphaned upload was not aborted");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!cache.join("journal/7.upload").exists());
    assert!(!cache.join("journal/7.data").exists());
    assert_eq!(get(&s, "library/partial.bin"), None);
    drop(mount);
}

/// A full dirty budget makes writers wait for uploads (backpressure) and only then fail with ENOSPC; the data
/// already accepted is not lost.
#[test]
fn a_full_dirty_budget_waits_then_gives_enospc() {
    let test_store = store(Backend::Local);
    let options = Options {
        dirty_budget: 2 * MIB,
        request_timeout: Duration::from_secs(2),
        upload_delay: Duration::from_secs(3),
        ..read_write()
    };
    let mount = TestMount::start(&test_store.store, &options);
    let started = Instant::now();
    let error = std::fs::write(mount.path("big.bin"), bytes(3 * MIB, 5)).unwrap_err();
    let waited = started.elapsed();
    assert_eq!(errno(&error), libc::ENOSPC, "{error}");
    assert!(
        waited >= Duration::from_secs(2),
        "ENOSPC after {waited:?}: no backpressure"
    );
    // Once the upload of what was accepted ran, there is room again.
    mount.flush();
    std::fs::write(mount.path("small.bin"), b"fits").unwrap();
    mount.flush();
    assert_eq!(get(&test_store.store, "library/small.bin").unwrap(), b"fits");
}
