// The commit a binary is built from, for `--version` and the server's `iphoto_build_info`: `include!`d by the
// build scripts of iphoto-server, iphoto-agent and iphoto-mount, each of which calls `emit_git_commit()`.
//
// It sets `IPHOTO_GIT_COMMIT` for the crate's code (`env!("IPHOTO_GIT_COMMIT")`, `cli_support::version!()`):
// `IPHOTO_BUILD_COMMIT` when set (a build from a source tarball, a container build without `.git`), else
// `git rev-parse --short=12 HEAD`, else `unknown`. The script runs again when HEAD moves (the branch's ref, HEAD
// itself, packed refs), so a commit always rebuilds with the new id; only files that exist are watched, since
// Cargo reruns a script forever for a missing one.

fn emit_git_commit() {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-env-changed=IPHOTO_BUILD_COMMIT");
    let commit = std::env::var("IPHOTO_BUILD_COMMIT")
        .ok()
        .map(|commit| commit.trim().to_owned())
        .filter(|commit| !commit.is_empty())
        .or_else(git_head)
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo::rustc-env=IPHOTO_GIT_COMMIT={commit}");
}

/// HEAD's short id, with the files whose change moves it watched.
fn git_head() -> Option<String> {
    let commit = git(&["rev-parse", "--short=12", "HEAD"])?;
    let mut watched = vec!["HEAD".to_owned(), "packed-refs".to_owned()];
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watched.push(branch);
    }
    let here = std::path::PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR")?);
    for name in watched {
        if let Some(path) = git(&["rev-parse", "--git-path", &name]) {
            // Relative to the directory git ran in (a plain checkout); absolute in a linked worktree.
            let path = here.join(path);
            if path.exists() {
                println!("cargo::rerun-if-changed={}", path.display());
            }
        }
    }
    Some(commit)
}

/// One line of git's output, run in the crate's directory; `None` when git is missing or fails (no checkout).
fn git(args: &[&str]) -> Option<String> {
    let output = std::process::Command::new("git")
        .args(args)
        .current_dir(std::env::var_os("CARGO_MANIFEST_DIR")?)
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    let text = String::from_utf8(output.stdout).ok()?.trim().to_owned();
    (!text.is_empty()).then_some(text)
}
