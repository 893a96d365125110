//! The writes of a batch's shared photos (see `sources.rs`), applied after the adapter's `write_batch` in the
//! same transaction: moved homes, this library's aliases, metadata written over a photo by id.

use super::super::write::{json_list, kind_name};
use super::super::{CHUNK, Conn, Db, to_i64};
use super::{IdentityWrite, Rehome, SourcePlan};
use crate::catalog::{LibraryId, PhotoUpsert, Result, UserId, search};

/// Applies the identity and metadata writes of a batch's shared photos, after the adapter's `write_batch`
/// (same transaction, same `version`): moved homes first, then this library's aliases, then metadata.
pub(crate) async fn apply(
    conn: &mut Conn,
    user_id: &UserId,
    library_id: &LibraryId,
    plans: &[(&str, &SourcePlan)],
    version: i64,
    now: i64,
) -> Result<()> {
    let user = user_id.as_str();
    for (_, plan) in plans {
        if let Some(IdentityWrite::Rehome(rehome)) = &plan.identity {
            rehome_photo(conn, user, &plan.photo_id, rehome, version, now).await?;
        }
    }
    let added: Vec<(&str, &str)> = plans
        .iter()
        .filter(|(_, plan)| matches!(plan.identity, Some(IdentityWrite::Add)))
        .map(|(local_identifier, plan)| (*local_identifier, plan.photo_id.as_str()))
        .collect();
    for chunk in added.chunks(CHUNK / 4) {
        let mut qb = sqlx::QueryBuilder::<Db>::new(
            "INSERT INTO icloud.photo_aliases (library_id, local_identifier, user_id, photo_id, created_at) ",
        );
        qb.push_values(chunk, |mut b, (local_identifier, photo_id)| {
            b.push_bind(library_id.as_str())
                .push_bind(*local_identifier)
                .push_bind(user)
                .push_bind(*photo_id)
                .push_bind(now);
        });
        qb.build().execute(&mut *conn).await?;
    }
    for (local_identifier, plan) in plans {
        let deleted_at = match plan.identity {
            Some(IdentityWrite::Revive) => None,
            Some(IdentityWrite::Remove) => Some(now),
            _ => continue,
        };
        sqlx::query(
            "UPDATE icloud.photo_aliases SET deleted_at = $1 \
             WHERE library_id = $2 AND local_identifier = $3 AND user_id = $4",
        )
        .bind(deleted_at)
        .bind(library_id.as_str())
        .bind(*local_identifier)
        .bind(user)
        .execute(&mut *conn)
        .await?;
    }
    for (_, plan) in plans {
        if let Some((item, hash)) = &plan.metadata {
            write_metadata(conn, user, &plan.photo_id, item, hash, version, now).await?;
        }
    }
    Ok(())
}

/// Moves a photo's home identity: its resources that relied on the old home (library NULL) name it, the
/// new home's alias row goes, the photo row takes the new identity, the old one becomes an alias.
async fn rehome_photo(
    conn: &mut Conn,
    user: &str,
    photo_id: &str,
    rehome: &Rehome,
    version: i64,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "UPDATE icloud.resources SET library_id = $1 WHERE photo_id = $2 AND user_id = $3 AND library_id IS NULL",
    )
    .bind(&rehome.from.0)
    .bind(photo_id)
    .bind(user)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "DELETE FROM icloud.photo_aliases WHERE library_id = $1 AND local_identifier = $2 AND user_id = $3",
    )
    .bind(&rehome.to.0)
    .bind(&rehome.to.1)
    .bind(user)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "UPDATE icloud.photos SET library_id = $1, local_identifier = $2, version = $3, updated_at = $4 \
         WHERE id = $5 AND user_id = $6",
    )
    .bind(&rehome.to.0)
    .bind(&rehome.to.1)
    .bind(version)
    .bind(now)
    .bind(photo_id)
    .bind(user)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO icloud.photo_aliases (library_id, local_identifier, user_id, photo_id, created_at, deleted_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&rehome.from.0)
    .bind(&rehome.from.1)
    .bind(user)
    .bind(photo_id)
    .bind(now)
    .bind(rehome.from_deleted.then_some(now))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Writes a source's metadata over a shared photo (its identity stays), undeleting it; a GUID or fingerprint
/// the item lacks is kept.
async fn write_metadata(
    conn: &mut Conn,
    user: &str,
    photo_id: &str,
    item: &PhotoUpsert,
    hash: &str,
    version: i64,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "UPDATE icloud.photos SET cloud_guid = COALESCE($1, cloud_guid), fingerprint = COALESCE($2, fingerprint), \
             kind = $3, subtype = $4, live_photo = $5, width = $6, height = $7, duration_ms = $8, taken_at = $9, \
             taken_at_offset_s = $10, time_zone = $11, modified_at = $12, favorite = $13, hidden = $14, \
             trashed = $15, latitude = $16, longitude = $17, original_filename = $18, uti = $19, edited = $20, \
             title = $21, caption = $22, keywords = $23, people = $24, metadata_sha256 = $25, version = $26, \
             updated_at = $27, deleted_at = NULL, search_text = $30 \
         WHERE id = $28 AND user_id = $29",
    )
    .bind(item.cloud_guid.as_deref())
    .bind(item.fingerprint.as_deref())
    .bind(kind_name(item.kind))
    .bind(item.subtype.as_deref())
    .bind(item.live_photo)
    .bind(i64::from(item.width))
    .bind(i64::from(item.height))
    .bind(item.duration_ms.map(|d| to_i64("durationMs", d)).transpose()?)
    .bind(item.taken_at.timestamp_millis())
    .bind(i64::from(item.taken_at.offset().local_minus_utc()))
    .bind(item.time_zone.as_deref())
    .bind(item.modified_at.timestamp_millis())
    .bind(item.favorite)
    .bind(item.hidden)
    .bind(item.trashed)
    .bind(item.latitude)
    .bind(item.longitude)
    .bind(item.original_filename.as_str())
    .bind(item.uti.as_str())
    .bind(item.edited)
    .bind(item.title.as_deref())
    .bind(item.caption.as_deref())
    .bind(json_list(&item.keywords))
    .bind(json_list(&item.people))
    .bind(hash)
    .bind(version)
    .bind(now)
    .bind(photo_id)
    .bind(user)
    .bind(search::of_item(item))
    .execute(&mut *conn)
    .await?;
    Ok(())
}
