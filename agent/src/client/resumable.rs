//! The resumable upload calls (draft-ietf-httpbis-resumable-upload-15): creation on the upload route with an
//! empty content (so the upload's URL is known, and can be kept, before any byte can be lost), the offset
//! (`HEAD`), and an append of the rest of the file (`PATCH`). Orchestration — when to ask for the offset,
//! what to keep in the state DB — is `sync/upload.rs`'s.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use reqwest::StatusCode;

use super::{Server, Upload, chain, decode, encode_path, file_body, refused, retryable};
use crate::error::Result;

/// What creating an upload gave.
#[derive(Debug)]
pub enum Created {
    /// The server already holds these bytes (for this resource or as the user's content): done.
    Stored(api::UploadAnswer),
    /// The upload resource's URL (absolute).
    At(String),
}

/// Where an upload stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offset {
    /// The server kept this many bytes.
    At(u64),
    /// The upload completed (its answer was lost): creating it again answers "stored".
    Complete,
    /// The server does not know it (expired or cancelled): start over.
    Gone,
}

/// How an append ended.
#[derive(Debug)]
pub enum Appended {
    /// Stored.
    Done(api::UploadAnswer),
    /// Cut short (network, timeout, another append running, 5xx): ask for the offset and go on.
    Interrupted(String),
    /// The server does not know the upload: start over.
    Gone,
}

impl Server {
    /// Creates a resumable upload of `upload` with an empty first content, announcing its length and
    /// digest (retried like every call).
    pub async fn create_upload(&self, upload: &Upload<'_>) -> Result<Created> {
        let url = &format!(
            "{}/client/iphoto/upload/{}",
            self.base,
            encode_path(upload.local_identifier)
        );
        let what = format!(
            "resumable upload of {} {}",
            upload.local_identifier,
            upload.resource.as_str()
        );
        let response = self
            .call(&what, || async move {
                Ok(self
                    .http
                    .post(url)
                    .query(&[
                        ("resource", upload.resource.as_str()),
                        ("library", upload.library_id),
                    ])
                    .header("upload-complete", "?0")
                    .header("upload-length", upload.size)
                    .header("x-content-sha256", upload.sha256)
                    .header(reqwest::header::CONTENT_LENGTH, 0)
                    .body(Vec::new()))
            })
            .await?;
        if response.status() == StatusCode::OK {
            return Ok(Created::Stored(decode(&what, response).await?));
        }
        let location = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        match location {
            Some(location) if location.starts_with('/') => {
                Ok(Created::At(format!("{}{location}", self.base)))
            }
            Some(location) => Ok(Created::At(location)),
            None => Err(crate::error::Error::Unreachable {
                what,
                attempts: 1,
                detail: format!("HTTP {} without a Location", response.status()),
            }),
        }
    }

    /// `HEAD` on the upload: how many bytes the server kept (retried like every call; 404 is [`Offset::Gone`]).
    pub async fn upload_offset(&self, url: &str) -> Result<Offset> {
        let what = "offset of a resumable upload";
        let response = self.call(what, || async move { Ok(self.http.head(url)) }).await;
        let response = match response {
            Ok(response) => response,
            Err(crate::error::Error::Refused { status: 404, .. }) => return Ok(Offset::Gone),
            Err(e) => return Err(e),
        };
        let field = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok());
        if field("upload-complete") == Some("?1") {
            return Ok(Offset::Complete);
        }
        let offset = field("upload-offset")
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| crate::error::Error::Unreachable {
                what: what.to_owned(),
                attempts: 1,
                detail: "no Upload-Offset in the answer".into(),
            })?;
        Ok(Offset::At(offset))
    }

    /// `PATCH`: the file from `offset` to its end, completing the upload. One attempt: the caller asks
    /// for the offset after an interruption. `sent` counts the bytes as they leave.
    pub async fn append_upload(
        &self,
        url: &str,
        upload: &Upload<'_>,
        offset: u64,
        sent: &Arc<AtomicU64>,
    ) -> Result<Appended> {
        let what = format!(
            "resumable upload of {} {}",
            upload.local_identifier,
            upload.resource.as_str()
        );
        let body = file_body(upload.path, offset, Arc::clone(sent)).await?;
        let request = self
            .http
            .patch(url)
            .bearer_auth(&self.token)
            .header("upload-offset", offset)
            .header("upload-complete", "?1")
            .header(reqwest::header::CONTENT_TYPE, "application/partial-upload")
            .header(reqwest::header::CONTENT_LENGTH, upload.size - offset)
            .body(body);
        match request.send().await {
            Ok(response) if response.status() == StatusCode::OK => {
                Ok(Appended::Done(decode(&what, response).await?))
            }
            Ok(response) if response.status() == StatusCode::NOT_FOUND => Ok(Appended::Gone),
            Ok(response)
                if retryable(response.status())
                    || response.status() == StatusCode::CONFLICT
                    || response.status() == StatusCode::BAD_REQUEST
                        && response.headers().contains_key("upload-offset") =>
            {
                Ok(Appended::Interrupted(format!("HTTP {}", response.status())))
            }
            Ok(response) => Err(refused(&what, response).await),
            Err(e) => Ok(Appended::Interrupted(chain(&e))),
        }
    }
}
