//! The thumbnail worker: leases `thumbnail` jobs from a server (`POST /worker/jobs/lease`), downloads each
//! original through its presigned URL into a temporary file, makes the thumbnail and the preview from one
//! decode on a blocking thread ([`crate::thumbnail`]), `put`s them under the job's `derivativeKey` and
//! `previewKey` and posts the result — or the failure with its reason (the job body is in `job`).
//!
//! `concurrency` loops run side by side, each leasing one job at a time, so a slow original never holds
//! leases another loop could be working on. A loop that finds no job sleeps, doubling the pause up to
//! [`WorkerSettings::max_idle`]. Cancelling the token stops leasing; jobs in hand are finished first.
//! Errors of the server or the network are logged and retried after a pause; a job whose result could not
//! be posted is re-offered by the server when its lease runs out.

mod job;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use api::{JobAnswer, JobFailure, JobKind, JobResult, LeaseAnswer, LeasedJob, ThumbnailResult};
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::thumbnail::{self, PREVIEW_SPEC, ThumbnailSpec};

/// How a worker runs.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// The server's base URL (`http://127.0.0.1:8080`).
    pub server: Url,
    /// A `worker`-scope token.
    pub token: String,
    /// Jobs worked on at once.
    pub concurrency: usize,
    /// The thumbnail's size and quality.
    pub spec: ThumbnailSpec,
    /// The preview's size and quality; `None` makes none (as a worker from before previews did).
    pub preview: Option<ThumbnailSpec>,
    /// The first pause after an empty lease.
    pub min_idle: Duration,
    /// The longest pause after empty leases or errors.
    pub max_idle: Duration,
}

impl WorkerSettings {
    /// Settings with one loop per core, a 512-px thumbnail and a 2048-px preview.
    pub fn new(server: Url, token: String) -> Self {
        WorkerSettings {
            server,
            token,
            concurrency: default_concurrency(),
            spec: ThumbnailSpec::default(),
            preview: Some(PREVIEW_SPEC),
            min_idle: Duration::from_millis(200),
            max_idle: Duration::from_secs(5),
        }
    }
}

/// One loop per core: decoding is CPU-bound and the download overlaps with other loops' decoding.
pub fn default_concurrency() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// What became of one job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The thumbnail (and preview) was stored and the result posted.
    Done(ThumbnailResult),
    /// The failure was posted.
    Failed(JobFailure),
}

/// One job worked on: the lease, what became of it, and the server's answer to the result or failure.
#[derive(Debug, Clone)]
pub struct Worked {
    /// The job as leased.
    pub job: LeasedJob,
    /// Thumbnail or failure.
    pub outcome: Outcome,
    /// The job's state afterwards, as the server answered.
    pub answer: JobAnswer,
}

#[derive(Debug)]
struct Worker {
    settings: WorkerSettings,
    store: storage::Store,
    http: reqwest::Client,
}

/// Runs the thumbnail worker until `shutdown` is cancelled, then waits for the jobs in hand.
pub async fn run_thumbnail_worker(
    settings: WorkerSettings,
    store: storage::Store,
    shutdown: CancellationToken,
) -> Result<()> {
    let concurrency = settings.concurrency.max(1);
    let http = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .build()
        .context("building the HTTP client")?;
    let worker = Arc::new(Worker {
        settings,
        store,
        http,
    });
    tracing::info!(
        server = %worker.settings.server,
        concurrency,
        max_edge = worker.settings.spec.max_edge,
        preview_max_edge = worker.settings.preview.map_or(0, |p| p.max_edge),
        heif = thumbnail::heif_available(),
        ffmpeg = thumbnail::ffmpeg_available(),
        "thumbnail worker started"
    );
    let mut loops = tokio::task::JoinSet::new();
    for slot in 0..concurrency {
        let worker = Arc::clone(&worker);
        let shutdown = shutdown.clone();
        loops.spawn(async move { worker.lease_loop(slot, shutdown).await });
    }
    while let Some(joined) = loops.join_next().await {
        if let Err(error) = joined {
            tracing::error!(%error, "a worker loop panicked");
        }
    }
    tracing::info!("thumbnail worker stopped");
    Ok(())
}

/// Leases and works on at most `max` jobs once, returning what became of each: for tests and one-shot runs.
pub async fn run_once(settings: WorkerSettings, store: storage::Store, max: usize) -> Result<Vec<Worked>> {
    let worker = Worker {
        settings,
        store,
        http: reqwest::Client::new(),
    };
    let jobs = worker.lease(max).await?;
    let mut outcomes = Vec::with_capacity(jobs.len());
    for job in jobs {
        outcomes.push(worker.work(&job).await?);
    }
    Ok(outcomes)
}

impl Worker {
    async fn lease_loop(&self, slot: usize, shutdown: CancellationToken) {
        let mut idle = self.settings.min_idle;
        while !shutdown.is_cancelled() {
            let pause = match self.lease(1).await {
                Ok(jobs) if jobs.is_empty() => {
                    let pause = idle;
                    idle = (idle * 2).min(self.settings.max_idle);
                    pause
                }
                Ok(jobs) => {
                    idle = self.settings.min_idle;
                    for job in jobs {
                        if let Err(error) = self.work(&job).await {
                            // The server will offer the job again when its lease expires.
                            tracing::warn!(slot, job = %job.id, error = format!("{error:#}"), "job left to its lease");
                        }
                    }
                    continue;
                }
                Err(error) => {
                    tracing::warn!(slot, error = format!("{error:#}"), "leasing failed; retrying");
                    self.settings.max_idle
                }
            };
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(pause) => {}
            }
        }
    }

    fn endpoint(&self, path: &str) -> Result<Url> {
        let mut base = self.settings.server.clone();
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        base.join(path.trim_start_matches('/'))
            .with_context(|| format!("joining {path} to the server URL"))
    }

    async fn lease(&self, max: usize) -> Result<Vec<LeasedJob>> {
        let mut url = self.endpoint("worker/jobs/lease")?;
        url.query_pairs_mut()
            .append_pair("kind", JobKind::Thumbnail.as_str())
            .append_pair("max", &max.to_string());
        let response = self
            .http
            .post(url)
            .bearer_auth(&self.settings.token)
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .context("POST /worker/jobs/lease")?;
        let answer: LeaseAnswer = json_answer(response, "POST /worker/jobs/lease").await?;
        Ok(answer.jobs)
    }

    /// Works on one job and posts its result or failure. An `Err` means nothing could be posted.
    async fn work(&self, job: &LeasedJob) -> Result<Worked> {
        let started = std::time::Instant::now();
        let (outcome, answer) = match self.derivatives(job).await {
            Ok(result) => {
                let body = JobResult {
                    result: serde_json::to_value(&result)?,
                };
                let answer = self.post(&job.id, "result", &body).await?;
                tracing::info!(job = %job.id, photo = %job.photo_id, key = %result.key, size = result.size,
                    preview = result.preview.as_ref().map_or(0, |p| p.size),
                    ms = started.elapsed().as_millis() as u64, "thumbnail stored");
                (Outcome::Done(result), answer)
            }
            Err(failure) => {
                tracing::warn!(job = %job.id, photo = %job.photo_id, reason = %failure.reason,
                    message = %failure.message, "thumbnail failed");
                let answer = self.post(&job.id, "fail", &failure).await?;
                (Outcome::Failed(failure), answer)
            }
        };
        Ok(Worked {
            job: job.clone(),
            outcome,
            answer,
        })
    }

    async fn post<T: serde::Serialize>(&self, id: &str, what: &str, body: &T) -> Result<JobAnswer> {
        let path = format!("worker/jobs/{id}/{what}");
        let response = self
            .http
            .post(self.endpoint(&path)?)
            .bearer_auth(&self.settings.token)
            .timeout(Duration::from_secs(30))
            .json(body)
            .send()
            .await
            .with_context(|| format!("POST /{path}"))?;
        json_answer(response, &format!("POST /{path}")).await
    }
}

fn failure(reason: &str, message: impl Into<String>) -> JobFailure {
    JobFailure {
        reason: reason.to_owned(),
        message: message.into(),
    }
}

async fn json_answer<T: serde::de::DeserializeOwned>(response: reqwest::Response, what: &str) -> Result<T> {
    let status = response.status();
    let text = response
        .text()
        .await
        .with_context(|| format!("{what}: reading the answer"))?;
    if !status.is_success() {
        let message = serde_json::from_str::<api::ErrorBody>(&text)
            .map(|body| format!("{}: {}", body.error.code, body.error.message))
            .unwrap_or_else(|_| text.chars().take(200).collect());
        bail!("{what}: HTTP {status}: {message}");
    }
    serde_json::from_str(&text).with_context(|| format!("{what}: unexpected answer {text:.200}"))
}

/// Reads a token file (surrounding whitespace ignored).
pub fn read_token_file(path: &Path) -> Result<String> {
    let token = std::fs::read_to_string(path)
        .with_context(|| format!("reading the worker token from {}", path.display()))?
        .trim()
        .to_owned();
    if token.is_empty() {
        bail!("the token file {} is empty", path.display());
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_join_under_the_base_path() {
        let mut worker = Worker {
            settings: WorkerSettings::new("http://h:1".parse().unwrap(), "t".into()),
            store: storage::create_object_store(&storage::StorageConfig {
                backend: storage::BackendConfig::Local(storage::LocalConfig {
                    root: std::env::temp_dir(),
                    presign_secret: storage::Secret::new("0123456789abcdef0123456789abcdef".into()),
                    public_url: "http://h:1".parse().unwrap(),
                }),
                presign: Default::default(),
            })
            .unwrap(),
            http: reqwest::Client::new(),
        };
        assert_eq!(
            worker.endpoint("worker/jobs/lease").unwrap().as_str(),
            "http://h:1/worker/jobs/lease"
        );
        worker.settings.server = "http://h:1/photos".parse().unwrap();
        assert_eq!(
            worker.endpoint("/worker/jobs/x/fail").unwrap().as_str(),
            "http://h:1/photos/worker/jobs/x/fail"
        );
    }

    #[test]
    fn token_files_are_trimmed_and_must_not_be_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t");
        std::fs::write(&path, "  secret\n").unwrap();
        assert_eq!(read_token_file(&path).unwrap(), "secret");
        std::fs::write(&path, "\n").unwrap();
        assert!(read_token_file(&path).unwrap_err().to_string().contains("empty"));
        assert!(read_token_file(&dir.path().join("missing")).is_err());
    }
}
