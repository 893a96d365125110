//! Migration 0012 turns the photo history written before it (one after-image per change, and one per new
//! photo) into before-images, losing nothing: a catalog migrated to 0011 records history with the triggers of
//! 0008, then the server's own migrations run 0012, and every version the history listed (version, time,
//! kind, snapshot) is still listed, and restores find the states it recorded. SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod attached;

use std::sync::Arc;

use attached::sqlite_pool;

use chrono::{DateTime, Utc};

use server::catalog::search::SearchTerms;
use server::catalog::{
    self, AssetKind, Catalog, Change, ConnectOptions, DeclaredResource, Location, PhotoFilter, PhotoId,
    PhotoUpsert, ResourceType, RestoreTarget, TimelineQuery, UploadLookup, UserId,
};

/// The last migration before the format changed.
const BEFORE: i64 = 11;

/// One history row as the after-image format wrote it.
type OldRow = (i64, i64, String, String);

async fn between() -> DateTime<Utc> {
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let t = Utc::now();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    t
}

fn photo(local_identifier: &str, title: &str) -> PhotoUpsert {
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
        time_zone: Some("Europe/Paris".into()),
        modified_at: taken,
        favorite: false,
        hidden: false,
        trashed: false,
        latitude: Some(48.8566),
        longitude: Some(2.3522),
        original_filename: format!("IMG_{local_identifier}.HEIC"),
        uti: "public.heic".into(),
        edited: false,
        title: Some(title.to_owned()),
        caption: None,
        keywords: vec!["a".into()],
        people: Vec::new(),
        resources: vec![DeclaredResource {
            resource_type: ResourceType::Original,
            size: 1000,
            sha256: None,
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

/// What a database needs for this test: migrate it to [`BEFORE`], read its history rows.
enum Db {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

impl Db {
    async fn migrate_before(&self) {
        match self {
            Db::Sqlite(pool) => sqlx::migrate!("../migrations/sqlite")
                .run_to(BEFORE, pool)
                .await
                .unwrap(),
            Db::Postgres(pool) => sqlx::migrate!("../migrations/postgres")
                .run_to(BEFORE, pool)
                .await
                .unwrap(),
        }
    }

    /// Adds (`add`) or drops the column today's write path fills beyond [`BEFORE`] (`search_text`, migration
    /// 0014): the old rows are written by today's code, then the column goes again so that the migrations
    /// meet the schema of 0011 and the start-up fold meets rows without searchable text.
    async fn search_column(&self, add: bool) {
        let sql = if add {
            "ALTER TABLE icloud.photos ADD COLUMN search_text TEXT"
        } else {
            "ALTER TABLE icloud.photos DROP COLUMN search_text"
        };
        match self {
            Db::Sqlite(pool) => sqlx::query(sql).execute(pool).await.map(drop).unwrap(),
            Db::Postgres(pool) => sqlx::query(sql).execute(pool).await.map(drop).unwrap(),
        }
    }

    async fn old_rows(&self, photo: &PhotoId) -> Vec<OldRow> {
        let sql = "SELECT version, changed_at, change, snapshot FROM icloud.photo_history \
                   WHERE photo_id = $1 ORDER BY version, id";
        match self {
            Db::Sqlite(pool) => sqlx::query_as(sql)
                .bind(photo.as_str())
                .fetch_all(pool)
                .await
                .unwrap(),
            Db::Postgres(pool) => sqlx::query_as(sql)
                .bind(photo.as_str())
                .fetch_all(pool)
                .await
                .unwrap(),
        }
    }

    async fn title(&self, photo: &PhotoId) -> String {
        let sql = "SELECT CASE WHEN deleted_at IS NOT NULL THEN 'deleted' ELSE title END \
                   FROM icloud.photos WHERE id = $1";
        match self {
            Db::Sqlite(pool) => sqlx::query_scalar(sql)
                .bind(photo.as_str())
                .fetch_one(pool)
                .await
                .unwrap(),
            Db::Postgres(pool) => sqlx::query_scalar(sql)
                .bind(photo.as_str())
                .fetch_one(pool)
                .await
                .unwrap(),
        }
    }
}

async fn converts_without_loss(location: Location, db: Db) {
    db.migrate_before().await;
    db.search_column(true).await;
    let unmigrated = ConnectOptions {
        max_connections: 2,
        migrate: false,
    };
    let old = catalog::connect(&location, &unmigrated).await.unwrap();
    let user = old.create_user("alice").await.unwrap().id;
    let library = old.ensure_library(&user, "mac-library-1").await.unwrap().id;
    let before = between().await;
    old.sync_photos(&user, &library, vec![photo("P", "one"), photo("Q", "only")])
        .await
        .unwrap();
    let p = photo_id(old.as_ref(), &user, "P").await;
    let q = photo_id(old.as_ref(), &user, "Q").await;
    let one = between().await;
    old.sync_photos(&user, &library, vec![photo("P", "two")])
        .await
        .unwrap();
    let two = between().await;
    let mut gone = photo("P", "two");
    gone.deleted = true;
    old.sync_photos(&user, &library, vec![gone]).await.unwrap();
    let p_rows = db.old_rows(&p).await;
    let q_rows = db.old_rows(&q).await;
    assert_eq!(
        p_rows.iter().map(|r| r.2.as_str()).collect::<Vec<_>>(),
        vec!["created", "updated", "deleted"],
        "the old triggers wrote after-images, one per new photo"
    );
    assert_eq!(q_rows.len(), 1);
    drop(old);
    db.search_column(false).await;

    let migrated = ConnectOptions {
        max_connections: 2,
        migrate: true,
    };
    let c: Arc<dyn Catalog> = catalog::connect(&location, &migrated).await.unwrap();
    for (photo, rows) in [(&p, &p_rows), (&q, &q_rows)] {
        let versions = c.photo_history(&user, photo).await.unwrap().unwrap();
        let listed: Vec<(i64, i64, Change, serde_json::Value)> = versions
            .iter()
            .rev()
            .map(|v| {
                (
                    v.version,
                    v.changed_at.timestamp_millis(),
                    v.change,
                    v.snapshot.clone(),
                )
            })
            .collect();
        let recorded: Vec<(i64, i64, Change, serde_json::Value)> = rows
            .iter()
            .map(|(version, at, change, snapshot)| {
                let change = match change.as_str() {
                    "created" => Change::Created,
                    "deleted" => Change::Deleted,
                    _ => Change::Updated,
                };
                (*version, *at, change, serde_json::from_str(snapshot).unwrap())
            })
            .collect();
        assert_eq!(
            listed, recorded,
            "every version recorded before 0012 is listed after it"
        );
    }

    // The start-up fold made the rows written before migration 0014 searchable.
    let only = TimelineQuery {
        filter: PhotoFilter {
            search: Some(SearchTerms::parse("ONL").unwrap()),
            ..PhotoFilter::default()
        },
        limit: 10,
        after: None,
        before_local_ms: None,
    };
    let found = c.list_photos(&user, &only).await.unwrap();
    assert_eq!(found.iter().map(|p| &p.id).collect::<Vec<_>>(), vec![&q]);

    // Restores find the recorded states: each title, and nothing before the photo existed.
    let restore = |as_of: DateTime<Utc>| {
        let c = c.clone();
        let (user, p) = (user.clone(), p.clone());
        async move {
            c.restore(&user, &RestoreTarget::Photo(p), as_of, Utc::now())
                .await
                .unwrap()
        }
    };
    assert_eq!(restore(one).await.photos, 1);
    assert_eq!(db.title(&p).await, "one");
    assert_eq!(restore(two).await.photos, 1);
    assert_eq!(db.title(&p).await, "two");
    assert_eq!(restore(before).await.tombstoned, 1);
    assert_eq!(db.title(&p).await, "deleted");
    // New changes after the conversion extend the converted history.
    c.sync_photos(&user, &library, vec![photo("Q", "changed")])
        .await
        .unwrap();
    let versions = c.photo_history(&user, &q).await.unwrap().unwrap();
    assert_eq!(
        versions
            .iter()
            .map(|v| (v.change, v.snapshot["title"].as_str().unwrap()))
            .collect::<Vec<_>>(),
        vec![(Change::Updated, "changed"), (Change::Created, "only")]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_history_is_converted_without_loss() {
    let dir = tempfile::tempdir().unwrap();
    let (main, icloud) = (
        dir.path().join("catalog.sqlite3"),
        dir.path().join("icloud.sqlite3"),
    );
    let db = Db::Sqlite(sqlite_pool(&main, &icloud).await);
    converts_without_loss(Location::Sqlite { main, icloud }, db).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_history_is_converted_without_loss() {
    let url = tokio::task::spawn_blocking(|| harness::Postgres::shared().fresh_database().unwrap())
        .await
        .unwrap();
    let db = Db::Postgres(sqlx::PgPool::connect(&url).await.unwrap());
    converts_without_loss(Location::parse(&url).unwrap(), db).await;
}
