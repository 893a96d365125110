//! Nothing lost (issue 12), the invariant of ARCHITECTURE.md: no acknowledged byte is deleted before the
//! retention, verified by hash — and none is written over. Each behaviour runs against {SQLite, PostgreSQL} ×
//! {local directory, SeaweedFS}. The first three are breaks that were seen with objects written in place
//! under keys built from the identifier (an edit destroying an unchanged duplicate, two identifiers with one
//! UUID, originals beside their bundle path); each fails on that code. The fourth break (staging left by
//! kill -9) is `kill_mid_upload.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod app;

use app::{Backends, TestApp, assert_error, item, read, sha256_hex};
use futures::TryStreamExt as _;
use serde_json::json;
use server::catalog::Scope;
use storage::{LibraryLayout, StorageKey};

const LIB: &str = "Nothing-Lost-Library";

struct User {
    user: server::catalog::User,
    client: String,
    web: String,
}

async fn user(app: &TestApp) -> User {
    let (user, client) = app.user_with_token(Scope::Client).await;
    let web = app.token(&user, Scope::Web).await;
    User { user, client, web }
}

/// A photo item named `identifier` whose original declares `bytes` (and, when given, a bundle path).
fn photo(identifier: &str, bytes: &[u8], bundle_path: Option<&str>) -> serde_json::Value {
    let mut value = item("X", bytes.len() as u64, Some(&sha256_hex(bytes)));
    value["localIdentifier"] = identifier.into();
    if let Some(path) = bundle_path {
        value["resources"][0]["bundlePath"] = path.into();
    }
    value
}

async fn sync(app: &TestApp, u: &User, items: Vec<serde_json::Value>) -> serde_json::Value {
    let (status, answer) = app
        .post_json(
            &u.client,
            "/client/iphoto/sync",
            &json!({ "libraryId": LIB, "items": items }),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    answer
}

/// Uploads `body` as the original of `identifier`, announcing its digest only when `digest` is true.
async fn upload(
    app: &TestApp,
    u: &User,
    identifier: &str,
    body: &[u8],
    digest: bool,
) -> (u16, serde_json::Value) {
    let mut request = app
        .http
        .post(app.url(&format!("/client/iphoto/upload/{identifier}?library={LIB}")))
        .bearer_auth(&u.client)
        .body(body.to_vec());
    if digest {
        request = request.header("x-content-sha256", sha256_hex(body));
    }
    read(request.send().await.unwrap()).await
}

/// Every stored resource of every photo of the user is served (through its presigned URL) with exactly the
/// bytes whose SHA-256 the catalog records for it. Returns `(identifier, sha256)` of each stored resource.
async fn assert_serves_what_it_records(app: &TestApp, u: &User) -> Vec<(String, String)> {
    let (status, list) = app.get_json(&u.web, "/my/photos/?limit=500").await;
    assert_eq!(status, 200, "{list}");
    let mut seen = Vec::new();
    for listed in list["items"].as_array().unwrap() {
        let id = listed["id"].as_str().unwrap();
        let (status, photo) = app.get_json(&u.web, &format!("/my/photos/{id}")).await;
        assert_eq!(status, 200, "{photo}");
        for resource in photo["resources"].as_array().unwrap() {
            if resource["state"] != "stored" {
                continue;
            }
            let recorded = resource["sha256"].as_str().unwrap();
            let url = resource["url"].as_str().unwrap();
            let bytes = app.http.get(url).send().await.unwrap().bytes().await.unwrap();
            assert_eq!(
                sha256_hex(&bytes),
                recorded,
                "{}: the catalog records one content and the store serves another",
                photo["localIdentifier"]
            );
            seen.push((
                photo["localIdentifier"].as_str().unwrap().to_owned(),
                recorded.to_owned(),
            ));
        }
    }
    seen.sort();
    seen
}

/// Every object under the user's prefix.
async fn objects(app: &TestApp, u: &User) -> Vec<StorageKey> {
    let prefix = LibraryLayout::user_prefix(u.user.id.as_str()).unwrap();
    let listed: Vec<_> = app.store.list(Some(&prefix)).try_collect().await.unwrap();
    listed.into_iter().map(|m| m.key).collect()
}

/// Break 1: `a.jpg` and an identical `copy_of_a.jpg`; `a.jpg` is edited and synced. The copy must still be
/// served with A's bytes, and the edit with B's.
pub async fn an_edit_keeps_an_unchanged_duplicate(app: TestApp) {
    let u = user(&app).await;
    let a = b"the bytes of a.jpg as first synced".to_vec();
    let b = b"the bytes of a.jpg after an edit, longer".to_vec();
    sync(
        &app,
        &u,
        vec![
            photo("AAAA0001/L0/001", &a, None),
            photo("AAAA0002/L0/001", &a, None),
        ],
    )
    .await;
    let (status, first) = upload(&app, &u, "AAAA0001/L0/001", &a, true).await;
    assert_eq!(status, 200, "{first}");
    // The copy was linked to the same object: nothing uploaded twice.
    let pending = app.get_json(&u.client, "/client/iphoto/upload/pending").await.1;
    assert_eq!(pending["items"].as_array().unwrap().len(), 0, "{pending}");

    let answer = sync(&app, &u, vec![photo("AAAA0001/L0/001", &b, None)]).await;
    assert_eq!(
        answer["results"][0]["needsUpload"],
        json!(["original"]),
        "{answer}"
    );
    let (status, edited) = upload(&app, &u, "AAAA0001/L0/001", &b, true).await;
    assert_eq!(status, 200, "{edited}");
    assert_ne!(edited["key"], first["key"], "new content gets a new key");

    let stored = assert_serves_what_it_records(&app, &u).await;
    assert_eq!(
        stored,
        vec![
            ("AAAA0001/L0/001".to_owned(), sha256_hex(&b)),
            ("AAAA0002/L0/001".to_owned(), sha256_hex(&a)),
        ]
    );
}

/// Break 2: two identifiers with one UUID (`U/L0/001`, `U/L0/002`) each keep their own bytes.
pub async fn identifiers_sharing_a_uuid_keep_their_own_bytes(app: TestApp) {
    let u = user(&app).await;
    let one = b"first identifier's bytes".to_vec();
    let two = b"second identifier's other bytes".to_vec();
    sync(
        &app,
        &u,
        vec![
            photo("BBBB0001/L0/001", &one, None),
            photo("BBBB0001/L0/002", &two, None),
        ],
    )
    .await;
    let (status, first) = upload(&app, &u, "BBBB0001/L0/001", &one, true).await;
    assert_eq!(status, 200, "{first}");
    let (status, second) = upload(&app, &u, "BBBB0001/L0/002", &two, true).await;
    assert_eq!(status, 200, "{second}");
    assert_ne!(first["key"], second["key"]);
    let stored = assert_serves_what_it_records(&app, &u).await;
    assert_eq!(
        stored,
        vec![
            ("BBBB0001/L0/001".to_owned(), sha256_hex(&one)),
            ("BBBB0001/L0/002".to_owned(), sha256_hex(&two)),
        ]
    );
    assert_eq!(objects(&app, &u).await.len(), 2);
}

/// One copy at the bundle path: an original declared with its bundle path is stored exactly there; bytes
/// already there (as `seed-originals` leaves them) are adopted without reading the body; other bytes there
/// are never written over, and the upload goes to its content key instead.
pub async fn originals_live_at_their_bundle_path_and_are_never_written_over(app: TestApp) {
    let u = user(&app).await;
    let library = app.catalog.ensure_library(&u.user.id, LIB).await.unwrap();
    let layout = LibraryLayout::new(u.user.id.as_str(), library.id.as_str()).unwrap();
    let fresh = b"an original nobody stored yet".to_vec();
    let seeded = b"an original seed-originals copied first".to_vec();
    let other = b"bytes that were at the path before".to_vec();
    let new = b"new bytes declared for that path".to_vec();
    let paths = [
        "originals/C/CCCC0001.heic",
        "originals/C/CCCC0002.heic",
        "originals/C/CCCC0003.heic",
    ];
    for (path, bytes) in [(paths[1], &seeded), (paths[2], &other)] {
        app.store
            .put(
                &layout.bundle(path).unwrap(),
                bytes.clone().into(),
                &Default::default(),
            )
            .await
            .unwrap();
    }
    sync(
        &app,
        &u,
        vec![
            photo("CCCC0001/L0/001", &fresh, Some(paths[0])),
            photo("CCCC0002/L0/001", &seeded, Some(paths[1])),
            photo("CCCC0003/L0/001", &new, Some(paths[2])),
        ],
    )
    .await;

    let (status, answer) = upload(&app, &u, "CCCC0001/L0/001", &fresh, true).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["key"], layout.bundle(paths[0]).unwrap().as_str());
    assert_eq!(answer["deduplicated"], false);

    // The body is never read: garbage of the right length is answered from the object already there.
    let mut request = app
        .http
        .post(app.url(&format!("/client/iphoto/upload/CCCC0002/L0/001?library={LIB}")))
        .bearer_auth(&u.client)
        .header("x-content-sha256", sha256_hex(&seeded))
        .body(vec![0u8; seeded.len()]);
    request = request.header("content-type", "application/octet-stream");
    let (status, adopted) = read(request.send().await.unwrap()).await;
    assert_eq!(status, 200, "{adopted}");
    assert_eq!(adopted["key"], layout.bundle(paths[1]).unwrap().as_str());
    assert_eq!(adopted["deduplicated"], true);

    let (status, moved) = upload(&app, &u, "CCCC0003/L0/001", &new, true).await;
    assert_eq!(status, 200, "{moved}");
    assert_eq!(
        moved["key"],
        layout
            .content(&storage::Sha256Digest::of(&new), "heic")
            .unwrap()
            .as_str()
    );
    assert_eq!(
        app.store
            .get_bytes(&layout.bundle(paths[2]).unwrap())
            .await
            .unwrap(),
        other.as_slice(),
        "the bytes that were there are untouched"
    );
    assert_serves_what_it_records(&app, &u).await;
    assert_eq!(objects(&app, &u).await.len(), 4);
}

/// Identifiers that could never be named in an upload, and bundle paths that could escape the library, are
/// rejected per item at sync (the rest of the batch applies) instead of being left pending for ever.
pub async fn sync_rejects_what_could_never_be_uploaded(app: TestApp) {
    let u = user(&app).await;
    let bytes = b"x".to_vec();
    let bad_ids = [
        "../x",
        "/etc/passwd",
        ".",
        "",
        "a\u{1}b/L0/001",
        "a\\b/L0/001",
        "U//001",
    ];
    let mut items: Vec<_> = bad_ids.iter().map(|id| photo(id, &bytes, None)).collect();
    items.push(photo("DDDD0001/L0/001", &bytes, Some("../../escape.jpg")));
    items.push(photo("DDDD0002/L0/001", &bytes, Some("/originals/D/x.jpg")));
    items.push(photo(
        "DDDD0003/L0/001",
        &bytes,
        Some("originals/D/DDDD0003.jpeg"),
    ));
    let answer = sync(&app, &u, items).await;
    let results = answer["results"].as_array().unwrap();
    for (n, result) in results.iter().enumerate().take(bad_ids.len()) {
        assert_eq!(result["outcome"], "rejected", "{}: {result}", bad_ids[n]);
        assert!(
            result["reason"].as_str().unwrap().starts_with("localIdentifier"),
            "{result}"
        );
    }
    for result in &results[bad_ids.len()..bad_ids.len() + 2] {
        assert_eq!(result["outcome"], "rejected", "{result}");
        assert!(
            result["reason"].as_str().unwrap().contains("bundlePath"),
            "{result}"
        );
    }
    assert_eq!(results[bad_ids.len() + 2]["outcome"], "created");
    let pending = app.get_json(&u.client, "/client/iphoto/upload/pending").await.1;
    let pending: Vec<_> = pending["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["localIdentifier"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(pending, ["DDDD0003/L0/001"]);
}

/// An upload without a digest header is held to the SHA-256 and size the sync declared: other bytes are
/// refused and nothing is stored; the declared bytes are accepted.
pub async fn an_upload_without_a_digest_is_held_to_the_declaration(app: TestApp) {
    let u = user(&app).await;
    let declared = b"the bytes the Mac hashed at sync".to_vec();
    sync(&app, &u, vec![photo("EEEE0001/L0/001", &declared, None)]).await;

    let mut other = declared.clone();
    other[0] ^= 1;
    assert_error(
        &upload(&app, &u, "EEEE0001/L0/001", &other, false).await,
        422,
        "digest_mismatch",
    );
    assert_error(
        &upload(&app, &u, "EEEE0001/L0/001", &declared[1..], false).await,
        422,
        "size_mismatch",
    );
    assert!(
        objects(&app, &u).await.is_empty(),
        "a refused upload stores nothing"
    );
    let pending = app.get_json(&u.client, "/client/iphoto/upload/pending").await.1;
    assert_eq!(pending["items"].as_array().unwrap().len(), 1, "{pending}");

    let (status, answer) = upload(&app, &u, "EEEE0001/L0/001", &declared, false).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["sha256"], sha256_hex(&declared));
    assert_serves_what_it_records(&app, &u).await;
}

/// An upload of content no one declared (no digest header, no declared SHA-256) is hashed on the way, then
/// kept under its content key; an identical second one is linked, not stored twice.
pub async fn an_undeclared_upload_lands_at_its_content_key(app: TestApp) {
    let u = user(&app).await;
    let bytes = b"bytes nobody hashed before the upload".to_vec();
    let mut one = photo("FFFF0001/L0/001", &bytes, None);
    one["resources"][0].as_object_mut().unwrap().remove("sha256");
    let mut two = one.clone();
    two["localIdentifier"] = "FFFF0002/L0/001".into();
    sync(&app, &u, vec![one, two]).await;
    let (status, first) = upload(&app, &u, "FFFF0001/L0/001", &bytes, false).await;
    assert_eq!(status, 200, "{first}");
    assert!(first["key"].as_str().unwrap().contains("/content/"), "{first}");
    let (status, second) = upload(&app, &u, "FFFF0002/L0/001", &bytes, false).await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(second["key"], first["key"]);
    assert_eq!(objects(&app, &u).await.len(), 1, "no incoming object left behind");
    assert_serves_what_it_records(&app, &u).await;
}

/// The resumable migration: objects stored before the agent sent bundle paths (here: uploaded without one,
/// so at their content key) and an in-library duplicate linked to another photo's object are copied to their
/// bundle paths, verified and repointed; bundle paths holding other bytes are left alone; a second pass finds
/// nothing to do. The old objects stay for the garbage collector.
pub async fn stored_objects_move_to_their_bundle_path(app: TestApp) {
    let u = user(&app).await;
    let library = app.catalog.ensure_library(&u.user.id, LIB).await.unwrap();
    let layout = LibraryLayout::new(u.user.id.as_str(), library.id.as_str()).unwrap();
    let a = b"an original uploaded by an old agent".to_vec();
    let other = b"someone else's bytes at the third path".to_vec();
    let c = b"the third original".to_vec();
    let ids = ["GGGG0001/L0/001", "GGGG0002/L0/001", "GGGG0003/L0/001"];
    let paths = [
        "originals/G/GGGG0001.jpeg",
        "originals/G/GGGG0002.jpeg",
        "originals/G/GGGG0003.jpeg",
    ];
    sync(&app, &u, vec![photo(ids[0], &a, None), photo(ids[2], &c, None)]).await;
    for (id, bytes) in [(ids[0], &a), (ids[2], &c)] {
        let (status, answer) = upload(&app, &u, id, bytes, true).await;
        assert_eq!(status, 200, "{answer}");
    }
    app.store
        .put(
            &layout.bundle(paths[2]).unwrap(),
            other.clone().into(),
            &Default::default(),
        )
        .await
        .unwrap();
    // The upgraded agent declares bundle paths; the duplicate is linked to the first photo's object.
    let answer = sync(
        &app,
        &u,
        vec![
            photo(ids[0], &a, Some(paths[0])),
            photo(ids[1], &a, Some(paths[1])),
            photo(ids[2], &c, Some(paths[2])),
        ],
    )
    .await;
    assert!(
        answer["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["needsUpload"] == json!([])),
        "{answer}"
    );
    let before = objects(&app, &u).await;

    let report = server::relocate::relocate_all(app.catalog.as_ref(), &app.store)
        .await
        .unwrap();
    assert_eq!(
        (report.moved, report.adopted, report.left),
        (2, 0, 1),
        "{report:?}"
    );
    assert!(report.failed.is_empty(), "{report:?}");
    for (path, bytes) in [(paths[0], &a), (paths[1], &a), (paths[2], &other)] {
        assert_eq!(
            app.store.get_bytes(&layout.bundle(path).unwrap()).await.unwrap(),
            bytes.as_slice()
        );
    }
    for key in &before {
        app.store
            .head(key)
            .await
            .expect("the old objects stay for the collector");
    }
    let stored = assert_serves_what_it_records(&app, &u).await;
    assert_eq!(stored.len(), 3);
    let again = server::relocate::relocate_all(app.catalog.as_ref(), &app.store)
        .await
        .unwrap();
    assert_eq!((again.moved, again.adopted, again.left), (0, 0, 1), "{again:?}");
}

matrix!(
    an_edit_keeps_an_unchanged_duplicate,
    identifiers_sharing_a_uuid_keep_their_own_bytes,
    originals_live_at_their_bundle_path_and_are_never_written_over,
    sync_rejects_what_could_never_be_uploaded,
    an_upload_without_a_digest_is_held_to_the_declaration,
    an_undeclared_upload_lands_at_its_content_key,
    stored_objects_move_to_their_bundle_path,
);
