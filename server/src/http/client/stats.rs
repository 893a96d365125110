//! `GET /client/iphoto/stats`: counts, bytes, and an upload rate and ETA computed from upload times in the
//! catalog — so neither a server nor an agent restart resets them (the original system's known bug).

use axum::extract::State;
use chrono::{DateTime, Utc};

use crate::catalog::Counts;
use crate::http::AppState;
use crate::http::auth::ClientAuth;
use crate::http::error::ApiError;
use crate::http::extract::Json;

/// The window the "recent" upload rate is measured over.
const RATE_WINDOW: chrono::Duration = chrono::Duration::minutes(10);

/// The user's figures.
#[utoipa::path(get, path = "/client/iphoto/stats", tag = "client", operation_id = "get_stats",
    responses((status = 200, body = api::Stats), (status = 401, body = api::ErrorBody),
        (status = 403, body = api::ErrorBody)),
    security(("bearer" = ["client"])))]
pub(crate) async fn get_stats(
    State(state): State<AppState>,
    ClientAuth(caller): ClientAuth,
) -> Result<Json<api::Stats>, ApiError> {
    let now = Utc::now();
    let stats = state.catalog().stats(&caller.user.id, now - RATE_WINDOW).await?;
    let totals = stats.totals;
    let upload_rate = upload_rate(&totals, now);
    let eta = (upload_rate > 0.0 && totals.bytes_pending > 0)
        .then(|| (totals.bytes_pending as f64 / upload_rate).ceil() as u64);
    Ok(Json(api::Stats {
        version: stats.version,
        totals: counts(&totals),
        bytes_transferred: totals.bytes_transferred,
        upload_rate,
        eta,
        libraries: stats
            .libraries
            .iter()
            .map(|l| api::LibraryStats {
                library_id: l.library_key.clone(),
                counts: counts(&l.counts),
            })
            .collect(),
    }))
}

/// Bytes per second: over the recent window when anything was uploaded in it (from the first upload in the
/// window's span, so a pass that just started is not diluted), else zero: nothing is moving.
fn upload_rate(totals: &Counts, now: DateTime<Utc>) -> f64 {
    if totals.recent_bytes == 0 {
        return 0.0;
    }
    let window_start = now - RATE_WINDOW;
    let start = totals
        .first_upload_at
        .map_or(window_start, |first| first.max(window_start));
    let seconds = (now - start).num_milliseconds().max(1000) as f64 / 1000.0;
    totals.recent_bytes as f64 / seconds
}

fn counts(c: &Counts) -> api::Counts {
    api::Counts {
        photos: c.photos,
        resources: c.resources,
        uploaded: c.uploaded,
        pending: c.pending,
        unavailable: c.unavailable,
        bytes_total: c.bytes_total,
        bytes_uploaded: c.bytes_uploaded,
        bytes_pending: c.bytes_pending,
    }
}
