//! The date scrubber: `GET /my/photos/months` (years and months with their photo counts) and
//! `GET /my/photos/months/{month}` (the timeline's page that starts at a month, with a cursor that goes on
//! down the timeline). Both take the timeline's filters, so the scrubber of a search or of the favourites
//! counts and jumps within it.
//!
//! Months are the photos' own: a photo taken on 31 March at 23:30 in Tokyo counts in March, as its date
//! on the timeline says, whatever the UTC date.

use axum::extract::State;

use super::filter::{MonthPageParams, MonthParams, MonthPath, list_scope, month_end};
use super::photos::page;
use crate::catalog::{PhotoFilter, TimelineQuery, UserId};
use crate::http::AppState;
use crate::http::auth::WebAuth;
use crate::http::error::ApiError;
use crate::http::extract::{Json, Path, Query};

/// The caller's years and months with their photo counts, newest first, under the timeline's filters.
#[utoipa::path(get, path = "/my/photos/months", tag = "web", operation_id = "get_months",
    params(MonthParams),
    responses((status = 200, body = api::WebMonths), (status = 400, body = api::ErrorBody),
        (status = 401, body = api::ErrorBody), (status = 403, body = api::ErrorBody)),
    security(("bearer" = ["web"])))]
#[tracing::instrument(skip_all)]
pub(crate) async fn get_months(
    State(state): State<AppState>,
    WebAuth(caller): WebAuth,
    Query(params): Query<MonthParams>,
) -> Result<Json<api::WebMonths>, ApiError> {
    let filter = params.filter()?;
    Ok(Json(api::WebMonths {
        years: years(&state, &caller.user.id, &filter).await?,
    }))
}

/// The user's years and months with their counts under `filter`, newest first.
pub(crate) async fn years(
    state: &AppState,
    user_id: &UserId,
    filter: &PhotoFilter,
) -> Result<Vec<api::WebYear>, ApiError> {
    // Counting is a pass over every photo the filter keeps (a second at a million on SQLite), and the
    // timeline's script asks for it on every load: counts are kept until the user's version moves, which
    // every change of their catalog does (on any replica, since the version is the catalog's).
    let version = state.catalog().version(user_id).await?;
    let key = list_scope(user_id.as_str(), filter);
    if let Some(years) = state.month_counts().get(&key, version) {
        return Ok(years);
    }
    let years = count(state, user_id, filter).await?;
    state.month_counts().put(key, version, years.clone());
    Ok(years)
}

/// The scrubber's counts by filter (its cursor scope, which names the user), each with the catalog version
/// it was counted at. Bounded: past [`MonthCache::MAX_ENTRIES`] it starts again empty.
#[derive(Debug, Default)]
pub(crate) struct MonthCache {
    entries: std::sync::Mutex<std::collections::HashMap<String, (i64, Vec<api::WebYear>)>>,
}

impl MonthCache {
    const MAX_ENTRIES: usize = 1024;

    fn get(&self, key: &str, version: i64) -> Option<Vec<api::WebYear>> {
        let entries = self.lock();
        entries
            .get(key)
            .filter(|(at, _)| *at == version)
            .map(|(_, years)| years.clone())
    }

    fn put(&self, key: String, version: i64, years: Vec<api::WebYear>) {
        let mut entries = self.lock();
        if entries.len() >= Self::MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(key, (version, years));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, (i64, Vec<api::WebYear>)>> {
        // A cache holds no invariant a panic could break.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The user's years and months with their counts under `filter`, counted now.
async fn count(
    state: &AppState,
    user_id: &UserId,
    filter: &PhotoFilter,
) -> Result<Vec<api::WebYear>, ApiError> {
    let months = state.catalog().month_counts(user_id, filter).await?;
    let mut years: Vec<api::WebYear> = Vec::new();
    for m in months {
        let month = api::WebMonth {
            month: m.month,
            key: format!("{:04}-{:02}", m.year, m.month),
            count: m.count,
        };
        match years.last_mut() {
            Some(year) if year.year == m.year => {
                year.count += m.count;
                year.months.push(month);
            }
            _ => years.push(api::WebYear {
                year: m.year,
                count: m.count,
                months: vec![month],
            }),
        }
    }
    Ok(years)
}

/// The timeline from a month on: its first page holds the month's newest photos (or, for a month without
/// any, the newest before it), and `nextCursor` continues with `GET /my/photos/` and the same filters.
#[utoipa::path(get, path = "/my/photos/months/{month}", tag = "web", operation_id = "get_month",
    params(MonthPath, MonthPageParams),
    responses((status = 200, body = api::WebPhotoPage), (status = 400, body = api::ErrorBody),
        (status = 401, body = api::ErrorBody), (status = 403, body = api::ErrorBody)),
    security(("bearer" = ["web"])))]
#[tracing::instrument(skip_all)]
pub(crate) async fn get_month(
    State(state): State<AppState>,
    WebAuth(caller): WebAuth,
    Path(MonthPath { month }): Path<MonthPath>,
    Query(params): Query<MonthPageParams>,
) -> Result<Json<api::WebPhotoPage>, ApiError> {
    let before = month_end(&month)?;
    let limit = super::limit(params.limit)?;
    let filter = params.filter()?;
    let scope = list_scope(caller.user.id.as_str(), &filter);
    let query = TimelineQuery {
        filter,
        limit,
        after: None,
        before_local_ms: Some(before),
    };
    page(&state, &caller.user.id, &scope, query).await
}
