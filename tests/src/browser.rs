//! Debian's headless Chromium driven through ChromeDriver (W3C WebDriver, the `fantoccini` client), for the
//! web pages' tests and benchmarks.
//!
//! - One `chromedriver` per [`Browser`], on a free loopback port, in a process group of its own so that
//!   stopping it takes every Chromium it started (a test that panics leaves nothing behind).
//! - Chromium runs with the flags this machine needs (real-parts: no background networking, no component
//!   updates, no sync, no QUIC: its connections to Google's hosts are otherwise refused many at a time), a
//!   fresh profile per page, and its browser and performance logs on, so a test can read the page's console
//!   errors and every request the page made ([`Page::console_errors`], [`Page::requested_urls`]).
//! - [`Page::screenshot`] saves a PNG under a test's output folder so a person can look.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use fantoccini::wd::WebDriverCompatibleCommand;
use serde_json::{Value, json};

use crate::process::{Supervised, free_port, shell_quote, unique_name};

/// Where Debian's packages put them (`chromium`, `chromium-driver`); `IPHOTO_CHROMIUM` and
/// `IPHOTO_CHROMEDRIVER` name others.
const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// A running ChromeDriver.
pub struct Browser {
    url: String,
    chromium: PathBuf,
    dir: tempfile::TempDir,
    _driver: Supervised,
}

impl std::fmt::Debug for Browser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Browser")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// One browser window (a WebDriver session with its own profile).
#[derive(Debug)]
pub struct Page {
    /// The WebDriver client: navigation, elements, scripts.
    pub client: fantoccini::Client,
}

fn binary(variable: &str, default: &str) -> Result<PathBuf> {
    let path = std::env::var_os(variable).map_or_else(|| PathBuf::from(default), PathBuf::from);
    if !path.exists() {
        bail!(
            "{} is not installed (scripts/install-test-deps.sh installs Debian's chromium and chromium-driver; \
             {variable} names another)",
            path.display()
        );
    }
    Ok(path)
}

impl Browser {
    /// Starts ChromeDriver and waits until it answers.
    pub async fn start() -> Result<Browser> {
        let chromium = binary("IPHOTO_CHROMIUM", CHROMIUM)?;
        let driver = binary("IPHOTO_CHROMEDRIVER", CHROMEDRIVER)?;
        let dir = tempfile::Builder::new().prefix("iphoto-browser-").tempdir()?;
        let port = free_port()?;
        let pid = dir.path().join("chromedriver.pid");
        let start = format!(
            "setsid {} --port={port} --allowed-ips=127.0.0.1 --log-path={} & echo $! > {}",
            shell_quote(&driver.to_string_lossy()),
            shell_quote(&dir.path().join("chromedriver.log").to_string_lossy()),
            shell_quote(&pid.to_string_lossy()),
        );
        let stop = format!(
            "kill -TERM -- -\"$(cat {})\" 2>/dev/null",
            shell_quote(&pid.to_string_lossy())
        );
        let supervisor = Supervised::spawn(&start, &stop, &dir.path().join("supervisor.log"))?;
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        let http = reqwest::Client::new();
        loop {
            let ready = http.get(format!("{url}/status")).send().await;
            if let Ok(answer) = ready
                && let Ok(status) = answer.json::<Value>().await
                && status["value"]["ready"] == true
            {
                break;
            }
            if Instant::now() > deadline {
                bail!("chromedriver did not answer on {url} within 30 s");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(Browser {
            url,
            chromium,
            dir,
            _driver: supervisor,
        })
    }

    /// A new window, `width`×`height` CSS pixels, with a fresh profile.
    pub async fn page(&self, width: u32, height: u32) -> Result<Page> {
        let profile = self.dir.path().join(unique_name("profile"));
        std::fs::create_dir_all(&profile)?;
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": self.chromium,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    "--disable-default-apps", "--disable-extensions", "--mute-audio",
                    "--autoplay-policy=no-user-gesture-required",
                    format!("--user-data-dir={}", profile.display()),
                    format!("--window-size={width},{height}"),
                ],
            },
            "goog:loggingPrefs": { "browser": "ALL", "performance": "ALL" },
        });
        let serde_json::Value::Object(capabilities) = capabilities else {
            unreachable!("a JSON object");
        };
        let client =
            fantoccini::ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                .capabilities(capabilities)
                .connect(&self.url)
                .await
                .context("starting a Chromium session")?;
        Ok(Page { client })
    }
}

/// ChromeDriver's log command (`POST /session/{id}/se/log`): a vendor extension the W3C protocol lacks,
/// the way to a page's console and network events.
#[derive(Debug)]
struct ReadLog(&'static str);

impl WebDriverCompatibleCommand for ReadLog {
    fn endpoint(&self, base: &url::Url, session: Option<&str>) -> Result<url::Url, url::ParseError> {
        base.join(&format!("session/{}/se/log", session.unwrap_or_default()))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(json!({ "type": self.0 }).to_string()))
    }
}

/// ChromeDriver's `goog/cdp/execute`: one Chrome DevTools Protocol command in the window's target, for what
/// WebDriver cannot say (a script that runs before the page's own, a cookie set before the first visit).
#[derive(Debug)]
struct Cdp {
    cmd: &'static str,
    params: Value,
}

impl WebDriverCompatibleCommand for Cdp {
    fn endpoint(&self, base: &url::Url, session: Option<&str>) -> Result<url::Url, url::ParseError> {
        base.join(&format!(
            "session/{}/goog/cdp/execute",
            session.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (
            http::Method::POST,
            Some(json!({ "cmd": self.cmd, "params": self.params }).to_string()),
        )
    }
}

impl Page {
    /// The entries of log `kind` since it was last read.
    async fn log(&self, kind: &'static str) -> Result<Vec<Value>> {
        let answer = self
            .client
            .issue_cmd(ReadLog(kind))
            .await
            .context("reading a browser log")?;
        Ok(answer.as_array().cloned().unwrap_or_default())
    }

    /// Runs DevTools Protocol command `cmd` (`Page.addScriptToEvaluateOnNewDocument`, `Network.setCookie`, …)
    /// and returns its result.
    pub async fn cdp(&self, cmd: &'static str, params: Value) -> Result<Value> {
        self.client
            .issue_cmd(Cdp { cmd, params })
            .await
            .with_context(|| format!("DevTools command {cmd}"))
    }

    /// The console messages of level SEVERE (errors, failed loads) since the last call.
    pub async fn console_errors(&self) -> Result<Vec<String>> {
        Ok(self
            .log("browser")
            .await?
            .into_iter()
            .filter(|e| e["level"] == "SEVERE")
            .map(|e| e["message"].as_str().unwrap_or_default().to_owned())
            .collect())
    }

    /// Every URL the page asked for (documents, scripts, styles, images, media, fetches) since the last call.
    pub async fn requested_urls(&self) -> Result<Vec<String>> {
        let mut urls = Vec::new();
        for entry in self.log("performance").await? {
            let Some(text) = entry["message"].as_str() else {
                continue;
            };
            let Ok(event) = serde_json::from_str::<Value>(text) else {
                continue;
            };
            if event["message"]["method"] == "Network.requestWillBeSent"
                && let Some(url) = event["message"]["params"]["request"]["url"].as_str()
            {
                urls.push(url.to_owned());
            }
        }
        Ok(urls)
    }

    /// Saves a screenshot of the window as `dir/name.png` and returns its path.
    pub async fn screenshot(&self, dir: &Path, name: &str) -> Result<PathBuf> {
        let png = self.client.screenshot().await.context("taking a screenshot")?;
        std::fs::create_dir_all(dir)?;
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png)?;
        Ok(path)
    }

    /// Runs `script` until it returns something other than `null`/`false`, up to `timeout`.
    pub async fn wait_for(&self, script: &str, timeout: Duration) -> Result<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let value = self.client.execute(script, Vec::new()).await?;
            if !(value.is_null() || value == false) {
                return Ok(value);
            }
            if Instant::now() > deadline {
                bail!("waited {timeout:?} for `{script}`");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Ends the session (and its Chromium).
    pub async fn close(self) -> Result<()> {
        self.client.close().await.context("closing the Chromium session")
    }
}
