//! The listing cache, counted on the wire: `ls -l` of a large directory costs one LIST per 1,000 entries
//! and no HEAD per entry; a warm `ls -l` makes no request at all; our own writes show in the listing without
//! a new LIST; and after a clean restart the saved listing answers, again without a request.
//!
//! The directory holds 20,000 objects (the figure is 100,000): putting them into SeaweedFS is most of
//! the test's time, and 20,000 already shows the difference between 20 LIST pages and 20,000 HEADs. Set
//! `MOUNT_LISTING_OBJECTS=100000` to run it at the size. Requests are counted by a TCP proxy between
//! the mount and SeaweedFS (`common::CountingProxy`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{CountingProxy, Options, Requests, TestMount, block_on, s3_store_at, s3_store_via};
use futures::StreamExt as _;
use harness::{S3Server, unique_name};
use storage::{PutOptions, StorageKey};

/// Objects in the large directory: 20,000, or `MOUNT_LISTING_OBJECTS`.
fn objects() -> usize {
    std::env::var("MOUNT_LISTING_OBJECTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000)
}

/// `ls -l DIR`: its output lines (one per entry, after the `total` line).
fn ls_l(dir: &std::path::Path) -> Vec<String> {
    let output = std::process::Command::new("ls")
        .arg("-l")
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .skip(1)
        .map(str::to_owned)
        .collect()
}

#[test]
fn ls_l_of_a_large_directory_is_answered_from_the_listing_cache() {
    let objects = objects();
    let server = S3Server::shared();
    let namespace = unique_name("listing");
    let direct = s3_store_at(server, &namespace);
    let started = Instant::now();
    block_on(async {
        futures::stream::iter(0..objects)
            .map(|i| {
                let direct = direct.clone();
                async move {
                    let key = StorageKey::parse(format!("library/big/f{i:06}.txt")).unwrap();
                    direct
                        .put(&key, Bytes::from(format!("{i}")), &PutOptions::default())
                        .await
                        .unwrap();
                }
            })
            .buffer_unordered(64)
            .collect::<Vec<()>>()
            .await
    });
    eprintln!("put {objects} objects in {:?}", started.elapsed());

    let proxy = CountingProxy::start(&server.endpoint);
    let store = s3_store_via(server, &proxy.endpoint, &namespace);
    let options = Options {
        read_only: false,
        metadata_ttl: Duration::from_secs(600),
        ..Options::default()
    };
    let mount = TestMount::start(&store, &options);
    let big = mount.path("big");

    // Cold: the directory is listed page by page (1,000 keys a page), and no entry is asked for alone.
    let before = proxy.requests();
    let started = Instant::now();
    let lines = ls_l(&big);
    let cold = proxy.requests();
    eprintln!(
        "cold ls -l of {objects}: {:?}, {:?}",
        started.elapsed(),
        Requests {
            list: cold.list - before.list,
            head: cold.head - before.head,
            get: cold.get - before.get,
            other: cold.other - before.other,
        }
    );
    assert_eq!(lines.len(), objects);
    assert!(
        lines[0].ends_with(" f000000.txt") && lines[0].contains(" 1 "),
        "{}",
        lines[0]
    );
    let pages = (objects / 1000) as u64;
    assert!(
        cold.list - before.list <= pages + 3,
        "{} LIST requests for {pages} pages",
        cold.list - before.list
    );
    assert_eq!(cold.head, before.head, "no HEAD per entry");
    assert_eq!(cold.get, before.get, "listing reads no object");

    // Warm: not one request.
    let started = Instant::now();
    assert_eq!(ls_l(&big).len(), objects);
    eprintln!("warm ls -l of {objects}: {:?}", started.elapsed());
    assert_eq!(proxy.requests(), cold, "a warm listing answers from the cache");

    // Our own writes update the cached listing: a new file and a removed one show without a LIST.
    std::fs::write(big.join("new.txt"), b"hello").unwrap();
    std::fs::remove_file(big.join("f000001.txt")).unwrap();
    mount.flush();
    let after_writes = proxy.requests();
    let lines = ls_l(&big);
    assert_eq!(lines.len(), objects);
    assert!(lines.iter().any(|l| l.ends_with(" new.txt") && l.contains(" 5 ")));
    assert!(!lines.iter().any(|l| l.ends_with(" f000001.txt")));
    assert_eq!(
        proxy.requests().list,
        after_writes.list,
        "no LIST after our own writes"
    );

    // A clean restart: the saved listing answers while younger than the TTL, the store is not asked.
    let (dirs, cache_dir) = mount.unmount();
    let before = proxy.requests();
    let started = Instant::now();
    let mount = TestMount::start_with_cache(&store, &options, dirs, cache_dir);
    let lines = ls_l(&mount.path("big"));
    eprintln!("restart + ls -l from the saved listing: {:?}", started.elapsed());
    assert_eq!(lines.len(), objects);
    assert!(lines.iter().any(|l| l.ends_with(" new.txt") && l.contains(" 5 ")));
    assert!(!lines.iter().any(|l| l.ends_with(" f000001.txt")));
    let after = proxy.requests();
    assert_eq!(
        after.list, before.list,
        "the saved listing answers after a restart"
    );
    assert_eq!(after.head, before.head);
    // ...and the files read right through it.
    assert_eq!(std::fs::read(mount.path("big/f012345.txt")).unwrap(), b"12345");
    assert_eq!(std::fs::read(mount.path("big/new.txt")).unwrap(), b"hello");
}

#[test]
fn an_expired_saved_listing_is_listed_again() {
    let server = S3Server::shared();
    let namespace = unique_name("listing");
    let direct = s3_store_at(server, &namespace);
    common::put(&direct, "library/a.txt", b"a");
    let proxy = CountingProxy::start(&server.endpoint);
    let store = s3_store_via(server, &proxy.endpoint, &namespace);
    let options = Options {
        metadata_ttl: Duration::from_secs(1),
        ..Options::default()
    };
    let mount = TestMount::start(&store, &options);
    assert_eq!(ls_l(&mount.mountpoint).len(), 1);
    let (dirs, cache_dir) = mount.unmount();
    // Behind the mount's back, while it is down; the saved listing is older than the TTL at the restart.
    common::put(&direct, "library/b.txt", b"b");
    std::thread::sleep(Duration::from_millis(1200));
    let before = proxy.requests();
    let mount = TestMount::start_with_cache(&store, &options, dirs, cache_dir);
    let lines = ls_l(&mount.mountpoint);
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(proxy.requests().list > before.list);
}
