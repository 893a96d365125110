//! The query parameters every photo list of the gallery takes (the timeline, search, the scrubber's month
//! counts and the month jump): parsed and checked once, into a [`PhotoFilter`], and the cursor scope that
//! binds a page cursor to them.

use api::ErrorCode;
use chrono::{DateTime, NaiveDate};

use super::cursor;
use crate::catalog::PhotoFilter;
use crate::catalog::search::SearchTerms;
use crate::http::error::ApiError;

/// Longest keyword or person name a filter takes (characters).
const MAX_NAME_CHARS: usize = 200;

/// Defines a query struct of a photo list: its own fields, then the filters every list takes, and the
/// [`PhotoFilter`] they ask for. One struct per route shape, so that each route's document lists exactly the
/// parameters it takes and refuses any other (`deny_unknown_fields`).
macro_rules! list_params {
    ($(#[$meta:meta])* $name:ident { $($(#[$field_meta:meta])* $field:ident: $ty:ty,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
        #[serde(rename_all = "camelCase", deny_unknown_fields)]
        #[into_params(parameter_in = Query)]
        pub(crate) struct $name {
            $($(#[$field_meta])* pub(crate) $field: $ty,)*
            /// Search: photos where every word of `q` begins a word of the title, the caption, a keyword, a
            /// person's name or the original file name, ignoring case and accents (`img_12` finds
            /// `IMG_1234.HEIC`, `zoe` finds `Zoë`). 1 to 200 characters, at most 12 words; results in
            /// timeline order. A query of spaces or punctuation alone finds nothing.
            #[param(min_length = 1, max_length = 200)]
            pub(crate) q: Option<String>,
            /// Only members of this album (its id).
            pub(crate) album: Option<String>,
            /// Only photos or only videos.
            pub(crate) kind: Option<api::AssetKind>,
            /// Only favourites (`true`) or only the others (`false`).
            pub(crate) favorite: Option<bool>,
            /// Only Live Photos (`true`) or only the others (`false`).
            pub(crate) live: Option<bool>,
            /// Only photos with this keyword, exactly as `GET /my/photos/keywords` lists it.
            #[param(min_length = 1, max_length = 200)]
            pub(crate) keyword: Option<String>,
            /// Only photos of this person, exactly as `GET /my/photos/people` lists them.
            #[param(min_length = 1, max_length = 200)]
            pub(crate) person: Option<String>,
            /// Taken at or after an RFC 3339 time; or a `YYYY-MM-DD` date: taken on that day or later, in
            /// the photo's own time (a photo taken at 23:30 in Tokyo is on that day in Tokyo).
            #[param(schema_with = time_or_date)]
            pub(crate) from: Option<String>,
            /// Taken before an RFC 3339 time; or a `YYYY-MM-DD` date: taken on that day or earlier
            /// (inclusive), in the photo's own time.
            #[param(schema_with = time_or_date)]
            pub(crate) to: Option<String>,
            /// Hidden photos too (default false).
            pub(crate) include_hidden: Option<bool>,
            /// Photos in Recently Deleted too (default false).
            pub(crate) include_trashed: Option<bool>,
        }

        impl $name {
            /// The filter these parameters ask for, or a 400 naming the bad one.
            pub(crate) fn filter(&self) -> Result<PhotoFilter, ApiError> {
                filter(Filters {
                    q: self.q.as_deref(),
                    album: self.album.as_deref(),
                    kind: self.kind,
                    favorite: self.favorite,
                    live: self.live,
                    keyword: self.keyword.as_deref(),
                    person: self.person.as_deref(),
                    from: self.from.as_deref(),
                    to: self.to.as_deref(),
                    include_hidden: self.include_hidden,
                    include_trashed: self.include_trashed,
                })
            }
        }
    };
}

list_params! {
    /// Query of the timeline (and of search, which is the timeline with `q`).
    ListParams {
        /// Page size, 1 to 500 (default 100); outside is a 400, never clamped.
        #[param(minimum = 1, maximum = 500)]
        limit: Option<u32>,
        /// `nextCursor` of the previous page of this same list (opaque and signed: any other value is a 400).
        cursor: Option<String>,
    }
}

list_params! {
    /// Query of the jump to a month: the first page, so no cursor.
    MonthPageParams {
        /// Page size, 1 to 500 (default 100); outside is a 400, never clamped.
        #[param(minimum = 1, maximum = 500)]
        limit: Option<u32>,
    }
}

list_params! {
    /// Query of the timeline page (`GET /`, the pages): where to start (a cursor of the page before, or a
    /// month), and whether only the grid is wanted (endless scroll fetches the next page's grid).
    TimelinePageParams {
        /// `nextCursor`-style cursor of this same list.
        cursor: Option<String>,
        /// `YYYY-MM`: start at this month (the scrubber's jump).
        month: Option<String>,
        /// Only the grid and the next link, not the whole page.
        partial: Option<bool>,
    }
}

list_params! {
    /// Query of the month counts: not paged.
    MonthParams {}
}

/// The filter parameters of any list, borrowed.
struct Filters<'a> {
    q: Option<&'a str>,
    album: Option<&'a str>,
    kind: Option<api::AssetKind>,
    favorite: Option<bool>,
    live: Option<bool>,
    keyword: Option<&'a str>,
    person: Option<&'a str>,
    from: Option<&'a str>,
    to: Option<&'a str>,
    include_hidden: Option<bool>,
    include_trashed: Option<bool>,
}

/// The schema of `from` and `to`: a date-time or a date.
fn time_or_date() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{AnyOfBuilder, KnownFormat, ObjectBuilder, SchemaFormat, Type};
    let string = |format| {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(format)))
    };
    AnyOfBuilder::new()
        .item(string(KnownFormat::DateTime))
        .item(string(KnownFormat::Date))
        .into()
}

/// The filter `params` ask for, or a 400 naming the bad parameter.
fn filter(params: Filters<'_>) -> Result<PhotoFilter, ApiError> {
    let mut filter = PhotoFilter {
        album_id: params.album.map(str::to_owned),
        kind: params.kind,
        favorite: params.favorite,
        live_photo: params.live,
        keyword: params.keyword.map(|k| name("keyword", k)).transpose()?,
        person: params.person.map(|p| name("person", p)).transpose()?,
        search: params.q.map(search).transpose()?,
        include_hidden: params.include_hidden.unwrap_or(false),
        include_trashed: params.include_trashed.unwrap_or(false),
        ..PhotoFilter::default()
    };
    match params.from.map(|t| time("from", t)).transpose()? {
        Some(Bound::Instant(ms)) => filter.from_ms = Some(ms),
        Some(Bound::Day(ms)) => filter.from_local_ms = Some(ms),
        None => {}
    }
    match params.to.map(|t| time("to", t)).transpose()? {
        Some(Bound::Instant(ms)) => filter.to_ms = Some(ms),
        // Inclusive: up to the start of the next day.
        Some(Bound::Day(ms)) => filter.to_local_ms = Some(ms.saturating_add(86_400_000)),
        None => {}
    }
    Ok(filter)
}

/// What a timeline cursor is bound to: the user and every filter.
pub(crate) fn list_scope(user_id: &str, filter: &PhotoFilter) -> String {
    let kind = filter.kind.map(|k| format!("{k:?}")).unwrap_or_default();
    let search = filter
        .search
        .as_ref()
        .map(|s| s.words().join(" "))
        .unwrap_or_default();
    cursor::scope(&[
        "timeline",
        user_id,
        filter.album_id.as_deref().unwrap_or(""),
        &kind,
        &format!("{:?}", filter.favorite),
        &format!("{:?}", filter.from_ms),
        &format!("{:?}", filter.to_ms),
        &filter.include_hidden.to_string(),
        &filter.include_trashed.to_string(),
        &format!("{:?}", filter.live_photo),
        &format!("{:?}", filter.keyword),
        &format!("{:?}", filter.person),
        &format!("{:?}", filter.from_local_ms),
        &format!("{:?}", filter.to_local_ms),
        &search,
    ])
}

fn search(text: &str) -> Result<SearchTerms, ApiError> {
    SearchTerms::parse(text).map_err(|e| ApiError::bad_request(ErrorCode::InvalidSearch, format!("q: {e}")))
}

fn name(field: &str, text: &str) -> Result<String, ApiError> {
    let n = text.chars().count();
    if n == 0 || n > MAX_NAME_CHARS {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidQuery,
            format!("{field}: must be 1 to {MAX_NAME_CHARS} characters"),
        ));
    }
    Ok(text.to_owned())
}

/// A bound of a date range.
enum Bound {
    /// An instant, epoch milliseconds.
    Instant(i64),
    /// The start of a day on the photos' own clocks, epoch milliseconds of that wall time read as UTC.
    Day(i64),
}

/// An RFC 3339 time or a `YYYY-MM-DD` date. The date is exactly RFC 3339's `full-date` (what the
/// document's `format: date` says): four, two and two digits.
fn time(field: &str, text: &str) -> Result<Bound, ApiError> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(Bound::Instant(t.timestamp_millis()));
    }
    if let Some(day) = full_date(text) {
        return Ok(Bound::Day(day));
    }
    Err(ApiError::bad_request(
        ErrorCode::InvalidQuery,
        format!("{field}: {text:?} is not an RFC 3339 time or a YYYY-MM-DD date"),
    ))
}

/// Midnight of a `YYYY-MM-DD` date, as epoch milliseconds of that wall time read as UTC.
fn full_date(text: &str) -> Option<i64> {
    let shaped = text.len() == 10
        && text.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .filter(|_| shaped)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc().timestamp_millis())
}

/// The path of the jump to a month.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct MonthPath {
    /// `YYYY-MM`, in the photos' own time.
    #[param(pattern = r"^[0-9]{4}-(0[1-9]|1[0-2])$")]
    pub(crate) month: String,
}

/// A `YYYY-MM` month: the wall time (read as UTC, epoch milliseconds) its next month starts at, or a 400.
pub(crate) fn month_end(text: &str) -> Result<i64, ApiError> {
    let bad = || {
        ApiError::bad_request(
            ErrorCode::InvalidPath,
            format!("month: {text:?} is not a YYYY-MM month"),
        )
    };
    let shaped = text.len() == 7
        && text
            .bytes()
            .enumerate()
            .all(|(i, b)| if i == 4 { b == b'-' } else { b.is_ascii_digit() });
    if !shaped {
        return Err(bad());
    }
    let year: i32 = text[..4].parse().map_err(|_| bad())?;
    let month: u32 = text[5..].parse().map_err(|_| bad())?;
    if !(1..=12).contains(&month) {
        return Err(bad());
    }
    let (year, month) = if month == 12 {
        (year + 1, 1)
    } else {
        (year, month + 1)
    };
    NaiveDate::from_ymd_opt(year, month, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc().timestamp_millis())
        .ok_or_else(bad)
}
