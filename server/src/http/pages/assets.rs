//! The pages' assets (stylesheet, icon), compiled into the binary and served under names that carry a hash of
//! their content (`/static/app.<hash>.css`), so they can be cached forever: a new build with other bytes has
//! other names.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use sha2::{Digest as _, Sha256};

use crate::http::error::ApiError;

/// An asset compiled into the binary.
struct Asset {
    /// The name before its hash (`app`) and its extension (`css`).
    stem: &'static str,
    extension: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

/// Every asset: the stylesheet of every page (system fonts, light and dark, phone width; no request off the
/// server) and the icon browsers show in tabs (without one, each page's automatic `/favicon.ico` request is a
/// 404 in the console).
const ASSETS: [Asset; 3] = [
    Asset {
        stem: "app",
        extension: "css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("../../../static/app.css"),
    },
    Asset {
        stem: "icon",
        extension: "svg",
        content_type: "image/svg+xml",
        bytes: include_bytes!("../../../static/icon.svg"),
    },
    Asset {
        stem: "timeline",
        extension: "js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../../static/timeline.js"),
    },
];

/// `<stem>.<first 16 hex digits of the SHA-256>.<extension>`, in the order of [`ASSETS`].
static NAMES: LazyLock<Vec<String>> = LazyLock::new(|| {
    ASSETS
        .iter()
        .map(|asset| {
            let digest = hex::encode(Sha256::digest(asset.bytes));
            format!("{}.{}.{}", asset.stem, &digest[..16], asset.extension)
        })
        .collect()
});

/// `/static/app.<hash>.css`: what pages link to.
pub fn css_path() -> String {
    path("app.css")
}

/// `/static/icon.<hash>.svg`: the pages' icon.
pub fn icon_path() -> String {
    path("icon.svg")
}

/// `/static/<stem>.<hash>.<extension>` of the asset named `<stem>.<extension>`: what a page links to.
/// A name not in [`ASSETS`] (a typo in a template) gets a path that is a 404, which the browser tests see
/// as a console error.
pub fn path(name: &str) -> String {
    ASSETS
        .iter()
        .position(|a| format!("{}.{}", a.stem, a.extension) == name)
        .map_or_else(
            || format!("/static/missing-{name}"),
            |index| format!("/static/{}", NAMES[index]),
        )
}

/// `GET /static/{name}`: the asset under its current hashed name, cacheable for a year and never
/// revalidated; any other name (an older build's included) is a 404.
pub(super) async fn get_asset(Path(name): Path<String>) -> Result<Response, ApiError> {
    let Some(index) = NAMES.iter().position(|n| *n == name) else {
        return Err(ApiError::not_found("asset"));
    };
    Ok((
        [
            (CONTENT_TYPE, ASSETS[index].content_type),
            (CACHE_CONTROL, "public, max-age=31536000, immutable"),
        ],
        ASSETS[index].bytes,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 14's budget: all the site's script and style together stay under 60 KB.
    #[test]
    fn scripts_and_styles_stay_under_60_kb() {
        let total: usize = ASSETS
            .iter()
            .filter(|a| matches!(a.extension, "js" | "css"))
            .map(|a| a.bytes.len())
            .sum();
        assert!(total < 60_000, "JS + CSS is {total} bytes");
    }

    #[test]
    fn a_name_not_compiled_in_is_a_path_that_does_not_exist() {
        assert!(path("timeline.js").starts_with("/static/timeline."));
        assert_eq!(path("nope.js"), "/static/missing-nope.js");
    }
}
