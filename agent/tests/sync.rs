//! End to end: the sync pass against the real `iphoto-server` binary (embedded defaults in a temp dir), with a
//! synthesized Photos library — the database built from `reference/fixture_photos11.sql` and generated files
//! at the paths the reader expects (a Live Photo pair and a render included; the iCloud asset's original left
//! out).

// Helpers outside #[test] fns are not covered by allow-unwrap-in-tests (rust-clippy #13981).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use api::ResourceType;
use iphoto_agent::client::{Retry, Server};
use iphoto_agent::library::PhotosLibrary;
use iphoto_agent::state::StateDb;
use iphoto_agent::sync::{NoProgress, PassOptions, PassReport, Progress, run_pass};
use sha2::{Digest as _, Sha256};
use sqlx::Connection as _;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};

const ICLOUD_ONLY: &str = "F6A7B8C9-0006-4000-8000-000000000006";

/// The real server, killed on drop (panics included).
struct TestServer {
    child: Option<Child>,
    data: PathBuf,
    port: u16,
}

impl TestServer {
    async fn start(data: &Path) -> TestServer {
        let port = free_port();
        let mut server = TestServer {
            child: None,
            data: data.to_path_buf(),
            port,
        };
        server.spawn();
        server.wait_ready().await;
        server
    }

    fn spawn(&mut self) {
        let binary = server_binary();
        let child = Command::new(binary)
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{}", self.port),
                "--data-dir",
            ])
            .arg(&self.data)
            .env_remove("DATABASE_URL")
            .env_remove("STORAGE_BACKEND")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
    }

    async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let url = format!("{}/readyz", self.url());
        loop {
            if let Ok(response) = reqwest::get(&url).await
                && response.status().is_success()
            {
                return;
            }
            assert!(Instant::now() < deadline, "server did not become ready");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn client(&self) -> Server {
        let token = std::fs::read_to_string(self.data.join("client.token")).unwrap();
        let retry = Retry {
            attempts: 60,
            first_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(500),
        };
        Server::new(&self.url(), &token, retry).unwrap()
    }

    async fn stats(&self) -> api::Stats {
        self.client().stats().await.unwrap()
    }

    /// SHA-256 → number of stored objects with those bytes, over the whole blob store.
    fn stored(&self) -> BTreeMap<String, usize> {
        let mut found = BTreeMap::new();
        let mut dirs = vec![self.data.join("blobs")];
        while let Some(dir) = dirs.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                } else {
                    *found.entry(sha256(&std::fs::read(&path).unwrap())).or_insert(0) += 1;
                }
            }
        }
        found
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `<target>/debug/iphoto-server`, beside this test's `deps/` directory. A dev-dependency builds the server's
/// library but not its binary, so a missing binary is built once here with the same cargo and target dir.
fn server_binary() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let profile_dir = std::env::current_exe()
                .unwrap()
                .parent()
                .unwrap()
                .parent()
                .unwrap()
                .to_path_buf();
            let binary = profile_dir.join("iphoto-server");
            if !binary.is_file() {
                let status = Command::new(env!("CARGO"))
                    .args(["build", "-p", "iphoto-server", "--bin", "iphoto-server"])
                    .env("CARGO_TARGET_DIR", profile_dir.parent().unwrap())
                    .current_dir(env!("CARGO_MANIFEST_DIR"))
                    .status()
                    .unwrap();
                assert!(status.success(), "building iphoto-server failed");
            }
            binary
        })
        .clone()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A synthesized library in a temp dir: the bundle, its database and the files written.
struct Library {
    dir: tempfile::TempDir,
    bundle: PathBuf,
    /// `(uuid, resource)` → sha256 of the file written for it.
    files: BTreeMap<(String, ResourceType), String>,
    /// Where the iCloud-only asset's original would be.
    icloud_path: PathBuf,
}

impl Library {
    async fn new(file_size: usize) -> Library {
        let dir = tempfile::tempdir().unwrap();
        let bundle = dir.path().join("Test.photoslibrary");
        std::fs::create_dir_all(bundle.join("database")).unwrap();
        let sql = std::fs::read_to_string(common::shared().join("reference/fixture_photos11.sql")).unwrap();
        let options = SqliteConnectOptions::new()
            .filename(bundle.join("database/Photos.sqlite"))
            .create_if_missing(true);
        let mut connection = SqliteConnection::connect_with(&options).await.unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut connection)
            .await
            .unwrap();
        connection.close().await.unwrap();

        let assets = PhotosLibrary::open(&bundle)
            .await
            .unwrap()
            .assets()
            .await
            .unwrap();
        let mut files = BTreeMap::new();
        let mut icloud_path = PathBuf::new();
        for (n, asset) in assets.iter().enumerate() {
            for file in &asset.files {
                if asset.uuid == ICLOUD_ONLY {
                    icloud_path = file.path.clone();
                    continue;
                }
                let bytes = content(
                    &format!("{}{:?}", asset.uuid, file.resource_type),
                    file_size + n * 977,
                );
                std::fs::create_dir_all(file.path.parent().unwrap()).unwrap();
                std::fs::write(&file.path, &bytes).unwrap();
                files.insert((asset.uuid.clone(), file.resource_type), sha256(&bytes));
            }
        }
        assert_eq!(files.len(), 7, "5 originals, a Live Photo video and a render");
        Library {
            dir,
            bundle,
            files,
            icloud_path,
        }
    }

    fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    fn options(&self) -> PassOptions {
        PassOptions::new(&self.bundle, &self.state_dir())
    }

    async fn execute(&self, sql: &'static str) {
        let options = SqliteConnectOptions::new().filename(self.bundle.join("database/Photos.sqlite"));
        let mut connection = SqliteConnection::connect_with(&options).await.unwrap();
        let done = sqlx::query(sql).execute(&mut connection).await.unwrap();
        assert_eq!(done.rows_affected(), 1, "{sql}");
        connection.close().await.unwrap();
    }
}

/// Distinct, incompressible-looking bytes per seed.
fn content(seed: &str, size: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(size + 32);
    let mut block = Sha256::digest(seed.as_bytes());
    while out.len() < size {
        out.extend_from_slice(&block);
        block = Sha256::digest(block);
    }
    out.truncate(size);
    out
}

async fn pass(server: &TestServer, library: &Library) -> PassReport {
    run_pass(&server.client(), &library.options(), &NoProgress)
        .await
        .unwrap()
}

fn assert_stored_once(server: &TestServer, library: &Library, extra: usize) {
    let stored = server.stored();
    for ((uuid, resource), sha) in &library.files {
        assert_eq!(
            stored.get(sha),
            Some(&1),
            "{uuid} {resource:?} stored once with the file's SHA-256"
        );
    }
    assert_eq!(
        stored.values().sum::<usize>(),
        library.files.len() + extra,
        "{stored:?}"
    );
}

#[tokio::test]
async fn passes_upload_once_then_send_only_what_changed() {
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::start(data.path()).await;
    let library = Library::new(64 * 1024).await;

    // First pass: every item, every available resource.
    let first = pass(&server, &library).await;
    assert_eq!(
        (first.assets, first.items_sent, first.created),
        (6, 6, 6),
        "{first:?}"
    );
    assert_eq!(first.uploaded, 7, "{first:?}");
    assert_eq!((first.icloud_only, first.unavailable), (1, 1), "{first:?}");
    assert_eq!(first.files_hashed, 7);
    assert_stored_once(&server, &library, 0);
    let stats = server.stats().await;
    assert_eq!(
        (stats.totals.photos, stats.totals.uploaded, stats.totals.pending),
        (6, 7, 0),
        "{stats:?}"
    );
    assert_eq!(
        stats.totals.unavailable, 1,
        "the iCloud-only original is reported unavailable"
    );
    let state = StateDb::open(&library.state_dir()).await.unwrap();
    let figures = state.figures().await.unwrap();
    assert_eq!(figures.bytes_uploaded, first.bytes_uploaded);
    assert!(figures.upload_rate > 0.0 && figures.eta == Some(0), "{figures:?}");

    // Second pass: nothing changed, nothing sent, nothing hashed again; the catalog version does not move.
    let second = pass(&server, &library).await;
    assert_eq!(
        (
            second.items_sent,
            second.batches,
            second.albums_sent,
            second.uploaded,
            second.files_hashed
        ),
        (0, 0, 0, 0, 0),
        "{second:?}"
    );
    assert_eq!(server.stats().await.version, stats.version);
    // A cold start keeps the figures.
    assert_eq!(
        state.figures().await.unwrap().bytes_uploaded,
        first.bytes_uploaded
    );

    // A favourite toggled in Photos: exactly one update.
    library
        .execute("UPDATE ZASSET SET ZFAVORITE = 1 - ZFAVORITE WHERE ZUUID = 'C3D4E5F6-0003-4000-8000-000000000003'")
        .await;
    let toggled = pass(&server, &library).await;
    assert_eq!(
        (toggled.items_sent, toggled.updated, toggled.uploaded),
        (1, 1, 0),
        "{toggled:?}"
    );

    // An asset deleted from the library: soft-deleted on the server.
    library
        .execute("DELETE FROM ZASSET WHERE ZUUID = 'C3D4E5F6-0003-4000-8000-000000000003'")
        .await;
    let deleted = pass(&server, &library).await;
    assert_eq!(
        (deleted.assets, deleted.items_sent, deleted.deleted_sent),
        (5, 1, 1),
        "{deleted:?}"
    );
    assert_eq!(server.stats().await.totals.photos, 5);
    let again = pass(&server, &library).await;
    assert_eq!(again.items_sent, 0, "a deletion is sent once: {again:?}");

    // The iCloud-only original appears on disk: sent once, then uploaded.
    let bytes = content("downloaded from iCloud", 10_000);
    std::fs::create_dir_all(library.icloud_path.parent().unwrap()).unwrap();
    std::fs::write(&library.icloud_path, &bytes).unwrap();
    let downloaded = pass(&server, &library).await;
    assert_eq!(
        (downloaded.items_sent, downloaded.uploaded, downloaded.icloud_only),
        (1, 1, 0),
        "{downloaded:?}"
    );
    assert_eq!(server.stored().get(&sha256(&bytes)), Some(&1));
}

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
    // kill either finished on the server (no longer pending) or was dropped with nothing stored.
    assert_eq!(resumed.deduplicated, 0, "{resumed:?}");
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
    server.spawn();
    server.wait_ready().await;
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
    // An upload in flight at the kill may have been stored between the last look and the kill.
    let stored_before = metric(&server, STORED).await;

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
    let on_disk: u64 = walk_files(&library.bundle)
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

fn walk_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return files;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk_files(&path));
        } else {
            files.push(path);
        }
    }
    files
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
    let assets = PhotosLibrary::open(&library.bundle)
        .await
        .unwrap()
        .assets()
        .await
        .unwrap();
    let path = assets
        .iter()
        .find(|a| a.uuid == uuid)
        .unwrap()
        .path(ResourceType::Original)
        .unwrap()
        .to_path_buf();
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
