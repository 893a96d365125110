//! `iphoto-agent seed-originals` against the real stores: SeaweedFS (S3) and the local backend, through the
//! binary a user runs and through the library call. The store must end up holding the originals folder's files,
//! byte for byte, at their bundle paths; a rerun copies nothing; a changed file is copied again; bad input gets a
//! clear message and a non-zero exit, never a panic.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::{Command, Output};

use harness::{S3Server, unique_name};
use iphoto_agent::seed::{SeedTarget, seed_originals};
use storage::{LibraryLayout, S3Config, Secret, StorageKey, Store};

const UUIDS: [&str; 3] = [
    "0A1B2C3D-0001-4000-8000-000000000001",
    "B7E8F9A0-0002-4000-8000-000000000002",
    "C3D4E5F6-0003-4000-8000-000000000003",
];

/// A bundle with an originals folder as Photos lays it out: `<X>/<UUID>.<ext>`, a Live Photo's `_3.mov`, and
/// a `.DS_Store` that must not be copied.
struct Bundle {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl Bundle {
    fn new() -> Bundle {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("Test Library.photoslibrary");
        let bundle = Bundle { _dir: dir, path };
        for (n, uuid) in UUIDS.iter().enumerate() {
            bundle.write(
                &format!("{}/{uuid}.heic", &uuid[..1]),
                &content(uuid, 40_000 + n * 1000),
            );
        }
        bundle.write(
            &format!("{}/{}_3.mov", &UUIDS[0][..1], UUIDS[0]),
            &content("live", 70_000),
        );
        bundle.write(".DS_Store", b"finder");
        bundle
    }

    fn originals(&self) -> PathBuf {
        self.path.join("originals")
    }

    fn write(&self, relative: &str, bytes: &[u8]) {
        let path = self.originals().join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }

    /// `(path inside originals, bytes)` of every file that must be copied.
    fn expected(&self) -> Vec<(String, Vec<u8>)> {
        let mut out = Vec::new();
        for entry in harness::files_under(&self.originals()) {
            let relative = entry
                .strip_prefix(self.originals())
                .unwrap()
                .to_string_lossy()
                .into_owned();
            if !relative.starts_with('.') {
                out.push((relative, std::fs::read(&entry).unwrap()));
            }
        }
        out.sort();
        out
    }
}

fn content(seed: &str, size: usize) -> Vec<u8> {
    use sha2::Digest as _;
    let mut out = Vec::with_capacity(size + 32);
    let mut block = sha2::Sha256::digest(seed.as_bytes());
    while out.len() < size {
        out.extend_from_slice(&block);
        block = sha2::Sha256::digest(block);
    }
    out.truncate(size);
    out
}

async fn assert_holds(store: &Store, prefix: &str, bundle: &Bundle) {
    let expected = bundle.expected();
    assert_eq!(expected.len(), 4);
    for (relative, bytes) in &expected {
        let key = StorageKey::parse(format!("{prefix}/{relative}")).unwrap();
        let stored = store.get_bytes(&key).await.unwrap();
        assert!(stored == bytes.as_slice(), "{key} holds the file's bytes");
    }
    let listed: Vec<_> =
        futures::StreamExt::collect::<Vec<_>>(store.list(Some(&StorageKey::parse(prefix).unwrap()))).await;
    assert_eq!(
        listed.len(),
        expected.len(),
        "nothing else (no .DS_Store): {listed:?}"
    );
}

fn s3_config(server: &S3Server, prefix: &str, secret: &str) -> S3Config {
    S3Config {
        endpoint: Some(server.endpoint.parse().unwrap()),
        region: server.region.clone(),
        bucket: server.bucket.clone(),
        access_key_id: server.access_key_id.clone(),
        secret_access_key: Secret::new(secret.into()),
        prefix: Some(StorageKey::parse(prefix).unwrap()),
        path_style: true,
    }
}

/// The agent binary with no storage settings inherited from the environment.
fn agent() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_iphoto-agent"));
    for variable in [
        "IPHOTO_STORAGE_BACKEND",
        "IPHOTO_STORAGE_LOCAL_PATH",
        "IPHOTO_S3_ENDPOINT",
        "IPHOTO_S3_BUCKET",
        "IPHOTO_S3_PREFIX",
        "IPHOTO_S3_ACCESS_KEY_ID",
        "IPHOTO_S3_SECRET_ACCESS_KEY",
        "IPHOTO_PRESIGN_SECRET",
        "IPHOTO_SEED_PREFIX",
        "IPHOTO_LIBRARY",
        // Read when the new names are unset (DESIGN.md's names).
        "STORAGE_BACKEND",
        "STORAGE_LOCAL_PATH",
        "S3_ENDPOINT",
        "S3_BUCKET",
        "S3_PREFIX",
        "S3_ACCESS_KEY_ID",
        "S3_SECRET_ACCESS_KEY",
    ] {
        command.env_remove(variable);
    }
    command.arg("seed-originals").arg("--json");
    command
}

fn report(output: &Output) -> serde_json::Value {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

fn counts(report: &serde_json::Value) -> (u64, u64, usize) {
    (
        report["copied"].as_u64().unwrap(),
        report["alreadyThere"].as_u64().unwrap(),
        report["failed"].as_array().unwrap().len(),
    )
}

#[test]
fn seeds_seaweedfs_through_the_binary_and_resumes() {
    let server = S3Server::shared();
    let bucket_prefix = unique_name("seed");
    let bundle = Bundle::new();
    let run = || {
        agent()
            .arg("--library")
            .arg(&bundle.path)
            .env("IPHOTO_STORAGE_BACKEND", "s3")
            .env("IPHOTO_S3_ENDPOINT", &server.endpoint)
            .env("IPHOTO_S3_REGION", &server.region)
            .env("IPHOTO_S3_BUCKET", &server.bucket)
            .env("IPHOTO_S3_PREFIX", &bucket_prefix)
            .env("IPHOTO_S3_ACCESS_KEY_ID", &server.access_key_id)
            .env("IPHOTO_S3_SECRET_ACCESS_KEY", &server.secret_access_key)
            .output()
            .unwrap()
    };
    let first = report(&run());
    assert_eq!(counts(&first), (4, 0, 0), "{first}");
    assert_eq!(first["prefix"], "Test Library.photoslibrary/originals");

    let store = storage::create_s3_store(
        &s3_config(server, &bucket_prefix, &server.secret_access_key),
        Default::default(),
    )
    .unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(assert_holds(
        &store,
        "Test Library.photoslibrary/originals",
        &bundle,
    ));

    // A rerun finds everything there.
    assert_eq!(counts(&report(&run())), (0, 4, 0));

    // One file re-exported with other bytes of the same size, one new file: only those two are copied.
    let changed = format!("{}/{}.heic", &UUIDS[1][..1], UUIDS[1]);
    let size = std::fs::metadata(bundle.originals().join(&changed))
        .unwrap()
        .len() as usize;
    bundle.write(&changed, &content("re-exported", size));
    bundle.write(
        "D/D0000000-0004-4000-8000-000000000004.jpeg",
        &content("new", 5000),
    );
    // Nothing lost: the re-exported file is reported, not written over the stored object; the new one is copied.
    let output = run();
    assert!(!output.status.success(), "a file not copied must fail the run");
    let third: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(counts(&third), (1, 3, 1), "{third}");
    let reason = third["failed"][0]["reason"].as_str().unwrap();
    assert!(reason.contains("never replaced"), "{reason}");
    let key = StorageKey::parse(format!("Test Library.photoslibrary/originals/{changed}")).unwrap();
    let stored = runtime.block_on(store.get_bytes(&key)).unwrap();
    assert!(stored != content("re-exported", size).as_slice());
}

#[tokio::test]
async fn seeds_into_the_server_layout_on_the_local_backend() {
    let bundle = Bundle::new();
    let root = tempfile::tempdir().unwrap();
    let store = storage::create_object_store(&storage::StorageConfig {
        backend: storage::BackendConfig::Local(storage::LocalConfig {
            root: root.path().to_path_buf(),
            presign_secret: Secret::new("test-presign-secret-0123456789abcdef".into()),
            public_url: "http://127.0.0.1:8080".parse().unwrap(),
        }),
        presign: Default::default(),
    })
    .unwrap();
    let target = SeedTarget::Layout {
        user: "u1".into(),
        library: "lib1".into(),
    };
    let first = seed_originals(&store, &bundle.path, &target, 2).await.unwrap();
    assert_eq!((first.copied, first.already_there), (4, 0), "{first:?}");
    assert!(first.failed.is_empty());
    assert_eq!(
        first.bytes_copied,
        bundle.expected().iter().map(|(_, b)| b.len() as u64).sum::<u64>()
    );
    assert_eq!(first.prefix, "users/u1/libraries/lib1/originals");
    assert_holds(&store, &first.prefix, &bundle).await;

    // The keys are the ones the server's layout gives the same assets: one copy serves both.
    let layout = LibraryLayout::new("u1", "lib1").unwrap();
    for key in [
        layout.original(UUIDS[2], "HEIC").unwrap(),
        layout.live_video(UUIDS[0]).unwrap(),
    ] {
        store.head(&key).await.unwrap();
    }

    let again = seed_originals(&store, &bundle.path, &target, 2).await.unwrap();
    assert_eq!((again.copied, again.already_there), (0, 4), "{again:?}");

    // Other bytes at a key (same size) are found by their digest and reported, never replaced: the catalog
    // may reference them.
    let other = layout.original(UUIDS[2], "heic").unwrap();
    let size = store.head(&other).await.unwrap().size as usize;
    store.delete(&other).await.unwrap();
    store
        .put(&other, vec![0u8; size].into(), &Default::default())
        .await
        .unwrap();
    let again = seed_originals(&store, &bundle.path, &target, 2).await.unwrap();
    assert_eq!(
        (again.copied, again.already_there, again.failed.len()),
        (0, 3, 1),
        "{again:?}"
    );
    assert_eq!(store.get_bytes(&other).await.unwrap(), vec![0u8; size]);
}

#[test]
fn bad_input_gets_a_clear_message_and_a_non_zero_exit() {
    let bundle = Bundle::new();
    let store_dir = tempfile::tempdir().unwrap();
    // Exit status 1 with one line saying what is wrong: not a panic (101), not a usage error (2).
    let stderr = |output: Output| {
        let text = String::from_utf8_lossy(&output.stderr).into_owned();
        assert_eq!(output.status.code(), Some(1), "{text}");
        assert!(!text.contains("panicked"), "{text}");
        text
    };
    let local = |command: &mut Command| {
        command.arg("--storage-local-path").arg(store_dir.path());
    };

    // Not a bundle.
    let mut command = agent();
    command
        .arg("--library")
        .arg(store_dir.path().join("nothing.photoslibrary"));
    local(&mut command);
    let message = stderr(command.output().unwrap());
    assert!(
        message.contains("nothing.photoslibrary/originals") && message.contains("bundle"),
        "{message}"
    );

    // The originals folder is a symlink (the mount already installed).
    let linked = tempfile::tempdir().unwrap();
    let linked_bundle = linked.path().join("Linked.photoslibrary");
    std::fs::create_dir_all(&linked_bundle).unwrap();
    std::os::unix::fs::symlink(bundle.originals(), linked_bundle.join("originals")).unwrap();
    let mut command = agent();
    command.arg("--library").arg(&linked_bundle);
    local(&mut command);
    let message = stderr(command.output().unwrap());
    assert!(message.contains("symlink"), "{message}");

    // A prefix that escapes.
    let mut command = agent();
    command
        .arg("--library")
        .arg(&bundle.path)
        .args(["--prefix", "a/../../etc"]);
    local(&mut command);
    let message = stderr(command.output().unwrap());
    assert!(
        message.contains("--prefix") && message.contains(".."),
        "{message}"
    );

    // No storage settings at all.
    let message = stderr(agent().arg("--library").arg(&bundle.path).output().unwrap());
    assert!(message.contains("IPHOTO_STORAGE_LOCAL_PATH"), "{message}");

    // A file whose name cannot be a key: reported by path, the others still copied, exit non-zero.
    bundle.write("A/staging#12", b"x");
    let mut command = agent();
    command.arg("--library").arg(&bundle.path);
    local(&mut command);
    let output = command.output().unwrap();
    let message = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(1), "{message}");
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(counts(&report), (4, 0, 1), "{report}");
    let failure = &report["failed"][0];
    assert!(
        failure["path"].as_str().unwrap().ends_with("A/staging#12"),
        "{report}"
    );
    assert!(
        failure["reason"]
            .as_str()
            .unwrap()
            .contains("invalid storage key"),
        "{report}"
    );
    assert!(message.contains("1 items failed"), "{message}");
}

#[tokio::test]
async fn wrong_s3_credentials_fail_each_file_with_the_reason() {
    let server = S3Server::shared();
    let bundle = Bundle::new();
    let store = storage::create_s3_store(
        &s3_config(server, &unique_name("seed-denied"), "not-the-secret"),
        Default::default(),
    )
    .unwrap();
    let target = SeedTarget::Prefix(StorageKey::parse("lib/originals").unwrap());
    let report = seed_originals(&store, &bundle.path, &target, 4).await.unwrap();
    assert_eq!(
        (report.copied, report.already_there, report.failed.len()),
        (0, 0, 4),
        "{report:?}"
    );
    for failure in &report.failed {
        assert!(
            failure.reason.contains("refused access") || failure.reason.contains("denied"),
            "{failure:?}"
        );
    }
}
