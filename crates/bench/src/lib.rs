//! Shared pieces of userd's benchmark programs: a throwaway PostgreSQL database, a userd
//! process on it, and latency statistics.
#![allow(clippy::print_stdout, clippy::print_stderr)]

pub mod load;
pub mod logins;
pub mod pgbench;
pub mod sqlite_limit;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection};

pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// A PostgreSQL database made for one benchmark run and dropped after it.
pub struct BenchDatabase {
    admin_url: String,
    name: String,
    pub url: String,
}

impl BenchDatabase {
    /// On the server at `USERD_BENCH_POSTGRES_URL` (default: the test server).
    pub fn create(label: &str) -> Result<BenchDatabase, Error> {
        let admin_url = std::env::var("USERD_BENCH_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
        let name = format!("userd_bench_{label}_{}", std::process::id());
        let mut admin = PgConnection::establish(&admin_url)?;
        admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))?;
        admin.batch_execute(&format!("CREATE DATABASE {name}"))?;
        let url = userd_testkit::with_database(&admin_url, &name);
        Ok(BenchDatabase {
            admin_url,
            name,
            url,
        })
    }

    pub fn execute(&self, sql: &str) -> Result<(), Error> {
        PgConnection::establish(&self.url)?.batch_execute(sql)?;
        Ok(())
    }

    /// The first column of the first row of `sql`, as text.
    pub fn query_first_text(&self, sql: &str) -> Result<String, Error> {
        #[derive(diesel::QueryableByName)]
        struct Row {
            #[diesel(sql_type = diesel::sql_types::Text)]
            value: String,
        }
        let mut conn = PgConnection::establish(&self.url)?;
        let row: Row = diesel::RunQueryDsl::get_result(
            diesel::sql_query(format!("SELECT ({sql}) AS value")),
            &mut conn,
        )?;
        Ok(row.value)
    }
}

impl Drop for BenchDatabase {
    fn drop(&mut self) {
        if let Ok(mut admin) = PgConnection::establish(&self.admin_url) {
            let _ = admin.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

/// A userd process started for a benchmark.
pub struct UserdProcess {
    child: Child,
    pub base: String,
    /// `http://host:port` of the RPC listener.
    pub rpc_base: String,
    pub token: String,
}

impl UserdProcess {
    /// Starts `binary` on `database_url` with a fresh token file in `dir`.
    pub fn start(
        binary: &Path,
        database_url: &str,
        dir: &Path,
        extra_env: &[(&str, &str)],
    ) -> Result<UserdProcess, Error> {
        let pat = dir.join("admin.pat");
        let mut command = Command::new(binary);
        command
            .current_dir(dir)
            .env("USERD__SERVER__PORT", "0")
            .env("USERD__SERVER__RPC_PORT", "0")
            .env("USERD__DATABASE__URL", database_url)
            .env("USERD__BOOTSTRAP__ADMIN_PAT_PATH", &pat)
            .env("USERD__LOG__FORMAT", "json")
            // The default level: one line per request, as in production.
            .env("USERD__LOG__LEVEL", "info")
            .env("USERD_CONFIG_DIR", dir.join("no-config"))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (key, value) in extra_env {
            command.env(key, value);
        }
        let mut child = command.spawn()?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines().map_while(Result::ok);
            let (mut http, mut rpc) = (None, None);
            for line in lines.by_ref() {
                let entry = serde_json::from_str::<serde_json::Value>(&line).unwrap_or_default();
                if let Some(address) = entry["address"].as_str() {
                    http = Some(address.to_owned());
                }
                if let Some(address) = entry["rpc_address"].as_str() {
                    rpc = Some(address.to_owned());
                }
                if let (Some(http), Some(rpc)) = (&http, &rpc) {
                    let _ = tx.send((http.clone(), rpc.clone()));
                    break;
                }
            }
            // Only drained from here on: the benchmark must not spend CPU on userd's logs.
            for _ in lines {}
        });
        let (address, rpc_address) = rx.recv_timeout(Duration::from_secs(60)).map_err(|_| {
            let _ = child.kill();
            "userd did not start listening"
        })?;
        let token = std::fs::read_to_string(&pat)?.trim().to_owned();
        Ok(UserdProcess {
            child,
            base: format!("http://{address}"),
            rpc_base: format!("http://{rpc_address}"),
            token,
        })
    }
}

impl UserdProcess {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for UserdProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The release binary next to this one (`target/release/userd` when run with `--release`).
pub fn default_userd_binary() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join("userd")))
        .unwrap_or_else(|| PathBuf::from("target/release/userd"))
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Copy, Default)]
pub struct Percentiles {
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

pub fn percentiles(samples: &mut [Duration]) -> Percentiles {
    samples.sort();
    let at = |q: f64| -> f64 {
        if samples.is_empty() {
            return 0.0;
        }
        let index = ((samples.len() as f64 - 1.0) * q).round() as usize;
        samples[index].as_secs_f64() * 1000.0
    };
    Percentiles {
        p50: at(0.50),
        p95: at(0.95),
        p99: at(0.99),
        max: at(1.0),
    }
}

/// The value of `--name value` among the arguments, if present.
pub fn argument(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}
