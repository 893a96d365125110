//! The thumbnail worker end to end: a real server with the job routes, originals uploaded by the client
//! surface, the worker leasing over HTTP, downloading through the presigned URL, writing the derivative to
//! the store and posting the result; against {SQLite, PostgreSQL} × {local directory, SeaweedFS}. Then the
//! binary: `worker thumbnail` standalone and `serve --workers thumbnail` in-process, both stopped by SIGTERM.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod app;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use app::{Backends, TestApp, read, sha256_hex};
use image::ImageEncoder as _;
use serde_json::json;
use server::catalog::Scope;
use server::worker::{Outcome, WorkerSettings, run_once};

const BIN: &str = env!("CARGO_BIN_EXE_iphoto-server");

fn noisy_rgb(width: u32, height: u32) -> image::RgbImage {
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    image::RgbImage::from_fn(width, height, |x, y| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        image::Rgb([(x % 251) as u8, (y % 241) as u8, (state & 0xff) as u8])
    })
}

fn jpeg(width: u32, height: u32) -> Vec<u8> {
    let image = noisy_rgb(width, height);
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
        .write_image(image.as_raw(), width, height, image::ExtendedColorType::Rgb8)
        .unwrap();
    out
}

fn png(width: u32, height: u32) -> Vec<u8> {
    let image = noisy_rgb(width, height);
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out)
        .write_image(image.as_raw(), width, height, image::ExtendedColorType::Rgb8)
        .unwrap();
    out
}

/// A HEIC made by libheif's `heif-enc` (x265) from a PNG of noise.
fn heic(width: u32, height: u32) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let png_path = dir.path().join("source.png");
    std::fs::write(&png_path, png(width, height)).unwrap();
    let heic_path = dir.path().join("source.heic");
    let output = Command::new("heif-enc")
        .args(["-q", "60", "-o"])
        .arg(&heic_path)
        .arg(&png_path)
        .output()
        .expect("heif-enc (Debian libheif-examples, installed by scripts/install-test-deps.sh)");
    assert!(output.status.success(), "heif-enc: {output:?}");
    std::fs::read(&heic_path).unwrap()
}

fn corrupt() -> Vec<u8> {
    let mut bytes = vec![0xFF, 0xD8, 0xFF, 0xE0];
    bytes.extend((0..20_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8));
    bytes
}

fn item(uuid: &str, uti: &str, filename: &str, bytes: &[u8]) -> serde_json::Value {
    json!({
        "localIdentifier": format!("{uuid}/L0/001"),
        "kind": "photo", "livePhoto": false, "width": 1600, "height": 1200,
        "takenAt": "2024-05-01T10:00:00+02:00", "modifiedAt": "2024-05-02T10:00:00Z",
        "favorite": false, "hidden": false, "trashed": false,
        "originalFilename": filename, "uti": uti, "edited": false,
        "resources": [{ "type": "original", "size": bytes.len(), "sha256": sha256_hex(bytes), "available": true }]
    })
}

/// Syncs and uploads one original through the client surface.
async fn upload(http: &reqwest::Client, base: &str, token: &str, item: &serde_json::Value, bytes: &[u8]) {
    let answer = http
        .post(format!("{base}/client/iphoto/sync"))
        .bearer_auth(token)
        .json(&json!({ "libraryId": "L", "items": [item] }))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let id = item["localIdentifier"].as_str().unwrap().replace('/', "%2F");
    let response = http
        .post(format!("{base}/client/iphoto/upload/{id}?resource=original"))
        .bearer_auth(token)
        .header("x-content-sha256", sha256_hex(bytes))
        .body(bytes.to_vec())
        .send()
        .await
        .unwrap();
    let (status, body) = read(response).await;
    assert_eq!(status, 200, "{body}");
}

/// A JPEG whose longer edge is `edge`.
fn assert_thumbnail(bytes: &[u8], edge: u32) -> (u32, u32) {
    let image = image::load_from_memory_with_format(bytes, image::ImageFormat::Jpeg).unwrap();
    assert_eq!(image.width().max(image.height()), edge);
    (image.width(), image.height())
}

pub async fn thumbnails_for_jpeg_png_and_heic_and_a_reason_for_corrupt(app: TestApp) {
    let (user, client) = app.user_with_token(Scope::Client).await;
    let web = app.token(&user, Scope::Web).await;
    let worker_token = app.token(&user, Scope::Worker).await;
    let mut originals = vec![
        ("AAAA0001", "public.jpeg", "IMG_0001.JPG", jpeg(1600, 1200)),
        ("AAAA0002", "public.png", "IMG_0002.PNG", png(700, 1400)),
        ("AAAA0003", "public.jpeg", "IMG_0003.JPG", corrupt()),
    ];
    originals.push(("AAAA0004", "public.heic", "IMG_0004.HEIC", heic(1024, 640)));
    for (uuid, uti, name, bytes) in &originals {
        upload(&app.http, &app.url, &client, &item(uuid, uti, name, bytes), bytes).await;
    }

    let settings = WorkerSettings::new(app.url.parse().unwrap(), worker_token.clone());
    let worked = run_once(settings.clone(), app.store.clone(), 10).await.unwrap();
    assert_eq!(worked.len(), originals.len(), "{worked:#?}");
    for w in &worked {
        let uuid = w.job.photo_id.as_str();
        let photo = app.get_json(&web, &format!("/my/photos/{uuid}")).await;
        assert_eq!(photo.0, 200, "{}", photo.1);
        match &w.outcome {
            Outcome::Done(result) => {
                assert_eq!(w.answer.state, "done", "{w:?}");
                assert_eq!(Some(&result.key), w.job.derivative_key.as_ref());
                assert_eq!(result.content_type, "image/jpeg");
                let stored = app
                    .store
                    .get_bytes(&storage::StorageKey::parse(result.key.as_str()).unwrap())
                    .await
                    .unwrap();
                assert_eq!(stored.len() as u64, result.size);
                assert_eq!(assert_thumbnail(&stored, 512), (result.width, result.height));
                // The enrichment result shows the derivative, and the photo now has a thumbnail URL that
                // serves it.
                let text = photo.1.to_string();
                assert!(text.contains(&result.key), "{text}");
                let url = photo.1["thumbnailUrl"].as_str().expect("thumbnailUrl");
                let fetched = reqwest::get(url).await.unwrap();
                assert_eq!(fetched.status(), 200);
                assert_eq!(fetched.bytes().await.unwrap(), stored);
            }
            Outcome::Failed(failure) => {
                assert_eq!(failure.reason, "corrupt", "{w:?}");
                assert!(!failure.message.is_empty());
                assert!(matches!(w.answer.state.as_str(), "queued" | "parked"), "{w:?}");
                assert_eq!(w.answer.failures, 1);
                assert!(
                    photo.1.get("thumbnailUrl").is_none_or(|u| u.is_null()),
                    "{}",
                    photo.1
                );
            }
        }
    }
    let sizes: Vec<_> = worked
        .iter()
        .filter_map(|w| match &w.outcome {
            Outcome::Done(r) => Some((r.width, r.height)),
            Outcome::Failed(_) => None,
        })
        .collect();
    assert_eq!(sizes.len(), originals.len() - 1);
    assert!(
        sizes.contains(&(512, 384)) && sizes.contains(&(256, 512)),
        "{sizes:?}"
    );
    assert!(sizes.contains(&(512, 320)), "the HEIC's thumbnail: {sizes:?}");

    // A completed job is never leased again.
    let again = run_once(settings, app.store.clone(), 10).await.unwrap();
    for w in &again {
        assert!(
            !worked
                .iter()
                .any(|d| d.job.id == w.job.id && matches!(d.outcome, Outcome::Done(_))),
            "a done job was leased again: {w:?}"
        );
    }

    // Another user's worker token is still a worker token, but a client token is not.
    let bad = WorkerSettings::new(app.url.parse().unwrap(), client);
    let error = run_once(bad, app.store.clone(), 1).await.unwrap_err();
    assert!(format!("{error:#}").contains("403"), "{error:#}");
}

matrix!(thumbnails_for_jpeg_png_and_heic_and_a_reason_for_corrupt);

// ---- The binary -------------------------------------------------------------------------------------------

/// Kills the process when the test ends, panics included.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Running {
    /// SIGTERM, then the exit status within `within`.
    fn terminate(&mut self, within: Duration) -> std::process::ExitStatus {
        harness::sigterm(&self.0).unwrap();
        harness::wait_exit(&mut self.0, within).unwrap()
    }
}

/// The server on `data` with `envs`, ready.
async fn serve(data: &std::path::Path, envs: &[(&str, &str)]) -> harness::ServerProcess {
    harness::ServerProcess::start(std::path::Path::new(BIN), data, envs)
        .await
        .unwrap()
}

/// Polls `GET /my/photos/{id}` until it carries a thumbnail URL, then fetches and checks the thumbnail.
async fn wait_for_thumbnail(base: &str, web: &str, id: &str) {
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let response = http
            .get(format!("{base}/my/photos/{id}"))
            .bearer_auth(web)
            .send()
            .await
            .unwrap();
        let (status, photo) = read(response).await;
        assert_eq!(status, 200, "{photo}");
        if let Some(url) = photo["thumbnailUrl"].as_str() {
            let bytes = reqwest::get(url).await.unwrap().bytes().await.unwrap();
            assert_thumbnail(&bytes, 512);
            return;
        }
        assert!(Instant::now() < deadline, "no thumbnail after 60 s: {photo}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The catalog id of the photo with this local identifier, from the web list.
async fn photo_id(base: &str, web: &str, local_identifier: &str) -> String {
    let response = reqwest::Client::new()
        .get(format!("{base}/my/photos/"))
        .bearer_auth(web)
        .send()
        .await
        .unwrap();
    let (status, page) = read(response).await;
    assert_eq!(status, 200, "{page}");
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["localIdentifier"] == local_identifier)
        .unwrap_or_else(|| panic!("{local_identifier} not listed: {page}"))["id"]
        .as_str()
        .unwrap()
        .to_owned()
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

#[tokio::test(flavor = "multi_thread")]
async fn standalone_worker_makes_thumbnails_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = serve(&data, &[]).await;
    let base = server.url();
    let (client, web) = (server.token("client").unwrap(), server.token("web").unwrap());

    let output = Command::new(BIN)
        .args([
            "token",
            "create",
            "--user",
            "admin",
            "--scope",
            "worker",
            "--data-dir",
        ])
        .arg(&data)
        .env_remove("IPHOTO_DATABASE_URL")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let token_file = dir.path().join("worker.token");
    std::fs::write(&token_file, &output.stdout).unwrap();

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
        Command::new(BIN)
            .args(["worker", "thumbnail", "--server", &base, "--token-file"])
            .arg(&token_file)
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
    assert!(exit.success(), "{exit:?}");
}

#[test]
fn worker_cli_names_what_is_wrong() {
    // No server URL: clap names the flag and its variable.
    let output = Command::new(BIN)
        .args(["worker", "thumbnail", "--token-file", "/nonexistent"])
        .env_remove("IPHOTO_WORKER_SERVER")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--server"));

    // A token file that is not there.
    let output = Command::new(BIN)
        .args([
            "worker",
            "thumbnail",
            "--server",
            "http://127.0.0.1:9",
            "--token-file",
        ])
        .arg("/nonexistent/worker.token")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("IPHOTO_WORKER_TOKEN_FILE") && stderr.contains("/nonexistent/worker.token"),
        "{stderr}"
    );

    // A quality out of range.
    let output = Command::new(BIN)
        .args([
            "worker",
            "thumbnail",
            "--server",
            "http://127.0.0.1:9",
            "--token-file",
            "/x",
        ])
        .args(["--thumbnail-quality", "0"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--thumbnail-quality"));

    // The local backend without a path.
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("t");
    std::fs::write(&token_file, "secret\n").unwrap();
    let output = Command::new(BIN)
        .args([
            "worker",
            "thumbnail",
            "--server",
            "http://127.0.0.1:9",
            "--token-file",
        ])
        .arg(&token_file)
        .env_remove("IPHOTO_STORAGE_LOCAL_PATH")
        .env_remove("IPHOTO_STORAGE_BACKEND")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("IPHOTO_STORAGE_LOCAL_PATH"));
}
