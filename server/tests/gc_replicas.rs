//! The garbage collector with several replicas: two `iphoto-server gc` processes, and two real `serve`
//! replicas, on one PostgreSQL catalog and one SeaweedFS bucket, collecting at once.
//!
//! Each checks the invariant of ARCHITECTURE.md, "no acknowledged byte is deleted before the retention,
//! verified by hash": every referenced object still exists and hashes to the SHA-256 the catalog recorded.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod gc_fixture;
mod served;

use std::time::Duration;

use harness::{S3Server, ServerProcess, unique_name};
use server::catalog::{self, ConnectOptions, Location};

use gc_fixture::*;
use served::BIN;

/// `iphoto-server gc` on the shared catalog and bucket.
fn gc_command(url: &str, prefix: &str, data: &std::path::Path, extra: &[&str]) -> std::process::Command {
    let server = S3Server::shared();
    let mut command = std::process::Command::new(std::path::Path::new(BIN));
    command
        .arg("gc")
        .args(["--grace", &format!("{}s", CLI_GRACE.as_secs())])
        .args(extra)
        .env("IPHOTO_DATA_DIR", data)
        .env("IPHOTO_DATABASE_URL", url)
        .env("IPHOTO_STORAGE_BACKEND", "s3")
        .env("IPHOTO_S3_ENDPOINT", &server.endpoint)
        .env("IPHOTO_S3_REGION", &server.region)
        .env("IPHOTO_S3_BUCKET", &server.bucket)
        .env("IPHOTO_S3_ACCESS_KEY_ID", &server.access_key_id)
        .env("IPHOTO_S3_SECRET_ACCESS_KEY", &server.secret_access_key)
        .env("IPHOTO_S3_PREFIX", prefix)
        .env("IPHOTO_S3_PATH_STYLE", "true")
        .env_remove("IPHOTO_GC_DRY_RUN")
        .env_remove("IPHOTO_GC_GRACE");
    command
}

/// "freed N objects, B bytes" of the `total:` line.
fn total(stdout: &str) -> (u64, u64) {
    let line = stdout
        .lines()
        .find(|l| l.starts_with("total:"))
        .unwrap_or_else(|| panic!("no total line in {stdout:?}"));
    let numbers: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|w| w.parse().ok())
        .collect();
    (numbers[0], numbers[1])
}

#[tokio::test(flavor = "multi_thread")]
async fn two_replicas_collecting_at_once_lose_nothing_referenced() {
    let url = postgres_url().await;
    let prefix = unique_name("gc-replicas");
    let catalog = catalog::connect(&Location::parse(&url).unwrap(), &ConnectOptions::default())
        .await
        .unwrap();
    let store = storage::create_s3_store(&s3_config(&prefix), Default::default()).unwrap();
    let fixture = populate(catalog.as_ref(), &store, 12, 20, CLI_GRACE).await;
    let dir = tempfile::tempdir().unwrap();

    let dry = gc_command(&url, &prefix, dir.path(), &["--dry-run"])
        .output()
        .unwrap();
    let dry_out = String::from_utf8_lossy(&dry.stdout).into_owned();
    assert!(
        dry.status.success(),
        "{dry_out}{}",
        String::from_utf8_lossy(&dry.stderr)
    );
    assert_eq!(
        total(&dry_out),
        (fixture.garbage.len() as u64, fixture.garbage_bytes()),
        "{dry_out}"
    );
    assert!(
        dry_out.contains(&format!("user {}: would free", fixture.user)),
        "{dry_out}"
    );
    for (k, _) in &fixture.garbage {
        store.head(k).await.unwrap();
    }

    let replicas: Vec<std::process::Child> = (0..2)
        .map(|_| {
            gc_command(&url, &prefix, dir.path(), &[])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut freed = (0, 0);
    let mut ran = 0;
    for replica in replicas {
        let output = tokio::task::spawn_blocking(move || replica.wait_with_output().unwrap())
            .await
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        if stdout.contains("another replica holds the gc lease") {
            continue;
        }
        ran += 1;
        let (keys, bytes) = total(&stdout);
        freed = (freed.0 + keys, freed.1 + bytes);
    }
    assert!(ran >= 1);
    // Each object deleted once, by the one replica holding the lease: never counted twice.
    assert_eq!(freed, (fixture.garbage.len() as u64, fixture.garbage_bytes()));
    assert_garbage_gone(&store, &fixture).await;
    assert_nothing_referenced_lost(&store, &fixture).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn two_serve_replicas_collect_under_one_lease() {
    let url = postgres_url().await;
    let prefix = unique_name("gc-serve");
    let catalog = catalog::connect(&Location::parse(&url).unwrap(), &ConnectOptions::default())
        .await
        .unwrap();
    let store = storage::create_s3_store(&s3_config(&prefix), Default::default()).unwrap();
    // The fresh object is an original the catalog never recorded: kept past its grace too.
    let fixture = populate(catalog.as_ref(), &store, 8, 12, GRACE).await;

    let s3 = S3Server::shared();
    let envs: Vec<(&str, String)> = vec![
        ("IPHOTO_DATABASE_URL", url.clone()),
        ("IPHOTO_STORAGE_BACKEND", "s3".into()),
        ("IPHOTO_S3_ENDPOINT", s3.endpoint.clone()),
        ("IPHOTO_S3_REGION", s3.region.clone()),
        ("IPHOTO_S3_BUCKET", s3.bucket.clone()),
        ("IPHOTO_S3_ACCESS_KEY_ID", s3.access_key_id.clone()),
        ("IPHOTO_S3_SECRET_ACCESS_KEY", s3.secret_access_key.clone()),
        ("IPHOTO_S3_PREFIX", prefix.clone()),
        ("IPHOTO_S3_PATH_STYLE", "true".into()),
        ("IPHOTO_GC_INTERVAL", "1s".into()),
        ("IPHOTO_GC_GRACE", format!("{}s", GRACE.as_secs())),
    ];
    let envs: Vec<(&str, &str)> = envs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let dir = tempfile::tempdir().unwrap();
    let first = ServerProcess::start(std::path::Path::new(BIN), &dir.path().join("a"), &envs)
        .await
        .unwrap();
    // The second replica shares the catalog, so the first start's tokens are the ones it accepts.
    std::fs::create_dir_all(dir.path().join("b")).unwrap();
    for scope in ["client", "web", "worker", "admin"] {
        let name = format!("{scope}.token");
        std::fs::copy(dir.path().join("a").join(&name), dir.path().join("b").join(&name)).unwrap();
    }
    let second = ServerProcess::start(std::path::Path::new(BIN), &dir.path().join("b"), &envs)
        .await
        .unwrap();

    // Both collect every second, one at a time; wait until everything past the grace is gone.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let mut gone = 0;
        for (k, _) in &fixture.garbage {
            if matches!(store.head(k).await, Err(storage::Error::NotFound { .. })) {
                gone += 1;
            }
        }
        if gone == fixture.garbage.len() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{gone} collected\n{}\n{}",
            first.log_text(),
            second.log_text()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // A last pass may still be running: let it end before reading the counters.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_nothing_referenced_lost(&store, &fixture).await;
    let mut reclaimed = 0.0;
    let mut runs = 0.0;
    for server in [&first, &second] {
        let text = reqwest::get(format!("{}/metrics", server.url()))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        reclaimed += metric(&text, "iphoto_gc_reclaimed_bytes_total").unwrap();
        runs += metric(&text, "iphoto_gc_runs_total").unwrap();
    }
    assert!(runs >= 2.0, "{runs}");
    // Every object deleted exactly once, by whichever replica held the lease.
    #[allow(clippy::cast_precision_loss, reason = "a few kilobytes")]
    let expected = fixture.garbage_bytes() as f64;
    assert!((reclaimed - expected).abs() < 0.5, "{reclaimed} != {expected}");
}
