//! The synthesized Photos library of the library scenario: the fixture database's on-disk assets cloned with
//! fresh identities, files written where the reader looks for them, and the favourite a user toggles.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context as _, Result, bail};
use sqlx::Connection as _;

/// Fixture assets cloned, each on disk with its files: 1 plain JPEG, 2 edited HEIC (+ render), 3 video,
/// 4 Live Photo (+ `_3.mov`).
const TEMPLATES: [i64; 4] = [1, 2, 3, 4];
/// Clones get Z_PK = BASE + i, so they never collide with the fixture rows (deleted afterwards).
pub(crate) const BASE: i64 = 1000;

/// Flips the favourite flag of the first clone, as a user clicking the heart in Photos.
pub(crate) async fn toggle_favorite(database: &Path) -> Result<()> {
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(database);
    let mut db = sqlx::SqliteConnection::connect_with(&options).await?;
    let done = sqlx::query("UPDATE ZASSET SET ZFAVORITE = 1 - ZFAVORITE WHERE Z_PK = ?")
        .bind(BASE + 1)
        .execute(&mut db)
        .await?;
    db.close().await?;
    if done.rows_affected() != 1 {
        bail!("toggling a favourite changed {} rows", done.rows_affected());
    }
    Ok(())
}

/// The rows the reader reads, dumped as JSON by the sqlite3 shell: assets with their attributes, and resources.
pub(crate) const DUMP_SQL: &str = "SELECT a.*, aa.* FROM ZASSET a LEFT JOIN ZADDITIONALASSETATTRIBUTES aa ON aa.ZASSET = a.Z_PK \
     ORDER BY a.Z_PK; SELECT * FROM ZINTERNALRESOURCE ORDER BY Z_PK;";

/// Builds the bundle: fixture database, on-disk assets cloned `assets` times, files written for the
/// `on_disk_percent` share (others made iCloud-only). Returns the number of files on disk.
pub(crate) async fn build_library(bundle: &Path, assets: u64, on_disk_percent: u64) -> Result<u64> {
    std::fs::create_dir_all(bundle.join("database"))?;
    // `shared/` sits beside the repository checkout, as for the agent's tests.
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/reference/fixture_photos11.sql");
    let sql = std::fs::read_to_string(&fixture).with_context(|| format!("reading {}", fixture.display()))?;
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(bundle.join("database/Photos.sqlite"))
        .create_if_missing(true);
    let mut db = sqlx::SqliteConnection::connect_with(&options).await?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&mut db).await?;

    let mut script = String::from("BEGIN;\n");
    let numbers =
        format!("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {assets})");
    let k = TEMPLATES.len();
    for (slot, template) in TEMPLATES.iter().enumerate() {
        let filter = format!("n.i % {k} = {slot}");
        for (table, link, substitutions) in [
            ("ZASSET", "Z_PK", ASSET_SUBSTITUTIONS),
            ("ZADDITIONALASSETATTRIBUTES", "ZASSET", ATTRIBUTE_SUBSTITUTIONS),
            ("ZINTERNALRESOURCE", "ZASSET", RESOURCE_SUBSTITUTIONS),
        ] {
            let columns = table_columns(&mut db, table).await?;
            let values: Vec<String> = columns
                .iter()
                .map(|c| {
                    substitutions.iter().find(|(name, _)| name == c).map_or_else(
                        || format!("a.{c}"),
                        |(_, expr)| expr.replace("{BASE}", &BASE.to_string()),
                    )
                })
                .collect();
            writeln!(
                script,
                "{numbers} INSERT INTO {table} ({}) SELECT {} FROM n JOIN {table} a ON a.{link} = {template} \
                 WHERE {filter} ORDER BY n.i, a.Z_PK;",
                columns.join(", "),
                values.join(", ")
            )?;
        }
    }
    // The fixture's own rows go; the album join points at the first clones, in order.
    for table in ["ZASSET", "ZADDITIONALASSETATTRIBUTES"] {
        writeln!(script, "DELETE FROM {table} WHERE Z_PK < {BASE};")?;
    }
    writeln!(script, "DELETE FROM ZINTERNALRESOURCE WHERE ZASSET < {BASE};")?;
    writeln!(script, "DELETE FROM Z_33ASSETS;")?;
    writeln!(
        script,
        "INSERT INTO Z_33ASSETS SELECT 3, Z_PK, (Z_PK - {BASE}) * 1024 FROM ZASSET ORDER BY Z_PK LIMIT 500;"
    )?;
    // Past the on-disk share, originals are only in iCloud: not available locally, no file written.
    writeln!(
        script,
        "UPDATE ZINTERNALRESOURCE SET ZLOCALAVAILABILITY = -1, ZREMOTEAVAILABILITY = 1 \
         WHERE (ZASSET - {BASE}) % 100 >= {on_disk_percent};"
    )?;
    writeln!(
        script,
        "UPDATE Z_PRIMARYKEY SET Z_MAX = (SELECT MAX(Z_PK) FROM ZASSET) WHERE Z_NAME = 'Asset';\nCOMMIT;"
    )?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(script))
        .execute(&mut db)
        .await?;
    db.close().await?;

    // Files at the paths the reader resolves, for assets on disk: small, distinct contents.
    let library = iphoto_agent::library::PhotosLibrary::open(bundle).await?;
    let read = library.assets().await?;
    if read.len() as u64 != assets {
        bail!("the reader sees {} assets, expected {assets}", read.len());
    }
    let mut written = 0u64;
    for asset in &read {
        // The clone number is the UUID's first field; the on-disk share was chosen from it above.
        let clone = u64::from_str_radix(asset.uuid.get(..8).unwrap_or_default(), 16)?;
        if clone % 100 >= on_disk_percent {
            continue;
        }
        for file in &asset.files {
            if let Some(dir) = file.path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let mut bytes = format!("{} {:?}\n", asset.uuid, file.resource_type).into_bytes();
            bytes.resize(2048 + (written as usize % 7) * 512, b'.');
            std::fs::write(&file.path, &bytes)?;
            written += 1;
        }
    }
    Ok(written)
}

/// `printf` of a UUID for clone `n.i`.
const UUID: &str = "printf('%08X-BE00-4000-8000-%012X', n.i, n.i)";

const ASSET_SUBSTITUTIONS: &[(&str, &str)] = &[
    ("Z_PK", "{BASE} + n.i"),
    ("ZUUID", UUID),
    ("ZDIRECTORY", "substr(printf('%08X', n.i), 1, 1)"),
    (
        "ZFILENAME",
        "printf('%08X-BE00-4000-8000-%012X', n.i, n.i) || substr(a.ZFILENAME, 37)",
    ),
    ("ZADDITIONALATTRIBUTES", "{BASE} + n.i"),
    ("ZDATECREATED", "a.ZDATECREATED - n.i * 3600"),
    (
        "ZMEDIAGROUPUUID",
        "CASE WHEN a.ZMEDIAGROUPUUID IS NULL THEN NULL ELSE printf('%08X-BE01-4000-8000-%012X', n.i, n.i) END",
    ),
    ("ZFAVORITE", "n.i % 17 = 0"),
    // Every clone is in iCloud, so those without files on disk are iCloud-only (as with "Optimize Mac Storage").
    ("ZCLOUDASSETGUID", "printf('bench-cloud-guid-%010d', n.i)"),
];

const ATTRIBUTE_SUBSTITUTIONS: &[(&str, &str)] = &[
    ("Z_PK", "{BASE} + n.i"),
    ("ZASSET", "{BASE} + n.i"),
    (
        "ZORIGINALFILENAME",
        "printf('IMG_%06d', n.i) || substr(a.ZORIGINALFILENAME, 9)",
    ),
    ("ZORIGINALSTABLEHASH", "printf('Abench%010d', n.i)"),
];

const RESOURCE_SUBSTITUTIONS: &[(&str, &str)] = &[
    ("Z_PK", "NULL"),
    ("ZASSET", "{BASE} + n.i"),
    (
        "ZFINGERPRINT",
        "CASE WHEN a.ZFINGERPRINT IS NULL THEN NULL ELSE printf('Abench%010d', n.i) END",
    ),
];

async fn table_columns(db: &mut sqlx::SqliteConnection, table: &str) -> Result<Vec<String>> {
    let rows: Vec<(String,)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT name FROM pragma_table_info('{table}') ORDER BY cid"
    )))
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|(name,)| name).collect())
}
