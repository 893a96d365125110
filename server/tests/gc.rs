//! The garbage collector against real parts: a pass over SQLite + a local directory and over PostgreSQL +
//! SeaweedFS, a restart of the real binary cleaning a crash's staging, and two `iphoto-server gc` processes
//! collecting one PostgreSQL catalog and one bucket at once.
//!
//! Every case checks the guarantee itself — the invariant of ARCHITECTURE.md, "no acknowledged byte is
//! deleted before the retention, verified by hash": each referenced object still exists and hashes to the
//! SHA-256 the catalog recorded for it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use api::{AssetKind, JobKind, ResourceType};
use chrono::{FixedOffset, TimeZone as _, Utc};
use harness::{Postgres, S3Server, ServerProcess, unique_name};
use server::catalog::{
    self, Catalog, ConnectOptions, DeclaredResource, LeaseRequest, LibraryId, Location, PhotoUpsert,
    Retention, UploadRecord, UserId,
};
use server::gc::{self, GcSettings};
use storage::{PutOptions, Sha256Digest, StorageKey, Store};

/// The binary under test, copied once per test process: a concurrent `cargo build` sharing the target
/// directory (another worktree of this workspace) may replace Cargo's copy between a stop and a restart.
fn binary() -> &'static std::path::Path {
    static COPY: std::sync::OnceLock<(tempfile::TempDir, std::path::PathBuf)> = std::sync::OnceLock::new();
    let (_, path) = COPY.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("iphoto-server");
        std::fs::copy(env!("CARGO_BIN_EXE_iphoto-server"), &path).unwrap();
        (dir, path)
    });
    path
}

/// Objects older than this are past the grace; the fixture waits it out before writing the fresh one.
const GRACE: Duration = Duration::from_secs(2);
/// The grace of the `gc` processes: long enough that the fresh object stays fresh through a dry run and
/// two passes, each with its settle pause.
const CLI_GRACE: Duration = Duration::from_secs(8);

/// What a fixture put in the catalog and the store.
struct Fixture {
    user: UserId,
    /// Objects the catalog names, with the SHA-256 it recorded.
    referenced: Vec<(StorageKey, String)>,
    /// Unreferenced objects past the grace, with their sizes.
    garbage: Vec<(StorageKey, u64)>,
    /// Never collected: an unreferenced object within the grace, objects outside `users/<known user>/`.
    kept: Vec<StorageKey>,
}

impl Fixture {
    fn garbage_bytes(&self) -> u64 {
        self.garbage.iter().map(|(_, size)| size).sum()
    }
}

fn bytes(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| u8::try_from((i * 31 + usize::from(seed) * 7) % 251).unwrap())
        .collect()
}

fn key(text: &str) -> StorageKey {
    StorageKey::parse(text).unwrap()
}

async fn put(store: &Store, key: &StorageKey, body: Vec<u8>) -> String {
    store
        .put(key, body.into(), &PutOptions::default())
        .await
        .unwrap()
        .sha256
        .to_hex()
}

fn photo(local_identifier: &str, sha256: &str, size: u64) -> PhotoUpsert {
    let at = FixedOffset::east_opt(0)
        .unwrap()
        .with_ymd_and_hms(2024, 5, 1, 10, 0, 0)
        .unwrap();
    PhotoUpsert {
        local_identifier: local_identifier.to_owned(),
        cloud_guid: None,
        fingerprint: None,
        kind: AssetKind::Photo,
        subtype: None,
        live_photo: false,
        width: 4032,
        height: 3024,
        duration_ms: None,
        taken_at: at,
        time_zone: None,
        modified_at: at,
        favorite: false,
        hidden: false,
        trashed: false,
        latitude: None,
        longitude: None,
        original_filename: format!("{local_identifier}.HEIC"),
        uti: "public.heic".into(),
        edited: false,
        title: None,
        caption: None,
        keywords: Vec::new(),
        people: Vec::new(),
        resources: vec![DeclaredResource {
            resource_type: ResourceType::Original,
            size,
            sha256: Some(sha256.to_owned()),
            available: true,
            unavailable_reason: None,
            bundle_path: None,
        }],
        deleted: false,
    }
}

/// Stores and records `photos` originals for the user; returns (key, sha256) per photo.
async fn stored_photos(
    catalog: &dyn Catalog,
    store: &Store,
    user: &UserId,
    library: &LibraryId,
    names: &[&str],
    seed: u8,
) -> Vec<(StorageKey, String, PhotoUpsert)> {
    let mut out = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let body = bytes(1000 + i * 37, seed + u8::try_from(i).unwrap());
        let size = body.len() as u64;
        let k = key(&format!("users/{user}/libraries/{library}/originals/{name}.heic"));
        let sha256 = put(store, &k, body).await;
        let item = photo(name, &sha256, size);
        catalog
            .sync_photos(user, library, vec![item.clone()])
            .await
            .unwrap();
        let target = catalog
            .resource_for_upload(
                user,
                &catalog::UploadLookup {
                    library_id: Some(library.clone()),
                    local_identifier: (*name).to_owned(),
                    resource: ResourceType::Original,
                },
            )
            .await
            .unwrap()
            .unwrap();
        catalog
            .record_upload(
                user,
                &UploadRecord {
                    photo_id: target.photo_id,
                    resource: ResourceType::Original,
                    sha256: sha256.clone(),
                    size,
                    key: k.to_string(),
                    at: Utc::now(),
                    deduplicated: false,
                },
            )
            .await
            .unwrap();
        out.push((k, sha256, item));
    }
    out
}

/// Referenced objects of every kind, garbage of every kind, and what must be kept however old.
/// `strays` more unreferenced objects are added, so passes have something to race over; all but the fresh
/// object are past `grace` when this returns.
async fn populate(
    catalog: &dyn Catalog,
    store: &Store,
    photos: usize,
    strays: u8,
    grace: Duration,
) -> Fixture {
    let user = catalog.create_user("alice").await.unwrap().id;
    let library = catalog.ensure_library(&user, "mac").await.unwrap().id;
    // Garbage: an original the Mac dropped, once its history's retention is over; only a blob row names it.
    let mut garbage = Vec::new();
    let orphan = stored_photos(catalog, store, &user, &library, &["ORPHAN"], 120).await;
    let (orphan_key, _, orphan_item) = orphan.into_iter().next().unwrap();
    // The Mac dropped the resource: the photo is re-declared without it, so only the blob row names it.
    catalog
        .sync_photos(
            &user,
            &library,
            vec![PhotoUpsert {
                resources: Vec::new(),
                ..orphan_item
            }],
        )
        .await
        .unwrap();
    // Its retained history names it for the retention: run the purge's clock past it, so only the blob row
    // is left. (First, so the purge touches nothing the rest of the fixture makes.)
    catalog
        .purge(Retention { days: 30 }, Utc::now() + chrono::Duration::days(31))
        .await
        .unwrap();
    let orphan_size = store.head(&orphan_key).await.unwrap().size;
    garbage.push((orphan_key, orphan_size));
    let names: Vec<String> = (0..photos).map(|i| format!("LIVE{i}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut referenced: Vec<(StorageKey, String)> = Vec::new();
    for (k, sha256, _) in stored_photos(catalog, store, &user, &library, &names, 1).await {
        referenced.push((k, sha256));
    }
    // A tombstone keeps its original for the retention.
    let gone = stored_photos(catalog, store, &user, &library, &["GONE"], 90).await;
    let (gone_key, gone_sha, gone_item) = gone.into_iter().next().unwrap();
    catalog
        .sync_photos(
            &user,
            &library,
            vec![PhotoUpsert {
                deleted: true,
                ..gone_item
            }],
        )
        .await
        .unwrap();
    referenced.push((gone_key, gone_sha));
    // A thumbnail named by an enrichment result.
    let job = catalog
        .lease_jobs(
            &user,
            &LeaseRequest {
                kind: JobKind::Thumbnail,
                max: 10,
                lease_ms: 60_000,
            },
        )
        .await
        .unwrap()
        .remove(0);
    let thumb = key(&format!(
        "users/{user}/libraries/{library}/derivatives/thumbnail/{}.jpg",
        job.local_identifier
    ));
    let thumb_sha = put(store, &thumb, bytes(300, 200)).await;
    catalog
        .complete_job(&user, &job.id, &serde_json::json!({"key": thumb.as_str()}))
        .await
        .unwrap();
    referenced.push((thumb, thumb_sha));

    // Garbage: a thumbnail written for a job that never completed (and the orphan above).
    let stray = key(&format!(
        "users/{user}/libraries/{library}/derivatives/thumbnail/STRAY.jpg"
    ));
    put(store, &stray, bytes(4321, 3)).await;
    garbage.push((stray, 4321));
    for i in 0..strays {
        let k = key(&format!(
            "users/{user}/libraries/{library}/derivatives/thumbnail/S/STRAY{i}.jpg"
        ));
        put(store, &k, bytes(100 + usize::from(i), i)).await;
        garbage.push((k, 100 + u64::from(i)));
    }

    // Never touched, however old: outside `users/`, and under a user the catalog does not know.
    let seed = key("seed/originals/A/OUTSIDE.heic");
    put(store, &seed, bytes(10, 4)).await;
    let stranger = key("users/nobody/libraries/x/originals/S.heic");
    put(store, &stranger, bytes(10, 5)).await;
    // An original the catalog never recorded: `seed-originals --user --library-id` writes these for the
    // mount to serve as the library's originals folder, so it may be the only copy.
    let seeded = key(&format!("users/{user}/libraries/{library}/originals/SEEDED.heic"));
    put(store, &seeded, bytes(20, 6)).await;

    tokio::time::sleep(grace + Duration::from_millis(1500)).await;
    // Within the grace: an upload whose catalog record is still to come.
    let fresh = key(&format!("users/{user}/libraries/{library}/originals/FRESH.heic"));
    put(store, &fresh, bytes(999, 6)).await;
    Fixture {
        user,
        referenced,
        garbage,
        kept: vec![seed, stranger, seeded, fresh],
    }
}

/// The guarantee: every referenced object exists and hashes to what the catalog recorded; the kept ones
/// exist.
async fn assert_nothing_referenced_lost(store: &Store, fixture: &Fixture) {
    for (k, sha256) in &fixture.referenced {
        let body = store
            .get_bytes(k)
            .await
            .unwrap_or_else(|e| panic!("referenced {k} lost: {e}"));
        assert_eq!(&Sha256Digest::of(&body).to_hex(), sha256, "{k}");
    }
    for k in &fixture.kept {
        store
            .head(k)
            .await
            .unwrap_or_else(|e| panic!("{k} must be kept: {e}"));
    }
}

async fn assert_garbage_gone(store: &Store, fixture: &Fixture) {
    for (k, _) in &fixture.garbage {
        assert!(
            matches!(store.head(k).await, Err(storage::Error::NotFound { .. })),
            "{k} should have been collected"
        );
    }
}

fn settings(dry_run: bool) -> GcSettings {
    GcSettings {
        dry_run,
        settle: Duration::from_millis(100),
        ..GcSettings::new(GRACE)
    }
}

/// Dry run, then a pass, then a pass again, with the guarantee checked after each. `blobs` is the local
/// backend's directory, where a crash's staging file is planted too.
async fn collects_only_unreferenced_past_the_grace(
    catalog: &dyn Catalog,
    store: &Store,
    blobs: Option<&std::path::Path>,
) {
    let fixture = populate(catalog, store, 3, 0, GRACE).await;
    let staging = blobs.map(|blobs| {
        let path = blobs.join(format!("users/{}/crashed.heic#3", fixture.user));
        std::fs::write(&path, bytes(777, 9)).unwrap();
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(std::time::SystemTime::now() - GRACE * 2)
            .unwrap();
        path
    });
    let staging_bytes = if staging.is_some() { 777 } else { 0 };
    assert_eq!(fixture.referenced.len(), 5);
    let referenced: Vec<String> = fixture.referenced.iter().map(|(k, _)| k.to_string()).collect();
    assert_eq!(
        catalog
            .gc_referenced_among(&fixture.user, &referenced)
            .await
            .unwrap()
            .len(),
        5
    );

    let dry = gc::run_pass(catalog, store, "replica-a", &settings(true))
        .await
        .unwrap();
    assert!(dry.ran);
    assert_eq!(dry.reclaimable_bytes(), fixture.garbage_bytes() + staging_bytes);
    assert_eq!(dry.reclaimable_objects(), (2, fixture.garbage_bytes()));
    assert_eq!(dry.reclaimed_bytes(), 0);
    assert!(staging.as_ref().is_none_or(|path| path.exists()));
    assert_eq!(dry.users.len(), 1);
    assert_eq!(dry.users[0].reclaimable_keys, 2);
    for (k, _) in &fixture.garbage {
        store.head(k).await.unwrap();
    }
    assert_nothing_referenced_lost(store, &fixture).await;

    let pass = gc::run_pass(catalog, store, "replica-a", &settings(false))
        .await
        .unwrap();
    assert!(pass.ran);
    assert_eq!(pass.reclaimed_bytes(), dry.reclaimable_bytes(), "{pass:?}");
    assert_eq!(pass.users[0].reclaimed_keys, 2);
    assert_eq!(pass.staging.bytes, staging_bytes);
    assert!(staging.as_ref().is_none_or(|path| !path.exists()));
    assert_garbage_gone(store, &fixture).await;
    assert_nothing_referenced_lost(store, &fixture).await;
    // The orphan's blob row went with its object: the next upload of that content stores it again.
    assert!(
        catalog
            .gc_referenced_keys(&fixture.user)
            .await
            .unwrap()
            .iter()
            .all(|k| !k.contains("ORPHAN"))
    );

    let again = gc::run_pass(catalog, store, "replica-b", &settings(false))
        .await
        .unwrap();
    assert!(again.ran, "the first pass released its lease");
    assert_eq!(again.reclaimed_bytes(), 0, "idempotent: {again:?}");
    assert_nothing_referenced_lost(store, &fixture).await;
}

async fn sqlite_catalog(dir: &std::path::Path) -> Arc<dyn Catalog> {
    catalog::connect(&Location::sqlite_in(dir), &ConnectOptions::default())
        .await
        .unwrap()
}

fn local_store(dir: &std::path::Path) -> Store {
    use clap::Parser as _;
    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        storage: storage::StorageArgs,
    }
    let mut args = Cli::try_parse_from(["t"]).unwrap().storage;
    args.storage_local_path = Some(dir.join("blobs"));
    args.presign_secret = Some(storage::Secret::new(
        "gc-test-secret-0123456789abcdef-0123".into(),
    ));
    args.public_url = Some("http://127.0.0.1:1".parse().unwrap());
    storage::create_object_store(&args.into_config().unwrap()).unwrap()
}

async fn postgres_url() -> String {
    tokio::task::spawn_blocking(|| Postgres::shared().fresh_database().unwrap())
        .await
        .unwrap()
}

fn s3_config(prefix: &str) -> storage::S3Config {
    let server = S3Server::shared();
    storage::S3Config {
        endpoint: Some(server.endpoint.parse().unwrap()),
        region: server.region.clone(),
        bucket: server.bucket.clone(),
        access_key_id: server.access_key_id.clone(),
        secret_access_key: storage::Secret::new(server.secret_access_key.clone()),
        prefix: Some(key(prefix)),
        path_style: true,
    }
}

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
    let mut server = ServerProcess::start(binary(), &data, &[("GC_INTERVAL", "0")])
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
    let server = ServerProcess::start(binary(), &data, &[("GC_INTERVAL", "1s"), ("GC_GRACE", "1s")])
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

/// `iphoto-server gc` on the shared catalog and bucket.
fn gc_command(url: &str, prefix: &str, data: &std::path::Path, extra: &[&str]) -> std::process::Command {
    let server = S3Server::shared();
    let mut command = std::process::Command::new(binary());
    command
        .arg("gc")
        .args(["--grace", &format!("{}s", CLI_GRACE.as_secs())])
        .args(extra)
        .env("IPHOTO_DATA_DIR", data)
        .env("DATABASE_URL", url)
        .env("STORAGE_BACKEND", "s3")
        .env("S3_ENDPOINT", &server.endpoint)
        .env("S3_REGION", &server.region)
        .env("S3_BUCKET", &server.bucket)
        .env("S3_ACCESS_KEY_ID", &server.access_key_id)
        .env("S3_SECRET_ACCESS_KEY", &server.secret_access_key)
        .env("S3_PREFIX", prefix)
        .env("S3_PATH_STYLE", "true")
        .env_remove("GC_DRY_RUN")
        .env_remove("GC_GRACE");
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

/// One metric's value in a `/metrics` text, if present.
fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(&format!("{name} ")))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
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
        ("DATABASE_URL", url.clone()),
        ("STORAGE_BACKEND", "s3".into()),
        ("S3_ENDPOINT", s3.endpoint.clone()),
        ("S3_REGION", s3.region.clone()),
        ("S3_BUCKET", s3.bucket.clone()),
        ("S3_ACCESS_KEY_ID", s3.access_key_id.clone()),
        ("S3_SECRET_ACCESS_KEY", s3.secret_access_key.clone()),
        ("S3_PREFIX", prefix.clone()),
        ("S3_PATH_STYLE", "true".into()),
        ("GC_INTERVAL", "1s".into()),
        ("GC_GRACE", format!("{}s", GRACE.as_secs())),
    ];
    let envs: Vec<(&str, &str)> = envs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let dir = tempfile::tempdir().unwrap();
    let first = ServerProcess::start(binary(), &dir.path().join("a"), &envs)
        .await
        .unwrap();
    // The second replica shares the catalog, so the first start's tokens are the ones it accepts.
    std::fs::create_dir_all(dir.path().join("b")).unwrap();
    for scope in ["client", "web", "worker", "admin"] {
        let name = format!("{scope}.token");
        std::fs::copy(dir.path().join("a").join(&name), dir.path().join("b").join(&name)).unwrap();
    }
    let second = ServerProcess::start(binary(), &dir.path().join("b"), &envs)
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
