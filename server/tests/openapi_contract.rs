//! Where the OpenAPI document and the server used to disagree, each settled one way and held there, against
//! {SQLite, PostgreSQL} × {local directory, SeaweedFS}:
//! - `limit=0` (and every other bounded query parameter): the document now states each bound the server
//!   enforces, and the server answers 400 just past it and serves at it;
//! - an empty `libraryId`: the document now says 1 to 200 characters without control characters, and the
//!   server counts characters as the document does (it counted bytes, refusing 200 accented letters);
//! - `width: 337.0`: JSON Schema's `integer` admits a number with a zero fraction, so the server now reads
//!   one wherever the document says integer (serde refused it with a 422).

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod app;

use app::{Backends, TestApp, assert_error, item, read};
use serde_json::{Value, json};
use server::catalog::Scope;

fn document() -> Value {
    serde_json::from_str(&server::http::openapi::document()).unwrap()
}

/// A parameter's schema, its `$ref` followed.
fn resolved<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(reference) => {
            let name = reference.trim_start_matches("#/components/schemas/");
            &doc["components"]["schemas"][name]
        }
        None => schema,
    }
}

pub async fn every_bound_the_document_states_is_the_one_the_server_enforces(app: TestApp) {
    let (user, client) = app.user_with_token(Scope::Client).await;
    let web = app.token(&user, Scope::Web).await;
    let worker = app.token(&user, Scope::Worker).await;
    let doc = document();
    let mut checked = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let parameters = operation["parameters"].as_array().cloned().unwrap_or_default();
            let query: Vec<&Value> = parameters.iter().filter(|p| p["in"] == "query").collect();
            let token = match operation["tags"][0].as_str() {
                Some("client") => &client,
                Some("web") => &web,
                Some("worker") => &worker,
                _ => continue,
            };
            // Required query parameters other than the one under test: their first allowed value.
            let required: Vec<String> = query
                .iter()
                .filter(|p| p["required"] == true)
                .map(|p| {
                    let schema = resolved(&doc, &p["schema"]);
                    format!(
                        "{}={}",
                        p["name"].as_str().unwrap(),
                        schema["enum"][0].as_str().unwrap()
                    )
                })
                .collect();
            let url_path = path
                .replace("{albumId}", "no-such-album")
                .replace("{photoId}", "x")
                .replace("{month}", "2024-01");
            for parameter in &query {
                let schema = resolved(&doc, &parameter["schema"]);
                let (Some(min), Some(max)) = (schema["minimum"].as_u64(), schema["maximum"].as_u64()) else {
                    continue;
                };
                let name = parameter["name"].as_str().unwrap();
                for (value, refused) in [(min - 1, true), (min, false), (max, false), (max + 1, true)] {
                    let mut pairs = required.clone();
                    pairs.push(format!("{name}={value}"));
                    let url = app.url(&format!("{url_path}?{}", pairs.join("&")));
                    let request = match method.as_str() {
                        "get" => app.http.get(url),
                        "post" => app.http.post(url),
                        other => panic!("{other} {path}"),
                    };
                    let answer = read(request.bearer_auth(token).send().await.unwrap()).await;
                    if refused {
                        assert_error(&answer, 400, "invalid_query");
                    } else {
                        assert!(
                            answer.0 == 200 || (answer.0 == 404 && path.contains("{albumId}")),
                            "{method} {path} {name}={value}: {answer:?}"
                        );
                    }
                }
                checked.push(format!("{method} {path} {name} {min}..={max}"));
            }
        }
    }
    checked.sort();
    for expected in [
        "get /client/iphoto/upload/pending limit 1..=1000",
        "get /my/photos/ limit 1..=500",
        "get /my/photos limit 1..=500",
        "get /my/photos/albums/{albumId} limit 1..=500",
        "get /my/photos/changes limit 1..=1000",
        "get /my/photos/months/{month} limit 1..=500",
        "post /worker/jobs/lease max 1..=100",
        "post /worker/jobs/lease leaseSecs 1..=3600",
    ] {
        assert!(
            checked.iter().any(|c| c == expected),
            "{expected} not in {checked:#?}"
        );
    }
}

pub async fn library_ids_are_what_the_document_says(app: TestApp) {
    let doc = document();
    for schema in ["SyncRequest", "AlbumsRequest"] {
        let library_id = &doc["components"]["schemas"][schema]["properties"]["libraryId"];
        assert_eq!(library_id["minLength"], 1, "{schema}");
        assert_eq!(library_id["maxLength"], 200, "{schema}");
        assert!(
            library_id["pattern"]
                .as_str()
                .unwrap()
                .contains("\\u0000-\\u001F"),
            "{schema}"
        );
    }
    let (_, token) = app.user_with_token(Scope::Client).await;
    let accented = "é".repeat(200);
    for (library, accepted) in [
        ("", false),
        (accented.as_str(), true),
        (&*"é".repeat(201), false),
        ("tab\there", false),
        ("Mac Library 2", true),
    ] {
        let sync = app
            .post_json(
                &token,
                "/client/iphoto/sync",
                &json!({ "libraryId": library, "items": [] }),
            )
            .await;
        let albums = app
            .post_json(
                &token,
                "/client/iphoto/albums",
                &json!({ "libraryId": library, "albums": [] }),
            )
            .await;
        for answer in [sync, albums] {
            if accepted {
                assert_eq!(answer.0, 200, "{library:?}: {answer:?}");
            } else {
                assert_error(&answer, 400, "invalid_field");
            }
        }
    }
    // The upload's `library` query parameter is the same id.
    let upload = |library: &str| {
        let url = app.url(&format!("/client/iphoto/upload/NOPE/L0/001?library={library}"));
        app.http.post(url).bearer_auth(&token).body("x").send()
    };
    assert_error(&read(upload("").await.unwrap()).await, 400, "invalid_query");
    assert_error(&read(upload("a%07b").await.unwrap()).await, 400, "invalid_query");
    assert_error(&read(upload(&accented).await.unwrap()).await, 404, "not_found");
}

pub async fn integers_may_be_written_as_whole_floats(app: TestApp) {
    let doc = document();
    assert_eq!(
        doc["components"]["schemas"]["SyncItem"]["properties"]["width"]["type"],
        "integer"
    );
    let (user, token) = app.user_with_token(Scope::Client).await;
    let web = app.token(&user, Scope::Web).await;
    let mut floats = item("F1A70001", 10, None);
    floats["kind"] = "video".into();
    floats["width"] = json!(337.0);
    floats["height"] = json!(1.0e3);
    floats["durationMs"] = json!(1500.0);
    floats["resources"][0]["size"] = json!(10.0);
    let (status, answer) = app
        .post_json(
            &token,
            "/client/iphoto/sync",
            &json!({ "libraryId": "L", "items": [floats] }),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["results"][0]["outcome"], "created", "{answer}");
    let (_, page) = app.get_json(&web, "/my/photos/").await;
    let id = page["items"][0]["id"].as_str().unwrap();
    let (_, photo) = app.get_json(&web, &format!("/my/photos/{id}")).await;
    assert_eq!(
        (photo["width"].clone(), photo["height"].clone()),
        (json!(337), json!(1000))
    );
    assert_eq!(photo["durationMs"], 1500);
    assert_eq!(photo["resources"][0]["size"], 10);
    // A fraction, a negative or an out-of-range number is still not an integer of the field.
    for (field, value) in [
        ("width", json!(337.5)),
        ("width", json!(-1.0)),
        ("height", json!(4294967296.0)),
    ] {
        let mut bad = item("F1A70002", 10, None);
        bad[field] = value.clone();
        assert_error(
            &app.post_json(
                &token,
                "/client/iphoto/sync",
                &json!({ "libraryId": "L", "items": [bad] }),
            )
            .await,
            422,
            "invalid_json",
        );
    }
}

matrix!(
    every_bound_the_document_states_is_the_one_the_server_enforces,
    library_ids_are_what_the_document_says,
    integers_may_be_written_as_whole_floats,
);
