//! The server's limits, against the real binary and the real router: header, body-idle and request
//! timeouts, the connection limit, a body over the limit refused from its declared length, the JSON error
//! envelope on every error answer (the ones made below the handlers included), and private files on disk.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod app;
mod served;

use std::os::unix::fs::PermissionsExt as _;
use std::process::Command;
use std::time::Duration;

use app::{Backends, TestApp, assert_error, read};
use harness::{ServerProcess, files_under};
use served::{BIN, serve, served_with_photo, served_with_photo_env};
use server::catalog::Scope;

/// Reads from `socket` until the server closes it (or `limit` passes): what was read, and when it closed.
async fn read_until_closed(
    socket: &mut tokio::net::TcpStream,
    limit: Duration,
) -> (Vec<u8>, Option<Duration>) {
    use tokio::io::AsyncReadExt as _;
    let start = std::time::Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = limit.saturating_sub(start.elapsed());
        match tokio::time::timeout(left, socket.read(&mut buf)).await {
            Err(_) => return (got, None),
            Ok(Ok(0) | Err(_)) => return (got, Some(start.elapsed())),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// The status and JSON body of a raw HTTP/1.1 answer.
fn parse_answer(raw: &[u8]) -> (u16, serde_json::Value) {
    let text = String::from_utf8_lossy(raw);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (
        status,
        serde_json::from_str(body).unwrap_or(serde_json::Value::Null),
    )
}

/// A connection that sends half a request header, or nothing, is closed once the header timeout passes
/// (it used to be held as long as the client liked: 400 s and counting).
#[tokio::test]
async fn a_half_sent_header_or_a_silent_connection_is_closed_within_the_header_timeout() {
    use tokio::io::AsyncWriteExt as _;
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(
        std::path::Path::new(BIN),
        &dir.path().join("data"),
        &[("IPHOTO_HTTP_HEADER_TIMEOUT_SECS", "2")],
    )
    .await
    .unwrap();
    let address = server.url().trim_start_matches("http://").to_owned();
    let mut half = tokio::net::TcpStream::connect(&address).await.unwrap();
    half.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .unwrap();
    let mut silent = tokio::net::TcpStream::connect(&address).await.unwrap();
    // A keep-alive connection that answered once and then goes quiet.
    let mut kept = tokio::net::TcpStream::connect(&address).await.unwrap();
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    for (name, socket) in [
        ("half header", &mut half),
        ("silent", &mut silent),
        ("keep-alive", &mut kept),
    ] {
        let (_, closed) = read_until_closed(socket, Duration::from_secs(15)).await;
        let closed = closed.unwrap_or_else(|| panic!("{name}: still open after 15 s"));
        eprintln!("{name}: closed after {closed:?}");
        assert!(closed < Duration::from_secs(6), "{name}: closed after {closed:?}");
    }
}

/// An upload whose body stops coming is cut after the body idle timeout with a JSON 408, and nothing of it
/// is stored.
#[tokio::test]
async fn a_stalled_upload_body_is_cut_within_the_idle_timeout_and_stores_nothing() {
    use tokio::io::AsyncWriteExt as _;
    let dir = tempfile::tempdir().unwrap();
    let size: u64 = 4 << 20;
    let (_server, base, token) = served_with_photo_env(
        dir.path(),
        "STAL0001",
        size,
        &[
            ("IPHOTO_HTTP_BODY_IDLE_SECS", "2"),
            ("IPHOTO_HTTP_REQUEST_TIMEOUT_SECS", "1"),
        ],
    )
    .await;
    let address = base.trim_start_matches("http://").to_owned();
    let mut socket = tokio::net::TcpStream::connect(&address).await.unwrap();
    let head = format!(
        "POST /client/iphoto/upload/STAL0001/L0/001 HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\nContent-Length: {size}\r\n\r\n"
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    // Some bytes over more than the request timeout (uploads are exempt from it), then nothing.
    for _ in 0..3 {
        socket.write_all(&vec![7u8; 64 << 10]).await.unwrap();
        tokio::time::sleep(Duration::from_millis(600)).await;
    }
    let stalled_at = std::time::Instant::now();
    let (raw, closed) = read_until_closed(&mut socket, Duration::from_secs(20)).await;
    eprintln!("stalled body: answered/closed after {closed:?}");
    assert!(closed.is_some(), "the stalled upload is still open after 20 s");
    assert!(
        stalled_at.elapsed() < Duration::from_secs(8),
        "{:?}",
        stalled_at.elapsed()
    );
    let (status, body) = parse_answer(&raw);
    assert_eq!(status, 408, "{}", String::from_utf8_lossy(&raw));
    assert_eq!(body["error"]["code"], "request_timeout");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        files_under(&dir.path().join("data/blobs")),
        Vec::<std::path::PathBuf>::new(),
        "no object, no staging file"
    );
    // A JSON route whose body stalls: the request timeout (1 s here; uploads are exempt) answers 408 first.
    let mut socket = tokio::net::TcpStream::connect(&address).await.unwrap();
    let head = format!(
        "POST /client/iphoto/albums HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"libraryId\": "
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    let (raw, closed) = read_until_closed(&mut socket, Duration::from_secs(20)).await;
    eprintln!("stalled JSON body: answered/closed after {closed:?}");
    let (status, body) = parse_answer(&raw);
    assert_eq!(status, 408, "{}", String::from_utf8_lossy(&raw));
    assert_eq!(body["error"]["code"], "request_timeout");
}

/// More connections than the limit (and than the process may open files) do not stop the server: the idle
/// ones are shed by the header timeout and `/healthz` answers after them.
#[tokio::test]
async fn connections_past_the_limit_wait_and_healthz_answers_once_idle_ones_are_shed() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(
        std::path::Path::new(BIN),
        &dir.path().join("data"),
        &[
            ("IPHOTO_HTTP_HEADER_TIMEOUT_SECS", "2"),
            ("IPHOTO_HTTP_MAX_CONNECTIONS", "24"),
        ],
    )
    .await
    .unwrap();
    // The server's open files now, plus room for 40 connections: 150 idle ones would exhaust it.
    let open = std::fs::read_dir(format!("/proc/{}/fd", server.pid()))
        .unwrap()
        .count();
    let nofile = open + 40;
    let status = Command::new("prlimit")
        .arg(format!("--pid={}", server.pid()))
        .arg(format!("--nofile={nofile}:{nofile}"))
        .status()
        .unwrap();
    assert!(status.success());
    let address = server.url().trim_start_matches("http://").to_owned();
    let mut idle = Vec::new();
    for _ in 0..150 {
        idle.push(tokio::net::TcpStream::connect(&address).await.unwrap());
    }
    let start = std::time::Instant::now();
    let health = tokio::time::timeout(
        Duration::from_secs(40),
        reqwest::Client::new()
            .get(format!("{}/healthz", server.url()))
            .send(),
    )
    .await
    .expect("/healthz did not answer within 40 s")
    .unwrap();
    eprintln!(
        "/healthz answered after {:?} behind 150 idle connections",
        start.elapsed()
    );
    assert_eq!(health.status(), 200);
    drop(idle);
}

/// A sync request declaring a body far over the JSON limit is refused from its `Content-Length`, at once,
/// with the envelope: the server does not wait for (or read) a byte of the body.
#[tokio::test]
async fn a_sync_declaring_5_gib_gets_413_at_once() {
    use tokio::io::AsyncWriteExt as _;
    let dir = tempfile::tempdir().unwrap();
    let server = serve(&dir.path().join("data")).await;
    let token = server.client_token().unwrap();
    let address = server.url().trim_start_matches("http://").to_owned();
    let mut socket = tokio::net::TcpStream::connect(&address).await.unwrap();
    let head = format!(
        "POST /client/iphoto/sync HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        5u64 << 30
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    let start = std::time::Instant::now();
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    use tokio::io::AsyncReadExt as _;
    while !String::from_utf8_lossy(&raw).contains("}}") {
        let n = tokio::time::timeout(Duration::from_secs(5), socket.read(&mut buf))
            .await
            .expect("no answer within 5 s")
            .unwrap();
        assert!(
            n > 0,
            "closed without an answer: {}",
            String::from_utf8_lossy(&raw)
        );
        raw.extend_from_slice(&buf[..n]);
    }
    eprintln!("5 GiB sync answered after {:?}", start.elapsed());
    let (status, body) = parse_answer(&raw);
    assert_eq!(status, 413, "{}", String::from_utf8_lossy(&raw));
    assert_eq!(body["error"]["code"], "body_too_large");
    assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
}

/// Everything the server creates under its data directory is the owner's alone: directories 0700, files
/// 0600 (the catalog with its -wal/-shm, tokens, the presign secret, blobs), after a sync and an upload.
/// The directory itself was made by the harness with the shell's umask: the server tightens it.
#[tokio::test]
async fn files_under_the_data_dir_are_private() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (_server, base, token) = served_with_photo(dir.path(), "PRIV0001", 1000).await;
    let answer = reqwest::Client::new()
        .post(format!("{base}/client/iphoto/upload/PRIV0001/L0/001"))
        .bearer_auth(&token)
        .body(vec![3u8; 1000])
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let mut checked = 0;
    let mut stack = vec![data.clone()];
    let mut wrong = Vec::new();
    while let Some(path) = stack.pop() {
        let meta = std::fs::symlink_metadata(&path).unwrap();
        let mode = meta.permissions().mode() & 0o777;
        if meta.is_dir() {
            if mode != 0o700 {
                wrong.push(format!("{} is {mode:o}", path.display()));
            }
            stack.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
        } else if path.file_name().is_some_and(|n| n == "iphoto-server.log") {
            // The harness's own capture of stderr, not the server's file.
        } else {
            checked += 1;
            if mode != 0o600 {
                wrong.push(format!("{} is {mode:o}", path.display()));
            }
        }
    }
    assert!(wrong.is_empty(), "not private: {wrong:#?}");
    let names: Vec<String> = files_under(&data)
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    assert!(names.iter().any(|n| n.ends_with("-wal")), "{names:?}");
    assert!(names.iter().any(|n| n.contains("blobs/")), "{names:?}");
    assert!(checked >= 8, "{names:?}");
}

/// Every error answer carries the `{"error":{"code","message"}}` envelope, the ones made below the handlers
/// (axum's method router and JSON rejections, tower-http's body limit) included, and every answer says
/// `X-Content-Type-Options: nosniff`.
#[tokio::test]
async fn every_4xx_carries_the_json_error_envelope() {
    let app = TestApp::start(Backends::SqliteLocal).await;
    let (_, token) = app.user_with_token(Scope::Client).await;
    let sync = app.url("/client/iphoto/sync");
    // 405: a route that exists, with another method; `Allow` is kept.
    let wrong_method = app.http.get(&sync).bearer_auth(&token).send().await.unwrap();
    assert_eq!(wrong_method.headers()["x-content-type-options"], "nosniff");
    assert!(wrong_method.headers().get("allow").is_some());
    assert_error(&read(wrong_method).await, 405, "method_not_allowed");
    // 415: a JSON route without a JSON content type.
    let no_type = app
        .http
        .post(&sync)
        .bearer_auth(&token)
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_error(&read(no_type).await, 415, "unsupported_media_type");
    // 400: not JSON at all.
    let malformed = app
        .http
        .post(&sync)
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{\"libraryId\": ")
        .send()
        .await
        .unwrap();
    assert_error(&read(malformed).await, 400, "invalid_json");
    // 422: JSON of the wrong shape.
    let shape = app
        .post_json(&token, "/client/iphoto/sync", &serde_json::json!({ "items": 3 }))
        .await;
    assert_error(&shape, 422, "invalid_json");
    // 413: a body over the JSON limit, refused from its Content-Length.
    let big = app
        .http
        .post(&sync)
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(vec![b' '; (16 << 20) + 1])
        .send()
        .await
        .unwrap();
    assert_error(&read(big).await, 413, "body_too_large");
    // 431: headers over the limit.
    let huge = app
        .http
        .get(app.url("/client/iphoto/stats"))
        .bearer_auth(&token)
        .header("x-filler", "a".repeat(100_000))
        .send()
        .await
        .unwrap();
    assert_error(&read(huge).await, 431, "headers_too_large");
    // 404 and 401, made by our own handlers, for completeness.
    assert_error(&app.get_json(&token, "/no/such/route").await, 404, "not_found");
    assert_error(
        &app.get_json("wrong", "/client/iphoto/stats").await,
        401,
        "unauthorized",
    );
    // Successes are untouched and say nosniff too.
    let ok = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.headers()["x-content-type-options"], "nosniff");
}

/// A JSON body that stops coming fails after the body idle timeout with a JSON 408 (not a 400 "invalid
/// JSON"), and nothing of it is applied.
#[tokio::test]
async fn a_stalled_json_body_gets_408_after_the_idle_timeout() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let app = TestApp::start_with(
        Backends::SqliteLocal,
        server::http::HttpSettings {
            body_idle_timeout: std::time::Duration::from_secs(1),
            request_timeout: std::time::Duration::from_secs(30),
            ..server::http::HttpSettings::default()
        },
    )
    .await;
    let (_, token) = app.user_with_token(Scope::Client).await;
    let address = app.url.trim_start_matches("http://").to_owned();
    let mut socket = tokio::net::TcpStream::connect(&address).await.unwrap();
    let head = format!(
        "POST /client/iphoto/sync HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"libraryId\": \"L\", "
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    let start = std::time::Instant::now();
    let mut raw = Vec::new();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), socket.read_to_end(&mut raw)).await;
    let text = String::from_utf8_lossy(&raw).into_owned();
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(
        start.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    let body: serde_json::Value = serde_json::from_str(text.split_once("\r\n\r\n").unwrap().1).unwrap();
    assert_eq!(body["error"]["code"], "request_timeout", "{body}");
    let (_, stats) = app.get_json(&token, "/client/iphoto/stats").await;
    assert_eq!(stats["photos"], 0);
}

/// Requests hyper itself refuses before any service runs (a malformed request line, header or version: 400;
/// a request target past its limit: 414; a head past its buffer or with too many fields: 431) get the JSON
/// envelope too, and their connection is closed; the server goes on answering.
#[tokio::test]
async fn requests_hyper_cannot_parse_get_the_envelope_too() {
    use tokio::io::AsyncWriteExt as _;
    let dir = tempfile::tempdir().unwrap();
    let server = serve(&dir.path().join("data")).await;
    let address = server.url().trim_start_matches("http://").to_owned();
    let head = |fields: &str| format!("GET /healthz HTTP/1.1\r\nHost: x\r\n{fields}\r\n").into_bytes();
    let cases: [(&str, Vec<u8>, u16, &str); 6] = [
        ("no request line", b"GARBAGE\r\n\r\n".to_vec(), 400, "bad_request"),
        (
            "a header without a colon",
            head("no colon\r\n"),
            400,
            "bad_request",
        ),
        (
            "an unknown version",
            b"GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n".to_vec(),
            400,
            "bad_request",
        ),
        (
            "a 70 kB request target",
            format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(70_000)).into_bytes(),
            414,
            "uri_too_long",
        ),
        (
            "200 header fields",
            head(&"X: a\r\n".repeat(200)),
            431,
            "headers_too_large",
        ),
        (
            "a 2 MB header",
            head(&format!("X: {}\r\n", "a".repeat(2_000_000))),
            431,
            "headers_too_large",
        ),
    ];
    for (what, request, status, code) in cases {
        let mut socket = tokio::net::TcpStream::connect(&address).await.unwrap();
        // hyper may answer and close before it has read all of a long request.
        let _ = socket.write_all(&request).await;
        let (answer, closed) = read_until_closed(&mut socket, Duration::from_secs(10)).await;
        assert!(closed.is_some(), "{what}: the connection is closed");
        let (got, body) = parse_answer(&answer);
        let text = String::from_utf8_lossy(&answer);
        assert_eq!(got, status, "{what}: {text}");
        assert_eq!(body["error"]["code"], code, "{what}: {text}");
        assert!(
            body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{what}: {text}"
        );
        assert!(
            text.contains("\r\ncontent-type: application/json\r\n"),
            "{what}: {text}"
        );
        assert!(
            text.contains("\r\nx-content-type-options: nosniff\r\n"),
            "{what}: {text}"
        );
    }
    let health = reqwest::get(format!("{}/healthz", server.url())).await.unwrap();
    assert_eq!(health.status(), 200);
}
