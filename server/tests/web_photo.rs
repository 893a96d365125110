//! The photo page, `GET /photo/{photoId}` (issue 14), against the real binary: in Debian's headless Chromium
//! (the preview painted, the arrows walking the timeline's order and Escape going back, a real H.264 video
//! and a Live Photo's motion playing, the info panel, nothing fetched elsewhere, no console error; screenshots
//! under `target/tmp/web_browser/<test>/`), and over plain HTTP (404 pages for ids that are malformed,
//! unknown or another user's, and the redirect to sign in).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod browser;
mod photo_page;
mod served;

use std::time::Duration;

use browser::{Db, Site, assert_clean, click, output, scrolls_sideways, sign_in_with};
use harness::fantoccini::Locator;
use harness::fantoccini::actions::{InputSource as _, KeyAction, KeyActions};
use harness::fantoccini::key::Key;
use harness::{Browser, Page};
use photo_page::{BEACH_KEYWORDS, BEACH_PEOPLE, PASSWORD, library, unfinished};

const WAIT: Duration = Duration::from_secs(20);

/// Presses and releases `key` on whatever has the focus.
async fn press(page: &Page, key: Key) {
    let value: char = key.into();
    let actions = KeyActions::new("keyboard".to_owned())
        .then(KeyAction::Down { value })
        .then(KeyAction::Up { value });
    page.client.perform_actions(actions).await.unwrap();
}

/// Waits until the window shows `path`, loaded.
async fn wait_at(page: &Page, path: &str) {
    let script = format!("return location.pathname === {path:?} && document.readyState === 'complete'");
    page.wait_for(&script, WAIT)
        .await
        .unwrap_or_else(|e| panic!("not at {path}: {e}"));
}

/// The page's still, once painted: its natural width.
async fn painted_width(page: &Page) -> u64 {
    page.wait_for(
        "const i = document.querySelector('.stage img.still'); \
         return i && i.complete && i.naturalWidth > 0 ? i.naturalWidth : null",
        WAIT,
    )
    .await
    .unwrap()
    .as_u64()
    .unwrap()
}

async fn text(page: &Page, selector: &str) -> String {
    page.client
        .find(Locator::Css(selector))
        .await
        .unwrap_or_else(|e| panic!("{selector}: {e}"))
        .text()
        .await
        .unwrap()
}

/// The `href` attributes (as written) of the links under `selector`.
async fn hrefs(page: &Page, selector: &str) -> Vec<String> {
    let found = page
        .client
        .execute(
            "return [...document.querySelectorAll(arguments[0])].map(a => a.getAttribute('href'))",
            vec![selector.into()],
        )
        .await
        .unwrap();
    serde_json::from_value(found).unwrap()
}

fn query_value(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_photo_opens_walks_the_timeline_with_the_keys_and_plays_videos() {
    let library = library().await;
    let site = &library.site;
    let shots = output("a_photo_opens_walks_the_timeline_with_the_keys_and_plays_videos");
    let chromium = Browser::start().await.unwrap();
    let page = chromium.page(1280, 900).await.unwrap();

    // Signed out, the photo's address goes through the sign-in form and comes back.
    let beach = library.id("beach");
    page.client
        .goto(&format!("{}/photo/{beach}", site.url))
        .await
        .unwrap();
    wait_at(&page, "/login").await;
    sign_in_with(&page, "admin", PASSWORD).await;
    wait_at(&page, &format!("/photo/{beach}")).await;

    // The preview is painted: 1600 px wide, the original's size (a preview is never upscaled), not the
    // 512-px thumbnail.
    assert_eq!(painted_width(&page).await, 1600);
    assert!(
        page.client
            .find_all(Locator::Css(".stage .note"))
            .await
            .unwrap()
            .is_empty(),
        "no 'being made' note once the preview exists"
    );
    // The info panel: the photo's own clock and zone, sizes, file name, coordinates, text, tags, album.
    let info = text(&page, "aside.info").await;
    for expected in [
        "Evening swim",
        "Sunday 14 July 2024, 18:30:00",
        "Europe/Paris (UTC+02:00)",
        "1600 × 1200 pixels",
        "IMG_0042.JPG",
        "43.69512, 7.26543",
        "The last light on the bay.",
        "Summer & friends",
        "Download original",
    ] {
        assert!(info.contains(expected), "{expected:?} not in the panel:\n{info}");
    }
    let keywords: Vec<String> = BEACH_KEYWORDS
        .iter()
        .map(|k| format!("/?keyword={}", query_value(k)))
        .collect();
    assert_eq!(hrefs(&page, "ul.keywords a").await, keywords);
    let people: Vec<String> = BEACH_PEOPLE
        .iter()
        .map(|p| format!("/?person={}", query_value(p)))
        .collect();
    assert_eq!(hrefs(&page, "ul.people a").await, people);
    assert_eq!(
        hrefs(&page, "ul.in-albums a").await,
        vec![format!("/albums/{}", library.album_id)]
    );
    assert_eq!(
        hrefs(&page, "a.download").await,
        vec![format!("/media/{beach}/original")]
    );
    let time = page
        .client
        .execute(
            "return document.querySelector('aside.info time').getAttribute('datetime')",
            Vec::new(),
        )
        .await
        .unwrap();
    assert_eq!(time, "2024-07-14T18:30:00+02:00");
    let shot = page.screenshot(&shots, "photo").await.unwrap();
    assert!(std::fs::metadata(&shot).unwrap().len() > 20_000, "{shot:?}");

    // → walks down the timeline to its end, ← back up, each step the next id of the synced order.
    let order = &library.order;
    assert_eq!(&order[0], beach);
    assert!(
        page.client
            .find_all(Locator::Css("a[rel=prev]"))
            .await
            .unwrap()
            .is_empty(),
        "the newest photo has no previous"
    );
    for id in &order[1..] {
        press(&page, Key::Right).await;
        wait_at(&page, &format!("/photo/{id}")).await;
        if *id == library.id("clip") {
            // A real H.264 video plays from the media route (Range answered), muted.
            let video = page
                .client
                .execute(
                    "const v = document.querySelector('.stage video.movie'); \
                     v.muted = true; v.play(); \
                     return [v.getAttribute('src'), v.getAttribute('preload'), v.controls]",
                    Vec::new(),
                )
                .await
                .unwrap();
            assert_eq!(
                video,
                serde_json::json!([format!("/media/{id}/video"), "metadata", true])
            );
            page.wait_for(
                "const v = document.querySelector('video.movie'); return v.readyState >= 2 && v.currentTime > 0",
                WAIT,
            )
            .await
            .unwrap();
            page.screenshot(&shots, "video").await.unwrap();
            page.client
                .execute("document.querySelector('video.movie').pause()", Vec::new())
                .await
                .unwrap();
            assert!(text(&page, "aside.info").await.contains("Video, 0:02"));
        }
        if *id == library.id("live") {
            // The Live Photo: its still painted, its motion played by its button, muted, inline.
            painted_width(&page).await;
            click(&page, "button.live-play").await;
            let live = page
                .wait_for(
                    "const v = document.querySelector('video.live'); \
                     return !v.hidden && v.readyState >= 2 && v.muted && v.playsInline ? v.currentSrc : null",
                    WAIT,
                )
                .await
                .unwrap();
            assert!(
                live.as_str().unwrap().ends_with(&format!("/media/{id}/video")),
                "{live}"
            );
            page.screenshot(&shots, "live").await.unwrap();
            let info = text(&page, "aside.info").await;
            assert!(
                info.contains("Asia/Tokyo (UTC+09:00)") && info.contains("Live Photo"),
                "{info}"
            );
        }
    }
    assert!(
        page.client
            .find_all(Locator::Css("a[rel=next]"))
            .await
            .unwrap()
            .is_empty(),
        "the oldest photo has no next"
    );
    // The oldest has no derivative at all: a placeholder says so, no image.
    assert!(
        text(&page, ".stage .placeholder")
            .await
            .contains("No preview yet")
    );
    assert!(
        page.client
            .find_all(Locator::Css(".stage img"))
            .await
            .unwrap()
            .is_empty()
    );
    for id in order[..order.len() - 1].iter().rev() {
        press(&page, Key::Left).await;
        wait_at(&page, &format!("/photo/{id}")).await;
    }
    assert_eq!(painted_width(&page).await, 1600);

    // Escape goes back to the timeline.
    press(&page, Key::Escape).await;
    wait_at(&page, "/").await;
    assert_clean(&page, &site.server).await;
    page.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_photo_without_its_preview_shows_its_thumbnail_or_a_placeholder() {
    let (site, soon, bare) = unfinished().await;
    let shots = output("a_photo_without_its_preview_shows_its_thumbnail_or_a_placeholder");
    let chromium = Browser::start().await.unwrap();
    let page = chromium.page(390, 844).await.unwrap();
    page.client.goto(&format!("{}/login", site.url)).await.unwrap();
    sign_in_with(&page, "admin", PASSWORD).await;
    wait_at(&page, "/").await;

    // The preview is not made yet: the thumbnail (512 px) with a visible note, never a broken image.
    page.client
        .goto(&format!("{}/photo/{soon}", site.url))
        .await
        .unwrap();
    assert_eq!(painted_width(&page).await, 512);
    let note = page.client.find(Locator::Css(".stage .note")).await.unwrap();
    assert!(note.is_displayed().await.unwrap());
    assert!(note.text().await.unwrap().contains("Preview being made"));
    // At phone width the page does not scroll sideways.
    assert!(
        !scrolls_sideways(&page).await,
        "the page scrolls sideways at phone width"
    );
    page.screenshot(&shots, "thumbnail-only-phone").await.unwrap();

    // No derivative at all: the placeholder, and the next link leads there.
    click(&page, "a[rel=next]").await;
    wait_at(&page, &format!("/photo/{bare}")).await;
    let placeholder = page
        .client
        .find(Locator::Css(".stage .placeholder"))
        .await
        .unwrap();
    assert!(placeholder.is_displayed().await.unwrap());
    assert!(placeholder.text().await.unwrap().contains("No preview yet"));
    assert!(
        text(&page, "aside.info")
            .await
            .contains("The original is not on the server yet")
    );
    page.screenshot(&shots, "no-derivative-phone").await.unwrap();
    assert_clean(&page, &site.server).await;
    page.close().await.unwrap();
}

/// Over HTTP, on both catalogs: signed out → 303 to sign in; malformed, unknown and another user's ids →
/// the HTML 404 page; the page itself links its neighbours and its script without JS inline.
async fn the_page_answers_404_for_what_is_not_yours_and_redirects_when_signed_out(db: Db) {
    let site = Site::start(db, PASSWORD).await;
    let set = site.passwd("admin", PASSWORD);
    assert!(set.status.success(), "{set:?}");
    let client = site.server.client_token().unwrap();
    let items = serde_json::json!({ "libraryId": "L", "items": [
        { "localIdentifier": "old/L0/001", "kind": "photo", "livePhoto": false, "width": 10, "height": 10,
          "takenAt": "2020-01-01T00:00:00Z", "modifiedAt": "2020-01-01T00:00:00Z", "favorite": false,
          "hidden": false, "trashed": false, "originalFilename": "old.jpg", "uti": "public.jpeg",
          "edited": false, "resources": [] },
        { "localIdentifier": "new/L0/001", "kind": "video", "livePhoto": false, "width": 10, "height": 10,
          "takenAt": "2021-01-01T00:00:00Z", "modifiedAt": "2021-01-01T00:00:00Z", "favorite": false,
          "hidden": false, "trashed": false, "originalFilename": "new.mov", "uti": "com.apple.quicktime-movie",
          "edited": false, "resources": [] },
    ]});
    let synced = reqwest::Client::new()
        .post(format!("{}/client/iphoto/sync", site.url))
        .bearer_auth(&client)
        .json(&items)
        .send()
        .await
        .unwrap();
    assert_eq!(synced.status(), 200);
    let list = site
        .get_json("/my/photos/", &site.server.token("web").unwrap())
        .await;
    let new = list["items"][0]["id"].as_str().unwrap().to_owned();
    let old = list["items"][1]["id"].as_str().unwrap().to_owned();

    // Signed out: to the form, which comes back here.
    let mut anonymous = site.browser();
    let page = anonymous.get(&format!("/photo/{new}")).await;
    assert_eq!(page.status, 303);
    assert_eq!(
        page.header("location"),
        Some(format!("/login?next=%2Fphoto%2F{new}").as_str())
    );

    let mut admin = site.browser();
    assert_eq!(admin.sign_in("admin", PASSWORD, &[]).await.status, 303);
    let page = admin.get(&format!("/photo/{new}")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.header("content-security-policy")
            .unwrap()
            .contains("media-src 'self'")
    );
    for expected in [
        format!("<a rel=\"next\" href=\"/photo/{old}\">"),
        format!(
            "<video class=\"movie\" controls preload=\"metadata\" playsinline src=\"/media/{new}/video\">"
        ),
        "<script src=\"/static/photo.".to_owned(),
    ] {
        assert!(page.body.contains(&expected), "{expected} not in\n{}", page.body);
    }
    assert!(!page.body.contains("rel=\"prev\""), "the newest has no previous");
    let older = admin.get(&format!("/photo/{old}")).await;
    assert!(
        older
            .body
            .contains(&format!("<a rel=\"prev\" href=\"/photo/{new}\">")),
        "{}",
        older.body
    );
    assert!(!older.body.contains("rel=\"next\""), "the oldest has no next");

    // Malformed and unknown ids: the HTML 404 page, not the JSON envelope.
    let unknown = "0".repeat(32);
    let upper = new.to_uppercase();
    for path in [
        format!("/photo/{unknown}"),
        format!("/photo/{upper}"),
        "/photo/nope".to_owned(),
        "/photo/%2E%2E%2F%2E%2E%2Fetc".to_owned(),
        "/photo/%FF%FE".to_owned(),
        format!("/photo/{new}x"),
    ] {
        let page = admin.get(&path).await;
        assert_eq!(page.status, 404, "{path}");
        assert_eq!(
            page.header("content-type"),
            Some("text/html; charset=utf-8"),
            "{path}"
        );
        assert!(page.body.contains("Page not found"), "{path}: {}", page.body);
    }
    // Another user's photo is not found either, and says nothing of it.
    let mut alice = site.browser();
    assert_eq!(alice.sign_in("alice", PASSWORD, &[]).await.status, 303);
    let page = alice.get(&format!("/photo/{new}")).await;
    assert_eq!(page.status, 404);
    assert!(!page.body.contains("new.mov"), "{}", page.body);
    let page = alice.get(&format!("/media/{new}/video")).await;
    assert_eq!(page.status, 404);
}

mod sqlite {
    #[tokio::test(flavor = "multi_thread")]
    async fn the_page_answers_404_for_what_is_not_yours_and_redirects_when_signed_out() {
        crate::the_page_answers_404_for_what_is_not_yours_and_redirects_when_signed_out(crate::Db::Sqlite)
            .await;
    }
}

mod postgres {
    #[tokio::test(flavor = "multi_thread")]
    async fn the_page_answers_404_for_what_is_not_yours_and_redirects_when_signed_out() {
        crate::the_page_answers_404_for_what_is_not_yours_and_redirects_when_signed_out(crate::Db::Postgres)
            .await;
    }
}
