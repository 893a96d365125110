//! The web pages as a person's browser reaches them, for the benchmarks of the pages (`web_pages`): a web
//! password set with the real CLI, a sign-in through the real form (the CSRF cookie and the form's token,
//! then the session cookie), and real JPEG thumbnails written where the catalog's thumbnail results point.

use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context as _, Result, bail};
use bytes::Bytes;

/// `iphoto-server user passwd NAME` on the server's catalog (`data_dir`, and PostgreSQL at `database_url`),
/// the password on standard input as an operator types it.
pub fn set_password(data_dir: &Path, database_url: Option<&str>, user: &str, password: &str) -> Result<()> {
    use std::io::Write as _;
    let mut command = Command::new(crate::server::binary()?);
    command
        .args(["user", "passwd", user, "--data-dir"])
        .arg(data_dir)
        .env_remove("IPHOTO_DATABASE_URL")
        .env_remove("IPHOTO_PASSWORD_FILE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(url) = database_url {
        command.env("IPHOTO_DATABASE_URL", url);
    }
    let mut child = command.spawn()?;
    child
        .stdin
        .take()
        .context("no stdin")?
        .write_all(format!("{password}\n").as_bytes())?;
    let output = child.wait_with_output()?;
    if !output.status.success() {
        bail!(
            "user passwd {user} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

/// The value of cookie `name` among an answer's `Set-Cookie` headers.
fn set_cookie(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|c| c.split(';').next()?.split_once('='))
        .find(|(n, v)| *n == name && !v.is_empty())
        .map(|(_, v)| v.to_owned())
}

/// Signs in through `GET /login` and `POST /login` as a browser does; the session cookie's value.
pub async fn sign_in(base: &str, user: &str, password: &str) -> Result<String> {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let form = http
        .get(format!("{base}/login"))
        .header("accept", "text/html")
        .send()
        .await?;
    let csrf_cookie = set_cookie(&form, "iphoto_csrf").context("the login form set no CSRF cookie")?;
    let body = form.text().await?;
    let marker = "name=\"csrf\" value=\"";
    let start = body.find(marker).context("the login form has no csrf field")? + marker.len();
    let token = body[start..].split('"').next().unwrap_or_default();
    let fields = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("username", user),
            ("password", password),
            ("csrf", token),
            ("next", "/"),
        ])
        .finish();
    let signed = http
        .post(format!("{base}/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("cookie", format!("iphoto_csrf={csrf_cookie}"))
        .body(fields)
        .send()
        .await?;
    if signed.status() != reqwest::StatusCode::SEE_OTHER {
        bail!("sign-in refused: {}: {}", signed.status(), signed.text().await?);
    }
    set_cookie(&signed, "iphoto_session").context("the sign-in set no session cookie")
}

/// A small real JPEG (256×192, q82: about what the worker's thumbnails weigh per pixel), its colours set by
/// `seed`.
pub fn jpeg(seed: usize) -> Result<Vec<u8>> {
    let (r, g) = ((seed * 37 % 256) as u8, (seed * 91 % 256) as u8);
    let image = image::RgbImage::from_fn(256, 192, |x, y| {
        image::Rgb([
            r.wrapping_add(x as u8 / 2),
            g.wrapping_add(y as u8),
            ((x ^ y) % 256) as u8,
        ])
    });
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 82).encode_image(&image)?;
    Ok(out)
}

/// Writes a real JPEG thumbnail for each photo number in `photos` into the server's local store (under
/// `data_dir/blobs`, the default), at the key its `thumbnail` enrichment names. Returns the bytes written.
pub async fn write_thumbnails(
    data_dir: &Path,
    user: &str,
    photos: impl IntoIterator<Item = usize>,
) -> Result<u64> {
    let store = storage::create_object_store(&storage::StorageConfig {
        backend: storage::BackendConfig::Local(storage::LocalConfig {
            root: data_dir.join("blobs"),
            // Only `put` is used: no URL is signed with it.
            presign_secret: storage::Secret::new("0".repeat(64)),
            public_url: "http://127.0.0.1:1".parse()?,
        }),
        presign: storage::PresignPolicy::default(),
    })?;
    // Eight pictures in turn: encoding is slow in a debug build, and a browser caches by URL, not by bytes.
    let pictures: Vec<Bytes> = (0..8)
        .map(|seed| jpeg(seed).map(Bytes::from))
        .collect::<Result<_>>()?;
    let mut written = 0;
    for i in photos {
        let bytes = pictures[i % pictures.len()].clone();
        written += bytes.len() as u64;
        let key = storage::StorageKey::parse(crate::catalog::thumbnail_key(user, i))?;
        store.put(&key, bytes, &storage::PutOptions::default()).await?;
    }
    Ok(written)
}
