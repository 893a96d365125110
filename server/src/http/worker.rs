//! The worker surface (scope `worker`): enrichment workers lease jobs, then post a result or a failure.
//!
//! A worker token belongs to a user and sees that user's jobs only (every catalog query filters by user), so
//! a worker can never be handed another user's original. Each leased job carries a presigned GET of the
//! original and, for thumbnails, the keys under the user's derivatives prefix the thumbnail and the preview
//! must be written to; a thumbnail result naming any other key is refused, so the web never presigns a key a
//! worker chose.

use api::ErrorCode;
use std::time::Duration;

use axum::extract::State;
use storage::LibraryLayout;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::WorkerAuth;
use super::error::ApiError;
use super::extract::{Json, Path, Query};
use crate::catalog::{JobInfo, JobStatus, LeaseRequest, UserId};

/// Most jobs one lease call may take.
pub const MAX_LEASE: u32 = 100;
/// Longest lease a worker may ask for, seconds.
pub const MAX_LEASE_SECS: u64 = 3600;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::default()
        .routes(routes!(post_lease))
        .routes(routes!(post_result))
        .routes(routes!(post_fail))
}

/// Query of a lease.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct LeaseParams {
    /// Which kind of job to lease.
    kind: api::JobKind,
    /// Most jobs to take, 1 to 100 (default 1).
    #[param(minimum = 1, maximum = 100)]
    max: Option<u32>,
    /// Lease length in seconds, 1 to 3600 (default the server's `IPHOTO_JOB_LEASE_SECS`).
    #[param(minimum = 1, maximum = 3600)]
    lease_secs: Option<u64>,
}

/// Leases jobs of one kind: queued ones, and ones whose lease expired. Never the same job to two workers.
#[utoipa::path(post, path = "/worker/jobs/lease", tag = "worker", operation_id = "post_job_lease",
    params(LeaseParams),
    responses((status = 200, body = api::LeaseAnswer), (status = 400, body = api::ErrorBody),
        (status = 401, body = api::ErrorBody), (status = 403, body = api::ErrorBody)),
    security(("bearer" = ["worker"])))]
#[tracing::instrument(skip_all, fields(kind))]
pub(crate) async fn post_lease(
    State(state): State<AppState>,
    WorkerAuth(caller): WorkerAuth,
    Query(params): Query<LeaseParams>,
) -> Result<axum::response::Response, ApiError> {
    let kind = params.kind;
    tracing::Span::current().record("kind", kind.as_str());
    let max = params.max.unwrap_or(1);
    if !(1..=MAX_LEASE).contains(&max) {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidQuery,
            format!("max: {max} is outside 1..={MAX_LEASE}"),
        ));
    }
    let lease = match params.lease_secs {
        None => state.settings().job_lease,
        Some(secs) if (1..=MAX_LEASE_SECS).contains(&secs) => Duration::from_secs(secs),
        Some(secs) => {
            return Err(ApiError::bad_request(
                ErrorCode::InvalidQuery,
                format!("leaseSecs: {secs} is outside 1..={MAX_LEASE_SECS}"),
            ));
        }
    };
    let request = LeaseRequest {
        kind,
        max,
        lease_ms: i64::try_from(lease.as_millis()).unwrap_or(i64::MAX),
    };
    let user_id = &caller.user.id;
    let leased = state.catalog().lease_jobs(user_id, &request).await?;
    // The URL lives as long as the lease, within what the store allows.
    let ttl = lease.min(state.store().presign_policy().max_ttl);
    let mut jobs = Vec::with_capacity(leased.len());
    for job in leased {
        let Some(original) = &job.original else {
            continue;
        };
        let key = storage::StorageKey::parse(original.key.as_str())?;
        let url = state.store().presign_get(&key, Some(ttl)).await?;
        jobs.push(api::LeasedJob {
            derivative_key: derivative_key(user_id, &job, "thumbnail")?,
            preview_key: derivative_key(user_id, &job, "preview")?,
            id: job.id.clone(),
            kind: job.kind,
            photo_id: job.photo_id.as_str().to_owned(),
            photo_kind: job.photo_kind,
            uti: job.uti.clone(),
            size: job.size,
            sha256: original.sha256.clone(),
            original_url: url.url.to_string(),
            attempts: job.attempts,
            lease_expires_at: job.lease_expires_at.unwrap_or_else(chrono::Utc::now),
        });
    }
    // An idle worker polls every few seconds: its empty leases are logged at debug, request line included.
    let leased = jobs.len();
    let mut response = axum::response::IntoResponse::into_response(Json(api::LeaseAnswer { jobs }));
    if leased == 0 {
        tracing::debug!(leased, "leased jobs");
        response.extensions_mut().insert(super::request_log::Quiet);
    } else {
        tracing::info!(leased, "leased jobs");
    }
    Ok(response)
}

/// Stores a job's result (shown in `GET /my/photos/{id}`) and completes the job; it is never leased again.
#[utoipa::path(post, path = "/worker/jobs/{jobId}/result", tag = "worker", operation_id = "post_job_result",
    params(("jobId" = String, Path, description = "the leased job's id")),
    request_body = api::JobResult,
    responses((status = 200, body = api::JobAnswer), (status = 400, body = api::ErrorBody, description = "not JSON, or not the JSON this route takes"),
        (status = 401, body = api::ErrorBody), (status = 403, body = api::ErrorBody),
        (status = 404, body = api::ErrorBody, description = "no such job of the caller's user"),
        (status = 413, body = api::ErrorBody, description = "a body over 16 MiB"),
        (status = 415, body = api::ErrorBody, description = "a Content-Type other than application/json"),
        (status = 422, body = api::ErrorBody)),
    security(("bearer" = ["worker"])))]
#[tracing::instrument(skip_all)]
pub(crate) async fn post_result(
    State(state): State<AppState>,
    WorkerAuth(caller): WorkerAuth,
    Path(job_id): Path<String>,
    Json(body): Json<api::JobResult>,
) -> Result<Json<api::JobAnswer>, ApiError> {
    let user_id = &caller.user.id;
    let job = state
        .catalog()
        .job(user_id, &job_id)
        .await?
        .ok_or_else(|| ApiError::not_found("job"))?;
    if !body.result.is_object() {
        return Err(invalid("result: must be a JSON object"));
    }
    if serde_json::to_string(&body.result).map_or(0, |s| s.len()) > 64 * 1024 {
        return Err(invalid("result: larger than 64 KiB"));
    }
    if job.kind == api::JobKind::Thumbnail {
        let thumbnail: api::ThumbnailResult = serde_json::from_value(body.result.clone())
            .map_err(|e| invalid(format!("result: not a thumbnail result: {e}")))?;
        let expected = derivative_key(user_id, &job, "thumbnail")?.unwrap_or_default();
        if thumbnail.key != expected {
            return Err(invalid(format!(
                "result.key: must be the job's derivativeKey {expected:?}"
            )));
        }
        match &thumbnail.preview {
            Some(preview) => {
                let expected = derivative_key(user_id, &job, "preview")?.unwrap_or_default();
                if preview.key != expected {
                    return Err(invalid(format!(
                        "result.preview.key: must be the job's previewKey {expected:?}"
                    )));
                }
            }
            // Accepted, so an older worker still gives thumbnails; the photo's preview stays pending.
            None => {
                tracing::warn!(job = %job_id, "a thumbnail result without a preview: is the worker older than the server?")
            }
        }
    }
    let status = state
        .catalog()
        .complete_job(user_id, &job_id, &body.result)
        .await?;
    Ok(Json(answer(status)))
}

/// Records a failure: the job is offered again after a pause, or parked with this error once it failed
/// `IPHOTO_JOB_MAX_FAILURES` times. A failure for a job not leased any more changes nothing.
#[utoipa::path(post, path = "/worker/jobs/{jobId}/fail", tag = "worker", operation_id = "post_job_fail",
    params(("jobId" = String, Path, description = "the leased job's id")),
    request_body = api::JobFailure,
    responses((status = 200, body = api::JobAnswer), (status = 400, body = api::ErrorBody, description = "not JSON, or not the JSON this route takes"),
        (status = 401, body = api::ErrorBody), (status = 403, body = api::ErrorBody),
        (status = 404, body = api::ErrorBody, description = "no such job of the caller's user"),
        (status = 413, body = api::ErrorBody, description = "a body over 16 MiB"),
        (status = 415, body = api::ErrorBody, description = "a Content-Type other than application/json"),
        (status = 422, body = api::ErrorBody)),
    security(("bearer" = ["worker"])))]
#[tracing::instrument(skip_all)]
pub(crate) async fn post_fail(
    State(state): State<AppState>,
    WorkerAuth(caller): WorkerAuth,
    Path(job_id): Path<String>,
    Json(body): Json<api::JobFailure>,
) -> Result<Json<api::JobAnswer>, ApiError> {
    let reason_ok = !body.reason.is_empty()
        && body.reason.len() <= 64
        && body
            .reason
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !reason_ok {
        return Err(invalid("reason: must be 1 to 64 characters of a-z, 0-9 and _"));
    }
    let settings = state.settings();
    let error = format!("{}: {}", body.reason, body.message);
    let status = state
        .catalog()
        .fail_job(
            &caller.user.id,
            &job_id,
            &error,
            settings.job_max_failures,
            i64::try_from(settings.job_retry_after.as_millis()).unwrap_or(i64::MAX),
        )
        .await?;
    tracing::info!(
        state = status.state.as_str(),
        failures = status.failures,
        "job failure recorded"
    );
    Ok(Json(answer(status)))
}

/// Where a thumbnail job writes its derivative of `kind` (`thumbnail` or `preview`):
/// `…/derivatives/<kind>/<X>/<SHA-256>.jpg` under the photo's library, so under the user's own prefix.
fn derivative_key(user_id: &UserId, job: &JobInfo, kind: &str) -> Result<Option<String>, ApiError> {
    if job.kind != api::JobKind::Thumbnail {
        return Ok(None);
    }
    // Named by the content it is made from, never by the identifier: two identifiers sharing a UUID cannot
    // share a thumbnail, and a changed original gets a new one instead of overwriting the old.
    let Some(original) = &job.original else {
        return Ok(None);
    };
    let layout = LibraryLayout::new(user_id.as_str(), job.library_id.as_str())?;
    Ok(Some(
        layout.derivative(kind, &original.sha256, "jpg")?.to_string(),
    ))
}

fn answer(status: JobStatus) -> api::JobAnswer {
    api::JobAnswer {
        id: status.id,
        state: status.state.as_str().to_owned(),
        failures: status.failures,
    }
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::UNPROCESSABLE_ENTITY,
        ErrorCode::InvalidField,
        message,
    )
}
