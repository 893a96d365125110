//! The wire contract between the agent, the server, web frontends and enrichment workers.
//!
//! Every type here is plain data: serde (camelCase JSON, RFC 3339 times, byte sizes, string ids) and a utoipa
//! schema so `openapi/openapi.json` publishes exactly what the code sends. This crate does no I/O and knows
//! nothing about HTTP routing, the catalog or storage: the server converts its catalog rows into these types per
//! surface, and the agent converts what it reads from a Photos library into them.
//!
//! Fields may be added; the names in `DESIGN.md` must not be renamed.

mod client;
mod error;
mod gallery;
mod history;
mod int;
mod jobs;
mod sync;
mod web;

pub use client::{
    Album, AlbumKind, AlbumsAnswer, AlbumsRequest, Counts, LibraryStats, PendingPage, PendingUpload, Stats,
};
pub use error::{ErrorBody, ErrorCode, ErrorDetail};
pub use gallery::{WebMonth, WebMonths, WebTag, WebTags, WebYear};
pub use history::{
    RestoreAnswer, RestoreRequest, WebChange, WebChanges, WebPhotoHistory, WebPhotoVersion,
    WebVersionResource,
};
pub use jobs::{
    JobAnswer, JobFailure, JobKind, JobResult, LeaseAnswer, LeasedJob, PreviewResult, ThumbnailResult,
};
pub use sync::{
    AssetKind, Resource, ResourceType, SyncAnswer, SyncItem, SyncOutcome, SyncRequest, SyncResult,
    UnavailableReason, UploadAnswer,
};
pub use web::{
    WebAlbum, WebAlbumPage, WebAlbums, WebEnrichment, WebListItem, WebPhoto, WebPhotoPage, WebResource,
};
