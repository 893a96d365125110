//! PostgreSQL for catalog tests: a private throwaway cluster on a free loopback port (initdb as the `postgres`
//! system user when run as root, since initdb refuses root), or the server named by `TEST_DATABASE_URL`.
//! Each [`Postgres::fresh_database`] call creates a new, empty database.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use crate::process::{Supervised, free_port, shell_quote, unique_name};

/// A PostgreSQL server tests may create databases on.
pub struct Postgres {
    /// `postgres://user@host:port` without a database name.
    base_url: String,
    /// Directory with `psql` and friends.
    bin_dir: Option<PathBuf>,
    _supervisor: Option<Supervised>,
}

impl std::fmt::Debug for Postgres {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Postgres").finish_non_exhaustive()
    }
}

impl Postgres {
    /// One server shared by every test of this process, stopped when the process exits.
    pub fn shared() -> &'static Postgres {
        static SHARED: OnceLock<Postgres> = OnceLock::new();
        SHARED.get_or_init(|| Self::start().expect("starting PostgreSQL"))
    }

    /// `TEST_DATABASE_URL` when set, else a private cluster.
    pub fn start() -> Result<Postgres> {
        if let Ok(url) = std::env::var("TEST_DATABASE_URL") {
            let base_url = match url.rsplit_once('/') {
                Some((base, _db)) if base.contains("://") && base.matches('/').count() >= 2 => {
                    base.to_owned()
                }
                _ => url,
            };
            return Ok(Postgres {
                base_url,
                bin_dir: bin_dir().ok(),
                _supervisor: None,
            });
        }
        let bin = bin_dir()?;
        let dir = tempfile::Builder::new()
            .prefix("iphoto-postgres-")
            .tempdir()?
            .keep();
        let data = dir.join("data");
        let port = free_port()?;
        let as_postgres = running_as_root();
        let run = |cmd: String| {
            if as_postgres {
                format!("runuser -u postgres -- {cmd}")
            } else {
                cmd
            }
        };
        if as_postgres {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&dir)
                .status()?;
            if !status.success() {
                bail!(
                    "chown of {} to postgres failed (is the postgresql package installed?)",
                    dir.display()
                );
            }
        }
        let d = shell_quote(&data.display().to_string());
        let sock = shell_quote(&dir.display().to_string());
        let b = |tool: &str| shell_quote(&bin.join(tool).display().to_string());
        let start = format!(
            "{init} && {start_cmd} || exit 1",
            init = run(format!(
                "{} -D {d} -A trust -U postgres --no-sync -E UTF8 --locale=C",
                b("initdb")
            )),
            start_cmd = run(format!(
                "{} -D {d} -l {d}/server.log -o {} -w start",
                b("pg_ctl"),
                shell_quote(&format!(
                    "-h 127.0.0.1 -p {port} -k {} -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200",
                    dir.display()
                ))
            )),
        );
        let stop = format!(
            "{}; rm -rf {sock}",
            run(format!(
                "{} -D {d} -m immediate stop >/dev/null 2>&1",
                b("pg_ctl")
            ))
        );
        // Inside the cluster's directory, so the stop script removes it too.
        let log = dir.join("supervisor.log");
        let supervisor = Supervised::spawn(&start, &stop, &log)?;
        let postgres = Postgres {
            base_url: format!("postgres://postgres@127.0.0.1:{port}"),
            bin_dir: Some(bin),
            _supervisor: Some(supervisor),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while postgres.psql("postgres", "SELECT 1").is_err() {
            if Instant::now() > deadline {
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                bail!("PostgreSQL did not start on port {port}:\n{text}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(postgres)
    }

    /// Creates an empty database and returns its URL.
    pub fn fresh_database(&self) -> Result<String> {
        let name = unique_name("test").replace('-', "_");
        self.psql("postgres", &format!("CREATE DATABASE {name}"))?;
        Ok(format!("{}/{name}", self.base_url))
    }

    /// Runs one SQL statement on `database` with psql.
    pub fn psql(&self, database: &str, sql: &str) -> Result<String> {
        let psql = self
            .bin_dir
            .as_ref()
            .map_or_else(|| PathBuf::from("psql"), |b| b.join("psql"));
        let output = Command::new(psql)
            .arg(format!("{}/{database}", self.base_url))
            .args(["-v", "ON_ERROR_STOP=1", "-qAt", "-c", sql])
            .output()
            .context("running psql")?;
        if !output.status.success() {
            bail!("psql failed: {}", String::from_utf8_lossy(&output.stderr));
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// The newest `/usr/lib/postgresql/<version>/bin`, or `PG_BIN_DIR`.
fn bin_dir() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("PG_BIN_DIR") {
        return Ok(dir.into());
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .context("no /usr/lib/postgresql: install the postgresql package (bash .ci/run does)")?
        .filter_map(|e| e.ok())
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, bin)| bin.join("initdb").exists())
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, bin)| bin)
        .context("no PostgreSQL server binaries (initdb) under /usr/lib/postgresql")
}
