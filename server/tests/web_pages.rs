//! The web pages around signing in (issue 14), against the real binary: `next` only ever a local path, the
//! hashed and immutable stylesheet with nothing fetched from elsewhere, the HTML 404 beside the API's JSON
//! one, and `user passwd` reading no password from the command line and explaining its refusals.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod browser;
mod served;

use browser::{Db, Site};

const PASSWORD: &str = "correct horse battery staple";

#[tokio::test(flavor = "multi_thread")]
async fn next_is_only_ever_a_local_path() {
    let site = Site::start(Db::Sqlite, PASSWORD).await;
    for next in [
        "https://evil.example/",
        "//evil.example/path",
        "/\\evil.example",
        "javascript:alert(1)",
    ] {
        let mut browser = site.browser();
        let token = browser.get("/login").await.csrf_field();
        let page = browser
            .post(
                "/login",
                &[
                    ("username", "alice"),
                    ("password", PASSWORD),
                    ("csrf", &token),
                    ("next", next),
                ],
                &[],
            )
            .await;
        assert_eq!(page.status, 303, "{}", page.body);
        assert_eq!(page.header("location"), Some("/"), "{next}");
        // Signed in, the form itself moves on to a local path only.
        let again = browser.get(&format!("/login?next={}", encode(next))).await;
        assert_eq!((again.status, again.header("location")), (303, Some("/")));
    }
    // A signed-out request for a page keeps its path (and query) as `next`.
    let mut browser = site.browser();
    let page = browser.get("/?from=bookmark").await;
    assert_eq!(page.header("location"), Some("/login?next=%2F%3Ffrom%3Dbookmark"));
    let form = browser.get("/login?next=%2F%3Ffrom%3Dbookmark").await;
    assert!(
        form.body.contains("name=\"next\" value=\"/?from=bookmark\""),
        "{}",
        form.body
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_stylesheet_is_hashed_immutable_and_local_and_404s_fit_the_client() {
    let site = Site::start(Db::Sqlite, PASSWORD).await;
    let mut browser = site.browser();
    let form = browser.get("/login").await;
    let href = form
        .body
        .split("rel=\"stylesheet\" href=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let hash = href
        .strip_prefix("/static/app.")
        .and_then(|h| h.strip_suffix(".css"))
        .unwrap();
    assert!(
        hash.len() == 16 && hash.chars().all(|c| c.is_ascii_hexdigit()),
        "{href}"
    );
    let css = browser.get(href).await;
    assert_eq!(css.status, 200);
    assert_eq!(css.header("content-type"), Some("text/css; charset=utf-8"));
    assert_eq!(
        css.header("cache-control"),
        Some("public, max-age=31536000, immutable")
    );
    assert!(css.body.contains("prefers-color-scheme: dark") && css.body.contains(":focus-visible"));
    // Nothing is fetched from elsewhere: no URL with a host in the page or the stylesheet.
    for text in [&form.body, &css.body] {
        assert!(
            !text.contains("http://") && !text.contains("https://") && !text.contains("url("),
            "{text}"
        );
    }
    assert!(css.body.len() + form.body.len() < 60 * 1024);
    assert_eq!(browser.get("/static/app.0000000000000000.css").await.status, 404);

    // An unknown page, asked by a browser: the 404 page in the same layout.
    let missing = browser.get("/no/such/page").await;
    assert_eq!(missing.status, 404);
    assert!(missing.header("content-type").unwrap().starts_with("text/html"));
    assert!(
        missing.body.contains("Page not found") && missing.body.contains(href),
        "{}",
        missing.body
    );
    // An API path, or a client that does not ask for HTML: the JSON envelope.
    let http = reqwest::Client::new();
    for (path, accept) in [
        ("/no/such/page", "application/json"),
        ("/my/photos/x/y/z", "text/html"),
    ] {
        let answer = http
            .get(format!("{}{path}", site.url))
            .header("accept", accept)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 404);
        let body: serde_json::Value = answer.json().await.unwrap();
        assert_eq!(body["error"]["code"], "not_found", "{path}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn passwd_reads_no_argument_and_explains_refusals() {
    let site = Site::start(Db::Sqlite, PASSWORD).await;
    let stderr = |output: std::process::Output| {
        assert!(!output.status.success());
        String::from_utf8(output.stderr).unwrap()
    };
    // No password on the command line: the flag does not exist, and nothing changes.
    let said = stderr(site.cli(
        &["user", "passwd", "alice", "--password", "an argv password"],
        None,
    ));
    assert!(said.contains("unexpected argument '--password'"), "{said}");
    let said = stderr(site.cli(&["user", "passwd", "alice", "an argv password"], None));
    assert!(said.contains("unexpected argument"), "{said}");
    let help = String::from_utf8(site.cli(&["user", "passwd", "--help"], None).stdout).unwrap();
    assert!(
        help.contains("--password-file") && !help.contains("--password "),
        "{help}"
    );

    assert!(stderr(site.passwd("bob", PASSWORD)).contains("no user named \"bob\""));
    assert!(stderr(site.passwd("alice", "")).contains("the password is empty"));
    assert!(stderr(site.passwd("alice", "eleven char")).contains("too short: 11 characters, at least 12"));
    assert!(stderr(site.passwd("alice", &"x".repeat(1025))).contains("too long: 1025 bytes, at most 1024"));

    // --password-file: its first line.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pw");
    std::fs::write(&path, "from a file, twelve+\nsecond line ignored\n").unwrap();
    let set = site.cli(
        &[
            "user",
            "passwd",
            "alice",
            "--password-file",
            path.to_str().unwrap(),
        ],
        None,
    );
    assert!(set.status.success(), "{set:?}");

    let mut browser = site.browser();
    for (password, status) in [
        ("an argv password", 401),
        (PASSWORD, 401),
        ("from a file, twelve+", 303),
    ] {
        assert_eq!(
            browser.sign_in("alice", password, &[]).await.status,
            status,
            "{password}"
        );
    }
}

fn encode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}
