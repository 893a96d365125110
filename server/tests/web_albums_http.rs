//! The album, people and keywords pages over HTTP against the real binary, on SQLite and PostgreSQL: the
//! album page's paging (its "More" links walk Photos' order, and take the JSON route's cursors), the HTML
//! 404 for an unknown album and for another user's, the 400 page for a bad cursor or query, the redirect
//! to sign in, and another user's empty pages. What the pages look like is tested in Chromium
//! (`web_albums.rs`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod album_library;
mod browser;
mod served;

use album_library::{LISBON, Library, OWNER};
use browser::{Browser, Db, Page};

/// The photo ids of a page's grid, in order.
fn tile_ids(page: &Page) -> Vec<String> {
    page.body
        .split("class=\"tile\" href=\"/photo/")
        .skip(1)
        .map(|rest| rest.split('"').next().unwrap().to_owned())
        .collect()
}

/// The page's `rel="next"` link, unescaped.
fn next_link(page: &Page) -> Option<String> {
    let start = page.body.find("rel=\"next\" href=\"")? + "rel=\"next\" href=\"".len();
    Some(unescape(page.body[start..].split('"').next().unwrap()))
}

/// An attribute's text with its character references (`&amp;`, `&#38;`, `&#x2f;`) read back.
fn unescape(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        let (reference, after) = rest[at + 1..].split_once(';').unwrap();
        out.push(match reference {
            "amp" => '&',
            "quot" => '"',
            "lt" => '<',
            "gt" => '>',
            _ => {
                let code = match reference
                    .strip_prefix("#x")
                    .or_else(|| reference.strip_prefix("#X"))
                {
                    Some(hex) => u32::from_str_radix(hex, 16).unwrap(),
                    None => reference.strip_prefix('#').unwrap().parse().unwrap(),
                };
                char::from_u32(code).unwrap()
            }
        });
        rest = after;
    }
    out.push_str(rest);
    out
}

/// Every photo of an album page, following its "More" links; the number of pages.
async fn walk(browser: &mut Browser, first: &str) -> (Vec<String>, usize) {
    let (mut ids, mut pages) = (Vec::new(), 0);
    let mut next = Some(first.to_owned());
    while let Some(path) = next {
        let page = browser.get(&path).await;
        assert_eq!(page.status, 200, "{path}: {}", page.body);
        ids.extend(tile_ids(&page));
        pages += 1;
        assert!(pages <= 10, "{first} does not end: {path}");
        next = next_link(&page);
    }
    (ids, pages)
}

fn assert_page(page: &Page, status: u16, says: &str) {
    assert_eq!(page.status, status, "{}", page.body);
    assert!(page.header("content-type").unwrap().starts_with("text/html"));
    assert!(page.body.contains(says), "{says:?} not in {}", page.body);
    // In the layout, signed in: the nav and the sign-out button.
    assert!(
        page.body.contains("href=\"/albums\"") && page.body.contains("Sign out"),
        "{}",
        page.body
    );
}

async fn album_pages_page_in_photos_order_and_refuse_bad_input(db: Db) {
    let library = Library::start(db, false).await;
    let lisbon = library.album("Lisbon");
    let mut browser = library.signed_in(OWNER).await;

    // The whole album on one page, in Photos' order (the hidden member left out), then in pages of one
    // and of three: the same photos, once each, in the same order.
    let page = browser.get(&format!("/albums/{lisbon}")).await;
    assert_page(&page, 200, "<h1>Lisbon</h1>");
    assert!(page.body.contains("4 photos"), "{}", page.body);
    assert_eq!(tile_ids(&page), library.ids(&LISBON));
    assert_eq!(next_link(&page), None);
    for (limit, pages) in [(1, 4), (3, 2)] {
        let (ids, walked) = walk(&mut browser, &format!("/albums/{lisbon}?limit={limit}")).await;
        assert_eq!((ids, walked), (library.ids(&LISBON), pages), "limit {limit}");
    }
    // The page takes the JSON route's cursor, and its fragment for endless scroll is the grid alone.
    let json = library.json(&format!("/my/photos/albums/{lisbon}?limit=2")).await;
    let cursor = json["nextCursor"].as_str().unwrap();
    let rest = browser
        .get(&format!("/albums/{lisbon}?limit=2&cursor={cursor}&partial=true"))
        .await;
    assert_eq!(rest.status, 200);
    assert_eq!(tile_ids(&rest), library.ids(&LISBON[2..]));
    assert!(
        !rest.body.contains("<html") && !rest.body.contains("<h1>"),
        "{}",
        rest.body
    );

    // Unknown albums are the 404 page.
    let long = format!("/albums/{}", "a".repeat(300));
    for path in [
        "/albums/no-such-album",
        "/albums/%00",
        "/albums/0123456789abcdef0123456789abcdef",
        &long,
    ] {
        assert_page(&browser.get(path).await, 404, "Page not found");
    }
    // The JSON route shares the page's lookup: a NUL byte is a 404 there too, not PostgreSQL's error.
    let answer = reqwest::Client::new()
        .get(format!("{}/my/photos/albums/%00", library.site.url))
        .bearer_auth(&library.web)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 404);
    // A cursor that is not one, one of another album, a bad page size or an unknown parameter: the 400 page.
    let best_of = library.album("Best of");
    for query in [
        "cursor=garbage".to_owned(),
        format!("cursor={cursor}x"),
        "limit=0".to_owned(),
        "limit=501".to_owned(),
        "limit=two".to_owned(),
        "sort=date".to_owned(),
        "partial=maybe".to_owned(),
    ] {
        let page = browser.get(&format!("/albums/{lisbon}?{query}")).await;
        assert_page(&page, 400, "That address is not right");
    }
    let foreign = browser.get(&format!("/albums/{best_of}?cursor={cursor}")).await;
    assert_page(&foreign, 400, "cursor");

    // Signed out, every page sends the browser to sign in and back.
    let mut stranger = library.site.browser();
    for path in [
        format!("/albums/{lisbon}?limit=2"),
        "/albums".to_owned(),
        "/people".to_owned(),
        "/keywords".to_owned(),
    ] {
        let page = stranger.get(&path).await;
        let next: String = url::form_urlencoded::byte_serialize(path.as_bytes()).collect();
        assert_eq!(page.status, 303, "{path}");
        assert_eq!(
            page.header("location"),
            Some(format!("/login?next={next}").as_str())
        );
    }
}

async fn another_users_albums_are_not_found(db: Db) {
    let library = Library::start(db, false).await;
    let mut alice = library.signed_in("alice").await;
    for title in ["Lisbon", "Nothing yet", "Travel"] {
        let path = format!("/albums/{}", library.album(title));
        assert_page(&alice.get(&path).await, 404, "Page not found");
        // Not even with a cursor the owner's page handed out.
        let owners = library
            .json(&format!("/my/photos/albums/{}?limit=1", library.album("Lisbon")))
            .await;
        let cursor = owners["nextCursor"].as_str().unwrap();
        assert_eq!(
            alice.get(&format!("{path}?limit=1&cursor={cursor}")).await.status,
            404
        );
    }
    // Her own pages: the empty states, none of the owner's names.
    for (path, says) in [
        ("/albums", "No albums yet — run the agent on your Mac"),
        ("/people", "No people yet"),
        ("/keywords", "No keywords yet"),
    ] {
        let page = alice.get(path).await;
        assert_page(&page, 200, says);
        for theirs in ["Lisbon", "Travel", "Bob", "Zo", "beach"] {
            assert!(!page.body.contains(theirs), "{path} shows {theirs}");
        }
    }
    // The owner sees them.
    let mut owner = library.signed_in(OWNER).await;
    let albums = owner.get("/albums").await;
    assert_page(&albums, 200, "Lisbon");
    assert!(!albums.body.contains("No albums yet"));
}

#[tokio::test(flavor = "multi_thread")]
async fn album_pages_page_in_photos_order_and_refuse_bad_input_sqlite() {
    album_pages_page_in_photos_order_and_refuse_bad_input(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn album_pages_page_in_photos_order_and_refuse_bad_input_postgres() {
    album_pages_page_in_photos_order_and_refuse_bad_input(Db::Postgres).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn another_users_albums_are_not_found_sqlite() {
    another_users_albums_are_not_found(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn another_users_albums_are_not_found_postgres() {
    another_users_albums_are_not_found(Db::Postgres).await;
}
