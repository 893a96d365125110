//! The real `iphoto-server` binary: embedded defaults on an empty directory, the admin CLI, clear errors.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::PermissionsExt as _;
use std::process::Command;

mod served;

use harness::files_under;
use served::{BIN, serve, served_with_photo};
use std::time::Duration;

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
            .env_remove("IPHOTO_DATABASE_URL")
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
        .env("IPHOTO_STORAGE_BACKEND", "local")
        .env("IPHOTO_S3_BUCKET", "photos")
        .env_remove("IPHOTO_DATABASE_URL")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(err.contains("IPHOTO_S3_BUCKET"), "{err}");
    let output = Command::new(BIN)
        .args(["serve", "--data-dir"])
        .arg(dir.path())
        .env("IPHOTO_DATABASE_URL", "sqlite::memory:")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("IPHOTO_DATABASE_URL"));
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
        .env_remove("IPHOTO_DATABASE_URL")
        .env_remove("IPHOTO_STORAGE_BACKEND")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(err.contains("IPHOTO_LISTEN") && err.contains(&address), "{err}");

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
            .env_remove("IPHOTO_DATABASE_URL")
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
            .env_remove("IPHOTO_DATABASE_URL")
            .output()
            .unwrap();
        assert!(!output.status.success());
        let err = String::from_utf8_lossy(&output.stderr);
        assert!(err.contains(named), "{err}");
    }
    let output = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .env("IPHOTO_TRASH_DAYS", "-3")
        .env_remove("IPHOTO_DATABASE_URL")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--trash-days"));
}
