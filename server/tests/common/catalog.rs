//! The catalog contract: one `pub async fn` per behaviour, run against every adapter by `tests/catalog.rs`.
//!
//! Each function takes a [`Subject`]: a migrated, empty catalog behind `&dyn Catalog`, plus a raw connection
//! to the same database so a test can check what is (and is not) in the tables and can plant a failure.

#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Duration, FixedOffset, TimeZone, Utc};
use futures::FutureExt as _;
use sha2::{Digest as _, Sha256};
use sqlx::postgres::PgPool;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};

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
        let icloud = icloud.to_string_lossy().into_owned();
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .after_connect(move |conn, _| {
                let icloud = icloud.clone();
                async move {
                    sqlx::query("ATTACH DATABASE $1 AS icloud")
                        .bind(icloud)
                        .execute(&mut *conn)
                        .await?;
                    Ok(())
                }
                .boxed()
            })
            .connect_with(
                SqliteConnectOptions::new()
                    .filename(main)
                    .busy_timeout(std::time::Duration::from_secs(10)),
            )
            .await
            .unwrap();
        Raw::Sqlite(pool)
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

// ----- behaviours -----

pub async fn migrations_are_idempotent_and_ping_works(s: &Subject) {
    s.c().migrate().await.unwrap();
    s.c().migrate().await.unwrap();
    s.c().ping().await.unwrap();
    assert_eq!(s.raw.int("SELECT COUNT(*) FROM icloud.photos").await, 0);
}

pub async fn users_have_unique_valid_names(s: &Subject) {
    let c = s.c();
    let alice = c.create_user("alice").await.unwrap();
    assert!(matches!(
        c.create_user("alice").await,
        Err(Error::Conflict { .. })
    ));
    assert!(matches!(c.create_user("").await, Err(Error::Invalid { .. })));
    assert!(matches!(
        c.create_user("bad name").await,
        Err(Error::Invalid { .. })
    ));
    assert_eq!(c.find_user_by_name("alice").await.unwrap(), Some(alice));
    assert_eq!(c.find_user_by_name("bob").await.unwrap(), None);
    assert_eq!(
        c.version(&c.create_user("bob").await.unwrap().id).await.unwrap(),
        0
    );
}

pub async fn tokens_authenticate_until_revoked(s: &Subject) {
    let c = s.c();
    let alice = c.create_user("alice").await.unwrap();
    let client = c.create_token(&alice.id, Scope::Client, "agent").await.unwrap();
    let web = c.create_token(&alice.id, Scope::Web, "browser").await.unwrap();
    assert!(client.secret.expose().starts_with("ips_"));
    assert!(
        !format!("{:?}", client).contains(client.secret.expose()),
        "Debug must hide the secret"
    );

    let auth = c.authenticate(client.secret.expose()).await.unwrap().unwrap();
    assert_eq!(
        (auth.user.id.clone(), auth.scope, auth.token_id.clone()),
        (alice.id.clone(), Scope::Client, client.info.id.clone())
    );
    assert_eq!(
        c.authenticate(web.secret.expose()).await.unwrap().unwrap().scope,
        Scope::Web
    );
    let used = c.find_token(&client.info.id).await.unwrap().unwrap();
    assert!(used.last_used_at.is_some(), "authentication records last use");

    // Unknown (well-formed), malformed and tampered tokens fail.
    let unknown = format!("ips_{}", "A".repeat(43));
    assert_eq!(c.authenticate(&unknown).await.unwrap(), None);
    assert_eq!(c.authenticate("").await.unwrap(), None);
    assert_eq!(c.authenticate("Bearer whatever").await.unwrap(), None);
    let mut tampered = client.secret.expose().to_owned();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    assert_eq!(c.authenticate(&tampered).await.unwrap(), None);

    c.revoke_token(&alice.id, &client.info.id).await.unwrap();
    c.revoke_token(&alice.id, &client.info.id).await.unwrap();
    assert_eq!(c.authenticate(client.secret.expose()).await.unwrap(), None);
    assert!(
        c.authenticate(web.secret.expose()).await.unwrap().is_some(),
        "other tokens still work"
    );
    let listed = c.list_tokens(Some(&alice.id)).await.unwrap();
    assert_eq!(listed.len(), 2);
    assert!(
        listed
            .iter()
            .find(|t| t.id == client.info.id)
            .unwrap()
            .revoked_at
            .is_some()
    );
    assert!(
        listed
            .iter()
            .find(|t| t.id == web.info.id)
            .unwrap()
            .revoked_at
            .is_none()
    );
    assert!(matches!(
        c.revoke_token(&alice.id, &server::catalog::TokenId::new("nope"))
            .await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        c.create_token(&UserId::new("nobody"), Scope::Admin, "x").await,
        Err(Error::NotFound { .. })
    ));
}

pub async fn tokens_are_stored_only_as_digests(s: &Subject) {
    let c = s.c();
    let alice = c.create_user("alice").await.unwrap();
    let token = c.create_token(&alice.id, Scope::Admin, "cli").await.unwrap();
    let plaintext = token.secret.expose();
    let body = plaintext.trim_start_matches("ips_");
    let rows = s
        .raw
        .strings("SELECT id || '|' || user_id || '|' || name || '|' || scope || '|' || token_sha256 FROM api_tokens")
        .await;
    assert_eq!(rows.len(), 1);
    assert!(
        !rows[0].contains(body),
        "the plaintext is in the table: {}",
        rows[0]
    );
    let digest = hex::encode(Sha256::digest(plaintext.as_bytes()));
    assert_eq!(
        s.raw.strings("SELECT token_sha256 FROM api_tokens").await,
        vec![digest]
    );
}

pub async fn libraries_are_per_user_and_idempotent(s: &Subject) {
    let c = s.c();
    let alice = c.create_user("alice").await.unwrap();
    let bob = c.create_user("bob").await.unwrap();
    let a1 = c.ensure_library(&alice.id, "lib").await.unwrap();
    assert_eq!(c.ensure_library(&alice.id, "lib").await.unwrap(), a1);
    let b1 = c.ensure_library(&bob.id, "lib").await.unwrap();
    assert_ne!(
        a1.id, b1.id,
        "the same agent library id under two users is two libraries"
    );
    assert!(matches!(
        c.ensure_library(&alice.id, "").await,
        Err(Error::Invalid { .. })
    ));
    assert!(matches!(
        c.ensure_library(&UserId::new("ghost"), "lib").await,
        Err(Error::NotFound { .. })
    ));
    assert_eq!(s.raw.int("SELECT COUNT(*) FROM icloud.libraries").await, 2);
}

pub async fn sync_creates_then_resync_is_unchanged(s: &Subject) {
    let c = s.c();
    let (user, library) = user_and_library(c, "alice").await;
    let batch = items("A", 3);
    let first = c.sync_photos(&user, &library, batch.clone()).await.unwrap();
    assert_eq!(outcomes(&first), vec![ItemOutcome::Created; 3]);
    assert!(
        first
            .results
            .iter()
            .all(|r| r.needs_upload == vec![ResourceType::Original])
    );
    assert!(first.results.iter().all(|r| r.photo_id.is_some()));
    assert_eq!(first.version, 1);
    assert_eq!(c.version(&user).await.unwrap(), 1);

    let again = c.sync_photos(&user, &library, batch).await.unwrap();
    assert_eq!(outcomes(&again), vec![ItemOutcome::Unchanged; 3]);
    assert_eq!(again.version, 1, "an unchanged batch does not move the version");
    assert!(
        again
            .results
            .iter()
            .all(|r| r.needs_upload == vec![ResourceType::Original])
    );
    assert_eq!(
        first.results.iter().map(|r| &r.photo_id).collect::<Vec<_>>(),
        again.results.iter().map(|r| &r.photo_id).collect::<Vec<_>>()
    );
    assert_eq!(s.raw.int("SELECT COUNT(*) FROM icloud.photos").await, 3);
    assert_eq!(s.raw.int("SELECT COUNT(*) FROM icloud.resources").await, 3);
    assert_eq!(
        c.sync_photos(&user, &library, Vec::new()).await.unwrap().version,
        1
    );
}

pub async fn changed_field_updates_and_bumps_version(s: &Subject) {
    let c = s.c();
    let (user, library) = user_and_library(c, "alice").await;
    let mut batch = items("A", 3);
    c.sync_photos(&user, &library, batch.clone()).await.unwrap();
    batch[1].favorite = true;
    batch[1].keywords = vec!["beach".into()];
    let result = c.sync_photos(&user, &library, batch.clone()).await.unwrap();
    assert_eq!(
        outcomes(&result),
        vec![
            ItemOutcome::Unchanged,
            ItemOutcome::Updated,
            ItemOutcome::Unchanged
        ]
    );
    assert_eq!(result.version, 2);
    let id = &batch[1].local_identifier;
    assert_eq!(
        s.raw
            .int(&format!(
                "SELECT version FROM icloud.photos WHERE local_identifier = '{id}'"
            ))
            .await,
        2
    );
    assert_eq!(
        s.raw
            .int(&format!(
                "SELECT COUNT(*) FROM icloud.photos WHERE favorite AND local_identifier = '{id}'"
            ))
            .await,
        1
    );
    assert_eq!(
        s.raw
            .int("SELECT MAX(version) FROM icloud.photos WHERE favorite = false")
            .await,
        1
    );
    // Resources order does not matter: the item is normalised before hashing.
    batch[2].resources.push(DeclaredResource {
        resource_type: ResourceType::LiveVideo,
        ..original(10, None)
    });
    c.sync_photos(&user, &library, batch.clone()).await.unwrap();
    batch[2].resources.reverse();
    let reordered = c.sync_photos(&user, &library, batch).await.unwrap();
    assert_eq!(outcomes(&reordered), vec![ItemOutcome::Unchanged; 3]);
    assert_eq!(reordered.version, 3);
}

pub async fn bad_items_are_rejected_and_the_rest_applies(s: &Subject) {
    let c = s.c();
    let (user, library) = user_and_library(c, "alice").await;
    let mut bad: Vec<(PhotoUpsert, &str)> = Vec::new();
    bad.push((item(""), "localIdentifier"));
    bad.push((item(&"x".repeat(257)), "localIdentifier"));
    bad.push((
        PhotoUpsert {
            latitude: Some(91.0),
            ..item("lat")
        },
        "latitude",
    ));
    bad.push((
        PhotoUpsert {
            longitude: Some(f64::NAN),
            ..item("lon")
        },
        "longitude",
    ));
    bad.push((
        PhotoUpsert {
            width: 5_000_000,
            ..item("wide")
        },
        "width",
    ));
    bad.push((
        PhotoUpsert {
            title: Some("a\0b".into()),
            ..item("nul")
        },
        "title",
    ));
    bad.push((
        PhotoUpsert {
            caption: Some("c".repeat(20_000)),
            ..item("long")
        },
        "caption",
    ));
    bad.push((
        PhotoUpsert {
            resources: vec![original(1, Some("ABC".into()))],
            ..item("sha")
        },
        "sha256",
    ));
    bad.push((
        PhotoUpsert {
            resources: vec![original(1 << 41, None)],
            ..item("huge")
        },
        "size",
    ));
    bad.push((
        PhotoUpsert {
            resources: vec![original(1, None), original(2, None)],
            ..item("twice")
        },
        "resources",
    ));
    let mut batch = vec![item("good1")];
    batch.extend(bad.iter().map(|(i, _)| i.clone()));
    batch.push(item("good2"));
    batch.push(item("good1"));
    let result = c.sync_photos(&user, &library, batch).await.unwrap();
    assert_eq!(result.results.len(), bad.len() + 3);
    assert_eq!(result.results[0].outcome, ItemOutcome::Created);
    for (r, (_, field)) in result.results[1..=bad.len()].iter().zip(&bad) {
        match &r.outcome {
            ItemOutcome::Rejected { reason } => {
                assert!(reason.contains(field), "{reason:?} should name {field}")
            }
            other => panic!("{} was {other:?}", r.local_identifier),
        }
        assert!(r.needs_upload.is_empty() && r.photo_id.is_none());
    }
    assert_eq!(result.results[bad.len() + 1].outcome, ItemOutcome::Created);
    assert!(
        matches!(&result.results[bad.len() + 2].outcome, ItemOutcome::Rejected { reason } if reason.contains("twice"))
    );
    assert_eq!(
        result.results[2].local_identifier,
        "x".repeat(257),
        "a rejected item answers with its identifier"
    );
    assert_eq!(s.raw.int("SELECT COUNT(*) FROM icloud.photos").await, 2);
    assert_eq!(result.version, 1);
}

pub async fn deleted_items_are_soft_deleted_and_restorable(s: &Subject) {
    let c = s.c();
    let (user, library) = user_and_library(c, "alice").await;
    let batch = items("A", 2);
    c.sync_photos(&user, &library, batch.clone()).await.unwrap();
    let gone = PhotoUpsert {
        deleted: true,
        ..batch[0].clone()
    };
    let result = c.sync_photos(&user, &library, vec![gone.clone()]).await.unwrap();
    assert_eq!(outcomes(&result), vec![ItemOutcome::Updated]);
    assert!(result.results[0].needs_upload.is_empty());
    assert_eq!(result.version, 2);
    assert_eq!(
        s.raw
            .int("SELECT COUNT(*) FROM icloud.photos WHERE deleted_at IS NOT NULL")
            .await,
        1
    );
    assert_eq!(
        s.raw.int("SELECT COUNT(*) FROM icloud.resources").await,
        2,
        "the row and its resources stay"
    );
    assert_eq!(
        all_pending(c, &user).await.len(),
        1,
        "a deleted photo is not asked for"
    );
    assert_eq!(c.stats(&user, Utc::now()).await.unwrap().totals.photos, 1);

    let again = c
        .sync_photos(
            &user,
            &library,
            vec![
                gone,
                PhotoUpsert {
                    deleted: true,
                    ..item("never")
                },
            ],
        )
        .await
        .unwrap();
    assert_eq!(outcomes(&again), vec![ItemOutcome::Unchanged; 2]);
    assert_eq!(again.version, 2);
    assert_eq!(
        s.raw.int("SELECT COUNT(*) FROM icloud.photos").await,
        2,
        "deleting an unknown photo stores nothing"
    );

    let back = c
        .sync_photos(&user, &library, vec![batch[0].clone()])
        .await
        .unwrap();
    assert_eq!(outcomes(&back), vec![ItemOutcome::Updated]);
    assert_eq!(back.version, 3);
    assert_eq!(
        s.raw
            .int("SELECT COUNT(*) FROM icloud.photos WHERE deleted_at IS NOT NULL")
            .await,
        0
    );
}

pub async fn stored_metadata_round_trips(s: &Subject) {
    let c = s.c();
    let (user, library) = user_and_library(c, "alice").await;
    let full = PhotoUpsert {
        cloud_guid: Some("GUID-1".into()),
        fingerprint: Some("FP".into()),
        kind: AssetKind::Video,
        subtype: Some("slomo".into()),
        live_photo: true,
        duration_ms: Some(12_345),
        latitude: Some(48.8566),
        longitude: Some(-2.35),
        edited: true,
        title: Some("Été".into()),
        caption: Some("quote ' and \" marks".into()),
        keywords: vec!["a".into(), "b".into()],
        people: vec!["Ann".into()],
        ..item("full")
    };
    c.sync_photos(&user, &library, vec![full]).await.unwrap();
    let row = s
        .raw
        .strings(
            "SELECT kind || '|' || subtype || '|' || cloud_guid || '|' || fingerprint || '|' || \
             CAST(duration_ms AS TEXT) || '|' || CAST(taken_at AS TEXT) || '|' || CAST(taken_at_offset_s AS TEXT) \
             || '|' || time_zone || '|' || title || '|' || caption || '|' || keywords || '|' || people \
             FROM icloud.photos",
        )
        .await;
    let taken = at(1).timestamp_millis();
    assert_eq!(
        row,
        vec![format!(
            "video|slomo|GUID-1|FP|12345|{taken}|7200|Europe/Paris|Été|quote ' and \" marks|[\"a\",\"b\"]|[\"Ann\"]"
        )]
    );
    assert_eq!(
        s.raw
            .int("SELECT COUNT(*) FROM icloud.photos WHERE live_photo AND edited AND NOT favorite")
            .await,
        1
    );
    assert_eq!(
        s.raw
            .int("SELECT CAST(latitude * 10000 AS BIGINT) FROM icloud.photos")
            .await,
        488_566
    );
}

pub async fn dedup_links_by_sha256_across_identities(s: &Subject) {
    let c = s.c();
    let (user, library) = user_and_library(c, "alice").await;
    let content = sha(1);
    let a = PhotoUpsert {
        resources: vec![original(500, Some(content.clone()))],
        ..item("A")
    };
    assert_eq!(
        c.sync_photos(&user, &library, vec![a]).await.unwrap().results[0].needs_upload,
        vec![ResourceType::Original]
    );
    let a_id = photo_id(c, &user, "A").await;
    c.record_upload(&user, &upload(&a_id, &content, 500, "users/u/A.heic", Utc::now()))
        .await
        .unwrap();
    let blob = c.blob_by_sha(&user, &content).await.unwrap().unwrap();
    assert_eq!((blob.key.as_str(), blob.size), ("users/u/A.heic", 500));

    let b = PhotoUpsert {
        resources: vec![original(500, Some(content.clone()))],
        ..item("B")
    };
    let result = c.sync_photos(&user, &library, vec![b]).await.unwrap();
    assert_eq!(result.results[0].outcome, ItemOutcome::Created);
    assert!(
        result.results[0].needs_upload.is_empty(),
        "known content is linked, not asked for"
    );
    let target = lookup(c, &user, "B", ResourceType::Original).await.unwrap();
    assert_eq!(target.state, Some(ResourceState::Stored));
    let stored = target.stored.unwrap();
    assert_eq!(
        (stored.key.as_str(), stored.sha256.as_str(), stored.size),
        ("users/u/A.heic", content.as_str(), 500)
    );
    assert!(all_pending(c, &user).await.is_empty());
    assert_eq!(s.raw.int("SELECT COUNT(*) FROM icloud.blobs").await, 1);
    assert!(c.blob_by_sha(&user, &sha(2)).await.unwrap().is_none());
    assert!(matches!(
        c.blob_by_sha(&user, "nothex").await,
        Err(Error::Invalid { .. })
    ));
}

pub async fn upload_links_other_pending_resources_with_the_same_digest(s: &Subject) {
    let c = s.c();
    let (user, library) = user_and_library(c, "alice").await;
    let content = sha(7);
    let declared = |id: &str| PhotoUpsert {
        resources: vec![original(70, Some(content.clone()))],
        ..item(id)
    };
    c.sync_photos(&user, &library, vec![declared("C"), declared("D"), item("E")])
        .await
        .unwrap();
    assert_eq!(all_pending(c, &user).await.len(), 3);
    let c_id = photo_id(c, &user, "C").await;
    let recorded = c
        .record_upload(&user, &upload(&c_id, &content, 70, "k/C", Utc::now()))
        .await
        .unwrap();
    assert_eq!(recorded.linked, 1, "D declared the same content");
    assert_eq!(
        all_pending(c, &user).await,
        vec![("E".to_owned(), ResourceType::Original)]
    );
    let d = lookup(c, &user, "D", ResourceType::Original).await.unwrap();
    assert_eq!(d.stored.unwrap().key, "k/C");
    // Recording the same upload again is harmless and keeps one blob row.
    c.record_upload(&user, &upload(&c_id, &content, 70, "k/C", Utc::now()))
        .await
        .unwrap();
    assert_eq!(s.raw.int("SELECT COUNT(*) FROM icloud.blobs").await, 1);
}

pub async fn unavailable_resources_are_not_pending(s: &Subject) {
    let c = s.c();
    let (user, library) = user_and_library(c, "alice").await;
    let cloud_only = PhotoUpsert {
        resources: vec![
            DeclaredResource {
                available: false,
                unavailable_reason: Some(UnavailableReason::IcloudOnly),
                ..original(900, None)
            },
            DeclaredResource {
                resource_type: ResourceType::LiveVideo,
                ..original(100, None)
            },
        ],
        ..item("cloud")
    };
    let result = c.sync_photos(&user, &library, vec![cloud_only]).await.unwrap();
    assert_eq!(result.results[0].needs_upload, vec![ResourceType::LiveVideo]);
    assert_eq!(
        all_pending(c, &user).await,
        vec![("cloud".to_owned(), ResourceType::LiveVideo)]
    );
    let target = lookup(c, &user, "cloud", ResourceType::Original).await.unwrap();
    assert_eq!(target.state, Some(ResourceState::Unavailable));
    assert_eq!(
        target.declared.unwrap().unavailable_reason,
        Some(UnavailableReason::IcloudOnly)
    );
    assert_eq!(
        s.raw
            .strings("SELECT state_reason FROM icloud.resources WHERE state = 'unavailable'")
            .await,
        vec!["icloud_only".to_owned()]
    );
    let totals = c.stats(&user, Utc::now()).await.unwrap().totals;
    assert_eq!(
        (totals.unavailable, totals.pending, totals.bytes_pending),
        (1, 1, 100)
    );
}

pub async fn pending_paging_walks_each_resource_once(s: &Subject) {
    let c = s.c();
    let (user, library) = user_and_library(c, "alice").await;
    let mut batch = items("P", 25);
    for photo in batch.iter_mut().step_by(3) {
        photo.resources.push(DeclaredResource {
            resource_type: ResourceType::LiveVideo,
            ..original(5, None)
        });
    }
    c.sync_photos(&user, &library, batch).await.unwrap();
    let expected = 25 + 9;
    let mut seen = std::collections::HashSet::new();
    let mut cursor = None;
    let mut pages = 0;
    loop {
        let query = PendingQuery {
            library_id: Some(library.clone()),
            limit: 7,
            cursor: cursor.take(),
        };
        let page = c.pending_uploads(&user, &query).await.unwrap();
        assert!(page.items.len() <= 7);
        pages += 1;
        for p in &page.items {
            assert!(
                seen.insert((p.local_identifier.clone(), p.resource)),
                "{p:?} listed twice"
            );
            assert_eq!(p.reason, PendingReason::NotUploaded);
            assert_eq!(p.library_key, "mac-library-1");
        }
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
        assert!(pages < 20, "paging does not end");
    }
    assert_eq!(seen.len(), expected);
    assert_eq!(pages, 5);
    let bad_cursor = PendingQuery {
        limit: 5,
        cursor: Some("garbage".into()),
        ..PendingQuery::default()
    };
    assert!(matches!(
        c.pending_uploads(&user, &bad_cursor).await,
        Err(Error::Invalid { .. })
    ));
    let zero = PendingQuery {
        limit: 0,
        ..PendingQuery::default()
    };
    assert!(matches!(
        c.pending_uploads(&user, &zero).await,
        Err(Error::Invalid { .. })
    ));
    let other = c.ensure_library(&user, "second").await.unwrap();
    let only_other = PendingQuery {
        library_id: Some(other.id),
        limit: 10,
        cursor: None,
    };
    assert!(
        c.pending_uploads(&user, &only_other)
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

pub async fn record_upload_shrinks_pending_and_failures_are_listed(s: &Subject) {
    let c = s.c();
    let (user, library) = user_and_library(c, "alice").await;
    c.sync_photos(&user, &library, items("U", 3)).await.unwrap();
    assert_eq!(all_pending(c, &user).await.len(), 3);
    let first = photo_id(c, &user, "U000/L0/001").await;
    let before = c.version(&user).await.unwrap();
    let recorded = c
        .record_upload(&user, &upload(&first, &sha(3), 1000, "k/U0", Utc::now()))
        .await
        .unwrap();
    assert_eq!(recorded.version, before + 1);
    let pending = all_pending(c, &user).await;
    assert_eq!(pending.len(), 2);
    assert!(!pending.iter().any(|(id, _)| id == "U000/L0/001"));
    assert_eq!(
        s.raw
            .int(&format!("SELECT version FROM icloud.photos WHERE id = '{first}'"))
            .await,
        recorded.version
    );
    // A re-sync after the upload still reports the photo unchanged and not needed.
    let again = c.sync_photos(&user, &library, items("U", 1)).await.unwrap();
    assert_eq!(
        (
            again.results[0].outcome.clone(),
            again.results[0].needs_upload.len()
        ),
        (ItemOutcome::Unchanged, 0)
    );

    let second = photo_id(c, &user, "U001/L0/001").await;
    c.record_upload_failure(&user, &second, ResourceType::Original, "digest mismatch")
        .await
        .unwrap();
    let page = c
        .pending_uploads(
            &user,
            &PendingQuery {
                limit: 10,
                ..PendingQuery::default()
            },
        )
        .await
        .unwrap();
    let failed = page.items.iter().find(|p| p.photo_id == second).unwrap();
    assert_eq!(
        failed.reason,
        PendingReason::Failed {
            detail: "digest mismatch".into()
        }
    );
    assert_eq!(c.stats(&user, Utc::now()).await.unwrap().totals.failed, 1);

    assert!(matches!(
        c.record_upload(
            &user,
            &upload(&PhotoId::new("0".repeat(32)), &sha(3), 1, "k", Utc::now())
        )
        .await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        c.record_upload(&user, &upload(&first, "XYZ", 1, "k", Utc::now()))
            .await,
        Err(Error::Invalid { .. })
    ));
}

pub async fn changed_content_is_needed_again(s: &Subject) {
    let c = s.c();
    let (user, library) = user_and_library(c, "alice").await;
    let v1 = PhotoUpsert {
        resources: vec![original(10, Some(sha(10)))],
        ..item("edit")
    };
    c.sync_photos(&user, &library, vec![v1.clone()]).await.unwrap();
    let id = photo_id(c, &user, "edit").await;
    c.record_upload(&user, &upload(&id, &sha(10), 10, "k/edit", Utc::now()))
        .await
        .unwrap();
    // Offloaded to iCloud afterwards: the stored bytes stay stored.
    let offloaded = PhotoUpsert {
        resources: vec![DeclaredResource {
            available: false,
            unavailable_reason: Some(UnavailableReason::IcloudOnly),
            ..v1.resources[0].clone()
        }],
        ..v1.clone()
    };
    let r = c.sync_photos(&user, &library, vec![offloaded]).await.unwrap();
    assert!(r.results[0].needs_upload.is_empty());
    assert_eq!(
        lookup(c, &user, "edit", ResourceType::Original)
            .await
            .unwrap()
            .state,
        Some(ResourceState::Stored)
    );
    // New content declared: needed again, with the reason.
    let v2 = PhotoUpsert {
        resources: vec![original(11, Some(sha(11)))],
        ..v1
    };
    let r = c.sync_photos(&user, &library, vec![v2]).await.unwrap();
    assert_eq!(
        (r.results[0].outcome.clone(), r.results[0].needs_upload.clone()),
        (ItemOutcome::Updated, vec![ResourceType::Original])
    );
    let page = c
        .pending_uploads(
            &user,
            &PendingQuery {
                limit: 10,
                ..PendingQuery::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(page.items[0].reason, PendingReason::ContentChanged);
    assert_eq!(page.items[0].declared_sha256.as_deref(), Some(sha(11).as_str()));
}

pub async fn upload_lookup_answers_before_the_body(s: &Subject) {
    let c = s.c();
    let (user, library) = user_and_library(c, "alice").await;
    c.sync_photos(&user, &library, vec![item("same"), item("only")])
        .await
        .unwrap();
    let second = c.ensure_library(&user, "mac-library-2").await.unwrap();
    c.sync_photos(&user, &second.id, vec![item("same")])
        .await
        .unwrap();

    assert!(
        lookup(c, &user, "missing", ResourceType::Original)
            .await
            .is_none()
    );
    let target = lookup(c, &user, "only", ResourceType::Original).await.unwrap();
    assert_eq!(
        (target.library_id.clone(), target.library_key.as_str()),
        (library.clone(), "mac-library-1")
    );
    assert_eq!(
        (target.original_filename.as_str(), target.uti.as_str()),
        ("IMG_only.HEIC", "public.heic")
    );
    assert_eq!(target.state, Some(ResourceState::Pending));
    assert_eq!(target.declared.unwrap().size, 1000);
    assert!(target.stored.is_none() && !target.deleted);
    let raw = lookup(c, &user, "only", ResourceType::Raw).await.unwrap();
    assert_eq!(
        (raw.state, raw.declared),
        (None, None),
        "an undeclared resource type is known as such"
    );

    let ambiguous = UploadLookup {
        library_id: None,
        local_identifier: "same".into(),
        resource: ResourceType::Original,
    };
    assert!(matches!(
        c.resource_for_upload(&user, &ambiguous).await,
        Err(Error::Conflict { .. })
    ));
    let named = UploadLookup {
        library_id: Some(second.id.clone()),
        ..ambiguous
    };
    assert_eq!(
        c.resource_for_upload(&user, &named)
            .await
            .unwrap()
            .unwrap()
            .library_id,
        second.id
    );

    // An upload of an undeclared type is recorded as declared by what arrived.
    c.record_upload(
        &user,
        &UploadRecord {
            resource: ResourceType::Raw,
            ..upload(&target.photo_id, &sha(5), 77, "k/raw", Utc::now())
        },
    )
    .await
    .unwrap();
    let raw = lookup(c, &user, "only", ResourceType::Raw).await.unwrap();
    assert_eq!(
        (raw.state, raw.stored.map(|s| s.size)),
        (Some(ResourceState::Stored), Some(77))
    );
}

pub async fn albums_replace_keeps_order_and_is_atomic(s: &Subject) {
    let c = s.c();
    let (user, library) = user_and_library(c, "alice").await;
    c.sync_photos(
        &user,
        &library,
        ["p1", "p2", "p3", "p4", "p5"].iter().map(|i| item(i)).collect(),
    )
    .await
    .unwrap();
    let base = c.version(&user).await.unwrap();
    let album = |key: &str, kind: AlbumKind, parent: Option<&str>, members: &[&str]| AlbumUpsert {
        album_key: key.into(),
        title: format!("title {key}"),
        kind,
        parent_key: parent.map(str::to_owned),
        members: members.iter().map(|m| (*m).to_owned()).collect(),
    };
    let first = vec![
        album("A", AlbumKind::Album, None, &["p3", "p1", "ghost", "p2", "p3"]),
        album("F", AlbumKind::Folder, None, &[]),
        album("B", AlbumKind::Shared, Some("F"), &["p5"]),
    ];
    let r = c.replace_albums(&user, &library, first.clone()).await.unwrap();
    assert_eq!(
        (r.created, r.updated, r.unchanged, r.deleted, r.unknown_members),
        (3, 0, 0, 0, 1)
    );
    assert_eq!(r.version, base + 1);
    let members_of = |key: &str| {
        format!(
            "SELECT p.local_identifier FROM icloud.album_members m JOIN icloud.albums a ON a.id = m.album_id \
             JOIN icloud.photos p ON p.id = m.photo_id WHERE a.album_key = '{key}' ORDER BY m.position"
        )
    };
    assert_eq!(s.raw.strings(&members_of("A")).await, vec!["p3", "p1", "p2"]);
    assert_eq!(
        s.raw
            .strings("SELECT parent_key FROM icloud.albums WHERE album_key = 'B'")
            .await,
        vec!["F"]
    );

    let same = c.replace_albums(&user, &library, first.clone()).await.unwrap();
    assert_eq!(
        (same.unchanged, same.version),
        (3, base + 1),
        "an unchanged call does not move the version"
    );

    // Reorder A, drop B: membership replaced, B soft-deleted with its membership cleared.
    let second = vec![
        album("A", AlbumKind::Album, None, &["p1", "p2", "p3", "p4"]),
        first[1].clone(),
    ];
    let r = c.replace_albums(&user, &library, second.clone()).await.unwrap();
    assert_eq!((r.created, r.updated, r.unchanged, r.deleted), (0, 1, 1, 1));
    assert_eq!(r.version, base + 2);
    assert_eq!(
        s.raw.strings(&members_of("A")).await,
        vec!["p1", "p2", "p3", "p4"]
    );
    assert_eq!(
        s.raw
            .int("SELECT COUNT(*) FROM icloud.albums WHERE deleted_at IS NOT NULL AND album_key = 'B'")
            .await,
        1
    );
    assert!(s.raw.strings(&members_of("B")).await.is_empty());

    // An invalid call changes nothing at all.
    let mut invalid = vec![album("A", AlbumKind::Album, None, &["p4"])];
    invalid.push(album("A", AlbumKind::Folder, None, &[]));
    assert!(matches!(
        c.replace_albums(&user, &library, invalid).await,
        Err(Error::Invalid { .. })
    ));
    assert_eq!(
        s.raw.strings(&members_of("A")).await,
        vec!["p1", "p2", "p3", "p4"]
    );
    assert_eq!(c.version(&user).await.unwrap(), base + 2);

    // A member synced later makes the same album list a change.
    let with_late = vec![album("A", AlbumKind::Album, None, &["p1", "late"])];
    c.replace_albums(&user, &library, with_late.clone())
        .await
        .unwrap();
    c.sync_photos(&user, &library, vec![item("late")]).await.unwrap();
    let r = c.replace_albums(&user, &library, with_late).await.unwrap();
    assert_eq!((r.updated, r.unknown_members), (1, 0));
    assert_eq!(s.raw.strings(&members_of("A")).await, vec!["p1", "late"]);
}

pub async fn stats_count_resources_and_bytes(s: &Subject) {
    let c = s.c();
    let (user, library) = user_and_library(c, "alice").await;
    let now = Utc::now();
    let photo = |id: &str, size: u64, sha256: u8| PhotoUpsert {
        resources: vec![original(size, Some(sha(sha256)))],
        ..item(id)
    };
    let cloud = PhotoUpsert {
        resources: vec![DeclaredResource {
            available: false,
            unavailable_reason: Some(UnavailableReason::Missing),
            ..original(50, None)
        }],
        ..item("cloud")
    };
    c.sync_photos(
        &user,
        &library,
        vec![
            photo("old", 100, 1),
            photo("new", 200, 2),
            photo("todo", 400, 3),
            cloud,
            photo("dup", 100, 1),
        ],
    )
    .await
    .unwrap();
    let old = photo_id(c, &user, "old").await;
    let new = photo_id(c, &user, "new").await;
    c.record_upload(
        &user,
        &upload(&old, &sha(1), 100, "k/old", now - Duration::hours(2)),
    )
    .await
    .unwrap();
    c.record_upload(
        &user,
        &upload(&new, &sha(2), 200, "k/new", now - Duration::minutes(1)),
    )
    .await
    .unwrap();
    let second = c.ensure_library(&user, "mac-library-2").await.unwrap();
    c.sync_photos(&user, &second.id, vec![item("elsewhere")])
        .await
        .unwrap();

    let stats = c.stats(&user, now - Duration::minutes(10)).await.unwrap();
    assert_eq!(stats.version, c.version(&user).await.unwrap());
    assert_eq!(stats.libraries.len(), 2);
    let first = &stats.libraries[0].counts;
    assert_eq!(stats.libraries[0].library_id, library);
    assert_eq!(
        (
            first.photos,
            first.resources,
            first.uploaded,
            first.pending,
            first.unavailable
        ),
        (5, 5, 3, 1, 1)
    );
    assert_eq!(
        (first.bytes_total, first.bytes_uploaded, first.bytes_pending),
        (850, 400, 400)
    );
    assert_eq!(
        first.bytes_transferred, 300,
        "the linked duplicate crossed no wire"
    );
    assert_eq!((first.recent_uploads, first.recent_bytes), (1, 200));
    assert_eq!(
        first.first_upload_at.unwrap().timestamp_millis(),
        (now - Duration::hours(2)).timestamp_millis()
    );
    assert_eq!(
        first.last_upload_at.unwrap().timestamp_millis(),
        (now - Duration::minutes(1)).timestamp_millis()
    );
    let totals = &stats.totals;
    assert_eq!(
        (
            totals.photos,
            totals.resources,
            totals.pending,
            totals.bytes_pending
        ),
        (6, 6, 2, 1400)
    );
    assert_eq!(totals.first_upload_at, first.first_upload_at);
}

pub async fn users_are_isolated(s: &Subject) {
    let c = s.c();
    let (alice, a_lib) = user_and_library(c, "alice").await;
    let (bob, b_lib) = user_and_library(c, "bob").await;
    let content = sha(9);
    c.sync_photos(
        &alice,
        &a_lib,
        vec![PhotoUpsert {
            resources: vec![original(9, Some(content.clone()))],
            ..item("shared-id")
        }],
    )
    .await
    .unwrap();
    let a_photo = photo_id(c, &alice, "shared-id").await;
    c.record_upload(
        &alice,
        &upload(&a_photo, &content, 9, "users/alice/x", Utc::now()),
    )
    .await
    .unwrap();
    c.replace_albums(
        &alice,
        &a_lib,
        vec![AlbumUpsert {
            album_key: "AL".into(),
            title: "Alice's".into(),
            kind: AlbumKind::Album,
            parent_key: None,
            members: vec!["shared-id".into()],
        }],
    )
    .await
    .unwrap();
    let a_token = c.create_token(&alice, Scope::Client, "a").await.unwrap();
    let a_version = c.version(&alice).await.unwrap();

    // Bob cannot write into Alice's library, read her photo, blob, token or stats, or change them.
    assert!(matches!(
        c.sync_photos(&bob, &a_lib, items("X", 1)).await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        c.replace_albums(&bob, &a_lib, Vec::new()).await,
        Err(Error::NotFound { .. })
    ));
    assert!(
        lookup(c, &bob, "shared-id", ResourceType::Original)
            .await
            .is_none()
    );
    assert!(c.blob_by_sha(&bob, &content).await.unwrap().is_none());
    assert!(matches!(
        c.record_upload(&bob, &upload(&a_photo, &sha(8), 1, "users/bob/y", Utc::now()))
            .await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        c.record_upload_failure(&bob, &a_photo, ResourceType::Original, "x")
            .await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        c.revoke_token(&bob, &a_token.info.id).await,
        Err(Error::NotFound { .. })
    ));
    assert!(c.authenticate(a_token.secret.expose()).await.unwrap().is_some());
    assert!(c.list_tokens(Some(&bob)).await.unwrap().is_empty());
    let pending = c
        .pending_uploads(
            &bob,
            &PendingQuery {
                library_id: Some(a_lib.clone()),
                limit: 10,
                cursor: None,
            },
        )
        .await
        .unwrap();
    assert!(pending.items.is_empty());
    let bob_stats = c.stats(&bob, Utc::now()).await.unwrap();
    assert_eq!(
        (
            bob_stats.totals.photos,
            bob_stats.libraries.len(),
            bob_stats.version
        ),
        (0, 1, 0)
    );

    // Bob declaring Alice's content is not linked to her blob: he must upload his own bytes.
    let r = c
        .sync_photos(
            &bob,
            &b_lib,
            vec![PhotoUpsert {
                resources: vec![original(9, Some(content.clone()))],
                ..item("shared-id")
            }],
        )
        .await
        .unwrap();
    assert_eq!(
        (r.results[0].outcome.clone(), r.results[0].needs_upload.clone()),
        (ItemOutcome::Created, vec![ResourceType::Original])
    );
    assert!(c.replace_albums(&bob, &b_lib, Vec::new()).await.unwrap().deleted == 0);

    // Alice's side is exactly as before.
    assert_eq!(c.version(&alice).await.unwrap(), a_version);
    assert_eq!(
        lookup(c, &alice, "shared-id", ResourceType::Original)
            .await
            .unwrap()
            .state,
        Some(ResourceState::Stored)
    );
    assert_eq!(
        s.raw
            .int("SELECT COUNT(*) FROM icloud.albums WHERE deleted_at IS NULL")
            .await,
        1
    );
    assert_eq!(s.raw.int("SELECT COUNT(*) FROM icloud.album_members").await, 1);
}

pub async fn database_error_mid_batch_applies_nothing(s: &Subject) {
    let c = s.c();
    let (user, library) = user_and_library(c, "alice").await;
    let mut batch = items("A", 2);
    c.sync_photos(&user, &library, batch.clone()).await.unwrap();
    let version = c.version(&user).await.unwrap();
    s.raw.fail_inserts_of_boom().await;

    batch[0].favorite = true;
    batch[1].deleted = true;
    let poisoned = vec![
        batch[0].clone(),
        item("fresh"),
        batch[1].clone(),
        item("boom"),
        item("after"),
    ];
    let err = c.sync_photos(&user, &library, poisoned).await.unwrap_err();
    assert!(matches!(err, Error::Database(_)), "{err:?}");

    assert_eq!(c.version(&user).await.unwrap(), version);
    assert_eq!(s.raw.int("SELECT COUNT(*) FROM icloud.photos").await, 2);
    assert_eq!(
        s.raw
            .int("SELECT COUNT(*) FROM icloud.photos WHERE favorite OR deleted_at IS NOT NULL")
            .await,
        0
    );
    assert_eq!(s.raw.int("SELECT COUNT(*) FROM icloud.resources").await, 2);
    // The catalog is still usable, and the same batch without the poisoned item applies whole.
    let healthy = vec![batch[0].clone(), item("fresh"), batch[1].clone(), item("after")];
    let r = c.sync_photos(&user, &library, healthy).await.unwrap();
    assert_eq!(
        outcomes(&r),
        vec![
            ItemOutcome::Updated,
            ItemOutcome::Created,
            ItemOutcome::Updated,
            ItemOutcome::Created
        ]
    );
    assert_eq!(r.version, version + 1);
}
