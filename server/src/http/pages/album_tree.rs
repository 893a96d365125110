//! Photos' folders as a tree: the catalog lists albums and folders flat, in the Mac's display order, each
//! naming its folder; the albums page nests them the way Photos' sidebar does. The tree is written out as a
//! sequence of lines (a folder opens, its children, the folder closes) so the template needs no recursion,
//! and it is walked with an explicit stack so a deep or looping folder chain from a bad sync can neither
//! overflow the stack nor hide an album.

use std::collections::{HashMap, HashSet};

use crate::catalog::{AlbumKind, AlbumSummary};

/// One line of the tree, in the order the page writes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// A folder starts; its children follow until the matching [`Line::Close`].
    Open(Folder),
    /// The folder opened last ends; `empty` when nothing was inside it.
    Close { empty: bool },
    /// An album (or a shared album).
    Album(Card),
}

/// A folder's heading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Folder {
    /// Catalog id: the folder's anchor on the page (`#folder-{id}`), which an album's breadcrumb links to.
    pub id: String,
    pub title: String,
}

/// An album as the tree shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Card {
    /// `/albums/{id}`.
    pub href: String,
    pub title: String,
    /// Photos shown in it (not hidden, trashed or deleted).
    pub count: u64,
    /// `/media/{coverId}/thumbnail`, once the cover has a thumbnail; a placeholder box until then.
    pub cover: Option<String>,
    /// A shared album (iCloud Shared Albums).
    pub shared: bool,
}

/// `/albums/{id}`, the id encoded for a path (catalog ids are hex, but a link never trusts that).
pub fn album_href(id: &str) -> String {
    let encoded: String = url::form_urlencoded::byte_serialize(id.as_bytes()).collect();
    format!("/albums/{encoded}")
}

/// The tree of `albums` (in display order): roots first in their order, each folder's children in theirs.
/// An item whose folder is unknown is a root; items caught in a folder loop come last, as roots.
pub fn lines(albums: &[AlbumSummary]) -> Vec<Line> {
    let ids: HashSet<&str> = albums.iter().map(|a| a.id.as_str()).collect();
    let mut children: HashMap<&str, Vec<usize>> = HashMap::new();
    let mut roots = Vec::new();
    for (index, album) in albums.iter().enumerate() {
        match album
            .parent_id
            .as_deref()
            .filter(|parent| ids.contains(parent) && *parent != album.id)
        {
            Some(parent) => children.entry(parent).or_default().push(index),
            None => roots.push(index),
        }
    }
    let mut walk = Walk {
        albums,
        children: &children,
        seen: vec![false; albums.len()],
        out: Vec::with_capacity(albums.len() * 2),
    };
    for root in roots {
        walk.from(root);
    }
    for index in 0..albums.len() {
        walk.from(index);
    }
    walk.out
}

struct Walk<'a> {
    albums: &'a [AlbumSummary],
    children: &'a HashMap<&'a str, Vec<usize>>,
    seen: Vec<bool>,
    out: Vec<Line>,
}

/// A folder being written: its index, the next child to look at, and whether any child was written.
struct Open {
    index: usize,
    next: usize,
    written: bool,
}

impl Walk<'_> {
    /// Writes `start` and everything under it, unless it was written already.
    fn from(&mut self, start: usize) {
        if self.seen[start] {
            return;
        }
        let mut stack = Vec::new();
        self.enter(start, &mut stack);
        while let Some(top) = stack.last_mut() {
            let kids = self
                .children
                .get(self.albums[top.index].id.as_str())
                .map_or(&[][..], Vec::as_slice);
            match kids.get(top.next) {
                Some(&kid) => {
                    top.next += 1;
                    if !self.seen[kid] {
                        top.written = true;
                        self.enter(kid, &mut stack);
                    }
                }
                None => {
                    self.out.push(Line::Close { empty: !top.written });
                    stack.pop();
                }
            }
        }
    }

    /// Writes one item: an album's card, or a folder's opening (then pushed, to write its children).
    fn enter(&mut self, index: usize, stack: &mut Vec<Open>) {
        self.seen[index] = true;
        let album = &self.albums[index];
        match album.kind {
            AlbumKind::Folder => {
                self.out.push(Line::Open(Folder {
                    id: album.id.clone(),
                    title: album.title.clone(),
                }));
                stack.push(Open {
                    index,
                    next: 0,
                    written: false,
                });
            }
            AlbumKind::Album | AlbumKind::Shared => self.out.push(Line::Album(Card {
                href: album_href(&album.id),
                title: album.title.clone(),
                count: album.count,
                cover: album
                    .cover
                    .as_ref()
                    .filter(|cover| cover.thumbnail_key.is_some())
                    .map(|cover| format!("/media/{}/thumbnail", cover.id.as_str())),
                shared: album.kind == AlbumKind::Shared,
            })),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(id: &str, kind: AlbumKind, parent: Option<&str>) -> AlbumSummary {
        AlbumSummary {
            id: id.to_owned(),
            title: format!("T{id}"),
            kind,
            parent_id: parent.map(str::to_owned),
            count: 0,
            cover: None,
        }
    }

    /// The lines as a compact string: `Z[Y[x]]` for album x in folder Y in folder Z, `F[]` for an empty one.
    fn shape(lines: &[Line]) -> String {
        lines
            .iter()
            .map(|line| match line {
                Line::Open(folder) => format!("{}[", folder.id),
                Line::Close { empty } => if *empty { "]e" } else { "]" }.to_owned(),
                Line::Album(card) => card.href.trim_start_matches("/albums/").to_owned(),
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn folders_nest_their_children_in_display_order() {
        use AlbumKind::{Album, Folder};
        let albums = [
            item("b", Album, Some("Y")),
            item("Z", Folder, None),
            item("top", Album, None),
            item("Y", Folder, Some("Z")),
            item("a", Album, Some("Y")),
            item("c", Album, Some("Z")),
            item("E", Folder, Some("Z")),
        ];
        assert_eq!(shape(&lines(&albums)), "Z[ Y[ b a ] c E[ ]e ] top");
    }

    #[test]
    fn unknown_folders_and_loops_lose_nothing() {
        use AlbumKind::{Album, Folder};
        let albums = [
            item("orphan", Album, Some("gone")),
            item("L1", Folder, Some("L2")),
            item("L2", Folder, Some("L1")),
            item("x", Album, Some("L2")),
            item("self", Folder, Some("self")),
        ];
        assert_eq!(shape(&lines(&albums)), "orphan self[ ]e L1[ L2[ x ] ]");
    }

    #[test]
    fn a_deep_chain_does_not_recurse() {
        let depth = 100_000;
        let mut albums: Vec<AlbumSummary> = (0..depth)
            .map(|i| {
                let parent = (i > 0).then(|| format!("f{}", i - 1));
                item(&format!("f{i}"), AlbumKind::Folder, parent.as_deref())
            })
            .collect();
        albums.push(item("leaf", AlbumKind::Album, Some(&format!("f{}", depth - 1))));
        let lines = lines(&albums);
        assert_eq!(lines.len(), 2 * depth + 1);
        assert_eq!(
            lines[depth],
            Line::Album(Card {
                href: "/albums/leaf".to_owned(),
                title: "Tleaf".to_owned(),
                count: 0,
                cover: None,
                shared: false,
            })
        );
    }
}
