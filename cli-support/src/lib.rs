//! What the command lines of `iphoto-server`, `iphoto-agent` and `iphoto-mount` share, so the three binaries
//! (and the thumbnail worker) behave alike for an operator:
//!
//! - [`logging`]: `--log` and `--log-json` ([`LogArgs`]) and the one subscriber setup: text on stderr without
//!   colour unless stderr is a terminal, or one JSON object per line.
//! - [`env`]: the environment-variable scheme (`IPHOTO_` and the flag's name, [`env::violations`]), parsing with
//!   renamed variables still read or reported ([`env::parse`]), and the check that the README's table of
//!   variables agrees with the clap definitions ([`env::readme_mismatches`]).
//! - [`version!`]: the version with the commit the binary was built from. The commit comes from each binary
//!   crate's build script (`build/commit.rs` here, `include!`d there), not from this crate, so only the binaries
//!   are rebuilt when HEAD moves.
//!
//! Nothing here knows about HTTP, the catalog or the store.

pub mod env;
pub mod logging;

pub use logging::{LogArgs, LogFormat};

/// `0.1.0 (commit 1a2b3c4d5e6f)`: the calling crate's version and the commit its build script recorded in
/// `IPHOTO_GIT_COMMIT` (see `cli-support/build/commit.rs`). For `#[command(version = cli_support::version!())]`.
#[macro_export]
macro_rules! version {
    () => {
        concat!(
            env!("CARGO_PKG_VERSION"),
            " (commit ",
            env!("IPHOTO_GIT_COMMIT"),
            ")"
        )
    };
}
