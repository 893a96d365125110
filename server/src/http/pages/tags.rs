//! `GET /people` and `GET /keywords`: the names the user's photos carry, each with how many photos carry it,
//! in the order of the JSON lists (`GET /my/photos/people`, `/keywords`: most photos first, then by name),
//! each a link to the timeline filtered to exactly those photos (`/?person=NAME`, `/?keyword=NAME`).

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use super::session::SignedIn;
use super::templates::{Layout, Section};
use super::{error_page, render, signed_in_layout};
use crate::catalog::TagKind;
use crate::http::AppState;
use crate::http::web::tags::tag_counts;

/// The people or the keywords page.
#[derive(Debug, Template)]
#[template(path = "tags.html")]
pub struct Tags {
    pub layout: Layout,
    /// "People" or "Keywords".
    pub heading: &'static str,
    pub items: Vec<TagLink>,
    /// The empty state: what to do to have names here.
    pub empty_title: &'static str,
    pub empty_text: &'static str,
}

/// One name and its photos.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagLink {
    pub name: String,
    pub count: u64,
    /// The timeline filtered to the name.
    pub href: String,
}

/// `GET /people`.
pub(super) async fn get_people(state: State<AppState>, signed: SignedIn) -> Response {
    page(state, signed, TagKind::Person).await
}

/// `GET /keywords`.
pub(super) async fn get_keywords(state: State<AppState>, signed: SignedIn) -> Response {
    page(state, signed, TagKind::Keyword).await
}

async fn page(State(state): State<AppState>, SignedIn(signed): SignedIn, kind: TagKind) -> Response {
    let (parameter, section) = match kind {
        TagKind::Person => ("person", Section::People),
        TagKind::Keyword => ("keyword", Section::Keywords),
    };
    let layout = signed_in_layout(&state, &signed).at(section);
    let counts = match tag_counts(&state, &signed.session.user.id, kind).await {
        Ok(counts) => counts,
        Err(error) => return error_page(layout, &error),
    };
    let items = counts
        .into_iter()
        .map(|tag| TagLink {
            href: timeline_href(parameter, &tag.name),
            name: tag.name,
            count: tag.count,
        })
        .collect();
    let page = match kind {
        TagKind::Person => Tags {
            layout,
            heading: "People",
            items,
            empty_title: "No people yet — name them in Photos on your Mac",
            empty_text: "Name faces in the People album of Photos; the agent (iphoto-agent sync) brings \
                         the names here with its next sync.",
        },
        TagKind::Keyword => Tags {
            layout,
            heading: "Keywords",
            items,
            empty_title: "No keywords yet — add them in Photos on your Mac",
            empty_text: "Add keywords in a photo's Info window in Photos; the agent (iphoto-agent sync) \
                         brings them here with its next sync.",
        },
    };
    render(StatusCode::OK, &page)
}

/// `/?{parameter}={name}`, the name form-encoded (the timeline's query decodes it back exactly).
fn timeline_href(parameter: &str, name: &str) -> String {
    let encoded: String = url::form_urlencoded::byte_serialize(name.as_bytes()).collect();
    format!("/?{parameter}={encoded}")
}

#[cfg(test)]
mod tests {
    use super::timeline_href;

    #[test]
    fn names_are_encoded_for_the_query() {
        assert_eq!(timeline_href("person", "Zoë Ann"), "/?person=Zo%C3%AB+Ann");
        assert_eq!(
            timeline_href("keyword", "a&b=c/d#e"),
            "/?keyword=a%26b%3Dc%2Fd%23e"
        );
        assert_eq!(timeline_href("keyword", "beach"), "/?keyword=beach");
    }
}
