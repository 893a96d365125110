//! Video-projects benchmark: scrubbing a long-GOP clip and landing a render, through the real `iphoto-mount`
//! (profile `video-projects`) and through `rclone mount --vfs-cache-mode full`, both over one SeaweedFS bucket
//! behind the same emulated link (10 ms each way, 200 Mbit/s: `tc netem` in a network namespace where the
//! kernel has it, else a userspace pacing proxy; the run prints which).
//!
//! - **Scrub**: `ffmpeg -ss T -i CLIP -frames:v 1 -f null -` at 50 points T drawn with a fixed seed, each a
//!   process of its own timed from outside; per run and side on a fresh cache: ours cold, ours pinned
//!   (`iphoto-mount pin`, waited for until `status` says `pinned`), rclone cold, and the local file. The
//!   clip is made here with ffmpeg: H.264, 2 s GOP, 40 Mbit/s, 1080p, 60 s (`--small`: 320×180, 6 s).
//! - **Render**: one file written sequentially through the mount (4 GiB; `--small` 64 MiB), timed from
//!   `close` until a HEAD of the object shows its full size; ours against rclone with `--vfs-write-back 0s`.
//!
//! Goals (issue 15): cold p50 ≤ 2× local and ≤ 0.5× rclone's; pinned = local within noise (taken as ≤ 1.15×);
//! render close-to-store ≤ 0.2× rclone's.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use bench::link::Link;
use bench::mounts::{Side, Target, stop, timed};
use bench::{Row, Sample, report, time_command};
use clap::Parser;
use object_store::ObjectStoreExt as _;

#[derive(Parser)]
struct Cli {
    /// CI mode: a tiny clip, a 64 MiB render, one run, the proxy link (no netem needed).
    #[arg(long)]
    small: bool,
    /// Runs of each side.
    #[arg(long)]
    runs: Option<usize>,
    /// Seek points per side and run.
    #[arg(long, default_value_t = 50)]
    seeks: usize,
    /// Size of the render (e.g. 4GiB).
    #[arg(long)]
    render_size: Option<String>,
    /// Use the userspace proxy even where netem is available.
    #[arg(long)]
    proxy: bool,
    /// The `iphoto-mount` binary (default: next to this one).
    #[arg(long)]
    mount_bin: Option<PathBuf>,
}

const ONE_WAY: Duration = Duration::from_millis(10);
const RATE_BITS: u64 = 200_000_000;
const CLIP: &str = "clip.mp4";

struct Bench {
    server: harness::S3Server,
    raw: object_store::aws::AmazonS3,
    runtime: tokio::runtime::Runtime,
    link: Link,
    work: tempfile::TempDir,
    mount_bin: PathBuf,
    clip: PathBuf,
    points: Vec<f64>,
    render_size: u64,
}

#[derive(Default)]
struct Seeks {
    local: Vec<Sample>,
    cold: Vec<Sample>,
    pinned: Vec<Sample>,
    rclone: Vec<Sample>,
    /// Per run, the p50 of each side, in the order above (a pooled median hides a bimodal machine).
    per_run_p50: Vec<[f64; 4]>,
    pin_wait: Vec<Duration>,
    render_ours: Vec<Sample>,
    render_rclone: Vec<Sample>,
    render_write_ours: Vec<Duration>,
    render_write_rclone: Vec<Duration>,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let runs = cli.runs.unwrap_or(if cli.small { 1 } else { 3 });
    let render_size =
        bench::parse_size(
            cli.render_size
                .as_deref()
                .unwrap_or(if cli.small { "64MiB" } else { "4GiB" }),
        )?;
    let mount_bin = bench::mounts::mount_bin(cli.mount_bin)?;
    let work = tempfile::Builder::new().prefix("iphoto-bench-video-").tempdir()?;
    let clip = work.path().join(CLIP);
    let duration = make_clip(&clip, cli.small)?;
    let server = harness::S3Server::start()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let link = Link::start(
        &runtime,
        &server.endpoint,
        ONE_WAY,
        RATE_BITS,
        cli.small || cli.proxy,
    )?;
    println!("{}", link.describe(ONE_WAY, RATE_BITS));
    let bench = Bench {
        raw: server.object_store(),
        server,
        runtime,
        link,
        work,
        mount_bin,
        clip,
        points: seek_points(cli.seeks, duration),
        render_size,
    };
    bench
        .runtime
        .block_on(bench.raw.put(&key(CLIP), std::fs::read(&bench.clip)?.into()))?;

    let mut s = Seeks::default();
    for run in 0..runs {
        let local = bench.scrub_local()?;
        let cold = bench.scrub_mount(Side::Ours, run, false, &mut s)?;
        let pinned = bench.scrub_mount(Side::Ours, run, true, &mut s)?;
        let rclone = bench.scrub_mount(Side::Rclone, run, false, &mut s)?;
        s.per_run_p50
            .push([&local, &cold, &pinned, &rclone].map(|v| percentile(v, 0.5).as_secs_f64()));
        s.local.extend(local);
        s.cold.extend(cold);
        s.pinned.extend(pinned);
        s.rclone.extend(rclone);
        let (close_to_store, write) = bench.render(Side::Ours, run)?;
        s.render_ours.push(close_to_store);
        s.render_write_ours.push(write);
        let (close_to_store, write) = bench.render(Side::Rclone, run)?;
        s.render_rclone.push(close_to_store);
        s.render_write_rclone.push(write);
    }
    bench.print(&s);
    Ok(())
}

/// Makes the clip with ffmpeg and returns its duration in seconds.
fn make_clip(path: &Path, small: bool) -> Result<f64> {
    let (size, seconds, rate) = if small {
        ("320x180", 6, "2M")
    } else {
        ("1920x1080", 60, "40M")
    };
    let started = Instant::now();
    // Noise keeps the encoder at its bitrate, as a camera's footage would; a 2 s GOP (60 frames at 30 fps)
    // is long-GOP: a seek decodes from the keyframe before T.
    time_command(
        Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i"])
            .arg(format!("testsrc2=size={size}:rate=30"))
            .args(["-t", &seconds.to_string(), "-vf", "noise=alls=12:allf=t"])
            .args([
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-g",
                "60",
                "-pix_fmt",
                "yuv420p",
            ])
            .args(["-b:v", rate, "-maxrate", rate, "-bufsize", rate])
            .arg(path),
    )?;
    eprintln!(
        "made a {seconds} s {size} clip of {:.1} MiB in {:.1} s",
        std::fs::metadata(path)?.len() as f64 / (1024.0 * 1024.0),
        started.elapsed().as_secs_f64()
    );
    Ok(f64::from(seconds))
}

/// `n` seek points in [0, duration − 0.5 s), the same every run (xorshift, fixed seed).
fn seek_points(n: usize, duration: f64) -> Vec<f64> {
    let mut x: u64 = 0x15_15_15_15_15_15_15_15;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 11) as f64 / (1u64 << 53) as f64 * (duration - 0.5)
        })
        .collect()
}

fn key(name: &str) -> object_store::path::Path {
    object_store::path::Path::from(format!("video/{name}"))
}

/// The value at quantile `q` (nearest rank) of the samples' times.
fn percentile(samples: &[Sample], q: f64) -> Duration {
    let mut sorted: Vec<Duration> = samples.iter().map(|s| s.elapsed).collect();
    sorted.sort();
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

impl Bench {
    fn target(&self) -> Target<'_> {
        Target {
            server: &self.server,
            endpoint: &self.link.endpoint,
            prefix: "video",
            mount_bin: &self.mount_bin,
            link: Some(&self.link),
            // The render (4 GiB) stays whole in the budget until it is in the store.
            dirty_budget: "5GiB",
            cache_max_size: "12GiB",
        }
    }

    /// One fresh directory per side and run: the mountpoint and the cache.
    fn dirs(&self, name: &str) -> Result<(PathBuf, PathBuf, PathBuf)> {
        let base = self.work.path().join(name);
        let (mountpoint, cache) = (base.join("mnt"), base.join("cache"));
        std::fs::create_dir_all(&mountpoint)?;
        std::fs::create_dir_all(&cache)?;
        Ok((base, mountpoint, cache))
    }

    fn seeks(&self, clip: &Path) -> Result<Vec<Sample>> {
        self.points
            .iter()
            .map(|t| {
                time_command(
                    Command::new("ffmpeg")
                        .args([
                            "-hide_banner",
                            "-loglevel",
                            "error",
                            "-ss",
                            &format!("{t:.3}"),
                            "-i",
                        ])
                        .arg(clip)
                        .args(["-frames:v", "1", "-f", "null", "-"]),
                )
            })
            .collect()
    }

    fn scrub_local(&self) -> Result<Vec<Sample>> {
        self.seeks(&self.clip)
    }

    /// The seeks through a mount on a fresh cache; `pin`: pinned and fully fetched first.
    fn scrub_mount(&self, side: Side, run: usize, pin: bool, s: &mut Seeks) -> Result<Vec<Sample>> {
        let (base, mountpoint, cache) = self.dirs(&format!("scrub-{side:?}-{pin}-{run}"))?;
        let mut child = self.target().start(side, &mountpoint, &cache, CLIP)?;
        let clip = mountpoint.join(CLIP);
        let result = (|| {
            if pin {
                s.pin_wait.push(timed(|| self.pin_and_wait(&clip))?.elapsed);
            }
            self.seeks(&clip)
        })();
        stop(&mut child, &mountpoint)?;
        std::fs::remove_dir_all(&base)?;
        result
    }

    /// `iphoto-mount pin CLIP`, then polls `iphoto-mount status CLIP` until it says `pinned`.
    fn pin_and_wait(&self, clip: &Path) -> Result<()> {
        let pin = Command::new(&self.mount_bin).arg("pin").arg(clip).output()?;
        if !pin.status.success() {
            bail!(
                "iphoto-mount pin failed: {}",
                String::from_utf8_lossy(&pin.stderr)
            );
        }
        let deadline = Instant::now() + Duration::from_secs(600);
        loop {
            let status = Command::new(&self.mount_bin).arg("status").arg(clip).output()?;
            let text = String::from_utf8_lossy(&status.stdout);
            if text.trim_end().ends_with(": pinned") {
                return Ok(());
            }
            if text.contains("cannot finish") || Instant::now() > deadline {
                bail!("the clip did not get pinned: {text}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Writes the render sequentially through a mount; returns (close → in the store, open → close).
    fn render(&self, side: Side, run: usize) -> Result<(Sample, Duration)> {
        let (base, mountpoint, cache) = self.dirs(&format!("render-{side:?}-{run}"))?;
        let mut child = self.target().start(side, &mountpoint, &cache, CLIP)?;
        let name = format!("render-{side:?}-{run}.bin");
        let result = (|| {
            let started = Instant::now();
            let mut file = std::fs::File::create(mountpoint.join(&name)).context("creating the render")?;
            let mut block = vec![0u8; 8 << 20];
            bench::fill_pseudo_random(&mut block, &mut bench::xorshift_seed(run as u64));
            let mut written = 0u64;
            while written < self.render_size {
                // Each block distinct, so no store or cache can deduplicate the render.
                block[..8].copy_from_slice(&written.to_le_bytes());
                let n = usize::try_from((self.render_size - written).min(block.len() as u64))?;
                file.write_all(&block[..n])?;
                written += n as u64;
            }
            let write = started.elapsed();
            let closing = Instant::now();
            drop(file);
            self.wait_in_store(&name)?;
            anyhow::Ok((
                Sample {
                    elapsed: closing.elapsed(),
                    peak_rss_kib: 0,
                },
                write,
            ))
        })();
        stop(&mut child, &mountpoint)?;
        std::fs::remove_dir_all(&base)?;
        self.runtime.block_on(self.raw.delete(&key(&name)))?;
        self.vacuum();
        result
    }

    /// Polls HEAD (directly, not through the link: it only observes) until the render has its full size.
    fn wait_in_store(&self, name: &str) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(1800);
        loop {
            if let Ok(meta) = self.runtime.block_on(self.raw.head(&key(name)))
                && meta.size == self.render_size
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("{name} did not reach the store");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Gives SeaweedFS the space of deleted renders back (it keeps it until a vacuum).
    fn vacuum(&self) {
        let url = format!("{}/vol/vacuum?garbageThreshold=0.0001", self.server.master_url);
        let _ = self.runtime.block_on(async {
            reqwest::Client::new()
                .get(url)
                .timeout(Duration::from_secs(120))
                .send()
                .await
        });
    }

    fn print(&self, s: &Seeks) {
        let ours = "iphoto-mount";
        let rows = vec![
            Row::new("scrub p50, cold", ours, "local file", 0, &s.cold, &s.local, 0.5),
            Row::new(
                "scrub p50, cold",
                ours,
                "rclone mount (vfs full), cold",
                0,
                &s.cold,
                &s.rclone,
                2.0,
            ),
            Row::new(
                "scrub p50, pinned",
                ours,
                "local file",
                0,
                &s.pinned,
                &s.local,
                1.0 / 1.15,
            ),
            Row::new(
                &format!("render {} MiB, close → in the store", self.render_size >> 20),
                ours,
                "rclone mount (vfs full, write-back 0s)",
                self.render_size,
                &s.render_ours,
                &s.render_rclone,
                5.0,
            ),
        ];
        report(
            &format!(
                "video: scrub and render through the mounts, {} seeks a side and run",
                self.points.len()
            ),
            &rows,
        );
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!("\n| scrub side | seeks | p50 ms | p90 ms | p50 per run ms |");
        println!("|---|---|---|---|---|");
        for (i, (name, v)) in [
            ("local file", &s.local),
            ("iphoto-mount cold", &s.cold),
            ("iphoto-mount pinned", &s.pinned),
            ("rclone mount cold", &s.rclone),
        ]
        .into_iter()
        .enumerate()
        {
            let per_run: Vec<String> = s
                .per_run_p50
                .iter()
                .map(|r| format!("{:.0}", r[i] * 1000.0))
                .collect();
            println!(
                "| {name} | {} | {:.0} | {:.0} | {} |",
                v.len(),
                ms(percentile(v, 0.5)),
                ms(percentile(v, 0.9)),
                per_run.join(", ")
            );
        }
        let p50 = |v: &[Sample]| percentile(v, 0.5).as_secs_f64();
        println!(
            "scrub cold p50: {:.2}× local (goal ≤ 2), {:.2}× rclone (goal ≤ 0.5); pinned p50 {:.2}× local (goal: within noise, ≤ 1.15)",
            p50(&s.cold) / p50(&s.local),
            p50(&s.cold) / p50(&s.rclone),
            p50(&s.pinned) / p50(&s.local)
        );
        let secs = |v: &[Duration]| {
            v.iter()
                .map(|d| format!("{:.2}", d.as_secs_f64()))
                .collect::<Vec<_>>()
                .join(", ")
        };
        println!(
            "pin until pinned, s: {}; render open → close, s: ours {}, rclone {}",
            secs(&s.pin_wait),
            secs(&s.render_write_ours),
            secs(&s.render_write_rclone)
        );
        println!("{}", self.link.describe(ONE_WAY, RATE_BITS));
    }
}
