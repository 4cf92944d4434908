//! Throwaway databases for tests.
//!
//! PostgreSQL tests use the server at `USERD_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`) and get a fresh database each, dropped
//! when the test ends. When that server cannot be reached the test fails, unless
//! `USERD_TEST_POSTGRES=skip` says plainly that PostgreSQL tests are not to be run.
#![allow(clippy::expect_used, clippy::panic, clippy::print_stderr)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection};

pub const POSTGRES_URL_VAR: &str = "USERD_TEST_POSTGRES_URL";
pub const POSTGRES_SWITCH_VAR: &str = "USERD_TEST_POSTGRES";
const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// The two backends, for tests that run once on each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A database that exists for the life of this value.
#[derive(Debug)]
pub struct TestDatabase {
    pub url: String,
    pub backend: Backend,
    /// Keeps the SQLite file's directory (and the PAT file) alive.
    dir: tempfile::TempDir,
    postgres: Option<(String, String)>,
}

impl TestDatabase {
    /// A database on `backend`, or `None` when PostgreSQL tests are switched off.
    pub fn new(backend: Backend) -> Option<TestDatabase> {
        match backend {
            Backend::Sqlite => Some(TestDatabase::sqlite()),
            Backend::Postgres => TestDatabase::postgres(),
        }
    }

    /// An empty SQLite file in a fresh temporary directory.
    pub fn sqlite() -> TestDatabase {
        let dir = tempfile::tempdir().expect("temporary directory");
        let url = format!("sqlite://{}", dir.path().join("userd.db").display());
        TestDatabase {
            url,
            backend: Backend::Sqlite,
            dir,
            postgres: None,
        }
    }

    /// A fresh, empty PostgreSQL database; `None` when PostgreSQL tests are switched off.
    pub fn postgres() -> Option<TestDatabase> {
        if std::env::var(POSTGRES_SWITCH_VAR).is_ok_and(|v| v == "skip") {
            eprintln!("!!! PostgreSQL tests were NOT run ({POSTGRES_SWITCH_VAR}=skip) !!!");
            return None;
        }
        let admin_url =
            std::env::var(POSTGRES_URL_VAR).unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned());
        let mut admin = PgConnection::establish(&admin_url).unwrap_or_else(|e| {
            panic!(
                "PostgreSQL at {admin_url} is unreachable ({e}). Start it, point \
                 {POSTGRES_URL_VAR} at a server, or set {POSTGRES_SWITCH_VAR}=skip to run \
                 without the PostgreSQL tests."
            )
        });
        let name = unique_name();
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap_or_else(|e| panic!("cannot create database {name}: {e}"));
        let url = with_database(&admin_url, &name);
        Some(TestDatabase {
            url,
            backend: Backend::Postgres,
            dir: tempfile::tempdir().expect("temporary directory"),
            postgres: Some((admin_url, name)),
        })
    }

    /// A database this value does not own (a [`ThrowawayCluster`]'s): nothing is dropped.
    pub fn external(url: String) -> TestDatabase {
        TestDatabase {
            url,
            backend: Backend::Postgres,
            dir: tempfile::tempdir().expect("temporary directory"),
            postgres: None,
        }
    }

    /// A directory that lives as long as the database, for files a test needs.
    pub fn dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Some((admin_url, name)) = &self.postgres
            && let Ok(mut admin) = PgConnection::establish(admin_url)
        {
            // FORCE ends connections a pool may still hold.
            let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
        }
    }
}

fn unique_name() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!(
        "userd_test_{}_{}_{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// The same server URL with another database name.
pub fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let server = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{server}/{database}?{query}"),
        None => format!("{server}/{database}"),
    }
}

/// Declares `name` once per backend: `sqlite::name` and `postgres::name`, each calling
/// `body(TestDatabase)`. A PostgreSQL run that was switched off says so and passes.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let db = $crate::TestDatabase::new($crate::Backend::Sqlite).expect("sqlite");
                    super::$name(db).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let Some(db) = $crate::TestDatabase::new($crate::Backend::Postgres) else {
                        return;
                    };
                    super::$name(db).await;
                }
            )*
        }
    };
}

/// Like [`on_both_backends!`] for blocking tests (`fn name(db: TestDatabase)`).
#[macro_export]
macro_rules! on_both_backends_blocking {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[test]
                fn $name() {
                    let db = $crate::TestDatabase::new($crate::Backend::Sqlite).expect("sqlite");
                    super::$name(db);
                }
            )*
        }
        mod postgres {
            $(
                #[test]
                fn $name() {
                    let Some(db) = $crate::TestDatabase::new($crate::Backend::Postgres) else {
                        return;
                    };
                    super::$name(db);
                }
            )*
        }
    };
}

/// A PostgreSQL server of a test's own: `initdb` into a temporary directory, on its own
/// port, so the test can stop and start it without touching the shared server.
#[derive(Debug)]
pub struct ThrowawayCluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    pub port: u16,
}

impl ThrowawayCluster {
    /// `None` when PostgreSQL tests are switched off; fails the test when the server
    /// programs are missing.
    pub fn start() -> Option<ThrowawayCluster> {
        if std::env::var(POSTGRES_SWITCH_VAR).is_ok_and(|v| v == "skip") {
            eprintln!("!!! PostgreSQL outage test was NOT run ({POSTGRES_SWITCH_VAR}=skip) !!!");
            return None;
        }
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()
            .and_then(|versions| {
                let mut dirs: Vec<PathBuf> = versions
                    .filter_map(|v| v.ok().map(|v| v.path().join("bin")))
                    .collect();
                dirs.sort();
                dirs.pop()
            })
            .filter(|bin| bin.join("initdb").exists())
            .unwrap_or_else(|| {
                panic!(
                    "no PostgreSQL server programs under /usr/lib/postgresql \
                     (apt-get install postgresql)"
                )
            });
        let dir = tempfile::tempdir().expect("temporary directory");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        // initdb refuses to run as root: the cluster belongs to the postgres user.
        let path = dir.path().to_string_lossy().into_owned();
        run("chown", &["postgres:postgres", &path]);
        as_postgres(
            &bin.join("initdb"),
            &[
                "-D",
                &format!("{path}/data"),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
            ],
        );
        let cluster = ThrowawayCluster { dir, bin, port };
        cluster.resume();
        Some(cluster)
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn data(&self) -> String {
        format!("{}/data", self.dir.path().display())
    }

    /// Stops the server at once (fast shutdown: connections are cut).
    pub fn halt(&self) {
        as_postgres(
            &self.bin.join("pg_ctl"),
            &["-D", &self.data(), "-m", "fast", "-w", "stop"],
        );
    }

    pub fn resume(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        let log = format!("{}/server.log", self.dir.path().display());
        as_postgres(
            &self.bin.join("pg_ctl"),
            &[
                "-D",
                &self.data(),
                "-o",
                &options,
                "-l",
                &log,
                "-w",
                "start",
            ],
        );
    }
}

impl Drop for ThrowawayCluster {
    fn drop(&mut self) {
        let _ = std::process::Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join("pg_ctl"))
            .args(["-D", &self.data(), "-m", "immediate", "-w", "stop"])
            .output();
    }
}

fn run(program: &str, args: &[&str]) {
    let status = std::process::Command::new(program)
        .args(args)
        .status()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(status.success(), "{program} {args:?} failed");
}

fn as_postgres(program: &std::path::Path, args: &[&str]) {
    let output = std::process::Command::new("runuser")
        .args(["-u", "postgres", "--"])
        .arg(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
    assert!(
        output.status.success(),
        "{} {args:?} failed: {}",
        program.display(),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swaps_the_database_name() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(with_database("postgres://h", "x"), "postgres://h/x");
        assert_eq!(
            with_database("postgresql://u:p@h/db?sslmode=disable", "x"),
            "postgresql://u:p@h/x?sslmode=disable"
        );
    }
}
