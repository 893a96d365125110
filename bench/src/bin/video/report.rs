//! The video benchmark's report: the goal rows (Markdown and `json:` lines, as every benchmark prints them),
//! then the per-side scrub table, what the seeks cost over the link, and the render's timings.

use std::time::Duration;

use bench::link::TrafficCount;
use bench::{Row, Sample};

use super::{Bench, ONE_WAY, Part, RATE_BITS, Seeks};

/// The value at quantile `q` (nearest rank) of the samples' times.
pub(crate) fn percentile(samples: &[Sample], q: f64) -> Duration {
    let mut sorted: Vec<Duration> = samples.iter().map(|s| s.elapsed).collect();
    sorted.sort();
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// The median of `values` (0 when empty).
fn median_u64(values: impl Iterator<Item = u64>) -> u64 {
    let mut sorted: Vec<u64> = values.collect();
    sorted.sort_unstable();
    sorted.get(sorted.len() / 2).copied().unwrap_or(0)
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

impl Bench {
    /// Prints the whole report; `only`: the part that ran.
    pub(crate) fn print(&self, s: &Seeks, only: Option<Part>) {
        let ours = "iphoto-mount";
        let mut rows = Vec::new();
        if only != Some(Part::Render) {
            rows.push(Row::new(
                "scrub p50, cold",
                ours,
                "local file",
                0,
                &s.cold,
                &s.local,
                0.5,
            ));
            rows.push(Row::new(
                "scrub p50, cold",
                ours,
                "rclone mount (vfs full), cold",
                0,
                &s.cold,
                &s.rclone,
                2.0,
            ));
            rows.push(Row::new(
                "scrub p50, pinned",
                ours,
                "local file",
                0,
                &s.pinned,
                &s.local,
                1.0 / 1.15,
            ));
        }
        if only != Some(Part::Scrub) {
            rows.push(Row::new(
                &format!(
                    "render {} MiB written at {}, close → in the store",
                    self.render_size >> 20,
                    self.pace()
                ),
                ours,
                "rclone mount (vfs full, write-back 0s)",
                self.render_size,
                &s.render_ours,
                &s.render_rclone,
                5.0,
            ));
        }
        bench::report(
            &format!(
                "video: scrub and render through the mounts, {} seeks a side and run",
                self.points.len()
            ),
            &rows,
        );
        if only != Some(Part::Render) {
            print_scrub(s);
        }
        if only != Some(Part::Scrub) {
            self.print_render(s);
        }
        println!("{}", self.link.describe(ONE_WAY, RATE_BITS));
    }

    /// The writer's pace, in words.
    fn pace(&self) -> String {
        if self.writer_rate == 0 {
            "full speed (unpaced)".to_owned()
        } else {
            format!("{} Mbit/s", self.writer_rate as f64 / 1e6)
        }
    }

    fn print_render(&self, s: &Seeks) {
        let secs = |v: &[Duration]| {
            v.iter()
                .map(|d| format!("{:.2}", d.as_secs_f64()))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let samples = |v: &[Sample]| secs(&v.iter().map(|s| s.elapsed).collect::<Vec<_>>());
        let paced = if self.writer_rate > 0 {
            format!(
                " (the pace alone: {:.2} s)",
                self.render_size as f64 * 8.0 / self.writer_rate as f64
            )
        } else {
            String::new()
        };
        println!(
            "\nrender, writer at {}: open → close, s: ours {}, rclone {}{paced}",
            self.pace(),
            secs(&s.render_write_ours),
            secs(&s.render_write_rclone)
        );
        println!(
            "render close → in the store, s: ours {}, rclone {}",
            samples(&s.render_ours),
            samples(&s.render_rclone)
        );
    }
}

/// The per-side scrub table and what the seeks cost over the link.
fn print_scrub(s: &Seeks) {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!("\n| scrub side | seeks | p50 ms | p90 ms | p50 per run ms | first seek per run ms |");
    println!("|---|---|---|---|---|---|");
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
        let first: Vec<String> = s.first_seek.iter().map(|r| format!("{:.0}", ms(r[i]))).collect();
        println!(
            "| {name} | {} | {:.0} | {:.0} | {} | {} |",
            v.len(),
            ms(percentile(v, 0.5)),
            ms(percentile(v, 0.9)),
            per_run.join(", "),
            first.join(", ")
        );
    }
    println!(
        "\n| link traffic per seek | GETs, median | GETs, first seek | MiB asked, median | MiB down, median | MiB down, first seek | MiB down, all seeks (mean per run) |"
    );
    println!("|---|---|---|---|---|---|---|");
    let runs = s.first_seek.len().max(1);
    let seeks_per_run = s.traffic_cold.len() / runs;
    for (name, t) in [
        ("iphoto-mount cold", &s.traffic_cold),
        ("iphoto-mount pinned", &s.traffic_pinned),
        ("rclone mount cold", &s.traffic_rclone),
    ] {
        let first: Vec<&TrafficCount> = t.iter().step_by(seeks_per_run.max(1)).collect();
        println!(
            "| {name} | {} | {} | {:.1} | {:.1} | {} | {:.0} |",
            median_u64(t.iter().map(|c| c.gets)),
            first
                .iter()
                .map(|c| c.gets.to_string())
                .collect::<Vec<_>>()
                .join(", "),
            mib(median_u64(t.iter().map(|c| c.range_bytes))),
            mib(median_u64(t.iter().map(|c| c.bytes_down))),
            first
                .iter()
                .map(|c| format!("{:.1}", mib(c.bytes_down)))
                .collect::<Vec<_>>()
                .join(", "),
            mib(t.iter().map(|c| c.bytes_down).sum::<u64>()) / runs as f64
        );
    }
    let p50 = |v: &[Sample]| percentile(v, 0.5).as_secs_f64();
    println!(
        "scrub cold p50: {:.2}× local (goal ≤ 2), {:.2}× rclone (goal ≤ 0.5); pinned p50 {:.2}× local (goal: within noise, ≤ 1.15)",
        p50(&s.cold) / p50(&s.local),
        p50(&s.cold) / p50(&s.rclone),
        p50(&s.pinned) / p50(&s.local)
    );
    let pins: Vec<String> = s
        .pin_wait
        .iter()
        .map(|d| format!("{:.2}", d.as_secs_f64()))
        .collect();
    println!("pin until pinned, s: {}", pins.join(", "));
}
