//! The PostgreSQL adapter: production. Users and API tokens live in `public`, the photo catalog in schema
//! `icloud` (created by the first migration), so the catalog's SQL names `icloud.photos` exactly as on
//! SQLite. Write transactions are plain `BEGIN` (READ COMMITTED): the per-user version row is updated with
//! `RETURNING`, which serialises concurrent writers of one user from that point, and all row writes are
//! upserts, so a race between two batches of one user cannot fail either.

use std::time::Duration;

use sqlx::postgres::{PgPool, PgPoolOptions};

use super::{ConnectOptions, Result};

/// The driver the shared SQL in `catalog/sql/` is compiled for in this module.
type Db = sqlx::Postgres;
/// The adapter the shared SQL implements [`super::Catalog`] for.
type Adapter = PostgresCatalog;

/// How this driver shows a query plan.
const EXPLAIN: &str = "EXPLAIN";
/// What a job lease's inner select adds so concurrent leases skip each other's rows.
const SKIP_LOCKED: &str = "FOR UPDATE SKIP LOCKED";

#[allow(
    clippy::duplicate_mod,
    reason = "compiled once per driver on purpose: see catalog/sql.rs"
)]
#[path = "sql.rs"]
mod sql;

/// The catalog on PostgreSQL.
#[derive(Debug, Clone)]
pub struct PostgresCatalog {
    pool: PgPool,
}

impl PostgresCatalog {
    /// Connects to `url`; does not migrate.
    pub async fn open(url: &str, options: &ConnectOptions) -> Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await?;
        Ok(Self { pool })
    }

    /// Closes the pool; later calls fail with [`super::Error::Unavailable`].
    pub async fn close(&self) {
        self.pool.close().await;
    }

    async fn run_migrations(&self) -> Result<()> {
        sqlx::migrate!("../migrations/postgres").run(&self.pool).await?;
        Ok(())
    }

    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, Db>> {
        Ok(self.pool.begin().await?)
    }
}
