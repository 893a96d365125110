//! The reader against a database built from `reference/fixture_photos11.sql` (exact values for each of its six
//! assets and its albums), against bad input (missing, corrupt, not Photos), a locked database, a bundle with
//! real files, and a plain folder.

// Helpers outside #[test] fns are not covered by allow-unwrap-in-tests (rust-clippy #13981).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use api::{AssetKind, Resource, ResourceType, SyncItem, UnavailableReason};
use chrono::DateTime;
use iphoto_agent::library::{
    AlbumKind, AlbumSort, Error, FolderLibrary, PhotosLibrary, ReadAlbum, ResourceFile, SkipReason,
    SkippedAsset, SortKey,
};
use sqlx::Connection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};

fn missing(resource_type: ResourceType, size: u64) -> Resource {
    Resource {
        resource_type,
        size,
        sha256: None,
        available: false,
        unavailable_reason: Some(UnavailableReason::Missing),
        bundle_path: None,
    }
}

fn time(rfc3339: &str) -> DateTime<chrono::FixedOffset> {
    DateTime::parse_from_rfc3339(rfc3339).unwrap()
}

/// A photo with the fields most fixture assets share; each test case overrides what differs.
fn base(uuid: &str, filename: &str, uti: &str) -> SyncItem {
    SyncItem {
        local_identifier: format!("{uuid}/L0/001"),
        cloud_guid: None,
        fingerprint: None,
        kind: AssetKind::Photo,
        subtype: None,
        live_photo: false,
        width: 4032,
        height: 3024,
        duration_ms: None,
        taken_at: time("2001-01-01T00:00:00Z"),
        time_zone: None,
        modified_at: time("2024-07-11T00:00:00+00:00"),
        favorite: false,
        hidden: false,
        trashed: false,
        latitude: None,
        longitude: None,
        original_filename: filename.to_owned(),
        uti: uti.to_owned(),
        edited: false,
        title: None,
        caption: None,
        keywords: Vec::new(),
        people: Vec::new(),
        resources: Vec::new(),
        deleted: false,
    }
}

fn expected_items() -> Vec<SyncItem> {
    let one = SyncItem {
        fingerprint: Some("AfixtureHash0001".into()),
        taken_at: time("2024-07-04T14:00:00+02:00"),
        time_zone: Some("Europe/Paris".into()),
        modified_at: time("2024-07-10T10:00:00+00:00"),
        favorite: true,
        latitude: Some(48.8584),
        longitude: Some(2.2945),
        title: Some("Eiffel".into()),
        resources: vec![missing(ResourceType::Original, 2_501_234)],
        ..base(
            "A1B2C3D4-0001-4000-8000-000000000001",
            "IMG_0001.JPG",
            "public.jpeg",
        )
    };
    let two = SyncItem {
        fingerprint: Some("AfixtureHash0002".into()),
        width: 3024,
        height: 4032,
        taken_at: time("2024-07-04T05:05:00-07:00"),
        time_zone: Some("America/Los_Angeles".into()),
        modified_at: time("2024-07-10T10:00:00+00:00"),
        edited: true,
        resources: vec![
            missing(ResourceType::Original, 1_877_314),
            missing(ResourceType::Render, 1_846_875),
        ],
        ..base(
            "B2C3D4E5-0002-4000-8000-000000000002",
            "IMG_0002.HEIC",
            "public.heic",
        )
    };
    let three = SyncItem {
        fingerprint: Some("AfixtureHash0003".into()),
        kind: AssetKind::Video,
        width: 1920,
        height: 1080,
        duration_ms: Some(7233),
        taken_at: time("2024-07-05T02:30:00-07:00"),
        time_zone: Some("America/Los_Angeles".into()),
        resources: vec![missing(ResourceType::Original, 9_431_552)],
        ..base(
            "C3D4E5F6-0003-4000-8000-000000000003",
            "IMG_0003.MOV",
            "com.apple.quicktime-movie",
        )
    };
    let four = SyncItem {
        fingerprint: Some("AfixtureHash0004".into()),
        subtype: Some("live_photo".into()),
        live_photo: true,
        width: 3024,
        height: 4032,
        taken_at: time("2024-07-06T11:45:30-07:00"),
        time_zone: Some("America/Los_Angeles".into()),
        latitude: Some(37.7749),
        longitude: Some(-122.4194),
        resources: vec![
            missing(ResourceType::Original, 2_114_329),
            missing(ResourceType::LiveVideo, 3_554_168),
        ],
        ..base(
            "D4E5F6A7-0004-4000-8000-000000000004",
            "IMG_0004.HEIC",
            "public.heic",
        )
    };
    let five = SyncItem {
        fingerprint: Some("AfixtureHash0005".into()),
        taken_at: time("2024-05-01T08:00:00+00:00"),
        time_zone: Some("GMT".into()),
        modified_at: time("2024-07-20T07:00:00+00:00"),
        trashed: true,
        resources: vec![missing(ResourceType::Original, 1_024_000)],
        ..base(
            "E5F6A7B8-0005-4000-8000-000000000005",
            "IMG_0005.JPG",
            "public.jpeg",
        )
    };
    let six = SyncItem {
        cloud_guid: Some("AQpzFake+CloudGuid0006".into()),
        fingerprint: Some("AfixtureHash0006".into()),
        taken_at: time("2024-03-15T14:20:00+00:00"),
        time_zone: Some("Europe/London".into()),
        modified_at: time("2024-08-01T00:00:00+00:00"),
        latitude: Some(51.5007),
        longitude: Some(-0.1246),
        resources: vec![Resource {
            resource_type: ResourceType::Original,
            size: 3_145_728,
            sha256: None,
            available: false,
            unavailable_reason: Some(UnavailableReason::IcloudOnly),
            bundle_path: None,
        }],
        ..base(
            "F6A7B8C9-0006-4000-8000-000000000006",
            "IMG_0006.HEIC",
            "public.heic",
        )
    };
    vec![one, two, three, four, five, six]
}

#[tokio::test]
async fn photos11_assets_have_exact_values() {
    let dir = tempfile::tempdir().unwrap();
    let db = common::build_photos11(dir.path()).await;
    let library = PhotosLibrary::open(&db).await.unwrap();
    assert!(!library.reads_copy());
    assert_eq!(library.model_version(), Some(19320));
    assert_eq!(library.root(), dir.path());

    let scan = library.scan_assets().await.unwrap();
    assert!(scan.skipped.is_empty());
    // Each resource names the file the reader looked for, as a path inside the bundle: where the server
    // stores it. Checked here, then cleared for the comparison of the rest.
    let mut items: Vec<_> = scan.assets.iter().map(|a| a.item.clone()).collect();
    for (item, asset) in items.iter_mut().zip(&scan.assets) {
        for (resource, file) in item.resources.iter_mut().zip(&asset.files) {
            let relative = file.path.strip_prefix(dir.path()).unwrap();
            assert_eq!(
                resource.bundle_path.take().as_deref(),
                relative.to_str(),
                "{}",
                item.local_identifier
            );
        }
    }
    let expected = expected_items();
    assert_eq!(items.len(), expected.len());
    for (item, expected) in items.iter().zip(&expected) {
        assert_eq!(item, expected, "{}", expected.local_identifier);
    }

    let root = dir.path();
    // Nothing is on disk in this test: no stamps.
    let file = |resource_type, path: &str| ResourceFile {
        resource_type,
        path: root.join(path),
        stamp: None,
    };
    assert_eq!(
        scan.assets[0].files,
        [file(
            ResourceType::Original,
            "originals/A/A1B2C3D4-0001-4000-8000-000000000001.jpeg"
        )]
    );
    assert_eq!(
        scan.assets[1].files,
        [
            file(
                ResourceType::Original,
                "originals/B/B2C3D4E5-0002-4000-8000-000000000002.heic"
            ),
            file(
                ResourceType::Render,
                "resources/renders/B/B2C3D4E5-0002-4000-8000-000000000002_1_201_a.heic"
            ),
        ]
    );
    assert_eq!(
        scan.assets[3].files,
        [
            file(
                ResourceType::Original,
                "originals/D/D4E5F6A7-0004-4000-8000-000000000004.heic"
            ),
            file(
                ResourceType::LiveVideo,
                "originals/D/D4E5F6A7-0004-4000-8000-000000000004_3.mov"
            ),
        ]
    );
    assert_eq!(scan.assets[2].uuid, "C3D4E5F6-0003-4000-8000-000000000003");
}

#[tokio::test]
async fn photos11_albums_have_exact_values() {
    let dir = tempfile::tempdir().unwrap();
    let library = PhotosLibrary::open(&common::build_photos11(dir.path()).await)
        .await
        .unwrap();
    let albums = library.albums().await.unwrap();
    // The root folder, the smart album and the trashed album are not user-visible containers.
    assert_eq!(
        albums,
        [
            ReadAlbum {
                id: "22222222-BBBB-4000-8000-000000000002".into(),
                title: "Trips".into(),
                kind: AlbumKind::Folder,
                parent_id: None,
                cloud_guid: None,
                sort: AlbumSort {
                    key: SortKey::Manual,
                    ascending: true
                },
                members: vec![],
            },
            ReadAlbum {
                id: "33333333-CCCC-4000-8000-000000000003".into(),
                title: "Summer 2024".into(),
                kind: AlbumKind::Album,
                parent_id: Some("22222222-BBBB-4000-8000-000000000002".into()),
                cloud_guid: None,
                sort: AlbumSort {
                    key: SortKey::Manual,
                    ascending: true
                },
                members: vec![
                    "A1B2C3D4-0001-4000-8000-000000000001/L0/001".into(),
                    "C3D4E5F6-0003-4000-8000-000000000003/L0/001".into(),
                ],
            },
        ]
    );
}

#[tokio::test]
async fn a_bundle_with_files_reports_them_available() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("Test.photoslibrary");
    std::fs::create_dir_all(bundle.join("database")).unwrap();
    common::build_photos11(&bundle.join("database")).await;
    let original = bundle.join("originals/A/A1B2C3D4-0001-4000-8000-000000000001.jpeg");
    std::fs::create_dir_all(original.parent().unwrap()).unwrap();
    std::fs::write(&original, b"jpeg bytes").unwrap();
    let live = bundle.join("originals/D/D4E5F6A7-0004-4000-8000-000000000004_3.mov");
    std::fs::create_dir_all(live.parent().unwrap()).unwrap();
    std::fs::write(&live, b"mov").unwrap();

    let library = PhotosLibrary::open(&bundle).await.unwrap();
    assert_eq!(library.root(), bundle);
    let assets = library.assets().await.unwrap();
    let first = &assets[0];
    assert_eq!(first.path(ResourceType::Original), Some(original.as_path()));
    assert!(first.item.resources[0].available);
    let stamp = first.files[0].stamp.expect("a file on disk has its stamp");
    assert_eq!(stamp.size, std::fs::metadata(&original).unwrap().len());
    assert!(stamp.mtime_ns > 0);
    assert_eq!(first.item.resources[0].unavailable_reason, None);
    assert_eq!(
        first.item.resources[0].size, 2_501_234,
        "the declared size is reported"
    );
    let live_photo = &assets[3].item.resources;
    assert!(!live_photo[0].available && live_photo[1].available);
}

#[tokio::test]
async fn a_locked_database_is_read_from_a_copy() {
    let dir = tempfile::tempdir().unwrap();
    let db = common::build_photos11(dir.path()).await;
    // Photos holding a write lock: a rollback-journal database refuses readers until it commits.
    let mut writer = SqliteConnection::connect_with(&SqliteConnectOptions::new().filename(&db))
        .await
        .unwrap();
    sqlx::raw_sql("BEGIN EXCLUSIVE")
        .execute(&mut writer)
        .await
        .unwrap();

    let library = PhotosLibrary::open(&db).await.unwrap();
    assert!(library.reads_copy());
    assert_eq!(library.assets().await.unwrap().len(), 6);
    assert_eq!(library.database_path(), db);
    sqlx::raw_sql("ROLLBACK").execute(&mut writer).await.unwrap();
}

#[tokio::test]
async fn a_missing_file_is_not_found() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nope/Photos.sqlite");
    let error = PhotosLibrary::open(&path).await.unwrap_err();
    assert!(
        matches!(&error, Error::NotFound { path: p, .. } if *p == path),
        "{error:?}"
    );
    assert!(error.to_string().contains("nope/Photos.sqlite"), "{error}");

    let error = PhotosLibrary::open(dir.path()).await.unwrap_err();
    assert!(
        matches!(&error, Error::NotFound { path, .. } if path.ends_with("database/Photos.sqlite")),
        "{error:?}"
    );
}

#[tokio::test]
async fn random_bytes_are_not_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("Photos.sqlite");
    let bytes: Vec<u8> = (0..65_536u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&path, bytes).unwrap();
    let error = PhotosLibrary::open(&path).await.unwrap_err();
    assert!(
        matches!(&error, Error::NotSqlite { path: p, .. } if *p == path),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("not a readable SQLite database"),
        "{error}"
    );
}

#[tokio::test]
async fn another_sqlite_database_is_not_a_photos_library() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.sqlite");
    let options = SqliteConnectOptions::new()
        .filename(&path)
        .create_if_missing(true);
    let mut connection = SqliteConnection::connect_with(&options).await.unwrap();
    sqlx::raw_sql("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
        .execute(&mut connection)
        .await
        .unwrap();
    connection.close().await.unwrap();

    let error = PhotosLibrary::open(&path).await.unwrap_err();
    assert!(
        matches!(&error, Error::NotPhotosLibrary { path: p, .. } if *p == path),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("not a Photos library database"),
        "{error}"
    );

    let empty = dir.path().join("empty.sqlite");
    std::fs::write(&empty, b"").unwrap();
    let error = PhotosLibrary::open(&empty).await.unwrap_err();
    assert!(matches!(error, Error::NotPhotosLibrary { .. }), "{error:?}");
}

#[tokio::test]
async fn a_folder_is_a_library_of_its_photos_and_videos() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("2024/trip")).unwrap();
    std::fs::create_dir_all(root.join(".thumbnails")).unwrap();
    std::fs::write(root.join("a.JPG"), b"12345").unwrap();
    std::fs::write(root.join("2024/trip/clip.mov"), b"1234567890").unwrap();
    std::fs::write(root.join("2024/notes.txt"), b"not media").unwrap();
    std::fs::write(root.join(".thumbnails/t.jpg"), b"hidden").unwrap();

    let library = FolderLibrary::open(root).unwrap();
    let assets = library.assets().await.unwrap();
    assert_eq!(assets.len(), 2);
    let (clip, photo) = (&assets[0], &assets[1]);
    assert_eq!(photo.item.kind, AssetKind::Photo);
    assert_eq!(photo.item.uti, "public.jpeg");
    assert_eq!(photo.item.original_filename, "a.JPG");
    assert_eq!(photo.item.resources[0].size, 5);
    assert!(photo.item.resources[0].available);
    assert_eq!(clip.item.kind, AssetKind::Video);
    assert_eq!(
        clip.path(ResourceType::Original),
        Some(root.join("2024/trip/clip.mov").as_path())
    );
    assert_eq!(clip.item.resources[0].size, 10);
    let mtime = std::fs::metadata(root.join("a.JPG")).unwrap().modified().unwrap();
    assert_eq!(photo.item.taken_at, DateTime::<chrono::Utc>::from(mtime));
    assert_eq!(photo.item.modified_at, photo.item.taken_at);
    assert!(photo.item.local_identifier.ends_with("/L0/001"));

    // Stable: the same relative path gives the same identity, wherever the folder is.
    let elsewhere = tempfile::tempdir().unwrap();
    std::fs::write(elsewhere.path().join("a.JPG"), b"other bytes").unwrap();
    let again = FolderLibrary::open(elsewhere.path())
        .unwrap()
        .assets()
        .await
        .unwrap();
    assert_eq!(again[0].item.local_identifier, photo.item.local_identifier);
    assert_ne!(clip.item.local_identifier, photo.item.local_identifier);

    let error = FolderLibrary::open(&root.join("absent")).unwrap_err();
    assert!(matches!(error, Error::NotFound { .. }), "{error:?}");
}

#[tokio::test]
async fn unpicked_burst_frames_are_skipped_and_wal_changes_are_seen() {
    let dir = tempfile::tempdir().unwrap();
    let db = common::build_photos11(dir.path()).await;
    // Photos runs the database in WAL mode; a change still in the -wal file must be visible to the reader.
    let mut writer = SqliteConnection::connect_with(&SqliteConnectOptions::new().filename(&db))
        .await
        .unwrap();
    sqlx::raw_sql(
        "PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0;
         INSERT INTO ZASSET (Z_PK, Z_ENT, ZUUID, ZDIRECTORY, ZFILENAME, ZKIND, ZDATECREATED, ZVISIBILITYSTATE,
           ZAVALANCHEUUID) VALUES
           (7, 3, '07000000-0007-4000-8000-000000000007', '0', '07000000-0007-4000-8000-000000000007.jpeg', 0,
            741787200.0, 2, 'B0000000-0000-4000-8000-00000000000B'),
           (8, 3, '08000000-0008-4000-8000-000000000008', '0', '08000000-0008-4000-8000-000000000008.jpeg', 0,
            741787200.0, 0, 'B0000000-0000-4000-8000-00000000000B');",
    )
    .execute(&mut writer)
    .await
    .unwrap();
    assert!(dir.path().join("Photos.sqlite-wal").metadata().unwrap().len() > 0);

    let library = PhotosLibrary::open(&db).await.unwrap();
    let scan = library.scan_assets().await.unwrap();
    assert_eq!(scan.assets.len() + scan.skipped.len(), 8);
    assert_eq!(
        scan.skipped,
        [SkippedAsset {
            row: 7,
            uuid: Some("07000000-0007-4000-8000-000000000007".into()),
            reason: SkipReason::UnpickedBurstFrame
        }]
    );
    // The picked frame has no attributes row: it is still read, named after its file.
    let pick = scan.assets.last().unwrap();
    assert_eq!(pick.uuid, "08000000-0008-4000-8000-000000000008");
    assert_eq!(
        pick.item.original_filename,
        "08000000-0008-4000-8000-000000000008.jpeg"
    );
    assert_eq!(pick.item.resources[0].size, 0);
    writer.close().await.unwrap();
}

/// `scan --json` prints the wire items the reader sees (stdout), and `--log-json` makes the logs JSON lines
/// (stderr).
#[tokio::test]
async fn scan_prints_the_wire_items_and_logs_are_json_lines_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let db = common::build_photos11(dir.path()).await;
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_iphoto-agent"))
        .args(["scan", "--json", "--log-json", "--log", "info", "--library"])
        .arg(&db)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let mut printed: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    // Every resource prints its path inside the bundle (checked against the reader in the test above).
    for item in printed["items"].as_array_mut().unwrap() {
        let uuid = item["localIdentifier"]
            .as_str()
            .unwrap()
            .split('/')
            .next()
            .unwrap()
            .to_owned();
        for resource in item["resources"].as_array_mut().unwrap() {
            let path = resource.as_object_mut().unwrap().remove("bundlePath").unwrap();
            let path = path.as_str().unwrap();
            assert!(
                (path.starts_with("originals/") || path.starts_with("resources/")) && path.contains(&uuid),
                "{path}"
            );
        }
    }
    assert_eq!(printed["items"], serde_json::to_value(expected_items()).unwrap());
    assert_eq!(printed["albums"].as_array().unwrap().len(), 2, "{printed}");
    assert_eq!(printed["skipped"], serde_json::json!([]));
    let stderr = String::from_utf8(output.stderr).unwrap();
    let opened = stderr
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .find(|line| line["fields"]["message"] == "opened Photos library")
        .unwrap_or_else(|| panic!("no opening line in {stderr}"));
    assert_eq!(opened["level"], "INFO");
    assert_eq!(
        opened["fields"]["version"],
        "Photos 11.1 (macOS 26.1) [model 19320]"
    );
}
