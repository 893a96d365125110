//! `/metrics` on SQLite and PostgreSQL: the job queue per kind, read from the catalog at each scrape (depth
//! counts what was queued and is neither done nor parked; age counts from when the oldest was queued for its
//! current original), the build, the process, and Prometheus naming of every family.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod app;
mod owner;

use std::time::Duration;

use app::{Backends, TestApp, item, sha256_hex};
use owner::Owner;
use serde_json::json;
use server::http::HttpSettings;

const KINDS: [&str; 3] = ["thumbnail", "classify", "face"];

#[tokio::test(flavor = "multi_thread")]
async fn job_queue_metrics_on_sqlite() {
    job_queue_depth_and_age(TestApp::start_with(Backends::SqliteLocal, settings()).await).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn job_queue_metrics_on_postgres() {
    job_queue_depth_and_age(TestApp::start_with(Backends::PostgresLocal, settings()).await).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn build_process_and_names_on_sqlite() {
    build_process_and_names(TestApp::start(Backends::SqliteLocal).await).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn build_process_and_names_on_postgres() {
    build_process_and_names(TestApp::start(Backends::PostgresLocal).await).await;
}

/// One failure parks a job, so a test can take a job out of the queue without a worker's derivative.
fn settings() -> HttpSettings {
    HttpSettings {
        max_upload_bytes: 64 << 20,
        job_max_failures: 1,
        ..HttpSettings::default()
    }
}

async fn scrape(app: &TestApp) -> String {
    let response = app.http.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    response.text().await.unwrap()
}

/// The value of the one sample named `series` exactly (`name` or `name{labels}`).
fn value(text: &str, series: &str) -> f64 {
    let values: Vec<f64> = text
        .lines()
        .filter_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .collect();
    assert_eq!(values.len(), 1, "{series} once in:\n{text}");
    values[0]
}

fn depth(text: &str, kind: &str) -> f64 {
    value(text, &format!("iphoto_job_queue_depth{{kind=\"{kind}\"}}"))
}

fn age(text: &str, kind: &str) -> f64 {
    value(
        text,
        &format!("iphoto_job_queue_oldest_age_seconds{{kind=\"{kind}\"}}"),
    )
}

async fn lease_one(app: &TestApp, owner: &Owner, kind: &str) -> String {
    let (status, answer) = app
        .post_json(
            &owner.worker,
            &format!("/worker/jobs/lease?kind={kind}"),
            &json!(null),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    answer["jobs"][0]["id"].as_str().unwrap().to_owned()
}

async fn job_queue_depth_and_age(app: TestApp) {
    let text = scrape(&app).await;
    for kind in KINDS {
        assert_eq!(
            (depth(&text, kind), age(&text, kind)),
            (0.0, 0.0),
            "{kind}: empty queue"
        );
    }

    // Two stored originals queue two jobs of every kind.
    let owner = Owner::new(&app).await;
    owner
        .photo_with_original(&app, "AAAA0001", b"first original")
        .await;
    owner
        .photo_with_original(&app, "AAAA0002", b"second original")
        .await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let text = scrape(&app).await;
    for kind in KINDS {
        assert_eq!(depth(&text, kind), 2.0, "{kind}:\n{text}");
        let waited = age(&text, kind);
        assert!((1.2..60.0).contains(&waited), "{kind} waited {waited} s:\n{text}");
    }

    // A leased job still waits to be done; a parked one is out of the queue.
    let id = lease_one(&app, &owner, "thumbnail").await;
    assert_eq!(
        depth(&scrape(&app).await, "thumbnail"),
        2.0,
        "a lease is not a result"
    );
    let fail = json!({ "reason": "corrupt", "message": "not a JPEG" });
    let (status, answer) = app
        .post_json(&owner.worker, &format!("/worker/jobs/{id}/fail"), &fail)
        .await;
    assert_eq!(
        (status, answer["state"].as_str()),
        (200, Some("parked")),
        "{answer}"
    );
    let text = scrape(&app).await;
    assert_eq!(depth(&text, "thumbnail"), 1.0, "{text}");
    assert_eq!(depth(&text, "classify"), 2.0, "{text}");

    // The other thumbnail parked too: that queue is empty, its age 0.
    let id = lease_one(&app, &owner, "thumbnail").await;
    app.post_json(&owner.worker, &format!("/worker/jobs/{id}/fail"), &fail)
        .await;
    let text = scrape(&app).await;
    assert_eq!(
        (depth(&text, "thumbnail"), age(&text, "thumbnail")),
        (0.0, 0.0),
        "{text}"
    );

    // A new original queues the photo's jobs again (the parked thumbnail included), aged from now: the
    // first original's queue time no longer counts.
    let edited = b"first original, edited";
    owner
        .sync(
            &app,
            vec![item("AAAA0001", edited.len() as u64, Some(&sha256_hex(edited)))],
        )
        .await;
    owner.upload(&app, "AAAA0001", edited).await;
    let text = scrape(&app).await;
    assert_eq!(depth(&text, "thumbnail"), 1.0, "{text}");
    assert!(age(&text, "thumbnail") < 1.0, "queued again just now:\n{text}");
    assert_eq!(depth(&text, "classify"), 2.0, "{text}");
    assert!(
        age(&text, "classify") >= 1.2,
        "AAAA0002's classify job still waits since the start:\n{text}"
    );
}

async fn build_process_and_names(app: TestApp) {
    let text = scrape(&app).await;

    let commit = option_env!("IPHOTO_BUILD_COMMIT").map_or_else(head_commit, str::to_owned);
    let build = format!(
        "iphoto_build_info{{version=\"{}\",commit=\"{commit}\"}}",
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(value(&text, &build), 1.0, "{text}");

    // The process metrics of this (test) process.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(value(&text, "process_cpu_seconds_total") > 0.0, "{text}");
    assert!(value(&text, "process_resident_memory_bytes") > 1e6, "{text}");
    assert!(value(&text, "process_virtual_memory_bytes") >= value(&text, "process_resident_memory_bytes"));
    let open = value(&text, "process_open_fds");
    assert!(open >= 3.0 && open <= value(&text, "process_max_fds"), "{text}");
    let started = value(&text, "process_start_time_seconds");
    assert!(started <= now && started > now - 3600.0, "{started} vs {now}");

    // Naming: lower snake case under `iphoto_` or `process_`; counters' samples end in `_total`; a unit in the
    // name is a base unit at its end.
    for line in text.lines().filter(|line| line.starts_with("# TYPE ")) {
        let mut words = line.split_whitespace().skip(2);
        let (name, kind) = (words.next().unwrap(), words.next().unwrap());
        assert!(
            (name.starts_with("iphoto_") || name.starts_with("process_"))
                && name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
            "{line}"
        );
        for unit in [
            "_ms",
            "_milliseconds",
            "_kb",
            "_mb",
            "_kilobytes",
            "_megabytes",
            "_minutes",
            "_hours",
        ] {
            assert!(!name.contains(unit), "{name}: not a base unit");
        }
        for sample in text
            .lines()
            .filter(|l| !l.starts_with('#') && l.starts_with(name))
        {
            let series = sample.split([' ', '{']).next().unwrap();
            match kind {
                "counter" => assert_eq!(series, format!("{name}_total"), "{sample}"),
                "histogram" => assert!(
                    ["_bucket", "_sum", "_count"]
                        .iter()
                        .any(|s| series == format!("{name}{s}")),
                    "{sample}"
                ),
                _ => {}
            }
        }
    }
    assert!(text.ends_with("# EOF\n"), "one OpenMetrics message");
    assert_eq!(text.matches("# EOF").count(), 1);
}

/// HEAD's commit, as the build script abbreviates it.
fn head_commit() -> String {
    let output = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    if output.status.success() {
        String::from_utf8(output.stdout).unwrap().trim().to_owned()
    } else {
        "unknown".to_owned()
    }
}
