//! The HTTP surfaces, assembled per consumer: `client` (the Mac agent), `web` (browsers: timeline, albums,
//! photo details, history and the changes feed), `admin` (operators: restore), `worker` (enrichment job
//! leases), `blobs` (the local backend's presigned GETs), `ops` (health, readiness) and `pages` (the HTML
//! pages people sign in to; not in the OpenAPI document, and their own HTML error pages). All middleware is
//! applied in one place, [`router`]: a request id echoed in `x-request-id`, one span and one closing log line per request, a request timeout (408) for everything
//! but uploads, a body idle timeout for every body, a JSON body limit enforced from `Content-Length` before
//! the body is read (413), `X-Content-Type-Options: nosniff` on every answer, the JSON error envelope on
//! every 4xx/5xx (axum's and tower-http's own bodiless or plain-text rejections included), and a panic
//! catcher that answers a JSON 500. Connection-level limits (header timeout, connection count) are in
//! [`serve`].

pub mod admin;
pub mod auth;
pub mod blobs;
pub mod client;
pub mod error;
pub mod extract;
pub mod metrics;
pub mod openapi;
pub mod ops;
pub mod pages;
pub mod request_log;
pub mod serve;
pub mod web;
pub mod worker;

use api::ErrorCode;
use std::sync::Arc;

use axum::Router;
use axum::http::HeaderName;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::{RequestBodyTimeoutLayer, TimeoutLayer};
use utoipa_axum::router::OpenApiRouter;

use crate::catalog::Catalog;

/// Settings handlers need.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// Most items in one sync batch.
    pub max_sync_batch: usize,
    /// Largest upload body, bytes.
    pub max_upload_bytes: u64,
    /// Signs the web lists' cursors, so a client cannot forge or alter one. Every replica must derive the
    /// same key (`run` derives it from the store's secret).
    pub cursor_key: web::CursorKey,
    /// How long a job lease holds when the worker names no duration.
    pub job_lease: std::time::Duration,
    /// After this many reported failures a job is parked with its last error.
    pub job_max_failures: u32,
    /// How long a failed job waits before it is offered again.
    pub job_retry_after: std::time::Duration,
    /// Longest time from a request's headers to its answer's headers, except uploads: then 408.
    pub request_timeout: std::time::Duration,
    /// Longest wait for the next bytes of a request body (uploads included): then the body fails (408).
    pub body_idle_timeout: std::time::Duration,
    /// Part size of resumable uploads (`Upload-Limit: min-append-size`), bytes.
    pub resumable_part_size: u64,
    /// A resumable upload idle this long is aborted by the collector (`Upload-Limit: max-age`).
    pub upload_max_age: std::time::Duration,
    /// The web pages' cookie key and session lifetime.
    pub web: pages::WebSettings,
}

impl Default for HttpSettings {
    /// The server's defaults, with a random cursor key (cursors then only work against this process).
    fn default() -> Self {
        Self {
            max_sync_batch: 500,
            max_upload_bytes: 64 * 1024 * 1024 * 1024,
            cursor_key: web::CursorKey::random(),
            job_lease: std::time::Duration::from_secs(300),
            job_max_failures: 5,
            job_retry_after: std::time::Duration::from_secs(30),
            request_timeout: std::time::Duration::from_secs(60),
            body_idle_timeout: std::time::Duration::from_secs(60),
            resumable_part_size: 8 * 1024 * 1024,
            upload_max_age: std::time::Duration::from_secs(24 * 3600),
            web: pages::WebSettings::default(),
        }
    }
}

/// Shared state: cheap to clone, built once in `run`.
#[derive(Clone, Debug)]
pub struct AppState(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    /// The catalog adapter (SQLite or PostgreSQL).
    catalog: Arc<dyn Catalog>,
    /// The object store.
    store: storage::Store,
    /// Limits.
    settings: HttpSettings,
    /// Prometheus counters.
    metrics: Arc<metrics::Metrics>,
    /// The resumable-upload appends running in this process.
    running: client::resumable::Running,
    /// The scrubber's month counts, kept while the user's catalog version stands.
    month_counts: web::months::MonthCache,
}

impl AppState {
    /// Builds the state.
    pub fn new(catalog: Arc<dyn Catalog>, store: storage::Store, settings: HttpSettings) -> Self {
        Self(Arc::new(Inner {
            catalog,
            store,
            settings,
            metrics: Arc::default(),
            running: client::resumable::Running::default(),
            month_counts: web::months::MonthCache::default(),
        }))
    }

    /// The scrubber's cached month counts.
    pub(crate) fn month_counts(&self) -> &web::months::MonthCache {
        &self.0.month_counts
    }

    /// The catalog.
    pub fn catalog(&self) -> &dyn Catalog {
        self.0.catalog.as_ref()
    }

    /// The object store.
    pub fn store(&self) -> &storage::Store {
        &self.0.store
    }

    /// Limits.
    pub fn settings(&self) -> &HttpSettings {
        &self.0.settings
    }

    /// Prometheus counters.
    pub fn metrics(&self) -> &metrics::Metrics {
        &self.0.metrics
    }

    /// The resumable-upload appends running in this process.
    pub(crate) fn running(&self) -> &client::resumable::Running {
        &self.0.running
    }
}

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Every route of the API, each registered with its `#[utoipa::path]`: the routes bounded by the request
/// timeout and the JSON body limit, and the upload route, exempt from both.
fn surfaces() -> (OpenApiRouter<AppState>, OpenApiRouter<AppState>) {
    let bounded = openapi::base()
        .merge(client::router())
        .merge(web::router())
        .merge(admin::router())
        .merge(worker::router())
        .merge(blobs::router())
        .merge(ops::router());
    (bounded, client::upload_router())
}

/// The OpenAPI document of [`surfaces`].
pub(crate) fn documented() -> utoipa::openapi::OpenApi {
    let (bounded, upload) = surfaces();
    openapi::finish(bounded.merge(upload).into_openapi())
}

/// The whole application: every surface and every middleware.
pub fn router(state: AppState) -> Router {
    let metrics = Arc::clone(&state.0.metrics);
    let settings = state.settings().clone();
    let (bounded, upload) = surfaces();
    let (bounded, mut doc) = bounded.split_for_parts();
    let (upload, upload_doc) = upload.split_for_parts();
    doc.merge(upload_doc);
    // Everything but uploads: a total time limit, and bodies limited to JSON size from `Content-Length`
    // on (413 before a byte of the body is read; a chunked body fails when it passes the limit).
    let bounded = bounded
        .merge(openapi::docs_router(openapi::finish(doc)))
        .merge(pages::router())
        .fallback(pages::not_found)
        .layer(RequestBodyLimitLayer::new(JSON_BODY_LIMIT))
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            settings.request_timeout,
        ));
    bounded
        .merge(upload)
        // JSON bodies: a sync batch of 500 is ~1 MB; uploads stream past this limit with their own.
        .layer(axum::extract::DefaultBodyLimit::max(JSON_BODY_LIMIT))
        .route_layer(axum::middleware::from_fn_with_state(metrics, metrics::track))
        .layer(axum::middleware::from_fn(limit_headers))
        .layer(RequestBodyTimeoutLayer::new(settings.body_idle_timeout))
        .with_state(state)
        .layer(axum::middleware::map_response(error::envelope))
        .layer(
            tower::ServiceBuilder::new()
                .layer(SetResponseHeaderLayer::overriding(
                    axum::http::header::X_CONTENT_TYPE_OPTIONS,
                    axum::http::HeaderValue::from_static("nosniff"),
                ))
                .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
                .layer(request_log::layer())
                .layer(PropagateRequestIdLayer::new(REQUEST_ID))
                .layer(CatchPanicLayer::custom(|_: Box<dyn std::any::Any + Send>| {
                    tracing::error!("handler panicked");
                    axum::response::IntoResponse::into_response(error::ApiError::internal(&"panic"))
                })),
        )
}

/// Headers larger than this get a JSON 431 (hyper's own limit, far higher, answers with no body).
pub const HEADER_LIMIT: usize = 64 * 1024;

async fn limit_headers(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let size: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if size > HEADER_LIMIT {
        return axum::response::IntoResponse::into_response(error::ApiError::new(
            axum::http::StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ErrorCode::HeadersTooLarge,
            format!("request headers: {size} bytes, at most {HEADER_LIMIT}"),
        ));
    }
    next.run(request).await
}

/// Largest JSON body.
pub const JSON_BODY_LIMIT: usize = 16 * 1024 * 1024;
