//! `deploy/install.sh` staged into a temporary root (`--root`): the files it writes and their modes, that a
//! second run changes nothing it should keep (idempotent), and `--uninstall` / `--purge`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use clap::CommandFactory as _;

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/install.sh")
}

fn run(args: &[&str]) -> std::process::Output {
    Command::new("bash").arg(script()).args(args).output().unwrap()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn installs_idempotently_and_uninstalls() {
    let syntax = Command::new("bash").arg("-n").arg(script()).output().unwrap();
    assert!(
        syntax.status.success(),
        "{}",
        String::from_utf8_lossy(&syntax.stderr)
    );

    let root = tempfile::tempdir().unwrap();
    let r = root.path().to_str().unwrap();
    let binary = env!("CARGO_BIN_EXE_iphoto-server");
    let install = || {
        let out = run(&["--root", r, "--binary", binary]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    };
    install();
    let bin = root.path().join("usr/local/bin/iphoto-server");
    let env = root.path().join("etc/iphoto/iphoto-server.env");
    let unit = root.path().join("etc/systemd/system/iphoto-server.service");
    let data = root.path().join("var/lib/iphoto");
    assert_eq!(mode(&bin), 0o755);
    assert_eq!(mode(&env), 0o600, "the settings may hold credentials");
    assert_eq!(mode(&data), 0o750);
    assert_eq!(mode(&unit), 0o644);
    let unit_text = std::fs::read_to_string(&unit).unwrap();
    assert!(unit_text.contains("ExecStart=/usr/local/bin/iphoto-server serve"));
    assert!(unit_text.contains("EnvironmentFile=/etc/iphoto/iphoto-server.env"));
    // Every variable `serve` reads is offered in the settings file (but the data directory, which the unit
    // sets), so the file cannot fall behind a new flag.
    let env_text = std::fs::read_to_string(&env).unwrap();
    let command = server::config::Cli::command();
    let serve = command.find_subcommand("serve").unwrap();
    let variables: std::collections::BTreeSet<String> = cli_support::env::flags(&command)
        .into_iter()
        .filter(|flag| flag.path.is_empty())
        .chain(cli_support::env::flags(serve))
        .filter_map(|flag| flag.env)
        .filter(|variable| variable != "IPHOTO_DATA_DIR")
        .collect();
    assert!(variables.len() > 30, "{variables:?}");
    for variable in variables {
        assert!(
            env_text.contains(&format!("\n#{variable}=")),
            "{variable} is not offered"
        );
    }
    assert!(unit_text.contains("Environment=IPHOTO_DATA_DIR=/var/lib/iphoto"));

    // A second run keeps the operator's settings and the data, and puts the modes back.
    std::fs::write(&env, "IPHOTO_LISTEN=0.0.0.0:9000\n").unwrap();
    std::fs::set_permissions(&env, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::write(data.join("catalog.sqlite3"), b"data").unwrap();
    install();
    assert_eq!(
        std::fs::read_to_string(&env).unwrap(),
        "IPHOTO_LISTEN=0.0.0.0:9000\n"
    );
    assert_eq!(mode(&env), 0o600);
    assert!(data.join("catalog.sqlite3").exists());

    let out = run(&["--root", r, "--uninstall"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!bin.exists() && !unit.exists());
    assert!(
        env.exists() && data.join("catalog.sqlite3").exists(),
        "data and settings are kept"
    );
    let out = run(&["--root", r, "--uninstall", "--purge"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!env.exists() && !data.exists());
}

#[test]
fn bad_arguments_are_refused_with_a_reason() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path().to_str().unwrap();
    let out = run(&["--frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown argument"));
    let out = run(&["--root", r, "--binary", "/nonexistent/iphoto-server"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no iphoto-server binary"));
    assert!(
        !root.path().join("usr/local/bin/iphoto-server").exists(),
        "nothing installed"
    );
}
