//! The sync tests' shared pieces: the real `iphoto-server` binary on a free port (killed on drop) and a
//! synthesized Photos library — the database built from `reference/fixture_photos11.sql` and generated files at
//! the paths the reader expects (a Live Photo pair and a render included; the iCloud asset's original left out).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use api::ResourceType;
use harness::ServerProcess;
use iphoto_agent::client::{Retry, Server};
use iphoto_agent::library::PhotosLibrary;
use iphoto_agent::sync::{NoProgress, PassOptions, PassReport, run_pass};
use sha2::{Digest as _, Sha256};
use sqlx::Connection as _;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};

pub const ICLOUD_ONLY: &str = "F6A7B8C9-0006-4000-8000-000000000006";

/// The real server, killed on drop (panics included).
pub struct TestServer {
    pub process: ServerProcess,
    pub data: PathBuf,
}

impl TestServer {
    pub async fn start(data: &Path) -> TestServer {
        Self::start_with(data, &[]).await
    }

    /// With extra environment for the server.
    pub async fn start_with(data: &Path, envs: &[(&str, &str)]) -> TestServer {
        TestServer {
            process: ServerProcess::start(&server_binary(), data, envs).await.unwrap(),
            data: data.to_path_buf(),
        }
    }

    /// A client of the server at `url` (a proxy in front of it) with this server's token.
    pub fn client_at(&self, url: &str) -> Server {
        let token = std::fs::read_to_string(self.data.join("client.token")).unwrap();
        let retry = Retry {
            attempts: 60,
            first_delay: Duration::from_millis(50),
            max_delay: Duration::from_millis(200),
        };
        Server::new(url, &token, retry).unwrap()
    }

    /// Kills the server (SIGKILL).
    pub fn stop(&mut self) {
        self.process.kill();
    }

    /// Starts it again on the same port, and waits until it is ready.
    pub async fn restart(&mut self) {
        self.process.restart().await.unwrap();
    }

    pub fn url(&self) -> String {
        self.process.url()
    }

    pub fn client(&self) -> Server {
        let token = std::fs::read_to_string(self.data.join("client.token")).unwrap();
        let retry = Retry {
            attempts: 60,
            first_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(500),
        };
        Server::new(&self.url(), &token, retry).unwrap()
    }

    pub async fn stats(&self) -> api::Stats {
        self.client().stats().await.unwrap()
    }

    /// SHA-256 → number of stored objects with those bytes, over the whole blob store.
    pub fn stored(&self) -> BTreeMap<String, usize> {
        let mut found = BTreeMap::new();
        for path in harness::files_under(&self.data.join("blobs")) {
            *found.entry(sha256(&std::fs::read(&path).unwrap())).or_insert(0) += 1;
        }
        found
    }
}

/// `<target>/debug/iphoto-server`, beside this test's `deps/` directory. A dev-dependency builds the server's
/// library but not its binary, so a missing binary is built once here with the same cargo and target dir.
pub fn server_binary() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let profile_dir = std::env::current_exe()
                .unwrap()
                .parent()
                .unwrap()
                .parent()
                .unwrap()
                .to_path_buf();
            let binary = profile_dir.join("iphoto-server");
            if !binary.is_file() {
                let status = Command::new(env!("CARGO"))
                    .args(["build", "-p", "iphoto-server", "--bin", "iphoto-server"])
                    .env("CARGO_TARGET_DIR", profile_dir.parent().unwrap())
                    .current_dir(env!("CARGO_MANIFEST_DIR"))
                    .status()
                    .unwrap();
                assert!(status.success(), "building iphoto-server failed");
            }
            binary
        })
        .clone()
}

pub fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A synthesized library in a temp dir: the bundle, its database and the files written.
pub struct Library {
    pub dir: tempfile::TempDir,
    pub bundle: PathBuf,
    /// `(uuid, resource)` → sha256 of the file written for it.
    pub files: BTreeMap<(String, ResourceType), String>,
    /// Where the iCloud-only asset's original would be.
    pub icloud_path: PathBuf,
}

impl Library {
    pub async fn new(file_size: usize) -> Library {
        let dir = tempfile::tempdir().unwrap();
        let bundle = dir.path().join("Test.photoslibrary");
        std::fs::create_dir_all(bundle.join("database")).unwrap();
        super::build_photos11(&bundle.join("database")).await;

        let assets = PhotosLibrary::open(&bundle)
            .await
            .unwrap()
            .assets()
            .await
            .unwrap();
        let mut files = BTreeMap::new();
        let mut icloud_path = PathBuf::new();
        for (n, asset) in assets.iter().enumerate() {
            for file in &asset.files {
                if asset.uuid == ICLOUD_ONLY {
                    icloud_path = file.path.clone();
                    continue;
                }
                let bytes = content(
                    &format!("{}{:?}", asset.uuid, file.resource_type),
                    file_size + n * 977,
                );
                std::fs::create_dir_all(file.path.parent().unwrap()).unwrap();
                std::fs::write(&file.path, &bytes).unwrap();
                files.insert((asset.uuid.clone(), file.resource_type), sha256(&bytes));
            }
        }
        assert_eq!(files.len(), 7, "5 originals, a Live Photo video and a render");
        Library {
            dir,
            bundle,
            files,
            icloud_path,
        }
    }

    /// Where the reader, reading the library as it is now, finds `uuid`'s resource of type `resource`.
    pub async fn resource_path(&self, uuid: &str, resource: ResourceType) -> PathBuf {
        let assets = PhotosLibrary::open(&self.bundle)
            .await
            .unwrap()
            .assets()
            .await
            .unwrap();
        let asset = assets.iter().find(|a| a.uuid == uuid).unwrap();
        asset.path(resource).unwrap().to_path_buf()
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    pub fn options(&self) -> PassOptions {
        PassOptions::new(&self.bundle, &self.state_dir())
    }

    pub async fn execute(&self, sql: &'static str) {
        let options = SqliteConnectOptions::new().filename(self.bundle.join("database/Photos.sqlite"));
        let mut connection = SqliteConnection::connect_with(&options).await.unwrap();
        let done = sqlx::query(sql).execute(&mut connection).await.unwrap();
        assert_eq!(done.rows_affected(), 1, "{sql}");
        connection.close().await.unwrap();
    }
}

/// Distinct, incompressible-looking bytes per seed.
pub fn content(seed: &str, size: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(size + 32);
    let mut block = Sha256::digest(seed.as_bytes());
    while out.len() < size {
        out.extend_from_slice(&block);
        block = Sha256::digest(block);
    }
    out.truncate(size);
    out
}

pub async fn pass(server: &TestServer, library: &Library) -> PassReport {
    run_pass(&server.client(), &library.options(), &NoProgress)
        .await
        .unwrap()
}

pub fn assert_stored_once(server: &TestServer, library: &Library, extra: usize) {
    let stored = server.stored();
    for ((uuid, resource), sha) in &library.files {
        assert_eq!(
            stored.get(sha),
            Some(&1),
            "{uuid} {resource:?} stored once with the file's SHA-256"
        );
    }
    assert_eq!(
        stored.values().sum::<usize>(),
        library.files.len() + extra,
        "{stored:?}"
    );
}
