//! Time to the first thumbnails painted, in Debian's headless Chromium (`harness::Browser`), for `web_pages`;
//! and its peer, a static copy of the same page (HTML, assets, thumbnails) under `python3 -m http.server`.
//!
//! The time is taken inside the page: a script that runs before the page's own (DevTools
//! `Page.addScriptToEvaluateOnNewDocument`) watches every `.tile img` as the parser adds it, waits for its
//! `decode()` (fetched and decoded, ready to paint) and then for the next animation frame (the frame that
//! paints it), and notes `performance.now()`, whose zero is the navigation's start. The figure is the moment
//! the first `n` tiles are all painted, each checked `complete && naturalWidth > 0`. Every load is a fresh
//! window with a fresh profile: nothing cached.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use harness::Browser;
use serde_json::json;

/// The window: a laptop's (about 9 tiles a row; the first 20 tiles are above the fold).
const WIDTH: u32 = 1280;
const HEIGHT: u32 = 900;

/// The in-page watcher; `__N__` is replaced by the number of tiles waited for.
const WATCHER: &str = r"(() => {
  const N = __N__;
  const painted = new Map();
  const check = () => {
    if (window.__firstTiles) return;
    const imgs = Array.from(document.querySelectorAll('.tile img')).slice(0, N);
    if (imgs.length === 0 || (imgs.length < N && document.readyState === 'loading')) return;
    if (!imgs.every((img) => painted.has(img))) return;
    const times = imgs.map((img) => painted.get(img));
    window.__firstTiles = {
      ms: Math.max(...times),
      images: imgs.length,
      loaded: imgs.filter((img) => img.complete && img.naturalWidth > 0).length,
    };
  };
  const watch = (img) => {
    if (painted.has(img) || img.__watched) return;
    img.__watched = true;
    img.decode().then(
      () => requestAnimationFrame(() => { painted.set(img, performance.now()); check(); }),
      () => { painted.set(img, Infinity); check(); });
  };
  const scan = () => { document.querySelectorAll('.tile img').forEach(watch); check(); };
  new MutationObserver(scan).observe(document, { childList: true, subtree: true });
  document.addEventListener('DOMContentLoaded', scan);
})();";

/// One load's figures, milliseconds from the navigation's start.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    /// The first `n` thumbnails painted.
    pub first_tiles_ms: f64,
    /// The page's first byte (`responseStart`): the server's part.
    pub first_byte_ms: f64,
}

/// Loads `url` in a fresh window (with the session cookie `cookie` when given) and times its first `n`
/// thumbnails.
pub async fn load(browser: &Browser, url: &str, cookie: Option<&str>, n: usize) -> Result<Load> {
    let page = browser.page(WIDTH, HEIGHT).await?;
    let result = async {
        page.cdp(
            "Page.addScriptToEvaluateOnNewDocument",
            json!({ "source": WATCHER.replace("__N__", &n.to_string()) }),
        )
        .await?;
        if let Some(value) = cookie {
            page.cdp(
                "Network.setCookie",
                json!({ "name": "iphoto_session", "value": value, "url": url, "httpOnly": true,
                        "sameSite": "Strict" }),
            )
            .await?;
        }
        page.client.goto(url).await?;
        let found = page
            .wait_for("return window.__firstTiles || null", Duration::from_secs(60))
            .await
            .with_context(|| format!("the first {n} thumbnails of {url} were never painted"))?;
        let loaded = found["loaded"].as_u64().unwrap_or(0);
        let ms = found["ms"].as_f64();
        if loaded != n as u64 || ms.is_none() {
            bail!("{url}: {loaded} of the first {n} thumbnails loaded: {found}");
        }
        let first_byte = page
            .client
            .execute(
                "return performance.getEntriesByType('navigation')[0].responseStart",
                Vec::new(),
            )
            .await?;
        Ok(Load {
            first_tiles_ms: ms.unwrap_or_default(),
            first_byte_ms: first_byte.as_f64().unwrap_or_default(),
        })
    }
    .await;
    page.close().await?;
    result
}

/// What the timeline page loads from `/static/`: each asset's path and its `Content-Length`.
pub async fn assets(
    http: &reqwest::Client,
    base: &str,
    html: &str,
    cookie: &str,
) -> Result<Vec<(String, u64)>> {
    let mut found = Vec::new();
    for path in references(html, "/static/") {
        let response = http
            .get(format!("{base}{path}"))
            .header("cookie", format!("iphoto_session={cookie}"))
            .send()
            .await?;
        if !response.status().is_success() {
            bail!("{path}: {}", response.status());
        }
        let length = response
            .content_length()
            .with_context(|| format!("{path} has no Content-Length"))?;
        found.push((path, length));
    }
    Ok(found)
}

/// Every distinct `src="…"` or `href="…"` of `html` that starts with `prefix`, in order.
fn references(html: &str, prefix: &str) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    for attribute in ["src=\"", "href=\""] {
        for part in html.split(attribute).skip(1) {
            let value = part.split('"').next().unwrap_or_default();
            if value.starts_with(prefix) && !found.iter().any(|f| f == value) {
                found.push(value.to_owned());
            }
        }
    }
    found
}

/// A static copy of the timeline page under `python3 -m http.server`: the page's HTML as served, the scrubber
/// fragment its script fetches (`/months`: the file server answers a path whatever its query), the assets
/// and the thumbnails of its tiles, each at the path the page asks for.
#[derive(Debug)]
pub struct StaticCopy {
    child: Child,
    _dir: tempfile::TempDir,
    /// `http://127.0.0.1:<port>/`.
    pub url: String,
}

impl StaticCopy {
    /// Copies `base`'s timeline page (signed in with `cookie`) and serves it.
    pub async fn start(http: &reqwest::Client, base: &str, cookie: &str) -> Result<StaticCopy> {
        let dir = tempfile::Builder::new()
            .prefix("iphoto-bench-static-")
            .tempdir()?;
        let fetch = |path: String| {
            let request = http
                .get(format!("{base}{path}"))
                .header("cookie", format!("iphoto_session={cookie}"));
            async move {
                let response = request.send().await?;
                if !response.status().is_success() {
                    bail!("{path}: {}", response.status());
                }
                Ok::<_, anyhow::Error>(response.bytes().await?)
            }
        };
        let html = fetch("/".to_owned()).await?;
        let text = String::from_utf8_lossy(&html).into_owned();
        let save = |path: &str, bytes: &[u8]| -> Result<()> {
            let file = dir.path().join(path.trim_start_matches('/'));
            std::fs::create_dir_all(file.parent().context("a path with a parent")?)?;
            std::fs::write(file, bytes)?;
            Ok(())
        };
        save("/index.html", &html)?;
        save("/months", &fetch("/months?partial=true".to_owned()).await?)?;
        for path in references(&text, "/static/")
            .into_iter()
            .chain(references(&text, "/media/"))
        {
            save(&path, &fetch(path.clone()).await?)?;
        }
        let port = harness::free_port()?;
        let child = Command::new("python3")
            .args([
                "-m",
                "http.server",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--directory",
            ])
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting python3 -m http.server")?;
        let url = format!("http://127.0.0.1:{port}/");
        let deadline = Instant::now() + Duration::from_secs(20);
        while http.get(&url).send().await.is_err() {
            if Instant::now() > deadline {
                bail!("python3 -m http.server did not answer on {url}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(StaticCopy {
            child,
            _dir: dir,
            url,
        })
    }
}

impl Drop for StaticCopy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The median of `values` (0 when empty).
pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => 0.0,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}
