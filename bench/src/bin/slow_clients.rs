//! Slow-client benchmark: what idle, half-sent and stalled connections do to a server with 256 open files.
//!
//! The attack of issue 13: connections that connect and send nothing, send their headers a line every few
//! seconds (slowloris), send headers and stall their body, or finish a request and then sit on the kept-alive
//! connection. Before the hardening such connections stayed open forever (held 400 s) and 300 of them
//! exhausted a 256-file limit, after which `/healthz` stopped answering.
//!
//! Each server under test runs with `RLIMIT_NOFILE` 256 (set with `prlimit`), receives `connections`
//! attackers (a quarter of each kind) and, for the whole window, a probe that GETs a cheap page every 100 ms
//! on a fresh connection (2 s timeout). Printed per server and kind: how many attackers the server closed and
//! the median time it took; and for the probe: answered share, p50 and p99 latency.
//!
//! The peer, in the same run: `rclone serve webdav` (a stalled body is a stalled `PUT` there), a Go
//! `net/http` server behind rclone's own timeouts. `slow_clients --small` is the CI mode (40 attackers, a 14 s window, our timeouts at 2 s).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use bench::server::Server;
use clap::Parser;
use serde::Serialize;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

#[derive(Parser)]
struct Cli {
    /// CI mode: 40 attackers, a 14 s window, our header and body timeouts at 2 s.
    #[arg(long)]
    small: bool,
    /// Attacking connections per server.
    #[arg(long)]
    connections: Option<usize>,
    /// How long the attack and the probe last, seconds.
    #[arg(long)]
    window_secs: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Connects and sends nothing.
    Silent,
    /// Sends the request line and then one header line every 2 s, never the blank line.
    Slowloris,
    /// Sends whole headers of a 1 MiB body, 16 bytes of it, then stalls.
    StalledBody,
    /// Makes one whole request, reads the answer, then sits on the kept-alive connection.
    KeptAlive,
}

const KINDS: [Kind; 4] = [Kind::Silent, Kind::Slowloris, Kind::StalledBody, Kind::KeptAlive];

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Silent => "silent",
            Kind::Slowloris => "slowloris",
            Kind::StalledBody => "stalled body",
            Kind::KeptAlive => "kept-alive idle",
        }
    }
}

/// What a server is asked for.
#[derive(Clone)]
struct Target {
    name: &'static str,
    addr: String,
    /// A cheap GET path answered 200.
    probe_path: &'static str,
    /// A method and path a request body is sent to, and its authorization header line ("" for none).
    upload: (&'static str, &'static str),
    auth: String,
}

#[derive(Debug, Serialize)]
struct KindLine {
    server: &'static str,
    kind: &'static str,
    connections: usize,
    closed_by_server: usize,
    median_close_secs: Option<f64>,
}

#[derive(Debug, Serialize)]
struct ProbeLine {
    server: &'static str,
    attackers: usize,
    nofile: u32,
    window_secs: u64,
    probes: usize,
    answered_pct: f64,
    p50_ms: Option<f64>,
    p99_ms: Option<f64>,
    cores: usize,
}

const NOFILE: u32 = 256;

fn main() -> Result<()> {
    let cli = Cli::parse();
    let connections = cli.connections.unwrap_or(if cli.small { 40 } else { 300 });
    let window = Duration::from_secs(cli.window_secs.unwrap_or(if cli.small { 14 } else { 75 }));
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let work = tempfile::Builder::new().prefix("iphoto-bench-slow-").tempdir()?;
    let mut kinds = Vec::new();
    let mut probes = Vec::new();

    // Ours, with the defaults (10 s header, 60 s body idle) or, in CI mode, 2 s so the window shows them.
    let timeouts = if cli.small { "2" } else { "" };
    let mut envs = Vec::new();
    if !timeouts.is_empty() {
        envs.push(("IPHOTO_HTTP_HEADER_TIMEOUT_SECS".to_owned(), timeouts.to_owned()));
        envs.push(("IPHOTO_HTTP_BODY_IDLE_SECS".to_owned(), timeouts.to_owned()));
    }
    let data = work.path().join("ours");
    std::fs::create_dir_all(&data)?;
    let server = runtime.block_on(Server::start(&data, &envs))?;
    limit_open_files(server.pid())?;
    let ours = Target {
        name: "iphoto-server",
        addr: server.url.trim_start_matches("http://").to_owned(),
        probe_path: "/healthz",
        upload: ("POST", "/client/iphoto/sync?attacker="),
        auth: format!("Authorization: Bearer {}\r\n", server.token),
    };
    let (k, p) = runtime.block_on(attack(&ours, connections, window))?;
    kinds.extend(k);
    probes.push(p);
    server.stop()?;

    // The peer: rclone's WebDAV server (it takes uploads, so a stalled body is a stalled upload) over an
    // empty directory.
    let served = work.path().join("served");
    std::fs::create_dir_all(&served)?;
    let port = free_port()?;
    let mut rclone = Peer(
        Command::new("rclone")
            .args(["serve", "webdav", "--addr", &format!("127.0.0.1:{port}")])
            .arg(&served)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting rclone serve webdav (is rclone installed?)")?,
    );
    let addr = format!("127.0.0.1:{port}");
    runtime.block_on(wait_listening(&addr))?;
    limit_open_files(rclone.0.id())?;
    let peer = Target {
        name: "rclone serve webdav",
        addr,
        probe_path: "/",
        upload: ("PUT", "/stalled-"),
        auth: String::new(),
    };
    let (k, p) = runtime.block_on(attack(&peer, connections, window))?;
    kinds.extend(k);
    probes.push(p);
    rclone.stop();

    println!(
        "\nslow clients: {connections} attackers per server, RLIMIT_NOFILE {NOFILE}, {}s window",
        window.as_secs()
    );
    println!(
        "{:<20} {:<16} {:>6} {:>8} {:>14}",
        "server", "kind", "conns", "closed", "median close s"
    );
    for line in &kinds {
        let median = line
            .median_close_secs
            .map_or("open".to_owned(), |s| format!("{s:.1}"));
        println!(
            "{:<20} {:<16} {:>6} {:>8} {:>14}",
            line.server, line.kind, line.connections, line.closed_by_server, median
        );
    }
    println!(
        "{:<20} {:>7} {:>10} {:>8} {:>8}",
        "server", "probes", "answered", "p50 ms", "p99 ms"
    );
    for line in &probes {
        let ms = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.1}"));
        println!(
            "{:<20} {:>7} {:>9.1}% {:>8} {:>8}",
            line.server,
            line.probes,
            line.answered_pct,
            ms(line.p50_ms),
            ms(line.p99_ms)
        );
    }
    for line in &kinds {
        println!("{}", serde_json::to_string(line)?);
    }
    for line in &probes {
        println!("{}", serde_json::to_string(line)?);
    }
    // The claim the hardening makes, checked so the CI mode cannot rot into measuring nothing: our server
    // keeps answering its health probe while attacked, and closes every silent and half-sent connection.
    let ours_probe = &probes[0];
    if ours_probe.answered_pct < 99.0 {
        bail!(
            "iphoto-server answered only {:.1}% of probes under attack",
            ours_probe.answered_pct
        );
    }
    for line in kinds.iter().filter(|l| l.server == "iphoto-server") {
        if line.closed_by_server < line.connections {
            bail!(
                "iphoto-server left {} {} connections open",
                line.connections - line.closed_by_server,
                line.kind
            );
        }
    }
    Ok(())
}

/// Sets the process's open-file limit to [`NOFILE`], as a small `ulimit -n` host would.
fn limit_open_files(pid: u32) -> Result<()> {
    let status = Command::new("prlimit")
        .arg(format!("--pid={pid}"))
        .arg(format!("--nofile={NOFILE}:{NOFILE}"))
        .status()
        .context("running prlimit")?;
    if !status.success() {
        bail!("prlimit failed for pid {pid}");
    }
    Ok(())
}

/// Opens the attackers, probes for the window, and reports.
async fn attack(target: &Target, connections: usize, window: Duration) -> Result<(Vec<KindLine>, ProbeLine)> {
    let started = Instant::now();
    let deadline = started + window;
    let mut tasks = Vec::new();
    for i in 0..connections {
        let kind = KINDS[i % KINDS.len()];
        let target = target.clone();
        tasks.push((
            kind,
            tokio::spawn(async move { attacker(&target, kind, i, deadline).await }),
        ));
    }
    // Let the attackers connect before probing.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut latencies = Vec::new();
    let mut probes = 0;
    while Instant::now() + Duration::from_millis(100) < deadline {
        probes += 1;
        let t = Instant::now();
        if tokio::time::timeout(Duration::from_secs(2), probe(target))
            .await
            .is_ok_and(|r| r.is_ok())
        {
            latencies.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut by_kind: Vec<(Kind, Vec<f64>, usize)> = KINDS.iter().map(|k| (*k, Vec::new(), 0)).collect();
    for (kind, task) in tasks {
        let closed = task.await.context("attacker task")?;
        let slot = by_kind
            .iter_mut()
            .find(|(k, _, _)| *k == kind)
            .expect("every kind has a slot");
        slot.2 += 1;
        if let Some(after) = closed {
            slot.1.push(after.as_secs_f64());
        }
    }
    let kinds = by_kind
        .into_iter()
        .map(|(kind, mut closes, n)| KindLine {
            server: target.name,
            kind: kind.name(),
            connections: n,
            closed_by_server: closes.len(),
            // A median over every attacker: defined only when more than half were closed.
            median_close_secs: (closes.len() * 2 > n).then(|| {
                closes.sort_by(f64::total_cmp);
                closes[n / 2]
            }),
        })
        .collect();
    latencies.sort_by(f64::total_cmp);
    let pick = |q: f64| {
        (!latencies.is_empty()).then(|| latencies[((latencies.len() - 1) as f64 * q).round() as usize])
    };
    let probe_line = ProbeLine {
        server: target.name,
        attackers: connections,
        nofile: NOFILE,
        window_secs: window.as_secs(),
        probes,
        answered_pct: if probes == 0 {
            0.0
        } else {
            latencies.len() as f64 * 100.0 / probes as f64
        },
        p50_ms: pick(0.5),
        p99_ms: pick(0.99),
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    Ok((kinds, probe_line))
}

/// One attacking connection: returns how long after the attack began the server closed it, or `None` when it
/// was still open at `deadline` (or could not connect).
async fn attacker(target: &Target, kind: Kind, id: usize, deadline: Instant) -> Option<Duration> {
    let opened = Instant::now();
    let mut stream = TcpStream::connect(&target.addr).await.ok()?;
    let host = format!("Host: {}\r\n", target.addr);
    let sent = match kind {
        Kind::Silent => Ok(()),
        Kind::Slowloris => {
            stream
                .write_all(format!("GET {} HTTP/1.1\r\n{host}", target.probe_path).as_bytes())
                .await
        }
        Kind::StalledBody => {
            let head = format!(
                "{} {}{id} HTTP/1.1\r\n{host}{}Content-Type: application/json\r\nContent-Length: 1048576\r\n\r\n{{\"library\":\"aaaa",
                target.upload.0, target.upload.1, target.auth
            );
            stream.write_all(head.as_bytes()).await
        }
        Kind::KeptAlive => {
            let request = format!("GET {} HTTP/1.1\r\n{host}\r\n", target.probe_path);
            match stream.write_all(request.as_bytes()).await {
                Ok(()) => read_one_answer(&mut stream).await,
                Err(error) => Err(error),
            }
        }
    };
    if sent.is_err() {
        return Some(opened.elapsed());
    }
    let mut buf = [0u8; 4096];
    loop {
        let now = Instant::now();
        if now >= deadline {
            return None;
        }
        let wait = (deadline - now).min(Duration::from_secs(2));
        match tokio::time::timeout(wait, stream.read(&mut buf)).await {
            // The server answered (an error, a timeout page) or closed: either way it let go once it closes.
            Ok(Ok(0)) | Ok(Err(_)) => return Some(opened.elapsed()),
            Ok(Ok(_)) => continue,
            Err(_) => {
                if kind == Kind::Slowloris && stream.write_all(b"X-Drip: 1\r\n").await.is_err() {
                    return Some(opened.elapsed());
                }
            }
        }
    }
}

/// Reads until the end of one answer's headers (the probe pages are small and sent in one piece).
async fn read_one_answer(stream: &mut TcpStream) -> std::io::Result<()> {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        seen.extend_from_slice(&buf[..n]);
    }
    Ok(())
}

/// One probe: a fresh connection, a whole GET, a 200.
async fn probe(target: &Target) -> Result<()> {
    let mut stream = TcpStream::connect(&target.addr).await?;
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        target.probe_path, target.addr
    );
    stream.write_all(request.as_bytes()).await?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await?;
    if !answer.starts_with(b"HTTP/1.1 200") {
        bail!(
            "probe answered {:?}",
            String::from_utf8_lossy(&answer[..answer.len().min(40)])
        );
    }
    Ok(())
}

async fn wait_listening(addr: &str) -> Result<()> {
    for _ in 0..100 {
        if TcpStream::connect(addr).await.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("{addr} never listened")
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A peer process killed when dropped.
struct Peer(Child);

impl Peer {
    fn stop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.stop();
    }
}
