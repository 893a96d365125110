//! The thumbnail worker end to end against the real `iphoto-server` binary: originals uploaded by the client
//! surface, the worker leasing over HTTP, downloading through the presigned URL, writing the derivative to
//! the store and posting the result; against {SQLite, PostgreSQL} × {local directory, SeaweedFS}.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{assert_thumbnail, corrupt, heic, item, jpeg, photo, png, serve, upload};
use harness::{Postgres, S3Server, unique_name};
use worker::{Outcome, WorkerSettings, run_once};

/// One `#[tokio::test]` per backend pair for `thumbnails_for_jpeg_png_and_heic_and_a_reason_for_corrupt`.
macro_rules! matrix {
    ($($name:ident: $catalog:expr, $store:expr;)*) => {
        $(
            #[tokio::test(flavor = "multi_thread")]
            async fn $name() {
                thumbnails_for_jpeg_png_and_heic_and_a_reason_for_corrupt($catalog, $store).await
            }
        )*
    };
}

matrix! {
    sqlite_local: Catalog::Sqlite, Store::Local;
    sqlite_s3: Catalog::Sqlite, Store::S3;
    postgres_local: Catalog::Postgres, Store::Local;
    postgres_s3: Catalog::Postgres, Store::S3;
}

#[derive(Debug, Clone, Copy)]
enum Catalog {
    Sqlite,
    Postgres,
}

#[derive(Debug, Clone, Copy)]
enum Store {
    Local,
    S3,
}

/// A server on `data` over these backends, and the worker's own handle on the server's store.
async fn start(
    data: &std::path::Path,
    catalog: Catalog,
    store: Store,
) -> (harness::ServerProcess, storage::Store) {
    let mut envs: Vec<(&str, String)> = Vec::new();
    if let Catalog::Postgres = catalog {
        let url = tokio::task::spawn_blocking(|| Postgres::shared().fresh_database().unwrap())
            .await
            .unwrap();
        envs.push(("IPHOTO_DATABASE_URL", url));
    }
    let prefix = unique_name("worker");
    if let Store::S3 = store {
        let s3 = S3Server::shared();
        envs.extend([
            ("IPHOTO_STORAGE_BACKEND", "s3".to_owned()),
            ("IPHOTO_S3_ENDPOINT", s3.endpoint.clone()),
            ("IPHOTO_S3_REGION", s3.region.clone()),
            ("IPHOTO_S3_BUCKET", s3.bucket.clone()),
            ("IPHOTO_S3_ACCESS_KEY_ID", s3.access_key_id.clone()),
            ("IPHOTO_S3_SECRET_ACCESS_KEY", s3.secret_access_key.clone()),
            ("IPHOTO_S3_PREFIX", prefix.clone()),
            ("IPHOTO_S3_PATH_STYLE", "true".to_owned()),
        ]);
    }
    let envs: Vec<(&str, &str)> = envs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let server = serve(data, &envs).await;
    // The worker's configuration of the same store, as `iphoto-worker thumbnail` would build it.
    let worker_store = match store {
        Store::Local => storage::create_object_store(&storage::StorageConfig {
            backend: storage::BackendConfig::Local(storage::LocalConfig {
                root: data.join("blobs"),
                presign_secret: storage::Secret::new("the-worker-never-signs-0123456789ab".into()),
                public_url: server.url().parse().unwrap(),
            }),
            presign: Default::default(),
        })
        .unwrap(),
        Store::S3 => {
            let s3 = S3Server::shared();
            storage::create_s3_store(
                &storage::S3Config {
                    endpoint: Some(s3.endpoint.parse().unwrap()),
                    region: s3.region.clone(),
                    bucket: s3.bucket.clone(),
                    access_key_id: s3.access_key_id.clone(),
                    secret_access_key: storage::Secret::new(s3.secret_access_key.clone()),
                    prefix: Some(storage::StorageKey::parse(prefix).unwrap()),
                    path_style: true,
                },
                Default::default(),
            )
            .unwrap()
        }
    };
    (server, worker_store)
}

async fn thumbnails_for_jpeg_png_and_heic_and_a_reason_for_corrupt(catalog: Catalog, store: Store) {
    let dir = tempfile::tempdir().unwrap();
    let (server, store) = start(&dir.path().join("data"), catalog, store).await;
    let base = server.url();
    let (client, web) = (server.token("client").unwrap(), server.token("web").unwrap());
    let worker_token = server.token("worker").unwrap();
    let originals = vec![
        ("AAAA0001", "public.jpeg", "IMG_0001.JPG", jpeg(1600, 1200)),
        ("AAAA0002", "public.png", "IMG_0002.PNG", png(700, 1400)),
        ("AAAA0003", "public.jpeg", "IMG_0003.JPG", corrupt()),
        ("AAAA0004", "public.heic", "IMG_0004.HEIC", heic(1024, 640)),
    ];
    let http = reqwest::Client::new();
    for (uuid, uti, name, bytes) in &originals {
        upload(&http, &base, &client, &item(uuid, uti, name, bytes), bytes).await;
    }

    let settings = WorkerSettings::new(base.parse().unwrap(), worker_token);
    let worked = run_once(settings.clone(), store.clone(), 10).await.unwrap();
    assert_eq!(worked.len(), originals.len(), "{worked:#?}");
    for w in &worked {
        let photo = photo(&base, &web, &w.job.photo_id).await;
        assert_eq!(photo.0, 200, "{}", photo.1);
        match &w.outcome {
            Outcome::Done(result) => {
                assert_eq!(w.answer.state, "done", "{w:?}");
                assert_eq!(Some(&result.key), w.job.derivative_key.as_ref());
                assert_eq!(result.content_type, "image/jpeg");
                let stored = store
                    .get_bytes(&storage::StorageKey::parse(result.key.as_str()).unwrap())
                    .await
                    .unwrap();
                assert_eq!(stored.len() as u64, result.size);
                assert_eq!(assert_thumbnail(&stored, 512), (result.width, result.height));
                // The enrichment result shows the derivative, and the photo now has a thumbnail URL that
                // serves it.
                let text = photo.1.to_string();
                assert!(text.contains(&result.key), "{text}");
                let url = photo.1["thumbnailUrl"].as_str().expect("thumbnailUrl");
                let fetched = reqwest::get(url).await.unwrap();
                assert_eq!(fetched.status(), 200);
                assert_eq!(fetched.bytes().await.unwrap(), stored);
            }
            Outcome::Failed(failure) => {
                assert_eq!(failure.reason, "corrupt", "{w:?}");
                assert!(!failure.message.is_empty());
                assert!(matches!(w.answer.state.as_str(), "queued" | "parked"), "{w:?}");
                assert_eq!(w.answer.failures, 1);
                assert!(
                    photo.1.get("thumbnailUrl").is_none_or(|u| u.is_null()),
                    "{}",
                    photo.1
                );
            }
        }
    }
    let sizes: Vec<_> = worked
        .iter()
        .filter_map(|w| match &w.outcome {
            Outcome::Done(r) => Some((r.width, r.height)),
            Outcome::Failed(_) => None,
        })
        .collect();
    assert_eq!(sizes.len(), originals.len() - 1);
    assert!(
        sizes.contains(&(512, 384)) && sizes.contains(&(256, 512)),
        "{sizes:?}"
    );
    assert!(sizes.contains(&(512, 320)), "the HEIC's thumbnail: {sizes:?}");

    // A completed job is never leased again.
    let again = run_once(settings, store.clone(), 10).await.unwrap();
    for w in &again {
        assert!(
            !worked
                .iter()
                .any(|d| d.job.id == w.job.id && matches!(d.outcome, Outcome::Done(_))),
            "a done job was leased again: {w:?}"
        );
    }

    // A client token is not a worker token.
    let bad = WorkerSettings::new(base.parse().unwrap(), client);
    let error = run_once(bad, store, 1).await.unwrap_err();
    assert!(format!("{error:#}").contains("403"), "{error:#}");
}
