//! `TestApp`: the real router on `127.0.0.1:0` over a real catalog (SQLite or PostgreSQL) and a real store
//! (a local directory or SeaweedFS), with users and tokens made through the catalog.

#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

/// One `#[tokio::test]` per behaviour per backend pair: `matrix!(behaviour_a, behaviour_b)` in a test file
/// (with `#[macro_use] mod app;`) runs each `async fn behaviour(app: TestApp)` of that file against
/// {SQLite, PostgreSQL} × {local directory, SeaweedFS}.
#[allow(unused_macros)]
macro_rules! matrix {
    ($($behaviour:ident),* $(,)?) => {
        mod sqlite_local { $( #[tokio::test(flavor = "multi_thread")] async fn $behaviour() { crate::$behaviour(crate::TestApp::start(crate::Backends::SqliteLocal).await).await } )* }
        mod sqlite_s3 { $( #[tokio::test(flavor = "multi_thread")] async fn $behaviour() { crate::$behaviour(crate::TestApp::start(crate::Backends::SqliteS3).await).await } )* }
        mod postgres_local { $( #[tokio::test(flavor = "multi_thread")] async fn $behaviour() { crate::$behaviour(crate::TestApp::start(crate::Backends::PostgresLocal).await).await } )* }
        mod postgres_s3 { $( #[tokio::test(flavor = "multi_thread")] async fn $behaviour() { crate::$behaviour(crate::TestApp::start(crate::Backends::PostgresS3).await).await } )* }
    };
}

use std::sync::Arc;

use harness::{Postgres, S3Server, unique_name};
use server::catalog::{self, Catalog, ConnectOptions, Location, Scope};
use server::http::{AppState, HttpSettings};

/// Which real parts an app runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backends {
    SqliteLocal,
    SqliteS3,
    PostgresLocal,
    PostgresS3,
}

#[derive(Debug)]
pub struct TestApp {
    pub url: String,
    pub http: reqwest::Client,
    pub catalog: Arc<dyn Catalog>,
    pub store: storage::Store,
    pub backends: Backends,
    location: Location,
    settings: HttpSettings,
    dir: Arc<tempfile::TempDir>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl TestApp {
    pub async fn start(backends: Backends) -> TestApp {
        Self::start_with(
            backends,
            HttpSettings {
                max_sync_batch: 500,
                max_upload_bytes: 64 << 20,
                ..HttpSettings::default()
            },
        )
        .await
    }

    pub async fn start_with(backends: Backends, settings: HttpSettings) -> TestApp {
        let dir = Arc::new(tempfile::tempdir().unwrap());
        // Bound first, so the local backend's presigned URLs point at this server's `/blobs/` route.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let public_url = format!("http://{}", listener.local_addr().unwrap());
        let location = match backends {
            Backends::SqliteLocal | Backends::SqliteS3 => Location::sqlite_in(dir.path()),
            Backends::PostgresLocal | Backends::PostgresS3 => Location::Postgres {
                url: Postgres::shared().fresh_database().unwrap(),
            },
        };
        let store = match backends {
            Backends::SqliteLocal | Backends::PostgresLocal => {
                storage::create_object_store(&storage::StorageConfig {
                    backend: storage::BackendConfig::Local(storage::LocalConfig {
                        root: dir.path().join("blobs"),
                        presign_secret: storage::Secret::new("test-presign-secret-0123456789abcdef".into()),
                        public_url: public_url.parse().unwrap(),
                    }),
                    presign: Default::default(),
                })
                .unwrap()
            }
            Backends::SqliteS3 | Backends::PostgresS3 => {
                let s3 = S3Server::shared();
                storage::create_s3_store(
                    &storage::S3Config {
                        endpoint: Some(s3.endpoint.parse().unwrap()),
                        region: s3.region.clone(),
                        bucket: s3.bucket.clone(),
                        access_key_id: s3.access_key_id.clone(),
                        secret_access_key: storage::Secret::new(s3.secret_access_key.clone()),
                        prefix: Some(storage::StorageKey::parse(unique_name("http")).unwrap()),
                        path_style: true,
                    },
                    Default::default(),
                )
                .unwrap()
            }
        };
        Self::serve(backends, location, store, settings, dir, listener).await
    }

    async fn serve(
        backends: Backends,
        location: Location,
        store: storage::Store,
        settings: HttpSettings,
        dir: Arc<tempfile::TempDir>,
        listener: tokio::net::TcpListener,
    ) -> TestApp {
        let catalog = catalog::connect(&location, &ConnectOptions::default())
            .await
            .unwrap();
        let state = AppState::new(Arc::clone(&catalog), store.clone(), settings.clone());
        let url = format!("http://{}", listener.local_addr().unwrap());
        let router = server::http::router(state);
        // The production accept loop (header timeout, connection limit), with its defaults.
        let server = tokio::spawn(server::http::serve::serve(
            listener,
            router,
            server::http::serve::ConnectionLimits::default(),
            tokio_util::sync::CancellationToken::new(),
        ));
        TestApp {
            url,
            http: reqwest::Client::new(),
            catalog,
            store,
            backends,
            location,
            settings,
            dir,
            server,
        }
    }

    /// The same catalog and store behind a new server: what a restart looks like.
    pub async fn restart(self) -> TestApp {
        let (backends, location, store, settings, dir) = (
            self.backends,
            self.location.clone(),
            self.store.clone(),
            self.settings.clone(),
            Arc::clone(&self.dir),
        );
        drop(self);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::serve(backends, location, store, settings, dir, listener).await
    }

    /// A second server over the same catalog and store, this one left running: another replica.
    pub async fn replica(&self) -> TestApp {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::serve(
            self.backends,
            self.location.clone(),
            self.store.clone(),
            self.settings.clone(),
            Arc::clone(&self.dir),
            listener,
        )
        .await
    }

    /// The data directory (the local backend's blobs are under `blobs/`).
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// A new user with a token of `scope`.
    pub async fn user_with_token(&self, scope: Scope) -> (server::catalog::User, String) {
        let user = self.catalog.create_user(&unique_name("user")).await.unwrap();
        let token = self.catalog.create_token(&user.id, scope, "test").await.unwrap();
        (user, token.secret.expose().to_owned())
    }

    /// Another token of `scope` for an existing user.
    pub async fn token(&self, user: &server::catalog::User, scope: Scope) -> String {
        self.catalog
            .create_token(&user.id, scope, "test")
            .await
            .unwrap()
            .secret
            .expose()
            .to_owned()
    }

    /// Where the catalog is, for tests that look behind the port.
    pub fn location(&self) -> &Location {
        &self.location
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    pub async fn post_json(
        &self,
        token: &str,
        path: &str,
        body: &serde_json::Value,
    ) -> (u16, serde_json::Value) {
        let response = self
            .http
            .post(self.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .unwrap();
        read(response).await
    }

    pub async fn get_json(&self, token: &str, path: &str) -> (u16, serde_json::Value) {
        let response = self
            .http
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        read(response).await
    }
}

pub async fn read(response: reqwest::Response) -> (u16, serde_json::Value) {
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let json =
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("status {status}, body not JSON: {text}"));
    (status, json)
}

/// Asserts an error answer: status, code, and the envelope's shape.
pub fn assert_error(answer: &(u16, serde_json::Value), status: u16, code: &str) {
    assert_eq!(answer.0, status, "{}", answer.1);
    assert_eq!(answer.1["error"]["code"], code, "{}", answer.1);
    assert!(
        answer.1["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{}",
        answer.1
    );
}

/// A sync item with an original of `size` bytes declaring `sha256`.
pub fn item(uuid: &str, size: u64, sha256: Option<&str>) -> serde_json::Value {
    let mut resource = serde_json::json!({ "type": "original", "size": size, "available": true });
    if let Some(sha) = sha256 {
        resource["sha256"] = sha.into();
    }
    serde_json::json!({
        "localIdentifier": format!("{uuid}/L0/001"),
        "kind": "photo", "livePhoto": false, "width": 4032, "height": 3024,
        "takenAt": "2024-05-01T10:00:00+02:00", "modifiedAt": "2024-05-02T10:00:00Z",
        "favorite": false, "hidden": false, "trashed": false,
        "originalFilename": "IMG_0001.HEIC", "uti": "public.heic", "edited": false,
        "keywords": ["beach"], "people": ["Ann"],
        "resources": [resource]
    })
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    storage::Sha256Digest::of(bytes).to_hex()
}
