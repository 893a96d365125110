//! The server's pages in a real browser: Debian's headless Chromium through ChromeDriver (`harness::Browser`),
//! against the real binary. Each test saves screenshots under `target/tmp/web_browser/<test>/` so a person
//! can look, and fails on any console error or any request that leaves the server.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod browser;
mod served;

use std::time::Duration;

use browser::{assert_clean, click, output, scrolls_sideways, sign_in_with};
use harness::{Browser, ServerProcess};
use served::BIN;

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

#[tokio::test(flavor = "multi_thread")]
async fn signing_in_through_the_form_in_a_real_browser() {
    const PASSWORD: &str = "correct horse battery staple";
    let site = browser::Site::start(browser::Db::Sqlite, PASSWORD).await;
    let shots = output("signing_in_through_the_form_in_a_real_browser");
    let chromium = Browser::start().await.unwrap();
    let page = chromium.page(1280, 800).await.unwrap();

    // Signed out, the home page sends the browser to the form.
    page.client.goto(&format!("{}/", site.url)).await.unwrap();
    let url = page.client.current_url().await.unwrap();
    assert_eq!(url.path(), "/login", "{url}");
    page.screenshot(&shots, "login").await.unwrap();

    // A wrong password is refused on the form, with a message, and no session.
    sign_in_with(&page, "alice", "not the password at all").await;
    let error = page
        .wait_for(
            "return document.querySelector('.error[role=alert]')?.textContent || null",
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    assert!(!error.as_str().unwrap().is_empty(), "{error}");
    assert_eq!(page.client.current_url().await.unwrap().path(), "/login");
    page.screenshot(&shots, "wrong-password").await.unwrap();
    // The refusal is an answer of the form (401), which the browser logs; nothing else may be.
    let errors = page.console_errors().await.unwrap();
    assert!(
        errors.iter().all(|e| e.contains("/login") && e.contains("401")),
        "{errors:#?}"
    );

    // The right one signs in: the home page, with the user and the empty state.
    sign_in_with(&page, "alice", PASSWORD).await;
    let home = page
        .wait_for(
            "return location.pathname === '/' && document.querySelector('main')?.textContent || null",
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    assert!(home.as_str().unwrap().contains("run the agent"), "{home}");
    page.screenshot(&shots, "home").await.unwrap();
    // At phone width and in dark mode the page still fits its window.
    page.client.set_window_size(390, 844).await.unwrap();
    assert!(
        !scrolls_sideways(&page).await,
        "the page scrolls sideways at phone width"
    );
    page.screenshot(&shots, "home-phone").await.unwrap();

    // Signing out ends the session: the home page asks to sign in again.
    click(&page, "button.link").await;
    page.wait_for("return location.pathname === '/login'", Duration::from_secs(10))
        .await
        .unwrap();
    page.client.goto(&format!("{}/", site.url)).await.unwrap();
    assert_eq!(page.client.current_url().await.unwrap().path(), "/login");
    assert_clean(&page, &site.server).await;
    page.close().await.unwrap();
}
