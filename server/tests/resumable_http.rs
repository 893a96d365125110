//! Resumable uploads (draft-ietf-httpbis-resumable-upload-15 and interop versions 3, 5, 6) over HTTP, spoken
//! by a client written from the draft (`resumable/mod.rs`), against {SQLite, PostgreSQL} × {local directory,
//! SeaweedFS}, with parts of 256 KiB so that a few MiB cross many part boundaries.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod app;
mod resumable;

use app::{Backends, TestApp, item, sha256_hex};
use futures::TryStreamExt as _;
use resumable::{Client, Raw};
use serde_json::json;
use server::catalog::Scope;
use server::http::HttpSettings;

const LIB: &str = "Resumable-Library";
const PART: u64 = 5 * MIB;
const MAX: u64 = 64 * MIB;
const MIB: u64 = 1 << 20;
const M: usize = 1 << 20;

macro_rules! resumable_matrix {
    ($($behaviour:ident),* $(,)?) => {
        mod sqlite_local { $( #[tokio::test(flavor = "multi_thread")] async fn $behaviour() { crate::$behaviour(crate::start(crate::Backends::SqliteLocal).await).await } )* }
        mod sqlite_s3 { $( #[tokio::test(flavor = "multi_thread")] async fn $behaviour() { crate::$behaviour(crate::start(crate::Backends::SqliteS3).await).await } )* }
        mod postgres_local { $( #[tokio::test(flavor = "multi_thread")] async fn $behaviour() { crate::$behaviour(crate::start(crate::Backends::PostgresLocal).await).await } )* }
        mod postgres_s3 { $( #[tokio::test(flavor = "multi_thread")] async fn $behaviour() { crate::$behaviour(crate::start(crate::Backends::PostgresS3).await).await } )* }
    };
}

resumable_matrix!(
    appends_are_stored_once_with_their_digest,
    older_interop_versions_are_answered_in_their_words,
    bad_input_is_refused_and_stores_nothing,
    cancel_removes_parts_and_staging,
    interrupted_uploads_resume_and_resend_little,
    idle_uploads_expire_with_their_parts_and_staging,
    a_creation_cut_after_its_104_resumes_at_its_location,
    the_104_leaves_the_connection_in_step,
);

async fn start(backends: Backends) -> TestApp {
    TestApp::start_with(
        backends,
        HttpSettings {
            max_upload_bytes: MAX,
            resumable_part_size: PART,
            ..HttpSettings::default()
        },
    )
    .await
}

/// Bytes that differ from upload to upload.
fn data(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Syncs one photo whose original is `bytes` (declared with its SHA-256 when `declare`); returns its upload
/// route.
async fn photo(app: &TestApp, token: &str, uuid: &str, bytes: &[u8], declare: bool) -> String {
    let sha = sha256_hex(bytes);
    let body = json!({ "libraryId": LIB, "items": [item(uuid, bytes.len() as u64, declare.then_some(sha.as_str()))] });
    let (status, answer) = app.post_json(token, "/client/iphoto/sync", &body).await;
    assert_eq!(status, 200, "{answer}");
    format!("/client/iphoto/upload/{uuid}/L0/001")
}

/// What the store holds for the user: (key, SHA-256) of every object under `users/<id>/`.
async fn stored(app: &TestApp, user: &str) -> Vec<(String, String)> {
    let prefix = storage::StorageKey::parse(format!("users/{user}")).unwrap();
    let objects: Vec<_> = app.store.list(Some(&prefix)).try_collect().await.unwrap();
    let mut out = Vec::new();
    for object in objects {
        out.push((
            object.key.to_string(),
            app.store.sha256(&object.key).await.unwrap().to_hex(),
        ));
    }
    out
}

/// Nothing of any resumable upload of the user is left: no staging object or file, no multipart upload.
async fn assert_no_leftovers(app: &TestApp, user: &str) {
    let staging = storage::StorageKey::parse(format!("uploads/{user}")).unwrap();
    let left: Vec<_> = app.store.list(Some(&staging)).try_collect().await.unwrap();
    assert!(left.is_empty(), "staging left: {left:?}");
    if matches!(app.backends, Backends::SqliteLocal | Backends::PostgresLocal) {
        let dir = app.dir().join("blobs").join("uploads").join(user);
        let files = if dir.exists() {
            harness::files_under(&dir)
        } else {
            Vec::new()
        };
        assert!(files.is_empty(), "staging files left: {files:?}");
    } else {
        let uploads = harness::S3Server::shared().multipart_uploads("").await.unwrap();
        let ours: Vec<_> = uploads.iter().filter(|k| k.contains(user)).collect();
        assert!(ours.is_empty(), "multipart uploads left: {ours:?}");
    }
}

pub async fn appends_are_stored_once_with_their_digest(app: TestApp) {
    let (user, token) = app.user_with_token(Scope::Client).await;
    let bytes = data(1, 14 * M);
    let route = photo(&app, &token, "A1B2C3D4-0000-0000-0000-000000000001", &bytes, true).await;
    let client = Client::new(&app.url, &token, None);

    let options = client.options(&route).await.unwrap();
    assert_eq!(options.status, 204);
    let limit = options.field("upload-limit").unwrap();
    assert!(
        limit.contains(&format!("max-size={MAX}")) && limit.contains(&format!("min-append-size={PART}")),
        "{limit}"
    );
    assert!(limit.contains("max-age=86400"), "{limit}");

    // Creation with the first 2 MiB.
    let created = client
        .create(&route, bytes[..2 * M].to_vec(), false, &[])
        .await
        .unwrap();
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.offset(), Some(2 * MIB));
    assert_eq!(client.says_complete(&created), Some(false));
    let url = created.field("location").unwrap().to_owned();
    assert!(url.starts_with("/client/iphoto/uploads/"), "{url}");

    // An append across two part boundaries.
    let appended = client
        .append(&url, 2 * MIB, bytes[2 * M..12 * M].to_vec(), false, &[])
        .await
        .unwrap();
    assert_eq!(appended.status, 204, "{}", appended.body);
    assert_eq!(appended.offset(), Some(12 * MIB));

    let head = client.offset(&url).await.unwrap();
    assert_eq!(head.status, 204);
    assert_eq!(head.offset(), Some(12 * MIB));
    assert_eq!(client.says_complete(&head), Some(false));
    assert_eq!(head.field("cache-control"), Some("no-store"));
    assert!(head.field("upload-limit").is_some());

    // A wrong offset: 409 with the right one; nothing changes.
    let wrong = client
        .append(&url, 2 * MIB, bytes[2 * M..].to_vec(), true, &[])
        .await
        .unwrap();
    assert_eq!(wrong.status, 409, "{}", wrong.body);
    assert_eq!(wrong.code(), "mismatching_upload_offset");
    assert_eq!(wrong.offset(), Some(12 * MIB));

    let done = client
        .append(&url, 12 * MIB, bytes[12 * M..].to_vec(), true, &[])
        .await
        .unwrap();
    assert_eq!(done.status, 200, "{}", done.body);
    assert_eq!(done.json()["sha256"], sha256_hex(&bytes));
    assert_eq!(done.json()["size"], bytes.len());
    assert_eq!(client.says_complete(&done), Some(true));
    assert_eq!(done.offset(), Some(bytes.len() as u64));

    // The upload resource remembers it is complete; more bytes are refused.
    let head = client.offset(&url).await.unwrap();
    assert_eq!(
        (head.status, client.says_complete(&head), head.offset()),
        (204, Some(true), Some(bytes.len() as u64))
    );
    let more = client
        .append(&url, bytes.len() as u64, b"x".to_vec(), true, &[])
        .await
        .unwrap();
    assert_eq!((more.status, more.code()), (400, "completed_upload".to_owned()));

    let objects = stored(&app, user.id.as_str()).await;
    assert_eq!(objects.len(), 1, "{objects:?}");
    assert_eq!(objects[0].1, sha256_hex(&bytes));
    let (_, pending) = app.get_json(&token, "/client/iphoto/upload/pending").await;
    assert_eq!(pending["items"].as_array().map(Vec::len), Some(0), "{pending}");
    assert_no_leftovers(&app, user.id.as_str()).await;
}

pub async fn older_interop_versions_are_answered_in_their_words(app: TestApp) {
    let (user, token) = app.user_with_token(Scope::Client).await;
    for (n, version) in [3u8, 5, 6, 8].into_iter().enumerate() {
        let bytes = data(10 + n as u64, 300 * 1024 + n);
        let uuid = format!("B1B2C3D4-0000-0000-0000-00000000000{n}");
        let route = photo(&app, &token, &uuid, &bytes, false).await;
        let client = Client::new(&app.url, &token, Some(version));
        let created = client
            .create(&route, bytes[..1000].to_vec(), false, &[])
            .await
            .unwrap();
        assert_eq!(created.status, 201, "v{version}: {}", created.body);
        assert_eq!(client.says_complete(&created), Some(false), "v{version}");
        assert_eq!(
            created.field("upload-draft-interop-version"),
            Some(version.to_string().as_str())
        );
        if version < 5 {
            assert!(
                created.field("upload-complete").is_none(),
                "v{version} speaks Upload-Incomplete"
            );
        }
        let url = created.field("location").unwrap().to_owned();
        let head = client.offset(&url).await.unwrap();
        assert_eq!(
            (head.status, head.offset(), client.says_complete(&head)),
            (204, Some(1000), Some(false))
        );
        let sha = sha256_hex(&bytes);
        let digest = format!(
            "sha-256=:{}:",
            storage::Sha256Digest::from_hex(&sha).unwrap().to_base64()
        );
        let done = client
            .append(
                &url,
                1000,
                bytes[1000..].to_vec(),
                true,
                &[("repr-digest", digest)],
            )
            .await
            .unwrap();
        assert_eq!(done.status, 200, "v{version}: {}", done.body);
        assert_eq!(done.json()["sha256"], sha);
        assert_eq!(client.says_complete(&done), Some(true), "v{version}");
    }
    let objects = stored(&app, user.id.as_str()).await;
    assert_eq!(objects.len(), 4, "{objects:?}");
    assert_no_leftovers(&app, user.id.as_str()).await;
}

pub async fn bad_input_is_refused_and_stores_nothing(app: TestApp) {
    let (user, token) = app.user_with_token(Scope::Client).await;
    let bytes = data(20, 400 * 1024);
    let route = photo(
        &app,
        &token,
        "C1B2C3D4-0000-0000-0000-000000000001",
        &bytes,
        false,
    )
    .await;
    let client = Client::new(&app.url, &token, None);

    // Unknown upload; an upload of another user: 404.
    let unknown = client
        .offset("/client/iphoto/uploads/00000000000000000000000000000000")
        .await
        .unwrap();
    assert_eq!(unknown.status, 404);
    let created = client
        .create(&route, bytes[..1024].to_vec(), false, &[])
        .await
        .unwrap();
    let url = created.field("location").unwrap().to_owned();
    let (_, other_token) = app.user_with_token(Scope::Client).await;
    let other = Client::new(&app.url, &other_token, None);
    assert_eq!(other.offset(&url).await.unwrap().status, 404);
    let theirs = other.append(&url, 1024, b"x".to_vec(), false, &[]).await.unwrap();
    assert_eq!((theirs.status, theirs.code()), (404, "not_found".to_owned()));
    assert_eq!(other.cancel(&url).await.unwrap().status, 404);

    // Missing Upload-Offset, a wrong media type, a malformed completion field: 400 / 415 / 400.
    let raw = client
        .http
        .patch(format!("{}{url}", app.url))
        .bearer_auth(&token)
        .header("upload-complete", "?0")
        .header("content-type", "application/partial-upload")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 400);
    let raw = client
        .http
        .patch(format!("{}{url}", app.url))
        .bearer_auth(&token)
        .header("upload-complete", "?0")
        .header("upload-offset", "1024")
        .header("content-type", "application/octet-stream")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 415);
    let raw = client
        .http
        .patch(format!("{}{url}", app.url))
        .bearer_auth(&token)
        .header("upload-complete", "yes")
        .header("upload-offset", "1024")
        .header("content-type", "application/partial-upload")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 400);

    // A creation naming two digests of the whole file that disagree: 400, no upload made.
    let disagree = client
        .create(
            &route,
            bytes[..1024].to_vec(),
            false,
            &[
                (
                    "repr-digest",
                    format!("sha-256=:{}:", storage::Sha256Digest::of(&bytes).to_base64()),
                ),
                ("x-content-sha256", sha256_hex(b"other")),
            ],
        )
        .await
        .unwrap();
    assert_eq!(
        (disagree.status, disagree.code(), disagree.field("location")),
        (400, "invalid_header".to_owned(), None),
        "{}",
        disagree.body
    );

    // A Content-Digest that does not match this append's content: nothing of it is acknowledged.
    let wrong = format!("sha-256=:{}:", storage::Sha256Digest::of(b"other").to_base64());
    let bad = client
        .append(
            &url,
            1024,
            bytes[1024..300 * 1024].to_vec(),
            false,
            &[("content-digest", wrong)],
        )
        .await
        .unwrap();
    assert_eq!(
        (bad.status, bad.code()),
        (422, "digest_mismatch".to_owned()),
        "{}",
        bad.body
    );
    assert_eq!(client.offset(&url).await.unwrap().offset(), Some(1024));

    // An append past the size limit: 413, the offset unchanged.
    let big = client
        .append(
            &url,
            1024,
            b"x".to_vec(),
            false,
            &[("upload-length", (MAX + 1).to_string())],
        )
        .await
        .unwrap();
    assert_eq!(big.status, 413, "{}", big.body);
    assert_eq!(client.offset(&url).await.unwrap().offset(), Some(1024));
    let too_long = client
        .create(
            &route,
            Vec::new(),
            false,
            &[("upload-length", (MAX + 1).to_string())],
        )
        .await
        .unwrap();
    assert_eq!(too_long.status, 413);

    // An Upload-Length the end does not meet.
    let declared = client
        .create(&route, Vec::new(), false, &[("upload-length", "10".into())])
        .await
        .unwrap();
    let declared_url = declared.field("location").unwrap().to_owned();
    let short = client
        .append(&declared_url, 0, b"12345".to_vec(), true, &[])
        .await
        .unwrap();
    assert_eq!(
        (short.status, short.code()),
        (400, "inconsistent_upload_length".to_owned())
    );
    let other_length = client
        .append(
            &declared_url,
            5,
            b"1".to_vec(),
            false,
            &[("upload-length", "11".into())],
        )
        .await
        .unwrap();
    assert_eq!(
        (other_length.status, other_length.code()),
        (400, "inconsistent_upload_length".to_owned())
    );
    assert_eq!(client.cancel(&declared_url).await.unwrap().status, 204);

    // The wrong digest at completion: 422, nothing stored, the upload gone with its parts.
    let wrong = format!(
        "sha-256=:{}:",
        storage::Sha256Digest::of(b"not these bytes").to_base64()
    );
    let done = client
        .append(
            &url,
            1024,
            bytes[1024..].to_vec(),
            true,
            &[("repr-digest", wrong)],
        )
        .await
        .unwrap();
    assert_eq!(
        (done.status, done.code()),
        (422, "digest_mismatch".to_owned()),
        "{}",
        done.body
    );
    assert_eq!(client.offset(&url).await.unwrap().status, 404);
    assert!(stored(&app, user.id.as_str()).await.is_empty());
    let (_, pending) = app.get_json(&token, "/client/iphoto/upload/pending").await;
    assert_eq!(pending["items"].as_array().map(Vec::len), Some(1), "{pending}");
    assert_no_leftovers(&app, user.id.as_str()).await;
}

pub async fn cancel_removes_parts_and_staging(app: TestApp) {
    let (user, token) = app.user_with_token(Scope::Client).await;
    let bytes = data(30, 9 * M);
    let route = photo(&app, &token, "D1B2C3D4-0000-0000-0000-000000000001", &bytes, true).await;
    let client = Client::new(&app.url, &token, None);
    let created = client
        .create(&route, bytes[..7 * M].to_vec(), false, &[])
        .await
        .unwrap();
    assert_eq!(created.offset(), Some(7 * MIB));
    let url = created.field("location").unwrap().to_owned();
    let staging = storage::StorageKey::parse(format!("uploads/{}", user.id)).unwrap();
    let held: Vec<_> = app.store.list(Some(&staging)).try_collect().await.unwrap();
    assert!(
        !held.is_empty(),
        "the bytes after the last part are kept in the store"
    );
    let cancelled = client.cancel(&url).await.unwrap();
    assert_eq!(cancelled.status, 204);
    assert_eq!(client.offset(&url).await.unwrap().status, 404);
    assert!(stored(&app, user.id.as_str()).await.is_empty());
    assert_no_leftovers(&app, user.id.as_str()).await;
}

/// Uploads cut by a proxy at random byte counts, 25 cuts per backend pair (50 over local and SeaweedFS with
/// one catalog): each is stored once with its SHA-256, the client re-sends at most one part per cut (plus
/// request heads), and nothing is left behind. The files of up to 1 GiB are in the benchmark
/// (`bench/src/bin/resumable.rs`); here files of 6–12 MiB (one to three parts) keep the run short.
pub async fn interrupted_uploads_resume_and_resend_little(app: TestApp) {
    let (user, token) = app.user_with_token(Scope::Client).await;
    let upstream: std::net::SocketAddr = app.url.trim_start_matches("http://").parse().unwrap();
    let proxy = harness::CutProxy::start(upstream).await.unwrap();
    let client = Client::new(&format!("http://{}", proxy.addr()), &token, None);
    let mut total = 0u64;
    let mut requests = 0u64;
    let mut sums = Vec::new();
    let mut n = 0;
    while proxy.cuts() < 25 || n < 3 {
        let bytes = data(100 + n, 6 * M + (n as usize * 1_700_001) % (6 * M));
        let route = photo(
            &app,
            &token,
            &format!("E1B2C3D4-0000-0000-0000-{n:012}"),
            &bytes,
            true,
        )
        .await;
        let mut left = 5u64.min(25u64.saturating_sub(proxy.cuts()));
        let (_, appends) = client
            .upload_resuming(&route, &bytes, |remaining| {
                if left > 0 && remaining > 2048 {
                    left -= 1;
                    // Somewhere inside the body (the request head is a few hundred bytes).
                    proxy.cut_next_after(rand::random_range(1024..remaining));
                }
            })
            .await;
        requests += u64::from(appends) + 2;
        total += bytes.len() as u64;
        sums.push(sha256_hex(&bytes));
        n += 1;
    }
    let cuts = proxy.cuts();
    assert!(cuts >= 25, "{cuts} cuts");
    let sent = proxy.forwarded();
    assert!(
        sent <= total + cuts * PART + requests * 2048,
        "sent {sent} for {total} bytes with {cuts} cuts (bound: one part per cut)"
    );
    let mut objects: Vec<String> = stored(&app, user.id.as_str())
        .await
        .into_iter()
        .map(|(_, sha)| sha)
        .collect();
    objects.sort();
    sums.sort();
    assert_eq!(objects, sums, "each upload stored once with its SHA-256");
    assert_no_leftovers(&app, user.id.as_str()).await;
}

pub async fn idle_uploads_expire_with_their_parts_and_staging(app: TestApp) {
    let (user, token) = app.user_with_token(Scope::Client).await;
    let client = Client::new(&app.url, &token, None);
    // One in progress (a part and a tail kept), one complete.
    let bytes = data(40, 7 * M);
    let route = photo(&app, &token, "G1B2C3D4-0000-0000-0000-000000000001", &bytes, true).await;
    let open = client
        .create(&route, bytes[..6 * M].to_vec(), false, &[])
        .await
        .unwrap();
    assert_eq!(open.status, 201, "{}", open.body);
    let open_url = open.field("location").unwrap().to_owned();
    let small = data(41, 1000);
    let route = photo(&app, &token, "G1B2C3D4-0000-0000-0000-000000000002", &small, true).await;
    let done = client.create(&route, small.clone(), true, &[]).await.unwrap();
    assert_eq!(done.status, 200, "{}", done.body);
    let done_url = done.field("location").unwrap().to_owned();

    // Not idle for an hour yet: kept.
    let mut settings = server::gc::GcSettings::new(std::time::Duration::from_secs(24 * 3600));
    settings.settle = std::time::Duration::ZERO;
    settings.upload_max_age = std::time::Duration::from_secs(3600);
    let report = server::gc::run_pass(app.catalog.as_ref(), &app.store, "test-gc", &settings)
        .await
        .unwrap();
    assert_eq!(report.expired_uploads, 0);
    assert_eq!(client.offset(&open_url).await.unwrap().offset(), Some(6 * MIB));

    // Idle past a max-age of 0: both go; the open one's parts and staging with it, the stored object stays.
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    settings.upload_max_age = std::time::Duration::ZERO;
    let report = server::gc::run_pass(app.catalog.as_ref(), &app.store, "test-gc", &settings)
        .await
        .unwrap();
    assert_eq!(report.expired_uploads, 2);
    assert_eq!(client.offset(&open_url).await.unwrap().status, 404);
    assert_eq!(client.offset(&done_url).await.unwrap().status, 404);
    let objects = stored(&app, user.id.as_str()).await;
    assert_eq!(
        objects.iter().map(|(_, sha)| sha.clone()).collect::<Vec<_>>(),
        vec![sha256_hex(&small)]
    );
    assert_no_leftovers(&app, user.id.as_str()).await;
}

/// The creation fields of a hand-spoken request.
fn creation_fields(
    token: &str,
    length: usize,
    version: &str,
    complete: (&str, &str),
) -> Vec<(&'static str, String)> {
    let mut fields = vec![
        ("authorization", format!("Bearer {token}")),
        ("content-length", length.to_string()),
        ("upload-draft-interop-version", version.to_owned()),
    ];
    fields.push(if complete.0 == "upload-incomplete" {
        ("upload-incomplete", complete.1.to_owned())
    } else {
        ("upload-complete", complete.1.to_owned())
    });
    fields
}

pub async fn a_creation_cut_after_its_104_resumes_at_its_location(app: TestApp) {
    let (user, token) = app.user_with_token(Scope::Client).await;
    let bytes = data(40, 3 * M);
    let route = photo(&app, &token, "F1B2C3D4-0000-0000-0000-000000000001", &bytes, true).await;

    // The whole file announced in one creation; the connection is cut after its first MiB. The 104 is
    // the only place the client learns the upload's URL before the final answer, which never comes.
    let mut raw = Raw::connect(&app.url).await;
    let fields = creation_fields(&token, bytes.len(), "8", ("upload-complete", "?1"));
    raw.send(&format!("POST {route} HTTP/1.1"), &fields, &bytes[..M])
        .await;
    let interim = raw.head().await;
    assert_eq!(interim.status, 104, "{interim:?}");
    let url = interim.field("location").unwrap().to_owned();
    assert!(url.starts_with("/client/iphoto/uploads/"), "{interim:?}");
    assert_eq!(interim.field("upload-draft-interop-version"), Some("8"));
    assert!(
        interim
            .field("upload-limit")
            .is_some_and(|l| l.contains(&format!("min-append-size={PART}"))),
        "{interim:?}"
    );
    drop(raw);

    let client = Client::new(&app.url, &token, None);
    let head = client.offset(&url).await.unwrap();
    assert_eq!(
        (head.status, client.says_complete(&head)),
        (204, Some(false)),
        "{}",
        head.body
    );
    let offset = head.offset().unwrap();
    assert!(offset <= MIB, "more kept than sent: {offset}");
    let done = client
        .append(&url, offset, bytes[offset as usize..].to_vec(), true, &[])
        .await
        .unwrap();
    assert_eq!(done.status, 200, "{}", done.body);
    assert_eq!(done.json()["sha256"], sha256_hex(&bytes));
    let objects = stored(&app, user.id.as_str()).await;
    assert_eq!(objects.len(), 1, "{objects:?}");
    assert_no_leftovers(&app, user.id.as_str()).await;
}

pub async fn the_104_leaves_the_connection_in_step(app: TestApp) {
    let (user, token) = app.user_with_token(Scope::Client).await;
    let one = data(41, 3000);
    let two = data(42, 3000);
    let route_one = photo(&app, &token, "F2B2C3D4-0000-0000-0000-000000000001", &one, false).await;
    let route_two = photo(&app, &token, "F2B2C3D4-0000-0000-0000-000000000002", &two, false).await;

    // HTTP/1.1, an interop version 3 client (`Upload-Incomplete`): a 104 in its version, then the final
    // answer, then the next request on the same connection is answered as such.
    let mut raw = Raw::connect(&app.url).await;
    let fields = creation_fields(&token, one.len(), "3", ("upload-incomplete", "?0"));
    raw.send(&format!("POST {route_one} HTTP/1.1"), &fields, &one)
        .await;
    let interim = raw.head().await;
    assert_eq!(interim.status, 104, "{interim:?}");
    assert_eq!(interim.field("upload-draft-interop-version"), Some("3"));
    let url = interim.field("location").unwrap().to_owned();
    let done = raw.head().await;
    assert_eq!(done.status, 200, "{done:?}");
    assert_eq!(done.field("location"), Some(url.as_str()));
    assert_eq!(done.field("upload-incomplete"), Some("?0"));
    let answer: serde_json::Value = serde_json::from_slice(&raw.content(&done).await).unwrap();
    assert_eq!(answer["sha256"], sha256_hex(&one));
    raw.send("GET /healthz HTTP/1.1", &[], b"").await;
    let health = raw.head().await;
    assert_eq!(health.status, 200, "{health:?}");
    raw.content(&health).await;

    // An empty creation needs no 104: its final answer comes first.
    let empty = creation_fields(&token, 0, "8", ("upload-complete", "?0"));
    raw.send(&format!("POST {route_two} HTTP/1.1"), &empty, b"").await;
    let created = raw.head().await;
    assert_eq!(created.status, 201, "{created:?}");
    raw.content(&created).await;

    // HTTP/1.0 clients never get a 1xx (RFC 9110, 15.2).
    let mut old = Raw::connect(&app.url).await;
    let url_two = created.field("location").unwrap().to_owned();
    let mut fields = creation_fields(&token, two.len(), "8", ("upload-complete", "?1"));
    fields.push(("upload-offset", "0".to_owned()));
    fields.push(("content-type", "application/partial-upload".to_owned()));
    old.send(&format!("PATCH {url_two} HTTP/1.0"), &fields, &two)
        .await;
    let appended = old.head().await;
    assert_eq!(appended.status, 200, "{appended:?}");
    let route_three_bytes = data(43, 3000);
    let route_three = photo(
        &app,
        &token,
        "F2B2C3D4-0000-0000-0000-000000000003",
        &route_three_bytes,
        false,
    )
    .await;
    let mut old = Raw::connect(&app.url).await;
    let fields = creation_fields(&token, route_three_bytes.len(), "8", ("upload-complete", "?1"));
    old.send(
        &format!("POST {route_three} HTTP/1.0"),
        &fields,
        &route_three_bytes,
    )
    .await;
    let answer = old.head().await;
    assert_eq!(answer.status, 200, "an HTTP/1.0 client got {answer:?}");
    assert!(answer.field("location").is_some(), "{answer:?}");

    let objects = stored(&app, user.id.as_str()).await;
    assert_eq!(objects.len(), 3, "{objects:?}");
    assert_no_leftovers(&app, user.id.as_str()).await;
}
