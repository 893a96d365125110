//! Two machines on one project: two mounts of the same prefix, each with its own cache directory, over one
//! store (a local directory, or SeaweedFS). Lock files, timestamps, extended attributes and empty folders
//! made on one are seen by the other.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write as _;

use common::{Backend, Options, TestMount, TestStore, errno, store};

/// Two read-write mounts of `library/` over one store.
fn two_mounts(backend: Backend) -> (TestStore, TestMount, TestMount) {
    let test_store = store(backend);
    let options = Options {
        read_only: false,
        ..Options::default()
    };
    let a = TestMount::start(&test_store.store, &options);
    let b = TestMount::start(&test_store.store, &options);
    (test_store, a, b)
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

macro_rules! on_both_backends {
    ($($test:ident),* $(,)?) => {
        mod local_adapter { $( #[test] fn $test() { super::$test(super::Backend::Local) } )* }
        mod s3_adapter { $( #[test] fn $test() { super::$test(super::Backend::S3) } )* }
    };
}

on_both_backends!(a_lock_file_is_taken_by_one_mount_only);
