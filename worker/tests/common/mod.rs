//! What the worker's end-to-end tests share: the real `iphoto-server` binary (built up to date by the
//! harness), originals made on the fly, uploads through the client surface, checks of a derivative.

#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use image::ImageEncoder as _;
use serde_json::json;

/// The `iphoto-worker` binary of this package.
pub const WORKER_BIN: &str = env!("CARGO_BIN_EXE_iphoto-worker");

/// The `iphoto-server` binary, built up to date in this test's target directory.
pub fn server_binary() -> PathBuf {
    harness::workspace_binary("iphoto-server", "iphoto-server").unwrap()
}

/// The server on `data` with `envs`, ready.
pub async fn serve(data: &Path, envs: &[(&str, &str)]) -> harness::ServerProcess {
    harness::ServerProcess::start(&server_binary(), data, envs)
        .await
        .unwrap()
}

/// Kills the process when the test ends, panics included.
pub struct Running(pub std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Running {
    /// SIGTERM, then the exit status within `within`.
    pub fn terminate(&mut self, within: Duration) -> std::process::ExitStatus {
        harness::sigterm(&self.0).unwrap();
        harness::wait_exit(&mut self.0, within).unwrap()
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    storage::Sha256Digest::of(bytes).to_hex()
}

/// Status and JSON body of an answer.
pub async fn read(response: reqwest::Response) -> (u16, serde_json::Value) {
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let json =
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("status {status}, body not JSON: {text}"));
    (status, json)
}

fn noisy_rgb(width: u32, height: u32) -> image::RgbImage {
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    image::RgbImage::from_fn(width, height, |x, y| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        image::Rgb([(x % 251) as u8, (y % 241) as u8, (state & 0xff) as u8])
    })
}

pub fn jpeg(width: u32, height: u32) -> Vec<u8> {
    let image = noisy_rgb(width, height);
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
        .write_image(image.as_raw(), width, height, image::ExtendedColorType::Rgb8)
        .unwrap();
    out
}

pub fn png(width: u32, height: u32) -> Vec<u8> {
    let image = noisy_rgb(width, height);
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out)
        .write_image(image.as_raw(), width, height, image::ExtendedColorType::Rgb8)
        .unwrap();
    out
}

/// A HEIC made by libheif's `heif-enc` (x265) from a PNG of noise.
pub fn heic(width: u32, height: u32) -> Vec<u8> {
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

/// JPEG magic followed by noise.
pub fn corrupt() -> Vec<u8> {
    let mut bytes = vec![0xFF, 0xD8, 0xFF, 0xE0];
    bytes.extend((0..20_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8));
    bytes
}

/// A sync item with one original of `bytes`.
pub fn item(uuid: &str, uti: &str, filename: &str, bytes: &[u8]) -> serde_json::Value {
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
pub async fn upload(http: &reqwest::Client, base: &str, token: &str, item: &serde_json::Value, bytes: &[u8]) {
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

/// A JPEG whose longer edge is `edge`; its size.
pub fn assert_thumbnail(bytes: &[u8], edge: u32) -> (u32, u32) {
    let image = image::load_from_memory_with_format(bytes, image::ImageFormat::Jpeg).unwrap();
    assert_eq!(image.width().max(image.height()), edge);
    (image.width(), image.height())
}

/// `GET /my/photos/{id}`: status and body.
pub async fn photo(base: &str, web: &str, id: &str) -> (u16, serde_json::Value) {
    let response = reqwest::Client::new()
        .get(format!("{base}/my/photos/{id}"))
        .bearer_auth(web)
        .send()
        .await
        .unwrap();
    read(response).await
}

/// Polls `GET /my/photos/{id}` until it carries a thumbnail URL, then fetches and checks the thumbnail.
pub async fn wait_for_thumbnail(base: &str, web: &str, id: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, photo) = photo(base, web, id).await;
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
pub async fn photo_id(base: &str, web: &str, local_identifier: &str) -> String {
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
