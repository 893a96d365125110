//! The timeline (`GET /`), its scrubber (`GET /months`) and the media route in real Chromium against the
//! real binary: photos in order, grouped by day; scrolling loads the next keyset page and joins a day split
//! across two pages; the scrubber jumps to a month; search finds by keyword and by person; the favourites
//! filter; real thumbnails (made by the server's in-process worker) painted; and, at the HTTP level on both
//! catalogs, the bad inputs and another user's photos. Screenshots go to `target/tmp/web_browser/<test>/`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod browser;
mod served;

use std::time::Duration;

use browser::{Db, Site, assert_clean, click, output, scrolls_sideways, sign_in_with, submit};
use chrono::{DateTime, FixedOffset, TimeDelta};
use harness::fantoccini::Locator;
use harness::{Browser, Page};
use serde_json::{Value, json};

const PASSWORD: &str = "correct horse battery staple";
/// Two and a half pages of 100, three photos a day: the first page ends inside a day.
const PHOTOS: usize = 251;

/// Photo `i` of the library: three a day, twelve days apart, from January 2019.
fn taken(i: usize) -> DateTime<FixedOffset> {
    let start = DateTime::parse_from_rfc3339("2019-01-05T09:00:00+01:00").unwrap();
    start + TimeDelta::days(12 * (i / 3) as i64) + TimeDelta::hours((i % 3) as i64)
}

fn name(i: usize) -> String {
    format!("IMG_{i:04}.JPG")
}

fn beach(i: usize) -> bool {
    i.is_multiple_of(10)
}

fn zoe(i: usize) -> bool {
    i.is_multiple_of(25)
}

fn favourite(i: usize) -> bool {
    i.is_multiple_of(7)
}

fn item(i: usize) -> Value {
    let keywords: Vec<&str> = if beach(i) { vec!["Beach"] } else { vec![] };
    let people: Vec<&str> = if zoe(i) { vec!["Zoë Müller"] } else { vec![] };
    json!({
        "localIdentifier": format!("{:08X}-0000-0000-0000-000000000000/L0/001", i),
        "kind": "photo", "livePhoto": false, "width": 4032, "height": 3024,
        "takenAt": taken(i).to_rfc3339(), "modifiedAt": "2024-05-02T10:00:00Z",
        "favorite": favourite(i), "hidden": false, "trashed": false,
        "originalFilename": name(i), "uti": "public.jpeg", "edited": false,
        "keywords": keywords, "people": people,
        "resources": [{ "type": "original", "size": 10, "available": true }]
    })
}

/// The file names the timeline must show for the photos `keep` keeps: newest first.
fn expected(keep: impl Fn(usize) -> bool) -> Vec<String> {
    (0..PHOTOS).rev().filter(|&i| keep(i)).map(name).collect()
}

/// A site whose alice synced the library.
async fn library(db: Db) -> Site {
    let site = Site::start(db, PASSWORD).await;
    let token = site.token("client");
    let items: Vec<Value> = (0..PHOTOS).map(item).collect();
    let synced = reqwest::Client::new()
        .post(format!("{}/client/iphoto/sync", site.url))
        .bearer_auth(&token)
        .json(&json!({ "libraryId": "L", "items": items }))
        .send()
        .await
        .unwrap();
    assert_eq!(synced.status(), 200, "{}", synced.text().await.unwrap());
    site
}

/// The file names of the tiles on the page, in order (the alt text of the image or of its placeholder).
async fn tiles(page: &Page) -> Vec<String> {
    let names = page
        .client
        .execute(
            "return [...document.querySelectorAll('#feed .tile')].map(t => \
                t.querySelector('img')?.alt ?? t.querySelector('.placeholder')?.textContent)",
            Vec::new(),
        )
        .await
        .unwrap();
    serde_json::from_value(names).unwrap()
}

/// Waits until the page at `path_and_query` shows its first tile, then its tiles.
async fn shown(page: &Page) -> Vec<String> {
    page.wait_for(
        "return document.readyState === 'complete' && document.querySelector('#feed') ? true : null",
        Duration::from_secs(15),
    )
    .await
    .unwrap();
    tiles(page).await
}

async fn search(page: &Page, words: &str) -> Vec<String> {
    let input = page.client.find(Locator::Css("input[name=q]")).await.unwrap();
    input.clear().await.unwrap();
    input.send_keys(words).await.unwrap();
    submit(page, "form.filters").await;
    page.wait_for(
        &format!(
            "return new URLSearchParams(location.search).get('q') === {} || null",
            json!(words)
        ),
        Duration::from_secs(15),
    )
    .await
    .unwrap();
    shown(page).await
}

#[tokio::test(flavor = "multi_thread")]
async fn the_timeline_scrolls_jumps_searches_and_filters() {
    let site = library(Db::Sqlite).await;
    let shots = output("the_timeline_scrolls_jumps_searches_and_filters");
    let chromium = Browser::start().await.unwrap();
    let page = chromium.page(1280, 900).await.unwrap();
    page.client.goto(&format!("{}/", site.url)).await.unwrap();
    sign_in_with(&page, "alice", PASSWORD).await;
    page.wait_for(
        "return location.pathname === '/' && document.querySelector('#feed .tile') ? true : null",
        Duration::from_secs(15),
    )
    .await
    .unwrap();

    // The first page: the 100 newest, in order.
    let all = expected(|_| true);
    assert_eq!(tiles(&page).await, all[..100]);
    page.screenshot(&shots, "timeline").await.unwrap();

    // Scrolling down loads the next pages until the end; the day the first page ended in is one day.
    for _ in 0..20 {
        let before = tiles(&page).await.len();
        if before == PHOTOS {
            break;
        }
        page.client
            .execute("window.scrollTo(0, document.body.scrollHeight)", Vec::new())
            .await
            .unwrap();
        page.wait_for(
            &format!("return document.querySelectorAll('#feed .tile').length > {before} || null"),
            Duration::from_secs(15),
        )
        .await
        .unwrap();
    }
    assert_eq!(tiles(&page).await, all, "the whole library, in order, once");
    let more = page
        .client
        .execute("return document.querySelectorAll('a.more').length", Vec::new())
        .await
        .unwrap();
    assert_eq!(more, 0, "the last page has no link onwards");
    let days: Vec<String> = serde_json::from_value(
        page.client
            .execute(
                "return [...document.querySelectorAll('section.day')].map(d => d.dataset.day)",
                Vec::new(),
            )
            .await
            .unwrap(),
    )
    .unwrap();
    let mut unique = days.clone();
    unique.dedup();
    assert_eq!(days.len(), unique.len(), "a day shown twice: {days:?}");
    assert_eq!(days.len(), PHOTOS.div_ceil(3));
    page.screenshot(&shots, "scrolled").await.unwrap();

    // The scrubber: every month with its count; a month two years back is one click away.
    page.client.goto(&format!("{}/", site.url)).await.unwrap();
    let target = taken(40).format("%Y-%m").to_string();
    let in_target: Vec<usize> = (0..PHOTOS)
        .filter(|&i| taken(i).format("%Y-%m").to_string() == target)
        .collect();
    let link = page
        .wait_for(
            &format!(
                "return document.querySelector('#scrubber a[data-month=\"{target}\"]')?.textContent || null"
            ),
            Duration::from_secs(15),
        )
        .await
        .unwrap();
    assert!(
        link.as_str().unwrap().ends_with(&format!(" {}", in_target.len())),
        "{link} for {in_target:?}"
    );
    page.screenshot(&shots, "scrubber").await.unwrap();
    click(&page, &format!("#scrubber a[data-month=\"{target}\"]")).await;
    page.wait_for(
        &format!("return location.search.includes('month={target}') || null"),
        Duration::from_secs(15),
    )
    .await
    .unwrap();
    let newest_of_month = in_target.iter().max().unwrap();
    let jumped = shown(&page).await;
    assert_eq!(jumped[0], name(*newest_of_month), "{jumped:?}");
    let onwards = expected(|i| i <= *newest_of_month);
    assert_eq!(jumped, onwards[..onwards.len().min(100)]);

    // Search by keyword and by person (without accents, in lower case).
    assert_eq!(search(&page, "beach").await, expected(beach));
    page.screenshot(&shots, "search-keyword").await.unwrap();
    assert_eq!(search(&page, "zoe").await, expected(zoe));

    // The favourites filter, through the form's checkbox.
    page.client.goto(&format!("{}/", site.url)).await.unwrap();
    click(&page, "form.filters summary").await;
    click(&page, "input[name=favorite]").await;
    submit(&page, "form.filters").await;
    page.wait_for(
        "return location.search.includes('favorite=true') || null",
        Duration::from_secs(15),
    )
    .await
    .unwrap();
    assert_eq!(shown(&page).await, expected(favourite));
    page.screenshot(&shots, "favourites").await.unwrap();

    // A phone: no sideways scroll.
    page.client.set_window_size(390, 844).await.unwrap();
    assert!(
        !scrolls_sideways(&page).await,
        "the timeline scrolls sideways at phone width"
    );
    page.screenshot(&shots, "phone").await.unwrap();
    assert_clean(&page, &site.server).await;
    page.close().await.unwrap();
}

/// A child process killed when the test ends, panics included.
struct Worker(std::process::Child);

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// A JPEG made by ffmpeg from its test pattern, hue-turned by `turn` degrees.
fn jpeg(dir: &std::path::Path, turn: usize) -> Vec<u8> {
    let path = dir.join(format!("pattern-{turn}.jpg"));
    let made = std::process::Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=s=1200x900:d=1",
        ])
        .args(["-vf", &format!("hue=h={turn}"), "-frames:v", "1"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");
    std::fs::read(&path).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn real_thumbnails_paint_through_the_media_route() {
    let site = Site::start(Db::Sqlite, PASSWORD).await;
    let dir = tempfile::tempdir().unwrap();
    // Alice's own worker (a worker token sees its user's jobs only), as `iphoto-server worker` runs it.
    let token_file = dir.path().join("worker.token");
    std::fs::write(&token_file, site.token("worker")).unwrap();
    let _worker = Worker(
        std::process::Command::new(served::BIN)
            .args(["worker", "thumbnail", "--server", &site.url, "--token-file"])
            .arg(&token_file)
            .env("IPHOTO_STORAGE_LOCAL_PATH", site.data().join("blobs"))
            .env_remove("IPHOTO_STORAGE_BACKEND")
            .env_remove("IPHOTO_PRESIGN_SECRET")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let token = site.token("client");
    let http = reqwest::Client::new();
    const SHOWN: usize = 8;
    for i in 0..SHOWN {
        let bytes = jpeg(dir.path(), i * 45);
        let mut photo = item(i);
        photo["resources"][0]["size"] = json!(bytes.len());
        photo["resources"][0]["sha256"] = json!(sha256_hex(&bytes));
        let synced = http
            .post(format!("{}/client/iphoto/sync", site.url))
            .bearer_auth(&token)
            .json(&json!({ "libraryId": "L", "items": [photo] }))
            .send()
            .await
            .unwrap();
        assert_eq!(synced.status(), 200);
        let id = photo["localIdentifier"].as_str().unwrap().replace('/', "%2F");
        let uploaded = http
            .post(format!(
                "{}/client/iphoto/upload/{id}?resource=original",
                site.url
            ))
            .bearer_auth(&token)
            .header("x-content-sha256", sha256_hex(&bytes))
            .body(bytes)
            .send()
            .await
            .unwrap();
        assert_eq!(uploaded.status(), 200, "{}", uploaded.text().await.unwrap());
    }
    // The worker makes each thumbnail and preview; the web JSON says when.
    let web = site.token("web");
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let page: Value = site.get_json("/my/photos/", &web).await;
        let items = page["items"].as_array().unwrap();
        if items.len() == SHOWN && items.iter().all(|p| p["previewPending"] == false) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no thumbnails after 120 s: {page}\n{}",
            site.server.log_text()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    let chromium = Browser::start().await.unwrap();
    let page = chromium.page(1280, 800).await.unwrap();
    page.client.goto(&format!("{}/", site.url)).await.unwrap();
    sign_in_with(&page, "alice", PASSWORD).await;
    let painted = page
        .wait_for(
            &format!(
                "const i = [...document.querySelectorAll('#feed .tile img')]; \
                 return i.length === {SHOWN} && i.every(x => x.complete && x.naturalWidth > 0) \
                   ? i.map(x => x.naturalWidth + 'x' + x.naturalHeight) : null"
            ),
            Duration::from_secs(20),
        )
        .await
        .unwrap();
    // 512 px on the long edge, from 1200×900 originals.
    assert!(
        painted.as_array().unwrap().iter().all(|s| s == "512x384"),
        "{painted}"
    );
    assert_eq!(tiles(&page).await, expected(|i| i < SHOWN));
    page.screenshot(
        &output("real_thumbnails_paint_through_the_media_route"),
        "timeline",
    )
    .await
    .unwrap();
    assert_clean(&page, &site.server).await;
    page.close().await.unwrap();
}

/// The bad inputs and other users' photos, at the HTTP level, on one catalog.
async fn refuses_what_it_should(db: Db) {
    let site = library(db).await;
    let mut alice = site.browser();
    let signed = alice.sign_in("alice", PASSWORD, &[]).await;
    assert_eq!(signed.status, 303, "{}", signed.body);

    // Bad parameters: a 400 page in the pages' style, naming the parameter; an empty field is no filter.
    for (query, names) in [
        ("from=yesterday", "from"),
        ("month=2024-13", "month"),
        ("kind=cat", "kind"),
        ("cursor=not-a-cursor", "cursor"),
        ("favorite=perhaps", "favorite"),
        ("sort=name", "sort"),
    ] {
        let page = alice.get(&format!("/?{query}")).await;
        assert_eq!(page.status, 400, "{query}: {}", page.body);
        assert!(page.body.contains("<h1>"), "{query}: {}", page.body);
        assert!(page.body.contains(names), "{query}: {}", page.body);
    }
    let page = alice.get("/?q=&from=&kind=").await;
    assert_eq!(page.status, 200);
    assert_eq!(page.body.matches("class=\"tile\"").count(), 100);

    // The next page's link carries the filters and a cursor bound to them.
    let page = alice.get("/?keyword=Beach").await;
    assert_eq!(page.body.matches("class=\"tile\"").count(), expected(beach).len());
    assert!(!page.body.contains("rel=\"next\""), "one page only");
    let first = alice.get("/").await;
    let next = first
        .body
        .split("class=\"more\" rel=\"next\" href=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .replace("&#38;", "&");
    let partial = alice.get(&format!("{next}&partial=true")).await;
    assert_eq!(partial.status, 200);
    assert!(!partial.body.contains("<html"), "a fragment, not a page");
    assert_eq!(partial.body.matches("class=\"tile\"").count(), 100);
    // The same cursor under another filter is refused.
    let cursor = next.split("cursor=").nth(1).unwrap();
    let moved = alice.get(&format!("/?favorite=true&cursor={cursor}")).await;
    assert_eq!(moved.status, 400, "{}", moved.body);

    // The scrubber page and its fragment.
    let months = alice.get("/months").await;
    assert_eq!(months.status, 200);
    assert!(
        months.body.contains("href=\"/?month=2019-01\""),
        "{}",
        months.body
    );
    let fragment = alice.get("/months?partial=true&keyword=Beach").await;
    assert!(!fragment.body.contains("<html"));
    assert!(
        fragment.body.contains("keyword=Beach&#38;month="),
        "{}",
        fragment.body
    );
    assert_eq!(alice.get("/months?partial=maybe").await.status, 400);
    // Counts are kept between loads, but a sync that adds a month shows at once.
    assert!(!months.body.contains("data-month=\"2030-06\""));
    let mut newer = item(PHOTOS);
    newer["takenAt"] = json!("2030-06-01T12:00:00+00:00");
    let synced = reqwest::Client::new()
        .post(format!("{}/client/iphoto/sync", site.url))
        .bearer_auth(site.token("client"))
        .json(&json!({ "libraryId": "L", "items": [newer] }))
        .send()
        .await
        .unwrap();
    assert_eq!(synced.status(), 200);
    let months = alice.get("/months").await;
    assert!(months.body.contains("data-month=\"2030-06\""), "{}", months.body);

    // Media: an unknown photo, an unknown variant, a photo not yet stored: 404; signed out: to sign-in.
    let id = first
        .body
        .split("href=\"/photo/")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    assert_eq!(alice.get(&format!("/media/{id}/thumbnail")).await.status, 404);
    assert_eq!(alice.get(&format!("/media/{id}/poster")).await.status, 404);
    assert_eq!(alice.get("/media/nope/thumbnail").await.status, 404);
    // A NUL byte (which PostgreSQL refuses in text) is not an id: 404, never 500, on the pages and the API.
    assert_eq!(alice.get("/media/%00/thumbnail").await.status, 404);
    let web = site.token("web");
    for path in [
        "/my/photos/%00",
        "/my/photos/%00/history",
        "/my/photos/albums/%00",
    ] {
        let answer = reqwest::Client::new()
            .get(format!("{}{path}", site.url))
            .bearer_auth(&web)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 404, "{path}");
    }
    let mut stranger = site.browser();
    let out = stranger.get(&format!("/media/{id}/original")).await;
    assert_eq!(out.status, 303);
    assert!(out.header("location").unwrap().starts_with("/login?next="));
    assert_eq!(stranger.get("/months").await.status, 303);

    // Another user sees none of alice's photos, and her photo's media is a 404 to him.
    assert!(site.cli(&["user", "add", "bob"], None).status.success());
    assert!(site.passwd("bob", PASSWORD).status.success());
    let mut bob = site.browser();
    bob.sign_in("bob", PASSWORD, &[]).await;
    let his = bob.get("/").await;
    assert_eq!(his.status, 200);
    assert!(his.body.contains("run the agent"), "{}", his.body);
    assert_eq!(his.body.matches("class=\"tile\"").count(), 0);
    assert_eq!(bob.get(&format!("/media/{id}/original")).await.status, 404);
    let searched = bob.get("/?q=beach").await;
    assert!(searched.body.contains("No photos match"), "{}", searched.body);
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_refuses_what_it_should() {
    refuses_what_it_should(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_refuses_what_it_should() {
    refuses_what_it_should(Db::Postgres).await;
}
