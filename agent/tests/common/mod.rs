//! Helpers shared by the reader tests: fixture paths and raw queries that check the reader independently.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod sync;

use std::path::{Path, PathBuf};

use sqlx::Connection as _;
use sqlx::Row;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqlitePool};

/// The five real Photos databases, by fixture name.
pub const VERSIONS: [&str; 5] = [
    "Test-10.15.7",
    "Test-12.0.1",
    "Test-14.6.0",
    "Test-15.4.1",
    "Test-26.1",
];

/// `shared/` sits beside the repository checkout.
pub fn shared() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared")
}

/// A fixture's `Photos.sqlite`.
pub fn fixture(version: &str) -> PathBuf {
    shared()
        .join("fixtures/photos-libraries")
        .join(version)
        .join("Photos.sqlite")
}

/// A raw, independent connection to a fixture (immutable: the fixtures are read-only files).
pub async fn raw(path: &std::path::Path) -> SqlitePool {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .read_only(true)
        .immutable(true);
    SqlitePool::connect_with(options).await.unwrap()
}

/// Runs a query returning one text column.
pub async fn strings(pool: &SqlitePool, sql: &str) -> Vec<String> {
    sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_all(pool)
        .await
        .unwrap()
        .iter()
        .map(|row| row.try_get_unchecked::<String, _>(0).unwrap())
        .collect()
}

/// Runs a query returning one integer.
pub async fn integer(pool: &SqlitePool, sql: &str) -> i64 {
    sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_one(pool)
        .await
        .unwrap()
        .try_get_unchecked(0)
        .unwrap()
}

/// Whether a table exists.
pub async fn table_exists(pool: &SqlitePool, table: &str) -> bool {
    integer(
        pool,
        &format!("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = '{table}'"),
    )
    .await
        > 0
}

/// Builds `Photos.sqlite` in `dir` from `reference/fixture_photos11.sql`; answers its path.
pub async fn build_photos11(dir: &Path) -> PathBuf {
    let sql = std::fs::read_to_string(shared().join("reference/fixture_photos11.sql")).unwrap();
    let path = dir.join("Photos.sqlite");
    let options = SqliteConnectOptions::new()
        .filename(&path)
        .create_if_missing(true);
    let mut connection = SqliteConnection::connect_with(&options).await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(&mut connection)
        .await
        .unwrap();
    connection.close().await.unwrap();
    path
}
