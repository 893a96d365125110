//! End to end: what changes in a library reaches the server on the next pass, and nothing else does. Each pass
//! runs against the real `iphoto-server` binary with a synthesized Photos library (`common::sync`); every kind
//! of change a user makes is covered, because an unchanged pass skips the per-asset state when the library's
//! digest is the one the server holds, and a missed change would go unnoticed for good.

// Helpers outside #[test] fns are not covered by allow-unwrap-in-tests (rust-clippy #13981).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use api::ResourceType;
use iphoto_agent::state::StateDb;
use iphoto_agent::sync::{NoProgress, Phase, Progress, run_pass};

use common::sync::{Library, TestServer, assert_stored_once, content, pass, sha256};

#[tokio::test]
async fn passes_upload_once_then_send_only_what_changed() {
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::start(data.path()).await;
    let library = Library::new(64 * 1024).await;

    // First pass: every item, every available resource.
    let first = pass(&server, &library).await;
    assert_eq!(
        (first.assets, first.items_sent, first.created),
        (6, 6, 6),
        "{first:?}"
    );
    assert_eq!(first.uploaded, 7, "{first:?}");
    assert_eq!((first.icloud_only, first.unavailable), (1, 1), "{first:?}");
    assert_eq!(first.files_hashed, 7);
    assert_stored_once(&server, &library, 0);
    let stats = server.stats().await;
    assert_eq!(
        (stats.totals.photos, stats.totals.uploaded, stats.totals.pending),
        (6, 7, 0),
        "{stats:?}"
    );
    assert_eq!(
        stats.totals.unavailable, 1,
        "the iCloud-only original is reported unavailable"
    );
    let state = StateDb::open(&library.state_dir()).await.unwrap();
    let figures = state.figures().await.unwrap();
    assert_eq!(figures.bytes_uploaded, first.bytes_uploaded);
    assert!(figures.upload_rate > 0.0 && figures.eta == Some(0), "{figures:?}");

    // Second pass: nothing changed, nothing sent, nothing hashed again; the catalog version does not move.
    let second = pass(&server, &library).await;
    assert_eq!(
        (
            second.items_sent,
            second.batches,
            second.albums_sent,
            second.uploaded,
            second.files_hashed
        ),
        (0, 0, 0, 0, 0),
        "{second:?}"
    );
    assert_eq!(server.stats().await.version, stats.version);
    // A cold start keeps the figures.
    assert_eq!(
        state.figures().await.unwrap().bytes_uploaded,
        first.bytes_uploaded
    );

    // A favourite toggled in Photos: exactly one update.
    library
        .execute("UPDATE ZASSET SET ZFAVORITE = 1 - ZFAVORITE WHERE ZUUID = 'C3D4E5F6-0003-4000-8000-000000000003'")
        .await;
    let toggled = pass(&server, &library).await;
    assert_eq!(
        (toggled.items_sent, toggled.updated, toggled.uploaded),
        (1, 1, 0),
        "{toggled:?}"
    );

    // An asset deleted from the library: soft-deleted on the server.
    library
        .execute("DELETE FROM ZASSET WHERE ZUUID = 'C3D4E5F6-0003-4000-8000-000000000003'")
        .await;
    let deleted = pass(&server, &library).await;
    assert_eq!(
        (deleted.assets, deleted.items_sent, deleted.deleted_sent),
        (5, 1, 1),
        "{deleted:?}"
    );
    assert_eq!(server.stats().await.totals.photos, 5);
    let again = pass(&server, &library).await;
    assert_eq!(again.items_sent, 0, "a deletion is sent once: {again:?}");

    // The iCloud-only original appears on disk: sent once, then uploaded.
    let bytes = content("downloaded from iCloud", 10_000);
    std::fs::create_dir_all(library.icloud_path.parent().unwrap()).unwrap();
    std::fs::write(&library.icloud_path, &bytes).unwrap();
    let downloaded = pass(&server, &library).await;
    assert_eq!(
        (downloaded.items_sent, downloaded.uploaded, downloaded.icloud_only),
        (1, 1, 0),
        "{downloaded:?}"
    );
    assert_eq!(server.stored().get(&sha256(&bytes)), Some(&1));
}

/// Writes `bytes` at `path` with an mtime later than anything the pass saw, whatever the clock's resolution.
fn rewrite(path: &std::path::Path, bytes: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
    let later = std::time::SystemTime::now() + Duration::from_secs(10);
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(later)
        .unwrap();
}

#[tokio::test]
async fn album_edits_photo_edits_and_files_changed_on_disk_are_seen() {
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::start(data.path()).await;
    let library = Library::new(16 * 1024).await;
    let first = pass(&server, &library).await;
    assert_eq!((first.items_sent, first.uploaded), (6, 7), "{first:?}");
    let unchanged = pass(&server, &library).await;
    assert_eq!(
        (unchanged.items_sent, unchanged.albums_sent),
        (0, 0),
        "{unchanged:?}"
    );

    // Album edits: a rename, then a new member. The albums (a folder and its album) are sent, no item is.
    library
        .execute("UPDATE ZGENERICALBUM SET ZTITLE = 'Summer 2024 (best)' WHERE Z_PK = 3")
        .await;
    let renamed = pass(&server, &library).await;
    assert_eq!((renamed.items_sent, renamed.albums_sent), (0, 2), "{renamed:?}");
    library
        .execute("INSERT INTO Z_33ASSETS (Z_33ALBUMS, Z_3ASSETS, Z_FOK_3ASSETS) VALUES (3, 2, 3072)")
        .await;
    let grown = pass(&server, &library).await;
    assert_eq!((grown.items_sent, grown.albums_sent), (0, 2), "{grown:?}");

    // A photo edited in Photos: the asset is marked adjusted and its render written. One update, one upload.
    let uuid = "A1B2C3D4-0001-4000-8000-000000000001";
    library
        .execute(
            "UPDATE ZASSET SET ZADJUSTMENTSSTATE = 2, ZADJUSTMENTTIMESTAMP = 744000000.0, \
             ZMODIFICATIONDATE = 744000000.0 WHERE ZUUID = 'A1B2C3D4-0001-4000-8000-000000000001'",
        )
        .await;
    let render = library.resource_path(uuid, ResourceType::Render).await;
    let first_render = content("first render", 20_000);
    rewrite(&render, &first_render);
    let edited = pass(&server, &library).await;
    assert_eq!(
        (
            edited.items_sent,
            edited.updated,
            edited.files_hashed,
            edited.uploaded
        ),
        (1, 1, 1, 1),
        "{edited:?}"
    );
    assert_eq!(server.stored().get(&sha256(&first_render)), Some(&1));

    // Edited again, and only the render file tells: new bytes, new mtime, the database untouched.
    let second_render = content("second render", 20_000);
    rewrite(&render, &second_render);
    let re_edited = pass(&server, &library).await;
    assert_eq!(
        (re_edited.items_sent, re_edited.files_hashed, re_edited.uploaded),
        (1, 1, 1),
        "{re_edited:?}"
    );
    assert_eq!(server.stored().get(&sha256(&second_render)), Some(&1));

    // A file gone from disk without the database knowing (an "Optimize Storage" eviction): the item changes.
    let live = library
        .bundle
        .join("originals/D/D4E5F6A7-0004-4000-8000-000000000004_3.mov");
    std::fs::remove_file(&live).unwrap();
    let evicted = pass(&server, &library).await;
    assert_eq!(
        (evicted.items_sent, evicted.unavailable, evicted.uploaded),
        (1, 2, 0),
        "{evicted:?}"
    );

    let settled = pass(&server, &library).await;
    assert_eq!(
        (
            settled.items_sent,
            settled.albums_sent,
            settled.files_hashed,
            settled.uploaded
        ),
        (0, 0, 0, 0),
        "{settled:?}"
    );
}

/// The agent dying right after the server accepted (and the state DB recorded) the first metadata batch: the
/// pass goes no further, exactly there, as with a crash.
struct DieAfterFirstBatch;

impl Progress for DieAfterFirstBatch {
    fn advance(&self, phase: Phase, _n: u64) {
        if phase == Phase::Metadata {
            panic!("the agent dies after the first batch");
        }
    }
}

/// A pass stopped after some batches leaves the server with changes the last stored library digest does not
/// describe. Were that digest kept, undoing the changes in Photos would make the library match it again and the
/// next pass would send nothing, leaving the server with the undone state.
#[tokio::test]
async fn a_pass_stopped_between_batches_is_not_taken_for_an_unchanged_library() {
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::start(data.path()).await;
    let library = Library::new(8 * 1024).await;
    pass(&server, &library).await;

    let toggle = "UPDATE ZASSET SET ZFAVORITE = 1 - ZFAVORITE WHERE Z_PK IN (1, 3)";
    execute_many(&library, toggle, 2).await;
    let mut options = library.options();
    options.batch = 1;
    let client = server.client();
    let stopped = tokio::spawn(async move { run_pass(&client, &options, &DieAfterFirstBatch).await });
    assert!(stopped.await.unwrap_err().is_panic());
    let state = StateDb::open(&library.state_dir()).await.unwrap();
    assert_eq!(state.failures().await.unwrap(), []);

    // Undone in Photos: the library is again what the server held before the stopped pass.
    execute_many(&library, toggle, 2).await;
    let undone = run_pass(&server.client(), &library.options(), &NoProgress)
        .await
        .unwrap();
    assert!(
        undone.items_sent >= 1 && undone.updated >= 1,
        "the item whose change the server accepted is sent back: {undone:?}"
    );
    let settled = pass(&server, &library).await;
    assert_eq!(settled.items_sent, 0, "{settled:?}");
}

/// Runs an update expected to change `rows` rows.
async fn execute_many(library: &Library, sql: &str, rows: u64) {
    use sqlx::Connection as _;
    let options =
        sqlx::sqlite::SqliteConnectOptions::new().filename(library.bundle.join("database/Photos.sqlite"));
    let mut connection = sqlx::sqlite::SqliteConnection::connect_with(&options)
        .await
        .unwrap();
    let done = sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(&mut connection)
        .await
        .unwrap();
    assert_eq!(done.rows_affected(), rows, "{sql}");
    connection.close().await.unwrap();
}
