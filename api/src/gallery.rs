//! The gallery's browsing aids on the web surface (scope `web`): the date scrubber's counts and the people
//! and keywords with theirs.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Years and months that have photos, newest first (`GET /my/photos/months`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebMonths {
    /// The years, newest first; a year without photos is left out.
    pub years: Vec<WebYear>,
}

/// One year of the scrubber.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebYear {
    /// The year, in the photos' own time.
    pub year: i32,
    /// Photos in the year (the sum of its months).
    pub count: u64,
    /// Its months that have photos, newest first.
    pub months: Vec<WebMonth>,
}

/// One month of the scrubber.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebMonth {
    /// 1 to 12.
    pub month: u32,
    /// `YYYY-MM`: the path segment of `GET /my/photos/months/{month}`, which jumps there.
    pub key: String,
    /// Photos in the month.
    pub count: u64,
}

/// Names with their photo counts, most photos first, ties by name (`GET /my/photos/people`,
/// `GET /my/photos/keywords`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebTags {
    /// The names.
    pub items: Vec<WebTag>,
}

/// A person or keyword.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebTag {
    /// As the Mac names it; pass it as `person` or `keyword` to `GET /my/photos/`.
    pub name: String,
    /// Photos that carry it (not hidden, not trashed).
    pub count: u64,
}
