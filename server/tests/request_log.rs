//! The real binary's request log on stderr (a file here, not a terminal): one info line per request with the
//! method, the route template, the status, the milliseconds and the request id; never the raw path or the
//! query (presigned `/blobs/` URLs carry their signature there); no colour codes; an idle worker's empty lease
//! at debug; and with `IPHOTO_LOG_JSON` every line one JSON object.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod served;

use harness::ServerProcess;
use served::BIN;

/// What the requests below put in paths and queries: none may reach the log.
const SECRETS: [&str; 6] = [
    "SIGNATURE0123",
    "sig=",
    "exp=",
    "u-secret-id",
    "PHOTO-ID-42",
    "TOKEN-IN-PATH",
];

/// A blob fetch with a (bad) signature, a photo by id, an unknown path, and an idle worker's lease, each with
/// its own request id.
async fn requests(server: &ServerProcess) {
    let http = reqwest::Client::new();
    let base = server.url();
    let blob = http
        .get(format!(
            "{base}/blobs/users/u-secret-id/libraries/L/originals/A/ABCD.heic?exp=1&sig=SIGNATURE0123"
        ))
        .header("x-request-id", "req-blob")
        .send()
        .await
        .unwrap();
    assert_eq!(blob.status(), 403);
    let photo = http
        .get(format!("{base}/my/photos/PHOTO-ID-42?limit=3"))
        .bearer_auth(server.token("web").unwrap())
        .header("x-request-id", "req-photo")
        .send()
        .await
        .unwrap();
    assert_eq!(photo.status(), 404);
    let unknown = http
        .get(format!("{base}/no/such/TOKEN-IN-PATH"))
        .header("x-request-id", "req-unknown")
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    let lease = http
        .post(format!("{base}/worker/jobs/lease?kind=thumbnail"))
        .bearer_auth(server.token("worker").unwrap())
        .header("x-request-id", "req-lease")
        .send()
        .await
        .unwrap();
    assert_eq!(lease.status(), 200);
    assert_eq!(lease.text().await.unwrap(), r#"{"jobs":[]}"#);
}

fn assert_no_secrets(log: &str) {
    for secret in SECRETS {
        assert!(!log.contains(secret), "{secret} is in the log:\n{log}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn one_text_line_per_request_with_its_route_and_no_query() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(BIN.as_ref(), &dir.path().join("data"), &[])
        .await
        .unwrap();
    requests(&server).await;
    let log = server.log_text();

    assert!(
        !log.contains('\u{1b}'),
        "no ANSI escape codes when stderr is not a terminal:\n{log}"
    );
    assert_no_secrets(&log);
    let line = |id: &str| -> String {
        let lines: Vec<&str> = log
            .lines()
            .filter(|line| line.contains(&format!("request_id=\"{id}\"")))
            .collect();
        assert_eq!(lines.len(), 1, "one line for {id}:\n{log}");
        lines[0].to_owned()
    };
    for (id, route, status) in [
        ("req-blob", "/blobs/{*key}", 403),
        ("req-photo", "/my/photos/{photoId}", 404),
        ("req-unknown", "unmatched", 404),
    ] {
        let line = line(id);
        assert!(line.contains(" INFO "), "{line}");
        assert!(line.contains("method=GET"), "{line}");
        assert!(line.contains(&format!("matched_path=\"{route}\"")), "{line}");
        assert!(line.contains(&format!("status={status}")), "{line}");
        let ms = line
            .split("ms=")
            .nth(1)
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap();
        assert!(ms.parse::<f64>().unwrap() >= 0.0, "{line}");
    }
    assert!(
        !log.contains("req-lease"),
        "an idle worker's empty lease is at debug, below the default level:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn json_lines_carry_the_same_fields() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(
        BIN.as_ref(),
        &dir.path().join("data"),
        &[
            ("IPHOTO_LOG_JSON", "true"),
            ("IPHOTO_LOG", "info,server::http=debug"),
        ],
    )
    .await
    .unwrap();
    requests(&server).await;
    let log = server.log_text();
    assert_no_secrets(&log);

    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: not JSON: {line}")))
        .collect();
    assert!(lines.len() > 5, "{log}");
    let answered = |id: &str| -> serde_json::Value {
        let found: Vec<&serde_json::Value> = lines
            .iter()
            .filter(|l| l["span"]["request_id"] == id && l["fields"]["message"] == "answered")
            .collect();
        assert_eq!(found.len(), 1, "one closing line for {id}:\n{log}");
        found[0].clone()
    };
    let blob = answered("req-blob");
    assert_eq!(blob["level"], "INFO");
    assert_eq!(blob["span"]["method"], "GET");
    assert_eq!(blob["span"]["matched_path"], "/blobs/{*key}");
    assert_eq!(blob["fields"]["status"], 403);
    assert!(blob["fields"]["ms"].as_f64().unwrap() >= 0.0, "{blob}");

    let lease = answered("req-lease");
    assert_eq!(
        lease["level"], "DEBUG",
        "an empty lease is routine polling: {lease}"
    );
    assert_eq!(lease["span"]["method"], "POST");
    assert_eq!(lease["span"]["matched_path"], "/worker/jobs/lease");
    assert_eq!(lease["fields"]["status"], 200);
    // The handler's own line is in its span, inside the request's: the request id is in `spans`.
    let leased: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| l["spans"][0]["request_id"] == "req-lease" && l["fields"]["message"] == "leased jobs")
        .collect();
    assert_eq!(leased.len(), 1, "{log}");
    assert_eq!(leased[0]["level"], "DEBUG");
}
