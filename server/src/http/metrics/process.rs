//! The process metrics every Prometheus client library exports (`process_cpu_seconds_total`,
//! `process_resident_memory_bytes`, `process_virtual_memory_bytes`, `process_open_fds`, `process_max_fds`,
//! `process_start_time_seconds`), read from `/proc/self` at each scrape. Off Linux there is no `/proc` and
//! none are reported.
//!
//! Read here rather than through a crate: the `prometheus` crate's process collector needs that crate's own
//! registry, and `metrics-process` the `metrics` facade; what they read is three files and a directory.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric as _};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// Reports the process metrics at each scrape.
#[derive(Debug)]
pub(super) struct ProcessCollector;

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(sample) = Sample::read() else {
            return Ok(());
        };
        let cpu = ConstCounter::new(sample.cpu_seconds);
        cpu.encode(encoder.encode_descriptor(
            "process_cpu_seconds",
            "Total user and system CPU time spent in seconds.",
            None,
            cpu.metric_type(),
        )?)?;
        for (name, help, value) in [
            (
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
                sample.resident_memory_bytes,
            ),
            (
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes.",
                sample.virtual_memory_bytes,
            ),
            (
                "process_open_fds",
                "Number of open file descriptors.",
                sample.open_fds,
            ),
            (
                "process_max_fds",
                "Maximum number of open file descriptors.",
                sample.max_fds,
            ),
        ] {
            let gauge = ConstGauge::new(i64::try_from(value).unwrap_or(i64::MAX));
            gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)?;
        }
        let started = ConstGauge::new(sample.start_time_seconds);
        started.encode(encoder.encode_descriptor(
            "process_start_time_seconds",
            "Start time of the process since unix epoch in seconds.",
            None,
            started.metric_type(),
        )?)?;
        Ok(())
    }
}

/// One reading of `/proc/self`.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Sample {
    pub cpu_seconds: f64,
    pub resident_memory_bytes: u64,
    pub virtual_memory_bytes: u64,
    pub open_fds: u64,
    pub max_fds: u64,
    pub start_time_seconds: f64,
}

impl Sample {
    /// `None` where `/proc` is missing or unreadable.
    pub(super) fn read() -> Option<Sample> {
        use nix::unistd::{SysconfVar, sysconf};
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        // Field 2, the command name, is in parentheses and may hold spaces and parentheses itself: the fields
        // are counted from after its last `)`, where field 3 (the state) starts.
        let fields: Vec<&str> = stat.get(stat.rfind(')')? + 1..)?.split_whitespace().collect();
        let field = |n: usize| -> Option<u64> { fields.get(n - 3)?.parse().ok() };
        let ticks = sysconf(SysconfVar::CLK_TCK).ok()??;
        let ticks = u64::try_from(ticks).ok().filter(|t| *t > 0)? as f64;
        let page = u64::try_from(sysconf(SysconfVar::PAGE_SIZE).ok()??).ok()?;
        let boot_time: u64 = std::fs::read_to_string("/proc/stat")
            .ok()?
            .lines()
            .find_map(|line| line.strip_prefix("btime "))?
            .trim()
            .parse()
            .ok()?;
        let open_fds = std::fs::read_dir("/proc/self/fd").ok()?.count() as u64;
        let (max_fds, _) = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).ok()?;
        Some(Sample {
            // utime (14) and stime (15), in clock ticks.
            cpu_seconds: (field(14)? + field(15)?) as f64 / ticks,
            // rss (24) in pages, vsize (23) in bytes.
            resident_memory_bytes: field(24)?.saturating_mul(page),
            virtual_memory_bytes: field(23)?,
            open_fds,
            max_fds,
            // starttime (22), in clock ticks after boot.
            start_time_seconds: boot_time as f64 + field(22)? as f64 / ticks,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Sample;

    #[test]
    #[cfg(target_os = "linux")]
    fn a_sample_of_this_process_is_sane() {
        let before: Vec<u8> = vec![1; 64 << 20];
        let sample = Sample::read().expect("/proc/self is readable on Linux");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        assert!(sample.resident_memory_bytes >= 64 << 20, "{sample:?}");
        assert!(
            sample.virtual_memory_bytes >= sample.resident_memory_bytes,
            "{sample:?}"
        );
        assert!(
            sample.open_fds >= 3 && sample.open_fds <= sample.max_fds,
            "{sample:?}"
        );
        assert!(sample.cpu_seconds >= 0.0, "{sample:?}");
        // This test process started within the last hour, and not after now.
        assert!(
            sample.start_time_seconds <= now + 1.0 && sample.start_time_seconds > now - 3600.0,
            "{sample:?} vs now {now}"
        );
        drop(before);
    }
}
