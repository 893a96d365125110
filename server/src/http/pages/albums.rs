//! `GET /albums`: Photos' folders as a tree of albums with their counts and covers; `GET /albums/{albumId}`:
//! one album's photos in the album's own order, keyset-paged with the JSON album route's signed cursors
//! (the page and `GET /my/photos/albums/{albumId}` share [`web::albums::album_page`]).

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use super::album_tree::{self, Line};
use super::session::SignedIn;
use super::templates::{Layout, Section};
use super::{error_page, render, signed_in_layout};
use crate::http::AppState;

/// The albums page.
#[derive(Debug, Template)]
#[template(path = "albums.html")]
pub struct Albums {
    pub layout: Layout,
    /// The tree, written out line by line.
    pub lines: Vec<Line>,
}

/// `GET /albums`.
pub(super) async fn get_albums(State(state): State<AppState>, SignedIn(signed): SignedIn) -> Response {
    let albums = match state
        .catalog()
        .list_albums(&signed.session.user.id, None)
        .await
    {
        Ok(albums) => albums,
        Err(error) => return error_page(&state, &signed, &error.into()),
    };
    render(
        StatusCode::OK,
        &Albums {
            layout: signed_in_layout(&state, &signed).at(Section::Albums),
            lines: album_tree::lines(&albums),
        },
    )
}
