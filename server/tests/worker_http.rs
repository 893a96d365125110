//! The worker surface over HTTP, against {SQLite, PostgreSQL} × {local directory, SeaweedFS}: jobs queued
//! when an original is stored (uploaded or linked by SHA-256), leased atomically with a presigned original,
//! completed (never leased again), failed and parked, and re-offered when a lease expires.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod app;
mod owner;

use std::collections::HashSet;
use std::time::Duration;

use app::{Backends, TestApp, assert_error, item, sha256_hex};
use owner::Owner;
use serde_json::{Value, json};
use server::http::HttpSettings;

fn settings() -> HttpSettings {
    HttpSettings {
        max_upload_bytes: 64 << 20,
        job_max_failures: 3,
        job_retry_after: Duration::ZERO,
        ..HttpSettings::default()
    }
}

async fn lease(app: &TestApp, token: &str, query: &str) -> Vec<Value> {
    let (status, answer) = app
        .post_json(token, &format!("/worker/jobs/lease?{query}"), &json!(null))
        .await;
    assert_eq!(status, 200, "{answer}");
    answer["jobs"].as_array().unwrap().clone()
}

/// One uploaded original and `n` photos linked to it by SHA-256 in sync: `n + 1` jobs of each kind.
async fn library(app: &TestApp, owner: &Owner, prefix: &str, n: usize) -> Vec<u8> {
    let bytes: Vec<u8> = format!("{prefix} original bytes").into_bytes();
    owner
        .photo_with_original(app, &format!("{prefix}000"), &bytes)
        .await;
    let sha = sha256_hex(&bytes);
    let items = (1..=n)
        .map(|i| item(&format!("{prefix}{i:03}"), bytes.len() as u64, Some(&sha)))
        .collect();
    owner.sync(app, items).await;
    bytes
}

pub async fn jobs_are_leased_with_the_original_and_completed(app: TestApp) {
    let owner = Owner::new(&app).await;
    let bytes = library(&app, &owner, "AAAA", 1).await;
    let jobs = lease(&app, &owner.worker, "kind=thumbnail&max=10").await;
    assert_eq!(
        jobs.len(),
        2,
        "the uploaded original and the one linked by SHA-256: {jobs:?}"
    );
    for job in &jobs {
        assert_eq!(job["kind"], "thumbnail");
        assert_eq!(job["attempts"], 0);
        assert_eq!(job["sha256"], sha256_hex(&bytes));
        assert_eq!(job["uti"], "public.heic");
        let url = job["originalUrl"].as_str().unwrap();
        let fetched = reqwest::get(url).await.unwrap();
        assert_eq!(fetched.status(), 200, "{url}");
        assert_eq!(fetched.bytes().await.unwrap(), bytes);
        let key = job["derivativeKey"].as_str().unwrap();
        let prefix = format!("users/{}/libraries/", owner.user.id);
        assert!(
            key.starts_with(&prefix) && key.contains("/derivatives/thumbnail/"),
            "{key}"
        );
        // The preview goes beside it, under the same user's prefix.
        let preview = job["previewKey"].as_str().unwrap();
        assert_eq!(
            preview,
            key.replace("/derivatives/thumbnail/", "/derivatives/preview/")
        );
    }
    // Other kinds are separate jobs; a leased job is not offered again while its lease holds.
    assert_eq!(lease(&app, &owner.worker, "kind=classify&max=10").await.len(), 2);
    assert!(
        lease(&app, &owner.worker, "kind=thumbnail&max=10")
            .await
            .is_empty()
    );

    let job = &jobs[0];
    let id = job["id"].as_str().unwrap();
    let key = job["derivativeKey"].as_str().unwrap();
    let thumbnail = b"jpeg thumbnail bytes".to_vec();
    app.store
        .put(
            &storage::StorageKey::parse(key).unwrap(),
            thumbnail.clone().into(),
            &Default::default(),
        )
        .await
        .unwrap();
    let result = json!({ "result": {
        "key": key, "contentType": "image/jpeg", "width": 256, "height": 192, "size": thumbnail.len()
    }});
    // A result naming another key, or not a thumbnail result at all, is refused and changes nothing.
    let mut wrong = result.clone();
    wrong["result"]["key"] = format!("users/{}/elsewhere.jpg", owner.user.id).into();
    let path = format!("/worker/jobs/{id}/result");
    assert_error(
        &app.post_json(&owner.worker, &path, &wrong).await,
        422,
        "invalid_field",
    );
    assert_error(
        &app.post_json(&owner.worker, &path, &json!({ "result": { "labels": [] } }))
            .await,
        422,
        "invalid_field",
    );
    assert_error(
        &app.post_json(&owner.worker, &path, &json!({})).await,
        422,
        "invalid_json",
    );
    // Another user's worker does not see the job.
    let stranger = Owner::new(&app).await;
    assert_error(
        &app.post_json(&stranger.worker, &path, &result).await,
        404,
        "not_found",
    );
    assert!(
        lease(&app, &stranger.worker, "kind=thumbnail&max=10")
            .await
            .is_empty()
    );

    let (status, done) = app.post_json(&owner.worker, &path, &result).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["state"], "done");
    // Done is final: a second result, or a failure report, leaves it done.
    assert_eq!(
        app.post_json(&owner.worker, &path, &result).await.1["state"],
        "done"
    );
    let fail = json!({ "reason": "corrupt", "message": "late" });
    let (_, after) = app
        .post_json(&owner.worker, &format!("/worker/jobs/{id}/fail"), &fail)
        .await;
    assert_eq!(after["state"], "done");

    // The result shows in the photo's details, and the list carries a presigned thumbnail URL.
    let photo_id = job["photoId"].as_str().unwrap();
    let (status, photo) = app.get_json(&owner.web, &format!("/my/photos/{photo_id}")).await;
    assert_eq!(status, 200, "{photo}");
    let enrichments = photo["enrichments"].as_array().unwrap();
    assert_eq!(enrichments.len(), 1, "{photo}");
    assert_eq!(enrichments[0]["kind"], "thumbnail");
    assert_eq!(enrichments[0]["result"]["key"], key);
    let url = photo["thumbnailUrl"].as_str().expect("a thumbnail URL");
    assert_eq!(reqwest::get(url).await.unwrap().bytes().await.unwrap(), thumbnail);
}

pub async fn concurrent_leases_never_share_a_job(app: TestApp) {
    let owner = Owner::new(&app).await;
    library(&app, &owner, "BBBB", 59).await;
    let app = std::sync::Arc::new(app);
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let app = std::sync::Arc::clone(&app);
            let token = owner.worker.clone();
            tokio::spawn(async move {
                let mut mine = Vec::new();
                loop {
                    let jobs = lease(&app, &token, "kind=face&max=3").await;
                    if jobs.is_empty() {
                        break mine;
                    }
                    mine.extend(jobs.iter().map(|j| j["id"].as_str().unwrap().to_owned()));
                }
            })
        })
        .collect();
    let mut seen = HashSet::new();
    let mut total = 0;
    for worker in workers {
        for id in worker.await.unwrap() {
            total += 1;
            assert!(seen.insert(id.clone()), "job {id} leased twice");
        }
    }
    assert_eq!(total, 60, "every job leased exactly once");
}

pub async fn an_expired_lease_is_offered_again(app: TestApp) {
    let owner = Owner::new(&app).await;
    library(&app, &owner, "CCCC", 0).await;
    let first = lease(&app, &owner.worker, "kind=thumbnail&leaseSecs=1").await;
    assert_eq!(first.len(), 1);
    assert!(lease(&app, &owner.worker, "kind=thumbnail").await.is_empty());
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let again = lease(&app, &owner.worker, "kind=thumbnail").await;
    assert_eq!(again.len(), 1, "offered again after the lease ran out");
    assert_eq!(again[0]["id"], first[0]["id"]);
    assert_eq!(again[0]["attempts"], 1);
}

pub async fn failures_retry_then_park(app: TestApp) {
    let owner = Owner::new(&app).await;
    library(&app, &owner, "DDDD", 0).await;
    let fail = json!({ "reason": "corrupt", "message": "not a JPEG" });
    let mut id = String::new();
    for attempt in 1..=3 {
        let jobs = lease(&app, &owner.worker, "kind=thumbnail").await;
        assert_eq!(jobs.len(), 1, "attempt {attempt}");
        id = jobs[0]["id"].as_str().unwrap().to_owned();
        let (status, answer) = app
            .post_json(&owner.worker, &format!("/worker/jobs/{id}/fail"), &fail)
            .await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["failures"], attempt);
        assert_eq!(answer["state"], if attempt < 3 { "queued" } else { "parked" });
    }
    assert!(
        lease(&app, &owner.worker, "kind=thumbnail").await.is_empty(),
        "parked"
    );
    let job = app.catalog.job(&owner.user.id, &id).await.unwrap().unwrap();
    assert_eq!(job.last_error.as_deref(), Some("corrupt: not a JPEG"));

    // Bad requests are 4xx and change nothing.
    for query in [
        "kind=bogus",
        "kind=thumbnail&max=0",
        "kind=thumbnail&max=101",
        "kind=thumbnail&leaseSecs=0",
        "",
        "kind=face&extra=1",
    ] {
        let answer = app
            .post_json(
                &owner.worker,
                &format!("/worker/jobs/lease?{query}"),
                &json!(null),
            )
            .await;
        assert_eq!(answer.0, 400, "{query}: {}", answer.1);
    }
    let bad_reason = json!({ "reason": "Not Snake", "message": "x" });
    assert_error(
        &app.post_json(&owner.worker, &format!("/worker/jobs/{id}/fail"), &bad_reason)
            .await,
        422,
        "invalid_field",
    );
    assert_error(
        &app.post_json(
            &owner.worker,
            "/worker/jobs/ffffffffffffffffffffffffffffffff/fail",
            &fail,
        )
        .await,
        404,
        "not_found",
    );
    assert_error(
        &app.post_json(&owner.web, "/worker/jobs/lease?kind=thumbnail", &json!(null))
            .await,
        403,
        "wrong_scope",
    );
}

pub async fn a_new_original_requeues_and_a_deleted_photo_parks(app: TestApp) {
    let owner = Owner::new(&app).await;
    library(&app, &owner, "EEEE", 0).await;
    let jobs = lease(&app, &owner.worker, "kind=thumbnail").await;
    let id = jobs[0]["id"].as_str().unwrap().to_owned();
    let key = jobs[0]["derivativeKey"].as_str().unwrap();
    let result = json!({ "result": {
        "key": key, "contentType": "image/jpeg", "width": 1, "height": 1, "size": 1
    }});
    let (_, done) = app
        .post_json(&owner.worker, &format!("/worker/jobs/{id}/result"), &result)
        .await;
    assert_eq!(done["state"], "done");
    assert!(lease(&app, &owner.worker, "kind=thumbnail").await.is_empty());

    // The Mac edits the photo in place: new bytes, so the enrichments are computed again.
    owner
        .photo_with_original(&app, "EEEE000", b"the edited original")
        .await;
    let again = lease(&app, &owner.worker, "kind=thumbnail").await;
    assert_eq!(again.len(), 1, "a new original re-queues the done job");
    assert_eq!(again[0]["id"], id.as_str());
    assert_eq!(again[0]["sha256"], sha256_hex(b"the edited original"));

    // Deleted on the Mac: its queued jobs are parked at the next lease, not handed out.
    let mut gone = item("EEEE000", 1, None);
    gone["deleted"] = true.into();
    owner.sync(&app, vec![gone]).await;
    assert!(lease(&app, &owner.worker, "kind=classify").await.is_empty());
    let parked = app
        .catalog
        .lease_jobs(
            &owner.user.id,
            &server::catalog::LeaseRequest {
                kind: api::JobKind::Classify,
                max: 10,
                lease_ms: 1000,
            },
        )
        .await
        .unwrap();
    assert!(parked.is_empty());
}

/// A thumbnail result with a preview is checked like the thumbnail (the job's own `previewKey` only); the
/// web then gives the preview's URL, and before it the thumbnail's with `previewPending`. Another user sees
/// neither.
pub async fn previews_are_keyed_checked_and_shown(app: TestApp) {
    let owner = Owner::new(&app).await;
    library(&app, &owner, "PPPP", 0).await;
    let jobs = lease(&app, &owner.worker, "kind=thumbnail").await;
    let (id, photo_id) = (
        jobs[0]["id"].as_str().unwrap(),
        jobs[0]["photoId"].as_str().unwrap(),
    );
    let path = format!("/my/photos/{photo_id}");

    // Nothing made yet: no URL to show, the preview pending.
    let (_, photo) = app.get_json(&owner.web, &path).await;
    assert_eq!(photo["previewPending"], true, "{photo}");
    assert!(
        photo.get("previewUrl").is_none() && photo.get("thumbnailUrl").is_none(),
        "{photo}"
    );

    let (key, preview_key) = (
        jobs[0]["derivativeKey"].as_str().unwrap(),
        jobs[0]["previewKey"].as_str().unwrap(),
    );
    let (thumbnail, preview) = (b"small jpeg".to_vec(), b"large jpeg preview".to_vec());
    for (k, bytes) in [(key, &thumbnail), (preview_key, &preview)] {
        let k = storage::StorageKey::parse(k).unwrap();
        app.store
            .put(&k, bytes.clone().into(), &Default::default())
            .await
            .unwrap();
    }
    let result = json!({ "result": {
        "key": key, "contentType": "image/jpeg", "width": 512, "height": 384, "size": thumbnail.len(),
        "preview": { "key": preview_key, "contentType": "image/jpeg", "width": 2048, "height": 1536,
            "size": preview.len() }
    }});
    // A preview under any other key (another user's included) is refused and changes nothing.
    let stranger = Owner::new(&app).await;
    let result_path = format!("/worker/jobs/{id}/result");
    for elsewhere in [
        format!("users/{}/elsewhere.jpg", owner.user.id),
        preview_key.replace(owner.user.id.as_str(), stranger.user.id.as_str()),
        key.to_owned(),
    ] {
        let mut wrong = result.clone();
        wrong["result"]["preview"]["key"] = elsewhere.into();
        assert_error(
            &app.post_json(&owner.worker, &result_path, &wrong).await,
            422,
            "invalid_field",
        );
    }
    let mut wrong = result.clone();
    wrong["result"]["preview"]["width"] = (-1).into();
    assert_error(
        &app.post_json(&owner.worker, &result_path, &wrong).await,
        422,
        "invalid_field",
    );
    let (_, photo) = app.get_json(&owner.web, &path).await;
    assert_eq!(
        photo["previewPending"], true,
        "a refused result shows nothing: {photo}"
    );

    let (status, done) = app.post_json(&owner.worker, &result_path, &result).await;
    assert_eq!((status, done["state"].as_str()), (200, Some("done")), "{done}");
    let (_, photo) = app.get_json(&owner.web, &path).await;
    assert_eq!(photo["previewPending"], false, "{photo}");
    let url = photo["previewUrl"].as_str().expect("a preview URL");
    assert_ne!(Some(url), photo["thumbnailUrl"].as_str());
    assert_eq!(reqwest::get(url).await.unwrap().bytes().await.unwrap(), preview);
    // The timeline's item says the same.
    let (_, page) = app.get_json(&owner.web, "/my/photos/").await;
    let listed = &page["items"][0];
    assert_eq!(
        (listed["id"].as_str(), &listed["previewPending"]),
        (Some(photo_id), &json!(false))
    );
    assert!(
        listed["previewUrl"].as_str().is_some_and(|u| !u.is_empty()),
        "{listed}"
    );

    // Another user's web token gets neither the photo nor its preview; a URL with another signature fails.
    assert_error(&app.get_json(&stranger.web, &path).await, 404, "not_found");
    let (_, theirs) = app.get_json(&stranger.web, "/my/photos/").await;
    assert_eq!(theirs["items"], json!([]), "{theirs}");
    let forged = forge_signature(url);
    assert_ne!(forged, url);
    let status = reqwest::get(&forged).await.unwrap().status();
    assert!(
        status == 403 || status == 401 || status == 400,
        "{status} for {forged}"
    );
}

/// `url` with the last character of its signature changed.
fn forge_signature(url: &str) -> String {
    let mut url = url::Url::parse(url).unwrap();
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| {
            let signature = k == "sig" || k.eq_ignore_ascii_case("x-amz-signature");
            let v = if signature {
                let last = if v.ends_with('0') { '1' } else { '0' };
                format!("{}{last}", &v[..v.len() - 1])
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    url.query_pairs_mut().clear().extend_pairs(pairs);
    url.to_string()
}

macro_rules! matrix {
    ($($behaviour:ident),* $(,)?) => {
        mod sqlite_local { $( #[tokio::test(flavor = "multi_thread")] async fn $behaviour() { crate::$behaviour(crate::TestApp::start_with(crate::Backends::SqliteLocal, crate::settings()).await).await } )* }
        mod sqlite_s3 { $( #[tokio::test(flavor = "multi_thread")] async fn $behaviour() { crate::$behaviour(crate::TestApp::start_with(crate::Backends::SqliteS3, crate::settings()).await).await } )* }
        mod postgres_local { $( #[tokio::test(flavor = "multi_thread")] async fn $behaviour() { crate::$behaviour(crate::TestApp::start_with(crate::Backends::PostgresLocal, crate::settings()).await).await } )* }
        mod postgres_s3 { $( #[tokio::test(flavor = "multi_thread")] async fn $behaviour() { crate::$behaviour(crate::TestApp::start_with(crate::Backends::PostgresS3, crate::settings()).await).await } )* }
    };
}

matrix!(
    jobs_are_leased_with_the_original_and_completed,
    concurrent_leases_never_share_a_job,
    an_expired_lease_is_offered_again,
    failures_retry_then_park,
    a_new_original_requeues_and_a_deleted_photo_parks,
    previews_are_keyed_checked_and_shown,
);
