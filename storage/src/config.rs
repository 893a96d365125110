//! Storage settings: flags and environment variables (clap), checked once at start-up.
//!
//! Every binary flattens [`StorageArgs`] into its own parser and calls [`StorageArgs::into_config`] before it
//! serves anything, so a missing or contradictory setting fails the start with one message naming the variable,
//! never the first request. Nothing here reads the environment except through clap (and [`crate::default_store`],
//! the memoized store for CLIs and workers).

use std::path::PathBuf;
use std::time::Duration;

use cli_support::env::Renamed;
use url::Url;

use crate::error::Error;
use crate::key::StorageKey;
use crate::presign::PresignPolicy;

/// A secret string: never shown by `Debug`, `Display` or `--help`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: String) -> Self {
        Self(value)
    }

    /// The value, for the one place that must use it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_owned()))
    }
}

/// Which backend holds the blobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    /// Files under `IPHOTO_STORAGE_LOCAL_PATH`: the single-machine default.
    Local,
    /// Any S3-compatible service: AWS, MinIO, DigitalOcean Spaces, R2, SeaweedFS.
    S3,
}

/// Storage flags, each also read from its environment variable.
#[derive(Clone, clap::Args)]
#[command(next_help_heading = "Storage")]
pub struct StorageArgs {
    /// Where blobs live: `local` (files on this machine) or `s3` (any S3-compatible service).
    #[arg(long, env = "IPHOTO_STORAGE_BACKEND", value_enum, default_value = "local")]
    pub storage_backend: Backend,

    /// Root directory of the local backend. Created if missing.
    #[arg(long, env = "IPHOTO_STORAGE_LOCAL_PATH")]
    pub storage_local_path: Option<PathBuf>,

    /// S3 endpoint URL for non-AWS services (MinIO, Spaces, R2, SeaweedFS), e.g. `https://fra1.digitaloceanspaces.com`.
    /// Unset: AWS.
    #[arg(long, env = "IPHOTO_S3_ENDPOINT")]
    pub s3_endpoint: Option<String>,

    /// S3 region. Default `us-east-1` (what MinIO, SeaweedFS and R2's `auto` accept).
    #[arg(long, env = "IPHOTO_S3_REGION")]
    pub s3_region: Option<String>,

    /// Bucket name.
    #[arg(long, env = "IPHOTO_S3_BUCKET")]
    pub s3_bucket: Option<String>,

    /// Access key id.
    #[arg(long, env = "IPHOTO_S3_ACCESS_KEY_ID", hide_env_values = true)]
    pub s3_access_key_id: Option<String>,

    /// Secret access key. Prefer `IPHOTO_S3_SECRET_ACCESS_KEY_FILE`.
    #[arg(long, env = "IPHOTO_S3_SECRET_ACCESS_KEY", hide_env_values = true)]
    pub s3_secret_access_key: Option<Secret>,

    /// File holding the secret access key (first line).
    #[arg(long, env = "IPHOTO_S3_SECRET_ACCESS_KEY_FILE")]
    pub s3_secret_access_key_file: Option<PathBuf>,

    /// Key prefix inside the bucket, so several deployments can share one bucket.
    #[arg(long, env = "IPHOTO_S3_PREFIX")]
    pub s3_prefix: Option<String>,

    /// Path-style requests (`endpoint/bucket/key`). Default: on with a custom endpoint, off on AWS.
    #[arg(long, env = "IPHOTO_S3_PATH_STYLE")]
    pub s3_path_style: Option<bool>,

    /// HMAC key (at least 32 bytes) signing the local backend's presigned URLs. Prefer `IPHOTO_PRESIGN_SECRET_FILE`.
    #[arg(long, env = "IPHOTO_PRESIGN_SECRET", hide_env_values = true)]
    pub presign_secret: Option<Secret>,

    /// File holding the presign HMAC key (first line).
    #[arg(long, env = "IPHOTO_PRESIGN_SECRET_FILE")]
    pub presign_secret_file: Option<PathBuf>,

    /// The server's externally reachable base URL: local presigned URLs point at its `/blobs/` route.
    /// Default: `http://127.0.0.1:8080` (the server uses its listen address).
    #[arg(long, env = "IPHOTO_PUBLIC_URL")]
    pub public_url: Option<Url>,

    /// Lifetime of a presigned URL when the caller names none, seconds.
    #[arg(long, env = "IPHOTO_PRESIGN_TTL_SECS", default_value_t = 300)]
    pub presign_ttl_secs: u64,

    /// Longest lifetime a caller may ask for, seconds.
    #[arg(long, env = "IPHOTO_PRESIGN_MAX_TTL_SECS", default_value_t = 3600)]
    pub presign_max_ttl_secs: u64,
}

impl std::fmt::Debug for StorageArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StorageArgs")
            .field("storage_backend", &self.storage_backend)
            .field("storage_local_path", &self.storage_local_path)
            .field("s3_endpoint", &self.s3_endpoint)
            .field("s3_bucket", &self.s3_bucket)
            .field("s3_prefix", &self.s3_prefix)
            .field("public_url", &self.public_url.as_ref().map(Url::as_str))
            .finish_non_exhaustive()
    }
}

/// The storage variables' names from before the `IPHOTO_` scheme. DESIGN.md documents the storage factory's
/// configuration as `STORAGE_BACKEND`, `STORAGE_LOCAL_PATH` and `S3_*`, so those are still read (with a
/// warning) when the new name is unset; the others were never part of it and are only reported. Every binary
/// that flattens [`StorageArgs`] parses with these (`cli_support::env::parse`).
pub const RENAMED_ENV: &[cli_support::env::Renamed] = &[
    Renamed::deprecated("STORAGE_BACKEND", "IPHOTO_STORAGE_BACKEND"),
    Renamed::deprecated("STORAGE_LOCAL_PATH", "IPHOTO_STORAGE_LOCAL_PATH"),
    Renamed::deprecated("S3_ENDPOINT", "IPHOTO_S3_ENDPOINT"),
    Renamed::deprecated("S3_REGION", "IPHOTO_S3_REGION"),
    Renamed::deprecated("S3_BUCKET", "IPHOTO_S3_BUCKET"),
    Renamed::deprecated("S3_ACCESS_KEY_ID", "IPHOTO_S3_ACCESS_KEY_ID"),
    Renamed::deprecated("S3_SECRET_ACCESS_KEY", "IPHOTO_S3_SECRET_ACCESS_KEY"),
    Renamed::deprecated("S3_PREFIX", "IPHOTO_S3_PREFIX"),
    Renamed::retired("S3_SECRET_ACCESS_KEY_FILE", "IPHOTO_S3_SECRET_ACCESS_KEY_FILE"),
    Renamed::retired("S3_PATH_STYLE", "IPHOTO_S3_PATH_STYLE"),
    Renamed::retired("PRESIGN_SECRET", "IPHOTO_PRESIGN_SECRET"),
    Renamed::retired("PRESIGN_SECRET_FILE", "IPHOTO_PRESIGN_SECRET_FILE"),
    Renamed::retired("PUBLIC_URL", "IPHOTO_PUBLIC_URL"),
    Renamed::retired("PRESIGN_TTL_SECS", "IPHOTO_PRESIGN_TTL_SECS"),
    Renamed::retired("PRESIGN_MAX_TTL_SECS", "IPHOTO_PRESIGN_MAX_TTL_SECS"),
];

/// Where local presigned URLs point when `IPHOTO_PUBLIC_URL` is not set.
pub const DEFAULT_PUBLIC_URL: &str = "http://127.0.0.1:8080";

/// Settings of the local backend, validated.
#[derive(Debug, Clone)]
pub struct LocalConfig {
    /// Root directory; every key resolves below it.
    pub root: PathBuf,
    /// HMAC key of presigned URLs.
    pub presign_secret: Secret,
    /// Base URL of the server that serves `/blobs/`.
    pub public_url: Url,
}

/// Settings of an S3-compatible backend, validated. Also the explicit-credentials form for ETL jobs that read
/// another bucket ([`crate::create_s3_store`]).
#[derive(Debug, Clone)]
pub struct S3Config {
    /// Custom endpoint; `None` for AWS.
    pub endpoint: Option<Url>,
    /// Region.
    pub region: String,
    /// Bucket.
    pub bucket: String,
    /// Access key id.
    pub access_key_id: String,
    /// Secret access key.
    pub secret_access_key: Secret,
    /// Key prefix inside the bucket.
    pub prefix: Option<StorageKey>,
    /// Path-style addressing.
    pub path_style: bool,
}

/// The backend, chosen and checked.
#[derive(Debug, Clone)]
pub enum BackendConfig {
    /// Files on this machine.
    Local(LocalConfig),
    /// An S3-compatible service.
    S3(S3Config),
}

/// Everything the storage factory needs.
#[derive(Debug, Clone)]
pub struct StorageConfig {
    /// Where the blobs are.
    pub backend: BackendConfig,
    /// Presigned URL lifetimes.
    pub presign: PresignPolicy,
}

impl StorageArgs {
    /// Checks the settings and resolves secrets from files. The error names the variable at fault.
    pub fn into_config(self) -> Result<StorageConfig, Error> {
        let presign = self.presign_policy()?;
        let backend = match self.storage_backend {
            Backend::Local => BackendConfig::Local(self.local()?),
            Backend::S3 => BackendConfig::S3(self.s3()?),
        };
        Ok(StorageConfig { backend, presign })
    }

    fn presign_policy(&self) -> Result<PresignPolicy, Error> {
        if self.presign_ttl_secs == 0 {
            return Err(config("IPHOTO_PRESIGN_TTL_SECS", "must be at least 1"));
        }
        if self.presign_ttl_secs > self.presign_max_ttl_secs {
            return Err(config(
                "IPHOTO_PRESIGN_TTL_SECS",
                "is above IPHOTO_PRESIGN_MAX_TTL_SECS",
            ));
        }
        if self.presign_max_ttl_secs > 7 * 24 * 3600 {
            return Err(config(
                "IPHOTO_PRESIGN_MAX_TTL_SECS",
                "is above 7 days, the longest SigV4 allows",
            ));
        }
        Ok(PresignPolicy {
            default_ttl: Duration::from_secs(self.presign_ttl_secs),
            max_ttl: Duration::from_secs(self.presign_max_ttl_secs),
        })
    }

    fn local(&self) -> Result<LocalConfig, Error> {
        // An S3 setting with the local backend means the operator meant S3: storing on local disk instead
        // would lose track of where the photos went.
        for (variable, set) in [
            ("IPHOTO_S3_ENDPOINT", self.s3_endpoint.is_some()),
            ("IPHOTO_S3_BUCKET", self.s3_bucket.is_some()),
            ("IPHOTO_S3_ACCESS_KEY_ID", self.s3_access_key_id.is_some()),
            ("IPHOTO_S3_SECRET_ACCESS_KEY", self.s3_secret_access_key.is_some()),
            ("IPHOTO_S3_PREFIX", self.s3_prefix.is_some()),
        ] {
            if set {
                return Err(config(
                    variable,
                    "is set but IPHOTO_STORAGE_BACKEND is local; set IPHOTO_STORAGE_BACKEND=s3 or unset it",
                ));
            }
        }
        let root = self
            .storage_local_path
            .clone()
            .ok_or_else(|| config("IPHOTO_STORAGE_LOCAL_PATH", "is required"))?;
        let presign_secret = secret(
            "IPHOTO_PRESIGN_SECRET",
            self.presign_secret.as_ref(),
            "IPHOTO_PRESIGN_SECRET_FILE",
            self.presign_secret_file.as_ref(),
        )?
        .ok_or_else(|| {
            config(
                "IPHOTO_PRESIGN_SECRET",
                "is required with the local backend (or IPHOTO_PRESIGN_SECRET_FILE)",
            )
        })?;
        if presign_secret.expose().len() < 32 {
            return Err(config("IPHOTO_PRESIGN_SECRET", "must be at least 32 bytes"));
        }
        let public_url = match &self.public_url {
            Some(url) => url.clone(),
            None => Url::parse(DEFAULT_PUBLIC_URL).map_err(|e| config("IPHOTO_PUBLIC_URL", e.to_string()))?,
        };
        if !matches!(public_url.scheme(), "http" | "https") {
            return Err(config("IPHOTO_PUBLIC_URL", "must be an http or https URL"));
        }
        Ok(LocalConfig {
            root,
            presign_secret,
            public_url,
        })
    }

    fn s3(&self) -> Result<S3Config, Error> {
        let endpoint = match &self.s3_endpoint {
            None => None,
            Some(text) => {
                let url = Url::parse(text)
                    .map_err(|e| config("IPHOTO_S3_ENDPOINT", format!("is not a URL: {e}")))?;
                if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
                    return Err(config(
                        "IPHOTO_S3_ENDPOINT",
                        "must be an http:// or https:// URL with a host",
                    ));
                }
                Some(url)
            }
        };
        let bucket = self
            .s3_bucket
            .clone()
            .ok_or_else(|| config("IPHOTO_S3_BUCKET", "is required with IPHOTO_STORAGE_BACKEND=s3"))?;
        if bucket.is_empty() || bucket.contains('/') {
            return Err(config("IPHOTO_S3_BUCKET", "must be a bucket name, without '/'"));
        }
        let access_key_id = self.s3_access_key_id.clone().ok_or_else(|| {
            config(
                "IPHOTO_S3_ACCESS_KEY_ID",
                "is required with IPHOTO_STORAGE_BACKEND=s3",
            )
        })?;
        let secret_access_key = secret(
            "IPHOTO_S3_SECRET_ACCESS_KEY",
            self.s3_secret_access_key.as_ref(),
            "IPHOTO_S3_SECRET_ACCESS_KEY_FILE",
            self.s3_secret_access_key_file.as_ref(),
        )?
        .ok_or_else(|| {
            config(
                "IPHOTO_S3_SECRET_ACCESS_KEY",
                "is required with IPHOTO_STORAGE_BACKEND=s3",
            )
        })?;
        let prefix = match self.s3_prefix.as_deref().map(|p| p.trim_matches('/')) {
            None | Some("") => None,
            Some(p) => Some(StorageKey::parse(p).map_err(|e| config("IPHOTO_S3_PREFIX", e.to_string()))?),
        };
        if self.storage_local_path.is_some() {
            return Err(config(
                "IPHOTO_STORAGE_LOCAL_PATH",
                "is set but IPHOTO_STORAGE_BACKEND is s3",
            ));
        }
        Ok(S3Config {
            path_style: self.s3_path_style.unwrap_or(endpoint.is_some()),
            endpoint,
            region: self.s3_region.clone().unwrap_or_else(|| "us-east-1".into()),
            bucket,
            access_key_id,
            secret_access_key,
            prefix,
        })
    }
}

/// A secret from its variable or its `*_FILE`; both set is a contradiction.
fn secret(
    variable: &'static str,
    value: Option<&Secret>,
    file_variable: &'static str,
    file: Option<&PathBuf>,
) -> Result<Option<Secret>, Error> {
    match (value, file) {
        (Some(_), Some(_)) => Err(config(
            file_variable,
            format!("and {variable} are both set; keep one"),
        )),
        (Some(v), None) if v.expose().is_empty() => Err(config(variable, "is empty")),
        (Some(v), None) => Ok(Some(v.clone())),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| config(file_variable, format!("cannot read {}: {e}", path.display())))?;
            let line = text.lines().next().unwrap_or("").trim().to_owned();
            if line.is_empty() {
                return Err(config(file_variable, format!("{} is empty", path.display())));
            }
            Ok(Some(Secret(line)))
        }
        (None, None) => Ok(None),
    }
}

fn config(variable: &'static str, reason: impl Into<String>) -> Error {
    Error::Config {
        variable,
        reason: reason.into(),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        storage: StorageArgs,
    }

    fn parse(args: &[&str]) -> Result<StorageConfig, Error> {
        let mut argv = vec!["x"];
        argv.extend_from_slice(args);
        Cli::try_parse_from(argv).unwrap().storage.into_config()
    }

    fn variable_of(result: Result<StorageConfig, Error>) -> &'static str {
        match result {
            Err(Error::Config { variable, .. }) => variable,
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    const SECRET: &str = "--presign-secret=0123456789abcdef0123456789abcdef";

    #[test]
    fn local_needs_path_and_secret() {
        assert_eq!(variable_of(parse(&[SECRET])), "IPHOTO_STORAGE_LOCAL_PATH");
        assert_eq!(
            variable_of(parse(&["--storage-local-path=/tmp/x"])),
            "IPHOTO_PRESIGN_SECRET"
        );
        assert_eq!(
            variable_of(parse(&["--storage-local-path=/tmp/x", "--presign-secret=short"])),
            "IPHOTO_PRESIGN_SECRET"
        );
        let ok = parse(&["--storage-local-path=/tmp/x", SECRET]).unwrap();
        let BackendConfig::Local(local) = &ok.backend else {
            panic!()
        };
        assert_eq!(local.public_url.as_str(), "http://127.0.0.1:8080/");
        assert_eq!(
            variable_of(parse(&[
                "--storage-local-path=/tmp/x",
                SECRET,
                "--public-url=ftp://x"
            ])),
            "IPHOTO_PUBLIC_URL"
        );
        assert_eq!(ok.presign, PresignPolicy::default());
    }

    #[test]
    fn contradictions_name_the_variable() {
        assert_eq!(
            variable_of(parse(&["--storage-local-path=/tmp/x", SECRET, "--s3-bucket=b"])),
            "IPHOTO_S3_BUCKET"
        );
        assert_eq!(
            variable_of(parse(&[
                "--storage-local-path=/tmp/x",
                SECRET,
                "--presign-ttl-secs=4000"
            ])),
            "IPHOTO_PRESIGN_TTL_SECS"
        );
        assert_eq!(
            variable_of(parse(&[
                "--storage-backend=s3",
                "--s3-bucket=b",
                "--s3-access-key-id=a"
            ])),
            "IPHOTO_S3_SECRET_ACCESS_KEY"
        );
        assert_eq!(variable_of(parse(&["--storage-backend=s3"])), "IPHOTO_S3_BUCKET");
        assert_eq!(
            variable_of(parse(&[
                "--storage-backend=s3",
                "--s3-bucket=b",
                "--s3-access-key-id=a",
                "--s3-secret-access-key=s",
                "--s3-endpoint=ftp://x"
            ])),
            "IPHOTO_S3_ENDPOINT"
        );
        assert_eq!(
            variable_of(parse(&[
                "--storage-backend=s3",
                "--s3-bucket=b",
                "--s3-access-key-id=a",
                "--s3-secret-access-key=s",
                "--s3-prefix=a/../b"
            ])),
            "IPHOTO_S3_PREFIX"
        );
    }

    #[test]
    fn s3_defaults_follow_the_endpoint() {
        let base = [
            "--storage-backend=s3",
            "--s3-bucket=b",
            "--s3-access-key-id=a",
            "--s3-secret-access-key=s",
        ];
        let BackendConfig::S3(aws) = parse(&base).unwrap().backend else {
            panic!()
        };
        assert!(!aws.path_style);
        assert_eq!(aws.region, "us-east-1");
        let mut custom = base.to_vec();
        custom.push("--s3-endpoint=http://127.0.0.1:9000");
        custom.push("--s3-prefix=/team/");
        let BackendConfig::S3(s3) = parse(&custom).unwrap().backend else {
            panic!()
        };
        assert!(s3.path_style);
        assert_eq!(s3.prefix.unwrap().as_str(), "team");
    }

    #[test]
    fn secret_files_and_redaction() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("s");
        std::fs::write(&file, "0123456789abcdef0123456789abcdef-from-file\n").unwrap();
        let arg = format!("--presign-secret-file={}", file.display());
        let cfg = parse(&["--storage-local-path=/tmp/x", &arg]).unwrap();
        let BackendConfig::Local(local) = &cfg.backend else {
            panic!()
        };
        assert_eq!(
            local.presign_secret.expose(),
            "0123456789abcdef0123456789abcdef-from-file"
        );
        assert!(!format!("{cfg:?}").contains("from-file"));
        assert_eq!(
            variable_of(parse(&["--storage-local-path=/tmp/x", &arg, SECRET])),
            "IPHOTO_PRESIGN_SECRET_FILE"
        );
        let missing = "--presign-secret-file=/nonexistent/secret";
        assert_eq!(
            variable_of(parse(&["--storage-local-path=/tmp/x", missing])),
            "IPHOTO_PRESIGN_SECRET_FILE"
        );
    }
}
