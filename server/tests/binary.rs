//! The real `iphoto-server` binary: embedded defaults on an empty directory, the admin CLI, clear errors.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::PermissionsExt as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_iphoto-server");

/// Kills the server when the test ends, panics included.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(data: &std::path::Path, port: u16, envs: &[(&str, &str)]) -> Running {
    let child = Command::new(BIN)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--data-dir"])
        .arg(data)
        .env_remove("DATABASE_URL")
        .env_remove("STORAGE_BACKEND")
        .envs(envs.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Running(child)
}

async fn wait_ready(url: &str) -> reqwest::Response {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(response) = reqwest::get(url).await {
            return response;
        }
        assert!(Instant::now() < deadline, "server did not answer at {url}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn serve_on_an_empty_directory_is_ready_with_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let port = harness::free_port().unwrap();
    let mut server = serve(&data, port, &[]);
    let ready = wait_ready(&format!("http://127.0.0.1:{port}/readyz")).await;
    assert_eq!(ready.status(), 200);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["status"], "ready");

    for scope in ["client", "web", "admin"] {
        let path = data.join(format!("{scope}.token"));
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{scope}.token must be private");
    }
    let client = std::fs::read_to_string(data.join("client.token")).unwrap();
    let stats = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/client/iphoto/stats"))
        .bearer_auth(client.trim())
        .send()
        .await
        .unwrap();
    assert_eq!(stats.status(), 200);
    assert_eq!(
        std::fs::metadata(data.join("presign.secret"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );

    // SIGTERM: a graceful stop, exit 0.
    let status = Command::new("kill")
        .args(["-TERM", &server.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let exit = loop {
        if let Some(exit) = server.0.try_wait().unwrap() {
            break exit;
        }
        assert!(Instant::now() < deadline, "server did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "{exit:?}");

    // A second start keeps the first start's tokens.
    let _again = serve(&data, port, &[]);
    wait_ready(&format!("http://127.0.0.1:{port}/readyz")).await;
    assert_eq!(
        std::fs::read_to_string(data.join("client.token")).unwrap(),
        client
    );
}

#[test]
fn admin_cli_manages_users_and_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let output = Command::new(BIN)
            .args(args)
            .arg("--data-dir")
            .arg(dir.path())
            .env_remove("DATABASE_URL")
            .output()
            .unwrap();
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    assert!(run(&["migrate"]).0);
    assert!(run(&["user", "add", "alice"]).0);
    let (ok, _, err) = run(&["user", "add", "alice"]);
    assert!(!ok && err.contains("alice"), "a taken name is refused: {err}");
    let (ok, token, _) = run(&["token", "create", "--user", "alice", "--scope", "client"]);
    assert!(ok);
    assert!(token.trim().starts_with("ips_"), "{token}");
    let (ok, _, err) = run(&["token", "create", "--user", "alice", "--scope", "root"]);
    assert!(!ok && err.contains("scope"), "{err}");
    let (ok, _, err) = run(&["token", "create", "--user", "bob", "--scope", "web"]);
    assert!(!ok && err.contains("bob"), "{err}");
    let (_, list, _) = run(&["token", "list", "--user", "alice"]);
    assert!(list.contains("client") && list.contains("active"), "{list}");
    assert!(!list.contains(token.trim()), "listings never show a secret");
    let id = list.split('\t').next().unwrap();
    assert!(run(&["token", "revoke", id]).0);
    let (_, list, _) = run(&["token", "list"]);
    assert!(list.contains("revoked"), "{list}");
    let (ok, _, err) = run(&["token", "revoke", "no-such-id"]);
    assert!(!ok && err.contains("no-such-id"), "{err}");
}

#[test]
fn bad_configuration_names_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .env("STORAGE_BACKEND", "local")
        .env("S3_BUCKET", "photos")
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(err.contains("S3_BUCKET"), "{err}");
    let output = Command::new(BIN)
        .args(["serve", "--data-dir"])
        .arg(dir.path())
        .env("DATABASE_URL", "sqlite::memory:")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("DATABASE_URL"));
}
