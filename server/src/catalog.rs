//! The catalog port (being built).
