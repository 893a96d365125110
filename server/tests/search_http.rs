//! Search, filters, the date scrubber and the people and keyword lists over HTTP, against {SQLite,
//! PostgreSQL} × {local directory, SeaweedFS}: each searchable field, prefixes, case and accents, several
//! words, paging, filters that combine, counts that follow a sync, bad input as 400s and per-user isolation.
//! `search_engines.rs` feeds the same photos to both databases and compares what they find.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod app;
mod owner;

use std::collections::BTreeSet;

use app::{Backends, TestApp, assert_error};
use owner::{Owner, taken};
use serde_json::{Value, json};

/// A photo `uuid` taken at `at` with the given searchable fields.
fn photo(uuid: &str, at: &str, fields: Value) -> Value {
    let mut p = taken(uuid, at);
    p["keywords"] = json!([]);
    p["people"] = json!([]);
    p["originalFilename"] = format!("{uuid}.HEIC").into();
    for (k, v) in fields.as_object().unwrap() {
        p[k] = v.clone();
    }
    p
}

/// Every item of every page of `path` (no cursor in it), in order.
async fn walk(app: &TestApp, token: &str, path: &str, limit: usize) -> Vec<String> {
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let sep = if path.contains('?') { '&' } else { '?' };
        let url = match &cursor {
            Some(c) => format!("{path}{sep}limit={limit}&cursor={c}"),
            None => format!("{path}{sep}limit={limit}"),
        };
        let (status, page) = app.get_json(token, &url).await;
        assert_eq!(status, 200, "{url}: {page}");
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= limit);
        all.extend(items.iter().map(uuid));
        match page["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return all,
        }
    }
}

fn uuid(item: &Value) -> String {
    item["localIdentifier"]
        .as_str()
        .unwrap()
        .trim_end_matches("/L0/001")
        .to_owned()
}

async fn found(app: &TestApp, token: &str, query: &str) -> BTreeSet<String> {
    walk(app, token, &format!("/my/photos/?{query}"), 500)
        .await
        .into_iter()
        .collect()
}

fn set(uuids: &[&str]) -> BTreeSet<String> {
    uuids.iter().map(|u| (*u).to_owned()).collect()
}

pub async fn search_finds_by_each_field(app: TestApp) {
    let owner = Owner::new(&app).await;
    owner
        .sync(
            &app,
            vec![
                photo(
                    "S0000001",
                    "2024-05-01T10:00:00Z",
                    json!({ "title": "Sunset over Lisbon" }),
                ),
                photo(
                    "S0000002",
                    "2024-05-02T10:00:00Z",
                    json!({ "caption": "Crème brûlée at the café" }),
                ),
                photo(
                    "S0000003",
                    "2024-05-03T10:00:00Z",
                    json!({ "keywords": ["Holiday", "Beach"] }),
                ),
                photo(
                    "S0000004",
                    "2024-05-04T10:00:00Z",
                    json!({ "people": ["Zoë Müller", "Ann"] }),
                ),
                photo(
                    "S0000005",
                    "2024-05-05T10:00:00Z",
                    json!({ "originalFilename": "IMG_4711.HEIC" }),
                ),
                photo(
                    "S0000006",
                    "2024-05-06T10:00:00Z",
                    json!({ "title": "Beach sunset", "hidden": true }),
                ),
                photo(
                    "S0000007",
                    "2024-05-07T10:00:00Z",
                    json!({ "title": "Beach party", "trashed": true }),
                ),
                photo(
                    "S0000008",
                    "2024-05-08T10:00:00Z",
                    json!({ "title": "Straße in Köln" }),
                ),
            ],
        )
        .await;
    // Deleted photos are never found, even when hidden ones are asked for.
    let mut gone = photo(
        "S0000009",
        "2024-05-09T10:00:00Z",
        json!({ "title": "Beach gone" }),
    );
    owner.sync(&app, vec![gone.clone()]).await;
    gone["deleted"] = true.into();
    owner.sync(&app, vec![gone]).await;

    for (query, expected) in [
        ("q=lisbon", vec!["S0000001"]),
        ("q=Sun", vec!["S0000001"]),
        ("q=creme%20brulee", vec!["S0000002"]),
        ("q=CAF", vec!["S0000002"]),
        ("q=brûlée", vec!["S0000002"]),
        ("q=holiday", vec!["S0000003"]),
        ("q=beach", vec!["S0000003"]),
        ("q=zoe", vec!["S0000004"]),
        ("q=ZOË%20mull", vec!["S0000004"]),
        ("q=muller%20ann", vec!["S0000004"]),
        ("q=zoe%20holiday", vec![]),
        ("q=img_47", vec!["S0000005"]),
        ("q=4711.heic", vec!["S0000005"]),
        ("q=strasse%20koln", vec!["S0000008"]),
        ("q=unset", vec![]),
        ("q=beach&includeHidden=true", vec!["S0000003", "S0000006"]),
        ("q=beach&includeTrashed=true", vec!["S0000003", "S0000007"]),
        ("q=s0000006", vec![]),
        ("q=s0000006&includeHidden=true", vec!["S0000006"]),
    ] {
        assert_eq!(found(&app, &owner.web, query).await, set(&expected), "{query}");
    }
    // The search is in timeline order, newest first.
    let (_, page) = app.get_json(&owner.web, "/my/photos/?q=heic").await;
    let order: Vec<String> = page["items"].as_array().unwrap().iter().map(uuid).collect();
    assert_eq!(
        order,
        [
            "S0000008", "S0000005", "S0000004", "S0000003", "S0000002", "S0000001"
        ]
    );
}

pub async fn search_pages_are_stable(app: TestApp) {
    let owner = Owner::new(&app).await;
    // 90 photos over 18 times (five share each), two in three match; the rest do not.
    let items: Vec<Value> = (0..90)
        .map(|i| {
            let title = if i % 3 == 0 { "Harbour" } else { "Harbor lights" };
            photo(
                &format!("P{i:07}"),
                &format!("2023-02-{:02}T08:00:00Z", 1 + i / 5),
                json!({ "title": title }),
            )
        })
        .collect();
    owner.sync(&app, items).await;
    let all = walk(&app, &owner.web, "/my/photos/?q=harbor", 500).await;
    assert_eq!(all.len(), 60);
    for limit in [1, 7, 59, 60] {
        assert_eq!(
            walk(&app, &owner.web, "/my/photos/?q=harbor", limit).await,
            all,
            "limit {limit}"
        );
    }
    // The same order as the timeline's, restricted to the matches.
    let timeline: Vec<String> = walk(&app, &owner.web, "/my/photos/", 500)
        .await
        .into_iter()
        .filter(|u| all.contains(u))
        .collect();
    assert_eq!(timeline, all);
    // A cursor belongs to its search.
    let (_, page) = app.get_json(&owner.web, "/my/photos/?q=harbor&limit=5").await;
    let cursor = page["nextCursor"].as_str().unwrap();
    assert_error(
        &app.get_json(
            &owner.web,
            &format!("/my/photos/?q=harbour&limit=5&cursor={cursor}"),
        )
        .await,
        400,
        "invalid_cursor",
    );
    assert_error(
        &app.get_json(&owner.web, &format!("/my/photos/?limit=5&cursor={cursor}"))
            .await,
        400,
        "invalid_cursor",
    );
    // The same words in another spelling are the same search: the cursor goes on.
    let (status, _) = app
        .get_json(
            &owner.web,
            &format!("/my/photos/?q=HARBOR&limit=5&cursor={cursor}"),
        )
        .await;
    assert_eq!(status, 200);
}

pub async fn filters_combine(app: TestApp) {
    let owner = Owner::new(&app).await;
    owner
        .sync(
            &app,
            vec![
                // 23:30 on 31 March in Tokyo is 14:30 UTC: on the 31st by its own clock.
                photo(
                    "F0000001",
                    "2024-03-31T23:30:00+09:00",
                    json!({ "livePhoto": true, "keywords": ["Trip"] }),
                ),
                // 00:30 on 1 April in Tokyo is still 31 March in UTC: in April by its own clock.
                photo(
                    "F0000002",
                    "2024-04-01T00:30:00+09:00",
                    json!({ "favorite": true, "keywords": ["Trip"] }),
                ),
                photo(
                    "F0000003",
                    "2024-03-15T12:00:00Z",
                    json!({ "kind": "video", "people": ["Ann"], "keywords": ["trip"] }),
                ),
                photo(
                    "F0000004",
                    "2024-03-01T00:00:00-05:00",
                    json!({ "favorite": true, "livePhoto": true, "people": ["Ann"] }),
                ),
                photo(
                    "F0000005",
                    "2024-02-29T23:59:00Z",
                    json!({ "title": "Trip planning", "people": ["Bob"] }),
                ),
            ],
        )
        .await;
    for (query, expected) in [
        ("live=true", vec!["F0000001", "F0000004"]),
        ("live=false", vec!["F0000002", "F0000003", "F0000005"]),
        ("favorite=true&live=true", vec!["F0000004"]),
        ("keyword=Trip", vec!["F0000001", "F0000002"]),
        ("keyword=trip", vec!["F0000003"]),
        ("person=Ann", vec!["F0000003", "F0000004"]),
        ("person=Ann&kind=video", vec!["F0000003"]),
        ("person=Nobody", vec![]),
        (
            "from=2024-03-01&to=2024-03-31",
            vec!["F0000001", "F0000003", "F0000004"],
        ),
        ("from=2024-04-01", vec!["F0000002"]),
        ("to=2024-02-29", vec!["F0000005"]),
        ("from=2024-03-31&to=2024-03-31", vec!["F0000001"]),
        ("q=trip", vec!["F0000001", "F0000002", "F0000003", "F0000005"]),
        (
            "q=trip&favorite=false&from=2024-03-01",
            vec!["F0000001", "F0000003"],
        ),
        ("q=trip&person=Bob", vec!["F0000005"]),
        ("q=ann&live=true&to=2024-03-31", vec!["F0000004"]),
    ] {
        assert_eq!(found(&app, &owner.web, query).await, set(&expected), "{query}");
    }
}

pub async fn bad_input_is_refused(app: TestApp) {
    let owner = Owner::new(&app).await;
    owner
        .sync(
            &app,
            vec![photo("B0000001", "2024-01-01T00:00:00Z", json!({ "title": "x" }))],
        )
        .await;
    let long = "a".repeat(201);
    for (path, code) in [
        ("/my/photos/?q=".to_owned(), "invalid_search"),
        (format!("/my/photos/?q={long}"), "invalid_search"),
        (format!("/my/photos/months?q={long}"), "invalid_search"),
        ("/my/photos/?q=x&cursor=abc".to_owned(), "invalid_cursor"),
        ("/my/photos/?from=2024-02-30".to_owned(), "invalid_query"),
        ("/my/photos/?to=24-01-01".to_owned(), "invalid_query"),
        ("/my/photos/?from=2024-1-01".to_owned(), "invalid_query"),
        ("/my/photos/?live=sometimes".to_owned(), "invalid_query"),
        ("/my/photos/?keyword=".to_owned(), "invalid_query"),
        (format!("/my/photos/?person={long}"), "invalid_query"),
        ("/my/photos/months?from=yesterday".to_owned(), "invalid_query"),
        ("/my/photos/months?limit=5".to_owned(), "invalid_query"),
        ("/my/photos/months?cursor=abc".to_owned(), "invalid_query"),
        ("/my/photos/months/2024-13".to_owned(), "invalid_path"),
        ("/my/photos/months/2024-00".to_owned(), "invalid_path"),
        ("/my/photos/months/2024-1".to_owned(), "invalid_path"),
        ("/my/photos/months/abcd-ef".to_owned(), "invalid_path"),
        ("/my/photos/months/2024-01?limit=0".to_owned(), "invalid_query"),
        ("/my/photos/months/2024-01?cursor=abc".to_owned(), "invalid_query"),
    ] {
        let answer = app.get_json(&owner.web, &path).await;
        assert_eq!(answer.0, 400, "{path}: {}", answer.1);
        assert_error(&answer, 400, code);
    }
    // The photo is still there and still found; a query without words finds nothing, on every list.
    assert_eq!(found(&app, &owner.web, "q=x").await, set(&["B0000001"]));
    for q in ["%20%20", "...%20!!", "%F0%9F%8E%89"] {
        assert_eq!(found(&app, &owner.web, &format!("q={q}")).await, set(&[]), "{q}");
        assert!(
            months(&app, &owner.web, &format!("q={q}")).await.is_empty(),
            "{q}"
        );
        let (_, page) = app
            .get_json(&owner.web, &format!("/my/photos/months/2024-01?q={q}"))
            .await;
        assert_eq!(page, json!({ "items": [] }), "{q}");
    }
    // Many words are fine: every one must match.
    let many = (0..40).map(|i| format!("w{i}x")).collect::<Vec<_>>().join("%20");
    assert_eq!(found(&app, &owner.web, &format!("q={many}")).await, set(&[]));
}

pub async fn other_users_photos_never_match(app: TestApp) {
    let owner = Owner::new(&app).await;
    let stranger = Owner::new(&app).await;
    owner
        .sync(
            &app,
            vec![photo(
                "U0000001",
                "2020-07-01T10:00:00Z",
                json!({ "title": "Secret", "keywords": ["Private"], "people": ["Eve"] }),
            )],
        )
        .await;
    stranger
        .sync(
            &app,
            vec![photo(
                "U0000002",
                "2021-07-01T10:00:00Z",
                json!({ "title": "Public" }),
            )],
        )
        .await;
    assert_eq!(found(&app, &owner.web, "q=secret").await, set(&["U0000001"]));
    for query in [
        "q=secret",
        "q=private",
        "q=eve",
        "q=u0000001",
        "keyword=Private",
        "person=Eve",
    ] {
        assert_eq!(found(&app, &stranger.web, query).await, set(&[]), "{query}");
    }
    let (_, months) = app.get_json(&stranger.web, "/my/photos/months").await;
    assert_eq!(
        months,
        json!({ "years": [{ "year": 2021, "count": 1, "months": [{ "month": 7, "key": "2021-07", "count": 1 }] }] })
    );
    for list in ["people", "keywords"] {
        let (_, tags) = app.get_json(&stranger.web, &format!("/my/photos/{list}")).await;
        assert_eq!(tags, json!({ "items": [] }), "{list}");
    }
    let (_, page) = app.get_json(&stranger.web, "/my/photos/months/2020-07").await;
    assert_eq!(page["items"].as_array().unwrap().len(), 0, "{page}");
}

/// The scrubber's counts as `{ "YYYY-MM": n }`.
async fn months(app: &TestApp, token: &str, query: &str) -> Vec<(String, u64)> {
    let (status, answer) = app.get_json(token, &format!("/my/photos/months?{query}")).await;
    assert_eq!(status, 200, "{answer}");
    let mut out = Vec::new();
    for year in answer["years"].as_array().unwrap() {
        let months = year["months"].as_array().unwrap();
        let sum: u64 = months.iter().map(|m| m["count"].as_u64().unwrap()).sum();
        assert_eq!(year["count"].as_u64().unwrap(), sum, "{year}");
        for m in months {
            out.push((
                m["key"].as_str().unwrap().to_owned(),
                m["count"].as_u64().unwrap(),
            ));
        }
    }
    out
}

fn counts(list: &[(&str, u64)]) -> Vec<(String, u64)> {
    list.iter().map(|(k, n)| ((*k).to_owned(), *n)).collect()
}

async fn tags(app: &TestApp, token: &str, list: &str) -> Vec<(String, u64)> {
    let (status, answer) = app.get_json(token, &format!("/my/photos/{list}")).await;
    assert_eq!(status, 200, "{answer}");
    answer["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["name"].as_str().unwrap().to_owned(),
                t["count"].as_u64().unwrap(),
            )
        })
        .collect()
}

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
    search_finds_by_each_field,
    search_pages_are_stable,
    filters_combine,
    bad_input_is_refused,
    other_users_photos_never_match,
    counts_and_search_follow_edits_and_deletes,
    month_jump_starts_at_the_month,
);
