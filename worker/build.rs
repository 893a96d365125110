//! Records the commit the binary is built from in `IPHOTO_GIT_COMMIT`, for `--version`: the logic is shared by
//! the binaries' build scripts (`cli-support/build/commit.rs`).

include!("../cli-support/build/commit.rs");

fn main() {
    emit_git_commit();
}
