//! What the garbage collector asks of the catalog: the lease, the references, releasing unreferenced blobs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;

use api::JobKind;
use server::catalog::LeaseRequest;

use super::*;

fn keys(list: &[&str]) -> Vec<String> {
    list.iter().map(|k| (*k).to_owned()).collect()
}

fn set(list: &[&str]) -> HashSet<String> {
    list.iter().map(|k| (*k).to_owned()).collect()
}

/// A blob row no resource names (what a superseded or abandoned upload leaves).
async fn orphan_blob(s: &Subject, user: &UserId, sha256: &str, key: &str) {
    s.raw
        .int(&format!(
            "INSERT INTO icloud.blobs (user_id, sha256, storage_key, size, created_at) \
             VALUES ('{user}', '{sha256}', '{key}', 10, 0) RETURNING CAST(1 AS BIGINT)"
        ))
        .await;
}

pub async fn gc_references_cover_resources_tombstones_and_derivatives(s: &Subject) {
    let c = s.c();
    let (user, library) = user_and_library(c, "alice").await;
    let (other, other_library) = user_and_library(c, "bob").await;
    let declared = |id: &str, n: u8| PhotoUpsert {
        resources: vec![original(100, Some(sha(n)))],
        ..item(id)
    };
    c.sync_photos(&user, &library, vec![declared("LIVE", 1), declared("GONE", 2)])
        .await
        .unwrap();
    for (id, n) in [("LIVE", 1), ("GONE", 2)] {
        let photo = photo_id(c, &user, id).await;
        c.record_upload(
            &user,
            &upload(&photo, &sha(n), 100, &format!("users/a/{id}.heic"), Utc::now()),
        )
        .await
        .unwrap();
    }
    // A tombstone keeps its objects for the retention.
    let gone = PhotoUpsert {
        deleted: true,
        ..declared("GONE", 2)
    };
    c.sync_photos(&user, &library, vec![gone]).await.unwrap();
    // A thumbnail and its preview named by an enrichment result.
    let jobs = c
        .lease_jobs(
            &user,
            &LeaseRequest {
                kind: JobKind::Thumbnail,
                max: 10,
                lease_ms: 60_000,
            },
        )
        .await
        .unwrap();
    assert_eq!(jobs.len(), 1, "the live photo's thumbnail job");
    c.complete_job(
        &user,
        &jobs[0].id,
        &serde_json::json!({"key": "users/a/thumb/LIVE.jpg", "width": 512,
            "preview": {"key": "users/a/preview/LIVE.jpg", "width": 2048}}),
    )
    .await
    .unwrap();
    orphan_blob(s, &user, &sha(9), "users/a/orphan.heic").await;
    // Another user's reference is not this user's.
    c.sync_photos(&other, &other_library, vec![declared("B", 5)])
        .await
        .unwrap();
    let b = photo_id(c, &other, "B").await;
    c.record_upload(&other, &upload(&b, &sha(5), 100, "users/b/B.heic", Utc::now()))
        .await
        .unwrap();

    let referenced = set(&[
        "users/a/LIVE.heic",
        "users/a/GONE.heic",
        "users/a/thumb/LIVE.jpg",
        "users/a/preview/LIVE.jpg",
    ]);
    assert_eq!(c.gc_referenced_keys(&user).await.unwrap(), referenced);
    assert_eq!(
        c.gc_referenced_keys(&other).await.unwrap(),
        set(&["users/b/B.heic"])
    );
    let asked = keys(&[
        "users/a/LIVE.heic",
        "users/a/GONE.heic",
        "users/a/thumb/LIVE.jpg",
        "users/a/preview/LIVE.jpg",
        "users/a/orphan.heic",
        "users/a/never-recorded.heic",
    ]);
    assert_eq!(c.gc_referenced_among(&user, &asked).await.unwrap(), referenced);
    assert!(
        c.gc_referenced_among(&user, &keys(&["users/b/B.heic"]))
            .await
            .unwrap()
            .is_empty()
    );
    let users: Vec<UserId> = c.gc_users().await.unwrap();
    assert_eq!(users, vec![user.clone(), other.clone()]);
}

pub async fn gc_release_deletes_only_unreferenced_blob_rows(s: &Subject) {
    let c = s.c();
    let (user, library) = user_and_library(c, "alice").await;
    c.sync_photos(
        &user,
        &library,
        vec![PhotoUpsert {
            resources: vec![original(100, Some(sha(1)))],
            ..item("LIVE")
        }],
    )
    .await
    .unwrap();
    let live = photo_id(c, &user, "LIVE").await;
    c.record_upload(
        &user,
        &upload(&live, &sha(1), 100, "users/a/LIVE.heic", Utc::now()),
    )
    .await
    .unwrap();
    orphan_blob(s, &user, &sha(9), "users/a/orphan.heic").await;
    let asked = keys(&["users/a/LIVE.heic", "users/a/orphan.heic", "users/a/stray.bin"]);
    assert_eq!(
        c.gc_recorded_among(&user, &asked).await.unwrap(),
        set(&["users/a/LIVE.heic", "users/a/orphan.heic"])
    );
    let released = c
        .gc_release_unreferenced(
            &user,
            &keys(&["users/a/LIVE.heic", "users/a/orphan.heic", "users/a/stray.bin"]),
        )
        .await
        .unwrap();
    assert_eq!(released, keys(&["users/a/orphan.heic", "users/a/stray.bin"]));
    assert_eq!(
        s.raw.strings("SELECT storage_key FROM icloud.blobs").await,
        vec!["users/a/LIVE.heic".to_owned()],
        "the referenced blob stays, the orphan's row goes"
    );
    assert!(c.blob_by_sha(&user, &sha(9)).await.unwrap().is_none());
    assert_eq!(
        c.gc_recorded_among(&user, &asked).await.unwrap(),
        set(&["users/a/LIVE.heic"])
    );
    // Idempotent: a second release (a pass redone after a crash) changes nothing and fails on nothing.
    let again = c
        .gc_release_unreferenced(&user, &keys(&["users/a/orphan.heic"]))
        .await
        .unwrap();
    assert_eq!(again, keys(&["users/a/orphan.heic"]));
}

pub async fn gc_dedup_link_to_a_released_blob_is_refused(s: &Subject) {
    let c = s.c();
    let (user, library) = user_and_library(c, "alice").await;
    c.sync_photos(
        &user,
        &library,
        vec![
            PhotoUpsert {
                resources: vec![original(10, Some(sha(9)))],
                ..item("LATE")
            },
            PhotoUpsert {
                resources: vec![original(10, Some(sha(8)))],
                ..item("OK")
            },
        ],
    )
    .await
    .unwrap();
    orphan_blob(s, &user, &sha(9), "users/a/orphan.heic").await;
    orphan_blob(s, &user, &sha(8), "users/a/kept.heic").await;
    // The upload route read the blob row, then the collector released it before the link was recorded.
    let found = c.blob_by_sha(&user, &sha(9)).await.unwrap().unwrap();
    c.gc_release_unreferenced(&user, &keys(&["users/a/orphan.heic"]))
        .await
        .unwrap();
    let late = photo_id(c, &user, "LATE").await;
    let link = UploadRecord {
        deduplicated: true,
        ..upload(&late, &found.sha256, found.size, &found.key, Utc::now())
    };
    assert!(
        matches!(c.record_upload(&user, &link).await, Err(Error::Conflict { .. })),
        "a link to a released blob must not name its deleted object"
    );
    assert!(c.gc_referenced_keys(&user).await.unwrap().is_empty());
    assert_eq!(all_pending(c, &user).await.len(), 2, "still asked for");
    // A link to a blob that is still there is recorded as before.
    let ok = photo_id(c, &user, "OK").await;
    let link = UploadRecord {
        deduplicated: true,
        ..upload(&ok, &sha(8), 10, "users/a/kept.heic", Utc::now())
    };
    c.record_upload(&user, &link).await.unwrap();
    assert_eq!(
        c.gc_referenced_keys(&user).await.unwrap(),
        set(&["users/a/kept.heic"])
    );
}

pub async fn gc_lease_is_held_by_one_holder_at_a_time(s: &Subject) {
    let c = s.c();
    let now = Utc::now();
    let minute = Duration::seconds(60);
    assert!(c.gc_take_lease("gc", "a", now, now + minute).await.unwrap());
    assert!(!c.gc_take_lease("gc", "b", now, now + minute).await.unwrap());
    assert!(
        c.gc_take_lease("gc", "a", now, now + minute * 2).await.unwrap(),
        "renewal"
    );
    assert!(
        !c.gc_take_lease("gc", "b", now + minute, now + minute * 3)
            .await
            .unwrap(),
        "renewed, so not expired yet"
    );
    assert!(
        c.gc_take_lease("gc", "b", now + minute * 2, now + minute * 3)
            .await
            .unwrap(),
        "expired: taken over"
    );
    assert!(
        !c.gc_take_lease("gc", "a", now + minute * 2, now + minute * 4)
            .await
            .unwrap()
    );
    c.gc_release_lease("gc", "a").await.unwrap();
    assert!(
        !c.gc_take_lease("gc", "a", now + minute * 2, now + minute * 4)
            .await
            .unwrap(),
        "not a's to release"
    );
    c.gc_release_lease("gc", "b").await.unwrap();
    assert!(
        c.gc_take_lease("gc", "a", now + minute * 2, now + minute * 4)
            .await
            .unwrap()
    );

    // Racing for a free lease: exactly one wins.
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let catalog = Arc::clone(&s.catalog);
            tokio::spawn(async move {
                catalog
                    .gc_take_lease("race", &format!("holder-{i}"), now, now + minute)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut winners = 0;
    for task in tasks {
        winners += usize::from(task.await.unwrap());
    }
    assert_eq!(winners, 1);
}

pub async fn gc_release_racing_dedup_links_never_frees_a_linked_key(s: &Subject) {
    let c = s.c();
    let (user, library) = user_and_library(c, "alice").await;
    let n: u8 = 30;
    let photos: Vec<PhotoUpsert> = (0..n)
        .map(|i| PhotoUpsert {
            resources: vec![original(10, Some(sha(100 + i)))],
            ..item(&format!("P{i}"))
        })
        .collect();
    c.sync_photos(&user, &library, photos).await.unwrap();
    for i in 0..n {
        orphan_blob(s, &user, &sha(100 + i), &format!("users/a/blob{i}.heic")).await;
    }
    for i in 0..n {
        let key = format!("users/a/blob{i}.heic");
        let photo = photo_id(c, &user, &format!("P{i}")).await;
        let link = UploadRecord {
            deduplicated: true,
            ..upload(&photo, &sha(100 + i), 10, &key, Utc::now())
        };
        // The upload route's link and the collector's release of the same blob, at once.
        let linker = {
            let catalog = Arc::clone(&s.catalog);
            let user = user.clone();
            tokio::spawn(async move { catalog.record_upload(&user, &link).await })
        };
        let releaser = {
            let catalog = Arc::clone(&s.catalog);
            let user = user.clone();
            let key = key.clone();
            tokio::spawn(async move { catalog.gc_release_unreferenced(&user, &[key]).await })
        };
        let linked = linker.await.unwrap();
        let released = releaser.await.unwrap().unwrap().contains(&key);
        assert!(
            matches!(linked, Ok(_) | Err(Error::Conflict { .. })),
            "{linked:?}"
        );
        // Exactly one wins: a released key (whose object the collector deletes next) is never referenced.
        assert_eq!(linked.is_ok(), !released, "round {i}");
        let referenced = c
            .gc_referenced_among(&user, std::slice::from_ref(&key))
            .await
            .unwrap()
            .contains(&key);
        assert_eq!(referenced, !released, "round {i}");
    }
}
