//! Configuration: built-in defaults, then `config/default.toml`, then
//! `config/$USERD_ENV.toml` (when set), then `USERD__<SECTION>__<KEY>` variables.

use std::path::PathBuf;

use std::time::Duration;

use config::{Config, ConfigBuilder, Environment, File, builder::DefaultState};
use serde::Deserialize;
use userd_store_diesel::PoolSettings;

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
    pub passwords: PasswordSettings,
    pub notify: NotifySettings,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordSettings {
    /// Password hashes computed at once; 0 = one per CPU core.
    pub hash_concurrency: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifySettings {
    /// How long a verification code (password reset) lasts.
    pub code_ttl_secs: u64,
    pub smtp: SmtpSettings,
    pub sms: SmsSettings,
    /// How often the delivery worker looks for messages stored by other processes and for
    /// retries that fell due.
    pub poll_interval_ms: u64,
    /// The wait before the second attempt; it doubles for each further one.
    pub retry_first_ms: u64,
    /// The longest wait between two attempts.
    pub retry_longest_secs: u64,
    /// Attempts in all before a message is given up on.
    pub max_attempts: u32,
    /// How long one delivery may take before it counts as failed.
    pub send_timeout_secs: u64,
    /// How long a sent or abandoned message stays in the outbox as a record; 0 keeps it.
    pub keep_done_days: u64,
}

/// E-mail delivery; an empty URL turns it off.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpSettings {
    pub url: String,
    pub from: String,
}

/// The URL may hold a password: it is shown without it.
impl std::fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown = match self.url.split_once('@') {
            Some((before, after)) => match before.split_once("://") {
                Some((scheme, _credentials)) => format!("{scheme}://***@{after}"),
                None => "***".to_owned(),
            },
            None => self.url.clone(),
        };
        f.debug_struct("SmtpSettings")
            .field("url", &shown)
            .field("from", &self.from)
            .finish()
    }
}

/// SMS delivery through a webhook; an empty URL turns it off.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmsSettings {
    pub webhook_url: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    pub host: String,
    /// 0 picks a free port; the chosen address is logged.
    pub port: u16,
    /// The RPC port (gRPC, gRPC-web and Connect); 0 picks a free one, logged.
    pub rpc_port: u16,
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
    /// An idle connection is closed after this many seconds: HTTP keep-alive, and an RPC
    /// connection with no call in flight.
    pub keep_alive_secs: u64,
    /// Open connections per worker thread; more wait in the listen queue.
    pub max_connections: usize,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    /// `sqlite://relative.db`, `sqlite:///absolute.db` or `postgres://...`.
    pub url: String,
    /// Connections in the pool; 0 = twice the CPU cores, at least 4 (see `pool_settings()`).
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
        "server.rpc_port",
        "8081",
        "RPC port (gRPC, gRPC-web, Connect); 0 picks a free one",
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
        "idle connections are closed after this: HTTP keep-alive, and RPC connections with no \
         call in flight (at least 1 s)",
    ),
    (
        "server.max_connections",
        "25000",
        "open connections per worker thread, on each port",
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
    (
        "passwords.hash_concurrency",
        "0",
        "password hashes computed at once; 0 = one per CPU core",
    ),
    (
        "notify.code_ttl_secs",
        "3600",
        "how long a password-reset code lasts",
    ),
    (
        "notify.smtp.url",
        "",
        "SMTP server for e-mail: smtp://host:25 (plain), smtp://user:pass@host:587?tls=required \
         (STARTTLS), smtps://user:pass@host:465 (TLS); empty: no e-mail",
    ),
    (
        "notify.smtp.from",
        "userd <no-reply@localhost>",
        "the sender of e-mail",
    ),
    (
        "notify.sms.webhook_url",
        "",
        "URL that SMS are POSTed to as {\"to\", \"text\"}; empty: no SMS",
    ),
    (
        "notify.poll_interval_ms",
        "1000",
        "how often the delivery worker looks for due messages",
    ),
    (
        "notify.retry_first_ms",
        "2000",
        "wait before retrying a failed delivery; doubles each time",
    ),
    (
        "notify.retry_longest_secs",
        "300",
        "longest wait between delivery attempts",
    ),
    (
        "notify.max_attempts",
        "12",
        "delivery attempts before a message is given up on",
    ),
    (
        "notify.send_timeout_secs",
        "30",
        "how long one delivery may take",
    ),
    (
        "notify.keep_done_days",
        "30",
        "days a sent or abandoned message stays in the outbox; 0 keeps it",
    ),
];

/// The environment variable of a key: `server.port` is `USERD__SERVER__PORT`.
pub fn env_var_of(key: &str) -> String {
    format!("USERD__{}", key.replace('.', "__").to_uppercase())
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("invalid configuration")]
    Load(#[source] config::ConfigError),
    #[error("invalid configuration: {0}")]
    Invalid(&'static str),
}

impl Settings {
    pub fn load() -> Result<Settings, SettingsError> {
        let dir = std::env::var(CONFIG_DIR_VAR).unwrap_or_else(|_| "config".to_owned());
        let mut builder = built_in_defaults()?;
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
            .map_err(SettingsError::Load)?;
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> Result<(), SettingsError> {
        if self.database.connect_attempts == 0 {
            return Err(SettingsError::Invalid(
                "database.connect_attempts must be at least 1",
            ));
        }
        if self.server.token_cache_ms > 2000 {
            return Err(SettingsError::Invalid(
                "server.token_cache_ms must be at most 2000, so that revoked tokens stop working \
                 within two seconds",
            ));
        }
        if self.notify.code_ttl_secs == 0 {
            return Err(SettingsError::Invalid(
                "notify.code_ttl_secs must be at least 1",
            ));
        }
        if self.notify.poll_interval_ms == 0
            || self.notify.retry_first_ms == 0
            || self.notify.max_attempts == 0
            || self.notify.send_timeout_secs == 0
        {
            return Err(SettingsError::Invalid(
                "notify.poll_interval_ms, notify.retry_first_ms, notify.max_attempts and \
                 notify.send_timeout_secs must be at least 1",
            ));
        }
        if self.bootstrap.admin_pat_path.as_os_str().is_empty() {
            return Err(SettingsError::Invalid(
                "bootstrap.admin_pat_path must not be empty",
            ));
        }
        Ok(())
    }
}

fn built_in_defaults() -> Result<ConfigBuilder<DefaultState>, SettingsError> {
    let mut builder = Config::builder();
    for (key, default, _) in KEYS {
        builder = builder
            .set_default(*key, *default)
            .map_err(SettingsError::Load)?;
    }
    Ok(builder)
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
    pub fn pool_settings(&self) -> PoolSettings {
        PoolSettings {
            max_size: match self.pool_size {
                0 => PoolSettings::default_size(),
                size => size,
            },
            checkout_timeout: Duration::from_millis(self.pool_timeout_ms),
            sqlite_busy_timeout: Duration::from_millis(self.sqlite_busy_timeout_ms),
            statement_timeout: Duration::from_millis(self.statement_timeout_ms),
        }
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

    use std::collections::BTreeMap;

    use config::FileFormat;

    fn built_in() -> BTreeMap<String, String> {
        KEYS.iter()
            .map(|(key, default, _)| ((*key).to_owned(), (*default).to_owned()))
            .collect()
    }

    #[test]
    fn config_default_toml_states_the_built_in_defaults() {
        let file = Config::builder()
            .add_source(File::from_str(
                include_str!("../../../config/default.toml"),
                FileFormat::Toml,
            ))
            .build()
            .unwrap();
        fn flatten(prefix: &str, value: config::Value, into: &mut BTreeMap<String, String>) {
            match value.clone().into_table() {
                Ok(table) => {
                    for (key, inner) in table {
                        let name = if prefix.is_empty() {
                            key
                        } else {
                            format!("{prefix}.{key}")
                        };
                        flatten(&name, inner, into);
                    }
                }
                Err(_) => {
                    into.insert(prefix.to_owned(), value.into_string().unwrap());
                }
            }
        }
        let mut stated = BTreeMap::new();
        flatten("", file.cache, &mut stated);
        assert_eq!(stated, built_in());
    }

    #[test]
    fn the_readme_configuration_table_states_every_key_and_default() {
        let readme = include_str!("../../../README.md");
        let section = readme
            .split("\n## Configuration\n")
            .nth(1)
            .and_then(|rest| rest.split("\n## ").next())
            .unwrap();
        let mut rows = BTreeMap::new();
        for line in section.lines().filter(|line| line.starts_with("| `")) {
            let cells: Vec<&str> = line
                .split('|')
                .map(|cell| cell.trim().trim_matches('`'))
                .collect();
            assert_eq!(cells[2], env_var_of(cells[1]), "{line}");
            let default = if cells[3] == "(empty)" { "" } else { cells[3] };
            rows.insert(cells[1].to_owned(), default.to_owned());
        }
        assert_eq!(rows, built_in());
    }

    #[test]
    fn default_settings_give_the_store_default_pool() {
        let settings: Settings = built_in_defaults()
            .unwrap()
            .build()
            .unwrap()
            .try_deserialize()
            .unwrap();
        assert_eq!(settings.database.pool_settings(), PoolSettings::default());
    }
}
