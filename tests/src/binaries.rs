//! The workspace's own binaries for tests of another crate: a dev-dependency builds a crate's library, never
//! its binaries, and `CARGO_BIN_EXE_*` names only the tested package's own.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;

use anyhow::{Context as _, Result, bail};

/// `<target>/<profile>/<bin>` of package `package`, built — or brought up to date, so a test never runs a
/// stale binary — by cargo into the target directory and profile of the running test, once per process.
pub fn workspace_binary(package: &str, bin: &str) -> Result<PathBuf> {
    static BUILT: Mutex<Option<HashMap<String, PathBuf>>> = Mutex::new(None);
    let mut built = BUILT.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let built = built.get_or_insert_with(HashMap::new);
    if let Some(path) = built.get(bin) {
        return Ok(path.clone());
    }
    // A test runs as `<target>/<profile>/deps/<test>-<hash>`.
    let exe = std::env::current_exe().context("the test's own path")?;
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .context("the test binary is not under <target>/<profile>/deps")?;
    let target_dir = profile_dir
        .parent()
        .context("the profile directory has no parent")?;
    let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => "dev",
        Some(other) => other,
    };
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into());
    let status = Command::new(cargo)
        .args([
            "build",
            "--quiet",
            "--profile",
            profile,
            "-p",
            package,
            "--bin",
            bin,
        ])
        .env("CARGO_TARGET_DIR", target_dir)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .with_context(|| format!("running cargo build -p {package} --bin {bin}"))?;
    if !status.success() {
        bail!("cargo build -p {package} --bin {bin}: {status}");
    }
    let path = profile_dir.join(bin);
    if !path.is_file() {
        bail!("cargo build -p {package} --bin {bin} made no {}", path.display());
    }
    built.insert(bin.to_owned(), path.clone());
    Ok(path)
}
