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
    /// The main nav's entry this page is under (marked `aria-current="page"`), if any.
    pub section: Option<Section>,
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

    /// This layout for a page under `section` of the main nav.
    #[must_use]
    pub fn at(self, section: Section) -> Self {
        Self {
            section: Some(section),
            ..self
        }
    }

    /// The main nav's links (only signed in: signed out there is nothing to go to), the current one marked.
    pub fn nav(&self) -> Vec<NavLink> {
        if self.user.is_none() {
            return Vec::new();
        }
        Section::ALL
            .iter()
            .map(|&section| NavLink {
                href: section.href(),
                label: section.label(),
                current: self.section == Some(section),
            })
            .collect()
    }
}

/// The entries of the main nav, in its order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// The timeline, `/`.
    Photos,
    /// `/albums` and each album.
    Albums,
    /// `/people`.
    People,
    /// `/keywords`.
    Keywords,
}

impl Section {
    const ALL: [Section; 4] = [Self::Photos, Self::Albums, Self::People, Self::Keywords];

    fn href(self) -> &'static str {
        match self {
            Self::Photos => "/",
            Self::Albums => "/albums",
            Self::People => "/people",
            Self::Keywords => "/keywords",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Self::Photos => "Photos",
            Self::Albums => "Albums",
            Self::People => "People",
            Self::Keywords => "Keywords",
        }
    }
}

/// One link of the main nav.
#[derive(Debug, Clone, Copy)]
pub struct NavLink {
    pub href: &'static str,
    pub label: &'static str,
    /// The page shown is this entry's.
    pub current: bool,
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
