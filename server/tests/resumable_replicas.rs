//! Resumable uploads across two server replicas on one PostgreSQL catalog and one SeaweedFS bucket: an upload
//! started on one replica is resumed and completed on the other (after a cut connection, too), and an append
//! running on one replica makes the other refuse a second append to the same upload instead of interleaving.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod app;
mod resumable;

use app::{Backends, TestApp, item, sha256_hex};
use futures::TryStreamExt as _;
use resumable::Client;
use serde_json::json;
use server::catalog::Scope;
use server::http::HttpSettings;

const M: usize = 1 << 20;

async fn start() -> TestApp {
    TestApp::start_with(
        Backends::PostgresS3,
        HttpSettings {
            max_upload_bytes: 64 << 20,
            resumable_part_size: 5 << 20,
            ..HttpSettings::default()
        },
    )
    .await
}

fn data(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 11) as u8)
        .collect()
}

async fn photo(app: &TestApp, token: &str, uuid: &str, bytes: &[u8]) -> String {
    let sha = sha256_hex(bytes);
    let body = json!({ "libraryId": "Replicas", "items": [item(uuid, bytes.len() as u64, Some(&sha))] });
    let (status, answer) = app.post_json(token, "/client/iphoto/sync", &body).await;
    assert_eq!(status, 200, "{answer}");
    format!("/client/iphoto/upload/{uuid}/L0/001")
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upload_started_on_one_replica_is_finished_on_the_other() {
    let one = start().await;
    let other = one.replica().await;
    let (user, token) = one.user_with_token(Scope::Client).await;
    let bytes = data(7, 13 * M);
    let route = photo(&one, &token, "F1B2C3D4-0000-0000-0000-000000000001", &bytes).await;

    // On the first replica: creation and 6 MiB (a part and a tail), then a connection cut mid-append.
    let first = Client::new(&one.url, &token, None);
    let created = first
        .create(&route, bytes[..6 * M].to_vec(), false, &[])
        .await
        .unwrap();
    assert_eq!(
        (created.status, created.offset()),
        (201, Some(6 * M as u64)),
        "{}",
        created.body
    );
    let url = created.field("location").unwrap().to_owned();
    let upstream: std::net::SocketAddr = one.url.trim_start_matches("http://").parse().unwrap();
    let proxy = harness::CutProxy::start(upstream).await.unwrap();
    let through_proxy = Client::new(&format!("http://{}", proxy.addr()), &token, None);
    proxy.cut_next_after(3 * M as u64);
    let cut = through_proxy
        .append(&url, 6 * M as u64, bytes[6 * M..].to_vec(), true, &[])
        .await;
    assert!(
        cut.is_err() || cut.as_ref().unwrap().status != 200,
        "the append was cut"
    );
    assert_eq!(proxy.cuts(), 1);

    // On the other replica: the offset the first one acknowledged, then the rest.
    let second = Client::new(&other.url, &token, None);
    let mut tries = 0;
    let head = loop {
        let head = second.offset(&url).await.unwrap();
        // The first replica may still be making the cut append's bytes durable.
        tries += 1;
        if head.offset() > Some(6 * M as u64) || tries == 50 {
            break head;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let offset = head.offset().unwrap();
    assert!(
        offset > 6 * M as u64 && offset < 6 * M as u64 + 3 * M as u64,
        "kept what arrived: {offset}"
    );
    let done = second
        .append(&url, offset, bytes[offset as usize..].to_vec(), true, &[])
        .await
        .unwrap();
    assert_eq!(done.status, 200, "{}", done.body);
    assert_eq!(done.json()["sha256"], sha256_hex(&bytes));

    // Either replica sees it complete; one object, nothing left behind.
    let head = first.offset(&url).await.unwrap();
    assert_eq!(first.says_complete(&head), Some(true));
    let prefix = storage::StorageKey::parse(format!("users/{}", user.id)).unwrap();
    let objects: Vec<_> = one.store.list(Some(&prefix)).try_collect().await.unwrap();
    assert_eq!(objects.len(), 1, "{objects:?}");
    assert_eq!(
        one.store.sha256(&objects[0].key).await.unwrap().to_hex(),
        sha256_hex(&bytes)
    );
    let staging = storage::StorageKey::parse(format!("uploads/{}", user.id)).unwrap();
    let left: Vec<_> = one.store.list(Some(&staging)).try_collect().await.unwrap();
    assert!(left.is_empty(), "{left:?}");
    let uploads = harness::S3Server::shared().multipart_uploads("").await.unwrap();
    assert!(
        !uploads.iter().any(|k| k.contains(user.id.as_str())),
        "{uploads:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_append_on_another_replica_is_refused_not_interleaved() {
    let one = start().await;
    let other = one.replica().await;
    let (user, token) = one.user_with_token(Scope::Client).await;
    let bytes = data(9, 7 * M);
    let route = photo(&one, &token, "F1B2C3D4-0000-0000-0000-000000000002", &bytes).await;
    let first = Client::new(&one.url, &token, None);
    let created = first.create(&route, Vec::new(), false, &[]).await.unwrap();
    let url = created.field("location").unwrap().to_owned();

    // A slow append on the first replica: 1 MiB, then it waits.
    let (mut sender, receiver) = futures::channel::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
    let slow = {
        let request = first
            .http
            .patch(format!("{}{url}", one.url))
            .bearer_auth(&token)
            .header("upload-offset", "0")
            .header("upload-complete", "?1")
            .header("content-type", "application/partial-upload")
            .body(reqwest::Body::wrap_stream(receiver));
        tokio::spawn(request.send())
    };
    use futures::SinkExt as _;
    sender.send(Ok(bytes[..M].to_vec())).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;

    // The other replica cannot end it: a second append is refused.
    let second = Client::new(&other.url, &token, None);
    let refused = second.append(&url, 0, bytes.clone(), true, &[]).await.unwrap();
    assert_eq!(
        (refused.status, refused.code()),
        (409, "upload_in_progress".to_owned()),
        "{}",
        refused.body
    );

    // The first goes on and completes with exactly the bytes it sent.
    sender.send(Ok(bytes[M..].to_vec())).await.unwrap();
    drop(sender);
    let answer = slow.await.unwrap().unwrap();
    assert_eq!(answer.status(), 200);
    let answer: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(answer["sha256"], sha256_hex(&bytes));
    let prefix = storage::StorageKey::parse(format!("users/{}", user.id)).unwrap();
    let objects: Vec<_> = one.store.list(Some(&prefix)).try_collect().await.unwrap();
    assert_eq!(objects.len(), 1);
}
