//! Start-up: database, migrations, first-start bootstrap, then the HTTP server.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use userd_api_http::{Metrics, ServerSettings, Services};
use userd_app::auth_cache::CachedAuthenticator;
use userd_app::bootstrap::BootstrapError;
use userd_app::bootstrap::bootstrap_if_empty;
use userd_app::clock::SystemClock;
use userd_app::ids::SnowflakeIds;
use userd_app::{Ports, UseCases};
use userd_ports::admin::AdminService;
use userd_ports::bootstrap::BootstrapStore;
use userd_ports::error::StoreError;
use userd_ports::ids::IdGenerator;
use userd_ports::repository::Authenticator;
use userd_ports::service::UserService;
use userd_store_diesel::{Database, DatabaseTarget, OpenError};

use crate::pat_file::PendingPatFile;
use crate::settings::Settings;

/// Why userd could not start, or stopped. Each variant names what failed; the cause is
/// its source, so a chain prints every cause once.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Database(#[from] OpenError),
    #[error("cannot reach the database at {url} after {attempts} attempts")]
    Unreachable {
        url: String,
        attempts: u32,
        #[source]
        cause: StoreError,
    },
    #[error("cannot write the admin token file {path}")]
    PatFile {
        path: String,
        #[source]
        cause: std::io::Error,
    },
    #[error("first-start bootstrap failed")]
    Bootstrap(#[source] BootstrapError),
    #[error("cannot listen on {address}")]
    Bind {
        address: String,
        #[source]
        cause: std::io::Error,
    },
    #[error("the HTTP server failed")]
    Server(#[source] std::io::Error),
    #[error("the RPC server failed")]
    Rpc(#[source] std::io::Error),
    #[error(transparent)]
    Recovery(#[from] userd_app::recovery::RecoveryError),
    #[error("cannot read the instance id")]
    InstanceId(#[source] StoreError),
    #[error("cannot set up password hashing")]
    Hasher(#[source] userd_ports::passwords::HashError),
    #[error("cannot set up metrics")]
    Metrics(#[source] prometheus::Error),
    #[error("invalid notification settings")]
    Notifier(#[source] userd_notify::SetupError),
    #[error("--user-id")]
    UserId(#[source] userd_domain::values::InvalidValue),
    #[error("cannot write to standard output")]
    Print(#[source] std::io::Error),
    #[error("cannot rebuild the current-state tables")]
    Rebuild(#[source] StoreError),
    #[error("the current-state tables differ from the event log")]
    Drift,
}

/// An error and every cause under it, each once: `a: b: c`.
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        cause = inner.source();
    }
    text
}

/// Opens the pool and applies migrations, retrying while the database is unreachable.
pub fn prepare_database(settings: &Settings) -> Result<Database, StartError> {
    let target = DatabaseTarget::parse(&settings.database.url)?;
    let database = Database::open(&target, &settings.database.pool_settings())?;
    // At least one attempt: the settings refuse zero.
    let attempts = settings.database.connect_attempts.max(1);
    let mut attempt = 1;
    loop {
        match database.migrate() {
            Ok(report) => {
                tracing::info!(
                    database = %target.redacted(),
                    applied = report.applied,
                    data_migrations = ?report.data.applied,
                    "database ready"
                );
                if report.data.tokens_capped > 0 {
                    tracing::warn!(
                        tokens = report.data.tokens_capped,
                        "tokens made before token ceilings existed, whose users gained roles \
                         since, now carry only the roles their users held when they were made"
                    );
                }
                report_username_clashes(&database);
                return Ok(database);
            }
            Err(OpenError::Unreachable(cause)) if attempt < attempts => {
                tracing::warn!(
                    database = %target.redacted(),
                    attempt,
                    attempts,
                    error = %chain(&cause),
                    "database unreachable; retrying in 1 s"
                );
                std::thread::sleep(Duration::from_secs(1));
                attempt += 1;
            }
            Err(OpenError::Unreachable(cause)) => {
                return Err(StartError::Unreachable {
                    url: target.redacted(),
                    attempts,
                    cause,
                });
            }
            Err(other) => return Err(other.into()),
        }
    }
}

/// Names that became one name when usernames began to be compared after Unicode
/// normalization and case folding: said at every start until an operator resolves them.
fn report_username_clashes(database: &Database) {
    match database.username_clashes() {
        Ok(clashes) => {
            for clash in clashes {
                tracing::warn!(
                    username = %clash.username,
                    user_id = %clash.user_id,
                    kept_by_user_id = %clash.kept_by_user_id,
                    "username clash: another user holds the same name under Unicode \
                     comparison; this username no longer claims the name. Delete or \
                     recreate one of the two users to resolve it"
                );
            }
        }
        Err(error) => tracing::warn!(error = %error, "cannot check for username clashes"),
    }
}

/// The HTTP metrics plus the store's: pool connections in use and idle, and events
/// appended by type, read when scraped.
fn store_metrics(store: &Arc<Database>) -> Result<Arc<Metrics>, prometheus::Error> {
    use prometheus::{IntCounterVec, IntGaugeVec, Opts};
    let metrics = Arc::new(Metrics::new()?);
    let pool = IntGaugeVec::new(
        Opts::new(
            "userd_db_pool_connections",
            "Database pool connections, by state.",
        ),
        &["state"],
    )?;
    let events = IntCounterVec::new(
        Opts::new(
            "userd_events_appended_total",
            "Events appended to the log by this process, by type.",
        ),
        &["type"],
    )?;
    metrics.registry().register(Box::new(pool.clone()))?;
    metrics.registry().register(Box::new(events.clone()))?;
    let store = Arc::clone(store);
    metrics.on_scrape(move || {
        let (in_use, idle) = store.pool_state();
        pool.with_label_values(&["in_use"]).set(i64::from(in_use));
        pool.with_label_values(&["idle"]).set(i64::from(idle));
        for (event_type, count) in store.appended_events() {
            let counter = events.with_label_values(&[event_type]);
            counter.inc_by(count.saturating_sub(counter.get()));
        }
    });
    Ok(metrics)
}

/// Resolves on the first SIGTERM or SIGINT, which both mean a graceful stop: no new
/// connections, requests and calls in flight finish within `grace`. From then on a
/// deadline thread ends the process if the stop has not finished well after the grace
/// period, so an operator's signal never leaves the process running; it runs on its own
/// thread so that it fires even if a runtime is stuck.
async fn stop_signal(grace: Duration) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut terminate), Ok(mut interrupt)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot watch for stop signals; userd stops only when killed");
        return std::future::pending().await;
    };
    let signal = tokio::select! {
        _ = terminate.recv() => "SIGTERM",
        _ = interrupt.recv() => "SIGINT",
    };
    tracing::info!(
        signal,
        grace_secs = grace.as_secs(),
        "stop signal received: accepting no new connections, finishing requests in flight"
    );
    let deadline = grace + Duration::from_secs(5);
    std::thread::spawn(move || {
        std::thread::sleep(deadline);
        tracing::error!(
            waited_secs = deadline.as_secs(),
            "the graceful shutdown did not finish; exiting"
        );
        std::process::exit(1);
    });
}

pub fn migrate_only(settings: &Settings) -> Result<(), StartError> {
    prepare_database(settings).map(|_| ())
}

pub fn serve(settings: Settings) -> Result<(), StartError> {
    let database = prepare_database(&settings)?;
    actix_web::rt::System::new().block_on(run(settings, database))
}

async fn bootstrap(
    settings: &Settings,
    database: &Database,
    ids: &SnowflakeIds,
) -> Result<(), StartError> {
    if !database
        .is_empty()
        .await
        .map_err(|e| StartError::Bootstrap(e.into()))?
    {
        return Ok(());
    }
    let path = &settings.bootstrap.admin_pat_path;
    let file_error = |cause| StartError::PatFile {
        path: path.display().to_string(),
        cause,
    };
    let pending = PendingPatFile::prepare(path).map_err(file_error)?;
    let outcome = bootstrap_if_empty(
        database,
        &SystemClock,
        ids,
        &settings.bootstrap.organization_name,
        &settings.bootstrap.admin_username,
    )
    .await;
    match outcome {
        Ok(Some(done)) => {
            pending.commit(done.token.expose()).map_err(file_error)?;
            tracing::info!(
                organization_id = %done.org_id,
                admin_user_id = %done.admin_id,
                token_file = %path.display(),
                "first start: created the first organization and admin; the admin token is in the file"
            );
            Ok(())
        }
        // Another process bootstrapped between the check and the transaction.
        Ok(None) => {
            pending.abandon();
            Ok(())
        }
        Err(error) => {
            pending.abandon();
            Err(StartError::Bootstrap(error))
        }
    }
}

async fn run(settings: Settings, database: Database) -> Result<(), StartError> {
    let ids = Arc::new(SnowflakeIds::with_random_node());
    bootstrap(&settings, &database, &ids).await?;

    let instance_id = database
        .instance_id(&ids.next_id())
        .await
        .map_err(StartError::InstanceId)?;

    let store = Arc::new(database);
    let authenticator: Arc<dyn Authenticator> = match settings.server.token_cache_ms {
        0 => store.clone(),
        ms => Arc::new(CachedAuthenticator::with_ttl(
            store.clone(),
            Duration::from_millis(ms),
        )),
    };
    let notifier: Arc<dyn userd_ports::notify::Notifier> =
        Arc::new(crate::delivery::notifiers(&settings.notify).map_err(StartError::Notifier)?);
    let wake_delivery = Arc::new(tokio::sync::Notify::new());
    let use_cases = Arc::new(
        UseCases::new(Ports {
            users: store.clone(),
            authenticator,
            organizations: store.clone(),
            members: store.clone(),
            tokens: store.clone(),
            health: store.clone(),
            clock: Arc::new(SystemClock),
            ids,
            hasher: Arc::new(hasher(&settings).map_err(StartError::Hasher)?),
            settings: store.clone(),
            sessions: store.clone(),
            instance_id,
        })
        .with_code_ttl(Duration::from_secs(settings.notify.code_ttl_secs))
        .with_delivery(crate::delivery::DeliveryWorker::delivery(
            notifier.as_ref(),
            &wake_delivery,
        )),
    );
    let users: Arc<dyn UserService> = use_cases.clone();
    let admin: Arc<dyn AdminService> = use_cases.clone();
    let login: Arc<dyn userd_ports::login::LoginService> = use_cases.clone();
    let contact: Arc<dyn userd_ports::contact::ContactService> = use_cases;

    let metrics = store_metrics(&store).map_err(StartError::Metrics)?;
    let rpc_metrics =
        userd_api_rpc::RpcMetrics::new(metrics.registry()).map_err(StartError::Metrics)?;
    let (rpc_stop, rpc_stopping) = tokio::sync::watch::channel(false);
    let rpc = start_rpc(
        &settings.server,
        userd_api_rpc::RpcServer {
            users: users.clone(),
            login: login.clone(),
            contact: contact.clone(),
            metrics: rpc_metrics,
        },
        rpc_stopping,
    )?;
    let delivery = crate::delivery::DeliveryWorker::start(
        store.clone(),
        store.clone(),
        notifier,
        &settings.notify,
        crate::delivery::DeliveryMetrics::new(metrics.registry()).map_err(StartError::Metrics)?,
        wake_delivery,
        rpc_stop.subscribe(),
    )
    .map_err(StartError::Server)?;
    let rpc_stop = Arc::new(rpc_stop);
    let services = Services {
        request_timeout: Duration::from_millis(settings.server.request_timeout_ms),
        ..Services::new(users, admin, login, contact, metrics)
    };

    let server = &settings.server;
    let address = format!("{}:{}", server.host, server.port);
    let listener =
        userd_api_http::listen(&server.host, server.port).map_err(|cause| StartError::Bind {
            address: address.clone(),
            cause,
        })?;
    let bound = listener.local_addr().map_err(StartError::Server)?;
    let grace = Duration::from_secs(server.shutdown_grace_secs);
    // One signal stops both listeners, so they drain side by side.
    let stop = {
        let rpc_stop = Arc::clone(&rpc_stop);
        async move {
            stop_signal(grace).await;
            rpc_stop.send_replace(true);
        }
    };
    let http = userd_api_http::serve(
        services,
        listener,
        &ServerSettings {
            workers: server.workers,
            shutdown_grace: Duration::from_secs(server.shutdown_grace_secs),
            client_request_timeout: Duration::from_millis(server.client_request_timeout_ms),
            keep_alive: Duration::from_secs(server.keep_alive_secs),
            max_connections: server.max_connections,
        },
        stop,
    )
    .map_err(StartError::Server)?;
    tracing::info!(address = %bound, "listening on http://{bound}");
    let http_outcome = http.await.map_err(StartError::Server);
    // Also when the HTTP server ended without a signal: the process is ending.
    rpc_stop.send_replace(true);
    let rpc_outcome = rpc.finish();
    delivery.finish();
    http_outcome?;
    rpc_outcome?;
    tracing::info!("stopped");
    Ok(())
}

/// The RPC listener, served by threads of its own so that RPCs do not wait behind the
/// HTTP workers: an acceptor hands each connection to the worker with the fewest, and
/// each worker runs a single-threaded runtime, as actix-web's do. An RPC then runs start
/// to end on the thread that read it, with no hand-over between threads.
struct RpcListener {
    threads: Vec<std::thread::JoinHandle<std::io::Result<()>>>,
}

impl RpcListener {
    /// Waits for it to stop, once told to, and for its calls in flight.
    fn finish(self) -> Result<(), StartError> {
        let mut outcome = Ok(());
        for thread in self.threads {
            let stopped = match thread.join() {
                Ok(stopped) => stopped.map_err(StartError::Rpc),
                Err(_) => Err(StartError::Rpc(std::io::Error::other(
                    "an RPC server thread panicked",
                ))),
            };
            outcome = outcome.and(stopped);
        }
        outcome
    }
}

/// A thread running `work` on a single-threaded runtime of its own, until `stop`.
fn rpc_thread<W, F>(
    name: String,
    mut stop: tokio::sync::watch::Receiver<bool>,
    work: W,
) -> Result<std::thread::JoinHandle<std::io::Result<()>>, StartError>
where
    W: FnOnce(std::pin::Pin<Box<dyn Future<Output = ()> + Send>>) -> F + Send + 'static,
    F: Future<Output = std::io::Result<()>>,
{
    std::thread::Builder::new()
        .name(name)
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async move {
                let stopped = Box::pin(async move {
                    // An error means the sender is gone: the process is ending.
                    let _ = stop.wait_for(|stopping| *stopping).await;
                });
                work(stopped).await
            })
        })
        .map_err(StartError::Rpc)
}

fn start_rpc(
    server: &crate::settings::ServerSettings,
    services: userd_api_rpc::RpcServer,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Result<RpcListener, StartError> {
    let address = format!("{}:{}", server.host, server.rpc_port);
    let bind_error = |cause| StartError::Bind {
        address: address.clone(),
        cause,
    };
    let listener = std::net::TcpListener::bind(&address).map_err(bind_error)?;
    listener.set_nonblocking(true).map_err(bind_error)?;
    let bound = listener.local_addr().map_err(StartError::Rpc)?;
    let count = match server.workers {
        0 => std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
        n => n,
    };
    let limits = userd_api_rpc::ConnectionLimits {
        per_worker: server.max_connections,
        // HTTP/2 has no "close after each answer" as HTTP/1.1 keep-alive off has: a
        // connection gets at least a second between calls.
        idle_timeout: Duration::from_secs(server.keep_alive_secs.max(1)),
    };
    let (workers, inboxes) = userd_api_rpc::workers(count, limits);
    let mut threads = Vec::with_capacity(count + 1);
    for (worker, inbox) in inboxes.into_iter().enumerate() {
        let services = services.clone();
        threads.push(rpc_thread(
            format!("userd-rpc-{worker}"),
            stop.clone(),
            move |stopped| userd_api_rpc::serve_connections(services, inbox, stopped),
        )?);
    }
    threads.push(rpc_thread(
        "userd-rpc-accept".to_owned(),
        stop,
        move |stopped| async move {
            let listener = tokio::net::TcpListener::from_std(listener)?;
            userd_api_rpc::accept(listener, workers, stopped).await
        },
    )?);
    tracing::info!(rpc_address = %bound, "RPC (gRPC, gRPC-web, Connect) on http://{bound}");
    Ok(RpcListener { threads })
}

fn hasher(
    settings: &Settings,
) -> Result<userd_hasher::Argon2idHasher, userd_ports::passwords::HashError> {
    match settings.passwords.hash_concurrency {
        0 => userd_hasher::Argon2idHasher::per_core(),
        n => userd_hasher::Argon2idHasher::new(n),
    }
}
