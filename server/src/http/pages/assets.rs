//! The stylesheet, compiled into the binary and served under a name that carries a hash of its content
//! (`/static/app.<hash>.css`), so it can be cached forever: a new build with other CSS has another name.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use sha2::{Digest as _, Sha256};

use crate::http::error::ApiError;

/// The stylesheet of every page (system fonts, light and dark, phone width; no request off the server).
const APP_CSS: &str = include_str!("../../../static/app.css");

/// `app.<first 16 hex digits of the SHA-256>.css`.
static APP_CSS_NAME: LazyLock<String> = LazyLock::new(|| {
    let digest = hex::encode(Sha256::digest(APP_CSS.as_bytes()));
    format!("app.{}.css", &digest[..16])
});

/// `/static/app.<hash>.css`: what pages link to.
pub fn css_path() -> String {
    format!("/static/{}", *APP_CSS_NAME)
}

/// `GET /static/{name}`: the asset under its current hashed name, cacheable for a year and never
/// revalidated; any other name (an older build's included) is a 404.
pub(super) async fn get_asset(Path(name): Path<String>) -> Result<Response, ApiError> {
    if name != *APP_CSS_NAME {
        return Err(ApiError::not_found("asset"));
    }
    Ok((
        [
            (CONTENT_TYPE, "text/css; charset=utf-8"),
            (CACHE_CONTROL, "public, max-age=31536000, immutable"),
        ],
        APP_CSS,
    )
        .into_response())
}
