//! Photo history as before-images (migration 0012): what that format could get wrong. A new photo writes no
//! history row, so its first state is its `photos` row until it changes, and each later row holds the state
//! its change replaced: restores to each point, to before the photo existed, and after the purge.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use server::catalog::{Change, RestoreTarget, Retention};

use super::*;

/// A point in time strictly between the writes before and after it.
async fn between() -> DateTime<Utc> {
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let t = Utc::now();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    t
}

fn titled(local_identifier: &str, title: &str) -> PhotoUpsert {
    PhotoUpsert {
        title: Some(title.to_owned()),
        ..item(local_identifier)
    }
}

/// The photo's title now (`-` when none, `deleted` for a tombstone).
async fn title_of(s: &Subject, photo: &PhotoId) -> String {
    s.raw
        .strings(&format!(
            "SELECT CASE WHEN deleted_at IS NOT NULL THEN 'deleted' ELSE COALESCE(title, '-') END \
             FROM icloud.photos WHERE id = '{photo}'"
        ))
        .await
        .concat()
}

async fn restore_to(s: &Subject, user: &UserId, photo: &PhotoId, as_of: DateTime<Utc>) -> (u64, u64) {
    let report = s
        .c()
        .restore(user, &RestoreTarget::Photo(photo.clone()), as_of, Utc::now())
        .await
        .unwrap();
    (report.photos, report.tombstoned)
}

pub async fn new_photos_write_no_history_and_restore_to_each_state(s: &Subject) {
    let c = s.c();
    let (user, library) = user_and_library(c, "alice").await;
    let before = between().await;
    let created = c
        .sync_photos(&user, &library, vec![titled("S", "one")])
        .await
        .unwrap()
        .version;
    let id = photo_id(c, &user, "S").await;
    let history_rows = format!("SELECT COUNT(*) FROM icloud.photo_history WHERE photo_id = '{id}'");
    let resource_rows = format!("SELECT COUNT(*) FROM icloud.resource_history WHERE photo_id = '{id}'");
    assert_eq!(
        (s.raw.int(&history_rows).await, s.raw.int(&resource_rows).await),
        (0, 0),
        "a new photo writes no history row"
    );
    let one = between().await;
    let second = c
        .sync_photos(&user, &library, vec![titled("S", "two")])
        .await
        .unwrap()
        .version;
    let two = between().await;
    let third = c
        .sync_photos(&user, &library, vec![titled("S", "three")])
        .await
        .unwrap()
        .version;
    assert_eq!(s.raw.int(&history_rows).await, 2, "one row per change");
    let three = between().await;

    let versions = c.photo_history(&user, &id).await.unwrap().unwrap();
    let seen: Vec<(i64, Change, String)> = versions
        .iter()
        .map(|v| {
            (
                v.version,
                v.change,
                v.snapshot["title"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            (third, Change::Updated, "three".to_owned()),
            (second, Change::Updated, "two".to_owned()),
            (created, Change::Created, "one".to_owned()),
        ]
    );
    assert_eq!(versions[0].changed_fields, vec!["title".to_owned()]);
    assert!(versions[2].changed_fields.len() > 20, "all fields for the first");
    assert!(versions[2].changed_at <= one && versions[2].changed_at > before);
    assert!(versions[1].changed_at > one && versions[1].changed_at <= two);

    // Back to each point, in an order where each restore starts from a different state.
    assert_eq!(restore_to(s, &user, &id, one).await, (1, 0));
    assert_eq!(title_of(s, &id).await, "one");
    assert_eq!(restore_to(s, &user, &id, three).await, (1, 0));
    assert_eq!(title_of(s, &id).await, "three");
    assert_eq!(restore_to(s, &user, &id, two).await, (1, 0));
    assert_eq!(title_of(s, &id).await, "two");
    assert_eq!(restore_to(s, &user, &id, two).await, (0, 0), "already so");
    // The restores are changes too: a restore to a time after the first one finds "one" again.
    let after_restores = between().await;
    assert_eq!(restore_to(s, &user, &id, one).await, (1, 0));
    assert_eq!(title_of(s, &id).await, "one");
    assert_eq!(restore_to(s, &user, &id, after_restores).await, (1, 0));
    assert_eq!(title_of(s, &id).await, "two");
    let versions = c.photo_history(&user, &id).await.unwrap().unwrap();
    assert_eq!(
        versions
            .iter()
            .take(5)
            .map(|v| (v.change, v.snapshot["title"].as_str().unwrap()))
            .collect::<Vec<_>>(),
        vec![
            (Change::Restored, "two"),
            (Change::Restored, "one"),
            (Change::Restored, "two"),
            (Change::Restored, "three"),
            (Change::Restored, "one"),
        ]
    );

    // Before it existed: a tombstone, and the tombstone is a state like any other.
    assert_eq!(restore_to(s, &user, &id, before).await, (1, 1));
    assert_eq!(title_of(s, &id).await, "deleted");
    assert_eq!(restore_to(s, &user, &id, two).await, (1, 0));
    assert_eq!(title_of(s, &id).await, "two");
}

pub async fn a_photo_created_after_the_time_restored_to_becomes_a_tombstone(s: &Subject) {
    let c = s.c();
    let (user, library) = user_and_library(c, "alice").await;
    c.sync_photos(&user, &library, vec![titled("old", "kept")])
        .await
        .unwrap();
    let then = between().await;
    c.sync_photos(&user, &library, vec![titled("new", "first")])
        .await
        .unwrap();
    // Changed since, so it has history rows whose before-images are all from after `then`.
    c.sync_photos(&user, &library, vec![titled("new", "second")])
        .await
        .unwrap();
    let old_id = photo_id(c, &user, "old").await;
    let new_id = photo_id(c, &user, "new").await;

    let report = c
        .restore(&user, &RestoreTarget::Library(library.clone()), then, Utc::now())
        .await
        .unwrap();
    assert_eq!((report.photos, report.tombstoned), (1, 1));
    assert_eq!(title_of(s, &new_id).await, "deleted");
    assert_eq!(title_of(s, &old_id).await, "kept", "unchanged since: left alone");
    let versions = c.photo_history(&user, &new_id).await.unwrap().unwrap();
    assert_eq!(
        versions.iter().map(|v| (v.version, v.change)).collect::<Vec<_>>()[0],
        (report.version, Change::Restored)
    );
    assert!(versions[0].snapshot["deleted_at"].is_i64());
    assert_eq!(versions[1].snapshot["title"], "second");
    assert_eq!(versions.len(), 3);
}

pub async fn a_resource_added_later_goes_when_restored_to_before(s: &Subject) {
    let c = s.c();
    let (user, library) = user_and_library(c, "alice").await;
    let mut photo = titled("R", "same");
    c.sync_photos(&user, &library, vec![photo.clone()]).await.unwrap();
    let id = photo_id(c, &user, "R").await;
    let then = between().await;
    // Only the resources change: the photo's version moves without new metadata.
    photo.resources.push(DeclaredResource {
        resource_type: ResourceType::Render,
        ..original(500, Some(sha(5)))
    });
    c.sync_photos(&user, &library, vec![photo]).await.unwrap();
    let types = format!("SELECT resource_type FROM icloud.resources WHERE photo_id = '{id}' ORDER BY 1");
    assert_eq!(s.raw.strings(&types).await, vec!["original", "render"]);
    assert_eq!(
        s.raw
            .strings(&format!(
                "SELECT resource_type || ' ' || change FROM icloud.resource_history WHERE photo_id = '{id}'"
            ))
            .await,
        vec!["render created"],
        "a resource added to an existing photo is recorded, not one written with a new photo"
    );
    assert_eq!(restore_to(s, &user, &id, then).await, (1, 0));
    assert_eq!(s.raw.strings(&types).await, vec!["original"]);
}

pub async fn purge_keeps_what_a_restore_to_the_oldest_kept_time_needs(s: &Subject) {
    let c = s.c();
    let (user, library) = user_and_library(c, "alice").await;
    c.sync_photos(
        &user,
        &library,
        vec![titled("A", "a1"), titled("B", "b1"), titled("C", "c1")],
    )
    .await
    .unwrap();
    let (a, b, cc) = (
        photo_id(c, &user, "A").await,
        photo_id(c, &user, "B").await,
        photo_id(c, &user, "C").await,
    );
    // A changes twice before the cutoff and twice after it, B only after it, C only before it.
    c.sync_photos(&user, &library, vec![titled("A", "a2"), titled("C", "c2")])
        .await
        .unwrap();
    c.sync_photos(&user, &library, vec![titled("A", "a2b")])
        .await
        .unwrap();
    let cutoff = between().await;
    c.sync_photos(&user, &library, vec![titled("A", "a3"), titled("B", "b2")])
        .await
        .unwrap();
    let later = between().await;
    c.sync_photos(&user, &library, vec![titled("A", "a4")])
        .await
        .unwrap();

    let report = c
        .purge(Retention { days: 30 }, cutoff + Duration::days(30))
        .await
        .unwrap();
    assert_eq!(
        report.history_rows, 1,
        "A's change to a2 went, its change to a2b began the state kept"
    );
    let rows = "SELECT COUNT(*) FROM icloud.photo_history";
    assert_eq!(s.raw.int(rows).await, 5);
    assert_eq!(
        s.raw
            .int("SELECT COUNT(*) FROM icloud.photo_history WHERE snapshot IS NULL")
            .await,
        2,
        "A's and C's last change before the cutoff keep no before-image"
    );
    let titles = |versions: Vec<server::catalog::PhotoVersion>| -> Vec<String> {
        versions
            .iter()
            .map(|v| v.snapshot["title"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        titles(c.photo_history(&user, &a).await.unwrap().unwrap()),
        vec!["a4", "a3", "a2b"],
        "from the state at the cutoff on"
    );
    assert_eq!(
        titles(c.photo_history(&user, &b).await.unwrap().unwrap()),
        vec!["b2", "b1"],
        "a photo unchanged before the cutoff keeps its first state"
    );
    assert_eq!(
        titles(c.photo_history(&user, &cc).await.unwrap().unwrap()),
        vec!["c2"]
    );

    let report = c
        .restore(
            &user,
            &RestoreTarget::Library(library.clone()),
            cutoff,
            Utc::now(),
        )
        .await
        .unwrap();
    assert_eq!((report.photos, report.tombstoned), (2, 0));
    assert_eq!(
        (
            title_of(s, &a).await,
            title_of(s, &b).await,
            title_of(s, &cc).await
        ),
        ("a2b".to_owned(), "b1".to_owned(), "c2".to_owned())
    );
    assert_eq!(restore_to(s, &user, &a, later).await, (1, 0));
    assert_eq!(title_of(s, &a).await, "a3");

    // A second purge at the same cutoff finds nothing more to do and loses nothing.
    let again = c
        .purge(Retention { days: 30 }, cutoff + Duration::days(30))
        .await
        .unwrap();
    assert_eq!(again.history_rows, 0);
    assert_eq!(restore_to(s, &user, &a, cutoff).await, (1, 0));
    assert_eq!(title_of(s, &a).await, "a2b");
}
