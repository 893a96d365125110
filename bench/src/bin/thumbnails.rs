//! Thumbnail benchmark: thumbnails per second of 12-MP JPEGs through the worker's codec
//! (`worker::thumbnail::make_thumbnail`, one file per thread, as many threads as the worker's concurrency)
//! next to ImageMagick's `convert -thumbnail 512x512` of the same files with the same parallelism (as many
//! `convert` processes at once, each held to one thread), alternating, in the same run.
//!
//! `thumbnails` runs the full benchmark (20 photos of 4000×3000, 3 runs); `thumbnails --small` the CI mode
//! (4 photos of 2000×1500, 2 runs). The photos are made first: a gradient with per-pixel noise, so they
//! weigh like camera JPEGs (about 7.5 MiB at 12 MP, quality 92) and not like flat test cards.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context as _, Result, bail};
use bench::{ChildReport, Row, Sample, report, time_child};
use clap::{Parser, Subcommand};
use image::ImageEncoder as _;
use worker::thumbnail::{ThumbnailSpec, make_thumbnail};

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    child: Option<Child>,
    /// CI mode: four smaller photos and two runs, so the benchmark cannot rot.
    #[arg(long)]
    small: bool,
    /// Photos made and thumbnailed per run.
    #[arg(long)]
    count: Option<usize>,
    /// Runs of each side.
    #[arg(long)]
    runs: Option<usize>,
    /// Files worked on at once, by each side. Default: the worker's concurrency (the number of cores).
    #[arg(long)]
    jobs: Option<usize>,
}

#[derive(Subcommand)]
enum Child {
    /// Thumbnails every `.jpg` of `src` into `dst` with `jobs` threads.
    Ours { src: PathBuf, dst: PathBuf, jobs: usize },
}

const EDGE: u32 = 512;
const QUALITY: u8 = 82;

fn main() -> Result<()> {
    let cli = Cli::parse();
    if let Some(Child::Ours { src, dst, jobs }) = cli.child {
        return ours(&src, &dst, jobs);
    }
    let count = cli.count.unwrap_or(if cli.small { 4 } else { 20 });
    let runs = cli.runs.unwrap_or(if cli.small { 2 } else { 3 });
    let jobs = cli.jobs.unwrap_or_else(worker::default_concurrency).max(1);
    let (width, height) = if cli.small { (2000, 1500) } else { (4000, 3000) };
    let convert = imagemagick()?;

    let work = tempfile::Builder::new()
        .prefix("iphoto-bench-thumbnails-")
        .tempdir()?;
    let src = work.path().join("originals");
    std::fs::create_dir_all(&src)?;
    let bytes = make_photos(&src, count, width, height)?;
    eprintln!(
        "made {count} JPEGs of {width}×{height} ({:.1} MiB each on average); {jobs} at once",
        bytes as f64 / count as f64 / (1 << 20) as f64
    );

    let (mut ours_samples, mut peer_samples) = (Vec::new(), Vec::new());
    for run in 0..runs {
        let dst = work.path().join(format!("ours-{run}"));
        std::fs::create_dir_all(&dst)?;
        let args = ["ours".into(), path_arg(&src), path_arg(&dst), jobs.to_string()];
        ours_samples.push(time_child(&args, &[])?);
        check_outputs(&dst, count)?;

        let dst = work.path().join(format!("peer-{run}"));
        std::fs::create_dir_all(&dst)?;
        peer_samples.push(peer(&convert, &src, &dst, jobs)?);
        check_outputs(&dst, count)?;
    }

    let scenario = format!(
        "{count} JPEGs {}MP → {EDGE}px, {jobs} at once",
        width * height / 1_000_000
    );
    let peer_name = format!("convert -thumbnail {EDGE}x{EDGE} ({jobs} processes)");
    let row = Row::new(
        &scenario,
        "make_thumbnail",
        &peer_name,
        bytes,
        &ours_samples,
        &peer_samples,
        1.0,
    );
    println!(
        "thumbnails/s: ours {:.2}, ImageMagick {:.2} ({} cores, load average {})",
        count as f64 / row.ours_median_s,
        count as f64 / row.peer_median_s,
        bench::cores(),
        load_average()
    );
    report("thumbnails: JPEG → 512-px JPEG", &[row]);
    Ok(())
}

fn path_arg(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// The real ImageMagick: `magick` (7) or the Debian `convert-im6.q16` (6), else a `convert` that says it is
/// ImageMagick (a machine may put a stand-in called `convert` first on the PATH).
fn imagemagick() -> Result<Vec<String>> {
    let candidates: [&[&str]; 4] = [
        &["magick", "convert"],
        &["/usr/bin/convert-im6.q16"],
        &["/usr/bin/convert"],
        &["convert"],
    ];
    for candidate in candidates {
        let output = Command::new(candidate[0])
            .args(&candidate[1..])
            .arg("-version")
            .output();
        if output.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("ImageMagick")) {
            return Ok(candidate.iter().map(|s| (*s).to_owned()).collect());
        }
    }
    bail!("ImageMagick is not installed (Debian: apt-get install imagemagick; scripts/install-test-deps.sh)")
}

/// `count` noisy JPEGs of `width`×`height`, made in parallel; returns their total size.
fn make_photos(dir: &Path, count: usize, width: u32, height: u32) -> Result<u64> {
    let next = AtomicUsize::new(0);
    let total = std::sync::atomic::AtomicU64::new(0);
    std::thread::scope(|scope| {
        let mut handles = Vec::new();
        for _ in 0..bench::cores() {
            handles.push(scope.spawn(|| -> Result<()> {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= count {
                        return Ok(());
                    }
                    let mut state =
                        0x9E37_79B9_7F4A_7C15_u64 ^ (i as u64 + 1).wrapping_mul(0xD1B5_4A32_D192_ED03);
                    let image = image::RgbImage::from_fn(width, height, |x, y| {
                        state ^= state << 13;
                        state ^= state >> 7;
                        state ^= state << 17;
                        let n = (state & 0x3f) as u32;
                        let base = (x * 255 / width + y * 255 / height) / 2;
                        image::Rgb([
                            (base + n).min(255) as u8,
                            ((255 - base) / 2 + n) as u8,
                            ((x / 97 + y / 61 + i as u32) % 200 + n / 2) as u8,
                        ])
                    });
                    let path = dir.join(format!("photo-{i:03}.jpg"));
                    let mut out = std::io::BufWriter::new(std::fs::File::create(&path)?);
                    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 92).write_image(
                        image.as_raw(),
                        width,
                        height,
                        image::ExtendedColorType::Rgb8,
                    )?;
                    drop(out);
                    total.fetch_add(std::fs::metadata(&path)?.len(), Ordering::Relaxed);
                }
            }));
        }
        handles.into_iter().try_for_each(|h| {
            h.join()
                .map_err(|_| anyhow::anyhow!("a generator thread panicked"))?
        })
    })?;
    Ok(total.into_inner())
}

fn originals(src: &Path) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(src)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    files.retain(|p| p.extension().is_some_and(|e| e == "jpg"));
    files.sort();
    Ok(files)
}

/// Runs `work` on every original with `jobs` threads, each taking the next file.
fn each_file(src: &Path, jobs: usize, work: impl Fn(&Path) -> Result<()> + Sync) -> Result<()> {
    let files = originals(src)?;
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..jobs)
            .map(|_| {
                scope.spawn(|| -> Result<()> {
                    while let Some(file) = files.get(next.fetch_add(1, Ordering::Relaxed)) {
                        work(file)?;
                    }
                    Ok(())
                })
            })
            .collect();
        handles.into_iter().try_for_each(|h| {
            h.join()
                .map_err(|_| anyhow::anyhow!("a worker thread panicked"))?
        })
    })
}

/// Our side, in a child process: the codec on `jobs` threads, as the worker runs it.
fn ours(src: &Path, dst: &Path, jobs: usize) -> Result<()> {
    let spec = ThumbnailSpec {
        max_edge: EDGE,
        quality: QUALITY,
    };
    each_file(src, jobs, |file| {
        let thumb =
            make_thumbnail(file, "public.jpeg", &spec).with_context(|| format!("{}", file.display()))?;
        std::fs::write(dst.join(file.file_name().unwrap()), &thumb.bytes)?;
        Ok(())
    })?;
    ChildReport::print_own();
    Ok(())
}

/// The peer: `convert IN -thumbnail 512x512 -quality 82 OUT`, `jobs` processes at once, each held to one
/// thread so the parallelism is the same as ours.
fn peer(convert: &[String], src: &Path, dst: &Path, jobs: usize) -> Result<Sample> {
    let started = std::time::Instant::now();
    each_file(src, jobs, |file| {
        let output = Command::new(&convert[0])
            .args(&convert[1..])
            .arg(file)
            .args([
                "-thumbnail",
                &format!("{EDGE}x{EDGE}"),
                "-quality",
                &QUALITY.to_string(),
            ])
            .arg(dst.join(file.file_name().unwrap()))
            .env("MAGICK_THREAD_LIMIT", "1")
            .output()?;
        if !output.status.success() {
            bail!(
                "convert {}: {}",
                file.display(),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(())
    })?;
    Ok(Sample {
        elapsed: started.elapsed(),
        peak_rss_kib: 0,
    })
}

/// Every output is a JPEG whose longer edge is 512.
fn check_outputs(dst: &Path, count: usize) -> Result<()> {
    let files: Vec<_> = std::fs::read_dir(dst)?.collect::<Result<_, _>>()?;
    if files.len() != count {
        bail!(
            "{} thumbnails in {} instead of {count}",
            files.len(),
            dst.display()
        );
    }
    for file in files {
        let (w, h) = image::image_dimensions(file.path())?;
        if w.max(h) != EDGE {
            bail!("{} is {w}×{h}, not bounded by {EDGE}", file.path().display());
        }
    }
    Ok(())
}
