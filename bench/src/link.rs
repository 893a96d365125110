//! An emulated network link between the mounts and the store: a one-way delay and a rate, both ways.
//!
//! First choice: a network namespace and a veth pair made here, with `tc netem` (`delay` and `rate`) on both
//! ends; the mounts run inside the namespace (`nsenter --net`, which keeps the mount namespace so their FUSE
//! mounts are seen outside) and reach the store through a plain relay on the host end of the pair. Where the
//! kernel has no `sch_netem` (or no namespaces), a userspace TCP proxy on loopback does the same job: each
//! chunk it forwards is paced through a shared per-direction budget of the link's rate, then delivered after
//! the one-way delay. [`Link::kind`] says which one is in use; the benchmarks print it.
//!
//! Either way every connection crosses a relay of ours, which counts what crosses ([`Traffic`]): the GET
//! requests going up (and the bytes their `Range` headers ask for) and the bytes coming down, so a benchmark can
//! say how many requests, and how many bytes, one operation cost each client.

use std::net::SocketAddr;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

/// The namespace and veth names this module makes (and removes, also when left over by a killed run).
const NETNS: &str = "iphoto-bench";
const VETH_HOST: &str = "ipbench0";
const VETH_NS: &str = "ipbench1";
const HOST_IP: &str = "10.203.77.1";
const NS_IP: &str = "10.203.77.2";

/// Which emulation a [`Link`] uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `tc netem` on a veth pair into a network namespace.
    Netem,
    /// The userspace pacing proxy on loopback (no `sch_netem` in this kernel).
    Proxy,
}

/// A running emulated link to one TCP endpoint (the store's S3 port).
#[derive(Debug)]
pub struct Link {
    /// Which emulation is in use.
    pub kind: Kind,
    /// The `http://host:port` a client behind the link uses for the store.
    pub endpoint: String,
    /// Why netem was not used, when it was not.
    pub fallback_reason: Option<String>,
    netns: bool,
    traffic: Arc<Traffic>,
    task: tokio::task::JoinHandle<()>,
}

/// What crossed a link since it started: counted by the relay, whichever emulation shapes it.
#[derive(Debug, Default)]
pub struct Traffic {
    gets: AtomicU64,
    range_bytes: AtomicU64,
    bytes_down: AtomicU64,
}

/// A reading of [`Traffic`]; the difference of two readings is what one operation cost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TrafficCount {
    /// HTTP `GET` requests sent up the link.
    pub gets: u64,
    /// Bytes those GETs' `Range` headers asked for (a GET without one counts 0: its size is not known).
    pub range_bytes: u64,
    /// Bytes that came down the link (bodies and heads).
    pub bytes_down: u64,
}

impl std::ops::Sub for TrafficCount {
    type Output = TrafficCount;
    fn sub(self, earlier: TrafficCount) -> TrafficCount {
        TrafficCount {
            gets: self.gets - earlier.gets,
            range_bytes: self.range_bytes - earlier.range_bytes,
            bytes_down: self.bytes_down - earlier.bytes_down,
        }
    }
}

impl Traffic {
    fn count(&self) -> TrafficCount {
        TrafficCount {
            gets: self.gets.load(Ordering::Relaxed),
            range_bytes: self.range_bytes.load(Ordering::Relaxed),
            bytes_down: self.bytes_down.load(Ordering::Relaxed),
        }
    }

    /// Counts a chunk read from a client: a request head starts a chunk (clients here send one request at a
    /// time on a connection and no GET has a body), so a chunk starting with `GET ` is one GET, and its
    /// `Range: bytes=A-B` header asks for B − A + 1 bytes.
    fn up(&self, chunk: &[u8]) {
        if !chunk.starts_with(b"GET ") {
            return;
        }
        self.gets.fetch_add(1, Ordering::Relaxed);
        if let Some(len) = range_len(chunk) {
            self.range_bytes.fetch_add(len, Ordering::Relaxed);
        }
    }

    fn down(&self, n: usize) {
        self.bytes_down.fetch_add(n as u64, Ordering::Relaxed);
    }
}

/// The length a request head's `Range: bytes=A-B` header asks for (`None` without one, or open-ended).
fn range_len(head: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(head).ok()?;
    let end = text.find("\r\n\r\n").unwrap_or(text.len());
    let line = text[..end]
        .split("\r\n")
        .find(|l| l.get(..6).is_some_and(|name| name.eq_ignore_ascii_case("range:")))?;
    let (from, to) = line[6..].trim().strip_prefix("bytes=")?.split_once('-')?;
    let (from, to): (u64, u64) = (from.trim().parse().ok()?, to.trim().parse().ok()?);
    to.checked_sub(from).map(|d| d + 1)
}

impl Link {
    /// Starts a link to `upstream` (an `http://127.0.0.1:PORT` endpoint) with `one_way` delay each way and
    /// `bits_per_s` each way: netem when the kernel allows it, else the proxy. `force_proxy` skips netem
    /// (the `--small` mode, which must not need it).
    pub fn start(
        runtime: &tokio::runtime::Runtime,
        upstream: &str,
        one_way: Duration,
        bits_per_s: u64,
        force_proxy: bool,
    ) -> Result<Link> {
        let upstream_addr: SocketAddr = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .with_context(|| format!("the store endpoint {upstream} is not http://IP:PORT"))?;
        let netem = if force_proxy {
            Err(anyhow::anyhow!("not tried (--small)"))
        } else {
            make_netem(one_way, bits_per_s)
        };
        let traffic = Arc::new(Traffic::default());
        match netem {
            Ok(()) => {
                // The host end of the pair relays to the store on loopback with no shaping of its own.
                let listener = runtime.block_on(TcpListener::bind((HOST_IP, 0)))?;
                let port = listener.local_addr()?.port();
                let task = runtime.spawn(serve(listener, upstream_addr, None, traffic.clone()));
                Ok(Link {
                    kind: Kind::Netem,
                    endpoint: format!("http://{HOST_IP}:{port}"),
                    fallback_reason: None,
                    netns: true,
                    traffic,
                    task,
                })
            }
            Err(why) => {
                remove_netem();
                let listener = runtime.block_on(TcpListener::bind("127.0.0.1:0"))?;
                let port = listener.local_addr()?.port();
                let shaping = Shaping {
                    one_way,
                    up: Arc::new(Pacer::new(bits_per_s)),
                    down: Arc::new(Pacer::new(bits_per_s)),
                };
                let task = runtime.spawn(serve(listener, upstream_addr, Some(shaping), traffic.clone()));
                Ok(Link {
                    kind: Kind::Proxy,
                    endpoint: format!("http://127.0.0.1:{port}"),
                    fallback_reason: Some(format!("{why:#}")),
                    netns: false,
                    traffic,
                    task,
                })
            }
        }
    }

    /// `command` run behind the link: inside the namespace for netem (network only, so a FUSE mount it makes
    /// is seen by the host), unchanged for the proxy (the endpoint does the shaping).
    pub fn command(&self, program: &std::path::Path) -> Command {
        if self.netns {
            let mut c = Command::new("nsenter");
            c.arg(format!("--net=/run/netns/{NETNS}")).arg("--").arg(program);
            c
        } else {
            Command::new(program)
        }
    }

    /// What has crossed the link so far.
    pub fn traffic(&self) -> TrafficCount {
        self.traffic.count()
    }

    /// One line saying which emulation is in use.
    pub fn describe(&self, one_way: Duration, bits_per_s: u64) -> String {
        let what = format!(
            "{} ms each way ({} ms RTT), {} Mbit/s each way",
            one_way.as_millis(),
            2 * one_way.as_millis(),
            bits_per_s / 1_000_000
        );
        match self.kind {
            Kind::Netem => format!("emulated link: tc netem on a veth pair into netns {NETNS}: {what}"),
            Kind::Proxy => format!(
                "emulated link: userspace pacing proxy on loopback (netem unavailable: {}): {what}",
                self.fallback_reason.as_deref().unwrap_or("?")
            ),
        }
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.task.abort();
        if self.netns {
            remove_netem();
        }
    }
}

/// Makes the namespace, the veth pair and netem on both ends; an error (and nothing left behind) when the
/// kernel does not allow one of them.
fn make_netem(one_way: Duration, bits_per_s: u64) -> Result<()> {
    remove_netem();
    let delay = format!("{}ms", one_way.as_millis());
    let rate = format!("{}kbit", bits_per_s / 1000);
    let ns = |args: &[&str]| -> Vec<String> {
        ["netns", "exec", NETNS]
            .iter()
            .chain(args)
            .map(|s| (*s).to_string())
            .collect()
    };
    let steps: Vec<(&str, Vec<String>)> = vec![
        ("ip", strings(&["netns", "add", NETNS])),
        (
            "ip",
            strings(&["link", "add", VETH_HOST, "type", "veth", "peer", "name", VETH_NS]),
        ),
        ("ip", strings(&["link", "set", VETH_NS, "netns", NETNS])),
        (
            "ip",
            strings(&["addr", "add", &format!("{HOST_IP}/30"), "dev", VETH_HOST]),
        ),
        ("ip", strings(&["link", "set", VETH_HOST, "up"])),
        (
            "ip",
            ns(&["ip", "addr", "add", &format!("{NS_IP}/30"), "dev", VETH_NS]),
        ),
        ("ip", ns(&["ip", "link", "set", VETH_NS, "up"])),
        ("ip", ns(&["ip", "link", "set", "lo", "up"])),
        (
            "tc",
            strings(&[
                "qdisc", "add", "dev", VETH_HOST, "root", "netem", "delay", &delay, "rate", &rate, "limit",
                "10000",
            ]),
        ),
        (
            "ip",
            ns(&[
                "tc", "qdisc", "add", "dev", VETH_NS, "root", "netem", "delay", &delay, "rate", &rate,
                "limit", "10000",
            ]),
        ),
    ];
    for (program, args) in steps {
        let output = Command::new(program)
            .args(&args)
            .output()
            .with_context(|| format!("running {program}"))?;
        if !output.status.success() {
            let error = format!(
                "`{program} {}` failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&output.stderr).trim()
            );
            remove_netem();
            bail!(error);
        }
    }
    Ok(())
}

/// Removes the namespace and the pair (deleting one end removes both); silent when they do not exist.
fn remove_netem() {
    let _ = Command::new("ip").args(["link", "del", VETH_HOST]).output();
    let _ = Command::new("ip").args(["netns", "del", NETNS]).output();
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| (*s).to_string()).collect()
}

/// The shaping of the userspace proxy.
#[derive(Clone)]
struct Shaping {
    one_way: Duration,
    /// Client to store: one budget shared by every connection, as on one link.
    up: Arc<Pacer>,
    /// Store to client.
    down: Arc<Pacer>,
}

/// One direction of a link of a fixed rate: the time the link is busy until.
struct Pacer {
    bytes_per_s: f64,
    busy_until: Mutex<Instant>,
}

impl Pacer {
    fn new(bits_per_s: u64) -> Pacer {
        Pacer {
            bytes_per_s: bits_per_s as f64 / 8.0,
            busy_until: Mutex::new(Instant::now()),
        }
    }

    /// Puts `n` bytes on the link after whatever is queued: the instant their last byte has left.
    fn reserve(&self, n: usize) -> Instant {
        let mut busy = self.busy_until.lock().unwrap();
        let start = (*busy).max(Instant::now());
        *busy = start + Duration::from_secs_f64(n as f64 / self.bytes_per_s);
        *busy
    }
}

/// Accepts connections and relays each one to `upstream`, shaped when `shaping` is given.
async fn serve(listener: TcpListener, upstream: SocketAddr, shaping: Option<Shaping>, traffic: Arc<Traffic>) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        let shaping = shaping.clone();
        let traffic = traffic.clone();
        tokio::spawn(async move {
            let Ok(server) = TcpStream::connect(upstream).await else {
                return;
            };
            let _ = client.set_nodelay(true);
            let _ = server.set_nodelay(true);
            let (client_read, client_write) = client.into_split();
            let (server_read, server_write) = server.into_split();
            let (up, down) = match &shaping {
                Some(s) => (Some((s.up.clone(), s.one_way)), Some((s.down.clone(), s.one_way))),
                None => (None, None),
            };
            tokio::join!(
                relay(client_read, server_write, up, Direction::Up(&traffic)),
                relay(server_read, client_write, down, Direction::Down(&traffic))
            );
        });
    }
}

/// Which way a relay copies, with the counter it reports to.
#[derive(Clone, Copy)]
enum Direction<'a> {
    /// Client to store.
    Up(&'a Traffic),
    /// Store to client.
    Down(&'a Traffic),
}

impl Direction<'_> {
    fn count(self, chunk: &[u8]) {
        match self {
            Direction::Up(traffic) => traffic.up(chunk),
            Direction::Down(traffic) => traffic.down(chunk.len()),
        }
    }
}

/// Copies one direction until EOF, counting what crosses: unshaped, or each chunk read paced through the link
/// and written once its last byte has crossed it plus the one-way delay. A bounded queue between reader and
/// writer stands for the link's buffer, so a sender ahead of the rate is held back by TCP as on a real link.
async fn relay(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    shaping: Option<(Arc<Pacer>, Duration)>,
    direction: Direction<'_>,
) {
    let Some((pacer, one_way)) = shaping else {
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            let n = match from.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            direction.count(&buffer[..n]);
            if to.write_all(&buffer[..n]).await.is_err() {
                return;
            }
        }
        let _ = to.shutdown().await;
        return;
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(Instant, Vec<u8>)>(64);
    let reader = async move {
        let mut buffer = vec![0u8; 16 * 1024];
        loop {
            let n = match from.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            direction.count(&buffer[..n]);
            let deliver_at = pacer.reserve(n) + one_way;
            if tx.send((deliver_at, buffer[..n].to_vec())).await.is_err() {
                break;
            }
        }
    };
    let writer = async move {
        while let Some((deliver_at, chunk)) = rx.recv().await {
            tokio::time::sleep_until(deliver_at).await;
            if to.write_all(&chunk).await.is_err() {
                return;
            }
        }
        let _ = to.shutdown().await;
    };
    tokio::join!(reader, writer);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The proxy adds the one-way delay each way (a round trip takes at least twice it) and holds a bulk
    /// transfer to the rate.
    #[test]
    fn the_proxy_delays_each_way_and_paces_to_the_rate() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        // An echo server standing for the store.
        let echo = runtime.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
        let echo_addr = echo.local_addr().unwrap();
        runtime.spawn(async move {
            while let Ok((mut s, _)) = echo.accept().await {
                tokio::spawn(async move {
                    let (mut r, mut w) = s.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        let one_way = Duration::from_millis(10);
        let link = Link::start(
            &runtime,
            &format!("http://{echo_addr}"),
            one_way,
            80_000_000,
            true,
        )
        .unwrap();
        assert_eq!(link.kind, Kind::Proxy);
        let addr: SocketAddr = link.endpoint.trim_start_matches("http://").parse().unwrap();
        runtime.block_on(async {
            let mut s = TcpStream::connect(addr).await.unwrap();
            s.set_nodelay(true).unwrap();
            let started = std::time::Instant::now();
            s.write_all(b"ping").await.unwrap();
            let mut got = [0u8; 4];
            s.read_exact(&mut got).await.unwrap();
            let rtt = started.elapsed();
            assert_eq!(&got, b"ping");
            assert!(rtt >= 2 * one_way, "round trip {rtt:?} under 2 × {one_way:?}");
            assert!(rtt < Duration::from_millis(200), "round trip {rtt:?}");
            // 4 MB at 10 MB/s each way takes at least 0.4 s (the echo crosses both directions in parallel).
            let payload = vec![7u8; 4_000_000];
            let started = std::time::Instant::now();
            let (mut r, mut w) = s.into_split();
            let sender = tokio::spawn(async move { w.write_all(&payload).await.unwrap() });
            let mut back = vec![0u8; 4_000_000];
            r.read_exact(&mut back).await.unwrap();
            sender.await.unwrap();
            let took = started.elapsed();
            assert!(back.iter().all(|b| *b == 7));
            assert!(
                took >= Duration::from_millis(390),
                "4 MB at 80 Mbit/s took {took:?}"
            );
            assert!(took < Duration::from_secs(3), "4 MB at 80 Mbit/s took {took:?}");
        });
        // Everything echoed came down the link; nothing sent was a GET.
        let traffic = link.traffic();
        assert_eq!(traffic.bytes_down, 4_000_004);
        assert_eq!(traffic.gets, 0);
    }

    /// GETs are counted with the bytes their range asks for; other requests and body chunks are not.
    #[test]
    fn gets_are_counted_with_their_range() {
        let traffic = Traffic::default();
        traffic.up(b"GET /bucket/video/clip.mp4 HTTP/1.1\r\nhost: x\r\nRange: bytes=100-4194403\r\n\r\n");
        traffic.up(b"GET /bucket/video/clip.mp4 HTTP/1.1\r\nrange: bytes=0-\r\n\r\n");
        traffic.up(b"HEAD /bucket/video/clip.mp4 HTTP/1.1\r\nrange: bytes=0-9\r\n\r\n");
        traffic.up(b"PUT /bucket/x HTTP/1.1\r\n\r\nGET inside a body");
        traffic.down(10);
        let count = traffic.count();
        assert_eq!(count.gets, 2);
        assert_eq!(count.range_bytes, 4_194_304);
        assert_eq!(count.bytes_down, 10);
        let later = TrafficCount {
            gets: 5,
            range_bytes: 4_194_404,
            bytes_down: 30,
        };
        assert_eq!(
            later - count,
            TrafficCount {
                gets: 3,
                range_bytes: 100,
                bytes_down: 20
            }
        );
    }
}
