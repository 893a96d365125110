//! Bytes a connection wrapper writes ahead of hyper's own: [`parse_errors`](super::parse_errors)'s rewritten
//! answers and [`interim`](super::interim)'s 1xx heads. Until they are out, hyper's writes wait.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

/// Bytes still to be written before anything else, and how many are.
#[derive(Debug, Default)]
pub(super) struct Pending {
    bytes: Vec<u8>,
    written: usize,
}

impl Pending {
    /// Queues `bytes` behind what is pending.
    pub(super) fn push(&mut self, bytes: &mut Vec<u8>) {
        self.bytes.append(bytes);
    }

    /// Writes what is pending to `inner`; `Ready(Ok)` once nothing is.
    pub(super) fn drain<T: hyper::rt::Write + Unpin>(
        &mut self,
        inner: &mut T,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>> {
        while self.written < self.bytes.len() {
            let n = ready!(Pin::new(&mut *inner).poll_write(cx, &self.bytes[self.written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.written += n;
        }
        self.bytes.clear();
        self.written = 0;
        Poll::Ready(Ok(()))
    }
}
