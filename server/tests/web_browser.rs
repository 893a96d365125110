//! The server's pages in a real browser: Debian's headless Chromium through ChromeDriver (`harness::Browser`),
//! against the real binary. Each test saves screenshots under `target/tmp/web_browser/<test>/` so a person
//! can look, and fails on any console error or any request that leaves the server.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod served;

use std::path::PathBuf;
use std::time::Duration;

use harness::{Browser, Page, ServerProcess};
use served::BIN;

/// The test's output folder.
fn output(test: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("web_browser")
        .join(test)
}

/// Fails if the page logged an error or asked anything of another origin than the server's.
async fn assert_clean(page: &Page, server: &ServerProcess) {
    let errors = page.console_errors().await.unwrap();
    assert!(errors.is_empty(), "console errors: {errors:#?}");
    let urls = page.requested_urls().await.unwrap();
    assert!(!urls.is_empty(), "the performance log saw no request at all");
    let origin = server.url();
    // What goes over a network: the browser's own `chrome://` pages (the blank tab it starts with) do not.
    let elsewhere: Vec<_> = urls
        .iter()
        .filter(|u| {
            ["http:", "https:", "ws:", "wss:"]
                .iter()
                .any(|s| u.starts_with(s))
        })
        .filter(|u| !u.starts_with(&format!("{origin}/")))
        .collect();
    assert!(elsewhere.is_empty(), "requests off the server: {elsewhere:#?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_api_docs_render_from_the_server_alone() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(BIN.as_ref(), &dir.path().join("data"), &[])
        .await
        .unwrap();
    let browser = Browser::start().await.unwrap();
    let page = browser.page(1280, 900).await.unwrap();
    page.client
        .goto(&format!("{}/docs/", server.url()))
        .await
        .unwrap();
    // Swagger UI builds the page from /openapi.json: one block per documented operation.
    let operations = page
        .wait_for(
            "const n = document.querySelectorAll('.opblock').length; return n >= 20 ? n : null;",
            Duration::from_secs(30),
        )
        .await
        .unwrap();
    let shot = page
        .screenshot(&output("the_api_docs_render_from_the_server_alone"), "docs")
        .await
        .unwrap();
    assert!(
        std::fs::metadata(&shot).unwrap().len() > 10_000,
        "{shot:?} is nearly empty"
    );
    let title = page
        .client
        .execute(
            "return document.querySelector('.info .title')?.textContent",
            Vec::new(),
        )
        .await
        .unwrap();
    assert!(
        title.as_str().is_some_and(|t| t.contains("iPhoto")),
        "{title} ({operations} operations)"
    );
    assert_clean(&page, &server).await;
    page.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_load_is_seen_as_a_console_error() {
    // The check above must be able to fail: a page whose image is missing logs a SEVERE entry.
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(BIN.as_ref(), &dir.path().join("data"), &[])
        .await
        .unwrap();
    let browser = Browser::start().await.unwrap();
    let page = browser.page(800, 600).await.unwrap();
    page.client
        .goto(&format!("{}/docs/", server.url()))
        .await
        .unwrap();
    page.client
        .execute(
            "const i = document.createElement('img'); i.src = '/no/such/image.png'; document.body.append(i);",
            Vec::new(),
        )
        .await
        .unwrap();
    let seen = page
        .wait_for(
            "return performance.getEntriesByName(location.origin + '/no/such/image.png').length > 0",
            Duration::from_secs(10),
        )
        .await
        .map(|_| ());
    seen.unwrap();
    let seen = page.console_errors().await.unwrap();
    assert!(
        seen.iter()
            .any(|e| e.contains("/no/such/image.png") && e.contains("404")),
        "{seen:#?}"
    );
    page.close().await.unwrap();
}
