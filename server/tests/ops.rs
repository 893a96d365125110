//! Operations surface: OpenAPI document (and its committed copy), Swagger UI, metrics, health.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod app;

use app::{Backends, TestApp, item};
use server::catalog::Scope;

#[test]
fn committed_openapi_matches_the_code() {
    let generated = server::http::openapi::document();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../openapi/openapi.json");
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "openapi/openapi.json is out of date: run `UPDATE_OPENAPI=1 cargo test -p iphoto-server --test ops` and commit it"
    );
    let doc: serde_json::Value = serde_json::from_str(&generated).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    for path in [
        "/client/iphoto/sync",
        "/client/iphoto/upload/{localIdentifier}",
        "/client/iphoto/stats",
        "/readyz",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} missing from the document");
    }
    assert!(doc["components"]["schemas"]["SyncItem"].is_object());
}

#[tokio::test]
async fn docs_metrics_and_health_are_served() {
    let app = TestApp::start(Backends::SqliteLocal).await;
    let (_, token) = app.user_with_token(Scope::Client).await;
    let body = serde_json::json!({ "libraryId": "L", "items": [item("ABCD0001", 10, None)] });
    assert_eq!(app.post_json(&token, "/client/iphoto/sync", &body).await.0, 200);

    let doc: serde_json::Value = app
        .http
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["paths"]["/client/iphoto/sync"]["post"].is_object());
    let ui = app.http.get(app.url("/docs/")).send().await.unwrap();
    assert_eq!(ui.status(), 200);
    let html = ui.text().await.unwrap();
    assert!(html.contains("swagger-ui"), "Swagger UI is served by the binary");
    assert!(!html.contains("cdn.") && !html.contains("unpkg"), "no CDN");

    let metrics = app
        .http
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("iphoto_http_requests_total"), "{metrics}");
    assert!(metrics.contains("route=\"/client/iphoto/sync\""), "{metrics}");
    assert!(
        metrics.contains("iphoto_http_request_duration_seconds"),
        "{metrics}"
    );

    let health = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let id = health
        .headers()
        .get("x-request-id")
        .expect("a request id on every answer");
    assert!(!id.is_empty());
}
