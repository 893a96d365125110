//! The JSON error envelope on hyper's own answers.
//!
//! hyper answers a request it cannot parse itself, before any service runs: a malformed request line,
//! header or version is a 400, a request target past its limit a 414, a head past its read buffer a 431.
//! It writes a bare head (`content-length: 0`, `connection: close`) and closes, and offers no hook to say
//! anything else: `proto/h1/conn.rs` `on_parse_error` writes the head `role.rs` `Server::on_error` builds
//! from the status alone, and `http1::Builder` has no setting for it (hyper 1.x).
//!
//! So the connection's bytes pass through [`EnvelopeIo`], which spots that head on its way out and writes it
//! with the envelope instead. The router answers every 4xx with the envelope (`error::envelope`), so a 400,
//! 414 or 431 head with an empty body and `connection: close` can only be one of hyper's.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use api::ErrorCode;

use super::pending::Pending;

/// A connection whose hyper-made error answers get the JSON envelope.
#[derive(Debug)]
pub(super) struct EnvelopeIo<T> {
    inner: T,
    /// The rewritten answer, still to be written before anything else.
    pending: Pending,
}

impl<T> EnvelopeIo<T> {
    pub(super) fn new(inner: T) -> Self {
        Self {
            inner,
            pending: Pending::default(),
        }
    }
}

impl<T: hyper::rt::Write + Unpin> EnvelopeIo<T> {
    /// Writes what is pending; `Ready(Ok)` once nothing is.
    fn drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.pending.drain(&mut self.inner, cx)
    }

    /// Takes `buf` whole if it is one of hyper's bare error heads, queueing its enveloped version.
    fn take_error_head(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Option<Poll<io::Result<usize>>> {
        let mut answer = enveloped(buf)?;
        self.pending.push(&mut answer);
        // The whole head is taken: what is not written yet goes out on the next write, flush or shutdown.
        Some(match self.drain(cx) {
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            _ => Poll::Ready(Ok(buf.len())),
        })
    }
}

impl<T: hyper::rt::Read + Unpin> hyper::rt::Read for EnvelopeIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: hyper::rt::Write + Unpin> hyper::rt::Write for EnvelopeIo<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        ready!(self.drain(cx))?;
        if let Some(taken) = self.take_error_head(cx, buf) {
            return taken;
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        ready!(self.drain(cx))?;
        // hyper queues a head as a buffer of its own, ahead of any body.
        if let Some(first) = bufs.iter().find(|b| !b.is_empty())
            && let Some(taken) = self.take_error_head(cx, first)
        {
            return taken;
        }
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.drain(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.drain(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// `head` with the envelope, if it is a bare 400, 414 or 431 head that closes the connection: exactly one
/// head, nothing after it.
fn enveloped(head: &[u8]) -> Option<Vec<u8>> {
    let (code, message) = match head.get(..13)? {
        b"HTTP/1.1 400 " => (
            ErrorCode::BadRequest,
            "malformed request: its request line, a header or the HTTP version could not be parsed",
        ),
        b"HTTP/1.1 414 " => (
            ErrorCode::UriTooLong,
            "the request target is longer than the server reads",
        ),
        b"HTTP/1.1 431 " => (
            ErrorCode::HeadersTooLarge,
            "the request head is larger than the server reads",
        ),
        _ => return None,
    };
    let text = std::str::from_utf8(head).ok()?;
    let lines = text.strip_suffix("\r\n\r\n")?;
    if lines.contains("\r\n\r\n") {
        return None;
    }
    let mut lines = lines.split("\r\n");
    let status_line = lines.next()?;
    let fields: Vec<&str> = lines.collect();
    let has = |wanted: &str| fields.iter().any(|f| f.eq_ignore_ascii_case(wanted));
    if !has("content-length: 0") || !has("connection: close") {
        return None;
    }
    let body = serde_json::to_vec(&api::ErrorBody::new(code, message)).ok()?;
    let mut answer = format!("{status_line}\r\n");
    for field in fields
        .iter()
        .filter(|f| !f.eq_ignore_ascii_case("content-length: 0"))
    {
        answer.push_str(field);
        answer.push_str("\r\n");
    }
    answer.push_str("content-type: application/json\r\nx-content-type-options: nosniff\r\n");
    answer.push_str(&format!("content-length: {}\r\n\r\n", body.len()));
    let mut answer = answer.into_bytes();
    answer.extend_from_slice(&body);
    Some(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BARE: &[u8] =
        b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\ndate: Fri, 04 Dec 2026 07:31:30 GMT\r\n\r\n";

    #[test]
    fn hypers_bare_heads_get_the_envelope() {
        let answer = String::from_utf8(enveloped(BARE).unwrap()).unwrap();
        let (head, body) = answer.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{head}");
        assert!(head.contains("\r\nconnection: close"), "{head}");
        assert!(head.contains("\r\ndate: Fri, 04 Dec 2026"), "{head}");
        assert!(head.contains("\r\ncontent-type: application/json"), "{head}");
        assert!(!head.contains("content-length: 0"), "{head}");
        assert!(
            head.ends_with(&format!("content-length: {}", body.len())),
            "{head}"
        );
        let body: api::ErrorBody = serde_json::from_str(body).unwrap();
        assert_eq!(body.error.code, ErrorCode::BadRequest);
        let long = enveloped(&[b"HTTP/1.1 414 URI Too Long".as_slice(), &BARE[24..]].concat()).unwrap();
        assert!(String::from_utf8(long).unwrap().contains("uri_too_long"));
    }

    #[test]
    fn other_answers_pass_untouched() {
        let with_body =
            b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 80\r\n\r\n";
        let kept_open = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n";
        let not_found = b"HTTP/1.1 404 Not Found\r\nconnection: close\r\ncontent-length: 0\r\n\r\n";
        let head_and_more = [BARE, b"HTTP/1.1 200 OK\r\n\r\n"].concat();
        let ok = b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 0\r\n\r\n";
        for bytes in [
            &with_body[..],
            kept_open,
            not_found,
            &head_and_more,
            ok,
            b"{\"a\":1}",
            b"",
        ] {
            assert_eq!(enveloped(bytes), None, "{}", String::from_utf8_lossy(bytes));
        }
    }
}
