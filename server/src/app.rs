//! `run`: what each subcommand does, with its configuration already parsed.

mod passwd;

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context as _, Result};

use crate::catalog::{self, Catalog, ConnectOptions, Location, RestoreTarget, Retention, Scope, TokenId};
use crate::config::{
    CatalogArgs, Cli, Command, GcArgs, RestoreArgs, ServeArgs, TokenCommand, UserCommand, WorkerCommand,
    WorkerKind,
};
use crate::gc::{self, GcSettings};
use crate::http::{self, AppState, HttpSettings};

/// Runs one subcommand to completion.
pub async fn run(cli: Cli) -> Result<()> {
    cli_support::logging::init(
        &cli.log,
        crate::config::DEFAULT_LOG_FILTER,
        cli_support::LogFormat::Full,
    )?;
    // What the server writes is its users' photos, catalog and secrets: the data directory, the SQLite files
    // (with their -wal/-shm), local blobs and staging files are created for the owner only (directories 0700,
    // files 0600). The stores create files with the default mode, so the process umask decides.
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    match cli.command {
        Command::Serve(args) => serve(*args).await,
        Command::Migrate(args) => {
            open_catalog(&args).await?;
            println!("catalog is up to date");
            Ok(())
        }
        Command::User(UserCommand::Add { name, catalog }) => {
            let user = open_catalog(&catalog).await?.create_user(&name).await?;
            println!("created user {} ({})", user.name, user.id);
            Ok(())
        }
        Command::User(UserCommand::Passwd {
            name,
            password_file,
            catalog,
        }) => {
            passwd::run(
                open_catalog(&catalog).await?.as_ref(),
                &name,
                password_file.as_deref(),
            )
            .await
        }
        Command::Token(command) => token(command).await,
        Command::Worker(WorkerCommand::Thumbnail(args)) => worker::cli::run(*args).await,
        Command::Restore(args) => restore(args).await,
        Command::Gc(args) => collect_garbage(*args).await,
    }
}

/// `restore`: thin over [`Catalog::restore`], as `POST /admin/restore` is.
async fn restore(args: RestoreArgs) -> Result<()> {
    let target =
        RestoreTarget::from_ids(args.photo, args.album, args.library).context("--photo/--album/--library")?;
    let as_of = catalog::parse_as_of("--as-of", &args.as_of)?;
    let catalog = open_catalog(&args.catalog).await?;
    let user = catalog
        .find_user_by_name(&args.user)
        .await?
        .with_context(|| format!("--user: no user named {:?}", args.user))?;
    let report = catalog
        .restore(&user.id, &target, as_of, chrono::Utc::now())
        .await
        .map_err(|error| match error {
            catalog::Error::NotFound { what } => {
                anyhow::anyhow!("--{what}: no such {what} for user {:?}", args.user)
            }
            catalog::Error::Invalid { field, reason } if field == "asOf" => {
                anyhow::anyhow!("--as-of: {reason}")
            }
            other => other.into(),
        })?;
    println!(
        "restored as of {}: {} photos ({} now tombstones), {} albums; catalog version {}",
        as_of.to_rfc3339(),
        report.photos,
        report.tombstoned,
        report.albums,
        report.version
    );
    Ok(())
}

/// How often `serve` purges tombstones and history past the retention.
const PURGE_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);

/// Purges once at start and then every [`PURGE_EVERY`] until `stop`; a failed purge is logged and retried at
/// the next tick (what it would remove stays until then, which only keeps data longer).
async fn purge_loop(
    catalog: Arc<dyn Catalog>,
    retention: Retention,
    stop: tokio_util::sync::CancellationToken,
) {
    let mut ticks = tokio::time::interval(PURGE_EVERY);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = ticks.tick() => {}
        }
        match catalog.purge(retention, chrono::Utc::now()).await {
            Ok(report) => tracing::info!(
                photos = report.photos,
                history_rows = report.history_rows,
                trash_days = retention.days,
                "purged tombstones and history past the retention"
            ),
            Err(error) => tracing::warn!(error = %error, "purge failed; retried at the next tick"),
        }
    }
}

/// Staging files untouched this long are a crash's leftovers when `serve` starts on the local backend (which
/// one machine owns): this server is not writing yet, and another process's write in progress (a
/// `seed-originals` into the same directory) touches its file with every part it copies. Short, so a
/// restart after `kill -9` leaves no staging behind (`server/tests/kill_mid_upload.rs`).
const STARTUP_STAGING_AGE: std::time::Duration = std::time::Duration::from_secs(3);

/// `gc`: one pass under the replicas' lease (or a dry run), a line per user with what was freed.
async fn collect_garbage(mut args: GcArgs) -> Result<()> {
    let catalog = open_catalog(&args.catalog).await?;
    if args.storage.storage_backend == storage::Backend::Local {
        args.storage
            .storage_local_path
            .get_or_insert_with(|| args.catalog.data_dir.join("blobs"));
        // The collector never signs a URL: a throwaway key and address satisfy the local configuration.
        if args.storage.presign_secret.is_none() && args.storage.presign_secret_file.is_none() {
            args.storage.presign_secret = Some(storage::Secret::new(hex::encode(rand::random::<[u8; 32]>())));
        }
        if args.storage.public_url.is_none() {
            args.storage.public_url = Some("http://127.0.0.1:8080".parse()?);
        }
    }
    let store = storage::create_object_store(&args.storage.into_config()?)?;
    let settings = GcSettings {
        dry_run: args.dry_run,
        settle: args.settle,
        upload_max_age: args.upload_max_age,
        ..GcSettings::new(args.grace)
    };
    let report = gc::run_pass(catalog.as_ref(), &store, &gc::holder_id(), &settings).await?;
    if !report.ran {
        println!("another replica holds the gc lease: nothing done");
        return Ok(());
    }
    let verb = if args.dry_run { "would free" } else { "freed" };
    for user in &report.users {
        let (keys, bytes) = if args.dry_run {
            (user.reclaimable_keys, user.reclaimable_bytes)
        } else {
            (user.reclaimed_keys, user.reclaimed_bytes)
        };
        println!("user {}: {verb} {keys} objects, {bytes} bytes", user.user_id);
    }
    println!(
        "staging: {verb} {} files, {} bytes",
        report.staging.files, report.staging.bytes
    );
    let (keys, bytes) = if args.dry_run {
        report.reclaimable_objects()
    } else {
        report.reclaimed_objects()
    };
    println!("total: {verb} {keys} objects, {bytes} bytes");
    Ok(())
}

/// `serve`'s collector: a pass every `interval` under the shared lease, its figures in the metrics; stops
/// with the server.
async fn collect_periodically(
    catalog: Arc<dyn Catalog>,
    store: storage::Store,
    state: AppState,
    interval: std::time::Duration,
    settings: GcSettings,
    stop: tokio_util::sync::CancellationToken,
) {
    let holder = gc::holder_id();
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
        }
        match gc::run_pass(catalog.as_ref(), &store, &holder, &settings).await {
            Ok(report) => state.metrics().gc_pass(&report),
            Err(error) => tracing::error!(error = format!("{error:#}"), "garbage collection failed"),
        }
    }
}

async fn token(command: TokenCommand) -> Result<()> {
    match command {
        TokenCommand::Create {
            user,
            scope,
            name,
            catalog,
        } => {
            let catalog = open_catalog(&catalog).await?;
            let scope = Scope::parse(&scope)?;
            let owner = catalog
                .find_user_by_name(&user)
                .await?
                .with_context(|| format!("no user named {user:?}"))?;
            let token = catalog.create_token(&owner.id, scope, &name).await?;
            eprintln!(
                "token {} for {} ({}); it is shown once:",
                token.info.id,
                owner.name,
                scope.as_str()
            );
            println!("{}", token.secret.expose());
        }
        TokenCommand::Revoke { id, catalog } => {
            let catalog = open_catalog(&catalog).await?;
            let token_id = TokenId::new(id.clone());
            let info = catalog
                .find_token(&token_id)
                .await?
                .with_context(|| format!("no token with id {id:?}"))?;
            catalog.revoke_token(&info.user_id, &token_id).await?;
            println!("revoked token {id}");
        }
        TokenCommand::List { user, catalog } => {
            let catalog = open_catalog(&catalog).await?;
            let owner = match user {
                Some(name) => Some(
                    catalog
                        .find_user_by_name(&name)
                        .await?
                        .with_context(|| format!("no user named {name:?}"))?
                        .id,
                ),
                None => None,
            };
            for t in catalog.list_tokens(owner.as_ref()).await? {
                let state = if t.revoked_at.is_some() {
                    "revoked"
                } else {
                    "active"
                };
                println!(
                    "{}\t{}\t{}\t{}\t{}",
                    t.id,
                    t.user_name,
                    t.scope.as_str(),
                    t.name,
                    state
                );
            }
        }
    }
    Ok(())
}

async fn open_catalog(args: &CatalogArgs) -> Result<Arc<dyn Catalog>> {
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("IPHOTO_DATA_DIR: cannot create {}", args.data_dir.display()))?;
    let location = match &args.database_url {
        Some(url) => Location::parse(url).context("IPHOTO_DATABASE_URL")?,
        None => Location::sqlite_in(&args.data_dir),
    };
    catalog::connect(&location, &ConnectOptions::default())
        .await
        .with_context(|| format!("opening the catalog at {location:?}"))
}

async fn serve(mut args: ServeArgs) -> Result<()> {
    let data_dir = args.catalog.data_dir.clone();
    private_data_dir(&data_dir)?;
    let catalog = open_catalog(&args.catalog).await?;
    // Embedded defaults: blobs and the presign key under the data directory.
    if args.storage.storage_backend == storage::Backend::Local {
        args.storage
            .storage_local_path
            .get_or_insert_with(|| data_dir.join("blobs"));
        if args.storage.presign_secret.is_none() && args.storage.presign_secret_file.is_none() {
            args.storage.presign_secret_file = Some(ensure_secret_file(&data_dir.join("presign.secret"))?);
        }
        if args.storage.public_url.is_none() {
            args.storage.public_url = Some(format!("http://{}", args.listen).parse()?);
        }
    }
    if args.job_lease_secs == 0 || args.job_lease_secs > 3600 {
        anyhow::bail!("IPHOTO_JOB_LEASE_SECS: must be 1 to 3600");
    }
    if args.job_max_failures == 0 {
        anyhow::bail!("IPHOTO_JOB_MAX_FAILURES: must be at least 1");
    }
    // Behind a proxy that terminates TLS the server is reached at an https:// public URL: its cookies are
    // then always `Secure`.
    let always_secure = args
        .storage
        .public_url
        .as_ref()
        .is_some_and(|url| url.scheme() == "https");
    let storage_config = args.storage.into_config()?;
    // Web cursors are signed with a key every replica derives from the secret they already share.
    let cursor_key = http::web::CursorKey::derive(match &storage_config.backend {
        storage::BackendConfig::Local(local) => local.presign_secret.expose().as_bytes(),
        storage::BackendConfig::S3(s3) => s3.secret_access_key.expose().as_bytes(),
    });
    let store = storage::create_object_store(&storage_config)?;
    first_start(catalog.as_ref(), &data_dir).await?;
    let web = web_settings(catalog.as_ref(), args.session_max_age, always_secure).await?;
    // A restart cleans the staging a crash left (local backend; S3 leaves it to a lifecycle rule).
    let swept = store.remove_staging(STARTUP_STAGING_AGE, false).await?;
    if swept.files > 0 {
        tracing::info!(
            files = swept.files,
            bytes = swept.bytes,
            "removed staging left by a crash"
        );
    }

    let catalog_for_workers = Arc::clone(&catalog);
    tokio::spawn(crate::relocate::run_in_background(
        Arc::clone(&catalog),
        store.clone(),
    ));
    let purge_stop = tokio_util::sync::CancellationToken::new();
    let purger = tokio::spawn(purge_loop(
        Arc::clone(&catalog),
        Retention {
            days: args.trash_days,
        },
        purge_stop.clone(),
    ));
    let catalog_for_gc = Arc::clone(&catalog);
    let state = AppState::new(
        catalog,
        store.clone(),
        HttpSettings {
            max_sync_batch: args.max_sync_batch,
            max_upload_bytes: args.max_upload_bytes,
            cursor_key,
            job_lease: std::time::Duration::from_secs(args.job_lease_secs),
            job_max_failures: args.job_max_failures,
            job_retry_after: std::time::Duration::from_secs(args.job_retry_secs),
            request_timeout: std::time::Duration::from_secs(args.http_request_timeout_secs),
            body_idle_timeout: std::time::Duration::from_secs(args.http_body_idle_secs),
            resumable_part_size: args.upload_part_size,
            upload_max_age: args.upload_max_age,
            web,
        },
    );
    let limits = http::serve::ConnectionLimits {
        header_timeout: std::time::Duration::from_secs(args.http_header_timeout_secs),
        max_connections: usize::try_from(args.http_max_connections).unwrap_or(usize::MAX),
    };
    check_open_file_limit(limits.max_connections);
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("IPHOTO_LISTEN: cannot listen on {}", args.listen))?;
    let local = listener.local_addr()?;
    tracing::info!(listen = %local, store = store.describe(), "iphoto-server ready");

    // On SIGTERM the in-process workers stop leasing and finish the jobs in hand first, while the server
    // still answers their result posts; then the server drains its own requests.
    let workers_stop = tokio_util::sync::CancellationToken::new();
    let server_stop = tokio_util::sync::CancellationToken::new();
    let mut workers = tokio::task::JoinSet::new();
    if args.workers.contains(&WorkerKind::Thumbnail) {
        let token = worker_token(catalog_for_workers.as_ref(), &data_dir).await?;
        // The workers talk to this server over loopback, as a standalone worker would over the network.
        let host = if local.ip().is_unspecified() {
            std::net::SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), local.port())
        } else {
            local
        };
        let settings = args.thumbnails.settings(format!("http://{host}").parse()?, token);
        workers.spawn(worker::run_thumbnail_worker(
            settings,
            store.clone(),
            workers_stop.clone(),
        ));
    }
    if !args.gc_interval.is_zero() {
        tokio::spawn(collect_periodically(
            catalog_for_gc,
            store.clone(),
            state.clone(),
            args.gc_interval,
            GcSettings {
                settle: args.gc_settle,
                upload_max_age: args.upload_max_age,
                ..GcSettings::new(args.gc_grace)
            },
            server_stop.clone(),
        ));
    }
    let stopper = {
        let server_stop = server_stop.clone();
        tokio::spawn(async move {
            shutdown_signal().await;
            workers_stop.cancel();
            let mut outcome = Ok(());
            while let Some(joined) = workers.join_next().await {
                let result = joined.map_err(anyhow::Error::from).and_then(|r| r);
                if let Err(error) = result {
                    tracing::error!(error = format!("{error:#}"), "an in-process worker failed");
                    outcome = Err(error);
                }
            }
            server_stop.cancel();
            outcome
        })
    };
    http::serve::serve(listener, http::router(state), limits, server_stop).await;
    purge_stop.cancel();
    let _ = purger.await;
    stopper.await??;
    tracing::info!("stopped");
    Ok(())
}

/// Files the server holds besides connections (catalog pool, store, logs, workers), roughly.
const OTHER_FILES: u64 = 128;

/// Raises the soft open-file limit to the hard one (as Go and nginx do: the soft default, often 1024, is a
/// compatibility floor for `select`, which nothing here uses), then warns when `IPHOTO_HTTP_MAX_CONNECTIONS` does
/// not fit under it: at that point `accept` fails with EMFILE before the connection limit ever applies.
fn check_open_file_limit(max_connections: usize) {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return;
    };
    let soft = if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
        hard
    } else {
        soft
    };
    let needed = u64::try_from(max_connections)
        .unwrap_or(u64::MAX)
        .saturating_add(OTHER_FILES);
    if needed > soft {
        tracing::warn!(
            open_file_limit = soft,
            max_connections,
            "IPHOTO_HTTP_MAX_CONNECTIONS does not fit under the open-file limit (ulimit -n); lower it or raise the limit"
        );
    }
}

/// The data directory, owner-only: made 0700 (through the umask) when it is created here; one that already
/// exists with group or other access (made by an installer, a shell with another umask) is tightened to 0700,
/// with a warning, since it holds tokens, the presign secret and the catalog.
fn private_data_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::create_dir_all(dir)
        .with_context(|| format!("IPHOTO_DATA_DIR: cannot create {}", dir.display()))?;
    let mode = std::fs::metadata(dir)
        .with_context(|| format!("IPHOTO_DATA_DIR: {}", dir.display()))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("IPHOTO_DATA_DIR: cannot make {} private (0700)", dir.display()))?;
        tracing::warn!(
            path = %dir.display(),
            was = format!("{:o}", mode & 0o777),
            "the data directory was open to other users; made it 0700"
        );
    }
    Ok(())
}

/// The in-process workers' `worker` token: the first start's `worker.token`, or (for a data directory from
/// before workers) a new one for the `admin` user, kept there with mode 0600.
async fn worker_token(catalog: &dyn Catalog, data_dir: &Path) -> Result<String> {
    let path = data_dir.join("worker.token");
    if let Ok(token) = worker::read_token_file(&path) {
        return Ok(token);
    }
    let admin = catalog
        .find_user_by_name("admin")
        .await?
        .context("no admin user to own the in-process workers' token")?;
    let token = catalog
        .create_token(&admin.id, Scope::Worker, "in-process workers")
        .await?;
    write_private(&path, token.secret.expose())?;
    tracing::info!(path = %path.display(), "wrote the in-process workers' token");
    Ok(token.secret.expose().to_owned())
}

/// The web pages' settings, with the cookie key every replica shares: made by the first server that starts
/// on this catalog and read back by all the others (`Catalog::web_key`).
async fn web_settings(
    catalog: &dyn Catalog,
    session_max_age: std::time::Duration,
    always_secure: bool,
) -> Result<http::pages::WebSettings> {
    let stored = catalog
        .web_key("cookie", &http::pages::CookieKey::random_hex())
        .await?;
    let cookie_key = http::pages::CookieKey::from_hex(&stored)
        .context("the catalog's web cookie key (table web_keys) is not 64 hex digits")?;
    Ok(http::pages::WebSettings {
        cookie_key,
        session_max_age,
        always_secure,
    })
}

/// On the first start, an `admin` user and its `client`, `web`, `worker` and `admin` tokens, written to the
/// data directory with mode 0600 so the agent, a browser and an enrichment worker can be pointed at them.
async fn first_start(catalog: &dyn Catalog, data_dir: &Path) -> Result<()> {
    if catalog.find_user_by_name("admin").await?.is_some() {
        return Ok(());
    }
    let admin = catalog.create_user("admin").await?;
    for scope in [Scope::Client, Scope::Web, Scope::Worker, Scope::Admin] {
        let token = catalog.create_token(&admin.id, scope, "first start").await?;
        let path = data_dir.join(format!("{}.token", scope.as_str()));
        write_private(&path, token.secret.expose())?;
        tracing::info!(path = %path.display(), scope = scope.as_str(), "wrote first-start token");
    }
    Ok(())
}

/// A random 256-bit key in `path` (mode 0600), made on first use.
fn ensure_secret_file(path: &Path) -> Result<std::path::PathBuf> {
    if !path.exists() {
        let bytes: [u8; 32] = rand::random();
        write_private(path, &hex::encode(bytes))?;
    }
    Ok(path.to_path_buf())
}

fn write_private(path: &Path, content: &str) -> Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    file.write_all(content.as_bytes())?;
    file.write_all(b"\n")?;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
