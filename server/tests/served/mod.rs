//! The real `iphoto-server` binary started for a test: on an empty data directory, or with one synced photo.

#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use harness::ServerProcess;

pub const BIN: &str = env!("CARGO_BIN_EXE_iphoto-server");

/// The server on `data` with the embedded defaults, ready.
pub async fn serve(data: &std::path::Path) -> ServerProcess {
    ServerProcess::start(std::path::Path::new(BIN), data, &[])
        .await
        .unwrap()
}

/// A served data dir with one synced photo whose original is `size` bytes; returns (server, base URL, token).
pub async fn served_with_photo(
    dir: &std::path::Path,
    uuid: &str,
    size: u64,
) -> (ServerProcess, String, String) {
    served_with_photo_env(dir, uuid, size, &[]).await
}

/// [`served_with_photo`] with these settings.
pub async fn served_with_photo_env(
    dir: &std::path::Path,
    uuid: &str,
    size: u64,
    envs: &[(&str, &str)],
) -> (ServerProcess, String, String) {
    let server = ServerProcess::start(std::path::Path::new(BIN), &dir.join("data"), envs)
        .await
        .unwrap();
    let base = server.url();
    let token = server.client_token().unwrap();
    let item = serde_json::json!({
        "localIdentifier": format!("{uuid}/L0/001"), "kind": "video", "livePhoto": false, "width": 1920, "height": 1080,
        "takenAt": "2024-05-01T10:00:00+02:00", "modifiedAt": "2024-05-02T10:00:00Z",
        "favorite": false, "hidden": false, "trashed": false, "originalFilename": "clip.mov",
        "uti": "com.apple.quicktime-movie", "edited": false,
        "resources": [{ "type": "original", "size": size, "available": true }]
    });
    let answer = reqwest::Client::new()
        .post(format!("{base}/client/iphoto/sync"))
        .bearer_auth(&token)
        .json(&serde_json::json!({ "libraryId": "L", "items": [item] }))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    (server, base, token)
}
