//! The sync batch: outcomes, versions, validation, soft delete, atomicity.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

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
    let with = |id: &str, change: fn(&mut PhotoUpsert)| {
        let mut bad = item(id);
        change(&mut bad);
        bad
    };
    let bad: Vec<(PhotoUpsert, &str)> = vec![
        (item(""), "localIdentifier"),
        (item(&"x".repeat(257)), "localIdentifier"),
        (with("lat", |i| i.latitude = Some(91.0)), "latitude"),
        (with("lon", |i| i.longitude = Some(f64::NAN)), "longitude"),
        (with("wide", |i| i.width = 5_000_000), "width"),
        (with("nul", |i| i.title = Some("a\0b".into())), "title"),
        (with("long", |i| i.caption = Some("c".repeat(20_000))), "caption"),
        (
            with("sha", |i| i.resources = vec![original(1, Some("ABC".into()))]),
            "sha256",
        ),
        (
            with("huge", |i| i.resources = vec![original(1 << 41, None)]),
            "size",
        ),
        (
            with("twice", |i| {
                i.resources = vec![original(1, None), original(2, None)]
            }),
            "resources",
        ),
        (with("kw", |i| i.keywords = vec!["k".repeat(300)]), "keywords"),
    ];
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

pub async fn concurrent_batches_of_one_user_all_apply(s: &Subject) {
    let c = s.c();
    let (user, library) = user_and_library(c, "alice").await;
    c.sync_photos(&user, &library, items("shared", 5)).await.unwrap();
    let tasks: Vec<_> = (0..4)
        .map(|n| {
            let catalog = Arc::clone(&s.catalog);
            let (user, library) = (user.clone(), library.clone());
            // Each batch creates its own photos and changes one shared photo: real write contention.
            let mut batch = items(&format!("T{n}-"), 20);
            let mut shared = item(&format!("shared{n:03}/L0/001"));
            shared.favorite = true;
            batch.push(shared);
            tokio::spawn(async move { catalog.sync_photos(&user, &library, batch).await })
        })
        .collect();
    let mut versions = Vec::new();
    for task in tasks {
        let result = task.await.unwrap().unwrap();
        assert!(
            result.results[..20]
                .iter()
                .all(|r| r.outcome == ItemOutcome::Created)
        );
        assert_eq!(result.results[20].outcome, ItemOutcome::Updated);
        versions.push(result.version);
    }
    versions.sort_unstable();
    assert_eq!(
        versions,
        vec![2, 3, 4, 5],
        "one version per batch, none lost or shared"
    );
    assert_eq!(s.raw.int("SELECT COUNT(*) FROM icloud.photos").await, 85);
    assert_eq!(
        s.raw
            .int("SELECT COUNT(*) FROM icloud.photos WHERE favorite")
            .await,
        4
    );
}

pub async fn undeclared_resources_are_removed(s: &Subject) {
    let c = s.c();
    let (user, library) = user_and_library(c, "alice").await;
    let mut batch = items("A", 2);
    batch[0].resources.push(DeclaredResource {
        resource_type: ResourceType::LiveVideo,
        ..original(10, None)
    });
    c.sync_photos(&user, &library, batch.clone()).await.unwrap();
    assert_eq!(s.raw.int("SELECT COUNT(*) FROM icloud.resources").await, 3);

    // The Mac no longer has the Live Photo's video: its row goes, the original and the other photo stay.
    batch[0]
        .resources
        .retain(|r| r.resource_type == ResourceType::Original);
    let r = c.sync_photos(&user, &library, batch.clone()).await.unwrap();
    assert_eq!(outcomes(&r), vec![ItemOutcome::Updated, ItemOutcome::Unchanged]);
    assert_eq!(r.version, 2);
    assert_eq!(r.results[0].needs_upload, vec![ResourceType::Original]);
    assert_eq!(
        s.raw
            .int("SELECT COUNT(*) FROM icloud.resources WHERE resource_type = 'live_video'")
            .await,
        0
    );
    assert_eq!(s.raw.int("SELECT COUNT(*) FROM icloud.resources").await, 2);
    let again = c.sync_photos(&user, &library, batch).await.unwrap();
    assert_eq!(outcomes(&again), vec![ItemOutcome::Unchanged; 2]);
}
