//! Configuration: built-in defaults, then `config/default.toml`, then
//! `config/$USERD_ENV.toml` (when set), then `USERD__<SECTION>__<KEY>` variables.

use std::path::PathBuf;

use config::{Config, Environment, File};
use serde::Deserialize;

/// Where the configuration files are; `config` relative to the working directory unless
/// `USERD_CONFIG_DIR` says otherwise.
pub const CONFIG_DIR_VAR: &str = "USERD_CONFIG_DIR";
/// Selects an extra file, `config/$USERD_ENV.toml`, layered over the defaults.
pub const ENV_VAR: &str = "USERD_ENV";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub bootstrap: BootstrapSettings,
    pub log: LogSettings,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    pub host: String,
    /// 0 picks a free port; the chosen address is logged.
    pub port: u16,
    /// HTTP worker threads; 0 means one per CPU core.
    pub workers: usize,
    /// Seconds in-flight requests get to finish after SIGTERM or SIGINT.
    pub shutdown_grace_secs: u64,
    /// How long an authenticated token is remembered; 0 disables the cache. At most
    /// 2000, so a revocation reaches every process within two seconds.
    pub token_cache_ms: u64,
    /// A request still running after this many milliseconds is answered 504 (code 4).
    pub request_timeout_ms: u64,
    /// A client must send a request's head within this many milliseconds of connecting
    /// or of its previous request, or the connection is closed (slow clients).
    pub client_request_timeout_ms: u64,
    /// An idle keep-alive connection is closed after this many seconds.
    pub keep_alive_secs: u64,
    /// Open connections per worker thread; more wait in the listen queue.
    pub max_connections: usize,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    /// `sqlite://relative.db`, `sqlite:///absolute.db` or `postgres://...`.
    pub url: String,
    /// Connections in the pool; 0 = twice the CPU cores, at least 4 (see `pool_size()`).
    pub pool_size: u32,
    /// How long a request waits for a free connection before answering 503.
    pub pool_timeout_ms: u64,
    /// How long SQLite waits on a lock held by another writer.
    pub sqlite_busy_timeout_ms: u64,
    /// How many times start-up tries to reach the database, one second apart.
    pub connect_attempts: u32,
    /// PostgreSQL: the server cancels a statement running longer than this (0 = never).
    pub statement_timeout_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BootstrapSettings {
    /// Where the first start writes the admin's token (mode 0600).
    pub admin_pat_path: PathBuf,
    pub organization_name: String,
    pub admin_username: String,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    pub format: LogFormat,
    /// A tracing filter: `info`, or per target, `info,userd_store_diesel=debug`.
    pub level: String,
}

/// Every key, its default and its environment variable, for `--help` and the README.
pub const KEYS: &[(&str, &str, &str)] = &[
    ("server.host", "127.0.0.1", "address to listen on"),
    (
        "server.port",
        "8080",
        "port to listen on; 0 picks a free one",
    ),
    (
        "server.workers",
        "0",
        "HTTP worker threads; 0 = one per CPU core",
    ),
    (
        "server.shutdown_grace_secs",
        "30",
        "time in-flight requests get on SIGTERM/SIGINT",
    ),
    (
        "server.request_timeout_ms",
        "15000",
        "a request running longer is answered 504 (code 4)",
    ),
    (
        "server.client_request_timeout_ms",
        "5000",
        "a client must send a request head within this time, or is cut off",
    ),
    (
        "server.keep_alive_secs",
        "5",
        "idle keep-alive connections are closed after this",
    ),
    (
        "server.max_connections",
        "25000",
        "open connections per worker thread",
    ),
    (
        "server.token_cache_ms",
        "1000",
        "how long a token check is reused (0-2000; 0 = off)",
    ),
    (
        "database.url",
        "sqlite://data/userd.db",
        "sqlite://path, sqlite:///abs/path or postgres://...",
    ),
    (
        "database.pool_size",
        "0",
        "connections in the pool; 0 = twice the CPU cores, at least 4",
    ),
    (
        "database.pool_timeout_ms",
        "5000",
        "wait for a free connection before answering 503",
    ),
    (
        "database.sqlite_busy_timeout_ms",
        "5000",
        "SQLite: wait on another writer's lock",
    ),
    (
        "database.connect_attempts",
        "10",
        "start-up tries to reach the database, 1 s apart",
    ),
    (
        "database.statement_timeout_ms",
        "10000",
        "PostgreSQL: the server cancels longer statements (0 = never)",
    ),
    (
        "bootstrap.admin_pat_path",
        "data/admin.pat",
        "where the first start writes the admin token",
    ),
    (
        "bootstrap.organization_name",
        "Default",
        "name of the first organization",
    ),
    (
        "bootstrap.admin_username",
        "admin",
        "username of the first admin",
    ),
    (
        "log.format",
        "pretty",
        "pretty (for people) or json (for machines)",
    ),
    (
        "log.level",
        "info",
        "tracing filter, e.g. info or info,userd_store_diesel=debug",
    ),
];

/// The environment variable of a key: `server.port` is `USERD__SERVER__PORT`.
pub fn env_var_of(key: &str) -> String {
    format!("USERD__{}", key.replace('.', "__").to_uppercase())
}

#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct SettingsError(String);

impl Settings {
    pub fn load() -> Result<Settings, SettingsError> {
        let dir = std::env::var(CONFIG_DIR_VAR).unwrap_or_else(|_| "config".to_owned());
        let mut builder = Config::builder();
        for (key, default, _) in KEYS {
            builder = builder
                .set_default(*key, *default)
                .map_err(|e| SettingsError(e.to_string()))?;
        }
        builder = builder.add_source(File::with_name(&format!("{dir}/default")).required(false));
        if let Ok(environment) = std::env::var(ENV_VAR) {
            // Asking for an environment whose file is missing is a mistake worth stopping for.
            builder =
                builder.add_source(File::with_name(&format!("{dir}/{environment}")).required(true));
        }
        builder = builder.add_source(
            Environment::with_prefix("USERD")
                .prefix_separator("__")
                .separator("__")
                .try_parsing(true),
        );
        let settings: Settings = builder
            .build()
            .and_then(Config::try_deserialize)
            .map_err(|e| SettingsError(e.to_string()))?;
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> Result<(), SettingsError> {
        if self.database.connect_attempts == 0 {
            return Err(SettingsError(
                "database.connect_attempts must be at least 1".into(),
            ));
        }
        if self.server.token_cache_ms > 2000 {
            return Err(SettingsError(
                "server.token_cache_ms must be at most 2000, so that revoked tokens stop working within two seconds".into(),
            ));
        }
        if self.bootstrap.admin_pat_path.as_os_str().is_empty() {
            return Err(SettingsError(
                "bootstrap.admin_pat_path must not be empty".into(),
            ));
        }
        Ok(())
    }
}

/// The URL may hold a password: it is shown without it.
impl std::fmt::Debug for DatabaseSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let url = userd_store_diesel::DatabaseTarget::parse(&self.url)
            .map_or_else(|_| "<not a database URL>".to_owned(), |t| t.redacted());
        f.debug_struct("DatabaseSettings")
            .field("url", &url)
            .field("pool_size", &self.pool_size)
            .field("pool_timeout_ms", &self.pool_timeout_ms)
            .field("sqlite_busy_timeout_ms", &self.sqlite_busy_timeout_ms)
            .field("connect_attempts", &self.connect_attempts)
            .field("statement_timeout_ms", &self.statement_timeout_ms)
            .finish()
    }
}

impl DatabaseSettings {
    /// The pool's size. A pool much larger than the cores the work runs on only adds
    /// waiting: measured on two cores with the database beside userd, 4 connections gave
    /// more throughput and a lower p99 than 10 or 16 (docs/benchmarks.md).
    pub fn pool_size(&self) -> u32 {
        if self.pool_size > 0 {
            return self.pool_size;
        }
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        u32::try_from(cores * 2).unwrap_or(u32::MAX).max(4)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_password_never_shows_in_debug_output() {
        let settings = DatabaseSettings {
            url: "postgres://app:s3cret@db:5432/userd".into(),
            pool_size: 0,
            pool_timeout_ms: 1,
            sqlite_busy_timeout_ms: 1,
            connect_attempts: 1,
            statement_timeout_ms: 1,
        };
        let text = format!("{settings:?}");
        assert!(!text.contains("s3cret"), "{text}");
        assert!(text.contains("postgres://app:***@db:5432/userd"), "{text}");
    }

    #[test]
    fn env_var_names_follow_the_double_underscore_rule() {
        assert_eq!(env_var_of("server.port"), "USERD__SERVER__PORT");
        assert_eq!(
            env_var_of("database.pool_size"),
            "USERD__DATABASE__POOL_SIZE"
        );
    }
}
