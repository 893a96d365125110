//! The FUSE mount (built in its own issue).
