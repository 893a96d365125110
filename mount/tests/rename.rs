//! Directory rename through a real FUSE mount (video-projects profile), over the local adapter and
//! SeaweedFS: the tree moves in the store (server-side copies, then deletes), another mount sees it at the
//! new name, a `kill -9` in the middle is finished at the next start, and a directory past the limit is
//! EXDEV with a log line naming the limit.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::{Backend, MIB, Options, ProcessMount, StoreAt, TestMount, bytes, errno, get, keys, put, store};

fn read_write() -> Options {
    Options {
        read_only: false,
        ..Options::default()
    }
}

/// A tree of files (one of several parts), an empty folder made on the mount and a file written just
/// before: `mv proj renamed` moves all of it in the store, nothing is left at the old name, the mount reads
/// the files at the new paths, and a second mount (its own cache) sees the renamed tree, empty folder
/// included.
fn a_directory_is_renamed_and_another_mount_sees_it(backend: Backend) {
    let test_store = store(backend);
    let s = &test_store.store;
    let big = bytes(9 * MIB, 3);
    put(s, "library/proj/a.txt", b"a");
    put(s, "library/proj/sub/big.bin", &big);
    put(s, "library/proj/sub/deep/c.txt", b"c");
    let options = Options {
        rename_dir_limit: 10,
        ..read_write()
    };
    let first = TestMount::start(s, &options);
    std::fs::create_dir(first.path("proj/empty")).unwrap();
    std::fs::write(first.path("proj/new.txt"), b"written here").unwrap();
    assert_eq!(std::fs::read(first.path("proj/sub/deep/c.txt")).unwrap(), b"c");

    std::fs::rename(first.path("proj"), first.path("renamed")).unwrap();

    assert_eq!(keys(s, "library/proj"), Vec::<String>::new());
    assert_eq!(
        keys(s, "library/renamed"),
        [
            "library/renamed/a.txt",
            "library/renamed/empty/.iphoto-dir",
            "library/renamed/new.txt",
            "library/renamed/sub/big.bin",
            "library/renamed/sub/deep/c.txt",
        ]
    );
    assert_eq!(get(s, "library/renamed/sub/big.bin").unwrap(), big);
    assert!(!first.path("proj").exists());
    assert_eq!(std::fs::read(first.path("renamed/sub/deep/c.txt")).unwrap(), b"c");
    assert_eq!(
        std::fs::read(first.path("renamed/new.txt")).unwrap(),
        b"written here"
    );
    assert_eq!(std::fs::read(first.path("renamed/sub/big.bin")).unwrap(), big);

    let second = TestMount::start(s, &options);
    let mut names: Vec<String> = std::fs::read_dir(second.path("renamed"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["a.txt", "empty", "new.txt", "sub"]);
    assert!(second.path("renamed/empty").is_dir());
    assert_eq!(std::fs::read(second.path("renamed/a.txt")).unwrap(), b"a");
    assert_old_name_is_gone(
        &second.path("proj"),
        &["a.txt", "new.txt", "sub/big.bin", "sub/deep/c.txt"],
    );
}

/// None of the files is left at the old name. (SeaweedFS keeps listing a folder whose objects were all
/// deleted, see the known gaps of SEMANTICS.md: there, the old tree's folders may remain, empty.)
fn assert_old_name_is_gone(path: &std::path::Path, files: &[&str]) {
    for file in files {
        assert!(!path.join(file).is_file(), "{file} is left at {}", path.display());
    }
}

/// A directory of more entries than the limit is not renamed: EXDEV (so `mv` copies it entry by entry),
/// nothing moves in the store, and the log says which limit was passed.
#[test]
fn a_directory_past_the_limit_is_exdev_with_a_log_line() {
    let test_store = store(Backend::Local);
    let s = &test_store.store;
    for name in ["a", "b", "c"] {
        put(s, &format!("videos/proj/{name}.txt"), name.as_bytes());
    }
    let dirs = tempfile::tempdir().unwrap();
    let root = test_store.local_root().unwrap();
    let log = dirs.path().join("mount.log");
    let mount = ProcessMount::start(
        &StoreAt::Local { root: &root },
        &dirs.path().join("mnt"),
        &dirs.path().join("cache"),
        &log,
        &[("IPHOTO_MOUNT_RENAME_DIR_MAX_ENTRIES", "2")],
    );
    let error = std::fs::rename(mount.mountpoint.join("proj"), mount.mountpoint.join("moved")).unwrap_err();
    assert_eq!(errno(&error), libc::EXDEV);
    assert_eq!(keys(s, "videos/proj").len(), 3);
    assert_eq!(keys(s, "videos/moved"), Vec::<String>::new());
    assert_eq!(std::fs::read(mount.mountpoint.join("proj/a.txt")).unwrap(), b"a");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("--rename-dir-max-entries (2)"), "{text}");
}

/// The mount is killed (`kill -9`) in the middle of a directory rename (some objects copied, none deleted
/// yet): the next start finishes it from the journaled record, so the whole tree is at the new name and
/// nothing at the old one, and the mount shows it there.
fn kill_9_mid_rename_is_finished_at_the_next_start(backend: Backend) {
    let server = harness::S3Server::shared();
    let prefix = harness::unique_name("mount-rename-kill");
    let test_store = store(backend);
    let (s, root) = match backend {
        Backend::S3 => (common::s3_store_at(server, &prefix), None),
        Backend::Local => (test_store.store.clone(), test_store.local_root()),
    };
    let at = match &root {
        Some(root) => StoreAt::Local { root },
        None => StoreAt::S3 {
            server,
            prefix: &prefix,
        },
    };
    let names: Vec<String> = (0..8).map(|i| format!("clip{i}.mov")).collect();
    for (i, name) in names.iter().enumerate() {
        put(&s, &format!("videos/proj/{name}"), &bytes(64 * 1024, i as u64));
    }
    let dirs = tempfile::tempdir().unwrap();
    let cache = dirs.path().join("cache");
    // Each copy of the rename waits 300 ms: the kill lands in the middle.
    let mut first = ProcessMount::start(
        &at,
        &dirs.path().join("mnt1"),
        &cache,
        &dirs.path().join("mount1.log"),
        &[("IPHOTO_MOUNT_UPLOAD_DELAY_MS", "300")],
    );
    let (from, to) = (first.mountpoint.join("proj"), first.mountpoint.join("renamed"));
    let mover = std::thread::spawn(move || std::fs::rename(from, to));
    let deadline = Instant::now() + Duration::from_secs(20);
    while keys(&s, "videos/renamed").len() < 2 {
        assert!(Instant::now() < deadline, "the rename did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    first.kill_9();
    let _ = mover.join();
    drop(first);
    assert_eq!(keys(&s, "videos/proj").len(), names.len(), "nothing deleted yet");
    assert!(
        keys(&s, "videos/renamed").len() < names.len(),
        "the rename had finished before the kill"
    );

    let second = ProcessMount::start(
        &at,
        &dirs.path().join("mnt2"),
        &cache,
        &dirs.path().join("mount2.log"),
        &[],
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while !keys(&s, "videos/proj").is_empty() {
        assert!(Instant::now() < deadline, "the rename was not finished at start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let expected: Vec<String> = names.iter().map(|n| format!("videos/renamed/{n}")).collect();
    assert_eq!(keys(&s, "videos/renamed"), expected);
    for (i, name) in names.iter().enumerate() {
        assert_eq!(
            std::fs::read(second.mountpoint.join("renamed").join(name)).unwrap(),
            bytes(64 * 1024, i as u64)
        );
    }
    let files: Vec<&str> = names.iter().map(String::as_str).collect();
    assert_old_name_is_gone(&second.mountpoint.join("proj"), &files);
    assert_eq!(std::fs::read_dir(cache.join("renames")).unwrap().count(), 0);
}

macro_rules! on_both_backends {
    ($($test:ident),* $(,)?) => {
        mod local_adapter { $( #[test] fn $test() { super::$test(super::Backend::Local) } )* }
        mod s3_adapter { $( #[test] fn $test() { super::$test(super::Backend::S3) } )* }
    };
}

on_both_backends!(
    a_directory_is_renamed_and_another_mount_sees_it,
    kill_9_mid_rename_is_finished_at_the_next_start
);
