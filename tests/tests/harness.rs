//! The harness starts real servers and cleans up after them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use harness::{Postgres, S3Server};
use object_store::ObjectStoreExt as _;

#[tokio::test]
async fn seaweedfs_checks_signatures_and_cleans_up() {
    let mut server = S3Server::start().unwrap();
    let client = server.object_store();
    let path = object_store::path::Path::from("probe/x.txt");
    client.put(&path, "hello".into()).await.unwrap();
    assert_eq!(client.get(&path).await.unwrap().bytes().await.unwrap(), "hello");

    // Anonymous requests are refused: SigV4 is really checked.
    let anonymous = reqwest::get(format!("{}/{}/probe/x.txt", server.endpoint, server.bucket))
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 403);

    let dir = server.dir().to_path_buf();
    assert!(dir.exists());
    server.stop();
    assert!(!dir.exists(), "the server's directory is removed when it stops");
    assert!(
        reqwest::get(&server.endpoint).await.is_err(),
        "the port is closed"
    );
}

#[test]
fn postgres_gives_fresh_databases() {
    let pg = Postgres::shared();
    let a = pg.fresh_database().unwrap();
    let b = pg.fresh_database().unwrap();
    assert_ne!(a, b);
    let db_a = a.rsplit('/').next().unwrap();
    pg.psql(db_a, "CREATE TABLE t (x int); INSERT INTO t VALUES (42)")
        .unwrap();
    assert_eq!(pg.psql(db_a, "SELECT x FROM t").unwrap().trim(), "42");
    let db_b = b.rsplit('/').next().unwrap();
    assert!(
        pg.psql(db_b, "SELECT x FROM t").is_err(),
        "a fresh database is empty"
    );
}

#[test]
fn a_dead_test_process_takes_its_servers_with_it() {
    // A child test process starts the shared SeaweedFS and is killed with SIGKILL; the supervisor notices
    // the closed pipe and removes the server's directory.
    if std::env::var_os("HARNESS_CHILD").is_some() {
        let server = S3Server::shared();
        println!("DIR={}", server.dir().display());
        std::thread::sleep(std::time::Duration::from_secs(60));
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let mut child = std::process::Command::new(exe)
        .args([
            "--exact",
            "a_dead_test_process_takes_its_servers_with_it",
            "--nocapture",
        ])
        .env("HARNESS_CHILD", "1")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut dir = None;
    for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)) {
        let line = line.unwrap();
        if let Some(d) = line.strip_prefix("DIR=") {
            dir = Some(std::path::PathBuf::from(d));
            break;
        }
    }
    let dir = dir.expect("child printed its server's directory");
    assert!(dir.exists());
    child.kill().unwrap();
    child.wait().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while dir.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(
        !dir.exists(),
        "{} is still there after its test process died",
        dir.display()
    );
}
