//! The web surface and the blob route over HTTP, against {SQLite, PostgreSQL} × {local directory, SeaweedFS}:
//! keyset paging that walks every photo once while photos are added, each filter, tamper-checked cursors,
//! per-user isolation (404), and presigned URLs fetched by a plain HTTP client before and after expiry.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod app;
mod owner;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use app::{Backends, TestApp, assert_error};
use owner::{LIB, Owner, taken};
use serde_json::{Value, json};

/// Every item of every page of `path` (which must not carry a cursor), checking the order on the way.
async fn walk(app: &TestApp, token: &str, path: &str) -> Vec<Value> {
    let mut all: Vec<Value> = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let sep = if path.contains('?') { '&' } else { '?' };
        let url = match &cursor {
            Some(c) => format!("{path}{sep}cursor={c}"),
            None => path.to_owned(),
        };
        let (status, page) = app.get_json(token, &url).await;
        assert_eq!(status, 200, "{url}: {page}");
        all.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return all,
        }
    }
}

fn ids(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|i| i["localIdentifier"].as_str().unwrap().to_owned())
        .collect()
}

fn uuid_set(uuids: &[&str]) -> HashSet<String> {
    uuids.iter().map(|u| format!("{u}/L0/001")).collect()
}

fn key(item: &Value) -> (i64, String) {
    let t = chrono::DateTime::parse_from_rfc3339(item["takenAt"].as_str().unwrap()).unwrap();
    (t.timestamp_millis(), item["id"].as_str().unwrap().to_owned())
}

pub async fn paging_walks_every_photo_once_while_photos_are_added(app: TestApp) {
    let owner = Owner::new(&app).await;
    // 230 photos over 46 distinct times: five share each time, so ties are broken by id.
    let items: Vec<Value> = (0..230)
        .map(|i| {
            taken(
                &format!("P{i:07}"),
                &format!("2023-01-{:02}T10:{:02}:00Z", 1 + i / 46 % 28, i % 46),
            )
        })
        .collect();
    owner.sync(&app, items).await;
    let before: HashSet<String> = (0..230).map(|i| format!("P{i:07}/L0/001")).collect();

    let mut seen: Vec<Value> = Vec::new();
    let mut cursor: Option<String> = None;
    let mut round = 0;
    loop {
        let url = match &cursor {
            Some(c) => format!("/my/photos/?limit=37&cursor={c}"),
            None => "/my/photos/?limit=37".to_owned(),
        };
        let (status, page) = app.get_json(&owner.web, &url).await;
        assert_eq!(status, 200, "{page}");
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 37);
        seen.extend(items.iter().cloned());
        // New photos arrive between pages: newer than everything, older than everything, and at the
        // very time of the page's last item.
        round += 1;
        let last = items.last().map(|i| i["takenAt"].as_str().unwrap().to_owned());
        let mut added = vec![
            taken(&format!("N{round:07}"), "2030-01-01T00:00:00Z"),
            taken(&format!("O{round:07}"), "2001-01-01T00:00:00Z"),
        ];
        if let Some(last) = last {
            added.push(taken(&format!("T{round:07}"), &last));
        }
        owner.sync(&app, added).await;
        match page["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    let walked = ids(&seen);
    let unique: HashSet<&String> = walked.iter().collect();
    assert_eq!(unique.len(), walked.len(), "no photo twice");
    for id in &before {
        assert!(unique.contains(id), "{id} was never listed");
    }
    let keys: Vec<(i64, String)> = seen.iter().map(key).collect();
    assert!(keys.windows(2).all(|w| w[0] > w[1]), "newest first, ties by id");
    // A full walk afterwards sees everything, once.
    let all = walk(&app, &owner.web, "/my/photos/?limit=500").await;
    assert_eq!(all.len(), 230 + 3 * round, "every photo, the added ones too");
}

pub async fn each_filter_selects_its_photos(app: TestApp) {
    let owner = Owner::new(&app).await;
    let mut video = taken("F0000001", "2024-03-01T12:00:00+01:00");
    video["kind"] = "video".into();
    let mut favorite = taken("F0000002", "2024-02-01T12:00:00Z");
    favorite["favorite"] = true.into();
    let mut hidden = taken("F0000003", "2024-01-15T12:00:00Z");
    hidden["hidden"] = true.into();
    let mut trashed = taken("F0000004", "2023-12-01T12:00:00Z");
    trashed["trashed"] = true.into();
    let plain = taken("F0000005", "2022-06-01T12:00:00Z");
    let gone = {
        let mut g = taken("F0000006", "2022-06-02T12:00:00Z");
        owner.sync(&app, vec![g.clone()]).await;
        g["deleted"] = true.into();
        g
    };
    owner
        .sync(&app, vec![video, favorite, hidden, trashed, plain, gone])
        .await;
    let albums = json!({ "libraryId": LIB, "albums": [
        { "id": "ALB1", "title": "Trip", "kind": "album", "members": ["F0000005/L0/001", "F0000001/L0/001", "F0000003/L0/001"] },
    ]});
    assert_eq!(
        app.post_json(&owner.client, "/client/iphoto/albums", &albums)
            .await
            .0,
        200
    );
    let (_, list) = app.get_json(&owner.web, "/my/photos/albums").await;
    let album_id = list["albums"][0]["id"].as_str().unwrap().to_owned();

    let check = |query: String, expected: Vec<&'static str>| {
        let app = &app;
        let web = owner.web.clone();
        async move {
            let got: HashSet<String> = ids(&walk(app, &web, &format!("/my/photos/?{query}")).await)
                .into_iter()
                .collect();
            assert_eq!(got, uuid_set(&expected), "{query}");
        }
    };
    check(String::new(), vec!["F0000001", "F0000002", "F0000005"]).await;
    check(
        "includeHidden=true".into(),
        vec!["F0000001", "F0000002", "F0000003", "F0000005"],
    )
    .await;
    check(
        "includeTrashed=true".into(),
        vec!["F0000001", "F0000002", "F0000004", "F0000005"],
    )
    .await;
    check(
        "includeHidden=true&includeTrashed=true".into(),
        vec!["F0000001", "F0000002", "F0000003", "F0000004", "F0000005"],
    )
    .await;
    check("kind=video".into(), vec!["F0000001"]).await;
    check("kind=photo".into(), vec!["F0000002", "F0000005"]).await;
    check("favorite=true".into(), vec!["F0000002"]).await;
    check("favorite=false".into(), vec!["F0000001", "F0000005"]).await;
    check("from=2024-01-01".into(), vec!["F0000001", "F0000002"]).await;
    check("to=2024-02-01T12:00:00Z".into(), vec!["F0000005"]).await;
    check(
        "from=2024-02-01T12:00:00Z&to=2024-03-01T12:00:00%2B01:00".into(),
        vec!["F0000002"],
    )
    .await;
    check(format!("album={album_id}"), vec!["F0000001", "F0000005"]).await;
    check(
        format!("album={album_id}&includeHidden=true&kind=photo"),
        vec!["F0000003", "F0000005"],
    )
    .await;

    // Bad filters are 400s naming the parameter.
    for query in [
        "kind=panorama",
        "from=yesterday",
        "to=2024-13-01",
        "favorite=maybe",
        "limit=0",
        "limit=501",
        "limit=-1",
        "sort=oldest",
    ] {
        let answer = app.get_json(&owner.web, &format!("/my/photos/?{query}")).await;
        assert_eq!(answer.0, 400, "{query}: {}", answer.1);
        assert!(answer.1["error"]["code"].is_string(), "{}", answer.1);
    }
    // The maximum page size is allowed.
    assert_eq!(app.get_json(&owner.web, "/my/photos/?limit=500").await.0, 200);
}

pub async fn cursors_are_tamper_checked(app: TestApp) {
    let owner = Owner::new(&app).await;
    let items = (0..5)
        .map(|i| taken(&format!("C{i:07}"), "2024-01-01T00:00:00Z"))
        .collect();
    owner.sync(&app, items).await;
    let (_, page) = app.get_json(&owner.web, "/my/photos/?limit=2").await;
    let cursor = page["nextCursor"].as_str().unwrap().to_owned();
    let (status, next) = app
        .get_json(&owner.web, &format!("/my/photos/?limit=2&cursor={cursor}"))
        .await;
    assert_eq!(status, 200, "{next}");

    let mut flipped = cursor.clone().into_bytes();
    flipped[3] = if flipped[3] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).unwrap();
    let truncated = cursor[..cursor.len() - 4].to_owned();
    for bad in [
        flipped,
        truncated,
        "x".into(),
        "%00%01".into(),
        "dHwxfGFiYw".into(),
    ] {
        assert_error(
            &app.get_json(&owner.web, &format!("/my/photos/?limit=2&cursor={bad}"))
                .await,
            400,
            "invalid_cursor",
        );
    }
    // A cursor belongs to its list: another filter or another user cannot use it.
    assert_error(
        &app.get_json(
            &owner.web,
            &format!("/my/photos/?limit=2&kind=photo&cursor={cursor}"),
        )
        .await,
        400,
        "invalid_cursor",
    );
    let stranger = Owner::new(&app).await;
    assert_error(
        &app.get_json(&stranger.web, &format!("/my/photos/?limit=2&cursor={cursor}"))
            .await,
        400,
        "invalid_cursor",
    );
}

pub async fn other_users_photos_albums_and_blobs_are_not_found(app: TestApp) {
    let owner = Owner::new(&app).await;
    let stored = owner
        .photo_with_original(&app, "E0000001", b"owner's bytes")
        .await;
    let albums = json!({ "libraryId": LIB, "albums": [
        { "id": "ALB1", "title": "Mine", "kind": "album", "members": ["E0000001/L0/001"] },
    ]});
    app.post_json(&owner.client, "/client/iphoto/albums", &albums)
        .await;
    let (_, mine) = app.get_json(&owner.web, "/my/photos/").await;
    let photo_id = mine["items"][0]["id"].as_str().unwrap().to_owned();
    let (_, my_albums) = app.get_json(&owner.web, "/my/photos/albums").await;
    let album_id = my_albums["albums"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(my_albums["albums"][0]["count"], 1);

    let stranger = Owner::new(&app).await;
    let (_, theirs) = app.get_json(&stranger.web, "/my/photos/").await;
    assert_eq!(theirs["items"], json!([]));
    let (_, their_albums) = app.get_json(&stranger.web, "/my/photos/albums").await;
    assert_eq!(their_albums["albums"], json!([]));
    assert_error(
        &app.get_json(&stranger.web, &format!("/my/photos/{photo_id}"))
            .await,
        404,
        "not_found",
    );
    assert_error(
        &app.get_json(&stranger.web, &format!("/my/photos/albums/{album_id}"))
            .await,
        404,
        "not_found",
    );
    assert!(
        walk(&app, &stranger.web, &format!("/my/photos/?album={album_id}"))
            .await
            .is_empty()
    );
    // Scopes: a client token cannot read the web surface.
    assert_error(
        &app.get_json(&owner.client, "/my/photos/").await,
        403,
        "wrong_scope",
    );

    // The owner's URL with the key changed to another object is refused; a presigned key that does not
    // exist is a 404.
    let (_, detail) = app.get_json(&owner.web, &format!("/my/photos/{photo_id}")).await;
    let url = detail["originalUrl"].as_str().unwrap().to_owned();
    let key = stored["key"].as_str().unwrap();
    let other_key = key.replace(owner.user.id.as_str(), stranger.user.id.as_str());
    let tampered = url.replacen(owner.user.id.as_str(), stranger.user.id.as_str(), 1);
    assert_ne!(tampered, url);
    assert_eq!(reqwest::get(&tampered).await.unwrap().status(), 403);
    let missing = app
        .store
        .presign_get(&storage::StorageKey::parse(other_key).unwrap(), None)
        .await
        .unwrap();
    assert_eq!(reqwest::get(missing.url.as_str()).await.unwrap().status(), 404);
}

fn key_of(stored: &Value) -> storage::StorageKey {
    storage::StorageKey::parse(stored["key"].as_str().unwrap()).unwrap()
}

pub async fn presigned_urls_serve_bytes_and_ranges_then_expire(app: TestApp) {
    let owner = Owner::new(&app).await;
    let bytes: Vec<u8> = (0..100_000u32).map(|i| (i % 253) as u8).collect();
    let stored = owner.photo_with_original(&app, "G0000001", &bytes).await;
    let (_, page) = app.get_json(&owner.web, "/my/photos/").await;
    let listed = &page["items"][0];
    assert_eq!(listed["sha256"], stored["sha256"]);
    assert!(listed.get("thumbnailUrl").is_none(), "no thumbnail yet: {listed}");
    let url = listed["originalUrl"].as_str().unwrap().to_owned();

    let plain = reqwest::Client::new();
    let whole = plain.get(&url).send().await.unwrap();
    assert_eq!(whole.status(), 200);
    let headers = whole.headers().clone();
    assert_eq!(whole.bytes().await.unwrap(), bytes);
    let part = plain
        .get(&url)
        .header("range", "bytes=10-19")
        .send()
        .await
        .unwrap();
    assert_eq!(part.status(), 206);
    assert_eq!(part.bytes().await.unwrap(), bytes[10..20]);

    if matches!(app.backends, Backends::SqliteLocal | Backends::PostgresLocal) {
        // The blob route's HTTP semantics.
        assert_eq!(headers["content-type"], "image/heic");
        assert!(headers["cache-control"].to_str().unwrap().starts_with("private"));
        assert_eq!(headers["accept-ranges"], "bytes");
        let etag = headers["etag"].to_str().unwrap().to_owned();
        let last_modified = headers["last-modified"].to_str().unwrap().to_owned();
        let tail = plain.get(&url).header("range", "bytes=-5").send().await.unwrap();
        assert_eq!(tail.status(), 206);
        assert_eq!(tail.headers()["content-range"], "bytes 99995-99999/100000");
        assert_eq!(tail.bytes().await.unwrap(), bytes[99_995..]);
        let past = plain
            .get(&url)
            .header("range", "bytes=100000-")
            .send()
            .await
            .unwrap();
        assert_eq!(past.status(), 416);
        assert_eq!(past.headers()["content-range"], "bytes */100000");
        let same = plain
            .get(&url)
            .header("if-none-match", &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(same.status(), 304);
        let since = plain
            .get(&url)
            .header("if-modified-since", &last_modified)
            .send()
            .await
            .unwrap();
        assert_eq!(since.status(), 304);
        let changed = plain
            .get(&url)
            .header("if-none-match", "\"other\"")
            .send()
            .await
            .unwrap();
        assert_eq!(changed.status(), 200);
        // If-Range: the current ETag or Last-Modified keeps the range; a stale validator (another tag, a
        // weak tag, another date) gets the whole body with 200, never a 206 of bytes the client cannot
        // splice into its copy.
        let weak = format!("W/{etag}");
        for (validator, expect_partial) in [
            (etag.as_str(), true),
            (last_modified.as_str(), true),
            ("\"stale\"", false),
            (weak.as_str(), false),
            ("Mon, 01 Jan 2001 00:00:00 GMT", false),
        ] {
            let answer = plain
                .get(&url)
                .header("range", "bytes=10-19")
                .header("if-range", validator)
                .send()
                .await
                .unwrap();
            if expect_partial {
                assert_eq!(answer.status(), 206, "If-Range {validator}");
                assert_eq!(answer.bytes().await.unwrap(), bytes[10..20]);
            } else {
                assert_eq!(answer.status(), 200, "If-Range {validator}");
                assert!(answer.headers().get("content-range").is_none());
                assert_eq!(answer.bytes().await.unwrap(), bytes, "If-Range {validator}");
            }
        }
        // The ETag is opaque (no inode-mtime-size of the file) and stable across requests.
        let opaque = etag.trim_matches('"');
        assert_eq!(opaque.len(), 32, "{etag}");
        assert!(opaque.bytes().all(|b| b.is_ascii_hexdigit()), "{etag}");
        let file = app.store.head(&key_of(&stored)).await.unwrap();
        let raw = file.etag.unwrap_or_default();
        assert!(
            !raw.is_empty() && !etag.contains(&raw),
            "{etag} shows the store's {raw}"
        );
        assert_eq!(
            plain.get(&url).send().await.unwrap().headers()["etag"],
            etag.as_str()
        );
        assert_eq!(headers["x-content-type-options"], "nosniff");
        // Tampered or unsigned: a JSON 403.
        let mut forged = url::Url::parse(&url).unwrap();
        let pairs: HashMap<String, String> = forged.query_pairs().into_owned().collect();
        forged
            .query_pairs_mut()
            .clear()
            .append_pair("exp", &(pairs["exp"].parse::<i64>().unwrap() + 60).to_string())
            .append_pair("sig", &pairs["sig"]);
        let refused = plain.get(forged.as_str()).send().await.unwrap();
        assert_eq!(refused.status(), 403);
        let body: Value = refused.json().await.unwrap();
        assert_eq!(body["error"]["code"], "invalid_signature");
        let unsigned = url.split('?').next().unwrap();
        assert_eq!(plain.get(unsigned).send().await.unwrap().status(), 403);
    }

    // Short-lived: a URL signed for a second stops working.
    let key = storage::StorageKey::parse(stored["key"].as_str().unwrap()).unwrap();
    let short = app
        .store
        .presign_get(&key, Some(Duration::from_secs(1)))
        .await
        .unwrap();
    assert_eq!(plain.get(short.url.as_str()).send().await.unwrap().status(), 200);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let expired = plain.get(short.url.as_str()).send().await.unwrap();
    assert_eq!(expired.status(), 403);
    if matches!(app.backends, Backends::SqliteLocal | Backends::PostgresLocal) {
        let body: Value = expired.json().await.unwrap();
        assert_eq!(body["error"]["code"], "expired");
    }
}

pub async fn albums_and_photo_details(app: TestApp) {
    let owner = Owner::new(&app).await;
    let items: Vec<Value> = (0..5)
        .map(|i| taken(&format!("H{i:07}"), &format!("2024-05-0{}T10:00:00+02:00", i + 1)))
        .collect();
    owner.sync(&app, items).await;
    owner.upload(&app, "H0000003", b"10 bytes!!").await;
    let albums = json!({ "libraryId": LIB, "albums": [
        { "id": "F1", "title": "Folder", "kind": "folder" },
        { "id": "A1", "title": "Ordered", "kind": "album", "parentId": "F1",
          "members": ["H0000003/L0/001", "H0000000/L0/001", "H0000004/L0/001", "H0000001/L0/001"] },
        { "id": "A2", "title": "Empty", "kind": "album" },
    ]});
    assert_eq!(
        app.post_json(&owner.client, "/client/iphoto/albums", &albums)
            .await
            .0,
        200
    );
    let (status, list) = app.get_json(&owner.web, "/my/photos/albums").await;
    assert_eq!(status, 200, "{list}");
    let list = list["albums"].as_array().unwrap();
    assert_eq!(list.len(), 3);
    let folder = &list[0];
    let ordered = &list[1];
    assert_eq!(folder["kind"], "folder");
    assert_eq!(ordered["title"], "Ordered");
    assert_eq!(ordered["parentId"], folder["id"]);
    assert_eq!(ordered["count"], 4);
    assert_eq!(ordered["cover"]["localIdentifier"], "H0000003/L0/001");
    assert!(
        ordered["cover"]["originalUrl"].is_string(),
        "the cover is stored: {ordered}"
    );
    assert_eq!(list[2]["count"], 0);
    assert!(list[2].get("cover").is_none());

    // Album order, paged.
    let album_id = ordered["id"].as_str().unwrap();
    let walked = walk(&app, &owner.web, &format!("/my/photos/albums/{album_id}?limit=3")).await;
    assert_eq!(
        ids(&walked),
        [
            "H0000003/L0/001",
            "H0000000/L0/001",
            "H0000004/L0/001",
            "H0000001/L0/001"
        ]
    );
    let (_, first) = app
        .get_json(&owner.web, &format!("/my/photos/albums/{album_id}?limit=3"))
        .await;
    assert_eq!(first["album"]["count"], 4);
    let cursor = first["nextCursor"].as_str().unwrap();
    assert_error(
        &app.get_json(&owner.web, &format!("/my/photos/?cursor={cursor}"))
            .await,
        400,
        "invalid_cursor",
    );
    assert_error(
        &app.get_json(&owner.web, "/my/photos/albums/no-such-album").await,
        404,
        "not_found",
    );

    // One photo, everything about it.
    let photo_id = walked[0]["id"].as_str().unwrap();
    let (status, photo) = app.get_json(&owner.web, &format!("/my/photos/{photo_id}")).await;
    assert_eq!(status, 200, "{photo}");
    assert_eq!(photo["localIdentifier"], "H0000003/L0/001");
    assert_eq!(photo["takenAt"], "2024-05-04T10:00:00+02:00");
    assert_eq!(photo["uti"], "public.heic");
    assert_eq!(photo["keywords"], json!(["beach"]));
    assert_eq!(photo["people"], json!(["Ann"]));
    assert_eq!(photo["albums"], json!([album_id]));
    assert_eq!(photo["resources"][0]["type"], "original");
    assert_eq!(photo["resources"][0]["state"], "stored");
    assert!(photo["resources"][0]["url"].is_string());
    assert_eq!(photo["enrichments"], json!([]));
    assert_error(
        &app.get_json(&owner.web, "/my/photos/0000").await,
        404,
        "not_found",
    );
}

matrix!(
    paging_walks_every_photo_once_while_photos_are_added,
    each_filter_selects_its_photos,
    cursors_are_tamper_checked,
    other_users_photos_albums_and_blobs_are_not_found,
    presigned_urls_serve_bytes_and_ranges_then_expire,
    albums_and_photo_details,
);
