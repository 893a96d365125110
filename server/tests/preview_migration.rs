//! Migration 0015 queues again, once, the thumbnail jobs whose result has no preview (made before the
//! worker made previews), so existing photos get their previews: a catalog migrated to the migration before
//! it gets done thumbnail jobs with and without a preview, a parked one and a done job of another kind; then
//! the server's own migrations run 0015, and exactly the preview-less thumbnail job is offered again, its
//! old result (the thumbnail the web shows meanwhile) kept. SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod attached;

use std::path::Path;
use std::sync::Arc;

use attached::sqlite_pool;

use chrono::{DateTime, Utc};
use serde_json::json;

use server::catalog::{
    self, AssetKind, Catalog, ConnectOptions, DeclaredResource, LeaseRequest, Location, PhotoId, PhotoUpsert,
    ResourceType, UploadLookup, UploadRecord, UserId,
};

/// The last migration before previews (0013 and 0014 may be absent: `run_to` stops at what exists).
const BEFORE: i64 = 14;

fn sha(n: u8) -> String {
    format!("{n:02x}").repeat(32)
}

fn photo(local_identifier: &str, n: u8) -> PhotoUpsert {
    let taken = DateTime::parse_from_rfc3339("2024-05-01T10:00:00+02:00").unwrap();
    PhotoUpsert {
        local_identifier: local_identifier.to_owned(),
        cloud_guid: None,
        fingerprint: None,
        kind: AssetKind::Photo,
        subtype: None,
        live_photo: false,
        width: 4032,
        height: 3024,
        duration_ms: None,
        taken_at: taken,
        time_zone: None,
        modified_at: taken,
        favorite: false,
        hidden: false,
        trashed: false,
        latitude: None,
        longitude: None,
        original_filename: format!("IMG_{local_identifier}.HEIC"),
        uti: "public.heic".into(),
        edited: false,
        title: None,
        caption: None,
        keywords: Vec::new(),
        people: Vec::new(),
        resources: vec![DeclaredResource {
            resource_type: ResourceType::Original,
            size: 1000,
            sha256: Some(sha(n)),
            available: true,
            unavailable_reason: None,
            bundle_path: None,
        }],
        deleted: false,
    }
}

async fn photo_id(c: &dyn Catalog, user: &UserId, local_identifier: &str) -> PhotoId {
    let lookup = UploadLookup {
        library_id: None,
        local_identifier: local_identifier.to_owned(),
        resource: ResourceType::Original,
    };
    c.resource_for_upload(user, &lookup)
        .await
        .unwrap()
        .unwrap()
        .photo_id
}

fn lease(kind: api::JobKind) -> LeaseRequest {
    LeaseRequest {
        kind,
        max: 100,
        lease_ms: 60_000,
    }
}

async fn migrate_before(location: &Location, sqlite: Option<(&Path, &Path)>) {
    match sqlite {
        Some((main, icloud)) => {
            let pool = sqlite_pool(main, icloud).await;
            sqlx::migrate!("../migrations/sqlite")
                .run_to(BEFORE, &pool)
                .await
                .unwrap();
            pool.close().await;
        }
        None => {
            let Location::Postgres { url } = location else {
                panic!("no SQLite files, so a PostgreSQL location")
            };
            let pool = sqlx::PgPool::connect(url.as_str()).await.unwrap();
            sqlx::migrate!("../migrations/postgres")
                .run_to(BEFORE, &pool)
                .await
                .unwrap();
            pool.close().await;
        }
    }
}

async fn requeues_only_thumbnails_without_a_preview(location: Location, sqlite: Option<(&Path, &Path)>) {
    migrate_before(&location, sqlite).await;
    let unmigrated = ConnectOptions {
        max_connections: 2,
        migrate: false,
    };
    let old = catalog::connect(&location, &unmigrated).await.unwrap();
    let user = old.create_user("alice").await.unwrap().id;
    let library = old.ensure_library(&user, "mac-library-1").await.unwrap().id;
    let names = [("OLD", 1), ("NEW", 2), ("BAD", 3)];
    old.sync_photos(
        &user,
        &library,
        names.iter().map(|(id, n)| photo(id, *n)).collect(),
    )
    .await
    .unwrap();
    let mut ids = Vec::new();
    for (name, n) in names {
        let id = photo_id(old.as_ref(), &user, name).await;
        let record = UploadRecord {
            photo_id: id.clone(),
            resource: ResourceType::Original,
            sha256: sha(n),
            size: 1000,
            key: format!("users/{user}/{name}.heic"),
            at: Utc::now(),
            deduplicated: false,
        };
        old.record_upload(&user, &record).await.unwrap();
        ids.push(id);
    }
    let jobs = old
        .lease_jobs(&user, &lease(api::JobKind::Thumbnail))
        .await
        .unwrap();
    assert_eq!(jobs.len(), 3);
    let job_of = |photo: &PhotoId| jobs.iter().find(|j| &j.photo_id == photo).unwrap().id.clone();
    let (old_job, new_job, bad_job) = (job_of(&ids[0]), job_of(&ids[1]), job_of(&ids[2]));
    let thumbnail = json!({"key": "users/a/thumbnail/OLD.jpg", "contentType": "image/jpeg",
        "width": 512, "height": 384, "size": 10});
    old.complete_job(&user, &old_job, &thumbnail).await.unwrap();
    let mut with_preview = thumbnail.clone();
    with_preview["key"] = "users/a/thumbnail/NEW.jpg".into();
    with_preview["preview"] = json!({"key": "users/a/preview/NEW.jpg", "contentType": "image/jpeg",
        "width": 2048, "height": 1536, "size": 100});
    old.complete_job(&user, &new_job, &with_preview).await.unwrap();
    old.fail_job(&user, &bad_job, "corrupt: no", 1, 0).await.unwrap();
    // A done job of another kind is no thumbnail: left alone.
    let classify = old
        .lease_jobs(&user, &lease(api::JobKind::Classify))
        .await
        .unwrap();
    old.complete_job(&user, &classify[0].id, &json!({"labels": []}))
        .await
        .unwrap();
    assert!(
        old.lease_jobs(&user, &lease(api::JobKind::Thumbnail))
            .await
            .unwrap()
            .is_empty()
    );
    drop(old);

    let migrated = ConnectOptions {
        max_connections: 2,
        migrate: true,
    };
    let c: Arc<dyn Catalog> = catalog::connect(&location, &migrated).await.unwrap();
    let again = c
        .lease_jobs(&user, &lease(api::JobKind::Thumbnail))
        .await
        .unwrap();
    assert_eq!(
        again.iter().map(|j| j.id.as_str()).collect::<Vec<_>>(),
        vec![old_job.as_str()],
        "only the thumbnail job without a preview is offered again"
    );
    assert_eq!((again[0].attempts, again[0].failures), (0, 0));
    assert!(
        c.lease_jobs(&user, &lease(api::JobKind::Classify))
            .await
            .unwrap()
            .is_empty()
    );
    // Meanwhile the web still shows the thumbnail made before, its preview pending.
    let detail = c.photo(&user, &ids[0]).await.unwrap().unwrap();
    assert_eq!(
        detail.listed.thumbnail_key.as_deref(),
        Some("users/a/thumbnail/OLD.jpg")
    );
    assert_eq!(detail.listed.preview_key, None);
    let detail = c.photo(&user, &ids[1]).await.unwrap().unwrap();
    assert_eq!(
        detail.listed.preview_key.as_deref(),
        Some("users/a/preview/NEW.jpg")
    );
    // Its result with a preview completes it for good.
    c.complete_job(&user, &old_job, &with_preview).await.unwrap();
    assert!(
        c.lease_jobs(&user, &lease(api::JobKind::Thumbnail))
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_thumbnails_without_a_preview_are_queued_again() {
    let dir = tempfile::tempdir().unwrap();
    let (main, icloud) = (
        dir.path().join("catalog.sqlite3"),
        dir.path().join("icloud.sqlite3"),
    );
    let location = Location::Sqlite {
        main: main.clone(),
        icloud: icloud.clone(),
    };
    requeues_only_thumbnails_without_a_preview(location, Some((&main, &icloud))).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_thumbnails_without_a_preview_are_queued_again() {
    let url = tokio::task::spawn_blocking(|| harness::Postgres::shared().fresh_database().unwrap())
        .await
        .unwrap();
    requeues_only_thumbnails_without_a_preview(Location::parse(&url).unwrap(), None).await;
}
