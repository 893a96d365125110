//! A TCP proxy that cuts connections: what a dropped Wi-Fi link looks like to a client and a server. Each
//! connection forwards both ways until the bytes sent towards the upstream reach the budget set for it, then
//! both sides are closed at once (no half-close: the server sees the body end early, the client a reset or an
//! early EOF). Counts every byte it forwarded upstream, so a test can bound what a client re-sent.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

/// The proxy: listens on a free loopback port, forwards to `upstream`; stops when dropped.
#[derive(Debug)]
pub struct CutProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Debug)]
struct Shared {
    /// Budget of the next connection accepted, bytes towards the upstream (`u64::MAX`: no cut).
    next_budget: AtomicU64,
    /// Budget of every connection when not `u64::MAX` (a link that drops every N bytes).
    every_budget: AtomicU64,
    /// Bytes forwarded towards the upstream, all connections.
    forwarded: AtomicU64,
    /// Connections cut.
    cuts: AtomicU64,
}

impl Drop for CutProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl CutProxy {
    /// Starts a proxy to `upstream` (inside a Tokio runtime).
    pub async fn start(upstream: SocketAddr) -> std::io::Result<CutProxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            next_budget: AtomicU64::new(u64::MAX),
            every_budget: AtomicU64::new(u64::MAX),
            forwarded: AtomicU64::new(0),
            cuts: AtomicU64::new(0),
        });
        let accept_shared = Arc::clone(&shared);
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let budget = accept_shared
                    .next_budget
                    .swap(u64::MAX, Ordering::SeqCst)
                    .min(accept_shared.every_budget.load(Ordering::SeqCst));
                let shared = Arc::clone(&accept_shared);
                tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(upstream).await {
                        relay(client, server, budget, shared).await;
                    }
                });
            }
        });
        Ok(CutProxy { addr, shared, task })
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The next connection accepted is cut once it has sent `bytes` towards the upstream.
    pub fn cut_next_after(&self, bytes: u64) {
        self.shared.next_budget.store(bytes, Ordering::SeqCst);
    }

    /// Every connection from now on is cut once it has sent `bytes` towards the upstream (`u64::MAX`: none).
    pub fn cut_every_after(&self, bytes: u64) {
        self.shared.every_budget.store(bytes, Ordering::SeqCst);
    }

    /// Bytes forwarded towards the upstream so far, every connection.
    pub fn forwarded(&self) -> u64 {
        self.shared.forwarded.load(Ordering::SeqCst)
    }

    /// Connections cut so far.
    pub fn cuts(&self) -> u64 {
        self.shared.cuts.load(Ordering::SeqCst)
    }
}

async fn relay(client: TcpStream, server: TcpStream, budget: u64, shared: Arc<Shared>) {
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (mut client_read, client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let (cut_tx, mut cut_rx) = tokio::sync::oneshot::channel::<()>();
    let upstream_shared = Arc::clone(&shared);
    let up = async move {
        let mut left = budget;
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            let n = match client_read.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            let send = usize::try_from(left).unwrap_or(usize::MAX).min(n);
            if server_write.write_all(&buffer[..send]).await.is_err() {
                return;
            }
            upstream_shared.forwarded.fetch_add(send as u64, Ordering::SeqCst);
            left -= send as u64;
            if left == 0 {
                // The cut: the server gets every byte forwarded, then the end of the stream (its body ends
                // early); the client loses its connection at once.
                upstream_shared.cuts.fetch_add(1, Ordering::SeqCst);
                let _ = server_write.shutdown().await;
                let _ = cut_tx.send(());
                drop(client_read);
                return;
            }
        }
    };
    let down = async move {
        let mut buffer = vec![0u8; 64 * 1024];
        let mut client_write = Some(client_write);
        loop {
            tokio::select! {
                _ = &mut cut_rx, if client_write.is_some() => { client_write = None; }
                read = server_read.read(&mut buffer) => match read {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        // After a cut the server's answer is read and dropped, so its socket closes cleanly.
                        if let Some(writer) = &mut client_write
                            && writer.write_all(&buffer[..n]).await.is_err()
                        {
                            return;
                        }
                    }
                },
            }
        }
    };
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        futures::future::join(up, down),
    )
    .await;
}
