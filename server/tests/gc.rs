//! The garbage collector against real parts: a pass over SQLite + a local directory and over PostgreSQL +
//! SeaweedFS, the lease, a restart of the real binary cleaning a crash's staging, and `serve` collecting on
//! its own (several replicas at once: `gc_replicas.rs`).
//!
//! Every case checks the guarantee itself — the invariant of ARCHITECTURE.md, "no acknowledged byte is
//! deleted before the retention, verified by hash": each referenced object still exists and hashes to the
//! SHA-256 the catalog recorded for it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod gc_fixture;
mod served;

use std::time::Duration;

use chrono::Utc;
use harness::{ServerProcess, unique_name};
use server::catalog::{self, ConnectOptions, Location};
use server::gc;

use gc_fixture::*;
use served::BIN;

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_and_local_collect_only_unreferenced_past_the_grace() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = sqlite_catalog(dir.path()).await;
    collects_only_unreferenced_past_the_grace(
        catalog.as_ref(),
        &local_store(dir.path()),
        Some(&dir.path().join("blobs")),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_and_seaweedfs_collect_only_unreferenced_past_the_grace() {
    let url = postgres_url().await;
    let catalog = catalog::connect(&Location::parse(&url).unwrap(), &ConnectOptions::default())
        .await
        .unwrap();
    let store = storage::create_s3_store(&s3_config(&unique_name("gc")), Default::default()).unwrap();
    collects_only_unreferenced_past_the_grace(catalog.as_ref(), &store, None).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replica_without_the_lease_does_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = sqlite_catalog(dir.path()).await;
    let store = local_store(dir.path());
    let fixture = populate(catalog.as_ref(), &store, 1, 0, GRACE).await;
    let now = Utc::now();
    assert!(
        catalog
            .gc_take_lease(gc::LEASE, "replica-a", now, now + chrono::Duration::minutes(5))
            .await
            .unwrap()
    );
    let report = gc::run_pass(catalog.as_ref(), &store, "replica-b", &settings(false))
        .await
        .unwrap();
    assert!(!report.ran);
    for (k, _) in &fixture.garbage {
        store.head(k).await.unwrap();
    }
    // Once the holder is gone (its lease expired), the next replica does the work.
    let later = now + chrono::Duration::minutes(6);
    assert!(
        catalog
            .gc_take_lease(
                gc::LEASE,
                "replica-b",
                later,
                later + chrono::Duration::minutes(5)
            )
            .await
            .unwrap()
    );
    let report = gc::run_pass(catalog.as_ref(), &store, "replica-b", &settings(false))
        .await
        .unwrap();
    assert!(report.ran);
    assert_garbage_gone(&store, &fixture).await;
    assert_nothing_referenced_lost(&store, &fixture).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restart_removes_staging_left_by_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = ServerProcess::start(std::path::Path::new(BIN), &data, &[("IPHOTO_GC_INTERVAL", "0")])
        .await
        .unwrap();
    server.kill();
    let originals = data.join("blobs/users/u1/libraries/l1/originals/A");
    std::fs::create_dir_all(&originals).unwrap();
    let crashed = originals.join("A1.heic#7");
    std::fs::write(&crashed, bytes(5000, 1)).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&crashed)
        .unwrap()
        .set_modified(std::time::SystemTime::now() - Duration::from_secs(3600))
        .unwrap();
    // A staging file this fresh may be another process's write in progress: kept.
    let writing = originals.join("A2.heic#1");
    std::fs::write(&writing, bytes(10, 2)).unwrap();
    let object = originals.join("A3.heic");
    std::fs::write(&object, bytes(10, 3)).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&object)
        .unwrap()
        .set_modified(std::time::SystemTime::now() - Duration::from_secs(3600))
        .unwrap();

    server.restart().await.unwrap();
    assert!(!crashed.exists(), "{}", server.log_text());
    assert!(writing.exists());
    assert!(object.exists(), "an object is not staging");
    assert!(server.log_text().contains("removed staging left by a crash"));
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_collects_periodically_and_exports_gc_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = ServerProcess::start(
        std::path::Path::new(BIN),
        &data,
        &[("IPHOTO_GC_INTERVAL", "1s"), ("IPHOTO_GC_GRACE", "1s")],
    )
    .await
    .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let text = reqwest::get(format!("{}/metrics", server.url()))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let runs = metric(&text, "iphoto_gc_runs_total").unwrap_or(0.0);
        if runs >= 1.0 {
            assert!(metric(&text, "iphoto_gc_reclaimable_bytes").is_some(), "{text}");
            assert!(
                metric(&text, "iphoto_gc_reclaimed_bytes_total").is_some(),
                "{text}"
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no gc pass: {text}\n{}",
            server.log_text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
