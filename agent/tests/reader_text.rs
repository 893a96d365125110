//! Text leaves the reader in Unicode NFC (issue 13, item 6): titles, captions, keywords, people, album titles and
//! file names, on every fixture. Photos 5 (macOS 10.15) stored some of them decomposed; the raw queries here show
//! that the fixture really holds NFD, so the reader is what composes them.

// Helpers outside #[test] fns are not covered by allow-unwrap-in-tests (rust-clippy #13981).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use iphoto_agent::library::PhotosLibrary;
use unicode_normalization::{UnicodeNormalization as _, is_nfc};

use common::{VERSIONS, fixture, raw, strings};

/// `Val d'Isère` as Photos 5 stored it: `e` followed by U+0300 COMBINING GRAVE ACCENT.
const VAL_DISERE_NFD: &str = "Val d'Ise\u{300}re";
/// `Frítest.jpg` as Photos 5 stored it: `i` followed by U+0301 COMBINING ACUTE ACCENT.
const FRITEST_NFD: &str = "Fri\u{301}test.jpg";

#[tokio::test]
async fn the_photos5_fixture_stores_decomposed_names_and_the_reader_composes_them() {
    let path = fixture("Test-10.15.7");
    let pool = raw(&path).await;
    let keywords = strings(&pool, "SELECT ZTITLE FROM ZKEYWORD").await;
    assert!(keywords.iter().any(|k| k == VAL_DISERE_NFD), "{keywords:?}");
    let names = strings(
        &pool,
        "SELECT ZORIGINALFILENAME FROM ZADDITIONALASSETATTRIBUTES WHERE ZORIGINALFILENAME LIKE 'Fr%'",
    )
    .await;
    assert_eq!(names.len(), 4);
    assert!(names.iter().all(|n| n == FRITEST_NFD), "{names:?}");

    let assets = PhotosLibrary::open(&path).await.unwrap().assets().await.unwrap();
    let val_disere: String = VAL_DISERE_NFD.nfc().collect();
    assert_eq!(val_disere, "Val d'Is\u{e8}re");
    let tagged: Vec<&str> = assets
        .iter()
        .filter(|a| a.item.keywords.contains(&val_disere))
        .map(|a| a.uuid.as_str())
        .collect();
    assert_eq!(
        tagged,
        [
            "7F74DD34-5920-4DA3-B284-479887A34F66",
            "52083079-73D5-4921-AC1B-FE76F279133F"
        ]
    );
    let fritest: Vec<&str> = assets
        .iter()
        .filter(|a| a.item.original_filename == "Fr\u{ed}test.jpg")
        .map(|a| a.uuid.as_str())
        .collect();
    assert_eq!(fritest.len(), 4, "{fritest:?}");
    // The file on disk keeps Photos' own name: only the metadata is normalised.
    let asset = assets.iter().find(|a| a.uuid == fritest[0]).unwrap();
    assert!(
        asset.files[0].path.ends_with(format!("{}.jpeg", asset.uuid)),
        "{:?}",
        asset.files[0].path
    );
}

#[tokio::test]
async fn every_text_field_is_nfc_on_every_fixture() {
    for version in VERSIONS {
        let library = PhotosLibrary::open(&fixture(version)).await.unwrap();
        let mut texts = 0;
        for asset in library.assets().await.unwrap() {
            let item = &asset.item;
            let fields = [&item.original_filename]
                .into_iter()
                .chain(&item.title)
                .chain(&item.caption)
                .chain(&item.keywords)
                .chain(&item.people);
            for text in fields {
                assert!(is_nfc(text), "{version} {}: {text:?}", asset.uuid);
                texts += 1;
            }
        }
        for album in library.albums().await.unwrap() {
            assert!(is_nfc(&album.title), "{version} {}: {:?}", album.id, album.title);
            texts += 1;
        }
        assert!(texts > 50, "{version}: {texts} texts checked");
    }
}
