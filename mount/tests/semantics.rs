//! Checks of `mount/SEMANTICS.md`: the claims not covered elsewhere, and that every test the document names
//! exists, so a claim cannot outlive its test.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::time::Duration;

use common::{Backend, Options, TestMount, put, store};

fn a_listing_is_trusted_for_the_ttl(backend: Backend) {
    let test_store = store(backend);
    put(&test_store.store, "library/a.txt", b"a");
    put(&test_store.store, "library/b.txt", b"b");
    let options = Options {
        metadata_ttl: Duration::from_secs(2),
        ..Options::default()
    };
    let mount = TestMount::start(&test_store.store, &options);
    let names = || {
        let mut names: Vec<String> = std::fs::read_dir(&mount.mountpoint)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    };
    assert_eq!(names(), ["a.txt", "b.txt"]);
    // Behind the mount's back: the warm listing still answers from memory within the TTL...
    put(&test_store.store, "library/c.txt", b"c");
    assert_eq!(names(), ["a.txt", "b.txt"]);
    // ...and the store is asked again after it.
    std::thread::sleep(Duration::from_millis(2200));
    assert_eq!(names(), ["a.txt", "b.txt", "c.txt"]);
}

fn metadata_changes_are_ignored(backend: Backend) {
    let test_store = store(backend);
    put(&test_store.store, "library/dir/inner.txt", b"inner");
    let mount = TestMount::start(
        &test_store.store,
        &Options {
            read_only: false,
            ..Options::default()
        },
    );
    assert_eq!(std::fs::read(mount.path("dir/inner.txt")).unwrap(), b"inner");
    use std::os::unix::fs::PermissionsExt as _;
    let before = std::fs::metadata(mount.path("dir/inner.txt")).unwrap();
    std::fs::set_permissions(
        mount.path("dir/inner.txt"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let after = std::fs::metadata(mount.path("dir/inner.txt")).unwrap();
    assert_eq!(before.permissions().mode(), after.permissions().mode());
    assert_eq!(
        common::get(&test_store.store, "library/dir/inner.txt").unwrap(),
        b"inner"
    );
}

fn entries_made_here_survive_a_new_listing(backend: Backend) {
    let test_store = store(backend);
    put(&test_store.store, "library/a.txt", b"a");
    let options = Options {
        read_only: false,
        metadata_ttl: Duration::from_secs(1),
        // The new file stays in the journal (not in the store) past the TTL.
        upload_delay: Duration::from_secs(3),
        ..Options::default()
    };
    let mount = TestMount::start(&test_store.store, &options);
    std::fs::create_dir(mount.path("empty")).unwrap();
    std::fs::write(mount.path("pending.txt"), b"pending").unwrap();
    let names = || {
        let mut names: Vec<String> = std::fs::read_dir(&mount.mountpoint)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    };
    assert_eq!(names(), ["a.txt", "empty", "pending.txt"]);
    // A new LIST after the TTL does not show them (the store has neither yet); they stay.
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(names(), ["a.txt", "empty", "pending.txt"]);
    assert_eq!(std::fs::read(mount.path("pending.txt")).unwrap(), b"pending");
    mount.flush();
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(names(), ["a.txt", "empty", "pending.txt"]);
    assert_eq!(
        common::get(&test_store.store, "library/pending.txt").unwrap(),
        b"pending"
    );
}

macro_rules! on_both_backends {
    ($($test:ident),* $(,)?) => {
        mod local_adapter { $( #[test] fn $test() { super::$test(super::Backend::Local) } )* }
        mod s3_adapter { $( #[test] fn $test() { super::$test(super::Backend::S3) } )* }
    };
}

on_both_backends!(
    a_listing_is_trusted_for_the_ttl,
    metadata_changes_are_ignored,
    entries_made_here_survive_a_new_listing
);

/// Every `file::test` SEMANTICS.md names is a function in that test file (or unit-test module).
#[test]
fn every_test_the_semantics_document_names_exists() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let document = std::fs::read_to_string(root.join("SEMANTICS.md")).unwrap();
    let mut named = 0;
    for reference in document.split('`').skip(1).step_by(2) {
        let parts: Vec<&str> = reference.split("::").collect();
        // A unit-test module is inline (`src/<module>.rs`) or a file of its own (`src/<module>/tests.rs`).
        let sources = match parts.as_slice() {
            [file, _test] if root.join("tests").join(format!("{file}.rs")).exists() => {
                vec![root.join("tests").join(format!("{file}.rs"))]
            }
            [module @ .., "tests", _test] if !module.is_empty() => {
                let module = module.join("/");
                vec![
                    root.join("src").join(format!("{module}.rs")),
                    root.join("src").join(module).join("tests.rs"),
                ]
            }
            _ => continue,
        };
        let test = parts[parts.len() - 1];
        let defined = sources.iter().any(|source| {
            std::fs::read_to_string(source).is_ok_and(|text| text.contains(&format!("fn {test}(")))
        });
        assert!(
            defined,
            "SEMANTICS.md names {reference}, which none of {sources:?} defines"
        );
        named += 1;
    }
    assert!(
        named >= 15,
        "only {named} test references found: the parser or the document broke"
    );
}
