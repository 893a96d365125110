//! The accept loop: hyper's HTTP/1 connections over the router, with what `axum::serve` cannot set.
//!
//! - A header-read timeout (hyper's, which needs a timer): a connection that does not finish its request
//!   headers in time, or sits idle that long before its first request or between keep-alive requests, is
//!   closed. Without it a silent or half-sent connection holds a file descriptor forever.
//! - A connection limit: a semaphore permit per connection. At the limit the loop stops accepting, new
//!   connections wait in the kernel's backlog, and each closed connection (idle ones are shed by the
//!   header timeout) lets one more in — so the process stays under its open-file limit and keeps
//!   answering instead of failing `accept` with EMFILE.
//! - Graceful shutdown: on `stop` the listener closes, idle connections are closed and requests in flight
//!   finish (hyper-util's `GracefulShutdown`).
//! - The JSON error envelope on the answers hyper makes itself to requests it cannot parse
//!   ([`parse_errors`]).
//! - Interim answers (`104`) sent by handlers through the [`Interim`] handle each request carries
//!   ([`interim`]).

mod interim;
mod parse_errors;
mod pending;

pub use interim::{Interim, InterimAnswers};

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt as _;

/// Connection-level limits.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Time to receive a request's headers, and the longest idle time before a request.
    pub header_timeout: Duration,
    /// Most connections served at once.
    pub max_connections: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(10),
            max_connections: 1024,
        }
    }
}

/// Serves `router` on `listener` until `stop`, then drains: returns when every connection has closed.
pub async fn serve(listener: TcpListener, router: Router, limits: ConnectionLimits, stop: CancellationToken) {
    let permits = Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    let mut warned_full = false;
    loop {
        let permit = match Arc::clone(&permits).try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                if !warned_full {
                    tracing::warn!(
                        max_connections = limits.max_connections,
                        "connection limit reached; new connections wait until one closes"
                    );
                    warned_full = true;
                }
                tokio::select! {
                    () = stop.cancelled() => break,
                    permit = Arc::clone(&permits).acquire_owned() => match permit {
                        Ok(permit) => permit,
                        Err(_) => break,
                    },
                }
            }
        };
        let (stream, peer) = tokio::select! {
            () = stop.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Per-connection errors (reset before accept) are routine; running out of descriptors
                    // is not, and retrying at once would spin.
                    if !is_connection_error(&error) {
                        tracing::warn!(error = %error, "accept failed; retrying in 1 s");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                    continue;
                }
            },
        };
        warned_full = false;
        let _ = stream.set_nodelay(true);
        let (io, interim) = interim::InterimIo::new(parse_errors::EnvelopeIo::new(TokioIo::new(stream)));
        // Each request carries its connection's interim-answer handle, and the peer's address as axum's
        // `ConnectInfo` for the handlers that need the client's address (the limit on failed web sign-ins).
        let service = router.clone().map_request(move |mut request: Request<Incoming>| {
            request.extensions_mut().insert(interim.clone());
            request.extensions_mut().insert(axum::extract::ConnectInfo(peer));
            request
        });
        let connection = builder.serve_connection(io, TowerToHyperService::new(service));
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(error = %error, "connection closed with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

fn is_connection_error(error: &std::io::Error) -> bool {
    matches!(
        error.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
}
