//! The environment-variable scheme: every flag of every binary reads `IPHOTO_` followed by the flag's long
//! name in capitals, `-` as `_` (`--s3-bucket` is `IPHOTO_S3_BUCKET`), with the subcommand in between where the
//! flag alone would be ambiguous or read by another binary with another meaning (`iphoto-mount mount --prefix`
//! is `IPHOTO_MOUNT_PREFIX`, `iphoto-server gc --grace` is `IPHOTO_GC_GRACE`, the same variable as `serve
//! --gc-grace`). One variable means one setting wherever it is read.
//!
//! Names from before the scheme are listed as [`Renamed`]: the ones DESIGN.md documents (the storage factory's
//! `STORAGE_BACKEND`, `S3_*` and the catalog's `DATABASE_URL`) are still read, with a warning, when the new
//! name is unset; the others are only reported, so a stale settings file does not silently change nothing.
//!
//! [`violations`] and [`readme_mismatches`] are for tests: they walk a parser's `clap::Command`, so a flag
//! without a variable, a variable off the scheme or a README table that drifted from the code fails a test.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;

use clap::{ArgAction, Command};

/// The scheme's prefix.
pub const PREFIX: &str = "IPHOTO_";

/// A variable renamed to the scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Renamed {
    /// The name before the scheme.
    pub old: &'static str,
    /// The name now.
    pub new: &'static str,
    /// Whether `old` is still read (when `new` is unset): only for names DESIGN.md documents.
    pub still_read: bool,
}

impl Renamed {
    /// `old` is still read for `new`, with a warning that it is deprecated.
    pub const fn deprecated(old: &'static str, new: &'static str) -> Self {
        Self {
            old,
            new,
            still_read: true,
        }
    }

    /// `old` is no longer read; a warning says to set `new`.
    pub const fn retired(old: &'static str, new: &'static str) -> Self {
        Self {
            old,
            new,
            still_read: false,
        }
    }
}

/// Parses the process's command line as `P` (exiting with clap's message on an error, as `P::parse` does),
/// reading the deprecated names of `renamed` that are set in place of their unset new names. A warning per
/// old name in the environment waits for [`crate::logging::init`].
pub fn parse<P: clap::Parser>(renamed: &[Renamed]) -> P {
    let (command, warnings) = with_renamed(P::command(), renamed, &|name| std::env::var_os(name));
    for warning in warnings {
        crate::logging::queue_warning(warning);
    }
    let mut matches = command.get_matches();
    P::from_arg_matches_mut(&mut matches).unwrap_or_else(|error| error.format(&mut P::command()).exit())
}

/// `command` with each arg whose variable is the new name of a set, still-read old name (the new one unset)
/// switched to read the old name, and a warning per old name set. `lookup` reads the environment.
pub fn with_renamed(
    command: Command,
    renamed: &[Renamed],
    lookup: &dyn Fn(&str) -> Option<OsString>,
) -> (Command, Vec<String>) {
    let mut warnings = Vec::new();
    let mut switches = Vec::new();
    for name in renamed {
        if lookup(name.old).is_none() {
            continue;
        }
        if lookup(name.new).is_some() {
            warnings.push(format!(
                "{} is set but ignored: {} is set too (and {} is no longer read)",
                name.old, name.new, name.old
            ));
        } else if name.still_read {
            warnings.push(format!(
                "{} is deprecated: read for {} this time; rename it to {}",
                name.old, name.new, name.new
            ));
            switches.push(*name);
        } else {
            warnings.push(format!(
                "{} is no longer read: set {} instead",
                name.old, name.new
            ));
        }
    }
    (switch_env(command, &switches), warnings)
}

fn switch_env(command: Command, switches: &[Renamed]) -> Command {
    if switches.is_empty() {
        return command;
    }
    command
        .mut_args(|arg| {
            let switch = arg
                .get_env()
                .and_then(|env| switches.iter().find(|name| env == name.new));
            match switch {
                Some(name) => arg.env(name.old),
                None => arg,
            }
        })
        .mut_subcommands(|sub| switch_env(sub, switches))
}

/// A flag (not a positional argument) of a command or one of its subcommands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flag {
    /// The subcommands leading to it, space-separated (`token create`; empty at the top).
    pub path: String,
    /// The long name, without `--`.
    pub long: String,
    /// The environment variable it reads.
    pub env: Option<String>,
    /// Its default, as clap shows it (several values joined by `,`).
    pub default: Option<String>,
    /// A switch: present or not (`--log-json`), default off.
    pub switch: bool,
    /// Hidden from `--help` (test knobs): not documented.
    pub hidden: bool,
}

/// Every flag of `command` and its subcommands (help and version excepted).
pub fn flags(command: &Command) -> Vec<Flag> {
    let mut out = Vec::new();
    collect(command, "", &mut out);
    out
}

fn collect(command: &Command, path: &str, out: &mut Vec<Flag>) {
    for arg in command.get_arguments() {
        if arg.is_positional() || matches!(arg.get_id().as_str(), "help" | "version") {
            continue;
        }
        let defaults: Vec<String> = arg
            .get_default_values()
            .iter()
            .map(|value| value.to_string_lossy().into_owned())
            .collect();
        out.push(Flag {
            path: path.to_owned(),
            long: arg.get_long().unwrap_or(arg.get_id().as_str()).to_owned(),
            env: arg.get_env().map(|env| env.to_string_lossy().into_owned()),
            default: (!defaults.is_empty()).then(|| defaults.join(",")),
            switch: matches!(arg.get_action(), ArgAction::SetTrue),
            hidden: arg.is_hide_set(),
        });
    }
    for sub in command.get_subcommands() {
        let path = format!("{path} {}", sub.get_name()).trim().to_owned();
        collect(sub, &path, out);
    }
}

/// `--s3-bucket` → `S3_BUCKET`: how a flag's name ends its variable.
pub fn variable_suffix(long: &str) -> String {
    long.to_ascii_uppercase().replace('-', "_")
}

/// What breaks the scheme in `command`: a flag without a variable, a variable not `IPHOTO_[A-Z0-9_]*` ending
/// in the flag's name, and one variable read by flags with different defaults. Empty when all is well.
pub fn violations(command: &Command) -> Vec<String> {
    let mut found = Vec::new();
    let mut defaults: BTreeMap<String, (String, Option<String>)> = BTreeMap::new();
    for flag in flags(command) {
        let at = format!("{} {} --{}", command.get_name(), flag.path, flag.long).replace("  ", " ");
        let Some(env) = &flag.env else {
            found.push(format!("{at} reads no environment variable"));
            continue;
        };
        let well_formed = env.starts_with(PREFIX)
            && env.len() > PREFIX.len()
            && env
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
        let suffix = variable_suffix(&flag.long);
        if !well_formed || !(env == &format!("{PREFIX}{suffix}") || env.ends_with(&format!("_{suffix}"))) {
            found.push(format!("{at} reads {env}: expected {PREFIX}[QUALIFIER_]{suffix}"));
        }
        match defaults.get(env) {
            Some((other, default)) if *default != flag.default => found.push(format!(
                "{env} is read by {other} (default {default:?}) and {at} (default {:?}): one variable, one setting",
                flag.default
            )),
            Some(_) => {}
            None => {
                defaults.insert(env.clone(), (at, flag.default.clone()));
            }
        }
    }
    found
}

/// A row of a README table of variables: `| variable | flag | default | meaning |`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocRow {
    /// The heading the table is under (it names the binaries the rows are for).
    pub heading: String,
    /// The variable.
    pub variable: String,
    /// The `--flags` named in the flag cell.
    pub flags: BTreeSet<String>,
    /// The default cell, as written.
    pub default: String,
}

/// Every row of the README's tables whose first cell is a backquoted `IPHOTO_…` variable, with its heading.
pub fn readme_rows(readme: &str) -> Vec<DocRow> {
    let mut heading = String::new();
    let mut rows = Vec::new();
    for line in readme.lines() {
        let line = line.trim();
        if line.starts_with('#') {
            heading = line.trim_start_matches('#').trim().to_owned();
            continue;
        }
        if !line.starts_with("| `") {
            continue;
        }
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        let [variable, flag, default, _meaning] = cells.as_slice() else {
            continue;
        };
        let variable = variable.trim_matches('`');
        if !variable.starts_with(PREFIX) {
            continue;
        }
        let flags = flag
            .split('`')
            .flat_map(str::split_whitespace)
            .filter_map(|word| word.strip_prefix("--"))
            .map(|long| long.trim_end_matches(',').to_owned())
            .collect();
        rows.push(DocRow {
            heading: heading.clone(),
            variable: variable.to_owned(),
            flags,
            default: (*default).to_owned(),
        });
    }
    rows
}

/// Where the README's tables and `command` (the parser of `binary`) disagree: a documented flag's variable
/// missing from the tables under a heading naming `binary`, a row there for a variable `binary` does not read,
/// other flags than the row names, or another default than the row's (a default is the first backquoted
/// value of its cell; a switch's is the word `off`, an empty one's `empty`). Hidden flags are not documented.
/// Empty when they agree.
pub fn readme_mismatches(command: &Command, binary: &str, readme: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut documented: BTreeMap<String, DocRow> = BTreeMap::new();
    let names_binary = |heading: &str| {
        heading
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
            .any(|word| word == binary)
    };
    for row in readme_rows(readme)
        .into_iter()
        .filter(|row| names_binary(&row.heading))
    {
        if documented.contains_key(&row.variable) {
            found.push(format!("{} is in the README twice for {binary}", row.variable));
        }
        documented.insert(row.variable.clone(), row);
    }
    let mut read: BTreeMap<String, Vec<Flag>> = BTreeMap::new();
    for flag in flags(command).into_iter().filter(|flag| !flag.hidden) {
        if let Some(env) = flag.env.clone() {
            read.entry(env).or_default().push(flag);
        }
    }
    for (env, flags) in &read {
        let Some(row) = documented.get(env) else {
            found.push(format!(
                "{env} ({binary} --{}) is missing from the README's tables for {binary}",
                flags[0].long
            ));
            continue;
        };
        let longs: BTreeSet<String> = flags.iter().map(|flag| flag.long.clone()).collect();
        if longs != row.flags {
            found.push(format!(
                "{env}: the README names flags {:?}, {binary} has {longs:?}",
                row.flags
            ));
        }
        let expected = match (&flags[0].default, flags[0].switch) {
            (_, true) => Some("off".to_owned()),
            (Some(default), false) if default.is_empty() => Some("empty".to_owned()),
            (Some(default), false) => Some(format!("`{default}`")),
            (None, false) => None,
        };
        if let Some(expected) = expected {
            let written = if expected.starts_with('`') {
                first_value(&row.default)
            } else {
                row.default
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_owned()
            };
            if written != expected {
                found.push(format!(
                    "{env}: the README's default is {:?}, {binary}'s is {expected}",
                    row.default
                ));
            }
        }
    }
    for env in documented.keys() {
        if !read.contains_key(env) {
            found.push(format!(
                "the README documents {env} for {binary}, which reads no such variable"
            ));
        }
    }
    found
}

/// The first backquoted value of a cell, with its backquotes; the whole cell when there is none.
fn first_value(cell: &str) -> String {
    let mut parts = cell.split('`');
    match (parts.next(), parts.next()) {
        (Some(_), Some(value)) => format!("`{value}`"),
        _ => cell.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use clap::{Arg, Command};

    use super::*;

    fn sample() -> Command {
        Command::new("tool")
            .arg(
                Arg::new("log_json")
                    .long("log-json")
                    .env("IPHOTO_LOG_JSON")
                    .action(ArgAction::SetTrue),
            )
            .subcommand(
                Command::new("serve")
                    .arg(
                        Arg::new("gc_grace")
                            .long("gc-grace")
                            .env("IPHOTO_GC_GRACE")
                            .default_value("24h"),
                    )
                    .arg(Arg::new("bucket").long("s3-bucket").env("IPHOTO_S3_BUCKET"))
                    .arg(Arg::new("knob").long("knob").env("IPHOTO_KNOB").hide(true)),
            )
            .subcommand(
                Command::new("gc")
                    .arg(
                        Arg::new("grace")
                            .long("grace")
                            .env("IPHOTO_GC_GRACE")
                            .default_value("24h"),
                    )
                    .arg(Arg::new("target").required(false)),
            )
    }

    #[test]
    fn a_well_named_command_has_no_violations() {
        assert_eq!(violations(&sample()), Vec::<String>::new());
    }

    #[test]
    fn violations_name_the_flag() {
        let command = Command::new("tool").subcommand(
            Command::new("serve")
                .arg(Arg::new("listen").long("listen").env("LISTEN"))
                .arg(Arg::new("port").long("port"))
                .arg(Arg::new("url").long("server").env("IPHOTO_SERVER_URL"))
                .arg(
                    Arg::new("a")
                        .long("grace")
                        .env("IPHOTO_GC_GRACE")
                        .default_value("1h"),
                )
                .arg(
                    Arg::new("b")
                        .long("gc-grace")
                        .env("IPHOTO_GC_GRACE")
                        .default_value("24h"),
                ),
        );
        let found = violations(&command);
        assert_eq!(found.len(), 4, "{found:#?}");
        assert!(
            found[0].contains("tool serve --listen reads LISTEN"),
            "{found:#?}"
        );
        assert!(
            found[1].contains("--port reads no environment variable"),
            "{found:#?}"
        );
        assert!(
            found[2].contains("IPHOTO_SERVER_URL: expected IPHOTO_[QUALIFIER_]SERVER"),
            "{found:#?}"
        );
        assert!(found[3].contains("one variable, one setting"), "{found:#?}");
    }

    const README: &str = "\
# Tool

| variable | flag | default | meaning |
|---|---|---|---|
| `NOT_OURS` | `--x` | — | ignored: not a scheme variable |

### tool

| variable | flag | default | meaning |
|---|---|---|---|
| `IPHOTO_LOG_JSON` | `--log-json` | off | JSON |
| `IPHOTO_GC_GRACE` | `serve --gc-grace`, `gc --grace` | `24h` (any duration) | grace |
| `IPHOTO_S3_BUCKET` | `--s3-bucket` | — | bucket |

### other-tool

| `IPHOTO_ELSEWHERE` | `--elsewhere` | — | another binary's |
";

    #[test]
    fn the_sample_readme_agrees_with_the_sample_command() {
        assert_eq!(readme_mismatches(&sample(), "tool", README), Vec::<String>::new());
        let rows = readme_rows(README);
        assert_eq!(rows.len(), 4);
        assert_eq!(
            rows[1].flags,
            BTreeSet::from(["gc-grace".to_owned(), "grace".to_owned()])
        );
    }

    #[test]
    fn drift_between_readme_and_command_is_reported() {
        let drifted = README
            .replace("| `IPHOTO_S3_BUCKET` | `--s3-bucket` | — | bucket |\n", "")
            .replace("`24h` (any duration)", "`12h`")
            .replace("`serve --gc-grace`, `gc --grace`", "`--gc-grace`")
            .replace("| `IPHOTO_LOG_JSON` | `--log-json` | off | JSON |", "| `IPHOTO_LOG_JSON` | `--log-json` | on | JSON |\n| `IPHOTO_GONE` | `--gone` | — | removed |");
        let found = readme_mismatches(&sample(), "tool", &drifted);
        assert_eq!(found.len(), 5, "{found:#?}");
        let all = found.join("\n");
        for expected in [
            "IPHOTO_GC_GRACE: the README names flags {\"gc-grace\"}",
            "IPHOTO_GC_GRACE: the README's default is \"`12h`\", tool's is `24h`",
            "IPHOTO_LOG_JSON: the README's default is \"on\", tool's is off",
            "IPHOTO_S3_BUCKET (tool --s3-bucket) is missing",
            "the README documents IPHOTO_GONE for tool",
        ] {
            assert!(all.contains(expected), "{expected} not in {all}");
        }
    }

    #[test]
    fn deprecated_names_are_read_only_when_the_new_one_is_unset() {
        let renamed = [
            Renamed::deprecated("S3_BUCKET", "IPHOTO_S3_BUCKET"),
            Renamed::deprecated("GC_GRACE", "IPHOTO_GC_GRACE"),
            Renamed::retired("LOG_JSON", "IPHOTO_LOG_JSON"),
            Renamed::deprecated("UNSET", "IPHOTO_UNSET"),
        ];
        let env = |name: &str| {
            ["S3_BUCKET", "GC_GRACE", "IPHOTO_GC_GRACE", "LOG_JSON"]
                .contains(&name)
                .then(|| OsString::from("x"))
        };
        let (command, warnings) = with_renamed(sample(), &renamed, &env);
        assert_eq!(warnings.len(), 3, "{warnings:#?}");
        assert!(warnings[0].starts_with("S3_BUCKET is deprecated: read for IPHOTO_S3_BUCKET"));
        assert!(warnings[1].starts_with("GC_GRACE is set but ignored: IPHOTO_GC_GRACE is set too"));
        assert!(warnings[2].starts_with("LOG_JSON is no longer read: set IPHOTO_LOG_JSON instead"));
        let envs: BTreeMap<String, Option<String>> = flags(&command)
            .into_iter()
            .map(|flag| (format!("{} --{}", flag.path, flag.long), flag.env))
            .collect();
        assert_eq!(envs["serve --s3-bucket"].as_deref(), Some("S3_BUCKET"));
        assert_eq!(envs["serve --gc-grace"].as_deref(), Some("IPHOTO_GC_GRACE"));
        assert_eq!(envs[" --log-json"].as_deref(), Some("IPHOTO_LOG_JSON"));
    }
}
