//! Nothing lost under `kill -9` (issue 12): the real `iphoto-server` binary is SIGKILLed 30 times while an
//! upload streams into it, restarted, and the upload retried. Afterwards no staging file is left in the blob
//! directory, no catalog row names a missing or different object, and each file is stored exactly once.
//! The invariant this checks: no acknowledged byte is deleted before the retention, verified by hash.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use harness::{ServerProcess, files_under};
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_iphoto-server");
const KILLS: usize = 30;
/// A file per kill: a file already stored is answered before its body is read, so only new content can be
/// killed mid-stream.
const FILES: usize = KILLS;
/// Past one 8 MiB part, so the local backend writes a multipart staging file.
const SIZE: usize = 12 * 1024 * 1024;

fn content(n: usize) -> Vec<u8> {
    let mut state = 0x9E37_79B9_7F4A_7C15u64 ^ n as u64;
    (0..SIZE)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

fn sha256_hex(bytes: &[u8]) -> String {
    storage::Sha256Digest::of(bytes).to_hex()
}

fn identifier(n: usize) -> String {
    format!("KILL{n:04}-0000-4000-8000-000000000000/L0/001")
}

/// The body in 256 KiB chunks, 10 ms apart: about half a second per file, so a kill lands mid-stream.
fn slow_body(bytes: Vec<u8>) -> reqwest::Body {
    let chunks: Vec<bytes::Bytes> = bytes
        .chunks(256 * 1024)
        .map(bytes::Bytes::copy_from_slice)
        .collect();
    let stream = futures::stream::iter(chunks).then(|chunk| async move {
        tokio::time::sleep(Duration::from_millis(10)).await;
        Ok::<_, std::io::Error>(chunk)
    });
    reqwest::Body::wrap_stream(stream)
}

use futures::StreamExt as _;

async fn upload(
    http: &reqwest::Client,
    server: &ServerProcess,
    token: &str,
    n: usize,
    body: reqwest::Body,
) -> reqwest::Result<reqwest::Response> {
    http.post(format!("{}/client/iphoto/upload/{}", server.url(), identifier(n)))
        .bearer_auth(token)
        .header("x-content-sha256", sha256_hex(&content(n)))
        .body(body)
        .send()
        .await
}

async fn get_json(http: &reqwest::Client, url: &str, token: &str) -> serde_json::Value {
    let response = http.get(url).bearer_auth(token).send().await.unwrap();
    assert_eq!(response.status(), 200, "{url}");
    response.json().await.unwrap()
}

/// Identifiers the server still wants bytes for.
async fn pending(http: &reqwest::Client, server: &ServerProcess, token: &str) -> Vec<String> {
    let page = get_json(
        http,
        &format!("{}/client/iphoto/upload/pending", server.url()),
        token,
    )
    .await;
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["localIdentifier"].as_str().unwrap().to_owned())
        .collect()
}

/// Retries as the agent does, driven by the pending list: a file the server stored (or adopts from what the
/// killed request left) is not sent again. An answer given before the body was read may reach the client as
/// a broken pipe; the pending list then says whether it was stored.
async fn retry_until_stored(http: &reqwest::Client, server: &ServerProcess, token: &str, n: usize) {
    for _ in 0..5 {
        if !pending(http, server, token).await.contains(&identifier(n)) {
            return;
        }
        if let Ok(response) = upload(http, server, token, n, content(n).into()).await {
            let status = response.status();
            assert_eq!(status, 200, "{}", response.text().await.unwrap());
        }
    }
    panic!("{} still pending after 5 tries", identifier(n));
}

fn staging_files(blobs: &std::path::Path) -> Vec<std::path::PathBuf> {
    files_under(blobs)
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().contains('#')))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn thirty_kills_mid_upload_leave_no_staging_no_dangling_row_and_each_file_once() {
    let data = tempfile::tempdir().unwrap();
    let mut server = ServerProcess::start(std::path::Path::new(BIN), data.path(), &[])
        .await
        .unwrap();
    let client = server.client_token().unwrap();
    let web = server.token("web").unwrap();
    let http = reqwest::Client::new();
    let items: Vec<_> = (0..FILES)
        .map(|n| {
            json!({
                "localIdentifier": identifier(n),
                "kind": "photo", "livePhoto": false, "width": 10, "height": 10,
                "takenAt": "2024-05-01T10:00:00+02:00", "modifiedAt": "2024-05-02T10:00:00Z",
                "favorite": false, "hidden": false, "trashed": false,
                "originalFilename": format!("IMG_{n}.JPG"), "uti": "public.jpeg", "edited": false,
                "keywords": [], "people": [],
                "resources": [{ "type": "original", "size": SIZE, "sha256": sha256_hex(&content(n)),
                    "available": true,
                    "bundlePath": format!("originals/K/KILL{n:04}-0000-4000-8000-000000000000.jpeg") }]
            })
        })
        .collect();
    let synced = http
        .post(format!("{}/client/iphoto/sync", server.url()))
        .bearer_auth(&client)
        .json(&json!({ "libraryId": "killed", "items": items }))
        .send()
        .await
        .unwrap();
    assert_eq!(synced.status(), 200);

    let mut killed_mid_stream = 0;
    let mut staged = 0;
    let mut kills_leaving_staging = 0;
    for kill in 0..KILLS {
        let n = kill;
        let request = {
            let http = http.clone();
            let body = slow_body(content(n));
            let url = server.url();
            let token = client.clone();
            tokio::spawn(async move {
                http.post(format!("{url}/client/iphoto/upload/{}", identifier(n)))
                    .bearer_auth(token)
                    .header("x-content-sha256", sha256_hex(&content(n)))
                    .body(body)
                    .send()
                    .await
            })
        };
        // Two kills in three land once the server writes the staging file (past the first 8 MiB part), at a
        // varying moment after; the third while the first part is still in memory.
        let blobs = data.path().join("blobs");
        if kill % 3 == 2 {
            tokio::time::sleep(Duration::from_millis(30 + (kill as u64 * 37) % 120)).await;
        } else {
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while staging_files(&blobs).len() <= staged && std::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            tokio::time::sleep(Duration::from_millis((kill as u64 * 53) % 80)).await;
        }
        server.kill();
        staged = staging_files(&blobs).len();
        let name = format!("KILL{n:04}");
        if staging_files(&blobs)
            .iter()
            .any(|p| p.to_string_lossy().contains(&name))
        {
            kills_leaving_staging += 1;
        }
        if request.await.unwrap().is_err() {
            killed_mid_stream += 1;
        }
        server.restart().await.unwrap();
        retry_until_stored(&http, &server, &client, n).await;
    }
    assert!(
        killed_mid_stream >= KILLS / 2,
        "only {killed_mid_stream} kills landed mid-upload"
    );

    let blobs = data.path().join("blobs");
    println!(
        "kills {KILLS}: {killed_mid_stream} landed mid-upload, {kills_leaving_staging} left a staging file; \
         {} staging files before the last restart",
        staging_files(&blobs).len()
    );
    assert!(
        kills_leaving_staging >= KILLS / 3,
        "too few kills landed past the first part"
    );
    // A restart cleans what the kills left: staging untouched for 3 s is no live write's.
    server.kill();
    tokio::time::sleep(Duration::from_millis(3500)).await;
    server.restart().await.unwrap();
    assert_eq!(
        staging_files(&blobs),
        Vec::<std::path::PathBuf>::new(),
        "staging left behind"
    );

    // Each file once: every object's bytes are one of the files, and each file is one object.
    let mut stored: BTreeMap<String, usize> = BTreeMap::new();
    for path in files_under(&blobs) {
        *stored
            .entry(sha256_hex(&std::fs::read(&path).unwrap()))
            .or_default() += 1;
    }
    let expected: BTreeMap<String, usize> = (0..FILES).map(|n| (sha256_hex(&content(n)), 1)).collect();
    assert_eq!(stored, expected);

    // No dangling row: every photo's stored original is served with the bytes the catalog records.
    let list = get_json(&http, &format!("{}/my/photos/?limit=100", server.url()), &web).await;
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), FILES);
    for item in items {
        let recorded = item["sha256"].as_str().unwrap();
        let url = item["originalUrl"].as_str().unwrap();
        let bytes = http.get(url).send().await.unwrap().bytes().await.unwrap();
        assert_eq!(sha256_hex(&bytes), recorded);
    }
    assert_eq!(pending(&http, &server, &client).await, Vec::<String>::new());
}
