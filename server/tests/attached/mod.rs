//! The catalog's two SQLite files opened as the catalog opens them, `icloud.sqlite3` attached as `icloud`:
//! for tests that write rows an older schema had, behind the port, before the server migrates them.

use std::path::Path;

use futures::FutureExt as _;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};

/// A one-connection pool on `main` with `icloud` attached (both made if missing).
pub async fn sqlite_pool(main: &Path, icloud: &Path) -> sqlx::SqlitePool {
    let icloud = icloud.to_string_lossy().into_owned();
    SqlitePoolOptions::new()
        .max_connections(1)
        .after_connect(move |conn, _| {
            let icloud = icloud.clone();
            async move {
                sqlx::query("ATTACH DATABASE $1 AS icloud")
                    .bind(icloud)
                    .execute(&mut *conn)
                    .await?;
                Ok(())
            }
            .boxed()
        })
        .connect_with(
            SqliteConnectOptions::new()
                .filename(main)
                .create_if_missing(true)
                .busy_timeout(std::time::Duration::from_secs(10)),
        )
        .await
        .unwrap()
}
