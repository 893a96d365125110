//! The iPhoto sync server: the catalog (SQLite or PostgreSQL), the HTTP surfaces (client, web, worker, ops),
//! the in-process enrichment workers (the `worker` crate's loop, over loopback HTTP) and the admin CLI.
//! `main.rs` only parses configuration and calls [`app::run`].

pub mod app;
pub mod catalog;
pub mod config;
pub mod gc;
pub mod http;
pub mod password;
pub mod relocate;
