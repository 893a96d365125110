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
const ASSETS: [Asset; 2] = [
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
    format!("/static/{}", NAMES[0])
}

/// `/static/icon.<hash>.svg`: the pages' icon.
pub fn icon_path() -> String {
    format!("/static/{}", NAMES[1])
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
