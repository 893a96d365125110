//! Thumbnail benchmark: thumbnails per second of 12-MP JPEGs through the worker's codec
//! (`worker::thumbnail::make_thumbnail`, one file per thread, as many threads as the worker's concurrency)
//! next to ImageMagick's `convert -thumbnail 512x512` of the same files with the same parallelism (as many
//! `convert` processes at once, each held to one thread), alternating, in the same run.
//!
//! Then what the 2048-px preview adds: `make_derivatives` (thumbnail and preview from one decode, what a
//! job does today) next to ImageMagick making the same two from one read (`-resize 2048x2048> -write …
//! -thumbnail 512x512`), and its images/s beside the thumbnail-only figure of the same run.
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
use worker::thumbnail::{DerivativeSpecs, ThumbnailSpec, make_derivatives, make_thumbnail};

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
    /// Thumbnails every `.jpg` of `src` into `dst` with `jobs` threads (and previews, with `--preview`).
    Ours {
        src: PathBuf,
        dst: PathBuf,
        jobs: usize,
        #[arg(long)]
        preview: bool,
    },
}

const EDGE: u32 = 512;
const QUALITY: u8 = 82;
const PREVIEW_EDGE: u32 = worker::thumbnail::PREVIEW_SPEC.max_edge;
const PREVIEW_QUALITY: u8 = worker::thumbnail::PREVIEW_SPEC.quality;

fn main() -> Result<()> {
    let cli = Cli::parse();
    if let Some(Child::Ours {
        src,
        dst,
        jobs,
        preview,
    }) = cli.child
    {
        return ours(&src, &dst, jobs, preview);
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
    let (mut both_samples, mut peer_both_samples) = (Vec::new(), Vec::new());
    for run in 0..runs {
        let dst = work.path().join(format!("ours-{run}"));
        std::fs::create_dir_all(&dst)?;
        let args = ["ours".into(), path_arg(&src), path_arg(&dst), jobs.to_string()];
        ours_samples.push(time_child(&args, &[])?);
        check_outputs(&dst, count, EDGE)?;
        std::fs::remove_dir_all(&dst)?;

        let dst = work.path().join(format!("peer-{run}"));
        std::fs::create_dir_all(&dst)?;
        peer_samples.push(peer(&convert, &src, &dst, jobs, false)?);
        check_outputs(&dst, count, EDGE)?;
        std::fs::remove_dir_all(&dst)?;

        for (side, samples) in [("ours", &mut both_samples), ("peer", &mut peer_both_samples)] {
            let dst = work.path().join(format!("{side}-both-{run}"));
            std::fs::create_dir_all(dst.join("preview"))?;
            samples.push(if side == "ours" {
                let mut args = vec!["ours".into(), path_arg(&src), path_arg(&dst), jobs.to_string()];
                args.push("--preview".into());
                time_child(&args, &[])?
            } else {
                peer(&convert, &src, &dst, jobs, true)?
            });
            check_outputs(&dst.join("preview"), count, PREVIEW_EDGE.min(width.max(height)))?;
            std::fs::remove_dir_all(dst.join("preview"))?;
            check_outputs(&dst, count, EDGE)?;
            std::fs::remove_dir_all(&dst)?;
        }
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
    let both_scenario = format!(
        "{count} JPEGs {}MP → {PREVIEW_EDGE}px + {EDGE}px, {jobs} at once",
        width * height / 1_000_000
    );
    let both_peer =
        format!("convert -resize {PREVIEW_EDGE}x{PREVIEW_EDGE}> -write … -thumbnail {EDGE}x{EDGE}");
    let both = Row::new(
        &both_scenario,
        "make_derivatives (one decode)",
        &both_peer,
        bytes,
        &both_samples,
        &peer_both_samples,
        1.0,
    );
    println!(
        "thumbnails/s: ours {:.2}, ImageMagick {:.2} ({} cores, load average {})",
        count as f64 / row.ours_median_s,
        count as f64 / row.peer_median_s,
        bench::cores(),
        load_average()
    );
    println!(
        "images/s with the preview: ours {:.2} (thumbnail only {:.2}: the preview costs {:.0}% more time), \
         ImageMagick {:.2} (thumbnail only {:.2})",
        count as f64 / both.ours_median_s,
        count as f64 / row.ours_median_s,
        (both.ours_median_s / row.ours_median_s - 1.0) * 100.0,
        count as f64 / both.peer_median_s,
        count as f64 / row.peer_median_s,
    );
    report(
        "thumbnails: JPEG → 512-px JPEG, and with the 2048-px preview",
        &[row, both],
    );
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

/// Our side, in a child process: the codec on `jobs` threads, as the worker runs it; with `preview`, both
/// derivatives from one decode (previews into `dst/preview`).
fn ours(src: &Path, dst: &Path, jobs: usize, preview: bool) -> Result<()> {
    let spec = ThumbnailSpec {
        max_edge: EDGE,
        quality: QUALITY,
    };
    let wanted = DerivativeSpecs {
        thumbnail: Some(spec),
        preview: Some(ThumbnailSpec {
            max_edge: PREVIEW_EDGE,
            quality: PREVIEW_QUALITY,
        }),
    };
    each_file(src, jobs, |file| {
        let name = file.file_name().unwrap();
        if preview {
            let made = make_derivatives(file, "public.jpeg", &wanted)
                .with_context(|| format!("{}", file.display()))?;
            let (Some(thumb), Some(preview)) = (made.thumbnail, made.preview) else {
                bail!("{}: a derivative is missing", file.display());
            };
            std::fs::write(dst.join(name), &thumb.bytes)?;
            std::fs::write(dst.join("preview").join(name), &preview.bytes)?;
        } else {
            let thumb =
                make_thumbnail(file, "public.jpeg", &spec).with_context(|| format!("{}", file.display()))?;
            std::fs::write(dst.join(name), &thumb.bytes)?;
        }
        Ok(())
    })?;
    ChildReport::print_own();
    Ok(())
}

/// The peer: `convert IN -thumbnail 512x512 -quality 82 OUT`, `jobs` processes at once, each held to one
/// thread so the parallelism is the same as ours. With `preview`, the same process first writes the
/// 2048-px preview (`-resize 2048x2048> -quality 85 -write dst/preview/NAME`) from the one read.
fn peer(convert: &[String], src: &Path, dst: &Path, jobs: usize, preview: bool) -> Result<Sample> {
    let started = std::time::Instant::now();
    each_file(src, jobs, |file| {
        let name = file.file_name().unwrap();
        let mut command = Command::new(&convert[0]);
        command.args(&convert[1..]).arg(file);
        if preview {
            command
                .args([
                    "-resize",
                    &format!("{PREVIEW_EDGE}x{PREVIEW_EDGE}>"),
                    "-quality",
                    &PREVIEW_QUALITY.to_string(),
                    "-write",
                ])
                .arg(dst.join("preview").join(name));
        }
        let output = command
            .args([
                "-thumbnail",
                &format!("{EDGE}x{EDGE}"),
                "-quality",
                &QUALITY.to_string(),
            ])
            .arg(dst.join(name))
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

/// Every file in `dst` is an image whose longer edge is `edge`.
fn check_outputs(dst: &Path, count: usize, edge: u32) -> Result<()> {
    let files: Vec<_> = std::fs::read_dir(dst)?
        .filter(|e| e.as_ref().map_or(true, |e| e.path().is_file()))
        .collect::<Result<_, _>>()?;
    if files.len() != count {
        bail!(
            "{} thumbnails in {} instead of {count}",
            files.len(),
            dst.display()
        );
    }
    for file in files {
        let (w, h) = image::image_dimensions(file.path())?;
        if w.max(h) != edge {
            bail!("{} is {w}×{h}, not bounded by {edge}", file.path().display());
        }
    }
    Ok(())
}
