//! A photo's neighbours in the timeline (the photo page's previous and next, issue 14): exactly the list's
//! order, ties by id, under the list's filters, never another user's photo.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use server::catalog::{PhotoFilter, TimelineKey, TimelineNeighbours, TimelineQuery};

use super::*;

/// Every photo of the list under `filter`, in order.
async fn listed(c: &dyn Catalog, user: &UserId, filter: &PhotoFilter) -> Vec<(i64, PhotoId)> {
    let query = TimelineQuery {
        filter: filter.clone(),
        limit: 500,
        after: None,
        before_local_ms: None,
    };
    let rows = c.list_photos(user, &query).await.unwrap();
    assert!(rows.len() <= 500);
    rows.into_iter().map(|p| (p.taken_at_ms, p.id)).collect()
}

fn key(taken_at_ms: i64, id: &PhotoId) -> TimelineKey {
    TimelineKey {
        taken_at_ms,
        photo_id: id.as_str().to_owned(),
    }
}

/// For each photo of the list under `filter`, its neighbours are the items before and after it.
async fn check_walk(c: &dyn Catalog, user: &UserId, filter: &PhotoFilter) -> Vec<(i64, PhotoId)> {
    let list = listed(c, user, filter).await;
    for (i, (taken, id)) in list.iter().enumerate() {
        let found = c
            .timeline_neighbours(user, filter, &key(*taken, id))
            .await
            .unwrap();
        let expected = TimelineNeighbours {
            newer: i.checked_sub(1).map(|j| list[j].1.clone()),
            older: list.get(i + 1).map(|p| p.1.clone()),
        };
        assert_eq!(found, expected, "photo {i} of {} under {filter:?}", list.len());
    }
    list
}

pub async fn timeline_neighbours_follow_the_list_order(s: &Subject) {
    let c = s.c();
    let (alice, library) = user_and_library(c, "alice").await;
    let (bob, bob_library) = user_and_library(c, "bob").await;
    // Twelve photos over five times: several share a time (their order is by id), one of them a
    // favourite, a hidden and a trashed one among them, and one deleted.
    let taken = |day: u32, hour: u32| {
        FixedOffset::east_opt(-5 * 3600)
            .unwrap()
            .with_ymd_and_hms(2024, 5, day, hour, 0, 0)
            .unwrap()
    };
    let times = [
        (3, 9),
        (1, 8),
        (3, 9),
        (2, 7),
        (3, 9),
        (1, 8),
        (4, 6),
        (2, 7),
        (3, 9),
        (5, 5),
        (1, 8),
        (2, 7),
    ];
    let mut batch = Vec::new();
    for (n, (day, hour)) in times.into_iter().enumerate() {
        let mut photo = item(&format!("N{n:03}/L0/001"));
        photo.taken_at = taken(day, hour);
        photo.favorite = n % 3 == 0;
        photo.hidden = n == 4;
        photo.trashed = n == 7;
        batch.push(photo);
    }
    c.sync_photos(&alice, &library, batch.clone()).await.unwrap();
    let mut gone = batch[5].clone();
    gone.deleted = true;
    c.sync_photos(&alice, &library, vec![gone]).await.unwrap();
    // Bob's photos at the very same times, interleaved by id with Alice's.
    let bobs: Vec<PhotoUpsert> = batch
        .iter()
        .map(|p| PhotoUpsert {
            local_identifier: format!("B{}", p.local_identifier),
            hidden: false,
            trashed: false,
            ..p.clone()
        })
        .collect();
    c.sync_photos(&bob, &bob_library, bobs).await.unwrap();

    let default = check_walk(c, &alice, &PhotoFilter::default()).await;
    assert_eq!(default.len(), 9, "12 less the hidden, trashed and deleted ones");
    let mut sorted = default.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(default, sorted, "the list is newest first, ties by id descending");
    assert!(
        default.windows(2).any(|w| w[0].0 == w[1].0),
        "the fixture has ties"
    );
    let favourites = PhotoFilter {
        favorite: Some(true),
        ..PhotoFilter::default()
    };
    assert_eq!(check_walk(c, &alice, &favourites).await.len(), 4);
    let everything = PhotoFilter {
        include_hidden: true,
        include_trashed: true,
        ..PhotoFilter::default()
    };
    assert_eq!(check_walk(c, &alice, &everything).await.len(), 11);

    // A hidden photo opened by its link: its neighbours in the default list are the photos either side of
    // its place there.
    let hidden_id = photo_id(c, &alice, "N004/L0/001").await;
    let all = listed(c, &alice, &everything).await;
    let at = all.iter().position(|p| p.1 == hidden_id).unwrap();
    let hidden_key = key(all[at].0, &hidden_id);
    let around = c
        .timeline_neighbours(&alice, &PhotoFilter::default(), &hidden_key)
        .await
        .unwrap();
    let newer = all[..at]
        .iter()
        .rev()
        .find(|p| default.contains(p))
        .map(|p| p.1.clone());
    let older = all[at + 1..]
        .iter()
        .find(|p| default.contains(p))
        .map(|p| p.1.clone());
    assert!(newer.is_some() && older.is_some(), "the hidden photo is mid-list");
    assert_eq!(around, TimelineNeighbours { newer, older });

    // Bob's key, read as Alice: only Alice's photos come back; Bob's own answer is all his.
    let bob_list = listed(c, &bob, &PhotoFilter::default()).await;
    let alice_ids: Vec<&PhotoId> = default.iter().map(|p| &p.1).collect();
    for (taken, id) in &bob_list {
        let as_alice = c
            .timeline_neighbours(&alice, &PhotoFilter::default(), &key(*taken, id))
            .await
            .unwrap();
        for neighbour in [&as_alice.newer, &as_alice.older].into_iter().flatten() {
            assert!(alice_ids.contains(&neighbour), "{neighbour} is not Alice's");
        }
        let as_bob = c
            .timeline_neighbours(&bob, &PhotoFilter::default(), &key(*taken, id))
            .await
            .unwrap();
        for neighbour in [&as_bob.newer, &as_bob.older].into_iter().flatten() {
            assert!(
                bob_list.iter().any(|p| &p.1 == neighbour),
                "{neighbour} is not Bob's"
            );
        }
    }
    assert_eq!(check_walk(c, &bob, &PhotoFilter::default()).await.len(), 12);

    // Past either end there is nothing; a user with no photos has no neighbours.
    let ends = c
        .timeline_neighbours(&alice, &PhotoFilter::default(), &key(i64::MAX, &hidden_id))
        .await
        .unwrap();
    assert_eq!(ends.newer, None);
    assert_eq!(ends.older, Some(default[0].1.clone()));
    let (carol, _) = user_and_library(c, "carol").await;
    assert_eq!(
        c.timeline_neighbours(&carol, &PhotoFilter::default(), &hidden_key)
            .await
            .unwrap(),
        TimelineNeighbours::default()
    );
}
