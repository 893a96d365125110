//! The server's client routes, over reqwest, with retries: network errors, 408, 429 and 5xx are retried with
//! exponential backoff (a short loop rather than a crate: the policy is four lines and the upload needs to
//! reopen its file on every attempt); any other 4xx is a refusal and is returned at once, since repeating the
//! same request cannot succeed.

use std::future::Future;
use std::io::Read as _;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::StreamExt as _;
use reqwest::StatusCode;

use crate::error::{Error, Result};

mod resumable;

pub use resumable::{Appended, Created, Offset};

/// Bytes read from a file per chunk of an upload body: large enough that a 2–8 MB photo is a handful of
/// chunks (each a hand-off between threads), small enough that four uploads in flight hold a few MiB.
const UPLOAD_CHUNK: usize = 1 << 20;
/// Chunks read ahead of the network per upload: the disk and the socket work at the same time.
const READ_AHEAD: usize = 3;

/// How often and how patiently a request is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// Attempts in all (at least 1).
    pub attempts: u32,
    /// Wait after the first failure; doubled after each further one.
    pub first_delay: Duration,
    /// The longest wait between two attempts.
    pub max_delay: Duration,
}

impl Default for Retry {
    /// Ten attempts over about a minute: long enough to ride out a server restart, short enough that a pass
    /// against a server that is really gone ends and the next interval tries again.
    fn default() -> Self {
        Retry {
            attempts: 10,
            first_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(15),
        }
    }
}

/// A connection to one server, authenticated by a client token.
#[derive(Debug, Clone)]
pub struct Server {
    http: reqwest::Client,
    base: String,
    token: String,
    retry: Retry,
}

impl Server {
    /// A client for `base` (e.g. `http://127.0.0.1:8080`).
    pub fn new(base: &str, token: &str, retry: Retry) -> Result<Server> {
        let base = base.trim_end_matches('/').to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(Error::Config {
                name: "--server (IPHOTO_SERVER)",
                reason: format!("{base:?} is not an http:// or https:// URL"),
            });
        }
        if token.trim().is_empty() {
            return Err(Error::Config {
                name: "--token-file (IPHOTO_TOKEN_FILE)",
                reason: "the token is empty".into(),
            });
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("iphoto-agent/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Config {
                name: "--server (IPHOTO_SERVER)",
                reason: format!("HTTP client: {e}"),
            })?;
        Ok(Server {
            http,
            base,
            token: token.trim().to_owned(),
            retry,
        })
    }

    /// How many attempts a call gets.
    pub fn retry_attempts(&self) -> u32 {
        self.retry.attempts.max(1)
    }

    /// `POST /client/iphoto/sync`.
    pub async fn sync(&self, request: &api::SyncRequest) -> Result<api::SyncAnswer> {
        let url = &format!("{}/client/iphoto/sync", self.base);
        let response = self
            .call(
                "sync batch",
                || async move { Ok(self.http.post(url).json(request)) },
            )
            .await?;
        decode("sync batch", response).await
    }

    /// `POST /client/iphoto/albums`.
    pub async fn albums(&self, request: &api::AlbumsRequest) -> Result<api::AlbumsAnswer> {
        let url = &format!("{}/client/iphoto/albums", self.base);
        let response = self
            .call("albums", || async move { Ok(self.http.post(url).json(request)) })
            .await?;
        decode("albums", response).await
    }

    /// `GET /client/iphoto/upload/pending`: what `library` (the library id sync batches used) is asked to
    /// upload.
    pub async fn pending(&self, library: &str, limit: u32, cursor: Option<&str>) -> Result<api::PendingPage> {
        let url = &format!("{}/client/iphoto/upload/pending", self.base);
        let mut owned = vec![("library", library.to_owned()), ("limit", limit.to_string())];
        if let Some(cursor) = cursor {
            owned.push(("cursor", cursor.to_owned()));
        }
        let query = &owned;
        let response = self
            .call(
                "pending list",
                || async move { Ok(self.http.get(url).query(query)) },
            )
            .await?;
        decode("pending list", response).await
    }

    /// `GET /client/iphoto/stats`.
    pub async fn stats(&self) -> Result<api::Stats> {
        let url = &format!("{}/client/iphoto/stats", self.base);
        let response = self
            .call("stats", || async move { Ok(self.http.get(url)) })
            .await?;
        decode("stats", response).await
    }

    /// `POST /client/iphoto/upload/{localIdentifier}`: streams `path` from disk with its digest announced.
    /// `sent` counts bytes as they leave (for progress bars); a retry starts the file over.
    pub async fn upload(&self, upload: &Upload<'_>, sent: &Arc<AtomicU64>) -> Result<api::UploadAnswer> {
        let url = &format!(
            "{}/client/iphoto/upload/{}",
            self.base,
            encode_path(upload.local_identifier)
        );
        let what = format!(
            "upload of {} {}",
            upload.local_identifier,
            upload.resource.as_str()
        );
        let response = self
            .call(&what, || async move {
                let body = file_body(upload.path, 0, Arc::clone(sent)).await?;
                Ok(self
                    .http
                    .post(url)
                    .query(&[
                        ("resource", upload.resource.as_str()),
                        ("library", upload.library_id),
                    ])
                    .header("X-Content-SHA256", upload.sha256)
                    .header(reqwest::header::CONTENT_LENGTH, upload.size)
                    .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
                    .body(body))
            })
            .await?;
        decode(&what, response).await
    }

    /// Sends the request `build` makes, again after a backoff while the failure is worth retrying.
    async fn call<F, Fut>(&self, what: &str, mut build: F) -> Result<reqwest::Response>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<reqwest::RequestBuilder>>,
    {
        let attempts = self.retry.attempts.max(1);
        let mut delay = self.retry.first_delay;
        let mut last = String::new();
        for attempt in 1..=attempts {
            let request = build().await?.bearer_auth(&self.token);
            match request.send().await {
                Ok(response) if response.status().is_success() => return Ok(response),
                Ok(response) if retryable(response.status()) => {
                    last = format!("HTTP {}", response.status());
                }
                Ok(response) => return Err(refused(what, response).await),
                Err(e) => last = chain(&e),
            }
            if attempt < attempts {
                tracing::warn!(what, attempt, error = %last, delay_ms = delay.as_millis() as u64, "retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(self.retry.max_delay);
            }
        }
        Err(Error::Unreachable {
            what: what.to_owned(),
            attempts,
            detail: last,
        })
    }
}

/// A file as a streamed request body. A blocking thread reads it in [`UPLOAD_CHUNK`]s, up to [`READ_AHEAD`] ahead
/// of the socket, so reading and sending overlap and each chunk is one read into its own buffer. (Through
/// `tokio::fs::File` every 256 KiB was a round trip to the blocking pool, then a copy, with the socket idle
/// meanwhile: on a busy machine the agent uploaded at half curl's rate.) `sent` counts bytes as the body hands
/// them to the connection. The reader stops when the request is dropped.
/// `offset` bytes of the file are skipped (a resumed upload sends the rest).
async fn file_body(path: &Path, offset: u64, sent: Arc<AtomicU64>) -> Result<reqwest::Body> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        action: "opening for upload",
        source,
    };
    let mut file = tokio::fs::File::open(path).await.map_err(io)?.into_std().await;
    if offset > 0 {
        use std::io::Seek as _;
        file.seek(std::io::SeekFrom::Start(offset)).map_err(io)?;
    }
    let (chunks, mut receiver) = tokio::sync::mpsc::channel::<std::io::Result<bytes::Bytes>>(READ_AHEAD);
    tokio::task::spawn_blocking(move || {
        loop {
            let mut buffer = vec![0u8; UPLOAD_CHUNK];
            let chunk = match file.read(&mut buffer) {
                Ok(0) => return,
                Ok(n) => {
                    buffer.truncate(n);
                    Ok(bytes::Bytes::from(buffer))
                }
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(error) => Err(error),
            };
            let failed = chunk.is_err();
            // A send error means the request is gone (answered, failed or cancelled): stop reading.
            if chunks.blocking_send(chunk).is_err() || failed {
                return;
            }
        }
    });
    let stream = futures::stream::poll_fn(move |cx| receiver.poll_recv(cx)).map(move |chunk| {
        if let Ok(bytes) = &chunk {
            sent.fetch_add(bytes.len() as u64, Ordering::Relaxed);
        }
        chunk
    });
    Ok(reqwest::Body::wrap_stream(stream))
}

/// One resource to upload.
#[derive(Debug, Clone, Copy)]
pub struct Upload<'a> {
    /// The library id sync batches used.
    pub library_id: &'a str,
    /// The asset.
    pub local_identifier: &'a str,
    /// Which file.
    pub resource: api::ResourceType,
    /// Where it is on disk.
    pub path: &'a Path,
    /// Its hex SHA-256, sent as `X-Content-SHA256` so the server verifies (and can skip) the bytes.
    pub sha256: &'a str,
    /// Its size, sent as `Content-Length`.
    pub size: u64,
}

fn retryable(status: StatusCode) -> bool {
    status.is_server_error()
        || status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
}

async fn refused(what: &str, response: reqwest::Response) -> Error {
    let status = response.status();
    let body = response.json::<api::ErrorBody>().await.ok();
    let (code, message) = match body {
        Some(body) => (body.error.code.to_string(), body.error.message),
        None => (
            format!("http_{}", status.as_u16()),
            status.canonical_reason().unwrap_or("").to_owned(),
        ),
    };
    Error::Refused {
        what: what.to_owned(),
        status: status.as_u16(),
        code,
        message,
    }
}

async fn decode<T: serde::de::DeserializeOwned>(what: &str, response: reqwest::Response) -> Result<T> {
    response.json::<T>().await.map_err(|source| Error::BadAnswer {
        what: what.to_owned(),
        source,
    })
}

/// An error with its causes, since reqwest's own message ("error sending request") hides the useful part.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Percent-encodes a local identifier for the path; its `/`s stay (the route takes the rest of the path).
fn encode_path(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_keep_their_slashes() {
        assert_eq!(encode_path("AB-1/L0/001"), "AB-1/L0/001");
        assert_eq!(encode_path("a b?"), "a%20b%3F");
    }

    #[test]
    fn only_transient_statuses_are_retried() {
        assert!(retryable(StatusCode::BAD_GATEWAY));
        assert!(retryable(StatusCode::TOO_MANY_REQUESTS));
        assert!(!retryable(StatusCode::NOT_FOUND));
        assert!(!retryable(StatusCode::UNPROCESSABLE_ENTITY));
    }
}
