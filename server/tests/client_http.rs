//! The client surface over HTTP, against {SQLite, PostgreSQL} × {local directory, SeaweedFS}.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod app;

use app::{Backends, TestApp, assert_error, item, read, sha256_hex};
use futures::StreamExt as _;
use serde_json::json;
use server::catalog::Scope;
use storage::StorageKey;

const LIB: &str = "MacBook-Library";

fn sync_body(items: Vec<serde_json::Value>) -> serde_json::Value {
    json!({ "libraryId": LIB, "items": items })
}

pub async fn auth_and_scopes(app: TestApp) {
    let (user, client) = app.user_with_token(Scope::Client).await;
    let web = app.token(&user, Scope::Web).await;
    let no_token = read(
        app.http
            .get(app.url("/client/iphoto/stats"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_error(&no_token, 401, "unauthorized");
    assert_error(
        &app.get_json("ips_not-a-real-token", "/client/iphoto/stats").await,
        401,
        "unauthorized",
    );
    assert_error(
        &app.get_json(&web, "/client/iphoto/stats").await,
        403,
        "wrong_scope",
    );
    let malformed = app
        .http
        .get(app.url("/client/iphoto/stats"))
        .header("authorization", "Basic abc")
        .send()
        .await;
    assert_error(&read(malformed.unwrap()).await, 401, "unauthorized");
    assert_eq!(app.get_json(&client, "/client/iphoto/stats").await.0, 200);
    // A revoked token stops working at once.
    let tokens = app.catalog.list_tokens(Some(&user.id)).await.unwrap();
    let client_token = tokens.iter().find(|t| t.scope == Scope::Client).unwrap();
    app.catalog
        .revoke_token(&user.id, &client_token.id)
        .await
        .unwrap();
    assert_error(
        &app.get_json(&client, "/client/iphoto/stats").await,
        401,
        "unauthorized",
    );
    assert_error(&app.get_json(&client, "/no/such/route").await, 404, "not_found");
}

pub async fn sync_is_idempotent(app: TestApp) {
    let (_, token) = app.user_with_token(Scope::Client).await;
    let items = vec![
        item("AAAA0001", 100, None),
        item("AAAA0002", 200, None),
        item("AAAA0003", 300, None),
    ];
    let (status, first) = app
        .post_json(&token, "/client/iphoto/sync", &sync_body(items.clone()))
        .await;
    assert_eq!(status, 200, "{first}");
    let results = first["results"].as_array().unwrap();
    assert_eq!(results.len(), 3);
    for r in results {
        assert_eq!(r["outcome"], "created");
        assert_eq!(r["needsUpload"], json!(["original"]));
    }
    let version = first["version"].as_i64().unwrap();
    assert!(version > 0);

    let (_, again) = app
        .post_json(&token, "/client/iphoto/sync", &sync_body(items.clone()))
        .await;
    assert!(
        again["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["outcome"] == "unchanged"),
        "{again}"
    );
    assert_eq!(
        again["version"].as_i64().unwrap(),
        version,
        "an unchanged batch does not move the version"
    );

    let mut favorite = items[1].clone();
    favorite["favorite"] = true.into();
    let (_, changed) = app
        .post_json(&token, "/client/iphoto/sync", &sync_body(vec![favorite]))
        .await;
    assert_eq!(changed["results"][0]["outcome"], "updated");
    assert!(changed["version"].as_i64().unwrap() > version);

    let mut gone = items[2].clone();
    gone["deleted"] = true.into();
    let (_, deleted) = app
        .post_json(&token, "/client/iphoto/sync", &sync_body(vec![gone]))
        .await;
    assert_eq!(deleted["results"][0]["outcome"], "updated");
    let (_, stats) = app.get_json(&token, "/client/iphoto/stats").await;
    assert_eq!(stats["photos"], 2, "{stats}");
}

pub async fn sync_rejects_bad_input(app: TestApp) {
    let (_, token) = app.user_with_token(Scope::Client).await;
    let send_raw = |body: &'static str| {
        app.http
            .post(app.url("/client/iphoto/sync"))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    assert_error(
        &read(send_raw("{not json").await.unwrap()).await,
        400,
        "invalid_json",
    );
    assert_error(
        &read(send_raw(r#"{"libraryId": 5, "items": []}"#).await.unwrap()).await,
        422,
        "invalid_json",
    );
    let no_type = app
        .http
        .post(app.url("/client/iphoto/sync"))
        .bearer_auth(&token)
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(read(no_type).await.0, 415);
    let huge: Vec<_> = (0..501).map(|i| item(&format!("B{i:07}"), 1, None)).collect();
    assert_error(
        &app.post_json(&token, "/client/iphoto/sync", &sync_body(huge))
            .await,
        413,
        "batch_too_large",
    );
    let bad_library = json!({ "libraryId": "", "items": [] });
    assert_error(
        &app.post_json(&token, "/client/iphoto/sync", &bad_library).await,
        400,
        "invalid_field",
    );

    // One bad item is rejected; the rest of the batch applies.
    let mut bad = item("CCCC0002", 10, None);
    bad["localIdentifier"] = "x".repeat(1000).into();
    let mut bad_location = item("CCCC0003", 10, None);
    bad_location["latitude"] = 123.0.into();
    let batch = sync_body(vec![item("CCCC0001", 10, None), bad, bad_location]);
    let (status, answer) = app.post_json(&token, "/client/iphoto/sync", &batch).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["results"][0]["outcome"], "created");
    for i in [1, 2] {
        assert_eq!(answer["results"][i]["outcome"], "rejected", "{answer}");
        assert!(
            answer["results"][i]["reason"]
                .as_str()
                .is_some_and(|r| !r.is_empty())
        );
    }
    let (_, stats) = app.get_json(&token, "/client/iphoto/stats").await;
    assert_eq!(stats["photos"], 1);
}

pub async fn upload_streams_hashes_and_dedups(app: TestApp) {
    let (_, token) = app.user_with_token(Scope::Client).await;
    let bytes: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let sha = sha256_hex(&bytes);
    let items = vec![
        item("DDDD0001", bytes.len() as u64, Some(&sha)),
        item("DDDD0002", bytes.len() as u64, Some(&sha)),
    ];
    app.post_json(&token, "/client/iphoto/sync", &sync_body(items))
        .await;
    let (_, pending) = app.get_json(&token, "/client/iphoto/upload/pending").await;
    assert_eq!(pending["items"].as_array().unwrap().len(), 2, "{pending}");

    let response = app
        .http
        .post(app.url("/client/iphoto/upload/DDDD0001%2FL0%2F001?resource=original"))
        .bearer_auth(&token)
        .header("x-content-sha256", &sha)
        .body(bytes.clone())
        .send()
        .await
        .unwrap();
    let (status, stored) = read(response).await;
    assert_eq!(status, 200, "{stored}");
    assert_eq!(stored["sha256"], sha.as_str());
    assert_eq!(stored["size"], bytes.len());
    assert_eq!(stored["deduplicated"], false);
    let key = StorageKey::parse(stored["key"].as_str().unwrap()).unwrap();
    // No bundle path declared: the content-addressed key, never one built from the identifier.
    assert!(
        key.as_str()
            .ends_with(&format!("/content/{}/{sha}.heic", &sha[..2])),
        "{key}"
    );
    assert_eq!(app.store.get_bytes(&key).await.unwrap(), bytes);

    // The same content under the second identity is linked, not uploaded again: the server answers before
    // reading a body that would never end.
    let never = futures::stream::pending::<Result<bytes::Bytes, std::io::Error>>();
    let response = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        app.http
            .post(app.url("/client/iphoto/upload/DDDD0002/L0/001"))
            .bearer_auth(&token)
            .header("x-content-sha256", &sha)
            .body(reqwest::Body::wrap_stream(never))
            .send(),
    )
    .await
    .expect("answered without reading the body")
    .unwrap();
    assert_eq!(
        response.headers()["connection"],
        "close",
        "unread body: the connection is not reused"
    );
    let (status, linked) = read(response).await;
    assert_eq!(status, 200, "{linked}");
    assert_eq!(linked["deduplicated"], true);
    assert_eq!(linked["key"], stored["key"], "stored once per user");

    let (_, pending) = app.get_json(&token, "/client/iphoto/upload/pending").await;
    assert_eq!(pending["items"].as_array().unwrap().len(), 0, "{pending}");
    let (_, stats) = app.get_json(&token, "/client/iphoto/stats").await;
    assert_eq!(stats["uploaded"], 2, "{stats}");
    assert_eq!(stats["bytesTransferred"], bytes.len(), "{stats}");

    // A new asset declaring content the user already has needs no upload at all.
    let (_, third) = app
        .post_json(
            &token,
            "/client/iphoto/sync",
            &sync_body(vec![item("DDDD0003", bytes.len() as u64, Some(&sha))]),
        )
        .await;
    assert_eq!(third["results"][0]["needsUpload"], json!([]), "{third}");

    // Stats come from the catalog: a restart keeps them.
    let app = app.restart().await;
    let (_, after) = app.get_json(&token, "/client/iphoto/stats").await;
    assert_eq!(after["uploaded"], stats["uploaded"].as_u64().unwrap() + 1);
    assert_eq!(after["bytesTransferred"], stats["bytesTransferred"]);
    assert!(after["uploadRate"].as_f64().unwrap() > 0.0, "{after}");
}

pub async fn upload_rejects_bad_input_and_keeps_nothing(app: TestApp) {
    let (user, token) = app.user_with_token(Scope::Client).await;
    let bytes = vec![7u8; 100_000];
    app.post_json(
        &token,
        "/client/iphoto/sync",
        &sync_body(vec![item("EEEE0001", 100_000, None)]),
    )
    .await;
    let upload = |path: &str| app.http.post(app.url(path)).bearer_auth(&token);

    // Digest mismatch: 422, nothing stored, still pending.
    let wrong = sha256_hex(b"something else");
    let answer = read(
        upload("/client/iphoto/upload/EEEE0001/L0/001")
            .header("x-content-sha256", &wrong)
            .body(bytes.clone())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_error(&answer, 422, "digest_mismatch");
    let listed: Vec<_> = app.store.list(None).collect().await;
    assert!(listed.is_empty(), "nothing stored: {listed:?}");
    let (_, pending) = app.get_json(&token, "/client/iphoto/upload/pending").await;
    assert_eq!(pending["items"].as_array().unwrap().len(), 1);

    let bad_header = read(
        upload("/client/iphoto/upload/EEEE0001/L0/001")
            .header("x-content-sha256", "xyz")
            .body("x")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_error(&bad_header, 400, "invalid_header");
    let bad_resource = read(
        upload("/client/iphoto/upload/EEEE0001/L0/001?resource=thumbnail")
            .body("x")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_error(&bad_resource, 400, "invalid_query");
    let unknown = read(
        upload("/client/iphoto/upload/NOPE/L0/001")
            .body("x")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_error(&unknown, 404, "not_found");
    let traversal = read(
        upload("/client/iphoto/upload/..%2F..%2Fetc%2Fpasswd")
            .body("x")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_error(&traversal, 404, "not_found");
    let too_big = read(
        upload("/client/iphoto/upload/EEEE0001/L0/001")
            .header("content-length", (65u64 << 20).to_string())
            .body(vec![0u8; 10])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(too_big.0, 413, "{}", too_big.1);

    // Another user cannot upload to this user's photo, nor see it pending.
    let (_, other) = app.user_with_token(Scope::Client).await;
    let foreign = read(
        app.http
            .post(app.url("/client/iphoto/upload/EEEE0001/L0/001"))
            .bearer_auth(&other)
            .body(bytes.clone())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_error(&foreign, 404, "not_found");
    let (_, other_pending) = app.get_json(&other, "/client/iphoto/upload/pending").await;
    assert_eq!(other_pending["items"], json!([]));
    assert!(app.store.list(None).collect::<Vec<_>>().await.is_empty());
    let _ = user;
}

pub async fn pending_pages_and_albums(app: TestApp) {
    let (_, token) = app.user_with_token(Scope::Client).await;
    let items: Vec<_> = (0..25).map(|i| item(&format!("FFFF{i:04}"), 10, None)).collect();
    app.post_json(&token, "/client/iphoto/sync", &sync_body(items))
        .await;
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/client/iphoto/upload/pending?limit=10&cursor={c}"),
            None => "/client/iphoto/upload/pending?limit=10".to_owned(),
        };
        let (status, page) = app.get_json(&token, &path).await;
        assert_eq!(status, 200, "{page}");
        for p in page["items"].as_array().unwrap() {
            assert_eq!(p["reason"], "not_uploaded");
            seen.push(p["localIdentifier"].as_str().unwrap().to_owned());
        }
        match page["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 25);
    assert_error(
        &app.get_json(&token, "/client/iphoto/upload/pending?limit=0")
            .await,
        400,
        "invalid_query",
    );
    assert_error(
        &app.get_json(&token, "/client/iphoto/upload/pending?limit=abc")
            .await,
        400,
        "invalid_query",
    );

    let albums = json!({ "libraryId": LIB, "albums": [
        { "id": "F1", "title": "Trips", "kind": "folder" },
        { "id": "A1", "title": "Beach", "kind": "album", "parentId": "F1",
          "members": ["FFFF0003/L0/001", "FFFF0001/L0/001", "NOT-SYNCED/L0/001"] }
    ]});
    let (status, answer) = app.post_json(&token, "/client/iphoto/albums", &albums).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["created"], 2);
    assert_eq!(answer["unknownMembers"], 1);
    let (_, again) = app.post_json(&token, "/client/iphoto/albums", &albums).await;
    assert_eq!(again["unchanged"], 2, "{again}");
    assert_eq!(again["version"], answer["version"]);
    let bad = json!({ "libraryId": LIB, "albums": [{ "id": "A", "title": "t", "kind": "smart" }] });
    assert_error(
        &app.post_json(&token, "/client/iphoto/albums", &bad).await,
        422,
        "invalid_json",
    );
}

matrix!(
    auth_and_scopes,
    sync_is_idempotent,
    sync_rejects_bad_input,
    upload_streams_hashes_and_dedups,
    upload_rejects_bad_input_and_keeps_nothing,
    pending_pages_and_albums,
);

#[tokio::test]
async fn malformed_requests_get_4xx_not_500() {
    let app = TestApp::start(Backends::SqliteLocal).await;
    let (_, token) = app.user_with_token(Scope::Client).await;
    // Bad UTF-8 in the path.
    let bad_utf8 = read(
        app.http
            .post(app.url("/client/iphoto/upload/%FF%FE/L0/001"))
            .bearer_auth(&token)
            .body("x")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_error(&bad_utf8, 400, "invalid_path");
    // A huge header: 431 with the envelope; a header past hyper's own buffer is refused before any handler.
    let huge = app
        .http
        .get(app.url("/client/iphoto/stats"))
        .bearer_auth(&token)
        .header("x-filler", "a".repeat(200_000));
    assert_error(&read(huge.send().await.unwrap()).await, 431, "headers_too_large");
    let enormous = app
        .http
        .get(app.url("/client/iphoto/stats"))
        .header("x-filler", "a".repeat(2_000_000))
        .send()
        .await;
    match enormous {
        Ok(response) => assert!(response.status().is_client_error(), "{}", response.status()),
        Err(e) => assert!(e.is_request() || e.is_connect() || e.is_body(), "{e}"),
    }
    // An over-long token is not looked up.
    assert_error(
        &app.get_json(&"x".repeat(5000), "/client/iphoto/stats").await,
        401,
        "unauthorized",
    );
    // A JSON body over the limit.
    let big = serde_json::json!({ "libraryId": "L", "items": [], "pad": "x".repeat(17 << 20) });
    assert_error(
        &app.post_json(&token, "/client/iphoto/sync", &big).await,
        413,
        "body_too_large",
    );
    // Wrong types inside an item: the whole body is refused as JSON, not half-applied.
    let mut bad = item("GGGG0001", 10, None);
    bad["width"] = "wide".into();
    assert_error(
        &app.post_json(&token, "/client/iphoto/sync", &sync_body(vec![bad]))
            .await,
        422,
        "invalid_json",
    );
    let (_, stats) = app.get_json(&token, "/client/iphoto/stats").await;
    assert_eq!(stats["photos"], 0);
}

#[tokio::test]
async fn expect_100_continue_gets_the_answer_instead_of_a_go_ahead() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let app = TestApp::start(Backends::SqliteLocal).await;
    let (_, token) = app.user_with_token(Scope::Client).await;
    let bytes = vec![5u8; 2_000_000];
    let sha = sha256_hex(&bytes);
    let items = vec![
        item("HHHH0001", 2_000_000, Some(&sha)),
        item("HHHH0002", 2_000_000, Some(&sha)),
    ];
    app.post_json(&token, "/client/iphoto/sync", &sync_body(items))
        .await;
    let first = app
        .http
        .post(app.url("/client/iphoto/upload/HHHH0001/L0/001"))
        .bearer_auth(&token)
        .body(bytes)
        .send()
        .await;
    assert_eq!(first.unwrap().status(), 200);

    // As curl does for a large body: headers with Expect: 100-continue, then wait for the go-ahead.
    let address = app.url.trim_start_matches("http://").to_owned();
    let mut socket = tokio::net::TcpStream::connect(&address).await.unwrap();
    let head = format!(
        "POST /client/iphoto/upload/HHHH0002/L0/001 HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\n\
         X-Content-SHA256: {sha}\r\nContent-Length: 2000000\r\nExpect: 100-continue\r\n\r\n"
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    while !String::from_utf8_lossy(&answer).contains('}') {
        let mut buf = [0u8; 4096];
        let n = tokio::time::timeout(std::time::Duration::from_secs(5), socket.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(
            n > 0,
            "connection closed early: {}",
            String::from_utf8_lossy(&answer)
        );
        answer.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&answer);
    assert!(
        text.starts_with("HTTP/1.1 200"),
        "the final answer, not 100 Continue: {text}"
    );
    assert!(text.contains("\"deduplicated\":true"), "{text}");
}

/// A client that sends a whole upload and is gone before the answer (killed, as the agent in
/// `agent/tests/sync.rs` is): the server still records what it stored, so the next sync finds the resource
/// uploaded and does not send it again. Before, the handler was dropped with the connection, between the
/// store's write and the catalog's record, and the retry's bytes crossed the link a second time.
#[tokio::test]
async fn an_upload_whose_client_is_gone_before_the_answer_is_still_recorded() {
    use tokio::io::AsyncWriteExt as _;
    let app = TestApp::start(Backends::SqliteLocal).await;
    let (_, token) = app.user_with_token(Scope::Client).await;
    let bytes: Vec<u8> = (0..8_000_000u32).map(|i| (i % 241) as u8).collect();
    let sha = sha256_hex(&bytes);
    app.post_json(
        &token,
        "/client/iphoto/sync",
        &sync_body(vec![item("GONE0001", bytes.len() as u64, Some(&sha))]),
    )
    .await;

    let address = app.url.trim_start_matches("http://").to_owned();
    let mut socket = tokio::net::TcpStream::connect(&address).await.unwrap();
    let head = format!(
        "POST /client/iphoto/upload/GONE0001/L0/001 HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\n\
         X-Content-SHA256: {sha}\r\nContent-Length: {}\r\n\r\n",
        bytes.len()
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    socket.write_all(&bytes).await.unwrap();
    // Gone: the server sees the end of the connection right behind the body's last byte.
    drop(socket);

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let (_, stats) = app.get_json(&token, "/client/iphoto/stats").await;
        if stats["uploaded"] == 1 {
            assert_eq!(stats["bytesTransferred"], bytes.len(), "{stats}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the upload was stored but never recorded: {stats}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let (_, pending) = app.get_json(&token, "/client/iphoto/upload/pending").await;
    assert_eq!(pending["items"].as_array().unwrap().len(), 0, "{pending}");
}
