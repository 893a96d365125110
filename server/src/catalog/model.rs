//! The catalog's domain types: what goes into and comes out of [`super::Catalog`]. They are not wire types;
//! the HTTP layer converts them to and from `api` per surface (the inbound conversions that are pure plumbing,
//! `api::SyncItem` → [`PhotoUpsert`] and `api::Album` → [`AlbumUpsert`], live here so the routes and the tests
//! share them).
//!
//! Those two conversions are also where text a person typed or named (titles, captions, keywords, people, album
//! titles, file names) is put in Unicode NFC, whatever the sender did: an older agent, or another client, may send
//! the decomposed forms macOS 10.15 libraries hold, and the catalog must store, compare and search one form.
//! Identifiers, UTIs and zone names are left exactly as sent.

use std::fmt;

use chrono::{DateTime, FixedOffset, Utc};
use serde::Serialize;

use api::{AssetKind, ResourceType, UnavailableReason};
use unicode_normalization::{IsNormalized, UnicodeNormalization as _, is_nfc_quick};

use super::{Error, Result};

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// Wraps an id string as the catalog handed it out (ids are opaque; an unknown one is simply not found).
            pub fn new(id: impl Into<String>) -> Self {
                Self(id.into())
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

id_type!(
    /// A user's id (128 random bits, hex).
    UserId
);
id_type!(
    /// An API token's id (not the secret).
    TokenId
);
id_type!(
    /// The server's id of one of a user's Mac libraries.
    LibraryId
);
id_type!(
    /// The server's id of a photo row.
    PhotoId
);

/// What a token may do; each HTTP surface accepts exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// The Mac agent: sync, albums, uploads, stats.
    Client,
    /// Web frontends: read the catalog, presigned URLs.
    Web,
    /// Enrichment workers: lease jobs, post results.
    Worker,
    /// Administration.
    Admin,
}

impl Scope {
    /// Every scope.
    pub const ALL: [Scope; 4] = [Scope::Client, Scope::Web, Scope::Worker, Scope::Admin];

    /// The stored and CLI name.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Client => "client",
            Scope::Web => "web",
            Scope::Worker => "worker",
            Scope::Admin => "admin",
        }
    }

    /// Parses a name; [`Error::Invalid`] names the field `scope`.
    pub fn parse(name: &str) -> Result<Scope> {
        Self::ALL
            .into_iter()
            .find(|s| s.as_str() == name)
            .ok_or_else(|| Error::invalid("scope", format!("{name:?} is not client, web, worker or admin")))
    }
}

/// A user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Id.
    pub id: UserId,
    /// Unique login name.
    pub name: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

/// A token as listed: never its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    /// Id (what `token revoke` takes).
    pub id: TokenId,
    /// Owner.
    pub user_id: UserId,
    /// Owner's name, for listings.
    pub user_name: String,
    /// A label ("mac-mini agent").
    pub name: String,
    /// What it grants.
    pub scope: Scope,
    /// Issued at.
    pub created_at: DateTime<Utc>,
    /// Last successful authentication (updated at most once a minute).
    pub last_used_at: Option<DateTime<Utc>>,
    /// Revoked at; a revoked token never authenticates again.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A token's plaintext: shown once, never logged (`Debug` hides it).
#[derive(Clone, PartialEq, Eq)]
pub struct TokenSecret(String);

impl TokenSecret {
    pub(crate) fn new(plaintext: String) -> Self {
        Self(plaintext)
    }

    /// The plaintext, for writing to the token file or printing once.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for TokenSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenSecret(***)")
    }
}

/// A freshly issued token.
#[derive(Debug, Clone)]
pub struct NewToken {
    /// What listings will show.
    pub info: TokenInfo,
    /// The secret (`ips_` + 43 base64url characters); the catalog keeps only its SHA-256.
    pub secret: TokenSecret,
}

/// Who a token authenticates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated {
    /// The owner.
    pub user: User,
    /// What the token grants.
    pub scope: Scope,
    /// Which token it was (for logs and revocation).
    pub token_id: TokenId,
}

/// One Mac library of a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Library {
    /// Server id.
    pub id: LibraryId,
    /// Owner.
    pub user_id: UserId,
    /// The agent's stable id for the library.
    pub key: String,
}

/// One file of an asset as the Mac declares it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeclaredResource {
    /// Which file.
    pub resource_type: ResourceType,
    /// Declared size in bytes.
    pub size: u64,
    /// Lower-case hex SHA-256 when the agent hashed it; enables linking content the user already stores.
    pub sha256: Option<String>,
    /// Whether the Mac can upload it.
    pub available: bool,
    /// Why not, when not available.
    pub unavailable_reason: Option<UnavailableReason>,
    /// The file's path inside the Photos bundle: where its bytes are stored (see `storage::LibraryLayout`).
    /// Left out of the metadata hash when absent, so items without one hash as they always did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bundle_path: Option<String>,
}

/// One asset's metadata to upsert, keyed by `local_identifier` within a library.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PhotoUpsert {
    /// PhotoKit's `localIdentifier`: the identity within the library (1..=256 characters).
    pub local_identifier: String,
    /// iCloud cloud GUID.
    pub cloud_guid: Option<String>,
    /// Apple's stable fingerprint.
    pub fingerprint: Option<String>,
    /// Photo or video.
    pub kind: AssetKind,
    /// Photos' subtype.
    pub subtype: Option<String>,
    /// A Live Photo.
    pub live_photo: bool,
    /// Pixels.
    pub width: u32,
    /// Pixels.
    pub height: u32,
    /// Video duration.
    pub duration_ms: Option<u64>,
    /// Taken at, with the recorded offset (stored as epoch ms + offset seconds).
    pub taken_at: DateTime<FixedOffset>,
    /// IANA zone name.
    pub time_zone: Option<String>,
    /// Last change in Photos.
    pub modified_at: DateTime<FixedOffset>,
    /// Favourite.
    pub favorite: bool,
    /// Hidden.
    pub hidden: bool,
    /// In "Recently Deleted".
    pub trashed: bool,
    /// Degrees, -90..=90.
    pub latitude: Option<f64>,
    /// Degrees, -180..=180.
    pub longitude: Option<f64>,
    /// Import file name.
    pub original_filename: String,
    /// Uniform type identifier.
    pub uti: String,
    /// Edited in Photos.
    pub edited: bool,
    /// Title.
    pub title: Option<String>,
    /// Caption.
    pub caption: Option<String>,
    /// Keywords.
    pub keywords: Vec<String>,
    /// Named people.
    pub people: Vec<String>,
    /// Its files, at most one per type.
    pub resources: Vec<DeclaredResource>,
    /// Gone from the Mac: soft-delete (blobs kept).
    pub deleted: bool,
}

impl From<api::SyncItem> for PhotoUpsert {
    fn from(item: api::SyncItem) -> Self {
        Self {
            local_identifier: item.local_identifier,
            cloud_guid: item.cloud_guid,
            fingerprint: item.fingerprint,
            kind: item.kind,
            subtype: item.subtype,
            live_photo: item.live_photo,
            width: item.width,
            height: item.height,
            duration_ms: item.duration_ms,
            taken_at: item.taken_at,
            time_zone: item.time_zone,
            modified_at: item.modified_at,
            favorite: item.favorite,
            hidden: item.hidden,
            trashed: item.trashed,
            latitude: item.latitude,
            longitude: item.longitude,
            original_filename: nfc(item.original_filename),
            uti: item.uti,
            edited: item.edited,
            title: item.title.map(nfc),
            caption: item.caption.map(nfc),
            keywords: item.keywords.into_iter().map(nfc).collect(),
            people: item.people.into_iter().map(nfc).collect(),
            resources: item
                .resources
                .into_iter()
                .map(|r| DeclaredResource {
                    resource_type: r.resource_type,
                    size: r.size,
                    sha256: r.sha256,
                    available: r.available,
                    unavailable_reason: r.unavailable_reason,
                    bundle_path: r.bundle_path,
                })
                .collect(),
            deleted: item.deleted,
        }
    }
}

/// What happened to one item of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemOutcome {
    /// New to the catalog.
    Created,
    /// Metadata changed, or the photo was soft-deleted or restored.
    Updated,
    /// Nothing changed (also: a deletion of a photo the catalog does not have or already deleted).
    Unchanged,
    /// Not applied; the rest of the batch was.
    Rejected {
        /// Which field and why, for a person.
        reason: String,
    },
}

/// Per-item answer of [`super::Catalog::sync_photos`], in request order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemResult {
    /// As sent.
    pub local_identifier: String,
    /// The photo's id, unless rejected or never stored.
    pub photo_id: Option<PhotoId>,
    /// What happened.
    pub outcome: ItemOutcome,
    /// Resources the server still needs bytes for (pending or failed), in type order. Empty for rejected and
    /// deleted items.
    pub needs_upload: Vec<ResourceType>,
}

/// Answer of [`super::Catalog::sync_photos`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncBatchResult {
    /// One per item, in request order.
    pub results: Vec<ItemResult>,
    /// The user's version after the batch (unchanged when nothing changed).
    pub version: i64,
}

/// Album, folder or shared album.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum AlbumKind {
    /// A regular album with members.
    Album,
    /// A folder holding albums and folders.
    Folder,
    /// A shared album.
    Shared,
}

impl AlbumKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            AlbumKind::Album => "album",
            AlbumKind::Folder => "folder",
            AlbumKind::Shared => "shared",
        }
    }
}

/// One album or folder as the Mac has it; the list order is the display order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AlbumUpsert {
    /// The album's id on the Mac (1..=256 characters), unique in the list.
    pub album_key: String,
    /// Title.
    pub title: String,
    /// Kind.
    pub kind: AlbumKind,
    /// The containing folder's `album_key`.
    pub parent_key: Option<String>,
    /// Members by local identifier, in album order (a repeated identifier keeps its first position).
    pub members: Vec<String>,
    /// iCloud's GUID of the album (`ZGENERICALBUM.ZCLOUDGUID`): the same album synced from several Macs has
    /// the same one, and is listed once.
    pub cloud_guid: Option<String>,
}

impl From<api::Album> for AlbumUpsert {
    fn from(album: api::Album) -> Self {
        Self {
            album_key: album.id,
            title: nfc(album.title),
            kind: match album.kind {
                api::AlbumKind::Album => AlbumKind::Album,
                api::AlbumKind::Folder => AlbumKind::Folder,
                api::AlbumKind::Shared => AlbumKind::Shared,
            },
            parent_key: album.parent_id,
            members: album.members,
            cloud_guid: album.cloud_guid,
        }
    }
}

/// `text` in Unicode NFC; ASCII and already-composed text (nearly all of it) is kept without a copy.
fn nfc(text: String) -> String {
    if text.is_ascii() || is_nfc_quick(text.chars()) == IsNormalized::Yes {
        text
    } else {
        text.nfc().collect()
    }
}

/// Answer of [`super::Catalog::replace_albums`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AlbumsResult {
    /// New albums.
    pub created: u64,
    /// Albums whose title, kind, parent, position or members changed (or that came back).
    pub updated: u64,
    /// Albums as they were.
    pub unchanged: u64,
    /// Albums no longer listed, now soft-deleted.
    pub deleted: u64,
    /// Member identifiers the library does not have (skipped; a later call picks them up once synced).
    pub unknown_members: u64,
    /// The user's version afterwards.
    pub version: i64,
}
