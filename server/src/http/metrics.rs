//! `/metrics` in the Prometheus text format (OpenMetrics): requests by route and status, latencies, bytes
//! uploaded and upload outcomes, garbage collection, the build (`iphoto_build_info{version, commit} 1`), the
//! job queue per kind (`iphoto_job_queue_depth`, `iphoto_job_queue_oldest_age_seconds`, read from the catalog
//! at each scrape) and the standard `process_*` metrics ([`process`]). Names follow Prometheus' conventions:
//! base units in the name (`_seconds`, `_bytes`), `_total` on counters. One registry per app (no global
//! recorder), so tests can run apps side by side.

mod process;

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use super::AppState;

/// Labels of a request.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// Route template (`/client/iphoto/sync`), never the raw path: bounded cardinality.
    pub route: String,
    /// HTTP method.
    pub method: String,
    /// Status code.
    pub status: u16,
}

/// Labels of an upload outcome.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// `stored`, `deduplicated` or `rejected`.
    pub outcome: &'static str,
}

/// Labels of the build.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BuildLabels {
    /// The crate version.
    pub version: &'static str,
    /// The commit the binary was built from (`unknown` outside a git checkout).
    pub commit: &'static str,
}

/// Labels of a job queue.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    /// The job kind: `thumbnail`, `classify` or `face`.
    pub kind: &'static str,
}

/// The version and commit `iphoto_build_info` reports (and `--version` prints).
pub const BUILD: BuildLabels = BuildLabels {
    version: env!("CARGO_PKG_VERSION"),
    commit: env!("IPHOTO_GIT_COMMIT"),
};

/// The app's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RequestLabels, Histogram>,
    /// Bytes stored by uploads.
    pub bytes_uploaded: Counter,
    /// Uploads by outcome.
    pub uploads: Family<OutcomeLabels, Counter>,
    /// Bytes of unreferenced objects past the grace the last garbage-collection pass found.
    pub gc_reclaimable_bytes: Gauge,
    /// Bytes garbage collection deleted (objects and staging).
    pub gc_reclaimed_bytes: Counter,
    /// Garbage-collection passes this replica ran (holding the lease).
    pub gc_runs: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut root = Registry::default();
        root.register_collector(Box::new(process::ProcessCollector));
        let registry = root.sub_registry_with_prefix("iphoto");
        let build = Family::<BuildLabels, Gauge>::default();
        build.get_or_create(&BUILD).set(1);
        registry.register(
            "build_info",
            "The version and commit of the running binary (always 1)",
            build,
        );
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<RequestLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.0, 16))
        });
        let bytes_uploaded = Counter::default();
        let uploads = Family::<OutcomeLabels, Counter>::default();
        registry.register("http_requests", "HTTP requests", requests.clone());
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency",
            latency.clone(),
        );
        registry.register("upload_bytes", "Bytes stored by uploads", bytes_uploaded.clone());
        registry.register("uploads", "Uploads by outcome", uploads.clone());
        let gc_reclaimable_bytes = Gauge::default();
        let gc_reclaimed_bytes = Counter::default();
        let gc_runs = Counter::default();
        registry.register(
            "gc_reclaimable_bytes",
            "Bytes of unreferenced objects past the grace found by the last garbage-collection pass",
            gc_reclaimable_bytes.clone(),
        );
        registry.register(
            "gc_reclaimed_bytes",
            "Bytes deleted by garbage collection",
            gc_reclaimed_bytes.clone(),
        );
        registry.register("gc_runs", "Garbage-collection passes run", gc_runs.clone());
        Self {
            registry: root,
            requests,
            latency,
            bytes_uploaded,
            uploads,
            gc_reclaimable_bytes,
            gc_reclaimed_bytes,
            gc_runs,
        }
    }
}

impl Metrics {
    /// Counts one upload outcome.
    pub fn upload(&self, outcome: &'static str, bytes: u64) {
        self.uploads.get_or_create(&OutcomeLabels { outcome }).inc();
        if outcome == "stored" {
            self.bytes_uploaded.inc_by(bytes);
        }
    }
}

impl Metrics {
    /// Records a garbage-collection pass; one that did not hold the lease changes nothing.
    pub fn gc_pass(&self, report: &crate::gc::GcReport) {
        if !report.ran {
            return;
        }
        self.gc_runs.inc();
        self.gc_reclaimable_bytes
            .set(i64::try_from(report.reclaimable_bytes()).unwrap_or(i64::MAX));
        self.gc_reclaimed_bytes.inc_by(report.reclaimed_bytes());
    }
}

/// Middleware: counts and times every request by its route template.
pub(super) async fn track(State(metrics): State<Arc<Metrics>>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |m| m.as_str())
        .to_owned();
    let method = request.method().to_string();
    let started = Instant::now();
    let response = next.run(request).await;
    let labels = RequestLabels {
        route,
        method,
        status: response.status().as_u16(),
    };
    metrics.requests.get_or_create(&labels).inc();
    metrics
        .latency
        .get_or_create(&labels)
        .observe(started.elapsed().as_secs_f64());
    response
}

/// `GET /metrics`: the app's registry, then the job queues read now. When the catalog cannot be read the
/// queue families are left out (and the failure logged): the rest still tells what is wrong.
#[utoipa::path(get, path = "/metrics", tag = "ops", operation_id = "get_metrics",
    responses((status = 200, description = "OpenMetrics text",
        content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8", body = String)))]
pub(super) async fn get_metrics(State(state): State<AppState>) -> Response {
    use prometheus_client::encoding::text::{encode_eof, encode_registry};
    let queues = match state.catalog().job_queues().await {
        Ok(queues) => Some(queues),
        Err(error) => {
            tracing::warn!(error = %error, "reading the job queues for /metrics failed");
            None
        }
    };
    let mut text = String::new();
    let encoded = encode_registry(&mut text, &state.metrics().registry)
        .and_then(|()| match &queues {
            Some(queues) => encode_registry(&mut text, &job_queue_registry(queues, chrono::Utc::now())),
            None => Ok(()),
        })
        .and_then(|()| encode_eof(&mut text));
    if encoded.is_err() {
        return super::error::ApiError::internal(&"encoding metrics").into_response();
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

/// The job queue families of one scrape: depth and the age of the oldest unfinished job, per kind (0 when
/// none waits).
fn job_queue_registry(queues: &[crate::catalog::JobQueue], now: chrono::DateTime<chrono::Utc>) -> Registry {
    let mut registry = Registry::with_prefix("iphoto");
    let depth = Family::<KindLabels, Gauge>::default();
    let age = Family::<KindLabels, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
    for queue in queues {
        let labels = KindLabels {
            kind: queue.kind.as_str(),
        };
        depth
            .get_or_create(&labels)
            .set(i64::try_from(queue.depth).unwrap_or(i64::MAX));
        let waited = queue
            .oldest_queued_at
            .map_or(0.0, |at| (now - at).num_milliseconds().max(0) as f64 / 1000.0);
        age.get_or_create(&labels).set(waited);
    }
    registry.register(
        "job_queue_depth",
        "Enrichment jobs queued or leased (not done, not parked), by kind",
        depth,
    );
    registry.register(
        "job_queue_oldest_age_seconds",
        "Seconds since the longest-waiting unfinished job of a kind was queued (0 when none)",
        age,
    );
    registry
}
