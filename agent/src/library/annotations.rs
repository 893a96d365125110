//! What people added to assets besides the pixels: keywords and named people (faces). Captions and titles are
//! plain columns and are read with the asset row itself.
//!
//! Both come through join tables whose names embed Core Data entity numbers that change between releases;
//! [`Schema`](super::schema::Schema) resolved them, and each returns an empty map when this database lacks them.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use rusqlite::Connection;

use super::error::Result;
use super::open::query_error;
use super::schema::Schema;
use super::value;

/// Keywords by `ZADDITIONALASSETATTRIBUTES.Z_PK`, sorted and de-duplicated.
pub(crate) fn keywords(
    connection: &Connection,
    schema: &Schema,
    path: &Path,
) -> Result<HashMap<i64, BTreeSet<String>>> {
    let Some(join) = &schema.keyword_join else {
        return Ok(HashMap::new());
    };
    if !schema.has("ZKEYWORD", "ZTITLE") {
        return Ok(HashMap::new());
    }
    let sql = format!(
        "SELECT j.{attributes} AS owner, k.ZTITLE AS name FROM {table} j JOIN ZKEYWORD k ON k.Z_PK = j.{keyword}",
        attributes = join.attributes_column,
        table = join.table,
        keyword = join.keyword_column,
    );
    named_by_owner(connection, path, &sql)
}

/// Names of the people recognised in each asset, by asset `Z_PK`: full name, else display name; unnamed people
/// and faces without a person are left out.
pub(crate) fn people(
    connection: &Connection,
    schema: &Schema,
    path: &Path,
) -> Result<HashMap<i64, BTreeSet<String>>> {
    let Some(faces) = schema.faces else {
        return Ok(HashMap::new());
    };
    let full = schema.column("ZPERSON", "p", "ZFULLNAME");
    let display = schema.column("ZPERSON", "p", "ZDISPLAYNAME");
    let sql = format!(
        "SELECT f.{asset} AS owner, COALESCE(NULLIF(TRIM({full}), ''), NULLIF(TRIM({display}), '')) AS name \
         FROM ZDETECTEDFACE f JOIN ZPERSON p ON p.Z_PK = f.{person} \
         WHERE f.{asset} IS NOT NULL AND f.{person} IS NOT NULL",
        asset = faces.asset,
        person = faces.person,
    );
    named_by_owner(connection, path, &sql)
}

/// Runs a query of `(owner, name)` rows into a map, skipping NULL or empty names. Names are put in NFC first, so
/// one keyword stored both decomposed and composed is one keyword.
fn named_by_owner(connection: &Connection, path: &Path, sql: &str) -> Result<HashMap<i64, BTreeSet<String>>> {
    let read = || -> rusqlite::Result<HashMap<i64, BTreeSet<String>>> {
        let mut statement = connection.prepare(sql)?;
        let mut rows = statement.query([])?;
        let mut map: HashMap<i64, BTreeSet<String>> = HashMap::new();
        while let Some(row) = rows.next()? {
            let owner = value::int(row, 0)?;
            let name = value::text(row, 1)?;
            if let (Some(owner), Some(name)) = (owner, name.filter(|n| !n.trim().is_empty())) {
                map.entry(owner).or_default().insert(value::nfc(&name));
            }
        }
        Ok(map)
    };
    read().map_err(|e| query_error(path, e))
}
