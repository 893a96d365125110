//! The pages' askama templates (`server/templates/`), compiled into the binary and HTML-escaped by default.

use askama::Template;

/// What the base layout (`base.html`) shows on every page.
#[derive(Debug, Clone)]
pub struct Layout {
    /// The stylesheet's hashed path.
    pub css: String,
    /// The signed-in user's name; `None` on signed-out pages (no logout button then).
    pub user: Option<String>,
    /// The CSRF token the page's forms carry (the logout button's, or the login form's).
    pub csrf: String,
}

impl Layout {
    /// The icon's hashed path.
    pub fn icon(&self) -> String {
        super::assets::icon_path()
    }

    /// The hashed path of a page's script (`timeline.js`).
    pub fn script(&self, name: &str) -> String {
        super::assets::path(name)
    }
}

/// `GET /login`.
#[derive(Debug, Template)]
#[template(path = "login.html")]
pub struct Login {
    pub layout: Layout,
    /// Where to go after signing in (a local path, checked).
    pub next: String,
    /// The name typed last time, kept after a failure.
    pub username: String,
    /// Why the last attempt failed.
    pub error: Option<String>,
}

/// A page that only says something: errors (403, 404, 429) and the like.
#[derive(Debug, Template)]
#[template(path = "message.html")]
pub struct Message {
    pub layout: Layout,
    pub heading: String,
    pub message: String,
    pub link_href: String,
    pub link_text: String,
}
