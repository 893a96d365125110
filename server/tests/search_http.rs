//! Search and filters over HTTP, against {SQLite, PostgreSQL} × {local directory, SeaweedFS}: each searchable
//! field, prefixes, case and accents, several words, paging, filters that combine, bad input as 400s and
//! per-user isolation (the scrubber's and the name lists' too). `search_engines.rs` feeds the same photos to
//! both databases and compares what they find; `scrubber_http.rs` covers the month counts and the jump.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod app;
mod gallery;
mod owner;

use app::{Backends, TestApp, assert_error};
use gallery::{found, months, photo, set, uuid, walk};
use owner::Owner;
use serde_json::{Value, json};

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

matrix!(
    search_finds_by_each_field,
    search_pages_are_stable,
    filters_combine,
    bad_input_is_refused,
    other_users_photos_never_match,
);
