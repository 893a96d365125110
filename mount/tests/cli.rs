//! The `iphoto-mount` binary as a newcomer runs it: a local-backend mount with no presign secret, `flush`
//! given the mountpoint, an external `umount` ending the process with 0, and mountpoints it must refuse.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_iphoto-mount");

/// `iphoto-mount` with none of the storage settings of the environment the tests run in.
pub fn command() -> Command {
    let mut command = Command::new(BIN);
    for variable in [
        "IPHOTO_PRESIGN_SECRET",
        "IPHOTO_PRESIGN_SECRET_FILE",
        "IPHOTO_STORAGE_BACKEND",
        "IPHOTO_STORAGE_LOCAL_PATH",
        "IPHOTO_S3_ENDPOINT",
        "IPHOTO_S3_BUCKET",
        "IPHOTO_S3_ACCESS_KEY_ID",
        "IPHOTO_S3_SECRET_ACCESS_KEY",
        "IPHOTO_S3_PREFIX",
        // Read when the new names are unset (DESIGN.md's names).
        "STORAGE_BACKEND",
        "STORAGE_LOCAL_PATH",
        "S3_ENDPOINT",
        "S3_BUCKET",
        "S3_ACCESS_KEY_ID",
        "S3_SECRET_ACCESS_KEY",
        "S3_PREFIX",
        "IPHOTO_MOUNT_CACHE_DIR",
    ] {
        command.env_remove(variable);
    }
    command
}

/// Whether `path` is a mount point (its device differs from its parent's).
fn is_mounted(path: &Path) -> bool {
    match (std::fs::metadata(path), std::fs::metadata(path.parent().unwrap())) {
        (Ok(a), Ok(b)) => a.dev() != b.dev(),
        _ => false,
    }
}

struct Running {
    child: Child,
    mountpoint: PathBuf,
}

impl Running {
    /// Starts a read-write local-backend mount of `store_root`/projects at `mountpoint`.
    fn start(store_root: &Path, mountpoint: &Path, cache_dir: &Path, extra: &[(&str, &str)]) -> Running {
        let mut command = command();
        command
            .arg("mount")
            .arg(mountpoint)
            .args([
                "--prefix",
                "projects",
                "--profile",
                "video-projects",
                "--cache-dir",
            ])
            .arg(cache_dir)
            .arg("--storage-local-path")
            .arg(store_root)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in extra {
            command.env(k, v);
        }
        let child = command.spawn().unwrap();
        let mut running = Running {
            child,
            mountpoint: mountpoint.to_owned(),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !is_mounted(mountpoint) {
            if let Some(status) = running.child.try_wait().unwrap() {
                let mut stderr = String::new();
                std::io::Read::read_to_string(running.child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
                panic!("the mount exited with {status}: {stderr}");
            }
            assert!(Instant::now() < deadline, "the mount did not come up");
            std::thread::sleep(Duration::from_millis(50));
        }
        running
    }

    /// Waits for the process to end (at most 20 s); its exit status and stderr.
    fn wait(mut self) -> (std::process::ExitStatus, String) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let mut stderr = String::new();
                std::io::Read::read_to_string(self.child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
                return (status, stderr);
            }
            assert!(Instant::now() < deadline, "the mount did not exit");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        common::force_unmount(&self.mountpoint);
    }
}

fn run(command: &mut Command) -> Output {
    let output = command.output().unwrap();
    eprintln!(
        "{:?} -> {}\n{}{}",
        command,
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

#[test]
fn a_local_mount_needs_no_secret_flushes_by_mountpoint_and_ends_with_0_on_umount() {
    let root = tempfile::tempdir().unwrap();
    let (store_root, mountpoint, cache_dir) = (
        root.path().join("store"),
        root.path().join("mnt"),
        root.path().join("cache"),
    );
    std::fs::create_dir_all(&mountpoint).unwrap();
    // The upload waits 1.5 s, so `flush` finds it pending and says so.
    let mount = Running::start(
        &store_root,
        &mountpoint,
        &cache_dir,
        &[("IPHOTO_MOUNT_UPLOAD_DELAY_MS", "1500")],
    );
    std::fs::write(mountpoint.join("cut.txt"), b"first cut").unwrap();

    let flushed = run(command().arg("flush").arg(&mountpoint));
    assert!(flushed.status.success());
    let said = String::from_utf8(flushed.stdout).unwrap();
    assert!(
        said.contains(&format!("the mount at {}", mountpoint.display())),
        "{said}"
    );
    assert!(said.contains(&cache_dir.display().to_string()), "{said}");
    assert!(said.contains("1 file(s), 9 bytes uploaded"), "{said}");
    assert_eq!(
        std::fs::read(store_root.join("projects/cut.txt")).unwrap(),
        b"first cut"
    );

    // A path inside the mount names it too; the cache directory still works; anything else is refused.
    let again = run(command().arg("flush").arg(mountpoint.join("cut.txt")));
    assert!(
        String::from_utf8(again.stdout)
            .unwrap()
            .contains("nothing was waiting")
    );
    assert!(run(command().arg("flush").arg(&cache_dir)).status.success());
    let stranger = run(command().arg("flush").arg(root.path()));
    assert!(!stranger.status.success());
    assert!(String::from_utf8_lossy(&stranger.stderr).contains("is neither in an iphoto-mount mount"));

    // `umount` from outside (what Finder, systemd or a user does) ends the process cleanly.
    assert!(run(Command::new("umount").arg(&mountpoint)).status.success());
    let (status, stderr) = mount.wait();
    assert_eq!(status.code(), Some(0), "{stderr}");
}

#[test]
fn a_mountpoint_already_mounted_or_not_empty_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let store_root = root.path().join("store");
    let full = root.path().join("full");
    std::fs::create_dir_all(&full).unwrap();
    std::fs::write(full.join("keep.txt"), b"mine").unwrap();
    let refused = run(command()
        .arg("mount")
        .arg(&full)
        .args(["--profile", "video-projects", "--cache-dir"])
        .arg(root.path().join("cache-full"))
        .arg("--storage-local-path")
        .arg(&store_root));
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("is not empty"), "{stderr}");
    assert!(stderr.contains(&full.display().to_string()), "{stderr}");
    assert_eq!(std::fs::read(full.join("keep.txt")).unwrap(), b"mine");

    let mountpoint = root.path().join("mnt");
    std::fs::create_dir_all(&mountpoint).unwrap();
    let _first = Running::start(&store_root, &mountpoint, &root.path().join("cache-1"), &[]);
    let second = run(command()
        .arg("mount")
        .arg(&mountpoint)
        .args(["--profile", "video-projects", "--cache-dir"])
        .arg(root.path().join("cache-2"))
        .arg("--storage-local-path")
        .arg(&store_root));
    assert!(!second.status.success());
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(stderr.contains("is already a mount point"), "{stderr}");
    // The first mount goes on serving.
    std::fs::write(mountpoint.join("still.txt"), b"here").unwrap();
    assert_eq!(std::fs::read(mountpoint.join("still.txt")).unwrap(), b"here");
}
