//! The mount binary run as a process of its own, so a test can `kill -9` it and start it again over the same
//! cache directory.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use harness::S3Server;

/// Where a mount process finds its store.
pub enum StoreAt<'a> {
    /// SeaweedFS, under an S3 key prefix.
    S3 { server: &'a S3Server, prefix: &'a str },
    /// The local backend, rooted at a directory.
    Local { root: &'a Path },
}

/// A mount process that is stopped and unmounted however the test ends.
pub struct ProcessMount {
    pub child: std::process::Child,
    pub mountpoint: PathBuf,
}

impl ProcessMount {
    /// Starts `iphoto-mount mount` (video-projects profile, store prefix `videos`) at `mountpoint` over
    /// `cache`, its stderr to `log`, with `env` added; returns once the mount is up.
    pub fn start(
        store: &StoreAt<'_>,
        mountpoint: &Path,
        cache: &Path,
        log: &Path,
        env: &[(&str, &str)],
    ) -> ProcessMount {
        std::fs::create_dir_all(mountpoint).unwrap();
        let log = std::fs::File::create(log).unwrap();
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_iphoto-mount"));
        command
            .arg("mount")
            .arg(mountpoint)
            .args([
                "--prefix",
                "videos",
                "--profile",
                "video-projects",
                "--cache-max-size",
                "3GiB",
            ])
            .arg("--cache-dir")
            .arg(cache)
            .env_remove("PRESIGN_SECRET")
            .env_remove("IPHOTO_MOUNT_CACHE_DIR")
            .stderr(log);
        match store {
            StoreAt::S3 { server, prefix } => {
                command
                    .env("IPHOTO_STORAGE_BACKEND", "s3")
                    .env("IPHOTO_S3_ENDPOINT", &server.endpoint)
                    .env("IPHOTO_S3_REGION", &server.region)
                    .env("IPHOTO_S3_BUCKET", &server.bucket)
                    .env("IPHOTO_S3_ACCESS_KEY_ID", &server.access_key_id)
                    .env("IPHOTO_S3_SECRET_ACCESS_KEY", &server.secret_access_key)
                    .env("IPHOTO_S3_PREFIX", prefix)
                    .env("IPHOTO_S3_PATH_STYLE", "true")
                    .env_remove("IPHOTO_STORAGE_LOCAL_PATH");
            }
            StoreAt::Local { root } => {
                command
                    .env("IPHOTO_STORAGE_BACKEND", "local")
                    .arg("--storage-local-path")
                    .arg(root);
            }
        }
        for (k, v) in env {
            command.env(k, v);
        }
        let child = command.spawn().unwrap();
        let guard = ProcessMount {
            child,
            mountpoint: mountpoint.to_owned(),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .contains(&mountpoint.display().to_string())
        {
            assert!(Instant::now() < deadline, "the mount did not come up");
            std::thread::sleep(Duration::from_millis(50));
        }
        guard
    }

    /// `kill -9` of the mount process.
    pub fn kill_9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// `iphoto-mount flush` of the cache directory `cache`: every write is in the store.
    pub fn flush(cache: &Path) {
        let flushed = std::process::Command::new(env!("CARGO_BIN_EXE_iphoto-mount"))
            .args(["flush", "--timeout-secs", "120", "--cache-dir"])
            .arg(cache)
            .status()
            .unwrap();
        assert!(flushed.success());
    }
}

impl Drop for ProcessMount {
    fn drop(&mut self) {
        // SIGTERM first (a clean unmount), then make sure.
        let _ = harness::sigterm(&self.child);
        let _ = harness::wait_exit(&mut self.child, Duration::from_secs(10));
        let _ = self.child.kill();
        let _ = self.child.wait();
        super::force_unmount(&self.mountpoint);
    }
}
