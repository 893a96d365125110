//! The real `iphoto-server` binary as a child process, on a port of its own, killed on drop.
//!
//! A free port is only free when it is picked: another test's server, SeaweedFS or an outgoing connection may
//! take it before the server binds it. Then the server exits ("IPHOTO_LISTEN: cannot listen") while the other process
//! answers `/readyz` on that port, and a test would send its requests (and its tokens) to a stranger. So a
//! start is only ready when this process's own first-start client token is accepted there, and a start whose
//! port was taken is tried again on another port.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use crate::process::{free_port, sigterm, wait_exit};

/// The settings a test never inherits from the shell running it: each start says what it wants in `envs`. The
/// names from before the `IPHOTO_` scheme that the server still reads are cleared too.
const CLEARED_ENV: [&str; 15] = [
    "IPHOTO_DATABASE_URL",
    "IPHOTO_LOG",
    "IPHOTO_LOG_JSON",
    "DATABASE_URL",
    "STORAGE_BACKEND",
    "STORAGE_LOCAL_PATH",
    "IPHOTO_STORAGE_BACKEND",
    "IPHOTO_STORAGE_LOCAL_PATH",
    "IPHOTO_DATA_DIR",
    "IPHOTO_LISTEN",
    "IPHOTO_WORKERS",
    "IPHOTO_HTTP_HEADER_TIMEOUT_SECS",
    "IPHOTO_HTTP_BODY_IDLE_SECS",
    "IPHOTO_HTTP_REQUEST_TIMEOUT_SECS",
    "IPHOTO_HTTP_MAX_CONNECTIONS",
];

/// How many ports a start tries before it gives up.
const PORT_ATTEMPTS: usize = 5;

/// How long a start waits for the server to be ready.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// A running `iphoto-server serve` on `127.0.0.1`, its log in `iphoto-server.log` in its data directory.
#[derive(Debug)]
pub struct ServerProcess {
    child: Child,
    binary: PathBuf,
    data_dir: PathBuf,
    envs: Vec<(String, String)>,
    port: u16,
    log: PathBuf,
    http: reqwest::Client,
}

enum Started {
    Ready,
    PortTaken,
}

impl ServerProcess {
    /// Starts `binary serve` on `data_dir` with `envs` and waits until it is ready and answering as itself.
    pub async fn start(binary: &Path, data_dir: &Path, envs: &[(&str, &str)]) -> Result<ServerProcess> {
        std::fs::create_dir_all(data_dir).with_context(|| format!("creating {}", data_dir.display()))?;
        let envs: Vec<(String, String)> = envs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let log = data_dir.join("iphoto-server.log");
        for _ in 0..PORT_ATTEMPTS {
            let port = free_port()?;
            let mut server = ServerProcess {
                child: spawn(binary, data_dir, &envs, port, &log)?,
                binary: binary.to_path_buf(),
                data_dir: data_dir.to_path_buf(),
                envs: envs.clone(),
                port,
                log: log.clone(),
                // A readiness probe never waits long: a port taken by a listener that never answers (the
                // taken-port case) must read as "not ready" while the process's exit is awaited.
                http: reqwest::Client::builder()
                    .timeout(Duration::from_secs(2))
                    .build()
                    .context("building the readiness client")?,
            };
            if let Started::Ready = server.wait_started().await? {
                return Ok(server);
            }
        }
        bail!("iphoto-server found no free port in {PORT_ATTEMPTS} attempts")
    }

    /// Starts the server again on the same port and data directory (after [`ServerProcess::kill`] or a
    /// stop), for clients that hold its URL.
    pub async fn restart(&mut self) -> Result<()> {
        self.kill();
        self.child = spawn(&self.binary, &self.data_dir, &self.envs, self.port, &self.log)?;
        match self.wait_started().await? {
            Started::Ready => Ok(()),
            Started::PortTaken => bail!(
                "port {} was taken by another process while the server was down:\n{}",
                self.port,
                self.log_text()
            ),
        }
    }

    /// Waits until `/readyz` answers and the first-start client token is accepted (so the answer is this
    /// process's), or until the process exits (because its port was taken, or with an error).
    async fn wait_started(&mut self) -> Result<Started> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait()? {
                let log = self.log_text();
                if log.contains("IPHOTO_LISTEN: cannot listen") {
                    return Ok(Started::PortTaken);
                }
                bail!("iphoto-server exited ({status}) before it was ready:\n{log}");
            }
            if self.answers_as_itself().await {
                return Ok(Started::Ready);
            }
            if Instant::now() > deadline {
                bail!(
                    "iphoto-server not ready after {} s:\n{}",
                    READY_TIMEOUT.as_secs(),
                    self.log_text()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn answers_as_itself(&self) -> bool {
        let ready = self.http.get(format!("{}/readyz", self.url())).send().await;
        if !ready.is_ok_and(|r| r.status().is_success()) {
            return false;
        }
        let Ok(token) = self.client_token() else {
            return false;
        };
        let stats = self
            .http
            .get(format!("{}/client/iphoto/stats", self.url()))
            .bearer_auth(token)
            .send()
            .await;
        stats.is_ok_and(|r| r.status().is_success())
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The first-start client token, from the data directory.
    pub fn client_token(&self) -> Result<String> {
        self.token("client")
    }

    /// The first-start token of `scope` (`client`, `web`, `worker`, `admin`), from the data directory.
    pub fn token(&self, scope: &str) -> Result<String> {
        let path = self.data_dir.join(format!("{scope}.token"));
        Ok(std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?
            .trim()
            .to_owned())
    }

    /// The server's log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The exit status, if the process has ended.
    pub fn try_wait(&mut self) -> Result<Option<ExitStatus>> {
        Ok(self.child.try_wait()?)
    }

    /// Sends SIGTERM (a graceful stop) and returns at once.
    pub fn sigterm(&self) -> Result<()> {
        sigterm(&self.child)
    }

    /// Waits up to `timeout` for the process to exit (blocking the thread: call it with nothing else to do).
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<ExitStatus> {
        wait_exit(&mut self.child, timeout)
    }

    /// Sends SIGTERM and waits up to `timeout` for the process to exit.
    pub fn terminate(&mut self, timeout: Duration) -> Result<ExitStatus> {
        self.sigterm()?;
        self.wait_exit(timeout)
    }

    /// Kills the process (SIGKILL) and reaps it; nothing if it has ended.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `binary serve` on `127.0.0.1:<port>` over `data_dir`, with only `envs` of the settings in [`CLEARED_ENV`].
fn spawn(binary: &Path, data_dir: &Path, envs: &[(String, String)], port: u16, log: &Path) -> Result<Child> {
    let mut command = Command::new(binary);
    command
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--data-dir"])
        .arg(data_dir);
    for key in CLEARED_ENV {
        command.env_remove(key);
    }
    let log = std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
    command
        .envs(envs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))
}
