//! Shared pieces of the benchmarks: timing children, medians, peak memory, and the report format.
//!
//! Every scenario runs ours and a peer on the same data in the same run, alternating, several times, and
//! prints the medians, their ratio, the peak RSS of our side and the core count, as a table row and as JSON.
//! Our side runs in a child process (this binary re-executed) so its peak RSS is its own, not the harness's.

#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod catalog;
pub mod link;
pub mod mounts;
pub mod paint;
pub mod server;
pub mod web;

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use serde::Serialize;

/// One timed run of a command: wall time and, for our side, the child's own peak RSS.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// Wall-clock time.
    pub elapsed: Duration,
    /// Peak resident set of the measured process, KiB (0 when not measured).
    pub peak_rss_kib: u64,
}

/// Runs an external command (a peer such as `cp` or `rclone`), timing it.
pub fn time_command(command: &mut Command) -> Result<Sample> {
    let started = Instant::now();
    let output = command.output().with_context(|| format!("running {command:?}"))?;
    let elapsed = started.elapsed();
    if !output.status.success() {
        bail!("{command:?} failed: {}", String::from_utf8_lossy(&output.stderr));
    }
    Ok(Sample {
        elapsed,
        peak_rss_kib: 0,
    })
}

/// Runs this benchmark binary again with `args` (a child mode that does one operation and prints
/// [`ChildReport`] as JSON on its last line), timing it from outside and taking its own peak RSS.
pub fn time_child(args: &[String], envs: &[(String, String)]) -> Result<Sample> {
    let exe = std::env::current_exe()?;
    let started = Instant::now();
    let output = Command::new(exe).args(args).envs(envs.iter().cloned()).output()?;
    let elapsed = started.elapsed();
    if !output.status.success() {
        bail!(
            "child {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report: ChildReport =
        serde_json::from_str(stdout.lines().last().unwrap_or("{}")).context("child report")?;
    Ok(Sample {
        elapsed,
        peak_rss_kib: report.peak_rss_kib,
    })
}

/// What a child prints when it is done.
#[derive(Debug, Serialize, serde::Deserialize)]
pub struct ChildReport {
    /// The child's peak RSS (VmHWM), KiB.
    pub peak_rss_kib: u64,
}

impl ChildReport {
    /// Prints this process's report.
    pub fn print_own() {
        println!(
            "{}",
            serde_json::to_string(&ChildReport {
                peak_rss_kib: peak_rss_kib()
            })
            .unwrap()
        );
    }
}

/// This process's peak resident set size (VmHWM), KiB.
pub fn peak_rss_kib() -> u64 {
    peak_rss_kib_of("self")
}

/// The peak resident set size (VmHWM) of process `pid` (or `self`), KiB; 0 when it cannot be read.
pub fn peak_rss_kib_of(pid: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

/// The median of durations.
pub fn median(samples: &[Duration]) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    match sorted.len() {
        0 => Duration::ZERO,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2,
    }
}

/// One line of a report: ours against a peer on the same work.
#[derive(Debug, Serialize)]
pub struct Row {
    /// Scenario name.
    pub scenario: String,
    /// What ours is.
    pub ours: String,
    /// What the peer is.
    pub peer: String,
    /// Bytes moved per run (0 when not a transfer).
    pub bytes: u64,
    /// Runs of each side.
    pub runs: usize,
    /// Median seconds, ours.
    pub ours_median_s: f64,
    /// Median seconds, peer.
    pub peer_median_s: f64,
    /// Peer time / our time: above 1, ours is faster.
    pub speed_ratio: f64,
    /// Throughput of ours, MiB/s (0 when not a transfer).
    pub ours_mib_s: f64,
    /// Throughput of the peer, MiB/s.
    pub peer_mib_s: f64,
    /// Highest peak RSS of our side over the runs, MiB.
    pub ours_peak_rss_mib: f64,
    /// The goal, as a ratio of peer time to ours.
    pub goal_ratio: f64,
    /// Whether the median ratio met the goal.
    pub goal_met: bool,
    /// Cores of the machine.
    pub cores: usize,
    /// Every run's seconds, ours, in run order: a median hides a bimodal machine.
    pub ours_runs_s: Vec<f64>,
    /// Every run's seconds, the peer's, in run order.
    pub peer_runs_s: Vec<f64>,
}

impl Row {
    /// Builds a row from alternating samples.
    pub fn new(
        scenario: &str,
        ours: &str,
        peer: &str,
        bytes: u64,
        ours_samples: &[Sample],
        peer_samples: &[Sample],
        goal_ratio: f64,
    ) -> Row {
        let o = median(&ours_samples.iter().map(|s| s.elapsed).collect::<Vec<_>>()).as_secs_f64();
        let p = median(&peer_samples.iter().map(|s| s.elapsed).collect::<Vec<_>>()).as_secs_f64();
        let mib = bytes as f64 / (1024.0 * 1024.0);
        let ratio = if o > 0.0 { p / o } else { 0.0 };
        Row {
            scenario: scenario.into(),
            ours: ours.into(),
            peer: peer.into(),
            bytes,
            runs: ours_samples.len(),
            ours_median_s: o,
            peer_median_s: p,
            speed_ratio: ratio,
            ours_mib_s: if o > 0.0 { mib / o } else { 0.0 },
            peer_mib_s: if p > 0.0 { mib / p } else { 0.0 },
            ours_peak_rss_mib: ours_samples.iter().map(|s| s.peak_rss_kib).max().unwrap_or(0) as f64 / 1024.0,
            goal_ratio,
            goal_met: ratio >= goal_ratio,
            cores: cores(),
            ours_runs_s: ours_samples.iter().map(|s| s.elapsed.as_secs_f64()).collect(),
            peer_runs_s: peer_samples.iter().map(|s| s.elapsed.as_secs_f64()).collect(),
        }
    }
}

/// Prints rows as a table, then as JSON lines (prefixed `json:` for scripts).
pub fn report(title: &str, rows: &[Row]) {
    println!("\n## {title} ({} cores)", cores());
    println!(
        "| scenario | ours | peer | runs | ours median s | peer median s | peer/ours | ours MiB/s | peer MiB/s | ours peak RSS MiB | goal |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for r in rows {
        println!(
            "| {} | {} | {} | {} | {:.3} | {:.3} | {:.2} | {:.0} | {:.0} | {:.1} | ≥ {:.2} {} |",
            r.scenario,
            r.ours,
            r.peer,
            r.runs,
            r.ours_median_s,
            r.peer_median_s,
            r.speed_ratio,
            r.ours_mib_s,
            r.peer_mib_s,
            r.ours_peak_rss_mib,
            r.goal_ratio,
            if r.goal_met { "met" } else { "NOT met" }
        );
    }
    for r in rows {
        println!("json: {}", serde_json::to_string(r).unwrap());
    }
}

/// Cores available to this process.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// Writes `len` pseudo-random bytes to `path` (incompressible, reproducible, distinct per `seed`, so a store
/// that deduplicates keeps every file), 1 MiB at a time.
pub fn write_data_file(path: &std::path::Path, len: u64, seed: u64) -> Result<()> {
    use std::io::Write as _;
    let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut x = xorshift_seed(seed);
    let mut block = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        fill_pseudo_random(&mut block, &mut x);
        let n = usize::try_from(left.min(block.len() as u64))?;
        file.write_all(&block[..n])?;
        left -= n as u64;
    }
    file.flush()?;
    Ok(())
}

/// The xorshift state [`fill_pseudo_random`] starts from for `seed` (never 0).
pub fn xorshift_seed(seed: u64) -> u64 {
    0x9E37_79B9_7F4A_7C15 ^ (seed.wrapping_mul(0xBF58_476D_1CE4_E5B9) | 1)
}

/// Fills `block` (a multiple of 8 bytes long) with xorshift output, advancing `state`.
pub fn fill_pseudo_random(block: &mut [u8], state: &mut u64) {
    let mut x = *state;
    for chunk in block.chunks_exact_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes());
    }
    *state = x;
}

/// The SHA-256 of the file at `path`, as lowercase hex.
pub fn file_sha256(path: &std::path::Path) -> Result<String> {
    use std::io::Read as _;
    let mut file = std::fs::File::open(path)?;
    let mut hasher = storage::Sha256Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher.finish().to_hex())
}

/// The file a transfer benchmark moves: `--size` when given, else 64 MiB in `--small` mode and 2 GiB in full
/// mode, written as `source.bin` in a fresh temporary directory (kept alive by the returned handle).
pub fn source_file(
    name: &str,
    size: Option<&str>,
    small: bool,
) -> Result<(tempfile::TempDir, std::path::PathBuf, u64)> {
    let size = parse_size(size.unwrap_or(if small { "64MiB" } else { "2GiB" }))?;
    let work = tempfile::Builder::new()
        .prefix(&format!("iphoto-bench-{name}-"))
        .tempdir()?;
    let src = work.path().join("source.bin");
    write_data_file(&src, size, 0)?;
    Ok((work, src, size))
}

/// Parses sizes like `2GiB`, `64MiB`, `1000`.
pub fn parse_size(text: &str) -> Result<u64> {
    let t = text.trim();
    let (num, mult) = [
        ("GiB", 1u64 << 30),
        ("MiB", 1 << 20),
        ("KiB", 1 << 10),
        ("G", 1 << 30),
        ("M", 1 << 20),
    ]
    .iter()
    .find_map(|(suffix, m)| t.strip_suffix(suffix).map(|n| (n, *m)))
    .unwrap_or((t, 1));
    Ok(num
        .trim()
        .parse::<u64>()
        .with_context(|| format!("bad size {text:?}"))?
        * mult)
}
