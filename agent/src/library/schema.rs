//! What this particular `Photos.sqlite` looks like: its model version (for logs) and, more importantly, which
//! tables and columns exist and which Core Data entity numbers name the join tables.
//!
//! Apple renames and renumbers between releases (`ZGENERICASSET` → `ZASSET`, `Z_26ASSETS` → `Z_33ASSETS`,
//! `ZHASADJUSTMENTS` → `ZADJUSTMENTSSTATE`), so every query is built from what this module found, never from the
//! version number. Identifiers spliced into SQL come only from `Z_PRIMARYKEY` integers or from our own constant
//! column names after `PRAGMA table_info` confirmed them, so no text from the database reaches SQL unchecked.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use rusqlite::{Connection, OptionalExtension as _};

use super::error::{Error, Result};
use super::open::query_error;

/// Which Photos release wrote the database, derived from `PLModelVersion`. For logs only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PhotosVersion {
    /// `PLModelVersion` from `Z_METADATA`, when readable.
    pub model: Option<i64>,
    /// Human label, e.g. `Photos 5 (macOS 10.15)`.
    pub label: &'static str,
    /// False when the model version is outside every range we know; the reader then assumes the newest schema.
    pub known: bool,
}

impl PhotosVersion {
    /// Maps a model version to its Photos release (ranges from the osxphotos research in `photos-sqlite.md`).
    pub fn from_model(model: Option<i64>) -> Self {
        let label = match model {
            Some(13000..=13999) => Some("Photos 5 (macOS 10.15)"),
            Some(14000..=14999) => Some("Photos 6 (macOS 11)"),
            Some(15000..=15999) => Some("Photos 7 (macOS 12)"),
            Some(16000..=16999) => Some("Photos 8 (macOS 13)"),
            Some(17000..=17599) => Some("Photos 9 (macOS 14.0-14.5)"),
            Some(17600..=17999) => Some("Photos 9.6 (macOS 14.6)"),
            Some(18000..=18200) => Some("Photos 9.9 (macOS 15 beta)"),
            Some(18201..=18999) => Some("Photos 10 (macOS 15)"),
            Some(19063..=19319) => Some("Photos 11 (macOS 26.0)"),
            Some(19320..=19999) => Some("Photos 11.1 (macOS 26.1)"),
            _ => None,
        };
        match label {
            Some(label) => PhotosVersion {
                model,
                label,
                known: true,
            },
            None => PhotosVersion {
                model,
                label: "unknown Photos version (read as the newest)",
                known: false,
            },
        }
    }
}

impl std::fmt::Display for PhotosVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.model {
            Some(model) => write!(f, "{} [model {model}]", self.label),
            None => write!(f, "{} [no model version]", self.label),
        }
    }
}

/// The album ↔ asset join table, `Z_{A}ASSETS(Z_{A}ALBUMS, Z_{X}ASSETS, Z_FOK_{X}ASSETS)`.
#[derive(Debug, Clone)]
pub(crate) struct AlbumJoin {
    pub table: String,
    pub album_column: String,
    pub asset_column: String,
    /// The manual order column; absent in some hand-made databases.
    pub order_column: Option<String>,
}

/// The keyword join table, `Z_1KEYWORDS(Z_1ASSETATTRIBUTES, Z_{K}KEYWORDS)`.
#[derive(Debug, Clone)]
pub(crate) struct KeywordJoin {
    pub table: String,
    pub attributes_column: String,
    pub keyword_column: String,
}

/// How `ZDETECTEDFACE` links an asset and a person (renamed in Photos 9).
#[derive(Debug, Clone, Copy)]
pub(crate) struct FaceColumns {
    pub asset: &'static str,
    pub person: &'static str,
}

/// Everything the queries need to know about this database's shape.
#[derive(Debug, Clone)]
pub(crate) struct Schema {
    pub version: PhotosVersion,
    /// `ZASSET` (Photos 6+) or `ZGENERICASSET` (Photos 5).
    pub asset_table: &'static str,
    /// Columns of every table we read, by table name.
    columns: HashMap<String, HashSet<String>>,
    pub album_join: Option<AlbumJoin>,
    pub keyword_join: Option<KeywordJoin>,
    pub faces: Option<FaceColumns>,
}

const ATTRIBUTES: &str = "ZADDITIONALASSETATTRIBUTES";

impl Schema {
    /// Inspects the database; fails with `NotPhotosLibrary` when the core Photos tables are missing.
    pub(crate) fn discover(connection: &Connection, path: &Path) -> Result<Schema> {
        let not_photos = |reason: String| Error::NotPhotosLibrary {
            path: path.to_path_buf(),
            reason,
        };
        let mut columns = HashMap::new();
        for table in ["Z_PRIMARYKEY", "ZASSET", "ZGENERICASSET", ATTRIBUTES] {
            columns.insert(table.to_owned(), table_columns(connection, path, table)?);
        }
        if columns["Z_PRIMARYKEY"].is_empty() {
            return Err(not_photos("no Z_PRIMARYKEY table (not a Core Data store)".into()));
        }
        let asset_table = if !columns["ZASSET"].is_empty() {
            "ZASSET"
        } else if !columns["ZGENERICASSET"].is_empty() {
            "ZGENERICASSET"
        } else {
            return Err(not_photos("no ZASSET or ZGENERICASSET table".into()));
        };
        if columns[ATTRIBUTES].is_empty() {
            return Err(not_photos(format!("no {ATTRIBUTES} table")));
        }
        for column in ["Z_PK", "ZUUID", "ZDATECREATED"] {
            if !columns[asset_table].contains(column) {
                return Err(not_photos(format!("{asset_table} has no {column} column")));
            }
        }
        for table in [
            "ZINTERNALRESOURCE",
            "ZGENERICALBUM",
            "ZASSETDESCRIPTION",
            "ZKEYWORD",
            "ZPERSON",
            "ZDETECTEDFACE",
        ] {
            columns.insert(table.to_owned(), table_columns(connection, path, table)?);
        }

        let version = PhotosVersion::from_model(model_version(connection, path)?);
        if !version.known {
            tracing::warn!(path = %path.display(), %version, "unknown Photos model version; reading as the newest");
        }

        let asset_entity = entity(
            connection,
            path,
            "Z_NAME IN ('Asset', 'GenericAsset') AND Z_SUPER = 0",
        )?;
        let album_entity = entity(connection, path, "Z_NAME = 'Album'")?;
        let album_join = match (album_entity, asset_entity) {
            (Some(album), Some(asset)) => {
                let table = format!("Z_{album}ASSETS");
                let found = table_columns(connection, path, &table)?;
                let album_column = format!("Z_{album}ALBUMS");
                let asset_column = format!("Z_{asset}ASSETS");
                let order_column = format!("Z_FOK_{asset}ASSETS");
                if found.contains(&album_column) && found.contains(&asset_column) {
                    let order_column = found.contains(&order_column).then_some(order_column);
                    Some(AlbumJoin {
                        table,
                        album_column,
                        asset_column,
                        order_column,
                    })
                } else {
                    tracing::warn!(%table, "album membership table not found; albums will have no members");
                    None
                }
            }
            _ => None,
        };

        let attributes_entity = entity(connection, path, "Z_NAME = 'AdditionalAssetAttributes'")?;
        let keyword_entity = entity(connection, path, "Z_NAME = 'Keyword'")?;
        let keyword_join = match (attributes_entity, keyword_entity) {
            (Some(attributes), Some(keyword)) if !columns["ZKEYWORD"].is_empty() => {
                let table = format!("Z_{attributes}KEYWORDS");
                let found = table_columns(connection, path, &table)?;
                let attributes_column = format!("Z_{attributes}ASSETATTRIBUTES");
                let keyword_column = format!("Z_{keyword}KEYWORDS");
                (found.contains(&attributes_column) && found.contains(&keyword_column)).then_some(
                    KeywordJoin {
                        table,
                        attributes_column,
                        keyword_column,
                    },
                )
            }
            _ => None,
        };

        let face_columns = &columns["ZDETECTEDFACE"];
        let faces = if columns["ZPERSON"].is_empty() {
            None
        } else if face_columns.contains("ZASSETFORFACE") && face_columns.contains("ZPERSONFORFACE") {
            Some(FaceColumns {
                asset: "ZASSETFORFACE",
                person: "ZPERSONFORFACE",
            })
        } else if face_columns.contains("ZASSET") && face_columns.contains("ZPERSON") {
            Some(FaceColumns {
                asset: "ZASSET",
                person: "ZPERSON",
            })
        } else {
            None
        };

        Ok(Schema {
            version,
            asset_table,
            columns,
            album_join,
            keyword_join,
            faces,
        })
    }

    /// Whether `table` exists and has `column`.
    pub(crate) fn has(&self, table: &str, column: &str) -> bool {
        self.columns
            .get(table)
            .is_some_and(|columns| columns.contains(column))
    }

    /// `alias.column` when the column exists, else `NULL`: queries keep their shape across versions.
    pub(crate) fn column(&self, table: &str, alias: &str, column: &str) -> String {
        if self.has(table, column) {
            format!("{alias}.{column}")
        } else {
            "NULL".to_owned()
        }
    }
}

/// Column names of a table; empty when the table does not exist.
fn table_columns(connection: &Connection, path: &Path, table: &str) -> Result<HashSet<String>> {
    let read = || -> rusqlite::Result<HashSet<String>> {
        let mut statement = connection.prepare("SELECT name FROM pragma_table_info(?1)")?;
        let names = statement.query_map([table], |row| row.get::<_, String>(0))?;
        names.collect()
    };
    read().map_err(|source| query_error(path, source))
}

/// The entity number (`Z_ENT`) of the first `Z_PRIMARYKEY` row matching `condition` (a constant SQL predicate).
fn entity(connection: &Connection, path: &Path, condition: &'static str) -> Result<Option<i64>> {
    let sql = format!("SELECT Z_ENT FROM Z_PRIMARYKEY WHERE {condition} ORDER BY Z_ENT LIMIT 1");
    connection
        .query_row(&sql, [], |row| super::value::int(row, 0))
        .optional()
        .map(Option::flatten)
        .map_err(|source| query_error(path, source))
}

/// `PLModelVersion` from the newest `Z_METADATA` plist; `None` (with a warning) when absent or unreadable.
fn model_version(connection: &Connection, path: &Path) -> Result<Option<i64>> {
    let has_metadata = !table_columns(connection, path, "Z_METADATA")?.is_empty();
    if !has_metadata {
        tracing::warn!(path = %path.display(), "no Z_METADATA table; model version unknown");
        return Ok(None);
    }
    let blob: Option<Vec<u8>> = connection
        .query_row(
            "SELECT Z_PLIST FROM Z_METADATA ORDER BY Z_VERSION DESC LIMIT 1",
            [],
            |row| {
                Ok(match row.get_ref(0)? {
                    rusqlite::types::ValueRef::Blob(bytes) | rusqlite::types::ValueRef::Text(bytes) => {
                        Some(bytes.to_vec())
                    }
                    _ => None,
                })
            },
        )
        .optional()
        .map(Option::flatten)
        .map_err(|source| query_error(path, source))?;
    let version = blob.as_deref().and_then(parse_model_version);
    if version.is_none() {
        tracing::warn!(path = %path.display(), "Z_METADATA plist has no readable PLModelVersion");
    }
    Ok(version)
}

/// Reads the integer `PLModelVersion` key from a (binary or XML) property list.
pub(crate) fn parse_model_version(bytes: &[u8]) -> Option<i64> {
    let value = plist::Value::from_reader(std::io::Cursor::new(bytes)).ok()?;
    let model = value.as_dictionary()?.get("PLModelVersion")?;
    model
        .as_signed_integer()
        .or_else(|| model.as_unsigned_integer().and_then(|v| i64::try_from(v).ok()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_map_to_releases() {
        assert_eq!(
            PhotosVersion::from_model(Some(13703)).label,
            "Photos 5 (macOS 10.15)"
        );
        assert_eq!(
            PhotosVersion::from_model(Some(17600)).label,
            "Photos 9.6 (macOS 14.6)"
        );
        assert_eq!(
            PhotosVersion::from_model(Some(18508)).label,
            "Photos 10 (macOS 15)"
        );
        assert_eq!(
            PhotosVersion::from_model(Some(19320)).label,
            "Photos 11.1 (macOS 26.1)"
        );
        assert!(!PhotosVersion::from_model(Some(25000)).known);
        assert!(!PhotosVersion::from_model(None).known);
        assert!(
            PhotosVersion::from_model(Some(99))
                .to_string()
                .contains("model 99")
        );
    }

    #[test]
    fn model_version_from_binary_plist() {
        // The plist stored in fixture_photos11.sql: {"PLModelVersion": 19320}.
        let hex = "62706C6973743030D101025E504C4D6F64656C56657273696F6E114B78080B1A00000000000001010000000000000003\
                   0000000000000000000000000000001D";
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        assert_eq!(parse_model_version(&bytes), Some(19320));
        assert_eq!(parse_model_version(b"not a plist"), None);
    }
}
