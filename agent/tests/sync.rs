//! End to end: the sync pass against the real `iphoto-server` binary (embedded defaults in a temp dir) with a
//! synthesized Photos library (`common::sync`), when things go wrong: a pass killed mid-upload (in process and
//! with SIGKILL), the server down for a while, an upload the server refuses.

// Helpers outside #[test] fns are not covered by allow-unwrap-in-tests (rust-clippy #13981).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use api::ResourceType;
use iphoto_agent::state::StateDb;
use iphoto_agent::sync::{NoProgress, Progress, run_pass};

use common::sync::{Library, TestServer, assert_stored_once, content, pass, sha256};

/// Signals the first confirmed upload.
struct AfterFirstUpload(Arc<tokio::sync::Notify>);

impl Progress for AfterFirstUpload {
    fn uploaded(&self, _answer: &api::UploadAnswer) {
        self.0.notify_one();
    }
}

#[tokio::test]
async fn a_pass_killed_mid_upload_is_finished_by_the_next() {
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::start(data.path()).await;
    let library = Library::new(3 * 1024 * 1024).await;
    let mut options = library.options();
    options.uploads = 2;

    let notify = Arc::new(tokio::sync::Notify::new());
    let progress = AfterFirstUpload(Arc::clone(&notify));
    let client = server.client();
    let killed = {
        let options = options.clone();
        tokio::spawn(async move { run_pass(&client, &options, &progress).await })
    };
    notify.notified().await;
    killed.abort();
    assert!(killed.await.unwrap_err().is_cancelled());
    let confirmed = StateDb::open(&library.state_dir())
        .await
        .unwrap()
        .upload_count()
        .await
        .unwrap();
    assert!(
        (1..7).contains(&confirmed),
        "killed mid-way: {confirmed} uploads confirmed"
    );

    let resumed = run_pass(&server.client(), &options, &NoProgress).await.unwrap();
    assert_eq!(
        resumed.items_sent, 0,
        "metadata was confirmed before the kill: {resumed:?}"
    );
    // Nothing the server held is sent again (its pending list drives the uploads); an upload in flight at the
    // kill either finished on the server (no longer pending), was dropped with nothing stored, or had its
    // bytes stored but not yet recorded, which the retry adopts from the store without sending them again
    // (answered `deduplicated`). Two were in flight.
    assert!(resumed.deduplicated <= 2, "{resumed:?}");
    assert!(
        resumed.uploaded <= 7 - confirmed && resumed.uploaded + 2 >= 7 - confirmed,
        "{resumed:?} after {confirmed}"
    );
    assert_stored_once(&server, &library, 0);
    let stats = server.stats().await;
    assert_eq!((stats.totals.uploaded, stats.totals.pending), (7, 0), "{stats:?}");
}

#[tokio::test]
async fn the_pass_retries_while_the_server_is_down() {
    let data = tempfile::tempdir().unwrap();
    let mut server = TestServer::start(data.path()).await;
    let library = Library::new(32 * 1024).await;
    let client = server.client();
    server.stop();

    let options = library.options();
    let running = tokio::spawn(async move { run_pass(&client, &options, &NoProgress).await });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!running.is_finished(), "the pass must wait for the server");
    server.restart().await;
    let report = tokio::time::timeout(Duration::from_secs(60), running)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!((report.items_sent, report.uploaded), (6, 7), "{report:?}");
    assert_stored_once(&server, &library, 0);
}

/// `name{labels} value` from the server's `/metrics`, 0 when the series does not exist yet.
async fn metric(server: &TestServer, series: &str) -> u64 {
    let text = reqwest::get(format!("{}/metrics", server.url()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

/// The server's count of stored uploads once no upload outcome (stored, deduplicated, rejected) has been
/// counted for half a second.
async fn settled(server: &TestServer) -> u64 {
    const REJECTED: &str = "iphoto_uploads_total{outcome=\"rejected\"}";
    let outcomes = async || {
        (
            metric(server, STORED).await,
            metric(server, DEDUPLICATED).await + metric(server, REJECTED).await,
        )
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = outcomes().await;
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = outcomes().await;
        if now == last {
            return now.0;
        }
        assert!(Instant::now() < deadline, "the server's uploads never settled");
        last = now;
    }
}

const STORED: &str = "iphoto_uploads_total{outcome=\"stored\"}";
const DEDUPLICATED: &str = "iphoto_uploads_total{outcome=\"deduplicated\"}";
const BYTES: &str = "iphoto_upload_bytes_total";

/// The real binary, SIGKILLed (no cleanup, no destructor) while its uploads run: the next run finishes the
/// work, and the server's own counters show every original stored exactly once, none deduplicated (an upload
/// the server received before the kill is never sent again) and no byte stored twice.
#[tokio::test]
async fn the_agent_killed_with_sigkill_mid_upload_resumes_without_uploading_twice() {
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::start(data.path()).await;
    let library = Library::new(12 * 1024 * 1024).await;
    let log = library.dir.path().join("agent.log");
    let agent = |log: &Path| {
        Command::new(env!("CARGO_BIN_EXE_iphoto-agent"))
            .args(["sync", "--once", "--uploads", "1", "--server", &server.url()])
            .arg("--token-file")
            .arg(data.path().join("client.token"))
            .arg("--library")
            .arg(&library.bundle)
            .arg("--state-dir")
            .arg(library.state_dir())
            .env("IPHOTO_LOG", "iphoto_agent=debug")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .unwrap()
    };

    let mut child = agent(&log);
    let deadline = Instant::now() + Duration::from_secs(120);
    let stored_at_kill = loop {
        let stored = metric(&server, STORED).await;
        if stored >= 2 {
            break stored;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the pass ended before it could be killed"
        );
        assert!(Instant::now() < deadline, "no upload within 2 minutes");
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9),
        "{status:?}"
    );
    assert!(
        stored_at_kill < 7,
        "killed after {stored_at_kill} of 7 uploads: too late to test a resume"
    );
    assert!(server.stats().await.totals.pending > 0);
    // An upload in flight at the kill may have been stored between the last look and the kill, or after it:
    // the server finishes an upload whose body it has even when the client is gone (so it is recorded, and
    // not sent again). Wait until its counters stop moving.
    let stored_before = settled(&server).await;

    // The per-batch and per-upload spans carry their fields into the logs.
    let logged = std::fs::read_to_string(&log).unwrap();
    let batch = logged.lines().find(|l| l.contains("batch sent")).expect(&logged);
    for field in [
        "batch=1 of=1 items=6 deleted=0",
        "created=6 updated=0",
        "version=1",
        "ms=",
    ] {
        assert!(batch.contains(field), "{field} in {batch}");
    }
    let upload = logged.lines().find(|l| l.contains(" uploaded ")).expect(&logged);
    for field in [
        "local_identifier=",
        "resource=",
        "size=",
        "sha256=",
        "outcome=\"stored\"",
        "sent=",
    ] {
        assert!(upload.contains(field), "{field} in {upload}");
    }

    let resumed_log = library.dir.path().join("resumed.log");
    let status = agent(&resumed_log).wait().unwrap();
    assert!(
        status.success(),
        "{}",
        std::fs::read_to_string(&resumed_log).unwrap()
    );
    let stats = server.stats().await;
    assert_eq!((stats.totals.uploaded, stats.totals.pending), (7, 0), "{stats:?}");
    assert_eq!(
        metric(&server, STORED).await,
        7,
        "every original received and stored once"
    );
    assert_eq!(metric(&server, DEDUPLICATED).await, 0, "nothing sent again");
    let on_disk: u64 = harness::files_under(&library.bundle)
        .iter()
        .filter(|p| !p.starts_with(library.bundle.join("database")))
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum();
    assert_eq!(metric(&server, BYTES).await, on_disk, "no byte stored twice");
    assert_stored_once(&server, &library, 0);

    // What `status` reports after the resumed pass.
    let output = Command::new(env!("CARGO_BIN_EXE_iphoto-agent"))
        .args(["status", "--json", "--state-dir"])
        .arg(library.state_dir())
        .output()
        .unwrap();
    assert!(output.status.success());
    let status: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(status["lastPass"]["uploaded"], 7 - stored_before, "{status}");
    assert_eq!(status["lastPass"]["itemsSent"], 0, "{status}");
    assert_eq!(status["figures"]["pendingUploads"], 0, "{status}");
}

/// Rewrites one file (same size, other bytes) just as the uploads start, after it was hashed: its upload
/// announces a digest the body no longer has.
struct ChangeOneFileBeforeUploads {
    path: PathBuf,
    bytes: Vec<u8>,
}

impl Progress for ChangeOneFileBeforeUploads {
    fn start(&self, phase: iphoto_agent::sync::Phase, _total: u64) {
        if phase == iphoto_agent::sync::Phase::Uploads {
            std::fs::write(&self.path, &self.bytes).unwrap();
            // A later mtime, whatever the clock's resolution: the hash cache must see a changed file.
            let later = std::time::SystemTime::now() + Duration::from_secs(10);
            std::fs::File::options()
                .write(true)
                .open(&self.path)
                .unwrap()
                .set_modified(later)
                .unwrap();
        }
    }
}

#[tokio::test]
async fn a_refused_upload_is_recorded_and_the_pass_goes_on() {
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::start(data.path()).await;
    let mut library = Library::new(16 * 1024).await;
    let uuid = "A1B2C3D4-0001-4000-8000-000000000001";
    let path = library.resource_path(uuid, ResourceType::Original).await;
    let size = std::fs::metadata(&path).unwrap().len() as usize;
    let changed = content("changed after hashing", size);
    let progress = ChangeOneFileBeforeUploads {
        path,
        bytes: changed.clone(),
    };

    let report = run_pass(&server.client(), &library.options(), &progress)
        .await
        .unwrap();
    assert_eq!((report.uploaded, report.upload_failures), (6, 1), "{report:?}");
    let state = StateDb::open(&library.state_dir()).await.unwrap();
    let failures = state.failures().await.unwrap();
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!(failures[0].local_identifier, format!("{uuid}/L0/001"));
    assert_eq!(failures[0].resource, "original");
    assert!(failures[0].reason.contains("digest_mismatch"), "{failures:?}");
    assert_eq!(server.stats().await.totals.pending, 1);

    // The next pass sees the changed file: new digest sent once, then uploaded; the failure is cleared.
    let next = pass(&server, &library).await;
    assert_eq!(
        (
            next.files_hashed,
            next.items_sent,
            next.updated,
            next.uploaded,
            next.upload_failures
        ),
        (1, 1, 1, 1, 0),
        "{next:?}"
    );
    assert!(state.failures().await.unwrap().is_empty());
    library
        .files
        .insert((uuid.to_owned(), ResourceType::Original), sha256(&changed));
    assert_stored_once(&server, &library, 0);
}

/// One copy at the bundle path (issue 12): an agent sync stores every original, Live Photo video and render
/// at exactly its path inside the bundle (`originals/3/<UUID>.jpeg`, not a name rebuilt from the import
/// name), so `seed-originals` into the same library's layout afterwards finds every file already there and
/// writes nothing: one object per file, shared by the server, the seed and a mount of `originals/`.
#[tokio::test]
async fn sync_then_seed_keeps_one_object_per_file_at_its_bundle_path() {
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::start(data.path()).await;
    let library = Library::new(64 * 1024).await;
    let report = pass(&server, &library).await;
    assert_eq!(report.uploaded, 7, "{report:?}");

    // users/<user>/libraries/<library>/… as the server laid it out.
    let blobs = data.path().join("blobs");
    let stored = harness::files_under(&blobs);
    let first = stored[0]
        .strip_prefix(&blobs)
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let parts: Vec<&str> = first.split('/').collect();
    let (user, library_id) = (parts[1].to_owned(), parts[3].to_owned());
    let root = blobs
        .join("users")
        .join(&user)
        .join("libraries")
        .join(&library_id);
    let assets = iphoto_agent::library::PhotosLibrary::open(&library.bundle)
        .await
        .unwrap()
        .assets()
        .await
        .unwrap();
    let mut files = 0;
    for file in assets.iter().flat_map(|a| &a.files) {
        if file.path == library.icloud_path {
            continue;
        }
        let relative = file.path.strip_prefix(&library.bundle).unwrap();
        let object = root.join(relative);
        assert_eq!(
            std::fs::read(&object).unwrap_or_else(|e| panic!("{}: {e}", object.display())),
            std::fs::read(&file.path).unwrap(),
            "{}",
            relative.display()
        );
        files += 1;
    }
    assert_eq!(files, 7);
    assert_eq!(stored.len(), 7, "one object per file: {stored:?}");

    let store = storage::create_object_store(&storage::StorageConfig {
        backend: storage::BackendConfig::Local(storage::LocalConfig {
            root: blobs.clone(),
            presign_secret: storage::Secret::new("seed-signs-nothing-0123456789abcdef".into()),
            public_url: "http://127.0.0.1:1".parse().unwrap(),
        }),
        presign: Default::default(),
    })
    .unwrap();
    let target = iphoto_agent::seed::SeedTarget::Layout {
        user,
        library: library_id,
    };
    let seeded = iphoto_agent::seed::seed_originals(&store, &library.bundle, &target, 2)
        .await
        .unwrap();
    // The six files under originals/ (five originals and the Live Photo video) are all there already.
    assert_eq!(
        (seeded.copied, seeded.already_there, seeded.failed.len()),
        (0, 6, 0),
        "{seeded:?}"
    );
    assert_eq!(
        harness::files_under(&blobs).len(),
        7,
        "the seed stored no second copy"
    );
    assert_stored_once(&server, &library, 0);
}
