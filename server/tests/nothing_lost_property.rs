//! Nothing lost, as a property (issue 12): random sequences of sync, edit, duplicate, delete, restore,
//! garbage collection, an upload cut off mid-body and a restart, with a clock the purge runs against. After
//! every step, every object a live or retained catalog row names exists and hashes to the SHA-256 the row
//! records; after every collection, no object of the user is left that no row names (the grace is zero
//! here, so "past the grace" is "at once"). The invariant: no acknowledged byte is deleted before the
//! retention, verified by hash.
//!
//! Each sequence is seeded, so a failure names the seed and the step to replay.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod app;
#[allow(unused_imports)]
#[path = "common/catalog.rs"]
mod contract;

use std::collections::BTreeSet;
use std::time::Duration;

use app::{Backends, TestApp, item, read, sha256_hex};
use chrono::{DateTime, Utc};
use contract::Raw;
use futures::{StreamExt as _, TryStreamExt as _};
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use serde_json::json;
use server::catalog::{Location, RestoreTarget, Retention, Scope};
use server::gc::{GcSettings, run_pass};
use storage::{LibraryLayout, StorageKey};

const LIB: &str = "Property-Library";
const SEQUENCES: u64 = 4;
const STEPS: usize = 50;
/// Distinct contents: few enough that duplicates and re-used content are common.
const CONTENTS: usize = 12;

fn content(k: usize) -> Vec<u8> {
    format!("content number {k} ").repeat(40 + k * 7).into_bytes()
}

#[derive(Debug, Clone, Copy)]
enum Step {
    New,
    Edit,
    Duplicate,
    Delete,
    Restore,
    Collect,
    Clock,
    CutOff,
    Restart,
}

fn pick(rng: &mut StdRng) -> Step {
    match rng.random_range(0..100) {
        0..25 => Step::New,
        25..42 => Step::Edit,
        42..52 => Step::Duplicate,
        52..62 => Step::Delete,
        62..70 => Step::Restore,
        70..80 => Step::Collect,
        80..86 => Step::Clock,
        86..96 => Step::CutOff,
        _ => Step::Restart,
    }
}

struct World {
    /// `None` only during a restart.
    app: Option<TestApp>,
    raw: Raw,
    user: server::catalog::User,
    client: String,
    library: server::catalog::LibraryId,
    rng: StdRng,
    /// Identifiers synced so far (live or not: the catalog decides).
    ids: Vec<String>,
    /// Times between steps, for restores.
    times: Vec<DateTime<Utc>>,
    /// How far the purge's clock runs ahead of the wall clock.
    ahead: chrono::Duration,
}

impl World {
    fn app(&self) -> &TestApp {
        self.app.as_ref().unwrap()
    }

    async fn sync(&self, id: &str, k: usize, deleted: bool) -> serde_json::Value {
        let bytes = content(k);
        let mut value = item("X", bytes.len() as u64, Some(&sha256_hex(&bytes)));
        value["localIdentifier"] = id.into();
        value["modifiedAt"] = Utc::now().to_rfc3339().into();
        if deleted {
            value["deleted"] = true.into();
        }
        let (status, answer) = self
            .app()
            .post_json(
                &self.client,
                "/client/iphoto/sync",
                &json!({ "libraryId": LIB, "items": [value] }),
            )
            .await;
        assert_eq!(status, 200, "{answer}");
        answer
    }

    fn request(&self, id: &str, k: usize, body: reqwest::Body) -> reqwest::RequestBuilder {
        self.app()
            .http
            .post(
                self.app()
                    .url(&format!("/client/iphoto/upload/{id}?library={LIB}")),
            )
            .bearer_auth(&self.client)
            .header("x-content-sha256", sha256_hex(&content(k)))
            .body(body)
    }

    /// Syncs `id` with content `k` and uploads it when the server asks.
    async fn put(&self, id: &str, k: usize) {
        let answer = self.sync(id, k, false).await;
        if answer["results"][0]["needsUpload"] == json!(["original"]) {
            let (status, body) = read(self.request(id, k, content(k).into()).send().await.unwrap()).await;
            assert_eq!(status, 200, "{body}");
        }
    }

    async fn step(&mut self, step: Step) {
        match step {
            Step::New => {
                let id = format!("P{:04}/L0/001", self.ids.len());
                let k = self.rng.random_range(0..CONTENTS);
                self.put(&id, k).await;
                self.ids.push(id);
            }
            Step::Edit | Step::Delete | Step::CutOff if self.ids.is_empty() => {}
            Step::Edit => {
                let id = self.ids[self.rng.random_range(0..self.ids.len())].clone();
                let k = self.rng.random_range(0..CONTENTS);
                self.put(&id, k).await;
            }
            Step::Duplicate => {
                let k = self.rng.random_range(0..CONTENTS);
                let id = format!("P{:04}/L0/001", self.ids.len());
                self.put(&id, k).await;
                let copy = format!("P{:04}/L0/002", self.ids.len());
                self.put(&copy, k).await;
                self.ids.push(id);
                self.ids.push(copy);
            }
            Step::Delete => {
                let id = self.ids[self.rng.random_range(0..self.ids.len())].clone();
                self.sync(&id, 0, true).await;
            }
            Step::Restore => {
                if let Some(&as_of) = self.times.get(self.rng.random_range(0..self.times.len().max(1))) {
                    self.app()
                        .catalog
                        .restore(
                            &self.user.id,
                            &RestoreTarget::Library(self.library.clone()),
                            as_of,
                            Utc::now(),
                        )
                        .await
                        .unwrap();
                }
            }
            Step::Collect => {
                self.app()
                    .catalog
                    .purge(Retention { days: 30 }, Utc::now() + self.ahead)
                    .await
                    .unwrap();
                let settings = GcSettings {
                    settle: Duration::ZERO,
                    ..GcSettings::new(Duration::ZERO)
                };
                run_pass(
                    self.app().catalog.as_ref(),
                    &self.app().store,
                    "property",
                    &settings,
                )
                .await
                .unwrap();
                self.assert_nothing_unreferenced().await;
            }
            Step::Clock => self.ahead += chrono::Duration::days(self.rng.random_range(1..20)),
            Step::CutOff => {
                // The client goes away mid-body: the server aborts the write, or stores it and is cut off
                // before the catalog hears of it; the next upload of that content adopts what is there.
                let id = self.ids[self.rng.random_range(0..self.ids.len())].clone();
                let k = self.rng.random_range(0..CONTENTS);
                let answer = self.sync(&id, k, false).await;
                if answer["results"][0]["needsUpload"] == json!(["original"]) {
                    let bytes = content(k);
                    let half = bytes.len() / 2;
                    let chunks = vec![Ok::<_, std::io::Error>(bytes::Bytes::copy_from_slice(
                        &bytes[..half],
                    ))];
                    let stalled = futures::stream::iter(chunks).chain(futures::stream::pending());
                    let request = self.request(&id, k, reqwest::Body::wrap_stream(stalled));
                    let task = tokio::spawn(async move { request.send().await });
                    tokio::time::sleep(Duration::from_millis(self.rng.random_range(1..30))).await;
                    task.abort();
                    // What the server does with the dropped connection settles before the next step.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
            Step::Restart => {
                let app = self.app.take().unwrap();
                self.app = Some(app.restart().await);
            }
        }
    }

    /// `(key, sha256)` of every stored object a live or retained row names.
    async fn referenced(&self) -> BTreeSet<(String, String)> {
        let rows = self
            .raw
            .strings(
                "SELECT stored_key || ' ' || stored_sha256 FROM icloud.resources \
                 WHERE state = 'stored' AND stored_key IS NOT NULL \
                 UNION SELECT stored_key || ' ' || stored_sha256 FROM icloud.resource_history \
                 WHERE stored_key IS NOT NULL AND stored_sha256 IS NOT NULL",
            )
            .await;
        rows.iter()
            .map(|r| {
                let (key, sha) = r.split_once(' ').unwrap();
                (key.to_owned(), sha.to_owned())
            })
            .collect()
    }

    async fn assert_referenced_objects_hash_right(&self, context: &str) {
        for (key, sha) in self.referenced().await {
            let key = StorageKey::parse(key).unwrap();
            let actual = self
                .app()
                .store
                .sha256(&key)
                .await
                .unwrap_or_else(|e| panic!("{context}: {key} is referenced and gone: {e}"));
            assert_eq!(
                actual.to_hex(),
                sha,
                "{context}: {key} does not hold what its row records"
            );
        }
    }

    async fn assert_nothing_unreferenced(&self) {
        let referenced: BTreeSet<String> = self.referenced().await.into_iter().map(|(k, _)| k).collect();
        let prefix = LibraryLayout::user_prefix(self.user.id.as_str()).unwrap();
        let stored: Vec<_> = self.app().store.list(Some(&prefix)).try_collect().await.unwrap();
        for object in stored {
            assert!(
                referenced.contains(object.key.as_str()),
                "{} is unreferenced after a collection",
                object.key
            );
        }
    }
}

async fn sequence(backends: Backends, seed: u64) -> usize {
    let app = TestApp::start(backends).await;
    let raw = match app.location() {
        Location::Sqlite { main, icloud } => Raw::sqlite(main, icloud).await,
        Location::Postgres { url } => Raw::postgres(url).await,
    };
    let (user, client) = app.user_with_token(Scope::Client).await;
    let library = app.catalog.ensure_library(&user.id, LIB).await.unwrap().id;
    let mut world = World {
        app: Some(app),
        raw,
        user,
        client,
        library,
        rng: StdRng::seed_from_u64(seed),
        ids: Vec::new(),
        times: Vec::new(),
        ahead: chrono::Duration::zero(),
    };
    for n in 0..STEPS {
        let step = pick(&mut world.rng);
        world.step(step).await;
        world
            .assert_referenced_objects_hash_right(&format!("seed {seed}, step {n} ({step:?})"))
            .await;
        world.times.push(Utc::now());
    }
    STEPS
}

async fn property(backends: Backends) {
    let mut steps = 0;
    for seed in 0..SEQUENCES {
        steps += sequence(backends, 0x1055_0000 + seed).await;
    }
    assert_eq!(steps, SEQUENCES as usize * STEPS);
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_local() {
    property(Backends::SqliteLocal).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_s3() {
    property(Backends::PostgresS3).await;
}
