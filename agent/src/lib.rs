//! The Mac agent: reads a Photos library (or a plain folder) and syncs it to the server.
//!
//! So far this crate holds the reader ([`library`]); the sync loop and uploader build on it.

pub mod library;
