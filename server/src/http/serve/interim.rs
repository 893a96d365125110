//! Interim (1xx) answers a handler sends before its final one: `104 (Upload Resumption Supported)`.
//!
//! hyper 1 sends no 1xx on HTTP/1.1 but the `100 Continue` it makes itself, and offers no way for a service
//! to send one (hyperium/hyper#2426, #4114). A resumable upload's creation needs it: the `104` carries the
//! upload resource's `Location` while the body is still coming, so a client cut off mid-creation knows where
//! to resume instead of starting over (draft-ietf-httpbis-resumable-upload-15, section 4.2).
//!
//! So each connection's bytes pass through [`InterimIo`], and each request carries an [`Interim`] handle to
//! it (a request extension). [`Interim::send`] queues a complete 1xx head and wakes the connection's task;
//! [`InterimIo`] writes it when hyper next flushes. hyper calls `poll_flush` on the connection only once its
//! own write buffer is empty, and on HTTP/1 it does not read the next request before the previous answer is
//! wholly written, so while a handler runs the only thing hyper can have written is a whole message (a
//! `100 Continue`): a head queued here never lands inside one of hyper's. Until the queued head is out,
//! hyper's own writes wait behind it.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker, ready};

use axum::http::{HeaderMap, Version};

use super::pending::Pending;

/// A request's way to its connection, for interim answers.
#[derive(Debug, Clone, Default)]
pub struct Interim(Arc<Shared>);

#[derive(Debug, Default)]
struct Shared {
    /// Heads queued by handlers, not yet taken by the connection.
    queued: Mutex<Vec<u8>>,
    /// The connection task, to wake when a head is queued.
    waker: Mutex<Option<Waker>>,
}

impl Interim {
    /// Queues `104 (Upload Resumption Supported)` with `fields`; it is written before anything hyper
    /// writes next. Nothing is sent to a client of another HTTP version than 1.1: HTTP/1.0 clients must not
    /// get a 1xx (RFC 9110, section 15.2).
    pub fn upload_resumption_supported(&self, version: Version, fields: &HeaderMap) {
        if version != Version::HTTP_11 {
            return;
        }
        let mut head = b"HTTP/1.1 104 Upload Resumption Supported\r\n".to_vec();
        for (name, value) in fields {
            head.extend_from_slice(name.as_str().as_bytes());
            head.extend_from_slice(b": ");
            head.extend_from_slice(value.as_bytes());
            head.extend_from_slice(b"\r\n");
        }
        head.extend_from_slice(b"\r\n");
        if let Ok(mut queued) = self.0.queued.lock() {
            queued.extend_from_slice(&head);
        }
        let waker = self.0.waker.lock().ok().and_then(|w| w.clone());
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

/// The extractor: the request's [`Interim`] handle with its HTTP version, or `None` when the router is called
/// without the server's accept loop (in-process tests).
#[derive(Debug, Clone)]
pub struct InterimAnswers(pub Option<(Version, Interim)>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for InterimAnswers {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(Self(
            parts
                .extensions
                .get::<Interim>()
                .map(|interim| (parts.version, interim.clone())),
        ))
    }
}

/// A connection that writes the interim answers its requests' handlers queue.
#[derive(Debug)]
pub(super) struct InterimIo<T> {
    inner: T,
    shared: Arc<Shared>,
    /// Interim heads taken from the queue, still to be written before anything else.
    pending: Pending,
}

impl<T> InterimIo<T> {
    /// The connection, and the handle its requests carry.
    pub(super) fn new(inner: T) -> (Self, Interim) {
        let interim = Interim::default();
        let io = Self {
            inner,
            shared: Arc::clone(&interim.0),
            pending: Pending::default(),
        };
        (io, interim)
    }

    fn remember(&self, cx: &Context<'_>) {
        if let Ok(mut waker) = self.shared.waker.lock()
            && !waker.as_ref().is_some_and(|w| w.will_wake(cx.waker()))
        {
            *waker = Some(cx.waker().clone());
        }
    }
}

impl<T: hyper::rt::Write + Unpin> InterimIo<T> {
    /// Writes what is pending; `Ready(Ok)` once nothing is.
    fn drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.pending.drain(&mut self.inner, cx)
    }

    /// Moves the queued heads to `pending`: only between hyper's messages (see the module's words).
    fn take_queued(&mut self) {
        if let Ok(mut queued) = self.shared.queued.lock()
            && !queued.is_empty()
        {
            self.pending.push(&mut queued);
        }
    }
}

impl<T: hyper::rt::Read + Unpin> hyper::rt::Read for InterimIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        self.remember(cx);
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: hyper::rt::Write + Unpin> hyper::rt::Write for InterimIo<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.remember(cx);
        ready!(self.drain(cx))?;
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.remember(cx);
        ready!(self.drain(cx))?;
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.remember(cx);
        self.take_queued();
        ready!(self.drain(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.drain(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn a_104_head_is_queued_for_http_1_1_only() {
        let interim = Interim::default();
        let mut fields = HeaderMap::new();
        fields.insert("location", HeaderValue::from_static("/client/iphoto/uploads/ab"));
        fields.insert("upload-draft-interop-version", HeaderValue::from_static("8"));
        interim.upload_resumption_supported(Version::HTTP_10, &fields);
        assert!(interim.0.queued.lock().unwrap().is_empty());
        interim.upload_resumption_supported(Version::HTTP_11, &fields);
        let head = String::from_utf8(interim.0.queued.lock().unwrap().clone()).unwrap();
        assert_eq!(
            head,
            "HTTP/1.1 104 Upload Resumption Supported\r\nlocation: /client/iphoto/uploads/ab\r\n\
             upload-draft-interop-version: 8\r\n\r\n"
        );
    }
}
