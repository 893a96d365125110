//! The request log: a span per request, `http_request{request_id, method, matched_path, user_id}`, that every
//! line a handler logs belongs to, and one closing line per request with the status, the milliseconds to the
//! answer's headers and the body size when known, at info.
//!
//! Only the route template is logged (`/my/photos/{photo_id}`, `/blobs/{*key}`), never the raw path or the
//! query: paths carry ids and object keys, and presigned `/blobs/` URLs carry their signature in the query. A
//! request no route matched is `unmatched`. An answer carrying [`Quiet`] (an idle worker's empty lease, polled
//! every few seconds) is logged at debug, so an idle deployment's log stays quiet.

use std::time::Duration;

use axum::body::HttpBody;
use axum::extract::MatchedPath;
use axum::http::{Request, Response, header};
use tower_http::classify::{ServerErrorsAsFailures, SharedClassifier};
use tower_http::trace::{DefaultOnBodyChunk, DefaultOnEos, MakeSpan, OnResponse, TraceLayer};
use tracing::Span;

use super::REQUEST_ID;

/// A response extension: this answer is routine polling, its request line goes at debug.
#[derive(Debug, Clone, Copy)]
pub struct Quiet;

/// The request log as a layer: [`RequestSpan`] and [`RequestLine`]; failures are not logged again (each error
/// is logged once where it happens, and the closing line carries the status).
pub type RequestLogLayer = TraceLayer<
    SharedClassifier<ServerErrorsAsFailures>,
    RequestSpan,
    (),
    RequestLine,
    DefaultOnBodyChunk,
    DefaultOnEos,
    (),
>;

/// The request log. Inside the request id layer, so the id is set; inside routing, so the template is known.
pub fn layer() -> RequestLogLayer {
    TraceLayer::new_for_http()
        .make_span_with(RequestSpan)
        .on_request(())
        .on_response(RequestLine)
        .on_failure(())
}

/// Makes the `http_request` span.
#[derive(Debug, Clone, Copy)]
pub struct RequestSpan;

impl<B> MakeSpan<B> for RequestSpan {
    fn make_span(&mut self, request: &Request<B>) -> Span {
        let request_id = request
            .headers()
            .get(&REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-");
        let matched = request
            .extensions()
            .get::<MatchedPath>()
            .map_or("unmatched", |m| m.as_str());
        tracing::info_span!(
            "http_request",
            request_id,
            method = %request.method(),
            matched_path = matched,
            user_id = tracing::field::Empty,
        )
    }
}

/// Writes the closing line, inside the request's span.
#[derive(Debug, Clone, Copy)]
pub struct RequestLine;

impl<B: HttpBody> OnResponse<B> for RequestLine {
    fn on_response(self, response: &Response<B>, latency: Duration, _span: &Span) {
        let status = response.status().as_u16();
        // Tenths of a millisecond: enough to tell a cache hit from a query, short enough to read.
        let ms = (latency.as_secs_f64() * 10_000.0).round() / 10.0;
        // The body's size when it is known up front (JSON answers, whole files); a stream's is not.
        let bytes = response.body().size_hint().exact().or_else(|| {
            response
                .headers()
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok())
        });
        if response.extensions().get::<Quiet>().is_some() {
            tracing::debug!(status, ms, bytes, "answered");
        } else {
            tracing::info!(status, ms, bytes, "answered");
        }
    }
}
