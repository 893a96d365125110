//! The real `iphoto-server` binary as a child process, for the benchmarks that measure it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

/// The real server binary as a child process, next to this benchmark in the same target directory.
#[derive(Debug)]
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    /// The first-start client token.
    pub token: String,
    /// A client for it.
    pub http: reqwest::Client,
    log: PathBuf,
}

impl Server {
    /// Starts the server on `data_dir` with `envs`, waits for `/readyz`, reads the client token.
    pub async fn start(data_dir: &Path, envs: &[(String, String)]) -> Result<Server> {
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
        std::fs::create_dir_all(data_dir)?;
        let log = data_dir.with_extension("log");
        let port = harness::free_port()?;
        let mut command = Command::new(&exe);
        command
            .arg("serve")
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--data-dir")
            .arg(data_dir);
        for key in [
            "DATABASE_URL",
            "STORAGE_BACKEND",
            "STORAGE_LOCAL_PATH",
            "IPHOTO_DATA_DIR",
            "LISTEN",
        ] {
            command.env_remove(key);
        }
        let child = command
            .envs(envs.iter().cloned())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .spawn()
            .with_context(|| format!("starting {}", exe.display()))?;
        let mut server = Server {
            child,
            url: format!("http://127.0.0.1:{port}"),
            token: String::new(),
            http: reqwest::Client::new(),
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = server.child.try_wait()? {
                bail!("iphoto-server exited ({status}):\n{}", server.log_text());
            }
            if let Ok(r) = server.http.get(format!("{}/readyz", server.url)).send().await
                && r.status().is_success()
            {
                break;
            }
            if Instant::now() > deadline {
                bail!("iphoto-server not ready after 60 s:\n{}", server.log_text());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        server.token = std::fs::read_to_string(data_dir.join("client.token"))
            .context("reading the first-start client token")?
            .trim()
            .to_owned();
        Ok(server)
    }

    /// The server's log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The server's peak resident set (VmHWM), KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        crate::peak_rss_kib_of(&self.child.id().to_string())
    }

    /// Kills the server, failing if it had already died.
    pub fn stop(mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!("iphoto-server died ({status}):\n{}", self.log_text());
        }
        Ok(())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
