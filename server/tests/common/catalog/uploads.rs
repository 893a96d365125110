//! Dedup, the pending list, recording uploads, the upload lookup and stats.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

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
