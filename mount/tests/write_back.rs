//! Write-back while writing (video-projects profile, real FUSE): a large file written in sequence is uploaded
//! part by part while it is written, so at `close` only its last part and the completion are left; a part
//! rewritten before close is sent again; `kill -9` of the mount while such an upload is under way loses
//! nothing that `fsync` promised.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write as _;
use std::os::unix::fs::FileExt as _;
use std::time::{Duration, Instant};

use common::{
    Backend, CountingProxy, MIB, Options, ProcessMount, StoreAt, TestMount, bytes, file_sha256,
    object_sha256, s3_store_at, s3_store_via, sha256, store,
};

/// The tests of this file one at a time: a process forked by another test (a mount) holds a copy of the open
/// file's descriptor until it execs, and closing it is a FUSE flush, which promises the file and starts its
/// upload before the test's own `close`.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Parts the store acknowledged, as recorded in the journal's `<id>.upload` files.
fn parts_recorded(journal: &std::path::Path) -> usize {
    std::fs::read_dir(journal).map_or(0, |entries| {
        entries
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "upload"))
            .map(|e| std::fs::read_to_string(e.path()).map_or(0, |text| text.matches("\"etag\"").count()))
            .sum()
    })
}

fn wait_for_parts(journal: &std::path::Path, parts: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while parts_recorded(journal) < parts {
        assert!(
            Instant::now() < deadline,
            "only {} parts were in the store before close",
            parts_recorded(journal)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// 64 MiB written in 1 MiB pieces and held open: 7 of its 8 parts are in the store before `close` (the
/// eighth is still being written, as far as the mount can know). The writer then patches a header at the
/// start, as ffmpeg does with an MP4's; after `close`, the requests that write to the store are that part
/// again, the last part and the completion (instead of 8 parts, a create and a completion), and the object
/// equals what was written.
#[test]
fn a_file_written_in_sequence_is_uploaded_while_it_is_written() {
    let _serial = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let _ = tracing_subscriber::fmt()
        .with_env_filter("mount=debug")
        .with_test_writer()
        .try_init();
    let server = harness::S3Server::shared();
    let proxy = CountingProxy::start(&server.endpoint);
    let prefix = harness::unique_name("mount-early");
    let s = s3_store_via(server, &proxy.endpoint, &prefix);
    let mount = TestMount::start(
        &s,
        &Options {
            read_only: false,
            ..Options::default()
        },
    );
    let mut data = bytes(64 * MIB, 7);
    let mut file = std::fs::File::create(mount.path("render.mov")).unwrap();
    for chunk in data.chunks(MIB as usize) {
        file.write_all(chunk).unwrap();
    }
    wait_for_parts(&mount.cache_dir.join("journal"), 7);
    file.write_all_at(b"moov-patched", 16).unwrap();
    data[16..28].copy_from_slice(b"moov-patched");
    let before_close = proxy.requests().other;
    let closed = Instant::now();
    drop(file);
    mount.flush();
    let in_store = closed.elapsed();
    let writes_after_close = proxy.requests().other - before_close;
    eprintln!("close to in the store: {in_store:?}, {writes_after_close} writing requests");
    assert_eq!(object_sha256(&s, "library/render.mov"), Some(sha256(&data)));
    assert_eq!(
        writes_after_close, 3,
        "after close: the patched part, the last part and the completion"
    );
    assert_eq!(
        common::block_on(server.multipart_uploads(&prefix)).unwrap(),
        Vec::<String>::new()
    );
}

/// The mount process is killed (`kill -9`) while a file it is uploading part by part is still open and
/// being uploaded, after an `fsync` promised its 40 MiB: the next start resumes the same upload (the parts
/// sent before the crash are not sent again) and the object equals what was promised. Over the local
/// backend (no multipart uploads) the file is uploaded whole at the next start.
fn kill_9_while_uploading_during_the_write_loses_nothing(backend: Backend) {
    let _serial = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let server = harness::S3Server::shared();
    let prefix = harness::unique_name("mount-early-kill");
    let test_store = store(backend);
    let (s, root) = match backend {
        Backend::S3 => (s3_store_at(server, &prefix), None),
        Backend::Local => (test_store.store.clone(), test_store.local_root()),
    };
    let at = match &root {
        Some(root) => StoreAt::Local { root },
        None => StoreAt::S3 {
            server,
            prefix: &prefix,
        },
    };
    let dirs = tempfile::tempdir().unwrap();
    let cache = dirs.path().join("cache");
    // The upload that the fsync queues waits a minute: the kill lands while only parts sent during the
    // write are in the store.
    let mut first = ProcessMount::start(
        &at,
        &dirs.path().join("mnt1"),
        &cache,
        &dirs.path().join("mount1.log"),
        &[("IPHOTO_MOUNT_UPLOAD_DELAY_MS", "60000")],
    );
    let data = bytes(40 * MIB, 11);
    let mut file = std::fs::File::create(first.mountpoint.join("render.mov")).unwrap();
    for chunk in data.chunks(MIB as usize) {
        file.write_all(chunk).unwrap();
    }
    file.sync_all().unwrap();
    if backend == Backend::S3 {
        wait_for_parts(&cache.join("journal"), 4);
    }
    first.kill_9();
    drop(file);
    drop(first);
    assert_eq!(object_sha256(&s, "videos/render.mov"), None);

    let second = ProcessMount::start(
        &at,
        &dirs.path().join("mnt2"),
        &cache,
        &dirs.path().join("mount2.log"),
        &[],
    );
    ProcessMount::flush(&cache);
    let expected = sha256(&data);
    assert_eq!(object_sha256(&s, "videos/render.mov"), Some(expected.clone()));
    assert_eq!(file_sha256(&second.mountpoint.join("render.mov")), expected);
    if backend == Backend::S3 {
        assert_eq!(
            common::block_on(server.multipart_uploads(&prefix)).unwrap(),
            Vec::<String>::new()
        );
        let log = strip_colours(&std::fs::read_to_string(dirs.path().join("mount2.log")).unwrap());
        let resumed: usize = log
            .lines()
            .find(|l| l.contains("resuming a multipart upload"))
            .and_then(|l| l.split("parts=").nth(1))
            .and_then(|p| p.trim().split(|c: char| !c.is_ascii_digit()).next()?.parse().ok())
            .unwrap_or_else(|| panic!("the upload was not resumed: {log}"));
        assert!(resumed >= 4, "resumed with {resumed} parts: {log}");
    }
}

/// The log without its terminal colour codes.
fn strip_colours(log: &str) -> String {
    let mut out = String::with_capacity(log.len());
    let mut chars = log.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

mod local_adapter {
    #[test]
    fn kill_9_while_uploading_during_the_write_loses_nothing() {
        super::kill_9_while_uploading_during_the_write_loses_nothing(super::Backend::Local)
    }
}

mod s3_adapter {
    #[test]
    fn kill_9_while_uploading_during_the_write_loses_nothing() {
        super::kill_9_while_uploading_during_the_write_loses_nothing(super::Backend::S3)
    }
}
