//! The operator-facing conventions of the `iphoto-agent` binary: every flag reads an `IPHOTO_` variable, the
//! README's table lists exactly those with the code's flags and defaults, `--log-json` writes JSON lines, and
//! `--version` names the commit the binary was built from.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use clap::CommandFactory as _;
use iphoto_agent::cli::Cli;

const BIN: &str = env!("CARGO_BIN_EXE_iphoto-agent");
const NAME: &str = "iphoto-agent";

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
        cli_support::env::readme_mismatches(&Cli::command(), NAME, readme),
        Vec::<String>::new(),
        "the README's tables of variables and the agent's flags disagree"
    );
}

#[test]
fn log_json_lines_are_json_without_colour() {
    // A scan of a missing library fails after logging is set up; its warning about DESIGN.md's storage
    // name is a log line.
    let output = Command::new(BIN)
        .args(["scan", "--library", "/nonexistent/Photos Library.photoslibrary"])
        .env("IPHOTO_LOG_JSON", "true")
        .env("S3_BUCKET", "photos")
        .env_remove("IPHOTO_S3_BUCKET")
        .output()
        .unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(!stderr.contains('\u{1b}'), "{stderr}");
    let logged: Vec<serde_json::Value> = stderr
        .lines()
        .filter(|line| line.starts_with('{'))
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert!(
        logged.iter().any(|l| l["level"] == "WARN"
            && l["fields"]["message"]
                .as_str()
                .unwrap()
                .starts_with("S3_BUCKET is deprecated")),
        "{stderr}"
    );
}

#[test]
fn version_names_the_commit_of_head() {
    harness::assert_version_names_the_commit(
        BIN,
        NAME,
        env!("CARGO_PKG_VERSION"),
        option_env!("IPHOTO_BUILD_COMMIT"),
        env!("CARGO_MANIFEST_DIR"),
    );
}
