//! Text arrives in Unicode NFC whatever the sender did (issue 13, item 6): an agent of an older version, or
//! another client, may send the decomposed forms macOS 10.15 libraries hold. Over HTTP against the real router,
//! on {SQLite, PostgreSQL} × {local directory, SeaweedFS}: what the web surface gives back is composed, and the
//! same item sent composed afterwards is unchanged.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod app;

use app::{Backends, TestApp, item};
use serde_json::json;
use server::catalog::Scope;

const LIB: &str = "Catalina-Library";

/// `Val d'Isère`, `Frítest`, `Água`, `José`, `Zoë` decomposed, as Photos 5 stored such names.
const KEYWORD_NFD: &str = "Val d'Ise\u{300}re";
const TITLE_NFD: &str = "Fri\u{301}test";
const FILE_NFD: &str = "Fri\u{301}test.jpg";
const CAPTION_NFD: &str = "A\u{301}gua fresca";
const PERSON_NFD: &str = "Jose\u{301}";
const ALBUM_NFD: &str = "Zoe\u{308}'s trip";

fn nfd_item() -> serde_json::Value {
    let mut item = item("NFC00001", 10, None);
    item["title"] = TITLE_NFD.into();
    item["caption"] = CAPTION_NFD.into();
    item["originalFilename"] = FILE_NFD.into();
    item["keywords"] = json!([KEYWORD_NFD, "beach"]);
    item["people"] = json!([PERSON_NFD]);
    item
}

pub async fn decomposed_sync_text_is_stored_composed(app: TestApp) {
    let (user, client) = app.user_with_token(Scope::Client).await;
    let web = app.token(&user, Scope::Web).await;
    let (status, answer) = app
        .post_json(
            &client,
            "/client/iphoto/sync",
            &json!({ "libraryId": LIB, "items": [nfd_item()] }),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["results"][0]["outcome"], "created", "{answer}");
    let albums = json!({ "libraryId": LIB, "albums": [
        { "id": "A1", "title": ALBUM_NFD, "kind": "album", "members": ["NFC00001/L0/001"] }
    ]});
    let (status, answer) = app.post_json(&client, "/client/iphoto/albums", &albums).await;
    assert_eq!((status, &answer["created"]), (200, &json!(1)), "{answer}");

    let (status, page) = app.get_json(&web, "/my/photos/").await;
    assert_eq!(status, 200, "{page}");
    let id = page["items"][0]["id"].as_str().unwrap().to_owned();
    let (status, photo) = app.get_json(&web, &format!("/my/photos/{id}")).await;
    assert_eq!(status, 200, "{photo}");
    assert_eq!(photo["title"], "Fr\u{ed}test", "{photo}");
    assert_eq!(photo["originalFilename"], "Fr\u{ed}test.jpg", "{photo}");
    assert_eq!(photo["caption"], "\u{c1}gua fresca", "{photo}");
    assert_eq!(photo["people"], json!(["Jos\u{e9}"]), "{photo}");
    let mut keywords: Vec<String> = serde_json::from_value(photo["keywords"].clone()).unwrap();
    keywords.sort();
    assert_eq!(keywords, ["Val d'Is\u{e8}re", "beach"], "{photo}");
    // Identity and type text are kept exactly as sent.
    assert_eq!(photo["localIdentifier"], "NFC00001/L0/001", "{photo}");
    assert_eq!(photo["uti"], "public.heic", "{photo}");

    let (status, albums) = app.get_json(&web, "/my/photos/albums").await;
    assert_eq!(status, 200, "{albums}");
    assert_eq!(albums["albums"][0]["title"], "Zo\u{eb}'s trip", "{albums}");

    // A newer agent sends the same item composed: nothing changed, the version does not move.
    let mut composed = nfd_item();
    for field in ["title", "caption", "originalFilename"] {
        let text: String =
            unicode_normalization::UnicodeNormalization::nfc(composed[field].as_str().unwrap()).collect();
        composed[field] = text.into();
    }
    composed["keywords"] = json!(["Val d'Is\u{e8}re", "beach"]);
    composed["people"] = json!(["Jos\u{e9}"]);
    let (status, again) = app
        .post_json(
            &client,
            "/client/iphoto/sync",
            &json!({ "libraryId": LIB, "items": [composed] }),
        )
        .await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["results"][0]["outcome"], "unchanged", "{again}");
}

matrix!(decomposed_sync_text_is_stored_composed);
