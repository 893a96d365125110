//! Two machines on one project: two mounts of the same prefix, each with its own cache directory, over one
//! store (a local directory, or SeaweedFS). Lock files, timestamps, extended attributes and empty folders
//! made on one are seen by the other.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write as _;

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{Backend, Options, TestMount, TestStore, errno, store};

/// Two read-write mounts of `library/` over one store.
fn two_mounts(backend: Backend) -> (TestStore, TestMount, TestMount) {
    two_mounts_with(
        backend,
        &Options {
            read_only: false,
            ..Options::default()
        },
    )
}

fn two_mounts_with(backend: Backend, options: &Options) -> (TestStore, TestMount, TestMount) {
    let test_store = store(backend);
    let a = TestMount::start(&test_store.store, options);
    let b = TestMount::start(&test_store.store, options);
    (test_store, a, b)
}

fn mtime(path: &Path) -> SystemTime {
    std::fs::metadata(path).unwrap().modified().unwrap()
}

fn get_xattr(path: &Path, name: &str) -> Vec<u8> {
    let mut value = vec![0u8; 4096];
    let len = rustix::fs::getxattr(path, name, &mut value[..]).unwrap();
    value.truncate(len);
    value
}

fn set_xattr(path: &Path, name: &str, value: &[u8]) -> rustix::io::Result<()> {
    rustix::fs::setxattr(path, name, value, rustix::fs::XattrFlags::empty())
}

fn list_xattr(path: &Path) -> Vec<String> {
    let mut names = vec![0u8; 4096];
    let len = rustix::fs::listxattr(path, &mut names[..]).unwrap();
    names[..len]
        .split(|b| *b == 0)
        .filter(|n| !n.is_empty())
        .map(|n| String::from_utf8(n.to_vec()).unwrap())
        .collect()
}

/// `touch -m -d @SECONDS.NANOS path`, as a user sets a date.
fn touch(path: &Path, at: SystemTime) {
    let since = at.duration_since(UNIX_EPOCH).unwrap();
    let status = std::process::Command::new("touch")
        .arg("-m")
        .arg("-d")
        .arg(format!("@{}.{:09}", since.as_secs(), since.subsec_nanos()))
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success());
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

/// `open(O_CREAT|O_EXCL|O_WRONLY)`.
fn create_new(path: &std::path::Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
}

fn a_lock_file_is_taken_by_one_mount_only(backend: Backend) {
    let (test_store, a, b) = two_mounts(backend);
    // Both listings are warm and empty: B's says the name is free when A takes it.
    assert_eq!(std::fs::read_dir(&a.mountpoint).unwrap().count(), 0);
    assert_eq!(std::fs::read_dir(&b.mountpoint).unwrap().count(), 0);

    let mut lock = create_new(&a.path("project.prlock")).unwrap();
    // Committed at the create, before any write or close.
    assert_eq!(
        common::get(&test_store.store, "library/project.prlock").unwrap(),
        b""
    );
    let error = create_new(&b.path("project.prlock")).unwrap_err();
    assert_eq!(errno(&error), libc::EEXIST);
    assert_eq!(
        errno(&create_new(&b.path("project.prlock")).unwrap_err()),
        libc::EEXIST
    );

    // The holder writes its name into it, as Premiere does; the other still cannot take it.
    lock.write_all(b"held by A").unwrap();
    drop(lock);
    a.flush();
    assert_eq!(
        common::get(&test_store.store, "library/project.prlock").unwrap(),
        b"held by A"
    );
    assert_eq!(
        errno(&create_new(&b.path("project.prlock")).unwrap_err()),
        libc::EEXIST
    );

    // Deleting it releases it: now B gets it and A is refused.
    std::fs::remove_file(a.path("project.prlock")).unwrap();
    let mut lock = create_new(&b.path("project.prlock")).unwrap();
    lock.write_all(b"held by B").unwrap();
    drop(lock);
    assert_eq!(
        errno(&create_new(&a.path("project.prlock")).unwrap_err()),
        libc::EEXIST
    );
    b.flush();
    assert_eq!(
        common::get(&test_store.store, "library/project.prlock").unwrap(),
        b"held by B"
    );
}

fn times_and_attributes_reach_another_mount(backend: Backend) {
    let options = Options {
        read_only: false,
        metadata_ttl: Duration::from_secs(1),
        // The store's own last-modified comes 1.5 s after the write: a mount showing it would be caught.
        upload_delay: Duration::from_millis(1500),
        ..Options::default()
    };
    let (test_store, a, b) = two_mounts_with(backend, &options);
    let content = common::bytes(100_000, 1);
    std::fs::write(a.path("cut.mov"), &content).unwrap();
    let written = SystemTime::now();
    std::fs::write(a.path("old.mov"), b"archive").unwrap();
    let old = UNIX_EPOCH + Duration::new(978_307_200, 500_000_000);
    touch(&a.path("old.mov"), old);
    assert_eq!(mtime(&a.path("old.mov")), old);
    let finder_info: Vec<u8> = (0u8..32).collect();
    set_xattr(&a.path("cut.mov"), "user.com.apple.FinderInfo", &finder_info).unwrap();
    set_xattr(&a.path("cut.mov"), "user.xdg.comment", b"director's cut").unwrap();
    let a_mtime = mtime(&a.path("cut.mov"));
    assert!(a_mtime <= written, "the mtime is the last write's");
    a.flush();

    // The other mount (which never listed these) reads them with the object.
    assert_eq!(mtime(&b.path("cut.mov")), a_mtime);
    assert_eq!(mtime(&b.path("old.mov")), old);
    assert_eq!(
        get_xattr(&b.path("cut.mov"), "user.com.apple.FinderInfo"),
        finder_info
    );
    assert_eq!(
        get_xattr(&b.path("cut.mov"), "user.xdg.comment"),
        b"director's cut"
    );
    let mut listed = list_xattr(&b.path("cut.mov"));
    listed.sort();
    assert_eq!(listed, ["user.com.apple.FinderInfo", "user.xdg.comment"]);
    assert_eq!(std::fs::read(b.path("cut.mov")).unwrap(), content);

    // Past the store's metadata limit: a clear error, and nothing changes.
    let error = set_xattr(&b.path("cut.mov"), "user.big", &[7u8; 3000]).unwrap_err();
    assert_eq!(error.raw_os_error(), libc::E2BIG);
    assert_eq!(list_xattr(&b.path("cut.mov")).len(), 2);

    // A date set on the other mount, on a file it only has in the store, reaches the first after a remount.
    let later = UNIX_EPOCH + Duration::new(1_262_304_000, 0);
    touch(&b.path("cut.mov"), later);
    b.flush();
    let (dirs, cache) = a.unmount();
    let a = TestMount::start_with_cache(&test_store.store, &options, dirs, cache);
    assert_eq!(mtime(&a.path("cut.mov")), later);
    assert_eq!(
        get_xattr(&a.path("cut.mov"), "user.com.apple.FinderInfo"),
        finder_info
    );
    assert_eq!(std::fs::read(a.path("cut.mov")).unwrap(), content);
    assert_eq!(mtime(&a.path("old.mov")), old);
}

fn an_empty_folder_is_seen_by_the_other_mount(backend: Backend) {
    let options = Options {
        read_only: false,
        metadata_ttl: Duration::from_secs(1),
        ..Options::default()
    };
    let (test_store, a, b) = two_mounts_with(backend, &options);
    assert!(names(&b.mountpoint).is_empty());
    std::fs::create_dir(a.path("Footage")).unwrap();
    std::fs::create_dir(a.path("Footage/Day 1")).unwrap();
    assert!(common::get(&test_store.store, "library/Footage/Day 1/.iphoto-dir").is_some());
    // The marker is not a file anyone sees, nor one anyone can make.
    assert!(names(&a.path("Footage/Day 1")).is_empty());
    assert_eq!(
        errno(&std::fs::write(a.path("Footage/.iphoto-dir"), b"x").unwrap_err()),
        libc::EINVAL
    );

    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(names(&b.mountpoint), ["Footage"]);
    assert_eq!(names(&b.path("Footage")), ["Day 1"]);
    assert!(std::fs::metadata(b.path("Footage/Day 1")).unwrap().is_dir());
    assert!(names(&b.path("Footage/Day 1")).is_empty());

    // Removed on the other mount: its marker is gone from the store at once. A store without directories
    // (S3, Spaces, the local backend) then no longer lists the prefix, and the first mount drops the folder
    // after its TTL; SeaweedFS keeps listing an emptied folder (a known gap of that store, SEMANTICS.md).
    std::fs::remove_dir(b.path("Footage/Day 1")).unwrap();
    assert!(common::get(&test_store.store, "library/Footage/Day 1/.iphoto-dir").is_none());
    if backend == Backend::Local {
        std::thread::sleep(Duration::from_millis(1100));
        assert!(names(&a.path("Footage")).is_empty());
    }
    assert_eq!(names(&a.mountpoint), ["Footage"]);
}

macro_rules! on_both_backends {
    ($($test:ident),* $(,)?) => {
        mod local_adapter { $( #[test] fn $test() { super::$test(super::Backend::Local) } )* }
        mod s3_adapter { $( #[test] fn $test() { super::$test(super::Backend::S3) } )* }
    };
}

on_both_backends!(
    a_lock_file_is_taken_by_one_mount_only,
    times_and_attributes_reach_another_mount,
    an_empty_folder_is_seen_by_the_other_mount
);
