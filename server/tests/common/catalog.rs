//! The catalog contract: one `pub async fn` per behaviour, run against every adapter by `tests/catalog.rs`.
//!
//! Each function takes a [`Subject`]: a migrated, empty catalog behind `&dyn Catalog`, plus a raw connection
//! to the same database so a test can check what is (and is not) in the tables and can plant a failure.

#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

#[path = "catalog/albums.rs"]
mod albums;
#[path = "../attached/mod.rs"]
mod attached;
#[path = "catalog/auth.rs"]
mod auth;
#[path = "catalog/before_images.rs"]
mod before_images;
#[path = "catalog/gc.rs"]
mod gc;
#[path = "catalog/history.rs"]
mod history;
#[path = "catalog/neighbours.rs"]
mod neighbours;
#[path = "catalog/sessions.rs"]
mod sessions;
#[path = "catalog/sources.rs"]
mod sources;
#[path = "catalog/sync.rs"]
mod sync;
#[path = "catalog/uploads.rs"]
mod uploads;

pub use albums::*;
pub use auth::*;
pub use before_images::*;
pub use gc::*;
pub use history::*;
pub use neighbours::*;
pub use sessions::*;
pub use sources::*;
pub use sync::*;
pub use uploads::*;

use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Duration, FixedOffset, TimeZone, Utc};
use sha2::{Digest as _, Sha256};
use sqlx::postgres::PgPool;
use sqlx::sqlite::SqlitePool;

use server::catalog::{
    AlbumKind, AlbumUpsert, AssetKind, Catalog, DeclaredResource, Error, ItemOutcome, LibraryId,
    PendingQuery, PendingReason, PhotoId, PhotoUpsert, ResourceState, ResourceType, Scope, UnavailableReason,
    UploadLookup, UploadRecord, UserId,
};

/// The adapter under test.
pub struct Subject {
    pub catalog: Arc<dyn Catalog>,
    pub raw: Raw,
    /// Keeps the SQLite files alive.
    pub _dir: Option<tempfile::TempDir>,
}

impl Subject {
    fn c(&self) -> &dyn Catalog {
        self.catalog.as_ref()
    }
}

/// A second connection to the adapter's database, for looking behind the port.
pub enum Raw {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl Raw {
    pub async fn sqlite(main: &Path, icloud: &Path) -> Raw {
        Raw::Sqlite(attached::sqlite_pool(main, icloud).await)
    }

    pub async fn postgres(url: &str) -> Raw {
        Raw::Postgres(PgPool::connect(url).await.unwrap())
    }

    /// One BIGINT (or SQLite INTEGER) value.
    pub async fn int(&self, sql: &str) -> i64 {
        let sql = sqlx::AssertSqlSafe(sql.to_owned());
        match self {
            Raw::Sqlite(pool) => sqlx::query_scalar(sql).fetch_one(pool).await.unwrap(),
            Raw::Postgres(pool) => sqlx::query_scalar(sql).fetch_one(pool).await.unwrap(),
        }
    }

    /// The first column of every row, as text.
    pub async fn strings(&self, sql: &str) -> Vec<String> {
        let sql = sqlx::AssertSqlSafe(sql.to_owned());
        match self {
            Raw::Sqlite(pool) => sqlx::query_scalar(sql).fetch_all(pool).await.unwrap(),
            Raw::Postgres(pool) => sqlx::query_scalar(sql).fetch_all(pool).await.unwrap(),
        }
    }

    /// Makes every insert of a photo whose identifier starts with `boom` fail inside the database.
    pub async fn fail_inserts_of_boom(&self) {
        match self {
            Raw::Sqlite(pool) => {
                sqlx::query(
                    "CREATE TRIGGER icloud.boom BEFORE INSERT ON photos \
                     WHEN NEW.local_identifier LIKE 'boom%' BEGIN SELECT RAISE(ABORT, 'boom'); END",
                )
                .execute(pool)
                .await
                .unwrap();
            }
            Raw::Postgres(pool) => {
                sqlx::query(
                    "CREATE FUNCTION icloud.boom() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
                     IF NEW.local_identifier LIKE 'boom%' THEN RAISE EXCEPTION 'boom'; END IF; \
                     RETURN NEW; END $$",
                )
                .execute(pool)
                .await
                .unwrap();
                sqlx::query(
                    "CREATE TRIGGER boom BEFORE INSERT ON icloud.photos FOR EACH ROW EXECUTE FUNCTION icloud.boom()",
                )
                .execute(pool)
                .await
                .unwrap();
            }
        }
    }
}

// ----- fixtures -----

fn at(day: u32) -> DateTime<FixedOffset> {
    FixedOffset::east_opt(2 * 3600)
        .unwrap()
        .with_ymd_and_hms(2024, 5, day, 10, 0, 0)
        .unwrap()
}

/// Lower-case hex SHA-256 of one byte: distinct, valid digests for fixtures.
fn sha(n: u8) -> String {
    hex::encode(Sha256::digest([n]))
}

fn original(size: u64, sha256: Option<String>) -> DeclaredResource {
    DeclaredResource {
        resource_type: ResourceType::Original,
        size,
        sha256,
        available: true,
        unavailable_reason: None,
        bundle_path: None,
    }
}

fn item(local_identifier: &str) -> PhotoUpsert {
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
        taken_at: at(1),
        time_zone: Some("Europe/Paris".into()),
        modified_at: at(2),
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
        resources: vec![original(1000, None)],
        deleted: false,
    }
}

fn items(prefix: &str, n: usize) -> Vec<PhotoUpsert> {
    (0..n).map(|i| item(&format!("{prefix}{i:03}/L0/001"))).collect()
}

async fn user_and_library(c: &dyn Catalog, name: &str) -> (UserId, LibraryId) {
    let user = c.create_user(name).await.unwrap();
    let library = c.ensure_library(&user.id, "mac-library-1").await.unwrap();
    (user.id, library.id)
}

fn outcomes(result: &server::catalog::SyncBatchResult) -> Vec<ItemOutcome> {
    result.results.iter().map(|r| r.outcome.clone()).collect()
}

async fn all_pending(c: &dyn Catalog, user: &UserId) -> Vec<(String, ResourceType)> {
    let page = c
        .pending_uploads(
            user,
            &PendingQuery {
                limit: 1000,
                ..PendingQuery::default()
            },
        )
        .await
        .unwrap();
    assert!(page.next_cursor.is_none());
    page.items
        .into_iter()
        .map(|p| (p.local_identifier, p.resource))
        .collect()
}

fn upload(photo_id: &PhotoId, sha256: &str, size: u64, key: &str, at: DateTime<Utc>) -> UploadRecord {
    UploadRecord {
        photo_id: photo_id.clone(),
        resource: ResourceType::Original,
        sha256: sha256.to_owned(),
        size,
        key: key.to_owned(),
        at,
        deduplicated: false,
    }
}

async fn photo_id(c: &dyn Catalog, user: &UserId, local_identifier: &str) -> PhotoId {
    lookup(c, user, local_identifier, ResourceType::Original)
        .await
        .unwrap()
        .photo_id
}

async fn lookup(
    c: &dyn Catalog,
    user: &UserId,
    local_identifier: &str,
    resource: ResourceType,
) -> Option<server::catalog::UploadTarget> {
    c.resource_for_upload(
        user,
        &UploadLookup {
            library_id: None,
            local_identifier: local_identifier.to_owned(),
            resource,
        },
    )
    .await
    .unwrap()
}
