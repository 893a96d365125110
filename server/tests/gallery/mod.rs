//! What the gallery's HTTP tests share: photos with searchable fields, walking a list, the scrubber's and
//! the name lists' answers as plain values.

#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::app::TestApp;
use crate::owner::taken;

/// A photo `uuid` taken at `at` with the given searchable fields.
pub fn photo(uuid: &str, at: &str, fields: Value) -> Value {
    let mut p = taken(uuid, at);
    p["keywords"] = json!([]);
    p["people"] = json!([]);
    p["originalFilename"] = format!("{uuid}.HEIC").into();
    for (k, v) in fields.as_object().unwrap() {
        p[k] = v.clone();
    }
    p
}

/// Every item of every page of `path` (no cursor in it), in order.
pub async fn walk(app: &TestApp, token: &str, path: &str, limit: usize) -> Vec<String> {
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let sep = if path.contains('?') { '&' } else { '?' };
        let url = match &cursor {
            Some(c) => format!("{path}{sep}limit={limit}&cursor={c}"),
            None => format!("{path}{sep}limit={limit}"),
        };
        let (status, page) = app.get_json(token, &url).await;
        assert_eq!(status, 200, "{url}: {page}");
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= limit);
        all.extend(items.iter().map(uuid));
        match page["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return all,
        }
    }
}

pub fn uuid(item: &Value) -> String {
    item["localIdentifier"]
        .as_str()
        .unwrap()
        .trim_end_matches("/L0/001")
        .to_owned()
}

pub async fn found(app: &TestApp, token: &str, query: &str) -> BTreeSet<String> {
    walk(app, token, &format!("/my/photos/?{query}"), 500)
        .await
        .into_iter()
        .collect()
}

pub fn set(uuids: &[&str]) -> BTreeSet<String> {
    uuids.iter().map(|u| (*u).to_owned()).collect()
}

/// The scrubber's counts as `{ "YYYY-MM": n }`.
pub async fn months(app: &TestApp, token: &str, query: &str) -> Vec<(String, u64)> {
    let (status, answer) = app.get_json(token, &format!("/my/photos/months?{query}")).await;
    assert_eq!(status, 200, "{answer}");
    let mut out = Vec::new();
    for year in answer["years"].as_array().unwrap() {
        let months = year["months"].as_array().unwrap();
        let sum: u64 = months.iter().map(|m| m["count"].as_u64().unwrap()).sum();
        assert_eq!(year["count"].as_u64().unwrap(), sum, "{year}");
        for m in months {
            out.push((
                m["key"].as_str().unwrap().to_owned(),
                m["count"].as_u64().unwrap(),
            ));
        }
    }
    out
}

pub fn counts(list: &[(&str, u64)]) -> Vec<(String, u64)> {
    list.iter().map(|(k, n)| ((*k).to_owned(), *n)).collect()
}

pub async fn tags(app: &TestApp, token: &str, list: &str) -> Vec<(String, u64)> {
    let (status, answer) = app.get_json(token, &format!("/my/photos/{list}")).await;
    assert_eq!(status, 200, "{answer}");
    answer["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["name"].as_str().unwrap().to_owned(),
                t["count"].as_u64().unwrap(),
            )
        })
        .collect()
}
