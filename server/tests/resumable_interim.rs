//! The `104 (Upload Resumption Supported)` interim answer of a resumable upload's creation, seen on the wire:
//! HTTP spoken by hand (`resumable::Raw`), since library clients hide 1xx answers. On {SQLite, PostgreSQL} ×
//! {local directory, SeaweedFS}.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod app;
mod resumable;

use app::{Backends, TestApp, sha256_hex};
use resumable::fixtures::{M, MIB, PART, assert_no_leftovers, data, photo, start, stored};
use resumable::{Client, Raw};
use server::catalog::Scope;

crate::resumable_matrix!(
    a_creation_cut_after_its_104_resumes_at_its_location,
    the_104_leaves_the_connection_in_step,
);

/// The creation fields of a hand-spoken request.
fn creation_fields(
    token: &str,
    length: usize,
    version: &str,
    complete: (&str, &str),
) -> Vec<(&'static str, String)> {
    let mut fields = vec![
        ("authorization", format!("Bearer {token}")),
        ("content-length", length.to_string()),
        ("upload-draft-interop-version", version.to_owned()),
    ];
    fields.push(if complete.0 == "upload-incomplete" {
        ("upload-incomplete", complete.1.to_owned())
    } else {
        ("upload-complete", complete.1.to_owned())
    });
    fields
}

pub async fn a_creation_cut_after_its_104_resumes_at_its_location(app: TestApp) {
    let (user, token) = app.user_with_token(Scope::Client).await;
    let bytes = data(40, 3 * M);
    let route = photo(&app, &token, "F1B2C3D4-0000-0000-0000-000000000001", &bytes, true).await;

    // The whole file announced in one creation; the connection is cut after its first MiB. The 104 is
    // the only place the client learns the upload's URL before the final answer, which never comes.
    let mut raw = Raw::connect(&app.url).await;
    let fields = creation_fields(&token, bytes.len(), "8", ("upload-complete", "?1"));
    raw.send(&format!("POST {route} HTTP/1.1"), &fields, &bytes[..M])
        .await;
    let interim = raw.head().await;
    assert_eq!(interim.status, 104, "{interim:?}");
    let url = interim.field("location").unwrap().to_owned();
    assert!(url.starts_with("/client/iphoto/uploads/"), "{interim:?}");
    assert_eq!(interim.field("upload-draft-interop-version"), Some("8"));
    assert!(
        interim
            .field("upload-limit")
            .is_some_and(|l| l.contains(&format!("min-append-size={PART}"))),
        "{interim:?}"
    );
    drop(raw);

    let client = Client::new(&app.url, &token, None);
    let head = client.offset(&url).await.unwrap();
    assert_eq!(
        (head.status, client.says_complete(&head)),
        (204, Some(false)),
        "{}",
        head.body
    );
    let offset = head.offset().unwrap();
    assert!(offset <= MIB, "more kept than sent: {offset}");
    let done = client
        .append(&url, offset, bytes[offset as usize..].to_vec(), true, &[])
        .await
        .unwrap();
    assert_eq!(done.status, 200, "{}", done.body);
    assert_eq!(done.json()["sha256"], sha256_hex(&bytes));
    let objects = stored(&app, user.id.as_str()).await;
    assert_eq!(objects.len(), 1, "{objects:?}");
    assert_no_leftovers(&app, user.id.as_str()).await;
}

pub async fn the_104_leaves_the_connection_in_step(app: TestApp) {
    let (user, token) = app.user_with_token(Scope::Client).await;
    let one = data(41, 3000);
    let two = data(42, 3000);
    let route_one = photo(&app, &token, "F2B2C3D4-0000-0000-0000-000000000001", &one, false).await;
    let route_two = photo(&app, &token, "F2B2C3D4-0000-0000-0000-000000000002", &two, false).await;

    // HTTP/1.1, an interop version 3 client (`Upload-Incomplete`): a 104 in its version, then the final
    // answer, then the next request on the same connection is answered as such.
    let mut raw = Raw::connect(&app.url).await;
    let fields = creation_fields(&token, one.len(), "3", ("upload-incomplete", "?0"));
    raw.send(&format!("POST {route_one} HTTP/1.1"), &fields, &one)
        .await;
    let interim = raw.head().await;
    assert_eq!(interim.status, 104, "{interim:?}");
    assert_eq!(interim.field("upload-draft-interop-version"), Some("3"));
    let url = interim.field("location").unwrap().to_owned();
    let done = raw.head().await;
    assert_eq!(done.status, 200, "{done:?}");
    assert_eq!(done.field("location"), Some(url.as_str()));
    assert_eq!(done.field("upload-incomplete"), Some("?0"));
    let answer: serde_json::Value = serde_json::from_slice(&raw.content(&done).await).unwrap();
    assert_eq!(answer["sha256"], sha256_hex(&one));
    raw.send("GET /healthz HTTP/1.1", &[], b"").await;
    let health = raw.head().await;
    assert_eq!(health.status, 200, "{health:?}");
    raw.content(&health).await;

    // An empty creation needs no 104: its final answer comes first.
    let empty = creation_fields(&token, 0, "8", ("upload-complete", "?0"));
    raw.send(&format!("POST {route_two} HTTP/1.1"), &empty, b"").await;
    let created = raw.head().await;
    assert_eq!(created.status, 201, "{created:?}");
    raw.content(&created).await;

    // HTTP/1.0 clients never get a 1xx (RFC 9110, 15.2).
    let mut old = Raw::connect(&app.url).await;
    let url_two = created.field("location").unwrap().to_owned();
    let mut fields = creation_fields(&token, two.len(), "8", ("upload-complete", "?1"));
    fields.push(("upload-offset", "0".to_owned()));
    fields.push(("content-type", "application/partial-upload".to_owned()));
    old.send(&format!("PATCH {url_two} HTTP/1.0"), &fields, &two)
        .await;
    let appended = old.head().await;
    assert_eq!(appended.status, 200, "{appended:?}");
    let route_three_bytes = data(43, 3000);
    let route_three = photo(
        &app,
        &token,
        "F2B2C3D4-0000-0000-0000-000000000003",
        &route_three_bytes,
        false,
    )
    .await;
    let mut old = Raw::connect(&app.url).await;
    let fields = creation_fields(&token, route_three_bytes.len(), "8", ("upload-complete", "?1"));
    old.send(
        &format!("POST {route_three} HTTP/1.0"),
        &fields,
        &route_three_bytes,
    )
    .await;
    let answer = old.head().await;
    assert_eq!(answer.status, 200, "an HTTP/1.0 client got {answer:?}");
    assert!(answer.field("location").is_some(), "{answer:?}");

    let objects = stored(&app, user.id.as_str()).await;
    assert_eq!(objects.len(), 3, "{objects:?}");
    assert_no_leftovers(&app, user.id.as_str()).await;
}
