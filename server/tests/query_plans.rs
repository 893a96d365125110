//! The sync path's lookups use indexes on SQLite, where the planner has no statistics to go by: a scan here
//! makes every sync batch slower as the library grows.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use server::catalog::{self, ConnectOptions, Location};
use sqlx::{Connection as _, Row as _};

async fn plan(conn: &mut sqlx::SqliteConnection, sql: &str) -> String {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {sql}")))
        .fetch_all(conn)
        .await
        .unwrap();
    rows.iter()
        .map(|r| r.get::<String, _>("detail"))
        .collect::<Vec<_>>()
        .join("; ")
}

#[tokio::test]
async fn sync_lookups_search_an_index() {
    let dir = tempfile::tempdir().unwrap();
    let location = Location::sqlite_in(dir.path());
    catalog::connect(&location, &ConnectOptions::default())
        .await
        .unwrap();
    let Location::Sqlite { main, icloud } = &location else {
        unreachable!()
    };
    // One connection: ATTACH is per connection.
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite:{}", main.display()))
        .await
        .unwrap();
    sqlx::query("ATTACH DATABASE $1 AS icloud")
        .bind(icloud.display().to_string())
        .execute(&mut conn)
        .await
        .unwrap();
    for (sql, index) in [
        (
            "SELECT photo_id FROM icloud.resources WHERE user_id = 'u' AND photo_id IN ('a', 'b')",
            "resources_by_user_photo",
        ),
        (
            "SELECT id FROM icloud.photos WHERE library_id = 'l' AND user_id = 'u' AND local_identifier IN ('a', 'b')",
            "INDEX",
        ),
        (
            "SELECT sha256 FROM icloud.blobs WHERE user_id = 'u' AND sha256 IN ('a', 'b')",
            "INDEX",
        ),
    ] {
        let plan = plan(&mut conn, sql).await;
        assert!(plan.contains(index), "{sql}\n  plan: {plan}");
        assert!(!plan.contains("SCAN"), "{sql}\n  plan: {plan}");
    }
}
