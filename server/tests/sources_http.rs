//! One iCloud library synced from two Macs is one set of photos (issue 13, item 9), over HTTP against
//! {SQLite, PostgreSQL} × {local directory, SeaweedFS}: the web shows one photo per iCloud asset, each Mac's
//! identifier resolves, each Mac's pending list asks it for what only it is to upload, nothing is stored
//! twice (relocation included), and users never share photos.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod app;

use app::{Backends, TestApp, assert_error, read, sha256_hex};
use futures::StreamExt as _;
use serde_json::json;
use server::catalog::Scope;

const MAC_A: &str = "imac-photos-library";
const MAC_B: &str = "macbook-photos-library";

/// Bytes of the original of photo `n`.
fn bytes(n: u8) -> Vec<u8> {
    (0..40_000u32).map(|i| (i % 241) as u8 ^ n).collect()
}

/// Photo `n` as a Mac sees it: its own UUID `<mac><n>`, the photo's GUID and fingerprint when given, the
/// original at its bundle path (on disk or only in iCloud).
fn asset(
    mac: &str,
    n: u8,
    guid: Option<&str>,
    fingerprint: Option<&str>,
    on_disk: bool,
) -> serde_json::Value {
    let uuid = format!("{mac}{n:04}");
    let data = bytes(n);
    let mut original = json!({
        "type": "original", "size": data.len(), "available": on_disk,
        "bundlePath": format!("originals/{}/{uuid}.heic", &uuid[..1]),
    });
    if on_disk {
        original["sha256"] = sha256_hex(&data).into();
    } else {
        original["unavailableReason"] = "icloud_only".into();
    }
    let mut item = json!({
        "localIdentifier": format!("{uuid}/L0/001"),
        "kind": "photo", "livePhoto": false, "width": 4032, "height": 3024,
        "takenAt": format!("2024-05-{:02}T10:00:00+02:00", n), "modifiedAt": "2024-06-01T10:00:00Z",
        "favorite": false, "hidden": false, "trashed": false,
        "originalFilename": format!("IMG_{n:04}.HEIC"), "uti": "public.heic", "edited": false,
        "resources": [original]
    });
    if let Some(guid) = guid {
        item["cloudGuid"] = guid.into();
    }
    if let Some(fingerprint) = fingerprint {
        item["fingerprint"] = fingerprint.into();
    }
    item
}

async fn sync(app: &TestApp, token: &str, library: &str, items: Vec<serde_json::Value>) -> serde_json::Value {
    let (status, answer) = app
        .post_json(
            token,
            "/client/iphoto/sync",
            &json!({ "libraryId": library, "items": items }),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    answer
}

/// `(localIdentifier, resource)` of every page of `library`'s pending list.
async fn pending(app: &TestApp, token: &str, library: &str) -> Vec<String> {
    let (status, page) = app
        .get_json(
            token,
            &format!("/client/iphoto/upload/pending?library={library}&limit=1000"),
        )
        .await;
    assert_eq!(status, 200, "{page}");
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            assert_eq!(p["libraryId"], library, "{p}");
            format!(
                "{} {}",
                p["localIdentifier"].as_str().unwrap(),
                p["resource"].as_str().unwrap()
            )
        })
        .collect()
}

async fn upload(app: &TestApp, token: &str, library: &str, uuid: &str, n: u8) -> (u16, serde_json::Value) {
    let data = bytes(n);
    let response = app
        .http
        .post(app.url(&format!("/client/iphoto/upload/{uuid}/L0/001?library={library}")))
        .bearer_auth(token)
        .header("x-content-sha256", sha256_hex(&data))
        .body(data)
        .send()
        .await
        .unwrap();
    read(response).await
}

/// The web timeline's `(id, localIdentifier)`s.
async fn timeline(app: &TestApp, web: &str) -> Vec<(String, String)> {
    let (status, page) = app.get_json(web, "/my/photos/?limit=100").await;
    assert_eq!(status, 200, "{page}");
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["id"].as_str().unwrap().to_owned(),
                p["localIdentifier"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

async fn objects(app: &TestApp) -> Vec<String> {
    let listed: Vec<_> = app.store.list(None).collect().await;
    listed.into_iter().map(|o| o.unwrap().key.to_string()).collect()
}

pub async fn two_macs_of_one_icloud_library_are_one_photo_set(app: TestApp) {
    let (user, client) = app.user_with_token(Scope::Client).await;
    let web = app.token(&user, Scope::Web).await;
    // The iMac keeps every original; it syncs first and uploads photo 1.
    sync(
        &app,
        &client,
        MAC_A,
        vec![
            asset("A", 1, Some("guid-1"), Some("fp-1"), true),
            asset("A", 2, Some("guid-2"), Some("fp-2"), true),
            asset("A", 3, Some("guid-3"), Some("fp-3"), false),
        ],
    )
    .await;
    assert_eq!(upload(&app, &client, MAC_A, "A0001", 1).await.0, 200);

    // The MacBook ("Optimise Mac storage" off for photo 3 only) has the same three photos under its own UUIDs.
    let answer = sync(
        &app,
        &client,
        MAC_B,
        vec![
            asset("B", 1, Some("guid-1"), Some("fp-1"), true),
            asset("B", 2, Some("guid-2"), Some("fp-2"), true),
            asset("B", 3, Some("guid-3"), Some("fp-3"), true),
        ],
    )
    .await;
    let outcomes: Vec<(&str, serde_json::Value)> = answer["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["outcome"].as_str().unwrap(), r["needsUpload"].clone()))
        .collect();
    assert_eq!(
        outcomes,
        vec![
            ("updated", json!([])),
            ("updated", json!([])),
            ("updated", json!(["original"]))
        ],
        "1 is stored, 2 is the iMac's to upload, 3 only the MacBook has: {answer}"
    );

    // One photo set on the web, named by the iMac, which synced first.
    let photos = timeline(&app, &web).await;
    let names: Vec<&str> = photos.iter().map(|(_, id)| id.as_str()).collect();
    assert_eq!(
        names,
        vec!["A0003/L0/001", "A0002/L0/001", "A0001/L0/001"],
        "{photos:?}"
    );

    // Each Mac is asked for what only it is to upload.
    assert_eq!(pending(&app, &client, MAC_A).await, vec!["A0002/L0/001 original"]);
    assert_eq!(pending(&app, &client, MAC_B).await, vec!["B0003/L0/001 original"]);

    // Both Macs' identifiers resolve: photo 1 from the MacBook is the stored bytes (nothing read, nothing
    // written); photo 2 is the iMac's to upload; photo 3 goes to the MacBook's bundle path.
    let (status, linked) = upload(&app, &client, MAC_B, "B0001", 1).await;
    assert_eq!((status, &linked["deduplicated"]), (200, &json!(true)), "{linked}");
    assert_error(
        &upload(&app, &client, MAC_B, "B0002", 2).await,
        409,
        "held_by_another_library",
    );
    let (status, third) = upload(&app, &client, MAC_B, "B0003", 3).await;
    assert_eq!(status, 200, "{third}");
    let library_b = app.catalog.library(&user.id, MAC_B).await.unwrap().unwrap();
    assert_eq!(
        third["key"],
        format!(
            "users/{}/libraries/{}/originals/B/B0003.heic",
            user.id, library_b.id
        )
    );
    assert_eq!(upload(&app, &client, MAC_A, "A0002", 2).await.0, 200);
    assert!(pending(&app, &client, MAC_A).await.is_empty());
    assert!(pending(&app, &client, MAC_B).await.is_empty());

    // One object per original, at the bundle path of the Mac that uploaded it, also after relocation.
    let stored = objects(&app).await;
    assert_eq!(stored.len(), 3, "{stored:?}");
    let relocated = server::relocate::relocate_all(app.catalog.as_ref(), &app.store)
        .await
        .unwrap();
    assert_eq!(relocated, server::relocate::RelocateReport::default());
    assert_eq!(objects(&app).await.len(), 3);
    let (_, stats) = app.get_json(&client, "/client/iphoto/stats").await;
    assert_eq!(
        (&stats["photos"], &stats["uploaded"]),
        (&json!(3), &json!(3)),
        "{stats}"
    );
}

pub async fn a_photo_without_a_guid_merges_by_fingerprint(app: TestApp) {
    let (user, client) = app.user_with_token(Scope::Client).await;
    let web = app.token(&user, Scope::Web).await;
    // Imported on the iMac, not in iCloud yet: no GUID. The MacBook sees it once iCloud gave it one.
    sync(
        &app,
        &client,
        MAC_A,
        vec![asset("A", 1, None, Some("fp-1"), true)],
    )
    .await;
    let answer = sync(
        &app,
        &client,
        MAC_B,
        vec![asset("B", 1, Some("guid-1"), Some("fp-1"), true)],
    )
    .await;
    assert_eq!(answer["results"][0]["outcome"], "updated", "{answer}");
    assert_eq!(answer["results"][0]["needsUpload"], json!([]), "{answer}");
    let photos = timeline(&app, &web).await;
    assert_eq!(photos.len(), 1, "{photos:?}");
    let (status, detail) = app.get_json(&web, &format!("/my/photos/{}", photos[0].0)).await;
    assert_eq!(status, 200, "{detail}");
    assert_eq!(detail["cloudGuid"], "guid-1", "{detail}");
    // A photo with its own GUID is another iCloud asset, however equal its bytes: not merged.
    sync(
        &app,
        &client,
        MAC_A,
        vec![asset("A", 2, Some("guid-2"), Some("fp-2"), true)],
    )
    .await;
    let other = sync(
        &app,
        &client,
        MAC_B,
        vec![asset("B", 2, None, Some("fp-2"), true)],
    )
    .await;
    assert_eq!(other["results"][0]["outcome"], "created", "{other}");
    assert_eq!(timeline(&app, &web).await.len(), 3);
}

pub async fn users_never_share_photos(app: TestApp) {
    let (alice, alice_client) = app.user_with_token(Scope::Client).await;
    let (bob, bob_client) = app.user_with_token(Scope::Client).await;
    let alice_web = app.token(&alice, Scope::Web).await;
    let bob_web = app.token(&bob, Scope::Web).await;
    sync(
        &app,
        &alice_client,
        MAC_A,
        vec![asset("A", 1, Some("guid-1"), Some("fp-1"), true)],
    )
    .await;
    assert_eq!(upload(&app, &alice_client, MAC_A, "A0001", 1).await.0, 200);
    // Bob has two Macs too, and the same GUID and fingerprint (copied files): his own photo, his upload.
    sync(&app, &bob_client, MAC_A, vec![]).await;
    let answer = sync(
        &app,
        &bob_client,
        MAC_B,
        vec![asset("B", 1, Some("guid-1"), Some("fp-1"), true)],
    )
    .await;
    assert_eq!(answer["results"][0]["outcome"], "created", "{answer}");
    assert_eq!(
        answer["results"][0]["needsUpload"],
        json!(["original"]),
        "{answer}"
    );
    assert_eq!(
        pending(&app, &bob_client, MAC_B).await,
        vec!["B0001/L0/001 original"]
    );
    assert!(pending(&app, &alice_client, MAC_A).await.is_empty());
    // Neither resolves the other's identifier.
    assert_error(
        &upload(&app, &bob_client, MAC_A, "A0001", 1).await,
        404,
        "not_found",
    );
    let alice_photos = timeline(&app, &alice_web).await;
    let bob_photos = timeline(&app, &bob_web).await;
    assert_eq!((alice_photos.len(), bob_photos.len()), (1, 1));
    assert_ne!(alice_photos[0].0, bob_photos[0].0);
}

pub async fn pending_library_bad_input(app: TestApp) {
    let (user, client) = app.user_with_token(Scope::Client).await;
    let (_, other) = app.user_with_token(Scope::Client).await;
    sync(&app, &other, "bobs-mac", vec![asset("A", 1, None, None, true)]).await;
    sync(&app, &client, MAC_A, vec![asset("A", 2, None, None, true)]).await;
    let version = app.catalog.version(&user.id).await.unwrap();
    for (query, status, code) in [
        ("library=never-synced", 404, "not_found"),
        // Another user's library is not one of the caller's.
        ("library=bobs-mac", 404, "not_found"),
        ("library=", 400, "invalid_query"),
        (&*format!("library={}", "x".repeat(201)), 400, "invalid_query"),
        ("library=a%07b", 400, "invalid_query"),
        ("libary=typo", 400, "invalid_query"),
    ] {
        let answer = app
            .get_json(&client, &format!("/client/iphoto/upload/pending?{query}"))
            .await;
        assert_error(&answer, status, code);
    }
    // Asking created nothing.
    assert!(
        app.catalog
            .library(&user.id, "never-synced")
            .await
            .unwrap()
            .is_none()
    );
    assert!(app.catalog.library(&user.id, "bobs-mac").await.unwrap().is_none());
    assert_eq!(app.catalog.version(&user.id).await.unwrap(), version);
    assert_eq!(pending(&app, &client, MAC_A).await, vec!["A0002/L0/001 original"]);
}

matrix!(
    two_macs_of_one_icloud_library_are_one_photo_set,
    a_photo_without_a_guid_merges_by_fingerprint,
    users_never_share_photos,
    pending_library_bad_input,
);
