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
        "/client/iphoto/uploads/{id}",
        "/client/iphoto/stats",
        "/readyz",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} missing from the document");
    }
    assert!(doc["components"]["schemas"]["SyncItem"].is_object());
    let upload = &doc["paths"]["/client/iphoto/uploads/{id}"];
    for method in ["head", "patch", "delete", "options"] {
        assert!(
            upload[method].is_object(),
            "{method} of an upload resource is documented"
        );
    }
    assert!(doc["paths"]["/client/iphoto/upload/{localIdentifier}"]["post"]["responses"]["201"].is_object());
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

/// The document and the router are one: every documented operation is served (none falls through to the
/// "route not found" fallback), the routes that are not plain path segments included (`{localIdentifier}`
/// and `{key}` take the rest of the path, slashes and all), and the routes that used to be left out of the
/// hand-kept list (`/metrics`, `/my/photos` without its slash) are in it.
#[tokio::test]
async fn every_documented_operation_is_routed() {
    let app = TestApp::start(Backends::SqliteLocal).await;
    let doc: serde_json::Value = serde_json::from_str(&server::http::openapi::document()).unwrap();
    let mut served = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            let concrete = path
                .replace("{localIdentifier}", "ABCD/L0/001")
                .replace("{key}", "users/u/a/b.jpg")
                .replace(['{', '}'], "");
            let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let response = app
                .http
                .request(method.clone(), app.url(&concrete))
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            let body: serde_json::Value = response.json().await.unwrap_or_default();
            assert!(
                !(status == 404 && body["error"]["message"] == "route not found") && status != 405,
                "{method} {path} ({concrete}) is documented but not routed: {status} {body}"
            );
            served += 1;
        }
    }
    // 20, the resumable uploads': OPTIONS on the upload route, HEAD/PATCH/DELETE/OPTIONS on an upload, and
    // the gallery's month counts, month jump, people and keywords.
    assert_eq!(served, 29, "operations in the document");
    for path in ["/metrics", "/my/photos", "/my/photos/"] {
        assert!(doc["paths"][path]["get"].is_object(), "{path} is documented");
    }
}
