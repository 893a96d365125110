//! The web pages' tests against the real binary: a browser at the HTTP level ([`Browser`]: it keeps its
//! cookies, sends `Accept: text/html`, never follows redirects (tests look at each 303), and posts urlencoded
//! forms), and what the tests in real Chromium (`harness::Browser`) share: their output folder, the check
//! that a page logged no error and asked nothing of another origin, and signing in through the form.

#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::collections::BTreeMap;
use std::process::{Command, Output, Stdio};

use std::path::PathBuf;

use harness::fantoccini::Locator;
use harness::{Postgres, ServerProcess};

use crate::served::BIN;

/// Which catalog the server runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

/// A served data directory, its catalog, and the admin CLI pointed at the same catalog.
#[derive(Debug)]
pub struct Site {
    pub server: ServerProcess,
    pub url: String,
    data: std::path::PathBuf,
    database_url: Option<String>,
    dir: tempfile::TempDir,
}

impl Site {
    /// A server on a fresh catalog with user `alice` whose web password is `password` (set with the CLI).
    pub async fn start(db: Db, password: &str) -> Site {
        Self::start_with(db, password, &[]).await
    }

    /// [`Site::start`] with more environment for the server (`IPHOTO_WORKERS=thumbnail` makes thumbnails
    /// and previews in the server's process).
    pub async fn start_with(db: Db, password: &str, more: &[(&str, &str)]) -> Site {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let database_url = match db {
            Db::Sqlite => None,
            Db::Postgres => Some(Postgres::shared().fresh_database().unwrap()),
        };
        let envs: Vec<(&str, &str)> = database_url
            .iter()
            .map(|url| ("IPHOTO_DATABASE_URL", url.as_str()))
            .chain(more.iter().copied())
            .collect();
        let server = ServerProcess::start(std::path::Path::new(BIN), &data, &envs)
            .await
            .unwrap();
        let site = Site {
            url: server.url(),
            server,
            data,
            database_url,
            dir,
        };
        let added = site.cli(&["user", "add", "alice"], None);
        assert!(added.status.success(), "{added:?}");
        let set = site.passwd("alice", password);
        assert!(set.status.success(), "{set:?}");
        site
    }

    /// A second server on the same catalog (its own data directory): another replica.
    pub async fn replica(&self) -> ServerProcess {
        let data = self.dir.path().join("replica");
        std::fs::create_dir_all(&data).unwrap();
        // The catalog's first start happened on the first server; the harness's readiness probe needs its
        // client token.
        std::fs::copy(self.data.join("client.token"), data.join("client.token")).unwrap();
        let envs: Vec<(&str, &str)> = self
            .database_url
            .iter()
            .map(|url| ("IPHOTO_DATABASE_URL", url.as_str()))
            .collect();
        ServerProcess::start(std::path::Path::new(BIN), &data, &envs)
            .await
            .unwrap()
    }

    /// `iphoto-server ARGS` on this site's catalog, with `stdin` piped in (or none).
    pub fn cli(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut command = Command::new(BIN);
        command
            .args(args)
            .arg("--data-dir")
            .arg(&self.data)
            .env_remove("IPHOTO_DATABASE_URL")
            .env_remove("IPHOTO_PASSWORD_FILE")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(url) = &self.database_url {
            command.env("IPHOTO_DATABASE_URL", url);
        }
        let mut child = command.spawn().unwrap();
        {
            use std::io::Write as _;
            let mut input = child.stdin.take().unwrap();
            if let Some(text) = stdin {
                input.write_all(text.as_bytes()).unwrap();
            }
        }
        child.wait_with_output().unwrap()
    }

    /// The server's data directory.
    pub fn data(&self) -> &std::path::Path {
        &self.data
    }

    /// A new token of alice's with this scope (`client`, `web`).
    pub fn token(&self, scope: &str) -> String {
        let made = self.cli(&["token", "create", "--user", "alice", "--scope", scope], None);
        assert!(made.status.success(), "{made:?}");
        String::from_utf8(made.stdout).unwrap().trim().to_owned()
    }

    /// `GET path` with this bearer token: the JSON body, after asserting the status is 200.
    pub async fn get_json(&self, path: &str, token: &str) -> serde_json::Value {
        let answer = reqwest::Client::new()
            .get(format!("{}{path}", self.url))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200, "GET {path}");
        answer.json().await.unwrap()
    }

    /// `user passwd NAME` with the password on standard input.
    pub fn passwd(&self, name: &str, password: &str) -> Output {
        self.cli(&["user", "passwd", name], Some(&format!("{password}\n")))
    }

    /// A new browser with no cookies.
    pub fn browser(&self) -> Browser {
        Browser {
            url: self.url.clone(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookies: BTreeMap::new(),
        }
    }
}

/// One answer.
#[derive(Debug)]
pub struct Page {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Page {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Every `Set-Cookie` of the answer.
    pub fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    }

    /// The `Set-Cookie` of cookie `name`.
    pub fn set_cookie(&self, name: &str) -> Option<String> {
        self.set_cookies()
            .into_iter()
            .find(|c| c.starts_with(&format!("{name}=")))
    }

    /// The value of the hidden `csrf` field of the page's (first) form.
    pub fn csrf_field(&self) -> String {
        let marker = "name=\"csrf\" value=\"";
        let start = self.body.find(marker).expect("a csrf field") + marker.len();
        self.body[start..].split('"').next().unwrap().to_owned()
    }
}

/// Cookies and requests.
#[derive(Debug, Clone)]
pub struct Browser {
    pub url: String,
    http: reqwest::Client,
    pub cookies: BTreeMap<String, String>,
}

impl Browser {
    pub async fn get(&mut self, path: &str) -> Page {
        let request = self.http.get(format!("{}{path}", self.url));
        self.send(request).await
    }

    /// POSTs a urlencoded form with extra headers.
    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)], headers: &[(&str, &str)]) -> Page {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        let mut request = self
            .http
            .post(format!("{}{path}", self.url))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        self.send(request).await
    }

    /// `GET /login`, then the form posted with this name and password (and `next`).
    pub async fn sign_in(&mut self, user: &str, password: &str, headers: &[(&str, &str)]) -> Page {
        let form = self.get("/login").await;
        assert_eq!(form.status, 200, "{}", form.body);
        let csrf = form.csrf_field();
        self.post(
            "/login",
            &[
                ("username", user),
                ("password", password),
                ("csrf", &csrf),
                ("next", "/"),
            ],
            headers,
        )
        .await
    }

    async fn send(&mut self, request: reqwest::RequestBuilder) -> Page {
        let mut request = request.header("accept", "text/html,application/xhtml+xml");
        if !self.cookies.is_empty() {
            let header = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ");
            request = request.header("cookie", header);
        }
        let response = request.send().await.unwrap();
        let page = Page {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            body: String::new(),
        };
        let body = response.text().await.unwrap();
        let page = Page { body, ..page };
        for cookie in page.set_cookies() {
            let pair = cookie.split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            if value.is_empty() || cookie.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
        page
    }
}

/// A Chromium test's output folder (its screenshots): `target/tmp/web_browser/<test>/`.
pub fn output(test: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("web_browser")
        .join(test)
}

/// Fails if the page logged an error or asked anything of another origin than the server's.
pub async fn assert_clean(page: &harness::Page, server: &ServerProcess) {
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

/// Types into the sign-in form and submits it.
pub async fn sign_in_with(page: &harness::Page, user: &str, password: &str) {
    let form = page
        .client
        .form(Locator::Css("form[action='/login']"))
        .await
        .unwrap();
    for (field, text) in [("username", user), ("password", password)] {
        let input = page.client.find(Locator::Id(field)).await.unwrap();
        // A refused form comes back with the name filled in.
        input.clear().await.unwrap();
        input.send_keys(text).await.unwrap();
    }
    form.submit().await.unwrap();
}

/// Clicks the first element `css` finds.
pub async fn click(page: &harness::Page, css: &str) {
    page.client
        .find(Locator::Css(css))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

/// Submits the first form `css` finds.
pub async fn submit(page: &harness::Page, css: &str) {
    page.client
        .form(Locator::Css(css))
        .await
        .unwrap()
        .submit()
        .await
        .unwrap();
}

/// Whether the page is wider than its window (it scrolls sideways: broken at phone width).
pub async fn scrolls_sideways(page: &harness::Page) -> bool {
    page.client
        .execute(
            "return document.documentElement.scrollWidth > window.innerWidth",
            Vec::new(),
        )
        .await
        .unwrap()
        .as_bool()
        .unwrap()
}
