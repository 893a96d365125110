//! `/metrics` in the Prometheus text format: requests by route and status, latencies, bytes uploaded and
//! upload outcomes. One registry per app (no global recorder), so tests can run apps side by side.

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
        let mut registry = Registry::with_prefix("iphoto");
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
            registry,
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

/// Prometheus metrics: requests by route template and status, latencies, upload outcomes, garbage collection.
#[utoipa::path(get, path = "/metrics", tag = "ops", operation_id = "get_metrics",
    responses((status = 200, description = "OpenMetrics text",
        content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8", body = String)))]
pub(super) async fn get_metrics(State(state): State<AppState>) -> Response {
    let mut text = String::new();
    if prometheus_client::encoding::text::encode(&mut text, &state.metrics().registry).is_err() {
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
