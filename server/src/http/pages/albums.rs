//! `GET /albums`: Photos' folders as a tree of albums with their counts and covers; `GET /albums/{albumId}`:
//! one album's photos in the album's own order, keyset-paged with the JSON album route's signed cursors
//! (the page and `GET /my/photos/albums/{albumId}` share [`album_page`]). The album page's "More" link is
//! a plain link; `timeline.js` follows it as the reader scrolls (`partial=true` answers the grid and the
//! next link only), as on the timeline.

use std::collections::HashSet;

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use super::album_tree::{self, Line, album_href};
use super::grid::{self, Tile};
use super::session::SignedIn;
use super::templates::{Layout, Section};
use super::{error_page, render, signed_in_layout};
use crate::catalog::UserId;
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::http::extract::{Path, Query};
use crate::http::web::albums::album_page;

/// Folders an album's breadcrumb climbs at most: Photos nests far less; a longer chain is a loop.
const MAX_DEPTH: usize = 64;

/// The albums page.
#[derive(Debug, Template)]
#[template(path = "albums.html")]
pub struct Albums {
    pub layout: Layout,
    /// The tree, written out line by line.
    pub lines: Vec<Line>,
}

/// One album's page.
#[derive(Debug, Template)]
#[template(path = "album.html")]
pub struct Album {
    pub layout: Layout,
    pub title: String,
    /// The folders it is in, outermost first, each a link to its place on the albums page.
    pub crumbs: Vec<Crumb>,
    /// Photos shown in it (not hidden, trashed or deleted).
    pub count: u64,
    /// This page's photos, in the album's order.
    pub tiles: Vec<Tile>,
    /// The next page's URL, `None` at the end.
    pub next: Option<String>,
}

/// `GET /albums/{albumId}?partial=true`: the grid and the next link only, for endless scroll.
#[derive(Debug, Template)]
#[template(path = "album_items.html")]
pub struct AlbumItems {
    pub tiles: Vec<Tile>,
    pub next: Option<String>,
}

/// A folder of an album's breadcrumb.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crumb {
    /// `/albums#folder-{id}`.
    pub href: String,
    pub title: String,
}

/// Query of an album's page: the JSON route's paging, and the script's `partial`. Anything else is a 400.
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct AlbumPageParams {
    /// Page size, 1 to 500 (default 100).
    limit: Option<u32>,
    /// The signed cursor of the previous page's "More" link.
    cursor: Option<String>,
    /// Only the grid and the next link.
    partial: Option<bool>,
}

/// `GET /albums`.
pub(super) async fn get_albums(State(state): State<AppState>, SignedIn(signed): SignedIn) -> Response {
    let layout = signed_in_layout(&state, &signed).at(Section::Albums);
    let albums = match state.catalog().list_albums(&signed.session.user.id, None).await {
        Ok(albums) => albums,
        Err(error) => return error_page(layout, &error.into()),
    };
    render(
        StatusCode::OK,
        &Albums {
            layout,
            lines: album_tree::lines(&albums),
        },
    )
}

/// `GET /albums/{albumId}`: an unknown album, or another user's, is the 404 page; a bad cursor or query
/// the 400 page.
pub(super) async fn get_album(
    State(state): State<AppState>,
    SignedIn(signed): SignedIn,
    album_id: Result<Path<String>, ApiError>,
    params: Result<Query<AlbumPageParams>, ApiError>,
) -> Response {
    let layout = signed_in_layout(&state, &signed).at(Section::Albums);
    let answer = match (album_id, params) {
        (Ok(Path(album_id)), Ok(Query(params))) => {
            album(&state, &signed.session.user.id, &album_id, params, layout.clone()).await
        }
        (Err(error), _) | (_, Err(error)) => Err(error),
    };
    answer.unwrap_or_else(|error| error_page(layout, &error))
}

async fn album(
    state: &AppState,
    user_id: &UserId,
    album_id: &str,
    params: AlbumPageParams,
    layout: Layout,
) -> Result<Response, ApiError> {
    let page = album_page(state, user_id, album_id, params.limit, params.cursor.as_deref()).await?;
    let next = page.next_cursor.map(|cursor| {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        if let Some(limit) = params.limit {
            query.append_pair("limit", &limit.to_string());
        }
        query.append_pair("cursor", &cursor);
        format!("{}?{}", album_href(album_id), query.finish())
    });
    let tiles = grid::tiles(&page.rows);
    if params.partial == Some(true) {
        return Ok(render(StatusCode::OK, &AlbumItems { tiles, next }));
    }
    Ok(render(
        StatusCode::OK,
        &Album {
            layout,
            crumbs: crumbs(state, user_id, page.album.parent_id.as_deref()).await?,
            title: page.album.title,
            count: page.album.count,
            tiles,
            next,
        },
    ))
}

/// The folders above an album, outermost first, climbing from its folder one lookup at a time (a handful
/// of rows, not the whole album list with its counts). A loop or a missing folder ends the climb.
async fn crumbs(state: &AppState, user_id: &UserId, parent: Option<&str>) -> Result<Vec<Crumb>, ApiError> {
    let mut crumbs = Vec::new();
    let mut seen = HashSet::new();
    let mut next = parent.map(str::to_owned);
    while let Some(id) = next.take() {
        if crumbs.len() >= MAX_DEPTH || !seen.insert(id.clone()) {
            break;
        }
        let Some(folder) = state
            .catalog()
            .list_albums(user_id, Some(&id))
            .await?
            .into_iter()
            .next()
        else {
            break;
        };
        let anchor: String = url::form_urlencoded::byte_serialize(folder.id.as_bytes()).collect();
        crumbs.push(Crumb {
            href: format!("/albums#folder-{anchor}"),
            title: folder.title,
        });
        next = folder.parent_id;
    }
    crumbs.reverse();
    Ok(crumbs)
}
