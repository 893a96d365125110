//! The storage contract run against every adapter: the local directory, a real SeaweedFS (SigV4 checked) and
//! the in-memory double, so the double cannot drift from the real ones.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Kind, Subject};
use harness::{S3Server, unique_name};
use storage::{S3Config, Secret, StorageArgs, StorageKey};

fn local() -> Subject {
    let root = tempfile::tempdir().unwrap();
    let args = StorageArgs {
        storage_local_path: Some(root.path().join("blobs")),
        presign_secret: Some(Secret::new("contract-test-secret-0123456789abcdef".into())),
        ..args()
    };
    let store = storage::create_object_store(&args.into_config().unwrap()).unwrap();
    Subject {
        store,
        kind: Kind::Local,
        root: Some(root),
    }
}

fn s3() -> Subject {
    let server = S3Server::shared();
    let store =
        storage::create_s3_store(&s3_config(server, &server.secret_access_key), Default::default()).unwrap();
    Subject {
        store,
        kind: Kind::S3,
        root: None,
    }
}

/// [`common::s3_config`] in a namespace of its own.
fn s3_config(server: &S3Server, secret: &str) -> S3Config {
    common::s3_config(server, secret, &unique_name("contract"))
}

fn memory() -> Subject {
    Subject {
        store: storage::Store::in_memory().unwrap(),
        kind: Kind::Memory,
        root: None,
    }
}

/// Defaults of every flag, as clap would give them.
fn args() -> StorageArgs {
    use clap::Parser;
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        storage: StorageArgs,
    }
    Cli::try_parse_from(["t"]).unwrap().storage
}

macro_rules! contract {
    ($($behaviour:ident),* $(,)?) => {
        mod local_adapter { $( #[tokio::test(flavor = "multi_thread")] async fn $behaviour() { crate::common::$behaviour(&crate::local()).await } )* }
        mod s3_adapter { $( #[tokio::test(flavor = "multi_thread")] async fn $behaviour() { crate::common::$behaviour(&crate::s3()).await } )* }
        mod memory_double { $( #[tokio::test(flavor = "multi_thread")] async fn $behaviour() { crate::common::$behaviour(&crate::memory()).await } )* }
    };
}

contract!(
    round_trip_bytes,
    round_trip_stream,
    byte_ranges,
    parallel_get_is_in_order,
    download_to_file_in_parts,
    missing_is_not_found,
    overwrite_replaces,
    conditional_puts,
    created_streams_never_replace,
    list_pages_by_prefix,
    delete_removes,
    copy_is_server_side,
    digest_mismatch_leaves_nothing,
    failed_or_cancelled_stream_leaves_nothing,
    presigned_urls,
    concurrent_puts,
    invalid_keys_never_reach_the_backend,
    staging_older_than_the_age_is_removed,
    file_attributes_travel_with_the_object,
);

#[tokio::test]
async fn s3_wrong_credentials_name_the_cause() {
    let server = S3Server::shared();
    let store = storage::create_s3_store(&s3_config(server, "not-the-secret"), Default::default()).unwrap();
    for result in [
        store.check().await,
        store
            .put(&StorageKey::parse("x").unwrap(), "x".into(), &Default::default())
            .await
            .map(|_| ()),
    ] {
        match result {
            Err(e @ storage::Error::AccessDenied { .. }) => {
                assert!(e.to_string().contains("IPHOTO_S3_SECRET_ACCESS_KEY"), "{e}");
            }
            other => panic!("expected AccessDenied, got {other:?}"),
        }
    }
    let mut config = s3_config(server, &server.secret_access_key);
    config.access_key_id = "UNKNOWNKEY".into();
    let unknown = storage::create_s3_store(&config, Default::default()).unwrap();
    let listed: Result<Vec<_>, _> = futures::TryStreamExt::try_collect(unknown.list(None)).await;
    assert!(
        matches!(listed, Err(storage::Error::AccessDenied { .. })),
        "{listed:?}"
    );
}

#[tokio::test]
async fn s3_store_down_is_a_backend_error_not_a_hang() {
    let mut server = S3Server::start().unwrap();
    let store =
        storage::create_s3_store(&s3_config(&server, &server.secret_access_key), Default::default()).unwrap();
    store.check().await.unwrap();
    server.stop();
    let started = std::time::Instant::now();
    let result = store.head(&StorageKey::parse("x").unwrap()).await;
    assert!(
        matches!(result, Err(storage::Error::Backend { .. })),
        "{result:?}"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn debug_output_holds_no_secret() {
    let server = S3Server::shared();
    let config = s3_config(server, &server.secret_access_key);
    let store = storage::create_s3_store(&config, Default::default()).unwrap();
    for text in [
        format!("{store:?}"),
        format!("{config:?}"),
        store.describe().to_owned(),
    ] {
        assert!(!text.contains(&server.secret_access_key), "{text}");
    }
    assert!(store.describe().starts_with("s3:testbucket@http://127.0.0.1:"));
}
