//! `--version` of the workspace's binaries: `<name> <version> (commit <commit>)`, the commit being what the
//! build script recorded (`cli-support/build/commit.rs`).

use std::path::Path;
use std::process::Command;

/// Asserts that `binary --version` prints `<name> <version> (commit <c>)`, where `c` is `build_commit` (the
/// test crate's `option_env!("IPHOTO_BUILD_COMMIT")`) when the build had one, else the 12-digit HEAD of the
/// checkout at `manifest_dir`, else `unknown`.
pub fn assert_version_names_the_commit(
    binary: &str,
    name: &str,
    version: &str,
    build_commit: Option<&str>,
    manifest_dir: &str,
) {
    let output = Command::new(binary).arg("--version").output().unwrap();
    assert!(output.status.success(), "{binary} --version: {}", output.status);
    let printed = String::from_utf8(output.stdout).unwrap();
    let commit = build_commit.map_or_else(|| head_commit(Path::new(manifest_dir)), str::to_owned);
    assert_eq!(printed.trim(), format!("{name} {version} (commit {commit})"));
}

/// HEAD of the checkout at `dir`, as the build script abbreviates it, or `unknown` outside a checkout.
fn head_commit(dir: &Path) -> String {
    let head = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(dir)
        .output()
        .unwrap();
    if head.status.success() {
        String::from_utf8(head.stdout).unwrap().trim().to_owned()
    } else {
        "unknown".to_owned()
    }
}
