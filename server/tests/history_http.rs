//! History and trash over HTTP, against SQLite and PostgreSQL (local directory store): a photo's history,
//! the changes feed with its paging and bad parameters, and `POST /admin/restore` with its bad requests.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod app;
mod owner;

use std::time::Duration;

use app::{Backends, TestApp, assert_error, item};
use owner::{LIB, Owner};
use serde_json::{Value, json};
use server::catalog::Scope;

/// The caller's photo ids by local identifier prefix, from the timeline.
async fn photo_id(app: &TestApp, owner: &Owner, uuid: &str) -> String {
    let (_, page) = app.get_json(&owner.web, "/my/photos/?includeHidden=true").await;
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["localIdentifier"] == format!("{uuid}/L0/001"))
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

pub async fn history_lists_versions_and_hides_other_users(app: TestApp) {
    let owner = Owner::new(&app).await;
    owner.photo_with_original(&app, "H0000001", b"first bytes").await;
    let id = photo_id(&app, &owner, "H0000001").await;
    let mut changed = item("H0000001", 11, Some(&app::sha256_hex(b"first bytes")));
    changed["favorite"] = true.into();
    owner.sync(&app, vec![changed.clone()]).await;
    changed["deleted"] = true.into();
    owner.sync(&app, vec![changed]).await;

    let (status, history) = app
        .get_json(&owner.web, &format!("/my/photos/{id}/history"))
        .await;
    assert_eq!(status, 200, "{history}");
    let versions = history["versions"].as_array().unwrap();
    let changes: Vec<&str> = versions.iter().map(|v| v["change"].as_str().unwrap()).collect();
    assert_eq!(changes.first(), Some(&"deleted"));
    assert_eq!(changes.last(), Some(&"created"));
    let favorite = versions
        .iter()
        .find(|v| v["changedFields"] == json!(["favorite"]))
        .unwrap();
    assert_eq!(favorite["metadata"]["favorite"], true);
    assert_eq!(
        favorite["resources"],
        json!([{ "type": "original", "sha256": app::sha256_hex(b"first bytes") }])
    );
    assert!(
        favorite["changedAt"].as_str().unwrap().ends_with('Z'),
        "{favorite}"
    );
    assert!(favorite["libraryId"].as_str().is_some_and(|l| !l.is_empty()));

    let stranger = Owner::new(&app).await;
    assert_error(
        &app.get_json(&stranger.web, &format!("/my/photos/{id}/history"))
            .await,
        404,
        "not_found",
    );
    assert_error(
        &app.get_json(&owner.web, "/my/photos/nope/history").await,
        404,
        "not_found",
    );
    assert_error(
        &app.get_json(&owner.client, &format!("/my/photos/{id}/history"))
            .await,
        403,
        "wrong_scope",
    );
}

pub async fn changes_page_in_version_order_with_deletes(app: TestApp) {
    let owner = Owner::new(&app).await;
    let batch: Vec<Value> = (0..5).map(|n| item(&format!("C000000{n}"), 10, None)).collect();
    owner.sync(&app, batch.clone()).await;

    // Five photos of one version, two per page: the cursor resumes inside the version.
    let mut since = "0".to_owned();
    let mut seen = Vec::new();
    loop {
        let (status, page) = app
            .get_json(&owner.web, &format!("/my/photos/changes?since={since}&limit=2"))
            .await;
        assert_eq!(status, 200, "{page}");
        for change in page["changes"].as_array().unwrap() {
            assert_eq!(change["change"], "upsert");
            seen.push(change["photoId"].as_str().unwrap().to_owned());
        }
        since = page["nextSince"].as_str().unwrap().to_owned();
        if page["hasMore"] == false {
            break;
        }
    }
    assert_eq!(seen.len(), 5, "every photo once: {seen:?}");
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 5);
    let (_, nothing) = app
        .get_json(&owner.web, &format!("/my/photos/changes?since={since}"))
        .await;
    assert_eq!(nothing["changes"], json!([]));
    assert_eq!(nothing["nextSince"], since.as_str());

    let mut gone = batch[0].clone();
    gone["deleted"] = true.into();
    owner.sync(&app, vec![gone]).await;
    let mut favorite = batch[1].clone();
    favorite["favorite"] = true.into();
    owner.sync(&app, vec![favorite]).await;
    let (_, page) = app
        .get_json(&owner.web, &format!("/my/photos/changes?since={since}"))
        .await;
    let changes = page["changes"].as_array().unwrap();
    assert_eq!(
        changes
            .iter()
            .map(|c| c["change"].as_str().unwrap())
            .collect::<Vec<_>>(),
        vec!["delete", "upsert"]
    );
    assert!(changes[0].get("photo").is_none());
    assert_eq!(changes[1]["photo"]["favorite"], true);
    assert!(changes[0]["version"].as_i64() < changes[1]["version"].as_i64());

    for bad in [
        "since=abc",
        "since=-1",
        "since=3:",
        "since=3:x%2Fy",
        "limit=0",
        "limit=1001",
        "limit=x",
        "color=red",
    ] {
        assert_error(
            &app.get_json(&owner.web, &format!("/my/photos/changes?{bad}"))
                .await,
            400,
            "invalid_query",
        );
    }
    let stranger = Owner::new(&app).await;
    let (_, theirs) = app.get_json(&stranger.web, "/my/photos/changes").await;
    assert_eq!(theirs["changes"], json!([]));
}

pub async fn admin_restore_brings_back_a_photo(app: TestApp) {
    let owner = Owner::new(&app).await;
    let admin = app.user_with_token(Scope::Admin).await.1;
    owner.photo_with_original(&app, "R0000001", b"kept bytes").await;
    let id = photo_id(&app, &owner, "R0000001").await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    let then = chrono::Utc::now().to_rfc3339();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let mut gone = item("R0000001", 10, Some(&app::sha256_hex(b"kept bytes")));
    gone["deleted"] = true.into();
    owner.sync(&app, vec![gone]).await;
    assert_error(
        &app.get_json(&owner.web, &format!("/my/photos/{id}")).await,
        404,
        "not_found",
    );

    let user = owner.user.name.clone();
    let restore = |body: Value| {
        let admin = admin.clone();
        let app = &app;
        async move { app.post_json(&admin, "/admin/restore", &body).await }
    };
    // Bad requests first: each names its field and changes nothing.
    let version = app.catalog.version(&owner.user.id).await.unwrap();
    let future = (chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339();
    assert_error(
        &restore(json!({ "user": user, "photoId": id, "asOf": "yesterday" })).await,
        422,
        "invalid_field",
    );
    assert_error(
        &restore(json!({ "user": user, "photoId": id, "asOf": future })).await,
        422,
        "invalid_field",
    );
    assert_error(
        &restore(json!({ "user": user, "asOf": then })).await,
        422,
        "invalid_field",
    );
    assert_error(
        &restore(json!({ "user": user, "photoId": id, "albumId": "a", "asOf": then })).await,
        422,
        "invalid_field",
    );
    assert_error(
        &restore(json!({ "user": "nobody", "photoId": id, "asOf": then })).await,
        404,
        "not_found",
    );
    assert_error(
        &restore(json!({ "user": user, "photoId": "nope", "asOf": then })).await,
        404,
        "not_found",
    );
    assert_error(
        &restore(json!({ "user": user, "libraryId": "nope", "asOf": then })).await,
        404,
        "not_found",
    );
    assert_error(
        &restore(json!({ "user": user, "photoId": id })).await,
        422,
        "invalid_json",
    );
    let (status, answer) = app
        .post_json(
            &owner.web,
            "/admin/restore",
            &json!({ "user": user, "photoId": id, "asOf": then }),
        )
        .await;
    assert_eq!((status, &answer["error"]["code"]), (403, &json!("wrong_scope")));
    assert_eq!(app.catalog.version(&owner.user.id).await.unwrap(), version);

    let (status, answer) = restore(json!({ "user": user, "photoId": id, "asOf": then })).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["photos"], 1);
    assert_eq!(answer["version"], version + 1);
    let (status, detail) = app.get_json(&owner.web, &format!("/my/photos/{id}")).await;
    assert_eq!(status, 200, "{detail}");
    let url = detail["originalUrl"].as_str().unwrap();
    assert_eq!(
        reqwest::get(url).await.unwrap().bytes().await.unwrap().as_ref(),
        b"kept bytes"
    );
    let (_, history) = app
        .get_json(&owner.web, &format!("/my/photos/{id}/history"))
        .await;
    assert_eq!(history["versions"][0]["change"], "restored");
    let (_, changes) = app
        .get_json(&owner.web, &format!("/my/photos/changes?since={version}"))
        .await;
    assert_eq!(changes["changes"][0]["change"], "upsert");
    let _ = LIB;
}

macro_rules! matrix {
    ($($behaviour:ident),* $(,)?) => {
        mod sqlite_local { $( #[tokio::test(flavor = "multi_thread")] async fn $behaviour() { crate::$behaviour(crate::TestApp::start(crate::Backends::SqliteLocal).await).await } )* }
        mod postgres_local { $( #[tokio::test(flavor = "multi_thread")] async fn $behaviour() { crate::$behaviour(crate::TestApp::start(crate::Backends::PostgresLocal).await).await } )* }
    };
}

matrix!(
    history_lists_versions_and_hides_other_users,
    changes_page_in_version_order_with_deletes,
    admin_restore_brings_back_a_photo,
);
