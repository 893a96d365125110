//! The served API against its own OpenAPI document, by schemathesis (PyPI, the version pinned in
//! `scripts/install-test-deps.sh`): the real `iphoto-server` binary, every operation of `/openapi.json`, every
//! check (`--checks all`: no 5xx, documented statuses, content types and headers, response schemas, schema-valid
//! requests accepted and schema-violating ones rejected, missing auth refused, unsupported methods answered
//! 405 with `Allow`, …), with each surface's own bearer token, a bounded number of examples per operation and
//! a fixed seed. Zero failures of any kind, and zero errors.
//!
//! `schemathesis/hooks.py` brings positive cases within the few rules JSON Schema cannot state (signed
//! cursors, distinct album ids, an upload's digest naming its body); each rule is listed there with the test
//! that covers it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod served;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::json;

/// Test cases per operation and phase: ~3,000 in all, about a minute on two cores.
const EXAMPLES_PER_OPERATION: u32 = 100;
/// A fixed seed: the same cases every run, so a failure reproduces.
const SEED: u32 = 20261204;
/// The run is bounded by its examples; this only stops a hung one.
const RUN_LIMIT: Duration = Duration::from_secs(600);

/// The schemathesis release: the one `scripts/install-test-deps.sh` installs.
fn schemathesis_version() -> String {
    let script = include_str!("../../scripts/install-test-deps.sh");
    script
        .lines()
        .find_map(|line| line.strip_prefix("SCHEMATHESIS_VERSION="))
        .expect("scripts/install-test-deps.sh pins SCHEMATHESIS_VERSION")
        .trim()
        .to_owned()
}

/// Where schemathesis is installed (`pip install --target` under the harness's cache directory), installing
/// it there now when `scripts/install-test-deps.sh` has not.
fn schemathesis_dir() -> PathBuf {
    let version = schemathesis_version();
    let target = harness::cache_dir().join(format!("schemathesis-{version}"));
    if target.join("schemathesis").join("__init__.py").exists() {
        return target;
    }
    std::fs::create_dir_all(harness::cache_dir()).unwrap();
    // A fresh directory renamed into place, so concurrent test processes never see half an install.
    let staging = tempfile::Builder::new()
        .prefix("schemathesis-install-")
        .tempdir_in(harness::cache_dir())
        .unwrap();
    let status = std::process::Command::new("python3")
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--target",
        ])
        .arg(staging.path())
        .arg(format!("schemathesis=={version}"))
        .status()
        .expect("running python3 -m pip (is Python with pip installed?)");
    assert!(
        status.success(),
        "pip install schemathesis=={version} failed ({status})"
    );
    let staged = staging.keep();
    if std::fs::rename(&staged, &target).is_err() {
        let _ = std::fs::remove_dir_all(&staged);
    }
    target
}

/// One synced photo with its original, in an album, so the operations that take a photo or album id reach
/// their handlers' real work and their answers' schemas are checked on real data: (photo id, album id).
async fn seed(base: &str, client: &str, web: &str) -> (String, String) {
    let http = reqwest::Client::new();
    let bytes = b"the original's bytes".to_vec();
    let sha256 = storage::Sha256Digest::of(&bytes).to_hex();
    let library = "conformance-seed-library";
    let item = json!({
        "localIdentifier": "0F1E2D3C-4B5A-6978-8796-A5B4C3D2E1F0/L0/001", "kind": "photo", "livePhoto": false,
        "width": 4032, "height": 3024, "takenAt": "2024-05-01T10:00:00+02:00",
        "modifiedAt": "2024-05-02T10:00:00Z", "favorite": true, "hidden": false, "trashed": false,
        "originalFilename": "IMG_0001.JPG", "uti": "public.jpeg", "edited": false,
        "keywords": ["seed"], "resources": [{ "type": "original", "size": bytes.len(), "sha256": sha256,
            "available": true }]
    });
    let post = |path: &str| http.post(format!("{base}{path}")).bearer_auth(client);
    let synced = post("/client/iphoto/sync")
        .json(&json!({ "libraryId": library, "items": [item] }))
        .send()
        .await
        .unwrap();
    assert_eq!(synced.status(), 200);
    let uploaded = post(&format!(
        "/client/iphoto/upload/0F1E2D3C-4B5A-6978-8796-A5B4C3D2E1F0/L0/001?library={library}"
    ))
    .header("X-Content-SHA256", &sha256)
    .body(bytes)
    .send()
    .await
    .unwrap();
    assert_eq!(uploaded.status(), 200, "{}", uploaded.text().await.unwrap());
    let albums = json!({ "libraryId": library, "albums": [{ "id": "SEED-ALBUM", "title": "Seed",
        "kind": "album", "members": ["0F1E2D3C-4B5A-6978-8796-A5B4C3D2E1F0/L0/001"] }] });
    let answered = post("/client/iphoto/albums").json(&albums).send().await.unwrap();
    assert_eq!(answered.status(), 200);
    let get = |path: &str| http.get(format!("{base}{path}")).bearer_auth(web).send();
    let photos: serde_json::Value = get("/my/photos/").await.unwrap().json().await.unwrap();
    let albums: serde_json::Value = get("/my/photos/albums").await.unwrap().json().await.unwrap();
    (
        photos["items"][0]["id"].as_str().unwrap().to_owned(),
        albums["albums"][0]["id"].as_str().unwrap().to_owned(),
    )
}

/// The run's configuration: each surface's token on its operations, and the seeded ids offered for the id
/// parameters half the time (the other half stays generated, so unknown ids are still tried).
fn config(server: &harness::ServerProcess, photo_id: &str, album_id: &str) -> String {
    let mut toml = String::new();
    for scope in ["client", "web", "admin", "worker"] {
        let token = server.token(scope).unwrap();
        toml.push_str(&format!(
            "[[operations]]\ninclude-tag = \"{scope}\"\nheaders = {{ Authorization = \"Bearer {token}\" }}\n\n"
        ));
    }
    toml.push_str(&format!(
        "[dictionaries]\nphotos = {{ values = [\"{photo_id}\"] }}\nalbums = {{ values = [\"{album_id}\"] }}\n\n\
         [[operations]]\ninclude-path-regex = \"^/my/photos/\\\\{{photoId\\\\}}\"\n\
         parameters = {{ \"path.photoId\" = {{ dictionary = \"photos\", probability = 0.5 }} }}\n\n\
         [[operations]]\ninclude-path = \"/my/photos/albums/{{albumId}}\"\n\
         parameters = {{ \"path.albumId\" = {{ dictionary = \"albums\", probability = 0.5 }} }}\n"
    ));
    toml
}

/// A figure from the summary line `… N generated, …` (`what` = "generated", "passed", …).
fn figure(summary: &str, what: &str) -> Option<u64> {
    let words: Vec<&str> = summary.split_whitespace().collect();
    words
        .windows(2)
        .find(|w| w[1].trim_end_matches(',') == what)
        .and_then(|w| w[0].parse().ok())
}

#[tokio::test]
async fn the_served_api_conforms_to_its_openapi_document_under_schemathesis() {
    let schemathesis = schemathesis_dir();
    let dir = tempfile::tempdir().unwrap();
    let server = served::serve(&dir.path().join("data")).await;
    let base = server.url();
    let (photo_id, album_id) = seed(
        &base,
        &server.client_token().unwrap(),
        &server.token("web").unwrap(),
    )
    .await;
    let work = dir.path().join("schemathesis");
    std::fs::create_dir_all(&work).unwrap();
    std::fs::write(
        work.join("schemathesis.toml"),
        config(&server, &photo_id, &album_id),
    )
    .unwrap();
    let hooks = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/schemathesis");
    let python_path = std::env::join_paths([&schemathesis, &hooks]).unwrap();

    let started = Instant::now();
    let child = tokio::process::Command::new("python3")
        .args([
            "-m",
            "schemathesis.cli",
            "--config-file",
            "schemathesis.toml",
            "run",
        ])
        .arg(format!("{base}/openapi.json"))
        .args([
            "--checks",
            "all",
            "--workers",
            "1",
            "--no-color",
            "--generation-database",
            "none",
        ])
        .args(["--max-examples", &EXAMPLES_PER_OPERATION.to_string()])
        .args(["--seed", &SEED.to_string()])
        .args(["--report", "junit", "--report-dir", "report"])
        .current_dir(&work)
        .env("PYTHONPATH", python_path)
        .env("SCHEMATHESIS_HOOKS", "hooks")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let output = tokio::time::timeout(RUN_LIMIT, child.wait_with_output())
        .await
        .expect("schemathesis finishes within its limit")
        .unwrap();
    let elapsed = started.elapsed();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let summary = text
        .lines()
        .find(|line| line.contains(" generated"))
        .unwrap_or_default()
        .to_owned();
    println!(
        "schemathesis: {} in {:.1} s; {}",
        summary.trim(),
        elapsed.as_secs_f64(),
        text.lines().last().unwrap_or_default().trim_matches('=').trim()
    );
    assert!(output.status.success(), "schemathesis failed:\n{text}");
    let generated = figure(&summary, "generated").unwrap_or(0);
    assert_eq!(
        figure(&summary, "passed"),
        Some(generated),
        "every case passes:\n{text}"
    );
    assert!(!summary.contains("failure") && !text.contains("ERRORS"), "{text}");
    // Every operation of the document was tried, with a real number of cases.
    let doc: serde_json::Value = serde_json::from_str(&server::http::openapi::document()).unwrap();
    let operations: usize = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|item| item.as_object().unwrap().len())
        .sum();
    assert!(
        text.contains(&format!("Tested: {operations}")),
        "all {operations} operations tested:\n{text}"
    );
    assert!(generated >= 1000, "{generated} cases generated:\n{text}");
}
