//! Errors a Mac user can act on (issue 13, item 10), through the real `iphoto-agent` binary: a Photos database
//! the OS will not let us read names Full Disk Access and the path; an original that cannot be read keeps the OS
//! error in the state DB, `status` lists it with its status, and `sync --once` exits non-zero; `status` prints
//! bytes in human units.
//!
//! Permission denial is real, not simulated: the files are `chmod`ed and the agent runs as an unprivileged user.
//! The tests run as root here, and root reads any file whatever its mode (CAP_DAC_OVERRIDE), so as root the
//! agent is started through `setpriv --reuid=65534 --regid=65534 --clear-groups` (util-linux, installed by
//! scripts/install-test-deps.sh) and really gets EACCES; as any other user it is started directly.

// Helpers outside #[test] fns are not covered by allow-unwrap-in-tests (rust-clippy #13981).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::Path;
use std::process::{Command, Output};

use api::ResourceType;

use common::sync::{Library, TestServer};

/// `nobody`, the user the agent runs as when the test runs as root.
const NOBODY: u32 = 65534;

fn running_as_root() -> bool {
    let probe = tempfile::NamedTempFile::new().unwrap();
    probe.as_file().metadata().unwrap().uid() == 0
}

/// The agent binary with `args`, run as a user that file modes apply to.
fn agent_unprivileged(args: &[&std::ffi::OsStr]) -> Output {
    let agent = env!("CARGO_BIN_EXE_iphoto-agent");
    let mut command = if running_as_root() {
        let mut command = Command::new("setpriv");
        command
            .arg(format!("--reuid={NOBODY}"))
            .arg(format!("--regid={NOBODY}"))
            .args(["--clear-groups", "--", agent]);
        command
    } else {
        Command::new(agent)
    };
    command.args(args).env("IPHOTO_LOG", "warn").output().unwrap()
}

/// The agent binary with `args`, as this test's user (for `status`, which only reads the state DB).
fn agent(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_iphoto-agent"))
        .args(args)
        .output()
        .unwrap()
}

fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Directories 0755 and files 0644 from `dir` down, so only what a test closes on purpose is closed.
fn open_up(dir: &Path) {
    set_mode(dir, 0o755);
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            open_up(&path);
        } else {
            set_mode(&path, 0o644);
        }
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test]
async fn an_unreadable_photos_database_names_full_disk_access_and_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("Photos Library.photoslibrary");
    let database_dir = bundle.join("database");
    std::fs::create_dir_all(&database_dir).unwrap();
    let database = database_dir.join("Photos.sqlite");
    std::fs::copy(common::fixture("Test-26.1"), &database).unwrap();
    open_up(dir.path());

    let scan =
        |library: &Path| agent_unprivileged(&["scan".as_ref(), "--library".as_ref(), library.as_os_str()]);
    // Readable: the scan works, so what follows is about permissions only.
    let readable = scan(&bundle);
    assert!(readable.status.success(), "{}", text(&readable.stderr));

    // The database file refused (what macOS privacy protection does to an app without Full Disk Access).
    set_mode(&database, 0o000);
    for library in [&bundle, &database] {
        let refused = scan(library);
        let stderr = text(&refused.stderr);
        assert_eq!(refused.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains(&database.display().to_string()), "{stderr}");
        assert!(
            stderr.contains("Full Disk Access in System Settings › Privacy & Security › Full Disk Access"),
            "{stderr}"
        );
        assert!(stderr.contains("Permission denied (os error 13)"), "{stderr}");
    }

    // Inside the bundle even a `stat` refused: still the library, still Full Disk Access, not "not found".
    set_mode(&database, 0o644);
    set_mode(&database_dir, 0o700);
    let refused = scan(&bundle);
    let stderr = text(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("Full Disk Access"), "{stderr}");
    assert!(stderr.contains(&database.display().to_string()), "{stderr}");
    assert!(!stderr.contains("not found"), "{stderr}");
}

#[tokio::test]
async fn an_unreadable_original_is_recorded_listed_and_fails_a_single_pass() {
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::start(data.path()).await;
    let library = Library::new(40 * 1024).await;
    let token = library.dir.path().join("client.token");
    std::fs::copy(data.path().join("client.token"), &token).unwrap();
    let state_dir = library.state_dir();
    std::fs::create_dir_all(&state_dir).unwrap();
    open_up(library.dir.path());
    if running_as_root() {
        std::os::unix::fs::chown(&state_dir, Some(NOBODY), Some(NOBODY)).unwrap();
    }
    let uuid = "A1B2C3D4-0001-4000-8000-000000000001";
    let original = library.resource_path(uuid, ResourceType::Original).await;
    set_mode(&original, 0o000);

    let url = server.url();
    let sync = || {
        agent_unprivileged(&[
            "sync".as_ref(),
            "--once".as_ref(),
            "--server".as_ref(),
            url.as_ref(),
            "--token-file".as_ref(),
            token.as_os_str(),
            "--library".as_ref(),
            library.bundle.as_os_str(),
            "--state-dir".as_ref(),
            state_dir.as_os_str(),
        ])
    };
    let failed = sync();
    let stderr = text(&failed.stderr);
    assert_eq!(failed.status.code(), Some(1), "{stderr}");
    let expected = format!(
        "unreadable: {uuid}/L0/001 original: {}: hashing failed: Permission denied (os error 13)",
        original.display()
    );
    assert!(stderr.contains(&expected), "{expected} in {stderr}");
    assert!(stderr.contains("sync: 1 items failed"), "{stderr}");

    let json = agent(&[
        "status".as_ref(),
        "--json".as_ref(),
        "--state-dir".as_ref(),
        state_dir.as_os_str(),
    ]);
    assert!(json.status.success(), "{}", text(&json.stderr));
    let status: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let failures = status["failures"].as_array().unwrap();
    assert_eq!(failures.len(), 1, "{status}");
    assert_eq!(failures[0]["status"], "unreadable");
    assert_eq!(failures[0]["localIdentifier"], format!("{uuid}/L0/001"));
    assert_eq!(failures[0]["resource"], "original");
    assert!(
        failures[0]["reason"].as_str().unwrap().ends_with(&format!(
            "{}: hashing failed: Permission denied (os error 13)",
            original.display()
        )),
        "{status}"
    );
    assert_eq!(status["lastPass"]["unreadable"], 1, "{status}");
    assert_eq!(status["lastPass"]["uploaded"], 6, "{status}");
    let uploaded_bytes = status["figures"]["bytesUploaded"].as_u64().unwrap();
    assert!(uploaded_bytes > 6 * 40 * 1024, "{status}");

    // The text form: the failure with its status, and sizes a person reads (indicatif's binary units).
    let shown = agent(&["status".as_ref(), "--state-dir".as_ref(), state_dir.as_os_str()]);
    let stdout = text(&shown.stdout);
    assert!(stdout.contains(&expected), "{expected} in {stdout}");
    assert!(stdout.contains("1 unreadable here"), "{stdout}");
    let human = indicatif::HumanBytes(uploaded_bytes).to_string();
    assert!(human.ends_with(" KiB"), "{human}");
    assert!(stdout.contains(&format!("bytes uploaded: {human}\n")), "{stdout}");
    assert!(stdout.contains("pending: 0 uploads, 0 B\n"), "{stdout}");
    assert!(
        !stdout.contains(&uploaded_bytes.to_string()),
        "raw byte count in {stdout}"
    );

    // Readable again: the next pass uploads it, exits 0, and the failure is gone.
    set_mode(&original, 0o644);
    let fixed = sync();
    assert!(fixed.status.success(), "{}", text(&fixed.stderr));
    let json = agent(&[
        "status".as_ref(),
        "--json".as_ref(),
        "--state-dir".as_ref(),
        state_dir.as_os_str(),
    ]);
    let status: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(status["failures"], serde_json::json!([]), "{status}");
    assert_eq!(status["lastPass"]["uploaded"], 1, "{status}");
    assert_eq!(server.stats().await.totals.pending, 0);
}
