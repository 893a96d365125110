//! A photo's neighbours in the timeline: the photo page's previous and next. Each is the timeline's own
//! keyset read turned one way or the other from the photo's (taken-at, id), one row long, under the same
//! conditions as the list (`sql/search.rs`), so the default view reads the partial index `photos_timeline`
//! forwards (older) or backwards (newer) and never counts or skips rows.

use sqlx::Row as _;

use super::Adapter;
use super::Driver as _;
use super::search::{Bind, Built, push_conditions};
use crate::catalog::{PhotoFilter, PhotoId, Result, TimelineKey, TimelineNeighbours, UserId};

/// Which way from the photo.
#[derive(Debug, Clone, Copy)]
enum Way {
    /// Up the list: taken later, or at the same time with a greater id.
    Newer,
    /// Down the list: taken earlier, or at the same time with a smaller id.
    Older,
}

/// The one-row keyset read of the neighbour `way` of `key`.
fn neighbour_sql(user_id: &UserId, filter: &PhotoFilter, key: &TimelineKey, way: Way) -> Built {
    let mut built = Built::new("SELECT p.id FROM icloud.photos p".to_owned(), user_id);
    push_conditions(&mut built, filter);
    let (compare, order) = match way {
        Way::Newer => (">", "ASC"),
        Way::Older => ("<", "DESC"),
    };
    built.push(
        &format!(" AND (p.taken_at, p.id) {compare} (?, ?)"),
        vec![Bind::Int(key.taken_at_ms), Bind::Text(key.photo_id.clone())],
    );
    built.push(
        &format!(" ORDER BY p.taken_at {order}, p.id {order} LIMIT 1"),
        vec![],
    );
    built
}

async fn neighbour(
    catalog: &Adapter,
    user_id: &UserId,
    filter: &PhotoFilter,
    key: &TimelineKey,
    way: Way,
) -> Result<Option<PhotoId>> {
    let row = neighbour_sql(user_id, filter, key, way)
        .query()
        .fetch_optional(catalog.pool())
        .await?;
    Ok(match row {
        Some(row) => Some(PhotoId::new(row.try_get::<String, _>("id")?)),
        None => None,
    })
}

pub(super) async fn timeline_neighbours(
    catalog: &Adapter,
    user_id: &UserId,
    filter: &PhotoFilter,
    key: &TimelineKey,
) -> Result<TimelineNeighbours> {
    Ok(TimelineNeighbours {
        newer: neighbour(catalog, user_id, filter, key, Way::Newer).await?,
        older: neighbour(catalog, user_id, filter, key, Way::Older).await?,
    })
}

pub(super) async fn explain_neighbours(
    catalog: &Adapter,
    user_id: &UserId,
    filter: &PhotoFilter,
    key: &TimelineKey,
) -> Result<String> {
    let mut plans = Vec::with_capacity(2);
    for way in [Way::Newer, Way::Older] {
        plans.push(super::web::explain(catalog, neighbour_sql(user_id, filter, key, way)).await?);
    }
    Ok(plans.join("\n"))
}
