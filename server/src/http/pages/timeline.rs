//! `GET /`: the timeline, newest first, grouped by month and day, keyset-paged (a "More" link with the
//! signed cursor of the page's last photo; `timeline.js` follows it as the reader scrolls and joins a day
//! split across two pages). The filters and the search are plain query parameters of the same page
//! (`/?person=Zoë`, `/?q=beach&favorite=true`), submitted by a plain GET form, so every view has a URL.
//!
//! `GET /months`: the date scrubber, years and months with their counts under the same filters, each month
//! a link to `/?month=YYYY-MM&…`. It is a page of its own (and, with `partial=true`, the fragment
//! `timeline.js` puts beside the timeline), so a timeline page never waits for the counting of a whole
//! library.

use axum::extract::{Query, State};
use axum::http::{StatusCode, Uri};
use axum::response::Response;

use super::grid::{self, Month};
use super::session::SignedIn;
use super::templates::{Layout, Section};
use super::{error_page, render, signed_in_layout};
use crate::catalog::{PhotoFilter, TimelineQuery};
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::http::web::filter::{MonthParams, TimelinePageParams, list_scope, month_end};
use crate::http::web::{DEFAULT_LIMIT, months::years, photos};

/// The filter form's current values, as typed (empty when unset), and the query string that repeats them.
#[derive(Debug, Clone, Default)]
pub struct FilterForm {
    pub q: String,
    pub kind: String,
    pub favorite: bool,
    pub live: bool,
    pub include_hidden: bool,
    pub from: String,
    pub to: String,
    pub keyword: String,
    pub person: String,
}

impl FilterForm {
    /// The parameters that are set, in a stable order (links carry them on).
    fn pairs(&self) -> Vec<(&'static str, &str)> {
        let mut pairs = Vec::new();
        for (name, value) in [
            ("q", self.q.as_str()),
            ("kind", self.kind.as_str()),
            ("keyword", self.keyword.as_str()),
            ("person", self.person.as_str()),
            ("from", self.from.as_str()),
            ("to", self.to.as_str()),
        ] {
            if !value.is_empty() {
                pairs.push((name, value));
            }
        }
        for (name, set) in [
            ("favorite", self.favorite),
            ("live", self.live),
            ("includeHidden", self.include_hidden),
        ] {
            if set {
                pairs.push((name, "true"));
            }
        }
        pairs
    }

    /// `?<filters>&<extra>`, URL-encoded (`?` alone when nothing is set).
    pub fn query(&self, extra: &[(&str, &str)]) -> String {
        let mut out = url::form_urlencoded::Serializer::new(String::new());
        for (name, value) in self.pairs().into_iter().chain(extra.iter().copied()) {
            out.append_pair(name, value);
        }
        format!("?{}", out.finish())
    }

    /// Whether any filter or search is set (an empty list then means "nothing matches", not "no photos").
    pub fn is_set(&self) -> bool {
        !self.pairs().is_empty()
    }

    /// A heading that says what the list is.
    fn heading(&self) -> String {
        match (self.q.as_str(), self.person.as_str(), self.keyword.as_str()) {
            ("", "", "") if self.is_set() => "Photos, filtered".to_owned(),
            ("", "", "") => "Photos".to_owned(),
            (q, "", "") => format!("Search: {q}"),
            ("", person, "") => person.to_owned(),
            ("", "", keyword) => format!("Keyword: {keyword}"),
            _ => "Photos, filtered".to_owned(),
        }
    }
}

/// `GET /`.
#[derive(Debug, askama::Template)]
#[template(path = "timeline.html")]
pub struct Timeline {
    pub layout: Layout,
    pub heading: String,
    pub form: FilterForm,
    pub months: Vec<Month>,
    /// The next page's URL, `None` at the end.
    pub next: Option<String>,
    /// The scrubber page of this list (and its fragment for the script).
    pub scrubber: String,
    /// The user has no photo at all (the empty state says to run the agent).
    pub library_empty: bool,
}

/// `GET /?partial=true`: the grid and the next link only, for endless scroll.
#[derive(Debug, askama::Template)]
#[template(path = "timeline_items.html")]
pub struct TimelineItems {
    pub months: Vec<Month>,
    pub next: Option<String>,
}

/// `GET /months`.
#[derive(Debug, askama::Template)]
#[template(path = "months.html")]
pub struct Months {
    pub layout: Layout,
    pub years: Vec<ScrubYear>,
}

/// `GET /months?partial=true`.
#[derive(Debug, askama::Template)]
#[template(path = "scrubber.html")]
pub struct Scrubber {
    pub years: Vec<ScrubYear>,
}

/// A year of the scrubber with its months, each with the link that jumps to it.
#[derive(Debug, Clone)]
pub struct ScrubYear {
    pub year: i32,
    pub count: u64,
    pub months: Vec<ScrubMonth>,
}

#[derive(Debug, Clone)]
pub struct ScrubMonth {
    /// `Mar`.
    pub name: String,
    pub key: String,
    pub count: u64,
    pub href: String,
}

/// The pairs of a page's query, with the form's empty fields dropped (a GET form sends `q=` for an empty
/// box).
fn pairs(uri: &Uri) -> Vec<(String, String)> {
    url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .into_owned()
        .filter(|(_, value)| !value.is_empty())
        .collect()
}

/// Query pairs as a page's parameters, or the 400 that names the bad one.
fn parse<T: serde::de::DeserializeOwned>(pairs: &[(String, String)]) -> Result<T, ApiError> {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    let uri: Uri = format!("/?{query}")
        .parse()
        .map_err(|_| bad_query("not a query"))?;
    Query::<T>::try_from_uri(&uri)
        .map(|Query(params)| params)
        .map_err(|e| bad_query(&e.body_text()))
}

fn bad_query(detail: &str) -> ApiError {
    ApiError::bad_request(api::ErrorCode::InvalidQuery, format!("query: {detail}"))
}

macro_rules! form_of {
    ($params:expr) => {{
        let p = &$params;
        FilterForm {
            q: p.q.clone().unwrap_or_default(),
            kind: match p.kind {
                Some(api::AssetKind::Photo) => "photo".to_owned(),
                Some(api::AssetKind::Video) => "video".to_owned(),
                None => String::new(),
            },
            favorite: p.favorite == Some(true),
            live: p.live == Some(true),
            include_hidden: p.include_hidden == Some(true),
            from: p.from.clone().unwrap_or_default(),
            to: p.to.clone().unwrap_or_default(),
            keyword: p.keyword.clone().unwrap_or_default(),
            person: p.person.clone().unwrap_or_default(),
        }
    }};
}

pub(super) async fn get_timeline(
    State(state): State<AppState>,
    SignedIn(signed): SignedIn,
    uri: Uri,
) -> Response {
    let layout = signed_in_layout(&state, &signed).at(Section::Photos);
    match timeline(&state, &signed.session.user.id, &uri, layout.clone()).await {
        Ok(response) => response,
        Err(error) => error_page(layout, &error),
    }
}

async fn timeline(
    state: &AppState,
    user_id: &crate::catalog::UserId,
    uri: &Uri,
    layout: Layout,
) -> Result<Response, ApiError> {
    let params: TimelinePageParams = parse(&pairs(uri))?;
    let filter: PhotoFilter = params.filter()?;
    let form = form_of!(params);
    let scope = list_scope(user_id.as_str(), &filter);
    let after = params
        .cursor
        .as_deref()
        .map(|text| photos::open_cursor(&state.settings().cursor_key, &scope, text))
        .transpose()?;
    let before_local_ms = params.month.as_deref().map(month_end).transpose()?;
    let query = TimelineQuery {
        filter,
        limit: DEFAULT_LIMIT,
        after,
        before_local_ms,
    };
    let (rows, cursor) = photos::rows(state, user_id, &scope, query).await?;
    let next = cursor.map(|cursor| format!("/{}", form.query(&[("cursor", &cursor)])));
    let months = grid::months(&rows);
    if params.partial == Some(true) {
        return Ok(render(StatusCode::OK, &TimelineItems { months, next }));
    }
    // Only a first page that is empty needs to know whether the library is: that is the empty state.
    let library_empty = months.is_empty()
        && !form.is_set()
        && params.cursor.is_none()
        && params.month.is_none()
        && state
            .catalog()
            .stats(user_id, chrono::Utc::now())
            .await?
            .totals
            .photos
            == 0;
    Ok(render(
        StatusCode::OK,
        &Timeline {
            layout,
            heading: form.heading(),
            scrubber: format!("/months{}", form.query(&[])),
            form,
            months,
            next,
            library_empty,
        },
    ))
}

pub(super) async fn get_months(
    State(state): State<AppState>,
    SignedIn(signed): SignedIn,
    uri: Uri,
) -> Response {
    let layout = signed_in_layout(&state, &signed).at(Section::Photos);
    match months(&state, &signed.session.user.id, &uri, layout.clone()).await {
        Ok(response) => response,
        Err(error) => error_page(layout, &error),
    }
}

async fn months(
    state: &AppState,
    user_id: &crate::catalog::UserId,
    uri: &Uri,
    layout: Layout,
) -> Result<Response, ApiError> {
    // `partial` is the page's own; the rest are the filters, checked as the JSON scrubber checks them.
    let (partial, filters): (Vec<_>, Vec<_>) = pairs(uri).into_iter().partition(|(k, _)| k == "partial");
    let partial = match partial.as_slice() {
        [] => false,
        [(_, v)] if v == "true" || v == "false" => v == "true",
        _ => return Err(bad_query("partial: must be true or false, once")),
    };
    let params: MonthParams = parse(&filters)?;
    let filter = params.filter()?;
    let form = form_of!(params);
    let years = years(state, user_id, &filter)
        .await?
        .into_iter()
        .map(|y| ScrubYear {
            year: y.year,
            count: y.count,
            months: y
                .months
                .into_iter()
                .map(|m| ScrubMonth {
                    name: month_name(m.month),
                    href: format!("/{}", form.query(&[("month", &m.key)])),
                    key: m.key,
                    count: m.count,
                })
                .collect(),
        })
        .collect();
    if partial {
        return Ok(render(StatusCode::OK, &Scrubber { years }));
    }
    Ok(render(StatusCode::OK, &Months { layout, years }))
}

fn month_name(month: u32) -> String {
    const NAMES: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    NAMES
        .get(month.saturating_sub(1) as usize)
        .copied()
        .unwrap_or("?")
        .to_owned()
}
