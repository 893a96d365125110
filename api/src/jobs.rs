//! The worker surface: enrichment jobs leased by workers (scope `worker`) and their results.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What an enrichment job computes for one photo.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    /// A bounded-size JPEG/WebP derivative stored under the derivatives prefix.
    Thumbnail,
    /// Scene/object labels.
    Classify,
    /// Face regions.
    Face,
}

impl JobKind {
    /// Every kind, in the order jobs are queued for a newly stored original.
    pub const ALL: [JobKind; 3] = [JobKind::Thumbnail, JobKind::Classify, JobKind::Face];

    /// The snake_case name used on the wire and in the catalog.
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Thumbnail => "thumbnail",
            JobKind::Classify => "classify",
            JobKind::Face => "face",
        }
    }
}

/// One leased job: what to work on and until when the lease holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LeasedJob {
    /// The job's id, for `result` and `fail`.
    pub id: String,
    /// What to compute.
    pub kind: JobKind,
    /// The photo's catalog id.
    pub photo_id: String,
    /// The photo's kind (`photo` or `video`).
    pub photo_kind: crate::AssetKind,
    /// The original's uniform type identifier (`public.jpeg`, `public.heic`, `com.apple.quicktime-movie`, …).
    pub uti: String,
    /// The original's size in bytes.
    pub size: u64,
    /// The original's SHA-256 (lower-case hex).
    pub sha256: String,
    /// A presigned, short-lived GET of the original.
    pub original_url: String,
    /// Where a derivative of this job must be written (thumbnail jobs; a storage key under the derivatives
    /// prefix of this user).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub derivative_key: Option<String>,
    /// Where the large preview made from the same decoded original must be written (thumbnail jobs; beside
    /// the thumbnail, under the same user's derivatives prefix). A worker that makes no preview ignores it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preview_key: Option<String>,
    /// How many times this job was leased before, this lease excluded.
    pub attempts: u32,
    /// The lease ends at this time; after it the job is offered to another worker.
    pub lease_expires_at: DateTime<Utc>,
}

/// `POST /worker/jobs/lease` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LeaseAnswer {
    /// The leased jobs (possibly none).
    pub jobs: Vec<LeasedJob>,
}

/// `POST /worker/jobs/{id}/result` body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobResult {
    /// The result document (for a thumbnail: see [`ThumbnailResult`]), shown in `GET /my/photos/{id}`.
    #[schema(value_type = Object)]
    pub result: serde_json::Value,
}

/// The result document of a thumbnail job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ThumbnailResult {
    /// The storage key the derivative was written to (the job's `derivativeKey`).
    pub key: String,
    /// `image/jpeg` or `image/webp`.
    pub content_type: String,
    /// Width in pixels.
    #[serde(deserialize_with = "crate::int::exact")]
    pub width: u32,
    /// Height in pixels.
    #[serde(deserialize_with = "crate::int::exact")]
    pub height: u32,
    /// Size in bytes.
    #[serde(deserialize_with = "crate::int::exact")]
    pub size: u64,
    /// The large preview (long edge about 2048 px) made from the same decoded original, written to the
    /// job's `previewKey`. Absent from an older worker's result: the photo's preview then stays pending.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preview: Option<PreviewResult>,
}

/// The preview a thumbnail job made beside its thumbnail: what browsers are shown instead of an original
/// they cannot display (HEIC) or that is needlessly large.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PreviewResult {
    /// The storage key the preview was written to (the job's `previewKey`).
    pub key: String,
    /// `image/jpeg`.
    pub content_type: String,
    /// Width in pixels.
    #[serde(deserialize_with = "crate::int::exact")]
    pub width: u32,
    /// Height in pixels.
    #[serde(deserialize_with = "crate::int::exact")]
    pub height: u32,
    /// Size in bytes.
    #[serde(deserialize_with = "crate::int::exact")]
    pub size: u64,
}

/// `POST /worker/jobs/{id}/fail` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobFailure {
    /// A short snake_case reason (`unsupported`, `corrupt`, `download_failed`, `heif_unavailable`, …): 1 to 64
    /// of `a-z`, `0-9` and `_`.
    #[schema(min_length = 1, max_length = 64, pattern = r"^[a-z0-9_]+$")]
    pub reason: String,
    /// What went wrong, for people.
    pub message: String,
}

/// `POST /worker/jobs/{id}/result` and `/fail` answer: the job's state afterwards.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobAnswer {
    /// The job's id.
    pub id: String,
    /// `done`, `queued` (failed, will be offered again) or `parked` (failed too often; kept with its error).
    pub state: String,
    /// Failed attempts so far.
    pub failures: u32,
}
