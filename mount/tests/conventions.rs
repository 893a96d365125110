//! `iphoto-mount --version` names the commit the binary was built from (the flags' variables and the README's
//! table are checked by the unit tests in `main.rs`, where the parser is).

#![allow(clippy::unwrap_used, clippy::expect_used)]

const BIN: &str = env!("CARGO_BIN_EXE_iphoto-mount");
const NAME: &str = "iphoto-mount";

#[test]
fn version_names_the_commit_of_head() {
    harness::assert_version_names_the_commit(
        BIN,
        NAME,
        env!("CARGO_PKG_VERSION"),
        option_env!("IPHOTO_BUILD_COMMIT"),
        env!("CARGO_MANIFEST_DIR"),
    );
}
