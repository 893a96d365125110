//! The iPhoto sync server (built in its own issue).
