//! One iCloud library synced from two Macs is one set of photos (issue 13, item 9): identities resolved by
//! cloud GUID then fingerprint, each Mac's identifier kept, the pending list per library, deletes, albums,
//! and what relocation and the garbage collector see.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

/// A user with two libraries, as two Macs of one iCloud library give.
async fn user_with_two_macs(c: &dyn Catalog, name: &str) -> (UserId, LibraryId, LibraryId) {
    let (user, a) = user_and_library(c, name).await;
    let b = c.ensure_library(&user, "mac-library-2").await.unwrap();
    (user, a, b.id)
}

/// `id` as synced from one Mac: its own identifier, the shared GUID and fingerprint.
fn icloud_item(local_identifier: &str, guid: Option<&str>, fingerprint: Option<&str>) -> PhotoUpsert {
    PhotoUpsert {
        cloud_guid: guid.map(str::to_owned),
        fingerprint: fingerprint.map(str::to_owned),
        // iCloud keeps the import name: the same on every Mac.
        original_filename: "IMG_0001.HEIC".into(),
        ..item(local_identifier)
    }
}

/// `original(size, sha)` as the Mac lays it out, at `originals/<X>/<id>.heic`.
fn bundled(id: &str, size: u64, sha256: &str, available: bool) -> DeclaredResource {
    DeclaredResource {
        available,
        unavailable_reason: (!available).then_some(UnavailableReason::IcloudOnly),
        bundle_path: Some(format!("originals/{}/{id}.heic", &id[..1])),
        ..original(size, Some(sha256.to_owned()))
    }
}

async fn pending_in(c: &dyn Catalog, user: &UserId, library: &LibraryId) -> Vec<(String, ResourceType)> {
    let page = c
        .pending_uploads(
            user,
            &PendingQuery {
                library_id: Some(library.clone()),
                limit: 1000,
                cursor: None,
            },
        )
        .await
        .unwrap();
    page.items
        .into_iter()
        .map(|p| {
            assert_eq!(&p.library_id, library, "listed for the library asked about");
            (p.local_identifier, p.resource)
        })
        .collect()
}

async fn lookup_in(
    c: &dyn Catalog,
    user: &UserId,
    library: &LibraryId,
    id: &str,
) -> Option<server::catalog::UploadTarget> {
    c.resource_for_upload(
        user,
        &UploadLookup {
            library_id: Some(library.clone()),
            local_identifier: id.to_owned(),
            resource: ResourceType::Original,
        },
    )
    .await
    .unwrap()
}

async fn live_photos(s: &Subject, user: &UserId) -> i64 {
    s.raw
        .int(&format!(
            "SELECT COUNT(*) FROM icloud.photos WHERE user_id = '{user}' AND deleted_at IS NULL"
        ))
        .await
}

pub async fn sources_merge_by_cloud_guid_then_fingerprint(s: &Subject) {
    let c = s.c();
    let (user, mac_a, mac_b) = user_with_two_macs(c, "alice").await;
    let first = vec![
        icloud_item("A1/L0/001", Some("guid-1"), Some("fp-1")),
        // Imported on this Mac, not in iCloud yet: no GUID.
        icloud_item("A2/L0/001", None, Some("fp-2")),
        icloud_item("A3/L0/001", Some("guid-3"), Some("fp-3")),
        icloud_item("A4/L0/001", Some("guid-4"), Some("fp-4")),
    ];
    let created = c.sync_photos(&user, &mac_a, first).await.unwrap();
    assert!(created.results.iter().all(|r| r.outcome == ItemOutcome::Created));
    let photo = |n: usize| created.results[n].photo_id.clone().unwrap();

    let second = vec![
        // The same iCloud asset: GUID match (its fingerprint as this Mac's Photos reports it).
        icloud_item("B1/L0/001", Some("guid-1"), Some("fp-1")),
        // iCloud gave A2 its GUID since: no GUID match, the fingerprint of a photo without one.
        icloud_item("B2/L0/001", Some("guid-2"), Some("fp-2")),
        // Equal bytes, but a photo with another GUID: another iCloud asset, never merged by fingerprint.
        icloud_item("B4/L0/001", None, Some("fp-4")),
        icloud_item("B5/L0/001", Some("guid-5"), Some("fp-5")),
        // A second asset of this Mac with A1's GUID: A1 already has an identity here, so not A1.
        icloud_item("B6/L0/001", Some("guid-1"), None),
    ];
    let version = c.version(&user).await.unwrap();
    let answer = c.sync_photos(&user, &mac_b, second.clone()).await.unwrap();
    let got: Vec<(ItemOutcome, Option<PhotoId>)> = answer
        .results
        .iter()
        .map(|r| (r.outcome.clone(), r.photo_id.clone()))
        .collect();
    assert_eq!(got[0], (ItemOutcome::Updated, Some(photo(0))), "{got:?}");
    assert_eq!(got[1], (ItemOutcome::Updated, Some(photo(1))), "{got:?}");
    assert_eq!(got[2].0, ItemOutcome::Created, "{got:?}");
    assert_ne!(got[2].1, Some(photo(3)));
    assert_eq!(got[3].0, ItemOutcome::Created, "{got:?}");
    assert_eq!(got[4].0, ItemOutcome::Created, "{got:?}");
    assert_ne!(got[4].1, Some(photo(0)));
    assert_eq!(answer.version, version + 1, "one batch, one version");
    assert_eq!(
        live_photos(s, &user).await,
        7,
        "4 from the first Mac, 3 new from the second"
    );

    // Both Macs' identifiers name the same photo.
    for (mac, id, n) in [
        (&mac_a, "A1/L0/001", 0),
        (&mac_b, "B1/L0/001", 0),
        (&mac_b, "B2/L0/001", 1),
    ] {
        let target = lookup_in(c, &user, mac, id).await.unwrap();
        assert_eq!(target.photo_id, photo(n), "{id}");
        assert_eq!((&target.library_id, target.local_identifier.as_str()), (mac, id));
    }

    // The second Mac sending the same again: nothing changes.
    let version = c.version(&user).await.unwrap();
    let resent = c.sync_photos(&user, &mac_b, second).await.unwrap();
    assert!(
        resent.results.iter().all(|r| r.outcome == ItemOutcome::Unchanged),
        "{:?}",
        outcomes(&resent)
    );
    assert_eq!(resent.version, version);
    // Metadata both Macs agree on is not rewritten: a merged photo's row moved once (the GUID), not per Mac.
    let rows = s
        .raw
        .int(&format!(
            "SELECT COUNT(*) FROM icloud.photo_history WHERE photo_id = '{}'",
            photo(0)
        ))
        .await;
    assert_eq!(rows, 1, "A1 was created and then only gained a name");

    // The GUID the second Mac knows is kept on the photo; the first Mac's next send (without one) keeps it.
    let detail = c.photo(&user, &photo(1)).await.unwrap().unwrap();
    assert_eq!(detail.cloud_guid.as_deref(), Some("guid-2"));
    let again = PhotoUpsert {
        favorite: true,
        ..icloud_item("A2/L0/001", None, Some("fp-2"))
    };
    let answer = c.sync_photos(&user, &mac_a, vec![again]).await.unwrap();
    assert_eq!(answer.results[0].outcome, ItemOutcome::Updated);
    let detail = c.photo(&user, &photo(1)).await.unwrap().unwrap();
    assert_eq!(
        (detail.cloud_guid.as_deref(), detail.listed.favorite),
        (Some("guid-2"), true)
    );
}

pub async fn sources_never_merge_across_users(s: &Subject) {
    let c = s.c();
    let (alice, alice_mac, _) = user_with_two_macs(c, "alice").await;
    let (bob, bob_mac, _) = user_with_two_macs(c, "bob").await;
    let alices = c
        .sync_photos(
            &alice,
            &alice_mac,
            vec![icloud_item("A/L0/001", Some("guid"), Some("fp"))],
        )
        .await
        .unwrap();
    let bobs = c
        .sync_photos(
            &bob,
            &bob_mac,
            vec![icloud_item("B/L0/001", Some("guid"), Some("fp"))],
        )
        .await
        .unwrap();
    assert_eq!(bobs.results[0].outcome, ItemOutcome::Created);
    assert_ne!(bobs.results[0].photo_id, alices.results[0].photo_id);
    assert!(lookup_in(c, &bob, &bob_mac, "A/L0/001").await.is_none());
    assert!(lookup_in(c, &alice, &alice_mac, "B/L0/001").await.is_none());
    assert_eq!(s.raw.int("SELECT COUNT(*) FROM icloud.photo_aliases").await, 0);
}

pub async fn sources_pending_lists_each_resource_for_one_library(s: &Subject) {
    let c = s.c();
    let (user, mac_a, mac_b) = user_with_two_macs(c, "alice").await;
    let shared = |id: &str, guid: &str, n: u8, available: bool| PhotoUpsert {
        resources: vec![bundled(id, 100 + u64::from(n), &sha(n), available)],
        ..icloud_item(&format!("{id}/L0/001"), Some(guid), Some(guid))
    };
    // On the first Mac: P1 and P3 on disk, P2 only in iCloud ("Optimise Mac storage").
    let a = c
        .sync_photos(
            &user,
            &mac_a,
            vec![
                shared("A1", "g1", 1, true),
                shared("A2", "g2", 2, false),
                shared("A3", "g3", 3, true),
            ],
        )
        .await
        .unwrap();
    let p3 = a.results[2].photo_id.clone().unwrap();
    let key_a3 = format!("users/{user}/libraries/{mac_a}/originals/A/A3.heic");
    c.record_upload(&user, &upload(&p3, &sha(3), 103, &key_a3, Utc::now()))
        .await
        .unwrap();

    // The second Mac has all three on disk.
    let b = c
        .sync_photos(
            &user,
            &mac_b,
            vec![
                shared("B1", "g1", 1, true),
                shared("B2", "g2", 2, true),
                shared("B3", "g3", 3, true),
            ],
        )
        .await
        .unwrap();
    let needs: Vec<Vec<ResourceType>> = b.results.iter().map(|r| r.needs_upload.clone()).collect();
    assert_eq!(
        needs,
        vec![vec![], vec![ResourceType::Original], vec![]],
        "P1 is the first Mac's to upload, P2 only this one can, P3 is stored"
    );
    assert_eq!(
        pending_in(c, &user, &mac_a).await,
        vec![("A1/L0/001".to_owned(), ResourceType::Original)]
    );
    assert_eq!(
        pending_in(c, &user, &mac_b).await,
        vec![("B2/L0/001".to_owned(), ResourceType::Original)]
    );
    assert_eq!(all_pending(c, &user).await.len(), 2, "each resource listed once");

    // B uploads P2: its bytes go under its own library, at its bundle path.
    let target = lookup_in(c, &user, &mac_b, "B2/L0/001").await.unwrap();
    assert_eq!(
        (&target.library_id, &target.resource_library_id),
        (&mac_b, &mac_b)
    );
    let declared = target.declared.unwrap();
    assert_eq!(declared.bundle_path.as_deref(), Some("originals/B/B2.heic"));
    // Asked through the first Mac's name, P1's resource is the first Mac's; through the second's, too.
    let p1_from_b = lookup_in(c, &user, &mac_b, "B1/L0/001").await.unwrap();
    assert_eq!(p1_from_b.resource_library_id, mac_a);
    let key_b2 = format!("users/{user}/libraries/{mac_b}/originals/B/B2.heic");
    c.record_upload(
        &user,
        &upload(&target.photo_id, &sha(2), 102, &key_b2, Utc::now()),
    )
    .await
    .unwrap();
    assert!(pending_in(c, &user, &mac_b).await.is_empty());

    // Relocation sees every stored object at the bundle path of the library holding it: no second copy.
    assert!(c.misplaced(None, 100).await.unwrap().is_empty());
    let referenced = c.gc_referenced_keys(&user).await.unwrap();
    assert!(
        referenced.contains(&key_a3) && referenced.contains(&key_b2),
        "{referenced:?}"
    );
    // Stats count each photo and each resource once.
    let stats = c.stats(&user, Utc::now()).await.unwrap();
    assert_eq!((stats.totals.photos, stats.totals.resources), (3, 3), "{stats:?}");
    assert_eq!((stats.totals.uploaded, stats.totals.pending), (2, 1), "{stats:?}");
}

pub async fn sources_delete_moves_the_home_and_the_last_delete_tombstones(s: &Subject) {
    let c = s.c();
    let (user, mac_a, mac_b) = user_with_two_macs(c, "alice").await;
    let on = |id: &str| PhotoUpsert {
        resources: vec![bundled(id, 100, &sha(9), true)],
        ..icloud_item(&format!("{id}/L0/001"), Some("g"), Some("g"))
    };
    let gone = |id: &str| PhotoUpsert {
        deleted: true,
        ..on(id)
    };
    let photo = c.sync_photos(&user, &mac_a, vec![on("A")]).await.unwrap().results[0]
        .photo_id
        .clone()
        .unwrap();
    let key = format!("users/{user}/libraries/{mac_a}/originals/A/A.heic");
    c.record_upload(&user, &upload(&photo, &sha(9), 100, &key, Utc::now()))
        .await
        .unwrap();
    c.sync_photos(&user, &mac_b, vec![on("B")]).await.unwrap();
    let home_sql =
        format!("SELECT library_id || ' ' || local_identifier FROM icloud.photos WHERE id = '{photo}'");

    // The first Mac deletes it; the second still has it: the photo stays, its home moves to the second Mac.
    let answer = c.sync_photos(&user, &mac_a, vec![gone("A")]).await.unwrap();
    assert_eq!(answer.results[0].outcome, ItemOutcome::Updated);
    assert!(c.photo(&user, &photo).await.unwrap().is_some(), "still live");
    assert_eq!(s.raw.strings(&home_sql).await, vec![format!("{mac_b} B/L0/001")]);
    assert!(lookup_in(c, &user, &mac_a, "A/L0/001").await.unwrap().deleted);
    // Its stored original stays where it is, referenced.
    assert!(c.misplaced(None, 100).await.unwrap().is_empty());
    assert!(c.gc_referenced_keys(&user).await.unwrap().contains(&key));

    // The second Mac deletes it too: now it is a tombstone (its bytes kept, referenced).
    c.sync_photos(&user, &mac_b, vec![gone("B")]).await.unwrap();
    assert!(c.photo(&user, &photo).await.unwrap().is_none(), "a tombstone");
    assert!(c.gc_referenced_keys(&user).await.unwrap().contains(&key));
    // A deletion repeated changes nothing.
    let version = c.version(&user).await.unwrap();
    let again = c.sync_photos(&user, &mac_b, vec![gone("B")]).await.unwrap();
    assert_eq!(
        (again.results[0].outcome.clone(), again.version),
        (ItemOutcome::Unchanged, version)
    );

    // The first Mac has it again (restored from its trash): it is live, with its home there again.
    let back = c.sync_photos(&user, &mac_a, vec![on("A")]).await.unwrap();
    assert_eq!(back.results[0].photo_id.as_ref(), Some(&photo));
    assert!(
        back.results[0].needs_upload.is_empty(),
        "the bytes are still stored"
    );
    assert!(c.photo(&user, &photo).await.unwrap().is_some());
    assert_eq!(s.raw.strings(&home_sql).await, vec![format!("{mac_a} A/L0/001")]);
    assert!(lookup_in(c, &user, &mac_b, "B/L0/001").await.unwrap().deleted);
    assert_eq!(live_photos(s, &user).await, 1);
}

pub async fn sources_albums_with_one_guid_list_once(s: &Subject) {
    let c = s.c();
    let (user, mac_a, mac_b) = user_with_two_macs(c, "alice").await;
    for (mac, prefix) in [(&mac_a, "A"), (&mac_b, "B")] {
        let items = (1..=2)
            .map(|n| icloud_item(&format!("{prefix}{n}/L0/001"), Some(&format!("g{n}")), None))
            .collect();
        c.sync_photos(&user, mac, items).await.unwrap();
        let album = |key: &str, kind: AlbumKind, parent: Option<&str>, guid: Option<&str>| AlbumUpsert {
            album_key: format!("{prefix}-{key}"),
            title: key.to_owned(),
            kind,
            parent_key: parent.map(|p| format!("{prefix}-{p}")),
            members: if kind == AlbumKind::Folder {
                Vec::new()
            } else {
                vec![format!("{prefix}2/L0/001"), format!("{prefix}1/L0/001")]
            },
            cloud_guid: guid.map(str::to_owned),
        };
        let answer = c
            .replace_albums(
                &user,
                mac,
                vec![
                    album("trips", AlbumKind::Folder, None, Some("folder-guid")),
                    album("summer", AlbumKind::Album, Some("trips"), Some("album-guid")),
                    album("local", AlbumKind::Album, None, None),
                ],
            )
            .await
            .unwrap();
        assert_eq!((answer.created, answer.unknown_members), (3, 0), "{answer:?}");
    }
    let albums = c.list_albums(&user, None).await.unwrap();
    let mut titles: Vec<&str> = albums.iter().map(|a| a.title.as_str()).collect();
    titles.sort_unstable();
    assert_eq!(titles, vec!["local", "local", "summer", "trips"], "{albums:?}");
    let summer = albums.iter().find(|a| a.title == "summer").unwrap();
    let trips = albums.iter().find(|a| a.title == "trips").unwrap();
    assert_eq!(summer.parent_id.as_ref(), Some(&trips.id));
    assert_eq!(summer.count, 2);
    // Both Macs' rows of the album hold the same photos in the same order.
    let members = |album: String| {
        let sql =
            format!("SELECT photo_id FROM icloud.album_members WHERE album_id = '{album}' ORDER BY position");
        async move { s.raw.strings(&sql).await }
    };
    let rows = s
        .raw
        .strings("SELECT id FROM icloud.albums WHERE cloud_guid = 'album-guid' ORDER BY created_at, id")
        .await;
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0], summer.id, "the oldest row is the one listed");
    assert_eq!(members(rows[0].clone()).await, members(rows[1].clone()).await);
    // The other row still answers by its id.
    assert_eq!(c.list_albums(&user, Some(&rows[1])).await.unwrap().len(), 1);
}

pub async fn sources_concurrent_batches_of_two_macs_create_one_photo_each(s: &Subject) {
    let c = s.c();
    let (user, mac_a, mac_b) = user_with_two_macs(c, "alice").await;
    // Both Macs send the same 60 new iCloud assets at once, in batches of 20 as the agent has in flight.
    let tasks: Vec<_> = [(&mac_a, "A"), (&mac_b, "B")]
        .into_iter()
        .flat_map(|(mac, prefix)| {
            (0..3).map(move |batch| {
                let items: Vec<PhotoUpsert> = (0..20)
                    .map(|i| {
                        let n = batch * 20 + i;
                        icloud_item(&format!("{prefix}{n:03}/L0/001"), Some(&format!("g{n}")), None)
                    })
                    .collect();
                (mac.clone(), items)
            })
        })
        .map(|(mac, items)| {
            let catalog = Arc::clone(&s.catalog);
            let user = user.clone();
            tokio::spawn(async move { catalog.sync_photos(&user, &mac, items).await })
        })
        .collect();
    let mut versions = Vec::new();
    for task in tasks {
        versions.push(task.await.unwrap().unwrap().version);
    }
    versions.sort_unstable();
    versions.dedup();
    assert_eq!(versions.len(), 6, "one version per batch: {versions:?}");
    assert_eq!(live_photos(s, &user).await, 60, "one photo per asset");
    assert_eq!(s.raw.int("SELECT COUNT(*) FROM icloud.photo_aliases").await, 60);
    let duplicated = s
        .raw
        .int("SELECT COUNT(*) FROM (SELECT cloud_guid FROM icloud.photos GROUP BY cloud_guid HAVING COUNT(*) > 1) d")
        .await;
    assert_eq!(duplicated, 0);
}
