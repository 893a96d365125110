//! The garbage collector's test fixture: a catalog and a store holding referenced objects of every kind,
//! garbage of every kind and objects that must be kept however old, and the checks of the guarantee.

#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::sync::Arc;
use std::time::Duration;

use api::{AssetKind, JobKind, ResourceType};
use chrono::{FixedOffset, TimeZone as _, Utc};
use harness::{Postgres, S3Server};
use server::catalog::{
    self, Catalog, ConnectOptions, DeclaredResource, LeaseRequest, LibraryId, Location, PhotoUpsert,
    Retention, UploadRecord, UserId,
};
use server::gc::{self, GcSettings};
use storage::{PutOptions, Sha256Digest, StorageKey, Store};

/// Objects older than this are past the grace; the fixture waits it out before writing the fresh one.
pub const GRACE: Duration = Duration::from_secs(2);
/// The grace of the `gc` processes: long enough that the fresh object stays fresh through a dry run and
/// two passes, each with its settle pause.
pub const CLI_GRACE: Duration = Duration::from_secs(8);

/// What a fixture put in the catalog and the store.
pub struct Fixture {
    pub user: UserId,
    /// Objects the catalog names, with the SHA-256 it recorded.
    pub referenced: Vec<(StorageKey, String)>,
    /// Unreferenced objects past the grace, with their sizes.
    pub garbage: Vec<(StorageKey, u64)>,
    /// Never collected: an unreferenced object within the grace, objects outside `users/<known user>/`.
    pub kept: Vec<StorageKey>,
}

impl Fixture {
    pub fn garbage_bytes(&self) -> u64 {
        self.garbage.iter().map(|(_, size)| size).sum()
    }
}

pub fn bytes(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| u8::try_from((i * 31 + usize::from(seed) * 7) % 251).unwrap())
        .collect()
}

pub fn key(text: &str) -> StorageKey {
    StorageKey::parse(text).unwrap()
}

pub async fn put(store: &Store, key: &StorageKey, body: Vec<u8>) -> String {
    store
        .put(key, body.into(), &PutOptions::default())
        .await
        .unwrap()
        .sha256
        .to_hex()
}

pub fn photo(local_identifier: &str, sha256: &str, size: u64) -> PhotoUpsert {
    let at = FixedOffset::east_opt(0)
        .unwrap()
        .with_ymd_and_hms(2024, 5, 1, 10, 0, 0)
        .unwrap();
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
        taken_at: at,
        time_zone: None,
        modified_at: at,
        favorite: false,
        hidden: false,
        trashed: false,
        latitude: None,
        longitude: None,
        original_filename: format!("{local_identifier}.HEIC"),
        uti: "public.heic".into(),
        edited: false,
        title: None,
        caption: None,
        keywords: Vec::new(),
        people: Vec::new(),
        resources: vec![DeclaredResource {
            resource_type: ResourceType::Original,
            size,
            sha256: Some(sha256.to_owned()),
            available: true,
            unavailable_reason: None,
            bundle_path: None,
        }],
        deleted: false,
    }
}

/// Stores and records `photos` originals for the user; returns (key, sha256) per photo.
pub async fn stored_photos(
    catalog: &dyn Catalog,
    store: &Store,
    user: &UserId,
    library: &LibraryId,
    names: &[&str],
    seed: u8,
) -> Vec<(StorageKey, String, PhotoUpsert)> {
    let mut out = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let body = bytes(1000 + i * 37, seed + u8::try_from(i).unwrap());
        let size = body.len() as u64;
        let k = key(&format!("users/{user}/libraries/{library}/originals/{name}.heic"));
        let sha256 = put(store, &k, body).await;
        let item = photo(name, &sha256, size);
        catalog
            .sync_photos(user, library, vec![item.clone()])
            .await
            .unwrap();
        let target = catalog
            .resource_for_upload(
                user,
                &catalog::UploadLookup {
                    library_id: Some(library.clone()),
                    local_identifier: (*name).to_owned(),
                    resource: ResourceType::Original,
                },
            )
            .await
            .unwrap()
            .unwrap();
        catalog
            .record_upload(
                user,
                &UploadRecord {
                    photo_id: target.photo_id,
                    resource: ResourceType::Original,
                    sha256: sha256.clone(),
                    size,
                    key: k.to_string(),
                    at: Utc::now(),
                    deduplicated: false,
                },
            )
            .await
            .unwrap();
        out.push((k, sha256, item));
    }
    out
}

/// Referenced objects of every kind, garbage of every kind, and what must be kept however old.
/// `strays` more unreferenced objects are added, so passes have something to race over; all but the fresh
/// object are past `grace` when this returns.
pub async fn populate(
    catalog: &dyn Catalog,
    store: &Store,
    photos: usize,
    strays: u8,
    grace: Duration,
) -> Fixture {
    let user = catalog.create_user("alice").await.unwrap().id;
    let library = catalog.ensure_library(&user, "mac").await.unwrap().id;
    // Garbage: an original the Mac dropped, once its history's retention is over; only a blob row names it.
    let mut garbage = Vec::new();
    let orphan = stored_photos(catalog, store, &user, &library, &["ORPHAN"], 120).await;
    let (orphan_key, _, orphan_item) = orphan.into_iter().next().unwrap();
    // The Mac dropped the resource: the photo is re-declared without it, so only the blob row names it.
    catalog
        .sync_photos(
            &user,
            &library,
            vec![PhotoUpsert {
                resources: Vec::new(),
                ..orphan_item
            }],
        )
        .await
        .unwrap();
    // Its retained history names it for the retention: run the purge's clock past it, so only the blob row
    // is left. (First, so the purge touches nothing the rest of the fixture makes.)
    catalog
        .purge(Retention { days: 30 }, Utc::now() + chrono::Duration::days(31))
        .await
        .unwrap();
    let orphan_size = store.head(&orphan_key).await.unwrap().size;
    garbage.push((orphan_key, orphan_size));
    let names: Vec<String> = (0..photos).map(|i| format!("LIVE{i}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut referenced: Vec<(StorageKey, String)> = Vec::new();
    for (k, sha256, _) in stored_photos(catalog, store, &user, &library, &names, 1).await {
        referenced.push((k, sha256));
    }
    // A tombstone keeps its original for the retention.
    let gone = stored_photos(catalog, store, &user, &library, &["GONE"], 90).await;
    let (gone_key, gone_sha, gone_item) = gone.into_iter().next().unwrap();
    catalog
        .sync_photos(
            &user,
            &library,
            vec![PhotoUpsert {
                deleted: true,
                ..gone_item
            }],
        )
        .await
        .unwrap();
    referenced.push((gone_key, gone_sha));
    // A thumbnail named by an enrichment result.
    let job = catalog
        .lease_jobs(
            &user,
            &LeaseRequest {
                kind: JobKind::Thumbnail,
                max: 10,
                lease_ms: 60_000,
            },
        )
        .await
        .unwrap()
        .remove(0);
    let thumb = key(&format!(
        "users/{user}/libraries/{library}/derivatives/thumbnail/{}.jpg",
        job.local_identifier
    ));
    let thumb_sha = put(store, &thumb, bytes(300, 200)).await;
    catalog
        .complete_job(&user, &job.id, &serde_json::json!({"key": thumb.as_str()}))
        .await
        .unwrap();
    referenced.push((thumb, thumb_sha));

    // Garbage: a thumbnail written for a job that never completed (and the orphan above).
    let stray = key(&format!(
        "users/{user}/libraries/{library}/derivatives/thumbnail/STRAY.jpg"
    ));
    put(store, &stray, bytes(4321, 3)).await;
    garbage.push((stray, 4321));
    for i in 0..strays {
        let k = key(&format!(
            "users/{user}/libraries/{library}/derivatives/thumbnail/S/STRAY{i}.jpg"
        ));
        put(store, &k, bytes(100 + usize::from(i), i)).await;
        garbage.push((k, 100 + u64::from(i)));
    }

    // Never touched, however old: outside `users/`, and under a user the catalog does not know.
    let seed = key("seed/originals/A/OUTSIDE.heic");
    put(store, &seed, bytes(10, 4)).await;
    let stranger = key("users/nobody/libraries/x/originals/S.heic");
    put(store, &stranger, bytes(10, 5)).await;
    // An original the catalog never recorded: `seed-originals --user --library-id` writes these for the
    // mount to serve as the library's originals folder, so it may be the only copy.
    let seeded = key(&format!("users/{user}/libraries/{library}/originals/SEEDED.heic"));
    put(store, &seeded, bytes(20, 6)).await;

    tokio::time::sleep(grace + Duration::from_millis(1500)).await;
    // Within the grace: an upload whose catalog record is still to come.
    let fresh = key(&format!("users/{user}/libraries/{library}/originals/FRESH.heic"));
    put(store, &fresh, bytes(999, 6)).await;
    Fixture {
        user,
        referenced,
        garbage,
        kept: vec![seed, stranger, seeded, fresh],
    }
}

/// The guarantee: every referenced object exists and hashes to what the catalog recorded; the kept ones
/// exist.
pub async fn assert_nothing_referenced_lost(store: &Store, fixture: &Fixture) {
    for (k, sha256) in &fixture.referenced {
        let body = store
            .get_bytes(k)
            .await
            .unwrap_or_else(|e| panic!("referenced {k} lost: {e}"));
        assert_eq!(&Sha256Digest::of(&body).to_hex(), sha256, "{k}");
    }
    for k in &fixture.kept {
        store
            .head(k)
            .await
            .unwrap_or_else(|e| panic!("{k} must be kept: {e}"));
    }
}

pub async fn assert_garbage_gone(store: &Store, fixture: &Fixture) {
    for (k, _) in &fixture.garbage {
        assert!(
            matches!(store.head(k).await, Err(storage::Error::NotFound { .. })),
            "{k} should have been collected"
        );
    }
}

pub fn settings(dry_run: bool) -> GcSettings {
    GcSettings {
        dry_run,
        settle: Duration::from_millis(100),
        ..GcSettings::new(GRACE)
    }
}

/// Dry run, then a pass, then a pass again, with the guarantee checked after each. `blobs` is the local
/// backend's directory, where a crash's staging file is planted too.
pub async fn collects_only_unreferenced_past_the_grace(
    catalog: &dyn Catalog,
    store: &Store,
    blobs: Option<&std::path::Path>,
) {
    let fixture = populate(catalog, store, 3, 0, GRACE).await;
    let staging = blobs.map(|blobs| {
        let path = blobs.join(format!("users/{}/crashed.heic#3", fixture.user));
        std::fs::write(&path, bytes(777, 9)).unwrap();
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(std::time::SystemTime::now() - GRACE * 2)
            .unwrap();
        path
    });
    let staging_bytes = if staging.is_some() { 777 } else { 0 };
    assert_eq!(fixture.referenced.len(), 5);
    let referenced: Vec<String> = fixture.referenced.iter().map(|(k, _)| k.to_string()).collect();
    assert_eq!(
        catalog
            .gc_referenced_among(&fixture.user, &referenced)
            .await
            .unwrap()
            .len(),
        5
    );

    let dry = gc::run_pass(catalog, store, "replica-a", &settings(true))
        .await
        .unwrap();
    assert!(dry.ran);
    assert_eq!(dry.reclaimable_bytes(), fixture.garbage_bytes() + staging_bytes);
    assert_eq!(dry.reclaimable_objects(), (2, fixture.garbage_bytes()));
    assert_eq!(dry.reclaimed_bytes(), 0);
    assert!(staging.as_ref().is_none_or(|path| path.exists()));
    assert_eq!(dry.users.len(), 1);
    assert_eq!(dry.users[0].reclaimable_keys, 2);
    for (k, _) in &fixture.garbage {
        store.head(k).await.unwrap();
    }
    assert_nothing_referenced_lost(store, &fixture).await;

    let pass = gc::run_pass(catalog, store, "replica-a", &settings(false))
        .await
        .unwrap();
    assert!(pass.ran);
    assert_eq!(pass.reclaimed_bytes(), dry.reclaimable_bytes(), "{pass:?}");
    assert_eq!(pass.users[0].reclaimed_keys, 2);
    assert_eq!(pass.staging.bytes, staging_bytes);
    assert!(staging.as_ref().is_none_or(|path| !path.exists()));
    assert_garbage_gone(store, &fixture).await;
    assert_nothing_referenced_lost(store, &fixture).await;
    // The orphan's blob row went with its object: the next upload of that content stores it again.
    assert!(
        catalog
            .gc_referenced_keys(&fixture.user)
            .await
            .unwrap()
            .iter()
            .all(|k| !k.contains("ORPHAN"))
    );

    let again = gc::run_pass(catalog, store, "replica-b", &settings(false))
        .await
        .unwrap();
    assert!(again.ran, "the first pass released its lease");
    assert_eq!(again.reclaimed_bytes(), 0, "idempotent: {again:?}");
    assert_nothing_referenced_lost(store, &fixture).await;
}

pub async fn sqlite_catalog(dir: &std::path::Path) -> Arc<dyn Catalog> {
    catalog::connect(&Location::sqlite_in(dir), &ConnectOptions::default())
        .await
        .unwrap()
}

pub fn local_store(dir: &std::path::Path) -> Store {
    use clap::Parser as _;
    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        storage: storage::StorageArgs,
    }
    let mut args = Cli::try_parse_from(["t"]).unwrap().storage;
    args.storage_local_path = Some(dir.join("blobs"));
    args.presign_secret = Some(storage::Secret::new(
        "gc-test-secret-0123456789abcdef-0123".into(),
    ));
    args.public_url = Some("http://127.0.0.1:1".parse().unwrap());
    storage::create_object_store(&args.into_config().unwrap()).unwrap()
}

pub async fn postgres_url() -> String {
    tokio::task::spawn_blocking(|| Postgres::shared().fresh_database().unwrap())
        .await
        .unwrap()
}

pub fn s3_config(prefix: &str) -> storage::S3Config {
    let server = S3Server::shared();
    storage::S3Config {
        endpoint: Some(server.endpoint.parse().unwrap()),
        region: server.region.clone(),
        bucket: server.bucket.clone(),
        access_key_id: server.access_key_id.clone(),
        secret_access_key: storage::Secret::new(server.secret_access_key.clone()),
        prefix: Some(key(prefix)),
        path_style: true,
    }
}

/// One metric's value in a `/metrics` text, if present.
pub fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(&format!("{name} ")))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}
