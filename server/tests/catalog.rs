//! The catalog contract run against both adapters: SQLite (two files in a temp dir) and PostgreSQL (a fresh
//! database on the harness's private cluster, or `TEST_DATABASE_URL`). One `#[tokio::test]` per behaviour
//! per adapter; the behaviours live in `common/catalog.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/catalog.rs"]
mod contract;

use std::sync::Arc;

use contract::{Raw, Subject};
use server::catalog::{self, ConnectOptions, Location};

async fn sqlite() -> Subject {
    let dir = tempfile::tempdir().unwrap();
    let location = Location::Sqlite {
        main: dir.path().join("catalog.sqlite3"),
        icloud: dir.path().join("icloud.sqlite3"),
    };
    let catalog = catalog::connect(&location, &ConnectOptions::default())
        .await
        .unwrap();
    let raw = Raw::sqlite(
        &dir.path().join("catalog.sqlite3"),
        &dir.path().join("icloud.sqlite3"),
    )
    .await;
    Subject {
        catalog,
        raw,
        _dir: Some(dir),
    }
}

async fn postgres() -> Subject {
    let url = tokio::task::spawn_blocking(|| harness::Postgres::shared().fresh_database().unwrap())
        .await
        .unwrap();
    let location = Location::parse(&url).unwrap();
    let options = ConnectOptions {
        max_connections: 4,
        migrate: true,
    };
    let catalog: Arc<dyn catalog::Catalog> = catalog::connect(&location, &options).await.unwrap();
    Subject {
        catalog,
        raw: Raw::postgres(&url).await,
        _dir: None,
    }
}

macro_rules! contract {
    ($($behaviour:ident),* $(,)?) => {
        mod sqlite_adapter {
            $( #[tokio::test(flavor = "multi_thread")]
               async fn $behaviour() { crate::contract::$behaviour(&crate::sqlite().await).await } )*
        }
        mod postgres_adapter {
            $( #[tokio::test(flavor = "multi_thread")]
               async fn $behaviour() { crate::contract::$behaviour(&crate::postgres().await).await } )*
        }
    };
}

contract!(
    migrations_are_idempotent_and_ping_works,
    users_have_unique_valid_names,
    tokens_authenticate_until_revoked,
    tokens_are_stored_only_as_digests,
    libraries_are_per_user_and_idempotent,
    sync_creates_then_resync_is_unchanged,
    changed_field_updates_and_bumps_version,
    bad_items_are_rejected_and_the_rest_applies,
    deleted_items_are_soft_deleted_and_restorable,
    stored_metadata_round_trips,
    dedup_links_by_sha256_across_identities,
    upload_links_other_pending_resources_with_the_same_digest,
    unavailable_resources_are_not_pending,
    pending_paging_walks_each_resource_once,
    record_upload_shrinks_pending_and_failures_are_listed,
    changed_content_is_needed_again,
    upload_lookup_answers_before_the_body,
    albums_replace_keeps_order_and_is_atomic,
    stats_count_resources_and_bytes,
    users_are_isolated,
    database_error_mid_batch_applies_nothing,
    concurrent_batches_of_one_user_all_apply,
    undeclared_resources_are_removed,
    history_records_every_change_of_a_photo,
    changes_follow_versions_with_deletes,
    restore_brings_a_photo_back_as_of_a_time,
    restore_brings_back_albums_and_libraries,
    purge_keeps_tombstones_and_history_for_the_retention,
    new_photos_write_no_history_and_restore_to_each_state,
    a_photo_created_after_the_time_restored_to_becomes_a_tombstone,
    a_resource_added_later_goes_when_restored_to_before,
    purge_keeps_what_a_restore_to_the_oldest_kept_time_needs,
    gc_references_cover_resources_tombstones_and_derivatives,
    gc_release_deletes_only_unreferenced_blob_rows,
    gc_dedup_link_to_a_released_blob_is_refused,
    gc_release_racing_dedup_links_never_frees_a_linked_key,
    gc_lease_is_held_by_one_holder_at_a_time,
    sources_merge_by_cloud_guid_then_fingerprint,
    sources_never_merge_across_users,
    sources_pending_lists_each_resource_for_one_library,
    sources_delete_moves_the_home_and_the_last_delete_tombstones,
    sources_albums_with_one_guid_list_once,
    sources_concurrent_batches_of_two_macs_create_one_photo_each,
    sessions_authenticate_until_revoked_or_expired,
    set_password_revokes_the_users_sessions_only,
    web_keys_are_made_once_and_shared,
    login_failures_count_per_key_within_the_window,
    timeline_neighbours_follow_the_list_order,
);
