//! `status.json` in the cache directory: what a running mount reports to `iphoto-mount status` and `flush`
//! (another process), written atomically four times a second and at unmount.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::fs::Fs;

/// The mount's state as `status` prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Status {
    /// Bytes the cache accounts for.
    pub cache_used_bytes: u64,
    /// The cache's hard bound.
    pub cache_max_bytes: u64,
    /// Blocks in the cache.
    pub cache_blocks: u64,
    /// Bytes written but not yet in the store.
    pub dirty_bytes: u64,
    /// Uploads not yet committed.
    pub pending_uploads: u64,
    /// When the mount wrote this, milliseconds since the Unix epoch: `flush` trusts only a status written
    /// after it started.
    pub written_at_ms: u64,
}

impl Status {
    /// Reads `status.json` from a cache directory.
    pub fn read(cache_dir: &Path) -> std::io::Result<Status> {
        let text = std::fs::read_to_string(cache_dir.join("status.json"))?;
        let field = |name: &str| -> u64 {
            text.split(&format!("\"{name}\":"))
                .nth(1)
                .and_then(|rest| rest.split([',', '}']).next())
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0)
        };
        Ok(Status {
            cache_used_bytes: field("cache_used_bytes"),
            cache_max_bytes: field("cache_max_bytes"),
            cache_blocks: field("cache_blocks"),
            dirty_bytes: field("dirty_bytes"),
            pending_uploads: field("pending_uploads"),
            written_at_ms: field("written_at_ms"),
        })
    }

    fn json(&self) -> String {
        // Hand-written: six numbers do not justify a serde dependency.
        format!(
            "{{\"cache_used_bytes\":{},\"cache_max_bytes\":{},\"cache_blocks\":{},\"dirty_bytes\":{},\"pending_uploads\":{},\"written_at_ms\":{}}}\n",
            self.cache_used_bytes,
            self.cache_max_bytes,
            self.cache_blocks,
            self.dirty_bytes,
            self.pending_uploads,
            self.written_at_ms
        )
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Writes the status now (atomically: temporary file, rename).
pub(crate) fn write(fs: &Fs, cache_dir: &Path) {
    let usage = fs.cache_usage();
    let (dirty_bytes, pending_uploads) = fs.dirty();
    let status = Status {
        cache_used_bytes: usage.used_bytes,
        cache_max_bytes: usage.max_bytes,
        cache_blocks: usage.blocks,
        dirty_bytes,
        pending_uploads,
        written_at_ms: now_ms(),
    };
    let temporary = cache_dir.join("status.json.tmp");
    let result = std::fs::write(&temporary, status.json())
        .and_then(|()| std::fs::rename(&temporary, cache_dir.join("status.json")));
    if let Err(e) = result {
        tracing::debug!(error = %e, "writing status.json failed");
    }
}

pub(crate) fn spawn_writer(runtime: &tokio::runtime::Runtime, fs: Arc<Fs>, cache_dir: std::path::PathBuf) {
    runtime.spawn(async move {
        let mut ticker = tokio::time::interval(Duration::from_millis(250));
        loop {
            ticker.tick().await;
            write(&fs, &cache_dir);
        }
    });
}
