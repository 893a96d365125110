//! Resumable uploads end to end: the sync pass against the real `iphoto-server` behind a link that drops
//! every connection after 1.5 MiB (a plain upload of a 4 MiB file could never finish), and a pass killed
//! mid-upload whose successor resumes from the URL kept in the state DB.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use iphoto_agent::state::StateDb;
use iphoto_agent::sync::{NoProgress, run_pass};

use common::sync::{Library, TestServer, assert_stored_once};

const PART: &str = "1048576";

#[tokio::test]
async fn uploads_go_on_after_every_dropped_connection() {
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(data.path(), &[("IPHOTO_UPLOAD_PART_SIZE", PART)]).await;
    let library = Library::new(4 * 1024 * 1024).await;
    let mut options = library.options();
    options.resumable_threshold = 1024 * 1024;
    options.uploads = 2;
    let upstream = server.url().trim_start_matches("http://").parse().unwrap();
    let proxy = harness::CutProxy::start(upstream).await.unwrap();
    proxy.cut_every_after(3 * 512 * 1024);

    let report = run_pass(
        &server.client_at(&format!("http://{}", proxy.addr())),
        &options,
        &NoProgress,
    )
    .await
    .unwrap();
    assert_eq!((report.uploaded, report.upload_failures), (7, 0), "{report:?}");
    assert!(proxy.cuts() >= 7, "every upload was cut: {} cuts", proxy.cuts());
    assert_stored_once(&server, &library, 0);
    let stats = server.stats().await;
    assert_eq!((stats.totals.uploaded, stats.totals.pending), (7, 0), "{stats:?}");

    let state = StateDb::open(&library.state_dir()).await.unwrap();
    let figures = state.figures().await.unwrap();
    assert!(figures.bytes_resumed > 0, "{figures:?}");
    // The server keeps every byte that reached it: over the link, at most one part per cut comes again.
    let files = 7 * 4 * 1024 * 1024;
    assert!(
        proxy.forwarded() <= files + proxy.cuts() * 1024 * 1024 + 1024 * 1024,
        "{} bytes over the link for {files} with {} cuts",
        proxy.forwarded(),
        proxy.cuts()
    );
    // The agent counts as re-sent what it handed to a connection that was then cut and the server did not
    // keep: the read-ahead and the socket buffers, a few MiB per cut at most.
    assert!(
        figures.bytes_resent > 0 && figures.bytes_resent <= proxy.cuts() * 4 * 1024 * 1024,
        "{figures:?}"
    );
}

#[tokio::test]
async fn a_restarted_agent_resumes_from_the_url_it_kept() {
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(data.path(), &[("IPHOTO_UPLOAD_PART_SIZE", PART)]).await;
    let library = Library::new(6 * 1024 * 1024).await;
    let mut options = library.options();
    options.resumable_threshold = 1024 * 1024;
    options.uploads = 1;
    let upstream = server.url().trim_start_matches("http://").parse().unwrap();
    let proxy = harness::CutProxy::start(upstream).await.unwrap();
    // Slow enough to be killed mid-way: every connection cut after 2 MiB.
    proxy.cut_every_after(2 * 1024 * 1024);
    let client = server.client_at(&format!("http://{}", proxy.addr()));
    let pass = {
        let options = options.clone();
        tokio::spawn(async move { run_pass(&client, &options, &NoProgress).await })
    };
    while proxy.cuts() < 2 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    pass.abort();
    let _ = pass.await;

    // A new pass straight to the server: the kept upload goes on from the server's offset.
    let report = run_pass(&server.client(), &options, &NoProgress).await.unwrap();
    assert_eq!(report.upload_failures, 0, "{report:?}");
    assert_stored_once(&server, &library, 0);
    let state = StateDb::open(&library.state_dir()).await.unwrap();
    let figures = state.figures().await.unwrap();
    assert!(
        figures.bytes_resumed >= 1024 * 1024,
        "the restarted pass resumed: {figures:?}"
    );
}
