//! Albums, and isolation between users across every kind of row.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

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
        cloud_guid: None,
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
            cloud_guid: None,
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
    // The pages' media lookup: Alice's photo with its stored original for her, nothing for Bob.
    let listed = c.listed_photo(&alice, &a_photo).await.unwrap().unwrap();
    assert_eq!(listed.original.map(|o| o.key).as_deref(), Some("users/alice/x"));
    assert!(c.listed_photo(&bob, &a_photo).await.unwrap().is_none());
    assert!(
        c.listed_photo(&alice, &PhotoId::new("no-such-photo".to_owned()))
            .await
            .unwrap()
            .is_none()
    );
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
