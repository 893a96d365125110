//! The same photos on SQLite and on PostgreSQL give the same search results, the same month counts and the
//! same people and keywords, and those results are what `catalog::search` defines: a few hundred photos
//! made from a seeded random vocabulary (mixed case, accents, ligatures, file names, words that are
//! prefixes of others), synced over HTTP to one server per database, then a few hundred queries and filter
//! combinations asked of both and of the reference model.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[allow(unused_macros)]
mod app;
mod owner;

use std::collections::{BTreeMap, BTreeSet};

use app::{Backends, TestApp};
use owner::{Owner, taken};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom as _;
use rand::{Rng as _, SeedableRng as _};
use serde_json::{Value, json};
use server::catalog::search::{SearchTerms, document};

const VOCABULARY: &[&str] = &[
    "Beach",
    "beaches",
    "BEACHY",
    "Café",
    "cafe",
    "Crème",
    "brûlée",
    "Zoë",
    "Zoe",
    "Müller",
    "Mueller",
    "Straße",
    "strasse",
    "Ångström",
    "ﬁsh",
    "São",
    "Paulo",
    "Łódź",
    "Øresund",
    "Æsir",
    "naïve",
    "Ann",
    "Anna",
    "Annabel",
    "sun",
    "Sunset",
    "sunrise",
    "IMG_0001",
    "IMG_0012",
    "DSC-42",
    "东京",
    "東京タワー",
    "x²",
    "rock'n'roll",
    "e-mail",
    "C++",
    "2024",
    "20240501",
];

/// One generated photo and what the reference model needs of it.
struct Made {
    uuid: String,
    taken_ms: i64,
    hidden: bool,
    trashed: bool,
    favorite: bool,
    text: String,
}

fn phrase(rng: &mut StdRng, max: usize) -> String {
    let n = rng.random_range(1..=max);
    (0..n)
        .map(|_| *VOCABULARY.choose(rng).unwrap())
        .collect::<Vec<_>>()
        .join(" ")
}

fn make(rng: &mut StdRng, i: usize) -> (Value, Made) {
    let uuid = format!("R{i:07}");
    // Distinct times (ties would be broken by ids, which differ between the two servers).
    let taken_ms = 1_600_000_000_000 + i64::try_from(i).unwrap() * 7_777_777;
    let at = chrono::DateTime::from_timestamp_millis(taken_ms)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mut v = taken(&uuid, &at);
    let title = rng.random_bool(0.6).then(|| phrase(rng, 3));
    let caption = rng.random_bool(0.4).then(|| phrase(rng, 5));
    let keywords: Vec<String> = (0..rng.random_range(0..3)).map(|_| phrase(rng, 2)).collect();
    let people: Vec<String> = (0..rng.random_range(0..3)).map(|_| phrase(rng, 2)).collect();
    let filename = format!("{}.HEIC", VOCABULARY.choose(rng).unwrap());
    let (hidden, trashed, favorite) = (rng.random_bool(0.1), rng.random_bool(0.1), rng.random_bool(0.3));
    v["title"] = json!(title);
    v["caption"] = json!(caption);
    v["keywords"] = json!(keywords);
    v["people"] = json!(people);
    v["originalFilename"] = filename.clone().into();
    v["hidden"] = hidden.into();
    v["trashed"] = trashed.into();
    v["favorite"] = favorite.into();
    let text = document(
        title.as_deref(),
        caption.as_deref(),
        &keywords,
        &people,
        &filename,
    );
    let made = Made {
        uuid,
        taken_ms,
        hidden,
        trashed,
        favorite,
        text,
    };
    (v, made)
}

/// A query a person might type: one to three words or prefixes of words of the vocabulary.
fn query(rng: &mut StdRng) -> String {
    let n = rng.random_range(1..=3);
    (0..n)
        .map(|_| {
            let word: Vec<char> = VOCABULARY.choose(rng).unwrap().chars().collect();
            let len = rng.random_range(1..=word.len());
            let cut: String = word[..len].iter().collect();
            if rng.random_bool(0.3) {
                cut.to_uppercase()
            } else {
                cut
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

async fn all(app: &TestApp, token: &str, query: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cursor = String::new();
    loop {
        let (status, page) = app
            .get_json(token, &format!("/my/photos/?limit=50&{query}{cursor}"))
            .await;
        assert_eq!(status, 200, "{query}: {page}");
        out.extend(page["items"].as_array().unwrap().iter().map(|i| {
            i["localIdentifier"]
                .as_str()
                .unwrap()
                .trim_end_matches("/L0/001")
                .to_owned()
        }));
        match page["nextCursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => return out,
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn both_databases_find_what_the_definition_says() {
    let mut rng = StdRng::seed_from_u64(14);
    let made: Vec<(Value, Made)> = (0..300).map(|i| make(&mut rng, i)).collect();
    let items: Vec<Value> = made.iter().map(|(v, _)| v.clone()).collect();
    let sqlite = TestApp::start(Backends::SqliteLocal).await;
    let postgres = TestApp::start(Backends::PostgresLocal).await;
    let (a, b) = (Owner::new(&sqlite).await, Owner::new(&postgres).await);
    a.sync(&sqlite, items.clone()).await;
    b.sync(&postgres, items).await;

    let mut newest_first: Vec<&Made> = made.iter().map(|(_, m)| m).collect();
    newest_first.sort_by_key(|m| std::cmp::Reverse(m.taken_ms));
    let mut nonempty = 0;
    for round in 0..200 {
        let q = query(&mut rng);
        let Ok(terms) = SearchTerms::parse(&q) else {
            continue;
        };
        let (include_hidden, favorite) = (round % 5 == 0, round % 7 == 0);
        let expected: Vec<String> = newest_first
            .iter()
            .filter(|m| terms.matches(&m.text))
            .filter(|m| include_hidden || !m.hidden)
            .filter(|m| !m.trashed)
            .filter(|m| !favorite || m.favorite)
            .map(|m| m.uuid.clone())
            .collect();
        let mut params = format!("q={}", urlencode(&q));
        if include_hidden {
            params.push_str("&includeHidden=true");
        }
        if favorite {
            params.push_str("&favorite=true");
        }
        let on_sqlite = all(&sqlite, &a.web, &params).await;
        let on_postgres = all(&postgres, &b.web, &params).await;
        assert_eq!(on_sqlite, expected, "SQLite, {q:?} ({params})");
        assert_eq!(on_postgres, expected, "PostgreSQL, {q:?} ({params})");
        nonempty += usize::from(!expected.is_empty());
    }
    assert!(nonempty > 100, "most queries find something ({nonempty})");

    // The scrubber and the name lists agree too, and with the model.
    let (_, m1) = sqlite.get_json(&a.web, "/my/photos/months").await;
    let (_, m2) = postgres.get_json(&b.web, "/my/photos/months").await;
    assert_eq!(m1, m2);
    let mut per_month: BTreeMap<String, u64> = BTreeMap::new();
    for m in made.iter().map(|(_, m)| m).filter(|m| !m.hidden && !m.trashed) {
        let at = chrono::DateTime::from_timestamp_millis(m.taken_ms).unwrap();
        *per_month.entry(at.format("%Y-%m").to_string()).or_default() += 1;
    }
    let counted: BTreeMap<String, u64> = m1["years"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|y| y["months"].as_array().unwrap().clone())
        .map(|m| {
            (
                m["key"].as_str().unwrap().to_owned(),
                m["count"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(counted, per_month);
    for list in ["people", "keywords"] {
        let (_, t1) = sqlite.get_json(&a.web, &format!("/my/photos/{list}")).await;
        let (_, t2) = postgres.get_json(&b.web, &format!("/my/photos/{list}")).await;
        assert_eq!(t1, t2, "{list}");
        let names: BTreeSet<&str> = t1["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap())
            .collect();
        assert!(names.len() > 10, "{list}: {t1}");
    }
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
