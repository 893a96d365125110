//! Video-projects benchmark: scrubbing a long-GOP clip and landing a render, through the real `iphoto-mount`
//! (profile `video-projects`) and through `rclone mount --vfs-cache-mode full`, both over one SeaweedFS bucket
//! behind the same emulated link (10 ms each way, 200 Mbit/s: `tc netem` in a network namespace where the
//! kernel has it, else a userspace pacing proxy; the run prints which).
//!
//! - **Scrub**: `ffmpeg -ss T -i CLIP -frames:v 1 -f null -` at 50 points T drawn with a fixed seed, each a
//!   process of its own timed from outside; per run and side on a fresh cache: ours cold, ours pinned
//!   (`iphoto-mount pin`, waited for until `status` says `pinned`), rclone cold, and the local file. The
//!   clip is made here with ffmpeg: H.264, 2 s GOP, 40 Mbit/s, 1080p, 60 s (`--small`: 320×180, 6 s), or
//!   with `--codec prores` Apple ProRes 422 Proxy at 3840×2160, every frame a keyframe (an editor's proxy: a
//!   seek decodes one frame, so the link's share of it is larger).
//!   Every seek's traffic over the link is counted (GETs, bytes their ranges asked for, bytes down), so the
//!   report says what a seek cost each mount, beside its time; the first seek of each run (nothing cached at
//!   all) is reported on its own.
//! - **Render**: one file written sequentially through the mount (4 GiB; `--small` 64 MiB) at an encoder's
//!   pace (`--writer-rate`, 145 Mbit/s by default; 0: as fast as the mount takes it), timed from `close`
//!   until a HEAD of the object shows its full size; ours against rclone with `--vfs-write-back 0s`.
//!
//! Goals (issue 15): cold p50 ≤ 2× local and ≤ 0.5× rclone's; pinned = local within noise (taken as ≤ 1.15×);
//! render close-to-store ≤ 0.2× rclone's.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use bench::link::{Link, TrafficCount};
use bench::mounts::{Side, Target, stop, timed};
use bench::{Sample, time_command};
use clap::Parser;
use object_store::ObjectStoreExt as _;

mod report;

use report::percentile;

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
    /// The render's writer pace, bits/s, the same on both sides: a render is written at its encoder's pace.
    /// The default, 145 Mbit/s, is Apple ProRes 422 Proxy at 3840×2160 and 29.97 fps (Apple's ProRes white
    /// paper), below the link's 200 Mbit/s; 0 writes as fast as the mount takes it.
    #[arg(long, default_value_t = 145_000_000)]
    writer_rate: u64,
    /// Run only this part (both by default).
    #[arg(long, value_enum)]
    only: Option<Part>,
    /// The scrubbed clip's codec.
    #[arg(long, value_enum, default_value_t = Codec::H264)]
    codec: Codec,
}

/// The scrubbed clip's codec.
#[derive(Clone, Copy, PartialEq, Eq, Debug, clap::ValueEnum)]
enum Codec {
    /// H.264, a 2 s GOP: a seek decodes from the keyframe before T (camera footage).
    H264,
    /// Apple ProRes 422 Proxy, intra-only: a seek decodes the one frame at T (an editor's proxy).
    Prores,
}

impl Codec {
    /// The clip's name in the mount and the store.
    fn clip_name(self) -> &'static str {
        match self {
            Self::H264 => "clip.mp4",
            Self::Prores => "clip.mov",
        }
    }
}

/// The two parts of the benchmark.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Part {
    Scrub,
    Render,
}

const ONE_WAY: Duration = Duration::from_millis(10);
const RATE_BITS: u64 = 200_000_000;

pub(crate) struct Bench {
    server: harness::S3Server,
    raw: object_store::aws::AmazonS3,
    runtime: tokio::runtime::Runtime,
    link: Link,
    work: tempfile::TempDir,
    mount_bin: PathBuf,
    clip: PathBuf,
    clip_name: &'static str,
    points: Vec<f64>,
    render_size: u64,
    writer_rate: u64,
}

#[derive(Default)]
pub(crate) struct Seeks {
    local: Vec<Sample>,
    cold: Vec<Sample>,
    pinned: Vec<Sample>,
    rclone: Vec<Sample>,
    /// Per run, the p50 of each side, in the order above (a pooled median hides a bimodal machine).
    per_run_p50: Vec<[f64; 4]>,
    /// Per run, the first seek of each side (nothing cached yet), in the order above.
    first_seek: Vec<[Duration; 4]>,
    /// What each seek moved over the link: ours cold, ours pinned, rclone.
    traffic_cold: Vec<TrafficCount>,
    traffic_pinned: Vec<TrafficCount>,
    traffic_rclone: Vec<TrafficCount>,
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
    let clip_name = cli.codec.clip_name();
    let clip = work.path().join(clip_name);
    let duration = make_clip(&clip, cli.codec, cli.small)?;
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
        clip_name,
        points: seek_points(cli.seeks, duration),
        render_size,
        writer_rate: cli.writer_rate,
    };
    bench
        .runtime
        .block_on(bench.raw.put(&key(clip_name), std::fs::read(&bench.clip)?.into()))?;

    let mut s = Seeks::default();
    for run in 0..runs {
        if cli.only != Some(Part::Render) {
            bench.scrub(run, &mut s)?;
        }
        if cli.only == Some(Part::Scrub) {
            continue;
        }
        let (close_to_store, write) = bench.render(Side::Ours, run)?;
        s.render_ours.push(close_to_store);
        s.render_write_ours.push(write);
        let (close_to_store, write) = bench.render(Side::Rclone, run)?;
        s.render_rclone.push(close_to_store);
        s.render_write_rclone.push(write);
    }
    bench.print(&s, cli.only);
    Ok(())
}

/// Makes the clip with ffmpeg and returns its duration in seconds.
fn make_clip(path: &Path, codec: Codec, small: bool) -> Result<f64> {
    let seconds: u32 = if small { 6 } else { 60 };
    let started = Instant::now();
    let source = |size: &str| {
        // Noise keeps the encoder at its bitrate, as a camera's footage would.
        let mut command = Command::new("ffmpeg");
        command
            .args(["-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i"])
            .arg(format!("testsrc2=size={size}:rate=30"))
            .args(["-vf", "noise=alls=12:allf=t"]);
        command
    };
    let size = match codec {
        Codec::H264 => {
            let (size, rate) = if small {
                ("320x180", "2M")
            } else {
                ("1920x1080", "40M")
            };
            // A 2 s GOP (60 frames at 30 fps) is long-GOP: a seek decodes from the keyframe before T.
            time_command(
                source(size)
                    .args(["-t", &seconds.to_string()])
                    .args(["-c:v", "libx264", "-preset", "ultrafast", "-g", "60"])
                    .args([
                        "-pix_fmt", "yuv420p", "-b:v", rate, "-maxrate", rate, "-bufsize", rate,
                    ])
                    .arg(path),
            )?;
            size
        }
        Codec::Prores => {
            let size = if small { "320x180" } else { "3840x2160" };
            // prores_ks needs about a second a 4K frame here: one second is encoded and, every frame being a
            // keyframe, repeated by stream copy to the clip's length (the bytes of each frame are at their own
            // offsets, so no mount can tell).
            let second = path.with_extension("1s.mov");
            time_command(
                source(size)
                    .args(["-t", "1", "-c:v", "prores_ks", "-profile:v", "0"])
                    .args(["-pix_fmt", "yuv422p10le"])
                    .arg(&second),
            )?;
            time_command(
                Command::new("ffmpeg")
                    .args(["-hide_banner", "-loglevel", "error", "-y"])
                    .args(["-stream_loop", "-1", "-i"])
                    .arg(&second)
                    .args(["-t", &seconds.to_string(), "-c", "copy"])
                    .arg(path),
            )?;
            std::fs::remove_file(&second)?;
            size
        }
    };
    eprintln!(
        "made a {seconds} s {size} {codec:?} clip of {:.1} MiB in {:.1} s",
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

    /// One run of the scrub: the local file, ours cold, ours pinned, rclone cold.
    fn scrub(&self, run: usize, s: &mut Seeks) -> Result<()> {
        let local = self.seeks(&self.clip, &mut Vec::new())?;
        let cold = self.scrub_mount(Side::Ours, run, false, s)?;
        let pinned = self.scrub_mount(Side::Ours, run, true, s)?;
        let rclone = self.scrub_mount(Side::Rclone, run, false, s)?;
        let sides = [&local, &cold, &pinned, &rclone];
        s.per_run_p50
            .push(sides.map(|v| percentile(v, 0.5).as_secs_f64()));
        s.first_seek
            .push(sides.map(|v| v.first().map_or(Duration::ZERO, |f| f.elapsed)));
        s.local.extend(local);
        s.cold.extend(cold);
        s.pinned.extend(pinned);
        s.rclone.extend(rclone);
        Ok(())
    }

    /// The seeks on `clip`, each timed, and what each moved over the link.
    fn seeks(&self, clip: &Path, traffic: &mut Vec<TrafficCount>) -> Result<Vec<Sample>> {
        self.points
            .iter()
            .map(|t| {
                let before = self.link.traffic();
                let sample = time_command(
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
                );
                traffic.push(self.link.traffic() - before);
                sample
            })
            .collect()
    }

    /// The seeks through a mount on a fresh cache; `pin`: pinned and fully fetched first.
    fn scrub_mount(&self, side: Side, run: usize, pin: bool, s: &mut Seeks) -> Result<Vec<Sample>> {
        let (base, mountpoint, cache) = self.dirs(&format!("scrub-{side:?}-{pin}-{run}"))?;
        let mut child = self.target().start(side, &mountpoint, &cache, self.clip_name)?;
        let clip = mountpoint.join(self.clip_name);
        let traffic = match (side, pin) {
            (Side::Ours, false) => &mut s.traffic_cold,
            (Side::Ours, true) => &mut s.traffic_pinned,
            (Side::Rclone, _) => &mut s.traffic_rclone,
        };
        let result = (|| {
            if pin {
                s.pin_wait.push(timed(|| self.pin_and_wait(&clip))?.elapsed);
            }
            self.seeks(&clip, traffic)
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

    /// Writes the render sequentially through a mount, at the writer's pace; returns (close → in the store,
    /// open → close).
    fn render(&self, side: Side, run: usize) -> Result<(Sample, Duration)> {
        let (base, mountpoint, cache) = self.dirs(&format!("render-{side:?}-{run}"))?;
        let mut child = self.target().start(side, &mountpoint, &cache, self.clip_name)?;
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
                if self.writer_rate > 0 {
                    // An encoder's pace: the bytes written so far are due no earlier than this.
                    let due =
                        started + Duration::from_secs_f64(written as f64 * 8.0 / self.writer_rate as f64);
                    std::thread::sleep(due.saturating_duration_since(Instant::now()));
                }
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
}
