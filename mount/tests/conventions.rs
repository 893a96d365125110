//! `iphoto-mount --version` names the commit the binary was built from (the flags' variables and the README's
//! table are checked by the unit tests in `main.rs`, where the parser is).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_iphoto-mount");
const NAME: &str = "iphoto-mount";

#[test]
fn version_names_the_commit_of_head() {
    let output = Command::new(BIN).arg("--version").output().unwrap();
    assert!(output.status.success());
    let version = String::from_utf8(output.stdout).unwrap();
    assert_eq!(
        version.trim(),
        format!(
            "{NAME} {} (commit {})",
            env!("CARGO_PKG_VERSION"),
            expected_commit()
        )
    );
}

/// What the build script records: `IPHOTO_BUILD_COMMIT` when the build had it, else HEAD, else `unknown`.
fn expected_commit() -> String {
    if let Some(commit) = option_env!("IPHOTO_BUILD_COMMIT") {
        return commit.to_owned();
    }
    let head = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    if head.status.success() {
        String::from_utf8(head.stdout).unwrap().trim().to_owned()
    } else {
        "unknown".to_owned()
    }
}
