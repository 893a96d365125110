//! The real `iphoto-server` binary as a child process, for the benchmarks that measure it.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use harness::ServerProcess;

/// The real server binary, next to this benchmark in the same target directory (a release benchmark runs the
/// release server).
pub fn binary() -> Result<PathBuf> {
    let exe = std::env::current_exe()?
        .parent()
        .context("benchmark has no directory")?
        .join("iphoto-server");
    if !exe.exists() {
        bail!(
            "{} is missing: build it first (cargo build [--release] -p iphoto-server --bin iphoto-server)",
            exe.display()
        );
    }
    Ok(exe)
}

/// The real server binary as a child process, next to this benchmark in the same target directory.
#[derive(Debug)]
pub struct Server {
    process: ServerProcess,
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    /// The first-start client token.
    pub token: String,
    /// A client for it.
    pub http: reqwest::Client,
}

impl Server {
    /// Starts the server on `data_dir` with `envs`, waits until it is ready, reads the client token.
    pub async fn start(data_dir: &Path, envs: &[(String, String)]) -> Result<Server> {
        let exe = binary()?;
        let envs: Vec<(&str, &str)> = envs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let process = ServerProcess::start(&exe, data_dir, &envs).await?;
        Ok(Server {
            url: process.url(),
            token: process.client_token()?,
            http: reqwest::Client::new(),
            process,
        })
    }

    /// The server's log so far.
    pub fn log_text(&self) -> String {
        self.process.log_text()
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// The server's peak resident set (VmHWM), KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        crate::peak_rss_kib_of(&self.process.pid().to_string())
    }

    /// Kills the server, failing if it had already died.
    pub fn stop(mut self) -> Result<()> {
        if let Some(status) = self.process.try_wait()? {
            bail!("iphoto-server died ({status}):\n{}", self.log_text());
        }
        Ok(())
    }
}
