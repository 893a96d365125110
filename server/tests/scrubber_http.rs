//! The date scrubber and the people and keyword lists over HTTP, against {SQLite, PostgreSQL} × {local
//! directory, SeaweedFS}: month counts of the photos' own months under filters, the jump to a month and the
//! cursor that goes on from it, and counts and search that follow an edit and a delete synced from the Mac.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod app;
mod gallery;
mod owner;

use app::{Backends, TestApp};
use gallery::{counts, found, months, photo, set, tags, uuid, walk};
use owner::Owner;
use serde_json::json;

pub async fn counts_and_search_follow_edits_and_deletes(app: TestApp) {
    let owner = Owner::new(&app).await;
    let a = photo(
        "M0000001",
        "2024-01-31T23:30:00-03:00",
        json!({ "keywords": ["Snow"], "people": ["Ann", "Bob"] }),
    );
    let b = photo(
        "M0000002",
        "2024-02-10T10:00:00Z",
        json!({ "keywords": ["Snow", "Ski"], "people": ["Ann"], "favorite": true }),
    );
    let c = photo(
        "M0000003",
        "2023-12-24T18:00:00+01:00",
        json!({ "keywords": ["Xmas"], "title": "Tree" }),
    );
    let hidden = photo(
        "M0000004",
        "2023-12-25T18:00:00Z",
        json!({ "keywords": ["Xmas"], "hidden": true }),
    );
    owner
        .sync(&app, vec![a.clone(), b.clone(), c.clone(), hidden])
        .await;
    // M0000001 is 1 February in UTC but 31 January by its own clock.
    assert_eq!(
        months(&app, &owner.web, "").await,
        counts(&[("2024-02", 1), ("2024-01", 1), ("2023-12", 1)])
    );
    assert_eq!(
        months(&app, &owner.web, "includeHidden=true").await,
        counts(&[("2024-02", 1), ("2024-01", 1), ("2023-12", 2)])
    );
    assert_eq!(
        months(&app, &owner.web, "favorite=true").await,
        counts(&[("2024-02", 1)])
    );
    assert_eq!(
        months(&app, &owner.web, "q=snow").await,
        counts(&[("2024-02", 1), ("2024-01", 1)])
    );
    assert_eq!(
        months(&app, &owner.web, "person=Bob").await,
        counts(&[("2024-01", 1)])
    );
    assert_eq!(
        tags(&app, &owner.web, "keywords").await,
        counts(&[("Snow", 2), ("Ski", 1), ("Xmas", 1)])
    );
    assert_eq!(
        tags(&app, &owner.web, "people").await,
        counts(&[("Ann", 2), ("Bob", 1)])
    );

    // An edit on the Mac: the tree is renamed and moved to January, Bob leaves the snow photo.
    let mut c2 = c.clone();
    c2["title"] = "Fir".into();
    c2["takenAt"] = "2024-01-05T18:00:00+01:00".into();
    c2["modifiedAt"] = "2024-06-01T00:00:00Z".into();
    let mut a2 = a.clone();
    a2["people"] = json!(["Ann"]);
    a2["modifiedAt"] = "2024-06-01T00:00:00Z".into();
    owner.sync(&app, vec![c2, a2]).await;
    assert_eq!(found(&app, &owner.web, "q=tree").await, set(&[]));
    assert_eq!(found(&app, &owner.web, "q=fir").await, set(&["M0000003"]));
    assert_eq!(found(&app, &owner.web, "q=bob").await, set(&[]));
    assert_eq!(
        months(&app, &owner.web, "").await,
        counts(&[("2024-02", 1), ("2024-01", 2)])
    );
    assert_eq!(tags(&app, &owner.web, "people").await, counts(&[("Ann", 2)]));

    // A delete on the Mac.
    let mut b2 = b.clone();
    b2["deleted"] = true.into();
    owner.sync(&app, vec![b2]).await;
    assert_eq!(found(&app, &owner.web, "q=ski").await, set(&[]));
    assert_eq!(found(&app, &owner.web, "q=snow").await, set(&["M0000001"]));
    assert_eq!(months(&app, &owner.web, "").await, counts(&[("2024-01", 2)]));
    assert_eq!(
        tags(&app, &owner.web, "keywords").await,
        counts(&[("Snow", 1), ("Xmas", 1)])
    );
}

pub async fn month_jump_starts_at_the_month(app: TestApp) {
    let owner = Owner::new(&app).await;
    // Three photos a month from January 2020 to December 2022, at 12:00 UTC on the 3rd, 13th and 23rd.
    let mut items = Vec::new();
    for m in 0..36 {
        for d in [3, 13, 23] {
            let (year, month) = (2020 + m / 12, 1 + m % 12);
            items.push(photo(
                &format!("J{year}{month:02}{d:02}"),
                &format!("{year}-{month:02}-{d:02}T12:00:00Z"),
                json!({}),
            ));
        }
    }
    // On 1 July 2021 by its own clock, 30 June in UTC.
    items.push(photo("K0000001", "2021-07-01T01:00:00+05:00", json!({})));
    owner.sync(&app, items).await;
    let all = walk(&app, &owner.web, "/my/photos/", 500).await;
    assert_eq!(all.len(), 109);

    let (status, page) = app
        .get_json(&owner.web, "/my/photos/months/2021-06?limit=4")
        .await;
    assert_eq!(status, 200, "{page}");
    let first: Vec<String> = page["items"].as_array().unwrap().iter().map(uuid).collect();
    assert_eq!(first, ["J20210623", "J20210613", "J20210603", "J20210523"]);
    // The cursor goes on down the timeline, with nothing missed or repeated.
    let mut rest = first.clone();
    let mut cursor = page["nextCursor"].as_str().unwrap().to_owned();
    loop {
        let (status, page) = app
            .get_json(&owner.web, &format!("/my/photos/?limit=10&cursor={cursor}"))
            .await;
        assert_eq!(status, 200, "{page}");
        rest.extend(page["items"].as_array().unwrap().iter().map(uuid));
        match page["nextCursor"].as_str() {
            Some(c) => cursor = c.to_owned(),
            None => break,
        }
    }
    let start = all.iter().position(|u| u == "J20210623").unwrap();
    assert_eq!(rest, all[start..].to_vec());
    // July starts with the photo of 1 July by its own clock.
    let (_, page) = app
        .get_json(&owner.web, "/my/photos/months/2021-07?limit=4")
        .await;
    let july: Vec<String> = page["items"].as_array().unwrap().iter().map(uuid).collect();
    assert_eq!(july, ["J20210723", "J20210713", "J20210703", "K0000001"]);
    // Under a filter: the jump and its cursor keep it.
    let (_, page) = app
        .get_json(&owner.web, "/my/photos/months/2020-03?q=j202001&limit=5")
        .await;
    assert_eq!(page["items"].as_array().unwrap().len(), 3, "{page}");
    // A month before every photo: empty, no cursor; after every photo: the newest.
    let (_, page) = app.get_json(&owner.web, "/my/photos/months/1999-12").await;
    assert_eq!(page, json!({ "items": [] }));
    let (_, page) = app
        .get_json(&owner.web, "/my/photos/months/2030-01?limit=1")
        .await;
    assert_eq!(uuid(&page["items"][0]), "J20221223");
    // The counts: three a month, four in July 2021.
    let counted = months(&app, &owner.web, "").await;
    assert_eq!(counted.len(), 36);
    assert_eq!(counted[0], ("2022-12".to_owned(), 3));
    assert!(counted.contains(&("2021-07".to_owned(), 4)));
    assert!(counted.contains(&("2021-06".to_owned(), 3)));
}

matrix!(
    counts_and_search_follow_edits_and_deletes,
    month_jump_starts_at_the_month,
);
