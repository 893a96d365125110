//! The deploy scripts on a synthesized Photos library over a real SeaweedFS: seeding is resumable and keyed by
//! the bundle path; the install gate refuses to repoint `originals` when one original is missing or corrupt
//! in the bucket, repoints when all read back, is idempotent, and `--rollback` restores the local folder.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{MIB, bytes, get, keys, put, sha256};

/// The objects under the bundle that are not directory markers.
fn originals_in(store: &storage::Store) -> Vec<String> {
    keys(store, BUNDLE)
        .into_iter()
        .filter(|k| !k.ends_with("/.iphoto-dir"))
        .collect()
}

const BUNDLE: &str = "Test Library.photoslibrary";

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy").join(name)
}

struct Setup {
    root: tempfile::TempDir,
    prefix: String,
    mountpoint: PathBuf,
}

impl Setup {
    fn library(&self) -> PathBuf {
        self.root.path().join(BUNDLE)
    }

    fn run(&self, name: &str, args: &[&str]) -> Output {
        let output = Command::new("bash")
            .arg(script(name))
            .args(args)
            .env("HOME", self.root.path())
            .env("IPHOTO_SPACES_ENV", self.root.path().join("spaces.env"))
            .env("IPHOTO_MOUNT_BIN", env!("CARGO_BIN_EXE_iphoto-mount"))
            .env("IPHOTO_MOUNTPOINT", &self.mountpoint)
            .env("IPHOTO_MOUNT_CACHE_DIR", self.root.path().join("cache"))
            .env("IPHOTO_MOUNT_CACHE_MAX_SIZE", "256MiB")
            .env("IPHOTO_MOUNT_METADATA_TTL_SECS", "1")
            .env("IPHOTO_SEED_FLUSH_TIMEOUT_SECS", "60")
            .output()
            .unwrap();
        eprintln!(
            "{name} {args:?} -> {}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        output
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        let pid_file = self.library().join(".iphoto-mount/mount.pid");
        if let Ok(pid) = std::fs::read_to_string(&pid_file) {
            let _ = Command::new("kill").arg(pid.trim()).status();
        }
        std::thread::sleep(std::time::Duration::from_millis(300));
        common::force_unmount(&self.mountpoint);
    }
}

#[test]
fn install_gate_repoints_only_when_every_original_reads_back_and_rollback_restores() {
    let server = harness::S3Server::shared();
    let root = tempfile::tempdir().unwrap();
    let prefix = harness::unique_name("deploy");
    let env_file = root.path().join("spaces.env");
    std::fs::write(
        &env_file,
        format!(
            "SPACES_ENDPOINT={}\nSPACES_REGION={}\nSPACES_BUCKET={}\nSPACES_ACCESS_KEY_ID={}\n\
             SPACES_SECRET_ACCESS_KEY={}\nSPACES_PREFIX={prefix}\nSPACES_PATH_STYLE=true\n",
            server.endpoint, server.region, server.bucket, server.access_key_id, server.secret_access_key
        ),
    )
    .unwrap();
    std::fs::set_permissions(&env_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let setup = Setup {
        mountpoint: root.path().join("mnt"),
        root,
        prefix,
    };
    let store = common::s3_store_at(server, &setup.prefix);

    // A library with originals in sub-folders, one larger than a cache block.
    let originals = setup.library().join("originals");
    let files = [
        ("0/IMG_0001.heic", 300_000),
        ("0/IMG_0002.jpg", 1),
        ("A/clip.mov", 5 * MIB),
        ("B/C/raw.dng", 77_777),
    ];
    for (i, (path, size)) in files.iter().enumerate() {
        let full = originals.join(path);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(full, bytes(*size, i as u64 + 10)).unwrap();
    }
    let key = |path: &str| format!("{BUNDLE}/originals/{path}");

    // Seed: every original under its bundle path; a rerun copies nothing.
    assert!(
        setup
            .run(
                "seed-originals-to-spaces.sh",
                &[setup.library().to_str().unwrap()]
            )
            .status
            .success()
    );
    let mut expected: Vec<String> = files.iter().map(|(p, _)| key(p)).collect();
    expected.sort();
    assert_eq!(originals_in(&store), expected);
    // The seed makes its directories through a read-write mount, and a directory made there is kept by a
    // zero-byte marker (mount/SEMANTICS.md): one per directory on the way to an original, nothing else.
    let mut dirs: Vec<String> = files
        .iter()
        .flat_map(|(p, _)| {
            let parts: Vec<&str> = p.split('/').collect();
            (1..parts.len()).map(move |n| key(&format!("{}/.iphoto-dir", parts[..n].join("/"))))
        })
        .collect();
    dirs.sort();
    dirs.dedup();
    let markers: Vec<String> = keys(&store, BUNDLE)
        .into_iter()
        .filter(|k| k.ends_with("/.iphoto-dir"))
        .collect();
    assert!(
        markers.iter().all(|m| dirs.contains(m)),
        "{markers:?} not all in {dirs:?}"
    );
    let rerun = setup.run(
        "seed-originals-to-spaces.sh",
        &[setup.library().to_str().unwrap()],
    );
    assert!(rerun.status.success());
    assert!(String::from_utf8_lossy(&rerun.stdout).contains("0 copied, 4 already there"));

    let library = setup.library();
    let library_arg = library.to_str().unwrap();
    let untouched = |what: &str| {
        let meta = std::fs::symlink_metadata(&originals).unwrap();
        assert!(
            meta.is_dir() && !meta.file_type().is_symlink(),
            "{what}: originals was repointed"
        );
        assert!(!library.join("originals.local-backup").exists(), "{what}");
    };

    // One original corrupt in the bucket (same size): the gate refuses.
    let corrupt = key("0/IMG_0001.heic");
    put(&store, &corrupt, &bytes(300_000, 999));
    let refused = setup.run("install-photos-mount.sh", &[library_arg]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("content differs: 0/IMG_0001.heic"));
    untouched("corrupt original");

    // One original missing: refused too.
    assert!(
        setup
            .run("seed-originals-to-spaces.sh", &[library_arg])
            .status
            .success()
    );
    common::block_on(store.delete(&storage::StorageKey::parse(key("B/C/raw.dng")).unwrap())).unwrap();
    let refused = setup.run("install-photos-mount.sh", &[library_arg]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("missing through the mount: B/C/raw.dng"));
    untouched("missing original");

    // Seeded again: the gate passes and originals now reads through the mount.
    assert!(
        setup
            .run("seed-originals-to-spaces.sh", &[library_arg])
            .status
            .success()
    );
    assert_eq!(
        get(&store, &corrupt).map(|b| sha256(&b)),
        Some(sha256(&bytes(300_000, 10)))
    );
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert!(
        setup
            .run("install-photos-mount.sh", &[library_arg])
            .status
            .success()
    );
    assert!(
        std::fs::symlink_metadata(&originals)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(std::fs::read_link(&originals).unwrap(), setup.mountpoint);
    for (i, (path, size)) in files.iter().enumerate() {
        assert_eq!(
            sha256(&std::fs::read(originals.join(path)).unwrap()),
            sha256(&bytes(*size, i as u64 + 10)),
            "{path}"
        );
    }
    // Idempotent.
    assert!(
        setup
            .run("install-photos-mount.sh", &[library_arg])
            .status
            .success()
    );
    assert!(
        std::fs::symlink_metadata(&originals)
            .unwrap()
            .file_type()
            .is_symlink()
    );

    // Rollback: the local folder is back, with its files, and the mount is gone; a second rollback is a no-op.
    assert!(
        setup
            .run("install-photos-mount.sh", &[library_arg, "--rollback"])
            .status
            .success()
    );
    untouched("after rollback");
    assert_eq!(
        std::fs::read(originals.join("A/clip.mov")).unwrap(),
        bytes(5 * MIB, 12)
    );
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(&setup.mountpoint.display().to_string()),
        "still mounted after rollback"
    );
    assert!(
        setup
            .run("install-photos-mount.sh", &[library_arg, "--rollback"])
            .status
            .success()
    );
    untouched("second rollback");
}
