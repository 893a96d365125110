//! Mount benchmark: the real `iphoto-mount` binary next to `rclone mount --vfs-cache-mode full`, both over the
//! same SeaweedFS (started here by the harness), alternating, several runs, medians.
//!
//! Per run and side, on a fresh cache directory: a cold sequential read of one large object, a warm re-read, 4
//! parallel cold readers of 4 other objects, `ls -lR` of a tree of small objects in 100 directories, a
//! sequential write of a large file timed until it is in the store (`close` returned and a HEAD shows its full
//! size), then a restart over the full cache timed until the mount answers a `stat`. Limits measured in the same
//! run: a ranged GET of the whole large object (`storage::Store`, one stream, no cache) for the cold read, and a read of a
//! local file of the same size for the warm re-read. Peak RSS is the mount process's `VmHWM` (rclone's too).
//!
//! `mount` is the full run (1 GiB object, 4 × 256 MiB, 10,000 objects, 3 runs); `mount --small` the CI mode
//! (64 MiB, 4 × 16 MiB, 1,000 objects in 10 directories, 1 run). `iphoto-mount` is found next to this binary
//! (build both with the same profile) or given with `--mount-bin`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use bench::mounts::{Side, Target, read_all, stop, timed};
use bench::{Row, Sample, peak_rss_kib_of, report, time_command};
use clap::Parser;
use futures::StreamExt as _;
use object_store::{ObjectStoreExt as _, PutPayload};

#[derive(Parser)]
struct Cli {
    /// CI mode: small objects and one run, so the benchmark cannot rot.
    #[arg(long)]
    small: bool,
    /// Size of the large object (e.g. 1GiB).
    #[arg(long)]
    size: Option<String>,
    /// Runs of each side.
    #[arg(long)]
    runs: Option<usize>,
    /// The `iphoto-mount` binary (default: next to this one).
    #[arg(long)]
    mount_bin: Option<PathBuf>,
}

/// What one run of one side measured.
#[derive(Default)]
struct Run {
    cold: Vec<Sample>,
    warm: Vec<Sample>,
    parallel: Vec<Sample>,
    ls: Vec<Sample>,
    write: Vec<Sample>,
    restart: Vec<Sample>,
    peak_rss_kib: u64,
}

struct Bench {
    server: harness::S3Server,
    raw: object_store::aws::AmazonS3,
    /// The storage port over the same bucket (retries, a 120 s timeout): seeding and the raw GET.
    store: storage::Store,
    runtime: tokio::runtime::Runtime,
    work: tempfile::TempDir,
    src: PathBuf,
    size: u64,
    part: u64,
    dirs: usize,
    files_per_dir: usize,
    mount_bin: PathBuf,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let (work, src, size) = bench::source_file(
        "mount",
        Some(
            cli.size
                .as_deref()
                .unwrap_or(if cli.small { "64MiB" } else { "1GiB" }),
        ),
        cli.small,
    )?;
    let runs = cli.runs.unwrap_or(if cli.small { 1 } else { 3 });
    let mount_bin = bench::mounts::mount_bin(cli.mount_bin)?;
    let server = harness::S3Server::start()?;
    let raw = server.object_store();
    let store = storage::create_s3_store(
        &storage::S3Config {
            endpoint: Some(server.endpoint.parse()?),
            region: server.region.clone(),
            bucket: server.bucket.clone(),
            access_key_id: server.access_key_id.clone(),
            secret_access_key: storage::Secret::new(server.secret_access_key.clone()),
            prefix: Some(storage::StorageKey::parse("bench")?),
            path_style: true,
        },
        Default::default(),
    )?;
    let bench = Bench {
        raw,
        store,
        server,
        runtime: tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?,
        work,
        src,
        size,
        part: size / 4,
        dirs: if cli.small { 10 } else { 100 },
        files_per_dir: 100,
        mount_bin,
    };
    bench.seed()?;

    let (mut ours, mut peer) = (Run::default(), Run::default());
    let mut raw_get = Vec::new();
    let mut local_read = Vec::new();
    for run in 0..runs {
        bench.run_side(Side::Ours, run, &mut ours)?;
        bench.run_side(Side::Rclone, run, &mut peer)?;
        raw_get.push(bench.raw_get()?);
        local_read.push(bench.local_read()?);
    }
    let with_rss = |samples: &[Sample], rss: u64| -> Vec<Sample> {
        samples
            .iter()
            .map(|s| Sample {
                elapsed: s.elapsed,
                peak_rss_kib: rss,
            })
            .collect()
    };
    let o = |s: &[Sample]| with_rss(s, ours.peak_rss_kib);
    let objects = bench.dirs * bench.files_per_dir;
    let mib = |b: u64| b >> 20;
    let rows = vec![
        Row::new(
            &format!("cold sequential read, {} MiB", mib(size)),
            "iphoto-mount",
            "rclone mount (vfs full)",
            size,
            &o(&ours.cold),
            &peer.cold,
            1.5,
        ),
        Row::new(
            &format!("cold sequential read, {} MiB", mib(size)),
            "iphoto-mount",
            "ranged GET (storage::Store, 1 stream)",
            size,
            &o(&ours.cold),
            &raw_get,
            0.8,
        ),
        Row::new(
            &format!("warm re-read, {} MiB", mib(size)),
            "iphoto-mount",
            "local file read",
            size,
            &o(&ours.warm),
            &local_read,
            0.5,
        ),
        Row::new(
            &format!("warm re-read, {} MiB", mib(size)),
            "iphoto-mount",
            "rclone mount (vfs full)",
            size,
            &o(&ours.warm),
            &peer.warm,
            1.0,
        ),
        Row::new(
            &format!("4 parallel cold readers, 4 × {} MiB", mib(bench.part)),
            "iphoto-mount",
            "rclone mount (vfs full)",
            4 * bench.part,
            &o(&ours.parallel),
            &peer.parallel,
            1.0,
        ),
        Row::new(
            &format!("write {} MiB until in the store", mib(size)),
            "iphoto-mount",
            "rclone mount (vfs full, write-back 0s)",
            size,
            &o(&ours.write),
            &peer.write,
            1.0,
        ),
        Row::new(
            &format!("ls -lR, {objects} objects in {} dirs, cold", bench.dirs),
            "iphoto-mount",
            "rclone mount (vfs full)",
            0,
            &o(&ours.ls),
            &peer.ls,
            1.0,
        ),
        Row::new(
            "restart with a full cache until a stat answers",
            "iphoto-mount",
            "rclone mount (vfs full)",
            0,
            &o(&ours.restart),
            &peer.restart,
            0.0,
        ),
    ];
    report("mount: iphoto-mount vs rclone mount over SeaweedFS", &rows);
    println!(
        "peak RSS of the mount process over all scenarios: iphoto-mount {:.1} MiB, rclone mount {:.1} MiB",
        ours.peak_rss_kib as f64 / 1024.0,
        peer.peak_rss_kib as f64 / 1024.0
    );
    println!(
        "restart with a full cache: iphoto-mount median {:.3} s (goal < 2 s), rclone {:.3} s",
        bench::median(&ours.restart.iter().map(|s| s.elapsed).collect::<Vec<_>>()).as_secs_f64(),
        bench::median(&peer.restart.iter().map(|s| s.elapsed).collect::<Vec<_>>()).as_secs_f64()
    );
    Ok(())
}

impl Bench {
    fn path(key: &str) -> object_store::path::Path {
        object_store::path::Path::from(format!("bench/{key}"))
    }

    /// The large object, four parallel-read objects and the tree of small objects.
    fn seed(&self) -> Result<()> {
        let started = Instant::now();
        self.runtime.block_on(async {
            self.put_file(&self.src, "big.bin", self.size).await?;
            for i in 0..4 {
                self.put_file(&self.src, &format!("par/p{i}.bin"), self.part)
                    .await?;
            }
            let keys: Vec<String> = (0..self.dirs)
                .flat_map(|d| (0..self.files_per_dir).map(move |f| format!("tree/d{d:03}/f{f:03}.txt")))
                .collect();
            let results: Vec<object_store::Result<object_store::PutResult>> = futures::stream::iter(keys)
                .map(|k| {
                    let raw = self.raw.clone();
                    async move {
                        raw.put(&Self::path(&k), PutPayload::from(k.clone().into_bytes()))
                            .await
                    }
                })
                .buffer_unordered(64)
                .collect()
                .await;
            for r in results {
                r?;
            }
            anyhow::Ok(())
        })?;
        eprintln!("seeded SeaweedFS in {:.1} s", started.elapsed().as_secs_f64());
        Ok(())
    }

    /// The first `len` bytes of `src` as one object, streamed through the storage port (multipart).
    async fn put_file(&self, src: &Path, key: &str, len: u64) -> Result<()> {
        use tokio::io::AsyncReadExt as _;
        let file = tokio::fs::File::open(src).await?.take(len);
        let body = tokio_util::io::ReaderStream::with_capacity(file, 1 << 20);
        let options = storage::PutOptions {
            size_hint: Some(len),
            ..Default::default()
        };
        let receipt = self
            .store
            .put_stream(&storage::StorageKey::parse(key)?, body, &options)
            .await?;
        if receipt.size != len {
            bail!("seeded {} bytes of {len}", receipt.size);
        }
        Ok(())
    }

    fn run_side(&self, side: Side, run: usize, out: &mut Run) -> Result<()> {
        let base = self.work.path().join(format!("{side:?}-{run}"));
        let mountpoint = base.join("mnt");
        let cache = base.join("cache");
        std::fs::create_dir_all(&mountpoint)?;
        std::fs::create_dir_all(&cache)?;
        let mut child = self.start(side, &mountpoint, &cache)?;
        let result = (|| {
            let big = mountpoint.join("big.bin");
            out.cold.push(timed(|| read_all(&big, self.size))?);
            out.warm.push(timed(|| read_all(&big, self.size))?);
            out.parallel.push(timed(|| {
                std::thread::scope(|scope| {
                    let readers: Vec<_> = (0..4)
                        .map(|i| {
                            let path = mountpoint.join(format!("par/p{i}.bin"));
                            scope.spawn(move || read_all(&path, self.part))
                        })
                        .collect();
                    readers
                        .into_iter()
                        .try_for_each(|r| r.join().map_err(|_| anyhow::anyhow!("reader panicked"))?)
                })
            })?);
            out.ls.push(time_command(
                Command::new("sh")
                    .arg("-c")
                    .arg("ls -lR \"$0\" > /dev/null")
                    .arg(mountpoint.join("tree")),
            )?);
            let name = format!("written-{side:?}-{run}.bin");
            out.write.push(timed(|| {
                std::fs::copy(&self.src, mountpoint.join(&name))?;
                self.wait_in_store(&name, self.size)
            })?);
            out.peak_rss_kib = out.peak_rss_kib.max(peak_rss_kib_of(&child.id().to_string()));
            anyhow::Ok(())
        })();
        stop(&mut child, &mountpoint)?;
        result?;
        // Restart over the full cache: time until a stat through the mount answers.
        let started = Instant::now();
        let mut child = self.start(side, &mountpoint, &cache)?;
        out.restart.push(Sample {
            elapsed: started.elapsed(),
            peak_rss_kib: 0,
        });
        out.peak_rss_kib = out.peak_rss_kib.max(peak_rss_kib_of(&child.id().to_string()));
        stop(&mut child, &mountpoint)?;
        self.runtime.block_on(
            self.raw
                .delete(&Self::path(&format!("written-{side:?}-{run}.bin"))),
        )?;
        std::fs::remove_dir_all(&base)?;
        Ok(())
    }

    /// Starts a mount and waits until a `stat` of the large file through it answers.
    fn start(&self, side: Side, mountpoint: &Path, cache: &Path) -> Result<Child> {
        Target {
            server: &self.server,
            endpoint: &self.server.endpoint,
            prefix: "bench",
            mount_bin: &self.mount_bin,
            link: None,
            dirty_budget: "3GiB",
            cache_max_size: "8GiB",
        }
        .start(side, mountpoint, cache, "big.bin")
    }

    /// Polls HEAD until the object has `size` bytes.
    fn wait_in_store(&self, name: &str, size: u64) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(600);
        loop {
            if let Ok(meta) = self.runtime.block_on(self.raw.head(&Self::path(name)))
                && meta.size == size
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("{name} did not reach the store");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// One ranged GET of the whole large object (`Store::get`, one stream), streamed and dropped.
    fn raw_get(&self) -> Result<Sample> {
        timed(|| {
            self.runtime.block_on(async {
                let object = self
                    .store
                    .get(&storage::StorageKey::parse("big.bin")?, Some(0..self.size))
                    .await?;
                let mut body = object.body;
                let mut total = 0u64;
                while let Some(chunk) = body.next().await {
                    total += chunk?.len() as u64;
                }
                if total != self.size {
                    bail!("raw GET read {total} bytes of {}", self.size);
                }
                anyhow::Ok(())
            })
        })
    }

    /// A read of a local file with the large object's bytes (the disk the caches live on).
    fn local_read(&self) -> Result<Sample> {
        timed(|| read_all(&self.src, self.size))
    }
}
