//! The Mac agent: reads a Photos library (or a plain folder) and syncs it to the server.
//!
//! [`library`] reads; [`sync`] diffs against the local [`state`] DB and talks to the server through
//! [`client`]; [`seed`] copies the originals into a bucket; [`cli`] is the `iphoto-agent` command line, kept here so `main.rs` stays a thin shim.

pub mod cli;
pub mod client;
pub mod error;
pub mod hash;
pub mod library;
pub mod seed;
pub mod state;
pub mod sync;

pub use error::{Error, Result};
