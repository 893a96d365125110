//! `user passwd NAME`: sets a user's web password and signs out their browser sessions.
//!
//! The password never comes from the command line (other users see `argv` in `ps`, shells keep it in their
//! history): it is read from `--password-file` or standard input, one line; on a terminal it is asked twice
//! with the echo off (nix's termios wrappers, already a dependency, instead of a prompt crate).

use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::path::Path;

use anyhow::{Context as _, Result, bail};

use crate::catalog::Catalog;
use crate::password;

/// Reads the password, checks it against the policy, hashes it and stores it; prints what was done.
pub(super) async fn run(catalog: &dyn Catalog, name: &str, password_file: Option<&Path>) -> Result<()> {
    let user = catalog.find_user_by_name(name).await?.with_context(|| {
        format!("no user named {name:?} (create it with `iphoto-server user add {name}`)")
    })?;
    let password = match password_file {
        Some(path) => first_line(
            &std::fs::read(path)
                .with_context(|| format!("--password-file: cannot read {}", path.display()))?,
        )
        .with_context(|| format!("--password-file {}", path.display()))?,
        None if std::io::stdin().is_terminal() => ask_twice(name)?,
        None => {
            let mut line = Vec::new();
            std::io::stdin()
                .lock()
                .read_until(b'\n', &mut line)
                .context("reading the password from standard input")?;
            first_line(&line).context("standard input")?
        }
    };
    password::check(&password)?;
    let hash = tokio::task::spawn_blocking(move || password::hash(&password)).await??;
    let revoked = catalog.set_password(&user.id, &hash, chrono::Utc::now()).await?;
    println!(
        "set the web password of {}; signed out {revoked} open session{}",
        user.name,
        if revoked == 1 { "" } else { "s" }
    );
    Ok(())
}

/// The first line of `bytes` without its line ending, as UTF-8.
fn first_line(bytes: &[u8]) -> Result<String> {
    let line = bytes.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    String::from_utf8(line.to_vec()).map_err(|_| anyhow::anyhow!("the password is not valid UTF-8"))
}

/// Asks on the terminal twice, echo off, and insists both answers match.
fn ask_twice(name: &str) -> Result<String> {
    let first = ask_hidden(&format!("New web password for {name}: "))?;
    let second = ask_hidden("Again: ")?;
    if first != second {
        bail!("the two passwords differ; nothing changed");
    }
    Ok(first)
}

/// One line from the terminal with its echo turned off, restored afterwards (also after a read error).
fn ask_hidden(prompt: &str) -> Result<String> {
    use nix::sys::termios::{LocalFlags, SetArg, tcgetattr, tcsetattr};
    let stdin = std::io::stdin();
    let saved = tcgetattr(&stdin).context("reading the terminal settings")?;
    let mut silent = saved.clone();
    silent.local_flags.remove(LocalFlags::ECHO);
    silent.local_flags.insert(LocalFlags::ECHONL);
    eprint!("{prompt}");
    std::io::stderr().flush()?;
    tcsetattr(&stdin, SetArg::TCSAFLUSH, &silent).context("turning the terminal echo off")?;
    let mut line = Vec::new();
    let read = stdin.lock().read_until(b'\n', &mut line);
    tcsetattr(&stdin, SetArg::TCSAFLUSH, &saved).context("restoring the terminal echo")?;
    read.context("reading the password")?;
    first_line(&line)
}

#[cfg(test)]
mod tests {
    use super::first_line;

    #[test]
    fn only_the_first_line_counts_without_its_ending() {
        assert_eq!(first_line(b"secret words\n").unwrap(), "secret words");
        assert_eq!(first_line(b"secret words\r\nmore").unwrap(), "secret words");
        assert_eq!(first_line(b" spaced ").unwrap(), " spaced ");
        assert_eq!(first_line(b"").unwrap(), "");
        assert!(first_line(b"\xff\xfe\n").is_err());
    }
}
