//! The albums, one album, people and keywords pages in Debian's headless Chromium against the real binary,
//! on a library synced with real JPEGs whose thumbnails the server's worker made: the folder tree nests as
//! Photos does, an album lists its members in Photos' order (and its endless scroll keeps that order), and
//! each person and keyword leads to a timeline of exactly their photos. Each test saves screenshots under
//! `target/tmp/web_browser/<test>/` and fails on any console error or request off the server.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod album_library;
mod browser;
mod served;

use std::collections::BTreeSet;
use std::time::Duration;

use album_library::{LISBON, Library, OWNER, PASSWORD};
use browser::{Db, assert_clean, click, output, scrolls_sideways, sign_in_with};
use harness::Page;
use harness::fantoccini::Locator;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(20);

/// A Chromium window signed in as the library's owner, on `path`.
async fn open(library: &Library, chromium: &harness::Browser, path: &str) -> Page {
    let page = chromium.page(1280, 900).await.unwrap();
    let next: String = url::form_urlencoded::byte_serialize(path.as_bytes()).collect();
    page.client
        .goto(&format!("{}/login?next={next}", library.site.url))
        .await
        .unwrap();
    sign_in_with(&page, OWNER, PASSWORD).await;
    let script = format!("return location.pathname + location.search === {path:?} || null");
    page.wait_for(&script, WAIT).await.unwrap();
    wait_for_images(&page).await;
    page
}

/// Waits until every image of the page has loaded and decoded (none broken).
async fn wait_for_images(page: &Page) {
    page.wait_for(
        "return document.readyState === 'complete' \
           && [...document.images].every(i => i.complete && i.naturalWidth > 0) || null",
        WAIT,
    )
    .await
    .unwrap();
}

async fn run(page: &Page, script: &str) -> Value {
    page.client.execute(script, Vec::new()).await.unwrap()
}

/// The nav entry marked as the current page.
async fn current_nav(page: &Page) -> Value {
    run(
        page,
        "return document.querySelector('nav.main a[aria-current=page]')?.textContent ?? null",
    )
    .await
}

/// At phone width the page fits its window (no sideways scroll); a screenshot of it.
async fn fits_a_phone(page: &Page, shots: &std::path::Path, name: &str) {
    page.client.set_window_size(390, 844).await.unwrap();
    assert!(
        !scrolls_sideways(page).await,
        "{name} scrolls sideways at phone width"
    );
    page.screenshot(shots, name).await.unwrap();
    page.client.set_window_size(1280, 900).await.unwrap();
}

/// The photo ids of the grid's tiles, in DOM order.
async fn tile_ids(page: &Page) -> Vec<String> {
    let ids = run(
        page,
        "return [...document.querySelectorAll('#feed a.tile')].map(a => a.dataset.id)",
    )
    .await;
    serde_json::from_value(ids).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_albums_page_nests_folders_in_photos_order() {
    let library = Library::start(Db::Sqlite, true).await;
    let shots = output("the_albums_page_nests_folders_in_photos_order");
    let chromium = harness::Browser::start().await.unwrap();
    let page = open(&library, &chromium, "/albums").await;

    // Each album with the folders it is inside, outermost first, from the DOM: album Lisbon inside folder
    // Portugal inside folder Travel, in the order of the Mac's sidebar.
    let albums = run(
        &page,
        "return [...document.querySelectorAll('li.album > a')].map(a => {
           const folders = [];
           for (let li = a.closest('li.folder'); li; li = li.parentElement.closest('li.folder')) {
             const details = li.querySelector(':scope > details');
             folders.unshift([details.querySelector(':scope > summary').textContent, details.open]);
           }
           const img = a.querySelector('img');
           return { title: a.querySelector('.title').textContent, href: a.getAttribute('href'),
                    count: a.querySelector('.n').textContent, folders, visible: a.offsetParent !== null,
                    cover: img && img.getAttribute('src'), placeholder: !!a.querySelector('.cover') };
         })",
    )
    .await;
    let album = |title: &str, count: &str, folders: &[&str], cover: Option<&str>| {
        json!({
            "title": title, "href": format!("/albums/{}", library.album(title)), "count": count,
            "folders": folders.iter().map(|f| json!([f, true])).collect::<Vec<_>>(), "visible": true,
            "cover": cover.map(|uuid| format!("/media/{}/thumbnail", library.id(uuid))),
            "placeholder": cover.is_none(),
        })
    };
    assert_eq!(
        albums,
        json!([
            album("Porto", "1 photo", &["Travel", "Portugal"], Some("P3")),
            album("Lisbon", "4 photos", &["Travel", "Portugal"], Some("P5")),
            // Its first member was never uploaded: no thumbnail, a placeholder box rather than a broken image.
            album("Road trip", "2 photos", &["Travel"], None),
            album("Best of", "2 photos", &[], Some("P8")),
            album("Nothing yet", "0 photos", &[], None),
        ])
    );
    // The folders in order, the empty one saying so.
    let folders = run(
        &page,
        "return [...document.querySelectorAll('li.folder')].map(li =>
           [li.id, li.querySelector('summary').textContent, li.querySelector(':scope > details > ul > li.none')?.textContent ?? null])",
    )
    .await;
    let folder =
        |title: &str, empty: Option<&str>| json!([format!("folder-{}", library.album(title)), title, empty]);
    assert_eq!(
        folders,
        json!([
            folder("Travel", None),
            folder("Portugal", None),
            folder("Empty", Some("Empty folder"))
        ])
    );
    assert_eq!(current_nav(&page).await, "Albums");
    page.screenshot(&shots, "albums").await.unwrap();
    fits_a_phone(&page, &shots, "albums-phone").await;
    assert_clean(&page, &library.site.server).await;
    page.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn an_album_shows_its_members_in_photos_order() {
    let library = Library::start(Db::Sqlite, true).await;
    let shots = output("an_album_shows_its_members_in_photos_order");
    let chromium = harness::Browser::start().await.unwrap();
    let page = open(&library, &chromium, "/albums").await;
    let lisbon = library.album("Lisbon");

    // From the tree to the album: its folders, title, count and photos, in Photos' order (not by date).
    click(&page, &format!("li.album a[href='/albums/{lisbon}']")).await;
    page.wait_for(
        "return document.querySelector('h1')?.textContent === 'Lisbon' || null",
        WAIT,
    )
    .await
    .unwrap();
    wait_for_images(&page).await;
    let crumbs = run(
        &page,
        "return [...document.querySelectorAll('nav.crumbs a')].map(a => a.textContent)",
    )
    .await;
    assert_eq!(crumbs, json!(["Albums", "Travel", "Portugal"]));
    assert_eq!(
        run(&page, "return document.querySelector('main p.n').textContent").await,
        "4 photos"
    );
    assert_eq!(tile_ids(&page).await, library.ids(&LISBON));
    let images = run(
        &page,
        "return [...document.querySelectorAll('#feed a.tile img')].map(i => [i.getAttribute('src'), i.alt])",
    )
    .await;
    let expected: Vec<Value> = LISBON
        .iter()
        .map(|uuid| {
            json!([
                format!("/media/{}/thumbnail", library.id(uuid)),
                format!("{uuid}.JPG")
            ])
        })
        .collect();
    assert_eq!(images, json!(expected));
    assert_eq!(current_nav(&page).await, "Albums");
    page.screenshot(&shots, "album").await.unwrap();
    fits_a_phone(&page, &shots, "album-phone").await;

    // A folder of the breadcrumb leads to its place in the tree.
    page.client
        .find(Locator::LinkText("Portugal"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let landed = page
        .wait_for(
            "const f = location.pathname === '/albums' && document.getElementById(location.hash.slice(1));
             return f ? f.querySelector('summary').textContent : null",
            WAIT,
        )
        .await
        .unwrap();
    assert_eq!(landed, "Portugal");

    // In pages of three the "More" link's next page joins the grid as the reader nears it, in order.
    page.client
        .goto(&format!("{}/albums/{lisbon}?limit=3", library.site.url))
        .await
        .unwrap();
    page.wait_for(
        "return document.querySelectorAll('#feed a.tile').length === 4 && !document.querySelector('a.more') || null",
        WAIT,
    )
    .await
    .unwrap();
    wait_for_images(&page).await;
    assert_eq!(tile_ids(&page).await, library.ids(&LISBON));
    page.screenshot(&shots, "album-scrolled").await.unwrap();

    // An empty album says what to do.
    page.client
        .goto(&format!(
            "{}/albums/{}",
            library.site.url,
            library.album("Nothing yet")
        ))
        .await
        .unwrap();
    let empty = page
        .wait_for(
            "return document.querySelector('p.empty')?.textContent ?? null",
            WAIT,
        )
        .await
        .unwrap();
    assert!(
        empty.as_str().unwrap().contains("Add photos to it in Photos"),
        "{empty}"
    );
    page.screenshot(&shots, "album-empty").await.unwrap();
    assert_clean(&page, &library.site.server).await;
    page.close().await.unwrap();
}

/// The names of a people or keywords page: name, count, link.
async fn names(page: &Page) -> Value {
    run(
        page,
        "return [...document.querySelectorAll('ul.tags a')].map(a =>
           [a.querySelector('.name').textContent, a.querySelector('.n').textContent, a.getAttribute('href')])",
    )
    .await
}

/// Follows the link named `name` and returns the timeline's photos (uuids).
async fn follow(page: &Page, library: &Library, name: &str) -> BTreeSet<String> {
    page.client
        .find(Locator::XPath(&format!(
            "//ul[@class='tags']//a[span[@class='name']={name:?}]"
        )))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    page.wait_for(
        "return location.pathname === '/' && document.readyState === 'complete' || null",
        WAIT,
    )
    .await
    .unwrap();
    wait_for_images(page).await;
    tile_ids(page).await.iter().map(|id| library.uuid(id)).collect()
}

fn set(uuids: &[&str]) -> BTreeSet<String> {
    uuids.iter().map(|u| (*u).to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn people_and_keywords_lead_to_exactly_their_photos() {
    let library = Library::start(Db::Sqlite, true).await;
    let shots = output("people_and_keywords_lead_to_exactly_their_photos");
    let chromium = harness::Browser::start().await.unwrap();
    let page = open(&library, &chromium, "/people").await;

    // Most photos first; the hidden photo counts for no one.
    assert_eq!(
        names(&page).await,
        json!([
            ["Bob", "3 photos", "/?person=Bob"],
            ["Zoë", "2 photos", "/?person=Zo%C3%AB"]
        ])
    );
    assert_eq!(current_nav(&page).await, "People");
    page.screenshot(&shots, "people").await.unwrap();
    fits_a_phone(&page, &shots, "people-phone").await;
    assert_eq!(follow(&page, &library, "Zoë").await, set(&["P1", "P2"]));
    page.screenshot(&shots, "person-timeline").await.unwrap();

    page.client
        .goto(&format!("{}/keywords", library.site.url))
        .await
        .unwrap();
    page.wait_for("return document.querySelector('ul.tags') || null", WAIT)
        .await
        .unwrap();
    assert_eq!(
        names(&page).await,
        json!([
            ["beach", "3 photos", "/?keyword=beach"],
            ["sea & sun", "2 photos", "/?keyword=sea+%26+sun"],
            ["city", "1 photo", "/?keyword=city"],
        ])
    );
    assert_eq!(current_nav(&page).await, "Keywords");
    page.screenshot(&shots, "keywords").await.unwrap();
    assert_eq!(follow(&page, &library, "sea & sun").await, set(&["P2", "P3"]));
    page.screenshot(&shots, "keyword-timeline").await.unwrap();
    page.client.back().await.unwrap();
    page.wait_for("return document.querySelector('ul.tags') || null", WAIT)
        .await
        .unwrap();
    // P4 was never uploaded: its tile is a placeholder, and it is still one of beach's photos.
    assert_eq!(follow(&page, &library, "beach").await, set(&["P1", "P2", "P4"]));
    assert_clean(&page, &library.site.server).await;
    page.close().await.unwrap();
}
