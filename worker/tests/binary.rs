//! The worker's entries as a person runs them, against the real `iphoto-server`: the `iphoto-worker`
//! binary, the same worker as `iphoto-server worker thumbnail`, and in-process in `serve --workers
//! thumbnail`; each makes a thumbnail and stops on SIGTERM, and a wrong setting is named.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Running, WORKER_BIN, item, jpeg, photo_id, serve, server_binary, upload, wait_for_thumbnail};

/// The two commands that start the standalone thumbnail worker: `iphoto-worker thumbnail` and
/// `iphoto-server worker thumbnail`.
fn worker_commands() -> [(PathBuf, Vec<&'static str>); 2] {
    [
        (PathBuf::from(WORKER_BIN), vec!["thumbnail"]),
        (server_binary(), vec!["worker", "thumbnail"]),
    ]
}

/// A server with one JPEG uploaded, then `program args…` pointed at it: the thumbnail appears, and SIGTERM
/// stops the worker with success.
async fn standalone_worker_makes_a_thumbnail(program: PathBuf, args: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = serve(&data, &[]).await;
    let base = server.url();
    let (client, web) = (server.token("client").unwrap(), server.token("web").unwrap());
    let bytes = jpeg(900, 1800);
    upload(
        &reqwest::Client::new(),
        &base,
        &client,
        &item("CCCC0001", "public.jpeg", "c.jpg", &bytes),
        &bytes,
    )
    .await;
    let mut worker = Running(
        Command::new(&program)
            .args(args)
            .args(["--server", &base, "--token-file"])
            .arg(data.join("worker.token"))
            .env("IPHOTO_STORAGE_LOCAL_PATH", data.join("blobs"))
            .env_remove("IPHOTO_STORAGE_BACKEND")
            .env_remove("IPHOTO_PRESIGN_SECRET")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let id = photo_id(&base, &web, "CCCC0001/L0/001").await;
    wait_for_thumbnail(&base, &web, &id).await;
    let exit = worker.terminate(Duration::from_secs(20));
    assert!(exit.success(), "{} {args:?}: {exit:?}", program.display());
}

#[tokio::test(flavor = "multi_thread")]
async fn iphoto_worker_makes_thumbnails_and_stops_on_sigterm() {
    standalone_worker_makes_a_thumbnail(WORKER_BIN.into(), &["thumbnail"]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn server_worker_subcommand_makes_thumbnails_and_stops_on_sigterm() {
    standalone_worker_makes_a_thumbnail(server_binary(), &["worker", "thumbnail"]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_with_in_process_workers_makes_thumbnails_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = serve(
        &data,
        &[
            ("IPHOTO_WORKERS", "thumbnail"),
            ("IPHOTO_WORKER_CONCURRENCY", "2"),
        ],
    )
    .await;
    let base = server.url();
    let (client, web) = (server.token("client").unwrap(), server.token("web").unwrap());
    let bytes = jpeg(2000, 1000);
    upload(
        &reqwest::Client::new(),
        &base,
        &client,
        &item("BBBB0001", "public.jpeg", "a.jpg", &bytes),
        &bytes,
    )
    .await;
    let id = photo_id(&base, &web, "BBBB0001/L0/001").await;
    wait_for_thumbnail(&base, &web, &id).await;
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(data.join("worker.token"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    let exit = server.terminate(Duration::from_secs(20)).unwrap();
    assert!(exit.success(), "{exit:?}");
}

#[test]
fn worker_cli_names_what_is_wrong() {
    for (program, args) in worker_commands() {
        let run = |command: &mut Command| {
            let output = command.output().unwrap();
            assert!(!output.status.success(), "{} {args:?}", program.display());
            String::from_utf8_lossy(&output.stderr).into_owned()
        };

        // No server URL: clap names the flag and its variable.
        let stderr = run(Command::new(&program)
            .args(&args)
            .args(["--token-file", "/nonexistent"])
            .env_remove("IPHOTO_WORKER_SERVER"));
        assert!(stderr.contains("--server"), "{stderr}");

        // A token file that is not there.
        let stderr = run(Command::new(&program)
            .args(&args)
            .args(["--server", "http://127.0.0.1:9", "--token-file"])
            .arg("/nonexistent/worker.token"));
        assert!(
            stderr.contains("IPHOTO_WORKER_TOKEN_FILE") && stderr.contains("/nonexistent/worker.token"),
            "{stderr}"
        );

        // A quality out of range.
        let stderr = run(Command::new(&program).args(&args).args([
            "--server",
            "http://127.0.0.1:9",
            "--token-file",
            "/x",
            "--thumbnail-quality",
            "0",
        ]));
        assert!(stderr.contains("--thumbnail-quality"), "{stderr}");

        // The local backend without a path.
        let dir = tempfile::tempdir().unwrap();
        let token_file = dir.path().join("t");
        std::fs::write(&token_file, "secret\n").unwrap();
        let stderr = run(Command::new(&program)
            .args(&args)
            .args(["--server", "http://127.0.0.1:9", "--token-file"])
            .arg(&token_file)
            .env_remove("IPHOTO_STORAGE_LOCAL_PATH")
            .env_remove("IPHOTO_STORAGE_BACKEND"));
        assert!(stderr.contains("IPHOTO_STORAGE_LOCAL_PATH"), "{stderr}");
    }
}
