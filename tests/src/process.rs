//! Free ports, unique names and supervised child processes.

use std::io::Write as _;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context as _, Result};

/// A free TCP port on 127.0.0.1 (bound, then released: a small race other starts retry on).
pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Sends SIGTERM to `child` (a graceful stop) and returns at once.
pub fn sigterm(child: &Child) -> Result<()> {
    let pid = child.id().to_string();
    let sent = Command::new("kill").args(["-TERM", &pid]).status()?;
    anyhow::ensure!(sent.success(), "kill -TERM {pid} failed");
    Ok(())
}

/// Waits up to `timeout` for `child` to exit (blocking the thread).
pub fn wait_exit(child: &mut Child, timeout: std::time::Duration) -> Result<std::process::ExitStatus> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        if std::time::Instant::now() > deadline {
            anyhow::bail!("process {} did not exit within {timeout:?}", child.id());
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// `n` consecutive free ports starting at a random base, plus any extra offsets given (SeaweedFS dials
/// admin.port + 10000).
pub(crate) fn free_port_block(n: u16, extra_offsets: &[u16]) -> Result<u16> {
    for _ in 0..200 {
        let seed = u16::try_from(unique_counter() % 1000).unwrap_or(0);
        let base = 20_000 + (u16::try_from(std::process::id() % 97).unwrap_or(0) * 97 + seed * 13) % 20_000;
        let mut offsets: Vec<u16> = (0..n).collect();
        offsets.extend_from_slice(extra_offsets);
        if offsets
            .iter()
            .all(|o| TcpListener::bind(("127.0.0.1", base + o)).is_ok())
        {
            return Ok(base);
        }
    }
    anyhow::bail!("no block of {n} free ports found on 127.0.0.1")
}

fn unique_counter() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    COUNTER.fetch_add(1, Ordering::Relaxed) + u64::try_from(nanos % 1_000_000).unwrap_or(0)
}

/// A name unique in this machine's test runs: `<prefix>-<pid>-<n>-<time>`, for prefixes, buckets, databases.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros());
    format!("{prefix}-{}-{n}-{}", std::process::id(), t % 1_000_000_000)
}

/// A server process run under `sh`, which waits for its stdin to close and then runs the stop script.
/// Dropping this closes stdin and waits for the stop script; a test process that dies closes it too.
pub(crate) struct Supervised {
    child: Child,
    stdin: Option<ChildStdin>,
}

impl Supervised {
    /// Runs `start` (a shell script that starts the server in the background and records what `stop` needs)
    /// then waits on stdin; `stop` runs when stdin closes. Output goes to `log`.
    pub(crate) fn spawn(start: &str, stop: &str, log: &Path) -> Result<Self> {
        let script = format!("{start}\ncat >/dev/null\n{stop}\n");
        let log_file = std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .spawn()
            .context("spawning sh")?;
        let stdin = child.stdin.take();
        Ok(Self { child, stdin })
    }

    /// Whether the supervisor is still running.
    pub(crate) fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Closes stdin and waits until the stop script has run.
    pub(crate) fn stop(&mut self) {
        if let Some(mut stdin) = self.stdin.take() {
            let _ = stdin.flush();
        }
        let _ = self.child.wait();
    }
}

impl Drop for Supervised {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Single-quotes a string for `sh`.
pub(crate) fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}
