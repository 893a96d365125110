//! The real `iphoto-server` binary: embedded defaults on an empty directory, the admin CLI, clear errors.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::PermissionsExt as _;
use std::process::Command;

use harness::{ServerProcess, files_under};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_iphoto-server");

/// The server on `data` with the embedded defaults, ready.
async fn serve(data: &std::path::Path) -> ServerProcess {
    ServerProcess::start(std::path::Path::new(BIN), data, &[])
        .await
        .unwrap()
}

#[tokio::test]
async fn serve_on_an_empty_directory_is_ready_with_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = serve(&data).await;
    let ready = reqwest::get(format!("{}/readyz", server.url())).await.unwrap();
    assert_eq!(ready.status(), 200);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["status"], "ready");

    for scope in ["client", "web", "worker", "admin"] {
        let path = data.join(format!("{scope}.token"));
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{scope}.token must be private");
    }
    let client = std::fs::read_to_string(data.join("client.token")).unwrap();
    let stats = reqwest::Client::new()
        .get(format!("{}/client/iphoto/stats", server.url()))
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
    let exit = server.terminate(Duration::from_secs(20)).unwrap();
    assert!(exit.success(), "{exit:?}");

    // A second start keeps the first start's tokens.
    let _again = serve(&data).await;
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

/// A served data dir with one synced photo whose original is `size` bytes; returns (server, base URL, token).
async fn served_with_photo(dir: &std::path::Path, uuid: &str, size: u64) -> (ServerProcess, String, String) {
    served_with_photo_env(dir, uuid, size, &[]).await
}

/// [`served_with_photo`] with these settings.
async fn served_with_photo_env(
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

fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Pseudo-random chunks, generated as they are sent: the test holds no more than one chunk either.
fn generated_body(
    total: u64,
    chunk: usize,
) -> (
    reqwest::Body,
    std::sync::Arc<std::sync::Mutex<sha2_hasher::Hasher>>,
) {
    let hasher = std::sync::Arc::new(std::sync::Mutex::new(sha2_hasher::Hasher::default()));
    let h = std::sync::Arc::clone(&hasher);
    let stream = futures::stream::unfold((0u64, 0x1234_5678_9abc_def0u64), move |(sent, mut x)| {
        let h = std::sync::Arc::clone(&h);
        async move {
            if sent >= total {
                return None;
            }
            let n = chunk.min(usize::try_from(total - sent).unwrap());
            let mut buf = Vec::with_capacity(n + 8);
            while buf.len() < n {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                buf.extend_from_slice(&x.to_le_bytes());
            }
            buf.truncate(n);
            h.lock().unwrap().update(&buf);
            Some((
                Ok::<_, std::io::Error>(bytes::Bytes::from(buf)),
                (sent + n as u64, x),
            ))
        }
    });
    (reqwest::Body::wrap_stream(stream), hasher)
}

mod sha2_hasher {
    /// Incremental SHA-256 of what the test sent.
    #[derive(Default)]
    pub struct Hasher(pub storage::Sha256Hasher);
    impl Hasher {
        pub fn update(&mut self, bytes: &[u8]) {
            self.0.update(bytes);
        }
    }
}

#[tokio::test]
async fn a_1_gib_upload_streams_with_flat_memory() {
    let dir = tempfile::tempdir().unwrap();
    let size: u64 = 1 << 30;
    let (server, base, token) = served_with_photo(dir.path(), "BIGF0001", size).await;
    let before = peak_rss_kib(server.pid());
    let (body, hasher) = generated_body(size, 1 << 20);
    let answer = reqwest::Client::new()
        .post(format!("{base}/client/iphoto/upload/BIGF0001/L0/001"))
        .bearer_auth(&token)
        .header("content-length", size.to_string())
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let stored: serde_json::Value = answer.json().await.unwrap();
    let sent = std::mem::take(&mut hasher.lock().unwrap().0).finish();
    assert_eq!(stored["sha256"], sent.to_hex());
    assert_eq!(stored["size"], size);
    let file = dir
        .path()
        .join("data/blobs")
        .join(stored["key"].as_str().unwrap());
    assert_eq!(std::fs::metadata(&file).unwrap().len(), size);
    let after = peak_rss_kib(server.pid());
    // Flat: the peak grows by a few multipart parts, not by the body (1 GiB).
    assert!(
        after - before < 100 * 1024,
        "server peak RSS grew {} MiB (before {} MiB)",
        (after - before) / 1024,
        before / 1024
    );
}

#[tokio::test]
async fn a_client_that_disconnects_mid_body_leaves_nothing() {
    use tokio::io::AsyncWriteExt as _;
    let dir = tempfile::tempdir().unwrap();
    let size: u64 = 20 << 20;
    let (_server, base, token) = served_with_photo(dir.path(), "DROP0001", size).await;
    let address = base.trim_start_matches("http://").to_owned();
    let mut socket = tokio::net::TcpStream::connect(&address).await.unwrap();
    let head = format!(
        "POST /client/iphoto/upload/DROP0001/L0/001 HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\nContent-Length: {size}\r\n\r\n"
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    // More than one multipart part, then the client goes away.
    socket.write_all(&vec![1u8; 12 << 20]).await.unwrap();
    socket.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(socket);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let blobs = dir.path().join("data/blobs");
    assert_eq!(
        files_under(&blobs),
        Vec::<std::path::PathBuf>::new(),
        "no object, no staging file"
    );
    let pending: serde_json::Value = reqwest::Client::new()
        .get(format!("{base}/client/iphoto/upload/pending"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        pending["items"].as_array().unwrap().len(),
        1,
        "still pending: {pending}"
    );
}

#[tokio::test]
async fn sigterm_finishes_an_upload_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let size: u64 = 4 << 20;
    let (mut server, base, token) = served_with_photo(dir.path(), "SLOW0001", size).await;
    // 4 MiB in 16 chunks, 100 ms apart: SIGTERM lands mid-body.
    let stream = futures::stream::unfold(0u32, |i| async move {
        if i == 16 {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        Some((
            Ok::<_, std::io::Error>(bytes::Bytes::from(vec![i as u8; 256 << 10])),
            i + 1,
        ))
    });
    let upload = tokio::spawn(
        reqwest::Client::new()
            .post(format!("{base}/client/iphoto/upload/SLOW0001/L0/001"))
            .bearer_auth(&token)
            .header("content-length", size.to_string())
            .body(reqwest::Body::wrap_stream(stream))
            .send(),
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    server.sigterm().unwrap();
    let answer = upload.await.unwrap().unwrap();
    assert_eq!(answer.status(), 200, "the upload in flight completes");
    let stored: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(stored["size"], size);
    let exit = server.wait_exit(Duration::from_secs(20)).unwrap();
    assert!(exit.success());
    let file = dir
        .path()
        .join("data/blobs")
        .join(stored["key"].as_str().unwrap());
    assert_eq!(std::fs::metadata(file).unwrap().len(), size);
}

/// A port another process listens on: the server exits naming the address, and the harness says the port
/// was taken rather than take the other process's answers for the server's.
#[tokio::test]
async fn a_taken_port_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = serve(&dir.path().join("data")).await;
    let address = server.url().trim_start_matches("http://").to_owned();
    server.kill();
    let _squatter = tokio::net::TcpListener::bind(&address).await.unwrap();

    let output = Command::new(BIN)
        .args(["serve", "--listen", &address, "--data-dir"])
        .arg(dir.path().join("other"))
        .env_remove("DATABASE_URL")
        .env_remove("STORAGE_BACKEND")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(err.contains("LISTEN") && err.contains(&address), "{err}");

    let refused = server.restart().await.unwrap_err().to_string();
    assert!(refused.contains("taken"), "{refused}");
}

#[tokio::test(flavor = "multi_thread")]
async fn restore_cli_restores_a_photo_and_names_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let location = server::catalog::Location::sqlite_in(dir.path());
    let catalog = server::catalog::connect(&location, &server::catalog::ConnectOptions::default())
        .await
        .unwrap();
    let user = catalog.create_user("alice").await.unwrap();
    let library = catalog.ensure_library(&user.id, "lib").await.unwrap();
    let mut wire: serde_json::Value = serde_json::json!({
        "localIdentifier": "R1/L0/001", "kind": "photo", "livePhoto": false, "width": 10, "height": 10,
        "takenAt": "2024-05-01T10:00:00+02:00", "modifiedAt": "2024-05-02T10:00:00Z",
        "favorite": false, "hidden": false, "trashed": false, "title": "then",
        "originalFilename": "IMG.HEIC", "uti": "public.heic", "edited": false,
        "keywords": [], "people": [], "resources": []
    });
    let sync = |wire: serde_json::Value| {
        let item: api::SyncItem = serde_json::from_value(wire).unwrap();
        let catalog = std::sync::Arc::clone(&catalog);
        let (user, library) = (user.id.clone(), library.id.clone());
        async move {
            catalog
                .sync_photos(&user, &library, vec![item.into()])
                .await
                .unwrap()
        }
    };
    let photo = sync(wire.clone()).await.results[0].photo_id.clone().unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let then = chrono::Utc::now().to_rfc3339();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    wire["title"] = "now".into();
    wire["deleted"] = true.into();
    let deleted = sync(wire).await.version;

    let run = |args: &[&str]| {
        let output = Command::new(BIN)
            .arg("restore")
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
    let id = photo.as_str();
    let future = (chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339();
    for (args, named) in [
        (
            vec!["--user", "alice", "--photo", id, "--as-of", "last week"],
            "--as-of",
        ),
        (
            vec!["--user", "alice", "--photo", id, "--as-of", &future],
            "--as-of",
        ),
        (vec!["--user", "bob", "--photo", id, "--as-of", &then], "--user"),
        (
            vec!["--user", "alice", "--photo", "nope", "--as-of", &then],
            "--photo",
        ),
        (
            vec!["--user", "alice", "--library", "nope", "--as-of", &then],
            "--library",
        ),
        (vec!["--user", "alice", "--as-of", &then], "--photo"),
        (
            vec!["--user", "alice", "--photo", id, "--album", "a", "--as-of", &then],
            "--album",
        ),
    ] {
        let (ok, _, err) = run(&args);
        assert!(
            !ok && err.contains(named) && !err.contains("panicked"),
            "{args:?}: {err}"
        );
    }
    assert_eq!(
        catalog.version(&user.id).await.unwrap(),
        deleted,
        "bad input writes nothing"
    );

    let (ok, out, err) = run(&["--user", "alice", "--photo", id, "--as-of", &then]);
    assert!(ok, "{err}");
    assert!(out.contains("1 photos"), "{out}");
    let detail = catalog
        .photo(&user.id, &photo)
        .await
        .unwrap()
        .expect("back from the tombstone");
    assert_eq!(detail.title.as_deref(), Some("then"));
}

#[test]
fn trash_days_is_checked_at_start() {
    let dir = tempfile::tempdir().unwrap();
    for (value, named) in [("0", "--trash-days"), ("many", "--trash-days")] {
        let output = Command::new(BIN)
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--trash-days",
                value,
                "--data-dir",
            ])
            .arg(dir.path())
            .env_remove("DATABASE_URL")
            .output()
            .unwrap();
        assert!(!output.status.success());
        let err = String::from_utf8_lossy(&output.stderr);
        assert!(err.contains(named), "{err}");
    }
    let output = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .env("TRASH_DAYS", "-3")
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--trash-days"));
}

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
        &[("HTTP_HEADER_TIMEOUT_SECS", "2")],
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
        &[("HTTP_BODY_IDLE_SECS", "2"), ("HTTP_REQUEST_TIMEOUT_SECS", "1")],
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
        &[("HTTP_HEADER_TIMEOUT_SECS", "2"), ("HTTP_MAX_CONNECTIONS", "24")],
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
