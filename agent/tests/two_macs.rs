//! End to end (issue 13, item 9): two agents, each with its own copy of one Photos library (as two Macs of one
//! iCloud library have, here with the same UUIDs and fingerprints, one asset with an iCloud GUID), sync to one
//! real `iphoto-server`. The server keeps one photo per asset and one object per original: the second agent
//! uploads nothing, and relocation copies nothing to its library's bundle paths.

// Helpers outside #[test] fns are not covered by allow-unwrap-in-tests (rust-clippy #13981).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::sync::{Library, TestServer, assert_stored_once, pass};

#[tokio::test]
async fn two_agents_with_one_library_store_one_object_per_original() {
    let data = tempfile::tempdir().unwrap();
    let mut server = TestServer::start(data.path()).await;
    let imac = Library::new(64 * 1024).await;
    let macbook = Library::new(64 * 1024).await;
    assert_eq!(imac.files, macbook.files, "two copies of one library");
    // "Summer 2024" is an iCloud album on both Macs; the "Trips" folder is not.
    for library in [&imac, &macbook] {
        library
            .execute("UPDATE ZGENERICALBUM SET ZCLOUDGUID = 'AlbumCloudGuid0003' WHERE Z_PK = 3")
            .await;
    }
    let albums = iphoto_agent::library::PhotosLibrary::open(&imac.bundle)
        .await
        .unwrap()
        .albums()
        .await
        .unwrap();
    let guids: Vec<(&str, Option<&str>)> = albums
        .iter()
        .map(|a| (a.title.as_str(), a.cloud_guid.as_deref()))
        .collect();
    assert_eq!(
        guids,
        vec![("Trips", None), ("Summer 2024", Some("AlbumCloudGuid0003"))]
    );

    let first = pass(&server, &imac).await;
    assert_eq!((first.items_sent, first.uploaded), (6, 7), "{first:?}");
    let second = pass(&server, &macbook).await;
    assert_eq!(second.items_sent, 6, "{second:?}");
    assert_eq!(second.rejected, 0, "{second:?}");
    assert_eq!(
        (second.pending, second.uploaded, second.bytes_uploaded),
        (0, 0, 0),
        "the second Mac is asked for nothing: {second:?}"
    );
    assert_stored_once(&server, &imac, 0);

    let stats = server.stats().await;
    assert_eq!(stats.libraries.len(), 2, "{stats:?}");
    assert_eq!(
        stats.totals.photos, 6,
        "one photo per asset, not one per Mac: {stats:?}"
    );
    assert_eq!((stats.totals.uploaded, stats.totals.pending), (7, 0), "{stats:?}");
    // The web shows one photo set.
    let web = std::fs::read_to_string(data.path().join("web.token")).unwrap();
    let page: serde_json::Value = reqwest::Client::new()
        .get(format!("{}/my/photos/?limit=100", server.url()))
        .bearer_auth(web.trim())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let items = page["items"].as_array().unwrap();
    // The trashed asset is in the catalog, not in the default timeline.
    assert_eq!(items.len(), 5, "{page}");
    // The iCloud album is listed once, with its two members; each Mac's own folder is its own.
    let albums: serde_json::Value = reqwest::Client::new()
        .get(format!("{}/my/photos/albums", server.url()))
        .bearer_auth(web.trim())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut listed: Vec<(String, u64)> = albums["albums"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["title"].as_str().unwrap().to_owned(),
                a["count"].as_u64().unwrap(),
            )
        })
        .collect();
    listed.sort();
    assert_eq!(
        listed,
        vec![
            ("Summer 2024".to_owned(), 2),
            ("Trips".to_owned(), 0),
            ("Trips".to_owned(), 0)
        ],
        "{albums}"
    );

    // Relocation (what `serve` runs at start and hourly) finds nothing to copy: each original's one object is
    // at the bundle path of the library holding it, not one per Mac. Run here, in process, on the same files,
    // with the server stopped, so the answer does not depend on when its background pass runs.
    server.stop();
    let catalog = server::catalog::connect(
        &server::catalog::Location::sqlite_in(data.path()),
        &server::catalog::ConnectOptions::default(),
    )
    .await
    .unwrap();
    let store = storage::create_object_store(&storage::StorageConfig {
        backend: storage::BackendConfig::Local(storage::LocalConfig {
            root: data.path().join("blobs"),
            presign_secret: storage::Secret::new("relocation-signs-nothing-0123456789".into()),
            public_url: "http://127.0.0.1:1".parse().unwrap(),
        }),
        presign: Default::default(),
    })
    .unwrap();
    let relocated = server::relocate::relocate_all(catalog.as_ref(), &store)
        .await
        .unwrap();
    assert_eq!(relocated, server::relocate::RelocateReport::default());
    assert_stored_once(&server, &imac, 0);

    // The second Mac's next pass has nothing to send or upload.
    server.restart().await;
    let again = pass(&server, &macbook).await;
    assert_eq!((again.items_sent, again.uploaded), (0, 0), "{again:?}");
    assert_stored_once(&server, &macbook, 0);
}

/// Two Macs usually keep their library of one iCloud library at the same path: each library's database has
/// its own store UUID, so their agents are two sources on the server, not one library whose assets replace
/// each other; a copy with the same store UUID at the same path (a fresh state directory) is the same one.
#[tokio::test]
async fn macs_with_the_library_at_the_same_path_are_two_sources() {
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::start(data.path()).await;
    let library = Library::new(16 * 1024).await;
    let pass_with = |state: &str| {
        let options = iphoto_agent::sync::PassOptions::new(&library.bundle, &library.dir.path().join(state));
        let client = server.client();
        async move {
            iphoto_agent::sync::run_pass(&client, &options, &iphoto_agent::sync::NoProgress)
                .await
                .unwrap()
        }
    };
    let first = pass_with("state-imac").await;
    let again = pass_with("state-imac-reinstalled").await;
    assert_eq!(
        first.library_id, again.library_id,
        "same database, same path: same library"
    );
    library
        .execute("UPDATE Z_METADATA SET Z_UUID = '0B0E5C1A-2222-4000-8000-00000000CAFE'")
        .await;
    let other = pass_with("state-macbook").await;
    assert_ne!(other.library_id, first.library_id);
    assert_eq!(other.uploaded, 0, "{other:?}");
    let stats = server.stats().await;
    assert_eq!(stats.libraries.len(), 2, "{stats:?}");
    assert_eq!(stats.totals.photos, 6, "{stats:?}");
}
