//! The operator-facing conventions of the `iphoto-server` binary: every flag reads an `IPHOTO_` variable, the
//! README's table lists exactly those (with the flags and defaults of the code), DESIGN.md's older names
//! still work with a warning, and `--version` names the commit the binary was built from.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use clap::CommandFactory as _;
use server::config::Cli;

mod served;

use served::BIN;

#[test]
fn every_flag_reads_an_iphoto_variable() {
    assert_eq!(
        cli_support::env::violations(&Cli::command()),
        Vec::<String>::new()
    );
}

#[test]
fn the_readme_table_lists_every_variable_with_its_flag_and_default() {
    let readme = include_str!("../../README.md");
    assert_eq!(
        cli_support::env::readme_mismatches(&Cli::command(), "iphoto-server", readme),
        Vec::<String>::new(),
        "the README's tables of variables and the server's flags disagree"
    );
}

#[test]
fn version_names_the_commit_of_head() {
    harness::assert_version_names_the_commit(
        BIN,
        "iphoto-server",
        env!("CARGO_PKG_VERSION"),
        option_env!("IPHOTO_BUILD_COMMIT"),
        env!("CARGO_MANIFEST_DIR"),
    );
}

/// `migrate` with a clean environment but for `vars`.
fn migrate(data: &std::path::Path, vars: &[(&str, &str)]) -> std::process::Output {
    let mut command = Command::new(BIN);
    command.arg("migrate").arg("--data-dir").arg(data);
    for (name, _) in std::env::vars() {
        if name.starts_with("IPHOTO_")
            || name == "DATABASE_URL"
            || name.starts_with("STORAGE_")
            || name.starts_with("S3_")
        {
            command.env_remove(name);
        }
    }
    command.envs(vars.iter().copied()).output().unwrap()
}

#[test]
fn designs_database_url_is_still_read_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let elsewhere = dir.path().join("elsewhere.sqlite3");
    let output = migrate(
        &dir.path().join("data"),
        &[
            ("DATABASE_URL", elsewhere.to_str().unwrap()),
            ("LISTEN", "0.0.0.0:9"),
        ],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(elsewhere.exists(), "the catalog went where DATABASE_URL says");
    assert!(!dir.path().join("data/catalog.sqlite3").exists());
    assert!(
        stderr.contains("DATABASE_URL is deprecated: read for IPHOTO_DATABASE_URL"),
        "{stderr}"
    );
    assert!(
        stderr.contains("LISTEN is no longer read: set IPHOTO_LISTEN instead"),
        "{stderr}"
    );

    // The new name wins, and the old one is called out as ignored.
    let newer = dir.path().join("newer.sqlite3");
    let output = migrate(
        &dir.path().join("data"),
        &[
            ("DATABASE_URL", elsewhere.to_str().unwrap()),
            ("IPHOTO_DATABASE_URL", newer.to_str().unwrap()),
        ],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(newer.exists());
    assert!(stderr.contains("DATABASE_URL is set but ignored"), "{stderr}");
}

#[test]
fn a_bad_log_filter_names_its_variable() {
    let dir = tempfile::tempdir().unwrap();
    let output = migrate(dir.path(), &[("IPHOTO_LOG", "info,sqlx=loud")]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--log / IPHOTO_LOG") && stderr.contains("sqlx=loud"),
        "{stderr}"
    );
}
