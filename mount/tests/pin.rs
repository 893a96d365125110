//! Pinning through the binary (`iphoto-mount pin/unpin/status`) on a real mount: a pinned folder is
//! fetched in the background, survives eviction pressure and is read without a request (counted on the wire
//! between the mount and SeaweedFS), is fetched again when an object changes in the store, and a pin past
//! the cap is refused with the figures.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{CountingProxy, MIB, Options, TestMount, bytes, put, s3_store_at, s3_store_via};
use harness::{S3Server, unique_name};

const BIN: &str = env!("CARGO_BIN_EXE_iphoto-mount");

fn cli(args: &[&str], paths: &[&Path]) -> Output {
    let output = Command::new(BIN).args(args).args(paths).output().unwrap();
    eprintln!(
        "{args:?} {paths:?} -> {}\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn pin_state(path: &Path) -> String {
    let mut value = vec![0u8; 4096];
    let len = rustix::fs::getxattr(path, "user.iphoto.pin", &mut value[..]).unwrap();
    String::from_utf8(value[..len].to_vec()).unwrap()
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A 64 MiB cache (8 MiB of it for dirty data): pins may take 80 % of the remaining 56 MiB.
fn options() -> Options {
    Options {
        cache_max_size: 64 * MIB,
        dirty_budget: 8 * MIB,
        block_size: MIB,
        memory_budget: 16 * MIB,
        metadata_ttl: Duration::from_secs(1),
        ..Options::default()
    }
}

#[test]
fn a_pinned_folder_is_fetched_kept_read_locally_and_refreshed() {
    let server = S3Server::shared();
    let namespace = unique_name("pin");
    let direct = s3_store_at(server, &namespace);
    let a = bytes(6 * MIB, 1);
    let b = bytes(6 * MIB, 2);
    put(&direct, "library/Footage/a.mov", &a);
    put(&direct, "library/Footage/b.mov", &b);
    put(&direct, "library/other/big.bin", &bytes(40 * MIB, 3));
    let proxy = CountingProxy::start(&server.endpoint);
    let store = s3_store_via(server, &proxy.endpoint, &namespace);
    let mount = TestMount::start(&store, &options());

    let footage = mount.path("Footage");
    assert_eq!(pin_state(&footage), "not pinned");
    assert!(cli(&["pin"], &[&footage]).status.success());
    wait_for("the pin", || pin_state(&footage) == "pinned");
    assert_eq!(
        pin_state(&mount.path("Footage/a.mov")),
        "pinned",
        "a file in a pinned folder"
    );

    // Eviction pressure: 40 MiB read twice through a cache with 56 MiB for blocks, 12 of them pinned.
    for _ in 0..2 {
        let read = std::fs::read(mount.path("other/big.bin")).unwrap();
        assert_eq!(read.len() as u64, 40 * MIB);
    }
    let before = proxy.requests();
    assert_eq!(std::fs::read(mount.path("Footage/a.mov")).unwrap(), a);
    assert_eq!(std::fs::read(mount.path("Footage/b.mov")).unwrap(), b);
    assert_eq!(
        proxy.requests().get,
        before.get,
        "pinned files are read from the cache"
    );

    let status = cli(&["status", "--json", "--cache-dir"], &[&mount.cache_dir]);
    let json: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(json["pins"][0]["path"], "/Footage");
    assert_eq!(json["pins"][0]["state"], "pinned");
    assert_eq!(json["pins"][0]["bytes"], 12 * MIB);
    let fetched = json["pins"][0]["fetched_objects"].as_u64().unwrap();

    // Changed in the store: the pinner fetches the new version (after the TTL) before anyone reads it.
    let a2 = bytes(6 * MIB, 4);
    put(&direct, "library/Footage/a.mov", &a2);
    let fs = mount.mount.as_ref().unwrap().fs().clone();
    wait_for("the refresh", || {
        fs.pin_reports()
            .first()
            .is_some_and(|p| p.fetched_objects > fetched && p.state == "pinned")
    });
    std::thread::sleep(Duration::from_millis(1100));
    let before = proxy.requests();
    assert_eq!(std::fs::read(mount.path("Footage/a.mov")).unwrap(), a2);
    assert_eq!(
        proxy.requests().get,
        before.get,
        "the new version was fetched by the pinner"
    );

    // Unpinned: its blocks may go again.
    assert!(cli(&["unpin"], &[&footage]).status.success());
    assert_eq!(pin_state(&footage), "not pinned");
    assert_eq!(fs.cache_usage().pinned_bytes, 0);
}

#[test]
fn a_pin_past_the_cap_is_refused_with_the_figures() {
    let test_store = common::store(common::Backend::Local);
    put(&test_store.store, "library/huge.bin", &bytes(50 * MIB, 5));
    put(&test_store.store, "library/small.bin", &bytes(MIB, 6));
    let mount = TestMount::start(&test_store.store, &options());
    let huge = mount.path("huge.bin");
    let refused = cli(&["pin"], &[&huge]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    let cap = mount.mount.as_ref().unwrap().fs().pin_cap();
    assert!(stderr.contains(&format!("needs {} bytes", 50 * MIB)), "{stderr}");
    assert!(
        stderr.contains(&format!("of the {cap} bytes pins may take")),
        "{stderr}"
    );
    assert!(pin_state(&huge).starts_with("not pinned: "));
    // A pin that fits is taken, and counted against the next one.
    assert!(cli(&["pin"], &[&mount.path("small.bin")]).status.success());
    wait_for("the pin", || pin_state(&mount.path("small.bin")) == "pinned");
    let status = cli(&["status"], &[&mount.path("small.bin"), &huge]);
    let text = String::from_utf8(status.stdout).unwrap();
    assert!(text.contains("small.bin: pinned"), "{text}");
    assert!(text.contains("huge.bin: not pinned: "), "{text}");
}
