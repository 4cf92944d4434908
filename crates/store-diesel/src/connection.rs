use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::r2d2::R2D2Connection;
use diesel::{Connection, PgConnection, SqliteConnection};
use userd_ports::error::StoreError;

use crate::errors::{OpenError, store_error};

/// One connection to either backend; the schema and queries are shared.
#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Postgres(PgConnection),
    Sqlite(SqliteConnection),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

/// Where the data lives, parsed from `database.url`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DatabaseTarget {
    /// `sqlite://relative/path.db` or `sqlite:///absolute/path.db`.
    Sqlite(PathBuf),
    /// `postgres://...` or `postgresql://...`, handed to libpq as is.
    Postgres(String),
}

impl DatabaseTarget {
    pub fn parse(url: &str) -> Result<Self, OpenError> {
        if let Some(path) = url.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err(OpenError::Url(
                    "a sqlite URL needs a file path, like sqlite://data/userd.db".into(),
                ));
            }
            return Ok(DatabaseTarget::Sqlite(PathBuf::from(path)));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(DatabaseTarget::Postgres(url.to_owned()));
        }
        let scheme = url.split_once("://").map_or(url, |(scheme, _)| scheme);
        Err(OpenError::Url(format!(
            "unsupported database URL scheme {scheme:?}: use sqlite:// or postgres://"
        )))
    }

    pub fn backend(&self) -> Backend {
        match self {
            DatabaseTarget::Sqlite(_) => Backend::Sqlite,
            DatabaseTarget::Postgres(_) => Backend::Postgres,
        }
    }

    /// The URL without any password, for logs.
    pub fn redacted(&self) -> String {
        match self {
            DatabaseTarget::Sqlite(path) => format!("sqlite://{}", path.display()),
            DatabaseTarget::Postgres(url) => redact_password(url),
        }
    }
}

/// The URL without its password, wherever libpq would take one from: the user
/// information, or a `password` query parameter.
fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((credentials, host)) if credentials.contains(':') => {
            let user = credentials.split(':').next().unwrap_or_default();
            format!("{user}:***@{host}")
        }
        _ => authority.to_owned(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let parameters: Vec<String> = query
                .split('&')
                .map(|parameter| match parameter.split_once('=') {
                    Some((name, _)) if name.eq_ignore_ascii_case("password") => {
                        format!("{name}=***")
                    }
                    _ => parameter.to_owned(),
                })
                .collect();
            format!("{path}?{}", parameters.join("&"))
        }
        None => tail.to_owned(),
    };
    format!("{scheme}://{authority}{tail}")
}

/// Pool settings from the configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolSettings {
    pub max_size: u32,
    /// How long a request waits for a free connection before it is told the database is
    /// unavailable.
    pub checkout_timeout: Duration,
    /// How long SQLite waits for a lock held by another writer.
    pub sqlite_busy_timeout: Duration,
    /// PostgreSQL: the longest a statement may run before the server cancels it, so a
    /// stuck query cannot hold a connection forever. Zero means no limit.
    pub statement_timeout: Duration,
}

impl PoolSettings {
    /// The pool size when none is configured. A pool much larger than the cores the work
    /// runs on only adds waiting: measured on two cores with the database beside userd, 4
    /// connections gave more throughput and a lower p99 than 10 or 16
    /// (docs/benchmarks.md).
    pub fn default_size() -> u32 {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        u32::try_from(cores * 2).unwrap_or(u32::MAX).max(4)
    }
}

impl Default for PoolSettings {
    fn default() -> Self {
        PoolSettings {
            max_size: PoolSettings::default_size(),
            checkout_timeout: Duration::from_secs(5),
            sqlite_busy_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(10),
        }
    }
}

/// Opens connections to the configured backend. Unlike diesel's generic manager it
/// never guesses the backend from a URL that failed to open.
#[derive(Debug)]
pub(crate) struct Manager {
    target: DatabaseTarget,
    sqlite_busy_timeout: Duration,
    statement_timeout: Duration,
}

/// A pooled connection, and whether a failure on it suggested it is dead.
pub(crate) struct Pooled {
    pub(crate) conn: DbConnection,
    /// Set when a query failed for want of the database; the pool then drops the
    /// connection instead of lending it out again.
    suspect: bool,
}

impl r2d2::ManageConnection for Manager {
    type Connection = Pooled;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<Pooled, Self::Error> {
        let conn = match &self.target {
            DatabaseTarget::Postgres(url) => {
                let mut conn =
                    PgConnection::establish(url).map_err(diesel::r2d2::Error::ConnectionError)?;
                conn.batch_execute(&format!(
                    "SET statement_timeout = {}",
                    self.statement_timeout.as_millis()
                ))
                .map_err(diesel::r2d2::Error::QueryError)?;
                DbConnection::Postgres(conn)
            }
            DatabaseTarget::Sqlite(path) => {
                let mut conn = SqliteConnection::establish(&path.to_string_lossy())
                    .map_err(diesel::r2d2::Error::ConnectionError)?;
                // busy_timeout first, so that switching to WAL waits for other writers.
                // LIKE must be case-sensitive, as on PostgreSQL: case-insensitive search
                // goes through the lowercased *_key columns instead.
                conn.batch_execute(&format!(
                    "PRAGMA busy_timeout = {}; PRAGMA journal_mode = WAL; \
                     PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; \
                     PRAGMA case_sensitive_like = ON;",
                    self.sqlite_busy_timeout.as_millis()
                ))
                .map_err(diesel::r2d2::Error::QueryError)?;
                DbConnection::Sqlite(conn)
            }
        };
        Ok(Pooled {
            conn,
            suspect: false,
        })
    }

    fn is_valid(&self, pooled: &mut Pooled) -> Result<(), Self::Error> {
        pooled.conn.ping().map_err(diesel::r2d2::Error::QueryError)
    }

    /// Checked whenever a connection goes back to the pool. Connections are not pinged
    /// when lent out (a round trip per request); a connection that failed for want of the
    /// database is dropped here instead, so after an outage the pool fills with fresh
    /// ones.
    fn has_broken(&self, pooled: &mut Pooled) -> bool {
        pooled.suspect || pooled.conn.is_broken()
    }
}

type Pool = r2d2::Pool<Manager>;

/// A pool of connections and the blocking-thread bridge to it.
#[derive(Clone)]
pub struct Database {
    pool: Arc<Pool>,
    backend: Backend,
    pub(crate) appended: Arc<crate::users::AppendedEvents>,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database")
            .field("backend", &self.backend)
            .field("state", &self.pool.state())
            .finish()
    }
}

impl Database {
    /// Opens a pool. Connections are made lazily, so this succeeds while the database is
    /// down; [`Database::migrate`] is the first real contact.
    pub fn open(target: &DatabaseTarget, settings: &PoolSettings) -> Result<Database, OpenError> {
        if let DatabaseTarget::Sqlite(path) = target {
            create_private_file(path)?;
        }
        let manager = Manager {
            target: target.clone(),
            sqlite_busy_timeout: settings.sqlite_busy_timeout,
            statement_timeout: settings.statement_timeout,
        };
        let pool = r2d2::Pool::builder()
            .max_size(settings.max_size.max(1))
            .min_idle(Some(0))
            .test_on_check_out(false)
            .connection_timeout(settings.checkout_timeout)
            .error_handler(Box::new(LogPoolErrors))
            .build_unchecked(manager);
        Ok(Database {
            pool: Arc::new(pool),
            backend: target.backend(),
            appended: Arc::default(),
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Connections in use and idle, for metrics.
    pub fn pool_state(&self) -> (u32, u32) {
        let state = self.pool.state();
        (
            state.connections - state.idle_connections,
            state.idle_connections,
        )
    }

    /// How many events of each type this process has appended since it started.
    pub fn appended_events(&self) -> Vec<(&'static str, u64)> {
        self.appended.snapshot()
    }

    /// Runs `work` with a pooled connection on tokio's blocking pool, in the caller's
    /// tracing span.
    pub async fn run<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConnection) -> Result<T, StoreError> + Send + 'static,
    {
        let pool = Arc::clone(&self.pool);
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || {
            span.in_scope(|| {
                let mut pooled = pool
                    .get()
                    .map_err(|e| StoreError::Unavailable(Box::new(e)))?;
                let outcome = work(&mut pooled.conn);
                if matches!(outcome, Err(StoreError::Unavailable(_))) {
                    pooled.suspect = true;
                }
                outcome
            })
        })
        .await
        .map_err(|e| StoreError::Internal(Box::new(e)))?
    }

    /// A connection for blocking callers outside tokio (start-up, CLI, tests).
    pub(crate) fn connection(&self) -> Result<r2d2::PooledConnection<Manager>, StoreError> {
        self.pool
            .get()
            .map_err(|e| StoreError::Unavailable(Box::new(e)))
    }
}

/// Creates a missing SQLite file readable by its owner only (0600), in directories that
/// only its owner may enter (0700), before SQLite opens it: SQLite gives its journal
/// files the database file's mode. Existing files and directories are left as they are.
fn create_private_file(path: &Path) -> Result<(), OpenError> {
    let failed = |path: &Path| {
        let path = path.display().to_string();
        move |cause| OpenError::Directory { path, cause }
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty())
        && !parent.exists()
    {
        private_dir_builder()
            .create(parent)
            .map_err(failed(parent))?;
    }
    match private_file_options().open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(failed(path)(e)),
    }
}

#[cfg(unix)]
fn private_dir_builder() -> std::fs::DirBuilder {
    use std::os::unix::fs::DirBuilderExt;
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true).mode(0o700);
    builder
}

#[cfg(not(unix))]
fn private_dir_builder() -> std::fs::DirBuilder {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    builder
}

#[cfg(unix)]
fn private_file_options() -> std::fs::OpenOptions {
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true).mode(0o600);
    options
}

#[cfg(not(unix))]
fn private_file_options() -> std::fs::OpenOptions {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    options
}

#[derive(Debug)]
struct LogPoolErrors;

impl r2d2::HandleError<diesel::r2d2::Error> for LogPoolErrors {
    fn handle_error(&self, error: diesel::r2d2::Error) {
        tracing::warn!(error = %error, "database connection failed");
    }
}

/// Runs `work` in a transaction that holds the write lock from its first statement.
///
/// On SQLite that is `BEGIN IMMEDIATE`: a deferred transaction that reads before it writes
/// fails with SQLITE_BUSY instead of waiting when another writer went first.
pub(crate) fn write_transaction<T, F>(conn: &mut DbConnection, work: F) -> Result<T, StoreError>
where
    F: FnOnce(&mut DbConnection) -> Result<T, StoreError>,
{
    // Seen by operators chasing lock waits, and by tests that must know a write is in
    // flight before they act.
    tracing::debug!("beginning a write transaction");
    transaction(conn, "BEGIN IMMEDIATE", "BEGIN", work)
}

/// A PostgreSQL write transaction whose opening statements travel with its BEGIN, in one
/// round trip. `opening` goes as plain SQL text, so it must be text userd made from
/// numbers, never from input.
pub(crate) fn postgres_write_transaction<T, F>(
    pg: &mut PgConnection,
    opening: &str,
    work: F,
) -> Result<T, StoreError>
where
    F: FnOnce(&mut PgConnection) -> Result<T, StoreError>,
{
    begin_postgres(pg, &format!("BEGIN; {opening}"))?;
    let outcome = work(pg);
    end(pg, outcome)
}

/// Runs `work` in a read-only transaction that sees one snapshot for all its statements.
pub(crate) fn snapshot_transaction<T, F>(conn: &mut DbConnection, work: F) -> Result<T, StoreError>
where
    F: FnOnce(&mut DbConnection) -> Result<T, StoreError>,
{
    transaction(
        conn,
        "BEGIN DEFERRED",
        "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
        work,
    )
}

fn transaction<T, F>(
    conn: &mut DbConnection,
    sqlite_begin: &str,
    postgres_begin: &str,
    work: F,
) -> Result<T, StoreError>
where
    F: FnOnce(&mut DbConnection) -> Result<T, StoreError>,
{
    match conn {
        DbConnection::Sqlite(sqlite) => {
            AnsiTransactionManager::begin_transaction_sql(sqlite, sqlite_begin)
                .map_err(store_error)?;
        }
        DbConnection::Postgres(pg) => begin_postgres(pg, postgres_begin)?,
    }
    let outcome = work(conn);
    end(conn, outcome)
}

fn begin_postgres(pg: &mut PgConnection, begin: &str) -> Result<(), StoreError> {
    let begun = AnsiTransactionManager::begin_transaction_sql(pg, begin);
    if begun.is_err() && begin.contains(';') {
        // BEGIN may have run before a later statement of the batch failed, which diesel
        // does not know: end that transaction, or the connection would go back to the pool
        // inside it.
        pg.batch_execute("ROLLBACK").map_err(store_error)?;
    }
    begun.map_err(store_error)
}

/// Commits when the work succeeded, else rolls back and returns the work's error.
fn end<C: Connection, T>(conn: &mut C, outcome: Result<T, StoreError>) -> Result<T, StoreError> {
    match outcome {
        Ok(value) => {
            C::TransactionManager::commit_transaction(conn).map_err(store_error)?;
            Ok(value)
        }
        Err(error) => {
            if let Err(rollback) = C::TransactionManager::rollback_transaction(conn) {
                tracing::warn!(error = %rollback, "rollback failed");
            }
            Err(error)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backend_follows_the_scheme() {
        assert_eq!(
            DatabaseTarget::parse("sqlite://data/userd.db").unwrap(),
            DatabaseTarget::Sqlite(PathBuf::from("data/userd.db"))
        );
        assert_eq!(
            DatabaseTarget::parse("sqlite:///var/lib/userd.db").unwrap(),
            DatabaseTarget::Sqlite(PathBuf::from("/var/lib/userd.db"))
        );
        assert_eq!(
            DatabaseTarget::parse("postgresql://u@h/db")
                .unwrap()
                .backend(),
            Backend::Postgres
        );
        for bad in ["mysql://root@localhost/db", "data/userd.db", "sqlite://"] {
            assert!(DatabaseTarget::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn passwords_never_reach_logs() {
        let target = DatabaseTarget::parse("postgres://app:s3cret@db:5432/userd").unwrap();
        assert_eq!(target.redacted(), "postgres://app:***@db:5432/userd");
        let target = DatabaseTarget::parse("postgres://app@db/userd").unwrap();
        assert_eq!(target.redacted(), "postgres://app@db/userd");
        let target =
            DatabaseTarget::parse("postgres://app@db/userd?sslmode=require&password=s3cret")
                .unwrap();
        assert_eq!(
            target.redacted(),
            "postgres://app@db/userd?sslmode=require&password=***"
        );
        let target = DatabaseTarget::parse("postgres://app:s3cret@db?password=s3cret").unwrap();
        assert_eq!(target.redacted(), "postgres://app:***@db?password=***");
    }
}
