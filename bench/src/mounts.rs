//! Starting and stopping the two mounts the mount benchmarks compare — the real `iphoto-mount` (profile
//! `video-projects`) and `rclone mount --vfs-cache-mode full` — over one S3 bucket, plus the small timing
//! helpers they share.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use crate::Sample;

/// Which mount.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Side {
    /// `iphoto-mount`, profile `video-projects`.
    Ours,
    /// `rclone mount --vfs-cache-mode full --vfs-write-back 0s`.
    Rclone,
}

/// The bucket both mounts serve, and how to reach it.
#[derive(Debug)]
pub struct Target<'a> {
    /// The harness's SeaweedFS (bucket, region, keys).
    pub server: &'a harness::S3Server,
    /// The endpoint the mounts use (the server's own, or an emulated link's).
    pub endpoint: &'a str,
    /// The key prefix shown as the mount's root.
    pub prefix: &'a str,
    /// The `iphoto-mount` binary.
    pub mount_bin: &'a Path,
    /// Runs a program behind the emulated link (`None`: directly).
    pub link: Option<&'a crate::link::Link>,
    /// Our mount's `--dirty-budget`: a file written in sequence keeps all its parts in it until the whole
    /// file is in the store, so it must exceed the largest file written.
    pub dirty_budget: &'a str,
    /// Our mount's `--cache-max-size` (it caps the dirty budget at half of it) and rclone's
    /// `--vfs-cache-max-size`.
    pub cache_max_size: &'a str,
}

/// `iphoto-mount` next to the running benchmark (build both with the same profile), or `given`.
pub fn mount_bin(given: Option<PathBuf>) -> Result<PathBuf> {
    let bin = match given {
        Some(bin) => bin,
        None => std::env::current_exe()?
            .parent()
            .context("the benchmark's directory")?
            .join("iphoto-mount"),
    };
    if !bin.exists() {
        bail!(
            "{} not found: build it with the benchmark's profile (cargo build -p iphoto-mount)",
            bin.display()
        );
    }
    Ok(bin)
}

impl Target<'_> {
    /// Starts a mount of `side` and waits until a `stat` of `probe` (a path under the mount) answers.
    pub fn start(&self, side: Side, mountpoint: &Path, cache: &Path, probe: &str) -> Result<Child> {
        let s = self.server;
        let program = match side {
            Side::Ours => self.mount_bin.to_path_buf(),
            Side::Rclone => PathBuf::from("rclone"),
        };
        let mut command = match self.link {
            Some(link) => link.command(&program),
            None => Command::new(&program),
        };
        match side {
            Side::Ours => {
                command
                    .arg("mount")
                    .arg(mountpoint)
                    .args([
                        "--prefix",
                        self.prefix,
                        "--profile",
                        "video-projects",
                        "--foreground",
                    ])
                    .arg("--cache-dir")
                    .arg(cache)
                    .args([
                        "--cache-max-size",
                        self.cache_max_size,
                        "--dirty-budget",
                        self.dirty_budget,
                    ])
                    .envs([
                        ("IPHOTO_STORAGE_BACKEND", "s3"),
                        ("IPHOTO_S3_ENDPOINT", self.endpoint),
                        ("IPHOTO_S3_BUCKET", s.bucket.as_str()),
                        ("IPHOTO_S3_REGION", s.region.as_str()),
                        ("IPHOTO_S3_ACCESS_KEY_ID", s.access_key_id.as_str()),
                        ("IPHOTO_S3_SECRET_ACCESS_KEY", s.secret_access_key.as_str()),
                        ("IPHOTO_S3_PATH_STYLE", "true"),
                        ("IPHOTO_LOG", "warn"),
                    ]);
            }
            Side::Rclone => {
                // The environment's AWS_CA_BUNDLE makes rclone's S3 backend fail (reference/real-parts.md).
                command
                    .env_remove("AWS_CA_BUNDLE")
                    .envs([
                        ("RCLONE_CONFIG_BENCH_TYPE", "s3"),
                        ("RCLONE_CONFIG_BENCH_PROVIDER", "SeaweedFS"),
                        ("RCLONE_CONFIG_BENCH_ENDPOINT", self.endpoint),
                        ("RCLONE_CONFIG_BENCH_REGION", s.region.as_str()),
                        ("RCLONE_CONFIG_BENCH_ACCESS_KEY_ID", s.access_key_id.as_str()),
                        (
                            "RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY",
                            s.secret_access_key.as_str(),
                        ),
                        ("RCLONE_CONFIG_BENCH_FORCE_PATH_STYLE", "true"),
                    ])
                    .arg("mount")
                    .arg(format!("bench:{}/{}", s.bucket, self.prefix))
                    .arg(mountpoint)
                    .args([
                        "--vfs-cache-mode",
                        "full",
                        "--vfs-cache-max-size",
                        self.cache_max_size.trim_end_matches("iB"),
                        "--vfs-write-back",
                        "0s",
                        "--s3-no-check-bucket",
                    ])
                    .arg("--cache-dir")
                    .arg(cache);
            }
        }
        let log = std::fs::File::create(cache.with_extension(format!("{side:?}.log")))?;
        let mut child = command
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {side:?}"))?;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if is_mounted(mountpoint) && std::fs::metadata(mountpoint.join(probe)).is_ok() {
                return Ok(child);
            }
            if let Some(status) = child.try_wait()? {
                bail!("{side:?} mount exited with {status} before it served");
            }
            if Instant::now() > deadline {
                let _ = stop(&mut child, mountpoint);
                bail!("{side:?} mount did not serve within 60 s");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// Times `f`.
pub fn timed(f: impl FnOnce() -> Result<()>) -> Result<Sample> {
    let started = Instant::now();
    f()?;
    Ok(Sample {
        elapsed: started.elapsed(),
        peak_rss_kib: 0,
    })
}

/// Reads a file to the end in 1 MiB reads, checking its length.
pub fn read_all(path: &Path, expected: u64) -> Result<()> {
    let mut file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut buffer = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        total += n as u64;
    }
    if total != expected {
        bail!("{} read {total} bytes, expected {expected}", path.display());
    }
    Ok(())
}

/// Whether `path` is a mountpoint now.
pub fn is_mounted(path: &Path) -> bool {
    std::fs::read_to_string("/proc/self/mountinfo")
        .is_ok_and(|m| m.contains(&format!(" {} ", path.display())))
}

/// SIGTERM, wait for the process to unmount and exit; a lazy unmount if it does not within a minute.
pub fn stop(child: &mut Child, mountpoint: &Path) -> Result<()> {
    // A process that already exited is not an error here: the unmount below still runs.
    let _ = harness::sigterm(child);
    if harness::wait_exit(child, Duration::from_secs(60)).is_err() {
        child.kill()?;
        child.wait()?;
    }
    if is_mounted(mountpoint) {
        Command::new("fusermount3")
            .arg("-u")
            .arg("-z")
            .arg(mountpoint)
            .status()?;
    }
    Ok(())
}
