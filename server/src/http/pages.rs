//! The web pages a browser signs in to and reads (issue 14): server-rendered HTML from askama templates in a
//! shared layout, one embedded stylesheet under a content-hashed name, and nothing fetched from anywhere
//! else. This module holds the sign-in (`login`), the session cookie (`cookies`, `session`), the limit on
//! failed sign-ins (`limiter`), the timeline and its scrubber (`timeline`), the photo grid (`grid`), the media
//! route (`media`) and the HTML 404; every page builds on
//! [`session::SignedIn`] and [`templates::Layout`].
//!
//! Pages are not in the OpenAPI document: they are HTML for people, not an API. Every page answer carries a
//! strict Content-Security-Policy (`'self'` only), `Cache-Control: no-store` (a page shows one user's data),
//! `Referrer-Policy: same-origin` and `X-Frame-Options: DENY`. Every form is protected against CSRF (see
//! `login`); the web stays read-only, so the forms are only sign-in and sign-out.

mod album_tree;
mod albums;
mod assets;
pub mod cookies;
pub mod grid;
mod limiter;
mod login;
mod media;
mod photo;
pub mod session;
mod tags;
pub mod templates;
mod timeline;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use askama::Template;
use axum::Router;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

pub use cookies::CookieKey;

use super::AppState;
use super::error::ApiError;

/// The pages' settings.
#[derive(Debug, Clone)]
pub struct WebSettings {
    /// Signs the session and CSRF cookies; every replica must have the same (`serve` keeps it in the catalog).
    pub cookie_key: CookieKey,
    /// How long a session lasts after sign-in (the cookie's `Max-Age` and the catalog's expiry).
    pub session_max_age: Duration,
    /// Mark cookies `Secure` on every answer: the server's public URL is `https://` (a proxy in front
    /// terminates TLS). Without it, only requests a proxy marks `X-Forwarded-Proto: https` get `Secure`.
    pub always_secure: bool,
}

impl Default for WebSettings {
    /// A random key (sessions then only work against this process), 30 days, `Secure` by the request.
    fn default() -> Self {
        Self {
            cookie_key: CookieKey::random(),
            session_max_age: Duration::from_secs(30 * 86_400),
            always_secure: false,
        }
    }
}

/// The pages and the stylesheet.
pub(super) fn router() -> Router<AppState> {
    // The dummy hash is made now, not by the first sign-in for an unknown name, which would then take
    // twice as long as a wrong password.
    let _ = crate::password::dummy_hash();
    Router::new()
        .route("/", get(timeline::get_timeline))
        .route("/months", get(timeline::get_months))
        .route("/media/{photo_id}/{variant}", get(media::get_media))
        .route("/login", get(login::get_login).post(login::post_login))
        .route("/logout", post(login::post_logout))
        .route("/photo/{photo_id}", get(photo::get_photo))
        .route("/albums", get(albums::get_albums))
        .route("/albums/{album_id}", get(albums::get_album))
        .route("/people", get(tags::get_people))
        .route("/keywords", get(tags::get_keywords))
        .route("/static/{name}", get(assets::get_asset))
}

/// First path segments of the JSON API (and its documents): an unknown path under them is always a JSON 404.
const API_SEGMENTS: &[&str] = &[
    "client",
    "my",
    "admin",
    "worker",
    "blobs",
    "healthz",
    "readyz",
    "metrics",
    "openapi.json",
    "docs",
    "api-docs",
    "static",
];

/// The fallback of the whole router: a browser asking for an unknown page (it accepts `text/html`, and the
/// path is not under the API) gets the 404 page; API clients keep the JSON envelope.
pub(super) async fn not_found(State(state): State<AppState>, uri: Uri, headers: HeaderMap) -> Response {
    let first = uri
        .path()
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or_default();
    let wants_html = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"));
    if !wants_html || API_SEGMENTS.contains(&first) {
        return ApiError::not_found("route").into_response();
    }
    let signed = session::current(&state, &headers).await.ok().flatten();
    let layout = match &signed {
        Some(signed) => templates::Layout {
            css: assets::css_path(),
            user: Some(signed.session.user.name.clone()),
            csrf: signed.csrf(&state),
            section: None,
        },
        None => signed_out_layout(),
    };
    let back = if signed.is_some() {
        "Go to your photos"
    } else {
        "Sign in"
    };
    message(
        StatusCode::NOT_FOUND,
        layout,
        "Page not found",
        "There is no page at this address.",
        (if signed.is_some() { "/" } else { "/login" }, back),
    )
}

/// The page of a failed request: its message and status for a 4xx (a bad filter, an unknown photo), a
/// plain "something went wrong" for anything else (the detail is in the log, not on the page).
pub fn error_page(layout: templates::Layout, error: &ApiError) -> Response {
    let status = error.status();
    if status == StatusCode::NOT_FOUND {
        return message(
            status,
            layout,
            "Page not found",
            "There is nothing at this address, or it is not yours.",
            ("/", "Go to your photos"),
        );
    }
    if status.is_client_error() {
        return message(
            status,
            layout,
            "That address is not right",
            error.message(),
            ("/", "Go to your photos"),
        );
    }
    message(
        status,
        layout,
        "Something went wrong",
        "The server could not show this page. Try again in a moment.",
        ("/", "Go to your photos"),
    )
}

/// The layout of a signed-in page.
pub fn signed_in_layout(state: &AppState, signed: &session::Signed) -> templates::Layout {
    templates::Layout {
        css: assets::css_path(),
        user: Some(signed.session.user.name.clone()),
        csrf: signed.csrf(state),
        section: None,
    }
}

/// The layout of a page shown signed out (no user, no logout form).
fn signed_out_layout() -> templates::Layout {
    templates::Layout {
        css: assets::css_path(),
        user: None,
        csrf: String::new(),
        section: None,
    }
}

/// A page saying one thing, with one link onwards.
fn message(
    status: StatusCode,
    layout: templates::Layout,
    heading: &str,
    text: &str,
    (href, link): (&str, &str),
) -> Response {
    render(
        status,
        &templates::Message {
            layout,
            heading: heading.to_owned(),
            message: text.to_owned(),
            link_href: href.to_owned(),
            link_text: link.to_owned(),
        },
    )
}

/// The Content-Security-Policy of every page: only this server's stylesheet, scripts (files under
/// `/static/`, never inline), images, videos, fetches and forms; no frames, no plugins.
const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; media-src 'self'; \
     script-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// A rendered page with the pages' headers.
pub fn render(status: StatusCode, page: &impl Template) -> Response {
    match page.render() {
        Ok(html) => {
            let mut response = (status, html).into_response();
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
            headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
            headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
            response
        }
        Err(error) => ApiError::internal(&error).into_response(),
    }
}

/// Whether this request reached us over HTTPS: the setting, or a proxy's `X-Forwarded-Proto: https`
/// (trusting a client that claims it only makes its cookie stricter).
pub fn is_https(state: &AppState, headers: &HeaderMap) -> bool {
    state.settings().web.always_secure
        || headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .is_some_and(|proto| proto.trim().eq_ignore_ascii_case("https"))
}

/// The client's address, for limiting and logging failed sign-ins: the peer of the connection, or, when
/// that peer is on loopback (a reverse proxy on the same machine), the address the proxy appended last to
/// `X-Forwarded-For`.
pub fn client_address(peer: Option<&ConnectInfo<SocketAddr>>, headers: &HeaderMap) -> String {
    let peer_ip = peer.map(|ConnectInfo(addr)| addr.ip());
    if peer_ip.is_none_or(|ip| ip.is_loopback()) {
        let forwarded = headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .and_then(|v| v.trim().parse::<IpAddr>().ok());
        if let Some(ip) = forwarded {
            return ip.to_string();
        }
    }
    peer_ip.map_or_else(|| "unknown".to_owned(), |ip| ip.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_address_trusts_forwarding_only_from_loopback() {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", "203.0.113.9, 198.51.100.7".parse().unwrap());
        let local = ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 5000)));
        let remote = ConnectInfo(SocketAddr::from(([192, 0, 2, 1], 5000)));
        assert_eq!(client_address(Some(&local), &headers), "198.51.100.7");
        assert_eq!(client_address(Some(&remote), &headers), "192.0.2.1");
        assert_eq!(client_address(Some(&local), &HeaderMap::new()), "127.0.0.1");
    }
}
