//! The Mac agent (built in its own issue).
