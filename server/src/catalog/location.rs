//! Where the catalog lives ([`Location`], from a path or a `postgres://` URL) and opening the adapter it
//! names ([`connect`]).

use std::fmt::Debug;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{Catalog, Error, Result, postgres, sqlite};

/// Where the catalog lives.
#[derive(Clone, PartialEq, Eq)]
pub enum Location {
    /// Two SQLite files: `main` (users, tokens, migrations) and `icloud` (the photo catalog, attached).
    Sqlite {
        /// The main database file.
        main: PathBuf,
        /// The file attached as `icloud`.
        icloud: PathBuf,
    },
    /// A PostgreSQL URL (`postgres://…`); the tables go to `public` and schema `icloud`.
    Postgres {
        /// The connection URL; may carry a password, so `Debug` hides it.
        url: String,
    },
}

impl Location {
    /// `postgres://…` / `postgresql://…` → PostgreSQL; `sqlite:PATH`, `sqlite://PATH` or a bare path → SQLite
    /// with the `icloud` file beside it (`catalog.db` → `catalog.icloud.db`).
    pub fn parse(database: &str) -> Result<Location> {
        if database.starts_with("postgres://") || database.starts_with("postgresql://") {
            return Ok(Location::Postgres {
                url: database.to_owned(),
            });
        }
        let path = database
            .strip_prefix("sqlite://")
            .or_else(|| database.strip_prefix("sqlite:"))
            .unwrap_or(database);
        let path = path.split('?').next().unwrap_or(path);
        if path.is_empty() || path == ":memory:" {
            return Err(Error::invalid(
                "database",
                "name a SQLite file or a postgres:// URL (in-memory SQLite cannot attach `icloud`)",
            ));
        }
        let main = PathBuf::from(path);
        let icloud = sibling_icloud_path(&main);
        Ok(Location::Sqlite { main, icloud })
    }

    /// The embedded default under a data directory: `catalog.sqlite3` and `icloud.sqlite3`.
    pub fn sqlite_in(data_dir: &Path) -> Location {
        Location::Sqlite {
            main: data_dir.join("catalog.sqlite3"),
            icloud: data_dir.join("icloud.sqlite3"),
        }
    }
}

impl Debug for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Sqlite { main, icloud } => f
                .debug_struct("Sqlite")
                .field("main", main)
                .field("icloud", icloud)
                .finish(),
            Location::Postgres { url } => {
                let shown = url::Url::parse(url).map_or_else(
                    |_| "<unparsable url>".to_owned(),
                    |mut u| {
                        if u.password().is_some() {
                            let _ = u.set_password(Some("***"));
                        }
                        u.to_string()
                    },
                );
                f.debug_struct("Postgres").field("url", &shown).finish()
            }
        }
    }
}

/// How to connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectOptions {
    /// Pool size. SQLite serialises writers anyway; PostgreSQL benefits from a few per core.
    pub max_connections: u32,
    /// Run the embedded migrations before returning (the server does; `migrate --check` style tools may not).
    pub migrate: bool,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self {
            max_connections: 8,
            migrate: true,
        }
    }
}

/// Opens the catalog at `location` with the adapter it names, migrating first when `options.migrate`.
pub async fn connect(location: &Location, options: &ConnectOptions) -> Result<Arc<dyn Catalog>> {
    let catalog: Arc<dyn Catalog> = match location {
        Location::Sqlite { main, icloud } => {
            Arc::new(sqlite::SqliteCatalog::open(main, icloud, options).await?)
        }
        Location::Postgres { url } => Arc::new(postgres::PostgresCatalog::open(url, options).await?),
    };
    if options.migrate {
        catalog.migrate().await?;
    }
    Ok(catalog)
}

fn sibling_icloud_path(main: &Path) -> PathBuf {
    let stem = main.file_stem().map(|s| s.to_string_lossy().into_owned());
    let name = match (stem, main.extension()) {
        (Some(stem), Some(ext)) => format!("{stem}.icloud.{}", ext.to_string_lossy()),
        (Some(stem), None) => format!("{stem}.icloud"),
        (None, _) => "icloud.sqlite3".to_owned(),
    };
    main.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn location_picks_the_adapter() {
        assert!(matches!(
            Location::parse("postgres://u:p@h/db").unwrap(),
            Location::Postgres { .. }
        ));
        assert_eq!(
            Location::parse("sqlite:/d/catalog.db").unwrap(),
            Location::Sqlite {
                main: "/d/catalog.db".into(),
                icloud: "/d/catalog.icloud.db".into()
            }
        );
        assert_eq!(
            Location::parse("/d/cat").unwrap(),
            Location::Sqlite {
                main: "/d/cat".into(),
                icloud: "/d/cat.icloud".into()
            }
        );
        assert!(Location::parse("sqlite::memory:").is_err());
    }

    #[test]
    fn location_debug_hides_the_password() {
        let shown = format!("{:?}", Location::parse("postgres://me:secret@db:5432/x").unwrap());
        assert!(!shown.contains("secret"), "{shown}");
        assert!(shown.contains("db:5432"), "{shown}");
    }
}
