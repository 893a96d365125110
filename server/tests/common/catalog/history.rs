//! History and trash (issue 12): versions recorded by the triggers, the changes feed, restore as of a time and
//! the purge after the retention.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use server::catalog::{Change, ChangesSince, RestoreTarget, Retention};

use super::*;

/// A few milliseconds, so that a time taken between two writes falls strictly between their stamps.
async fn tick() {
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
}

/// A point in time between the writes before and after it.
async fn instant() -> DateTime<Utc> {
    tick().await;
    let t = Utc::now();
    tick().await;
    t
}

fn with_original(local_identifier: &str, sha256: &str) -> PhotoUpsert {
    PhotoUpsert {
        resources: vec![original(1000, Some(sha256.to_owned()))],
        ..item(local_identifier)
    }
}

async fn stored_key(s: &Subject, photo: &PhotoId) -> Vec<String> {
    s.raw
        .strings(&format!(
            "SELECT COALESCE(stored_key, '-') FROM icloud.resources WHERE photo_id = '{photo}' ORDER BY resource_type"
        ))
        .await
}

pub async fn history_records_every_change_of_a_photo(s: &Subject) {
    let c = s.c();
    let (user, library) = user_and_library(c, "alice").await;
    let mut photo = with_original("H", &sha(1));
    c.sync_photos(&user, &library, vec![photo.clone()]).await.unwrap();
    let id = photo_id(c, &user, "H").await;
    c.record_upload(&user, &upload(&id, &sha(1), 1000, "users/a/k1", Utc::now()))
        .await
        .unwrap();
    photo.title = Some("beach".into());
    let titled = c
        .sync_photos(&user, &library, vec![photo.clone()])
        .await
        .unwrap()
        .version;
    photo.resources = vec![original(1000, Some(sha(2)))];
    c.sync_photos(&user, &library, vec![photo.clone()]).await.unwrap();
    c.record_upload(&user, &upload(&id, &sha(2), 1000, "users/a/k2", Utc::now()))
        .await
        .unwrap();
    photo.deleted = true;
    let deleted = c.sync_photos(&user, &library, vec![photo]).await.unwrap().version;

    let versions = c
        .photo_history(&user, &id)
        .await
        .unwrap()
        .expect("a tombstone keeps its history");
    let numbers: Vec<i64> = versions.iter().map(|v| v.version).collect();
    assert!(
        numbers.windows(2).all(|w| w[0] > w[1]),
        "newest first: {numbers:?}"
    );
    assert_eq!(versions[0].version, deleted);
    assert_eq!(versions[0].change, Change::Deleted);
    assert!(versions[0].changed_fields.contains(&"deleted_at".to_owned()));
    assert_eq!(versions.last().unwrap().change, Change::Created);
    assert_eq!(
        versions.last().unwrap().resources,
        vec![(ResourceType::Original, None)]
    );
    let title = versions.iter().find(|v| v.version == titled).unwrap();
    assert_eq!(title.change, Change::Updated);
    assert_eq!(title.changed_fields, vec!["title".to_owned()]);
    assert_eq!(title.snapshot["title"], "beach");
    assert_eq!(title.resources, vec![(ResourceType::Original, Some(sha(1)))]);
    assert_eq!(
        versions[0].resources,
        vec![(ResourceType::Original, Some(sha(2)))]
    );
    assert!(
        versions
            .iter()
            .any(|v| v.changed_fields.contains(&"resources".to_owned())),
        "a new stored object is a change"
    );
    // The replaced object is still referenced by the history, for the GC.
    assert_eq!(
        s.raw
            .strings(&format!(
                "SELECT stored_sha256 FROM icloud.resource_history WHERE photo_id = '{id}' AND stored_key = 'users/a/k1'"
            ))
            .await,
        vec![sha(1)]
    );

    let (bob, _) = user_and_library(c, "bob").await;
    assert!(
        c.photo_history(&bob, &id).await.unwrap().is_none(),
        "another user's photo does not exist"
    );
    assert!(
        c.photo_history(&user, &PhotoId::new("nope".to_owned()))
            .await
            .unwrap()
            .is_none()
    );
}

pub async fn changes_follow_versions_with_deletes(s: &Subject) {
    let c = s.c();
    let (user, library) = user_and_library(c, "alice").await;
    let batch = items("C", 3);
    let first = c
        .sync_photos(&user, &library, batch.clone())
        .await
        .unwrap()
        .version;
    let page = c.photo_changes(&user, &ChangesSince::default(), 2).await.unwrap();
    assert_eq!(page.len(), 3, "limit + 1 rows tell the caller there is more");
    assert!(page.iter().all(|p| p.version == first && p.photo.is_some()));
    let ids: Vec<String> = page.iter().map(|p| p.photo_id.to_string()).collect();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted, "ties by id");
    let rest = c
        .photo_changes(
            &user,
            &ChangesSince {
                version: first,
                photo_id: Some(ids[1].clone()),
            },
            2,
        )
        .await
        .unwrap();
    assert_eq!(
        rest.iter().map(|p| p.photo_id.to_string()).collect::<Vec<_>>(),
        vec![ids[2].clone()]
    );

    let gone = PhotoUpsert {
        deleted: true,
        ..batch[0].clone()
    };
    let second = c.sync_photos(&user, &library, vec![gone]).await.unwrap().version;
    let mut changed = batch[1].clone();
    changed.favorite = true;
    let third = c
        .sync_photos(&user, &library, vec![changed])
        .await
        .unwrap()
        .version;
    let after = c
        .photo_changes(
            &user,
            &ChangesSince {
                version: first,
                photo_id: None,
            },
            10,
        )
        .await
        .unwrap();
    assert_eq!(
        after
            .iter()
            .map(|p| (p.version, p.photo.is_some()))
            .collect::<Vec<_>>(),
        vec![(second, false), (third, true)],
        "a delete, then an upsert, in version order"
    );
    assert!(after[1].photo.as_ref().unwrap().favorite);

    let (bob, _) = user_and_library(c, "bob").await;
    assert!(
        c.photo_changes(&bob, &ChangesSince::default(), 10)
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn restore_brings_a_photo_back_as_of_a_time(s: &Subject) {
    let c = s.c();
    let (user, library) = user_and_library(c, "alice").await;
    let mut photo = with_original("R", &sha(1));
    photo.title = Some("one".into());
    c.sync_photos(&user, &library, vec![photo.clone()]).await.unwrap();
    let id = photo_id(c, &user, "R").await;
    c.record_upload(&user, &upload(&id, &sha(1), 1000, "users/a/r1", Utc::now()))
        .await
        .unwrap();
    let then = instant().await;
    photo.title = Some("two".into());
    // A new original and a resource the photo did not have then.
    let render = DeclaredResource {
        resource_type: ResourceType::Render,
        ..original(500, Some(sha(7)))
    };
    photo.resources = vec![original(1000, Some(sha(2))), render];
    c.sync_photos(&user, &library, vec![photo.clone()]).await.unwrap();
    c.record_upload(&user, &upload(&id, &sha(2), 1000, "users/a/r2", Utc::now()))
        .await
        .unwrap();
    photo.deleted = true;
    let deleted = c.sync_photos(&user, &library, vec![photo]).await.unwrap().version;
    assert_eq!(stored_key(s, &id).await, vec!["users/a/r2", "-"]);

    let report = c
        .restore(&user, &RestoreTarget::Photo(id.clone()), then, Utc::now())
        .await
        .unwrap();
    assert_eq!(
        (report.version, report.photos, report.tombstoned),
        (deleted + 1, 1, 0)
    );
    assert_eq!(c.version(&user).await.unwrap(), deleted + 1);
    assert_eq!(
        s.raw
            .strings(&format!(
                "SELECT COALESCE(title, '-') FROM icloud.photos WHERE id = '{id}' AND deleted_at IS NULL"
            ))
            .await,
        vec!["one"]
    );
    assert_eq!(
        stored_key(s, &id).await,
        vec!["users/a/r1"],
        "the object it had then"
    );
    assert_eq!(
        c.photo(&user, &id)
            .await
            .unwrap()
            .unwrap()
            .listed
            .original
            .unwrap()
            .sha256,
        sha(1)
    );
    let versions = c.photo_history(&user, &id).await.unwrap().unwrap();
    assert_eq!(
        (versions[0].version, versions[0].change),
        (deleted + 1, Change::Restored)
    );
    let changes = c
        .photo_changes(
            &user,
            &ChangesSince {
                version: deleted,
                photo_id: None,
            },
            10,
        )
        .await
        .unwrap();
    assert_eq!(changes.len(), 1);
    assert!(changes[0].photo.is_some(), "the restore is an upsert in the feed");
    // The object the restore replaced stays referenced for the retention.
    assert_eq!(
        s.raw
            .int(&format!(
                "SELECT COUNT(*) FROM icloud.resource_history WHERE photo_id = '{id}' AND stored_key = 'users/a/r2'"
            ))
            .await,
        1
    );

    // Restoring the same time again changes nothing and leaves the version alone.
    let again = c
        .restore(&user, &RestoreTarget::Photo(id.clone()), then, Utc::now())
        .await
        .unwrap();
    assert_eq!((again.photos, c.version(&user).await.unwrap()), (0, deleted + 1));

    let future = Utc::now() + Duration::days(1);
    let error = c
        .restore(&user, &RestoreTarget::Photo(id.clone()), future, Utc::now())
        .await
        .unwrap_err();
    assert!(
        matches!(error, Error::Invalid { ref field, .. } if field == "asOf"),
        "{error:?}"
    );
    let (bob, _) = user_and_library(c, "bob").await;
    let error = c
        .restore(&bob, &RestoreTarget::Photo(id.clone()), then, Utc::now())
        .await
        .unwrap_err();
    assert!(matches!(error, Error::NotFound { what: "photo" }), "{error:?}");
    assert_eq!(
        c.version(&user).await.unwrap(),
        deleted + 1,
        "bad requests write nothing"
    );
}

pub async fn restore_brings_back_albums_and_libraries(s: &Subject) {
    let c = s.c();
    let (user, library) = user_and_library(c, "alice").await;
    let batch: Vec<PhotoUpsert> = (1..=3)
        .map(|n| with_original(&format!("p{n}"), &sha(n)))
        .collect();
    c.sync_photos(&user, &library, batch.clone()).await.unwrap();
    for (n, photo) in batch.iter().enumerate() {
        let id = photo_id(c, &user, &photo.local_identifier).await;
        let key = format!("users/a/{}", photo.local_identifier);
        let sha256 = sha(u8::try_from(n + 1).unwrap());
        c.record_upload(&user, &upload(&id, &sha256, 1000, &key, Utc::now()))
            .await
            .unwrap();
    }
    let album = |key: &str, title: &str, members: &[&str]| AlbumUpsert {
        album_key: key.into(),
        title: title.into(),
        kind: AlbumKind::Album,
        parent_key: None,
        members: members.iter().map(|m| (*m).to_owned()).collect(),
        cloud_guid: None,
    };
    c.replace_albums(&user, &library, vec![album("A", "summer", &["p2", "p1"])])
        .await
        .unwrap();
    let keys_at = "SELECT r.photo_id || ' ' || COALESCE(r.stored_key, '-') FROM icloud.resources r \
                   JOIN icloud.photos p ON p.id = r.photo_id WHERE p.deleted_at IS NULL ORDER BY 1";
    let keys_then = s.raw.strings(keys_at).await;
    let then = instant().await;

    // After `then`: A renamed and reordered to p3 alone, album B added, p2 deleted, p4 created, p1's
    // original replaced.
    c.replace_albums(
        &user,
        &library,
        vec![album("A", "autumn", &["p3"]), album("B", "new", &["p1"])],
    )
    .await
    .unwrap();
    let gone = PhotoUpsert {
        deleted: true,
        ..batch[1].clone()
    };
    let mut p1 = batch[0].clone();
    p1.resources = vec![original(1000, Some(sha(9)))];
    c.sync_photos(&user, &library, vec![gone, p1, with_original("p4", &sha(4))])
        .await
        .unwrap();
    let p1_id = photo_id(c, &user, "p1").await;
    c.record_upload(
        &user,
        &upload(&p1_id, &sha(9), 1000, "users/a/p1-new", Utc::now()),
    )
    .await
    .unwrap();
    let members = |key: &str| {
        format!(
            "SELECT p.local_identifier FROM icloud.album_members m JOIN icloud.albums a ON a.id = m.album_id \
             JOIN icloud.photos p ON p.id = m.photo_id WHERE a.album_key = '{key}' ORDER BY m.position"
        )
    };
    assert_eq!(s.raw.strings(&members("A")).await, vec!["p3"]);
    let album_id = s
        .raw
        .strings("SELECT id FROM icloud.albums WHERE album_key = 'A'")
        .await[0]
        .clone();

    let report = c
        .restore(&user, &RestoreTarget::Album(album_id.clone()), then, Utc::now())
        .await
        .unwrap();
    assert_eq!(report.albums, 1);
    assert_eq!(
        s.raw.strings(&members("A")).await,
        vec!["p2", "p1"],
        "membership and order then"
    );
    assert_eq!(
        s.raw
            .strings("SELECT title FROM icloud.albums WHERE album_key = 'A'")
            .await,
        vec!["summer"]
    );
    assert_eq!(
        s.raw
            .int("SELECT COUNT(*) FROM icloud.photos WHERE local_identifier = 'p2' AND deleted_at IS NULL")
            .await,
        1,
        "a member deleted since comes back with the album"
    );

    let report = c
        .restore(&user, &RestoreTarget::Library(library.clone()), then, Utc::now())
        .await
        .unwrap();
    assert_eq!(report.tombstoned, 1, "p4 did not exist then");
    assert_eq!(
        s.raw
            .strings("SELECT local_identifier FROM icloud.photos WHERE deleted_at IS NULL ORDER BY 1")
            .await,
        vec!["p1", "p2", "p3"]
    );
    assert_eq!(
        s.raw
            .int("SELECT COUNT(*) FROM icloud.albums WHERE album_key = 'B' AND deleted_at IS NOT NULL")
            .await,
        1,
        "an album created since is dropped"
    );
    assert_eq!(
        s.raw.strings(keys_at).await,
        keys_then,
        "every resource names the object it had then"
    );
    assert_eq!(s.raw.strings(&members("B")).await, Vec::<String>::new());

    let error = c
        .restore(&user, &RestoreTarget::Album("nope".into()), then, Utc::now())
        .await
        .unwrap_err();
    assert!(matches!(error, Error::NotFound { what: "album" }), "{error:?}");
    let error = c
        .restore(
            &user,
            &RestoreTarget::Library(LibraryId::new("nope".to_owned())),
            then,
            Utc::now(),
        )
        .await
        .unwrap_err();
    assert!(matches!(error, Error::NotFound { what: "library" }), "{error:?}");
}

pub async fn purge_keeps_tombstones_and_history_for_the_retention(s: &Subject) {
    let c = s.c();
    let (user, library) = user_and_library(c, "alice").await;
    let mut kept = with_original("kept", &sha(1));
    let gone = with_original("gone", &sha(2));
    c.sync_photos(&user, &library, vec![kept.clone(), gone.clone()])
        .await
        .unwrap();
    let kept_id = photo_id(c, &user, "kept").await;
    let gone_id = photo_id(c, &user, "gone").await;
    let created = instant().await;
    c.record_upload(&user, &upload(&kept_id, &sha(1), 1000, "users/a/old", Utc::now()))
        .await
        .unwrap();
    c.record_upload(
        &user,
        &upload(&gone_id, &sha(2), 1000, "users/a/gone", Utc::now()),
    )
    .await
    .unwrap();
    kept.resources = vec![original(1000, Some(sha(3)))];
    let deleted = PhotoUpsert {
        deleted: true,
        ..gone
    };
    c.sync_photos(&user, &library, vec![kept, deleted]).await.unwrap();
    c.record_upload(&user, &upload(&kept_id, &sha(3), 1000, "users/a/new", Utc::now()))
        .await
        .unwrap();
    let old_key = "SELECT COUNT(*) FROM icloud.resource_history WHERE stored_key = 'users/a/old'";
    let tombstones = "SELECT COUNT(*) FROM icloud.photos WHERE deleted_at IS NOT NULL";
    assert_eq!(s.raw.int(old_key).await, 1);
    let retention = Retention { days: 30 };
    let now = Utc::now();

    let early = c.purge(retention, now + Duration::days(29)).await.unwrap();
    assert_eq!(early.photos, 0);
    assert_eq!(
        s.raw.int(tombstones).await,
        1,
        "a tombstone is kept within the retention"
    );
    assert_eq!(
        s.raw.int(old_key).await,
        1,
        "a replaced object stays referenced within the retention"
    );
    assert!(c.photo_history(&user, &gone_id).await.unwrap().is_some());

    let late = c.purge(retention, now + Duration::days(31)).await.unwrap();
    assert_eq!(late.photos, 1);
    assert!(late.history_rows > 0);
    assert_eq!(s.raw.int(tombstones).await, 0, "gone after the retention");
    assert_eq!(s.raw.int(old_key).await, 0);
    assert_eq!(
        s.raw
            .int(&format!(
                "SELECT COUNT(*) FROM icloud.resource_history WHERE photo_id = '{gone_id}'"
            ))
            .await,
        0
    );
    assert!(c.photo_history(&user, &gone_id).await.unwrap().is_none());
    let versions = c.photo_history(&user, &kept_id).await.unwrap().unwrap();
    assert_eq!(versions.len(), 1, "a live photo keeps its latest snapshot");
    assert_eq!(stored_key(s, &kept_id).await, vec!["users/a/new"]);
    assert_eq!(c.stats(&user, Utc::now()).await.unwrap().totals.photos, 1);

    // A restore to a time whose history is purged leaves the photo as it is (it existed then, but what it
    // was is no longer known), rather than taking it for one created later and tombstoning it.
    let report = c
        .restore(&user, &RestoreTarget::Photo(kept_id.clone()), created, Utc::now())
        .await
        .unwrap();
    assert_eq!((report.photos, report.tombstoned), (0, 0));
    assert_eq!(c.stats(&user, Utc::now()).await.unwrap().totals.photos, 1);
}
