//! The performance benchmark, in one run on one machine:
//!
//! - PostgreSQL: userd on a fresh database, the flow scenario (16 clients) and the read
//!   scenario (32 clients), then pgbench doing the same database work; userd's throughput
//!   as a ratio of pgbench's is the figure to quote.
//! - SQLite: the same scenarios, against the same statements run in-process by threads.
//! - Resident memory of userd at idle and under the flow load.
//! - Password logins (PostgreSQL): successful logins per second against argon2id
//!   verifications in-process on as many threads as userd hashes with; then memory and
//!   `/healthz` latency with 200 logins in flight. `--backend logins` runs only this.
//!
//! cargo build --release -p userd -p userd-bench && target/release/perf-bench
//!     [--seconds 30] [--short] [--backend postgres|sqlite|both|logins] [--userd PATH]
//!
//! `--short` runs each part for two seconds: it checks that everything works (a failed
//! request fails the run) and reports, not how fast.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use userd_bench::load::{LoadReport, LoadSettings, Scenario, resident_mib, run};
use userd_bench::logins::{self, LoginReport};
use userd_bench::{
    BenchDatabase, Error, UserdProcess, argument, default_userd_binary, pgbench, sqlite_limit,
};

const FLOW_CLIENTS: usize = 16;
const READ_CLIENTS: usize = 32;
const LOGIN_CLIENTS: usize = 16;
const STORM_CLIENTS: usize = 200;

#[derive(Clone)]
struct Plan {
    seconds: Duration,
    warmup: Duration,
    read_users: usize,
    binary: std::path::PathBuf,
    short: bool,
}

/// Runs a scenario while sampling userd's resident memory; returns the report and the
/// highest resident size seen.
async fn load(
    plan: &Plan,
    userd: &UserdProcess,
    scenario: Scenario,
) -> Result<(LoadReport, f64), Error> {
    let settings = LoadSettings {
        base: userd.base.clone(),
        rpc_base: userd.rpc_base.clone(),
        token: userd.token.clone(),
        scenario,
        clients: if scenario == Scenario::Read {
            READ_CLIENTS
        } else {
            FLOW_CLIENTS
        },
        duration: plan.seconds,
        warmup: plan.warmup,
        read_users: plan.read_users,
    };
    let pid = userd.pid();
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = {
        let sampling = Arc::clone(&sampling);
        std::thread::spawn(move || {
            let mut peak: f64 = 0.0;
            while sampling.load(Ordering::Relaxed) {
                peak = peak.max(resident_mib(pid).unwrap_or(0.0));
                std::thread::sleep(Duration::from_millis(100));
            }
            peak
        })
    };
    let report = run(&settings).await?;
    sampling.store(false, Ordering::Relaxed);
    let peak = sampler.join().map_err(|_| "sampler panicked")?;
    if report.errors > 0 {
        eprintln!("{} errors, first: {:?}", report.errors, report.first_errors);
        // The short run is CI's check that every scenario works: a failed request fails
        // it. A full run reports errors against its targets instead.
        if plan.short {
            return Err(format!("{}: {} requests failed", scenario.name(), report.errors).into());
        }
    }
    Ok((report, peak))
}

fn run_pgbench(
    database: &BenchDatabase,
    script: &Path,
    clients: usize,
    plan: &Plan,
    org: &str,
) -> Result<f64, Error> {
    let output = Command::new("pgbench")
        .args(["-n", "-M", "prepared", "-j", "2"])
        .args(["-c", &clients.to_string()])
        .args(["-T", &plan.seconds.as_secs().max(1).to_string()])
        .args(["-D", &format!("org={org}")])
        .arg("-f")
        .arg(script)
        .arg(&database.url)
        .output()
        .map_err(|e| format!("cannot run pgbench (apt-get install postgresql-client): {e}"))?;
    let text = String::from_utf8_lossy(&output.stdout);
    pgbench::parse_tps(&text).ok_or_else(|| {
        format!(
            "pgbench gave no tps: {text}\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
        .into()
    })
}

fn ratio(userd: f64, limit: f64) -> f64 {
    if limit > 0.0 { userd / limit } else { 0.0 }
}

fn backend_summary(
    name: &str,
    flow: &LoadReport,
    read: &LoadReport,
    flow_limit: f64,
    read_limit: f64,
    limit_name: &str,
) -> Value {
    json!({
        "backend": name,
        "limit": limit_name,
        "flow": {"userd_per_second": flow.iterations_per_second(), "limit_per_second": flow_limit,
                 "ratio": ratio(flow.iterations_per_second(), flow_limit), "report": flow.json()},
        "read": {"userd_per_second": read.iterations_per_second(), "limit_per_second": read_limit,
                 "ratio": ratio(read.iterations_per_second(), read_limit), "report": read.json()},
    })
}

/// The REST flow and the gRPC flow, each for the plan's time, in four alternating
/// half-length rounds: REST, gRPC, gRPC, REST. The database grows and the machine's
/// other load drifts during a run; whichever door ran second would carry that drift
/// alone, and this order shares it out evenly.
async fn rest_beside_grpc(
    plan: &Plan,
    userd: &UserdProcess,
) -> Result<(LoadReport, f64, LoadReport), Error> {
    let half = Plan {
        seconds: plan.seconds / 2,
        ..plan.clone()
    };
    let (rest_first, first_peak) = load(&half, userd, Scenario::Flow).await?;
    let (grpc_first, _) = load(&half, userd, Scenario::GrpcFlow).await?;
    let (grpc_second, _) = load(&half, userd, Scenario::GrpcFlow).await?;
    let (rest_second, second_peak) = load(&half, userd, Scenario::Flow).await?;
    let both = |a, b| LoadReport::combine(vec![a, b]).ok_or("no rounds to combine");
    Ok((
        both(rest_first, rest_second)?,
        first_peak.max(second_peak),
        both(grpc_first, grpc_second)?,
    ))
}

async fn postgres(plan: &Plan) -> Result<Value, Error> {
    let database = BenchDatabase::create("perf")?;
    let dir = tempdir("postgres")?;
    let userd = UserdProcess::start(&plan.binary, &database.url, &dir, &[])?;
    std::thread::sleep(Duration::from_millis(500));
    let idle = resident_mib(userd.pid()).unwrap_or(0.0);
    let (flow, flow_peak, grpc_flow) = rest_beside_grpc(plan, &userd).await?;
    println!("PostgreSQL, userd:\n\n{}", flow.table());
    println!("{}", grpc_flow.table());
    let (read, _) = load(plan, &userd, Scenario::Read).await?;
    println!("{}", read.table());
    let logins = login_part(plan, &userd).await?;
    drop(userd);

    let org =
        database.query_first_text("SELECT id FROM organizations ORDER BY created_at_us LIMIT 1")?;
    database.execute(&pgbench::read_rows(&org, plan.read_users))?;
    let flow_script = dir.join("flow.sql");
    std::fs::write(&flow_script, pgbench::FLOW)?;
    let read_script = dir.join("read.sql");
    std::fs::write(&read_script, pgbench::read(plan.read_users))?;
    let flow_limit = run_pgbench(&database, &flow_script, FLOW_CLIENTS, plan, &org)?;
    let read_limit = run_pgbench(&database, &read_script, READ_CLIENTS, plan, &org)?;
    let _ = std::fs::remove_dir_all(&dir);

    let mut summary = backend_summary(
        "postgres",
        &flow,
        &read,
        flow_limit,
        read_limit,
        "pgbench, same statements",
    );
    summary["memory_mib"] = json!({"idle": idle, "flow_peak": flow_peak});
    summary["logins"] = logins.json();
    summary["grpc_flow"] = json!({
        "userd_per_second": grpc_flow.iterations_per_second(),
        "ratio_to_rest_flow": ratio(grpc_flow.iterations_per_second(), flow.iterations_per_second()),
        "report": grpc_flow.json(),
    });
    println!(
        "gRPC flow: {:.1} it/s, {:.2} x the REST flow's {:.1} it/s\n",
        grpc_flow.iterations_per_second(),
        ratio(
            grpc_flow.iterations_per_second(),
            flow.iterations_per_second()
        ),
        flow.iterations_per_second()
    );
    print_ratios(
        "PostgreSQL",
        "pgbench",
        &flow,
        &read,
        flow_limit,
        read_limit,
    );
    println!(
        "userd resident memory: {idle:.1} MiB idle, {flow_peak:.1} MiB at most under the flow load\n"
    );
    if !plan.short {
        check_targets(&flow, &read, flow_limit, read_limit);
        check_grpc_targets(&flow, &grpc_flow);
    }
    Ok(summary)
}

/// The login part, on a userd already started.
async fn login_part(plan: &Plan, userd: &UserdProcess) -> Result<LoginReport, Error> {
    let report = logins::run(
        userd,
        LOGIN_CLIENTS,
        STORM_CLIENTS,
        plan.warmup,
        plan.seconds,
    )
    .await?;
    println!("Password logins:\n\n{}", report.table());
    if !plan.short {
        let verdicts = [
            (
                "logins >= 0.85 x in-process argon2id",
                report.ratio() >= 0.85,
            ),
            ("login errors: none", report.errors == 0),
            (
                "resident < 200 MiB with 200 logins in flight",
                report.storm_peak_resident_mib < 200.0,
            ),
            (
                "/healthz < 50 ms meanwhile",
                report.storm_healthz.max < 50.0,
            ),
        ];
        for (target, met) in verdicts {
            println!("target {target}: {}", if met { "met" } else { "NOT met" });
        }
        println!();
    }
    Ok(report)
}

/// Only the login part, on a fresh PostgreSQL database.
async fn logins_only(plan: &Plan) -> Result<Value, Error> {
    let database = BenchDatabase::create("logins")?;
    let dir = tempdir("logins")?;
    let userd = UserdProcess::start(&plan.binary, &database.url, &dir, &[])?;
    let report = login_part(plan, &userd).await?;
    drop(userd);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(json!({"backend": "postgres", "logins": report.json()}))
}

async fn sqlite(plan: &Plan) -> Result<Value, Error> {
    let dir = tempdir("sqlite")?;
    let url = format!("sqlite://{}", dir.join("userd.db").display());
    let userd = UserdProcess::start(&plan.binary, &url, &dir, &[])?;
    let (flow, _) = load(plan, &userd, Scenario::Flow).await?;
    println!("SQLite, userd:\n\n{}", flow.table());
    let (read, _) = load(plan, &userd, Scenario::Read).await?;
    println!("{}", read.table());
    drop(userd);
    let (flow_dir, seconds, users) = (dir.clone(), plan.seconds, plan.read_users);
    let flow_limit = tokio::task::spawn_blocking(move || {
        sqlite_limit::run(&flow_dir, Scenario::Flow, FLOW_CLIENTS, seconds, users)
            .map_err(|e| e.to_string())
    })
    .await??;
    let read_dir = dir.clone();
    let read_limit = tokio::task::spawn_blocking(move || {
        sqlite_limit::run(&read_dir, Scenario::Read, READ_CLIENTS, seconds, users)
            .map_err(|e| e.to_string())
    })
    .await??;
    let _ = std::fs::remove_dir_all(&dir);
    print_ratios(
        "SQLite",
        "the same statements in-process",
        &flow,
        &read,
        flow_limit,
        read_limit,
    );
    Ok(backend_summary(
        "sqlite",
        &flow,
        &read,
        flow_limit,
        read_limit,
        "same statements in-process",
    ))
}

fn print_ratios(
    backend: &str,
    limit: &str,
    flow: &LoadReport,
    read: &LoadReport,
    flow_limit: f64,
    read_limit: f64,
) {
    println!("| {backend} | userd /s | {limit} /s | ratio |\n|---|---|---|---|");
    println!(
        "| flow ({FLOW_CLIENTS} clients) | {:.1} | {flow_limit:.1} | {:.2} |",
        flow.iterations_per_second(),
        ratio(flow.iterations_per_second(), flow_limit)
    );
    println!(
        "| read ({READ_CLIENTS} clients) | {:.1} | {read_limit:.1} | {:.2} |\n",
        read.iterations_per_second(),
        ratio(read.iterations_per_second(), read_limit)
    );
}

/// The targets of the PostgreSQL figures; reported, never a failure.
fn check_targets(flow: &LoadReport, read: &LoadReport, flow_limit: f64, read_limit: f64) {
    let worst_p99 = flow
        .steps
        .iter()
        .chain(&read.steps)
        .map(|s| s.latency.p99)
        .fold(0.0, f64::max);
    let verdicts = [
        (
            "flow >= 0.5 x pgbench",
            ratio(flow.iterations_per_second(), flow_limit) >= 0.5,
        ),
        (
            "read >= 0.35 x pgbench",
            ratio(read.iterations_per_second(), read_limit) >= 0.35,
        ),
        ("p99 < 25 ms for every step", worst_p99 < 25.0),
        ("zero errors", flow.errors + read.errors == 0),
    ];
    for (target, met) in verdicts {
        println!("target {target}: {}", if met { "met" } else { "NOT met" });
    }
    println!("(worst p99: {worst_p99:.2} ms)\n");
}

/// The RPC adapter's targets: at least the REST flow's throughput, p99 under 25 ms.
fn check_grpc_targets(flow: &LoadReport, grpc_flow: &LoadReport) {
    let worst_p99 = grpc_flow
        .steps
        .iter()
        .map(|s| s.latency.p99)
        .fold(0.0, f64::max);
    let verdicts = [
        (
            "gRPC flow >= REST flow",
            grpc_flow.iterations_per_second() >= flow.iterations_per_second(),
        ),
        ("gRPC p99 < 25 ms for every step", worst_p99 < 25.0),
        ("gRPC zero errors", grpc_flow.errors == 0),
    ];
    for (target, met) in verdicts {
        println!("target {target}: {}", if met { "met" } else { "NOT met" });
    }
    println!("(worst gRPC p99: {worst_p99:.2} ms)\n");
}

fn tempdir(label: &str) -> Result<std::path::PathBuf, Error> {
    let dir = std::env::temp_dir().join(format!("userd-perf-{label}-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let short = std::env::args().any(|a| a == "--short");
    let seconds: f64 =
        argument("--seconds").map_or(Ok(if short { 2.0 } else { 30.0 }), |v| v.parse())?;
    let plan = Plan {
        seconds: Duration::from_secs_f64(seconds),
        warmup: Duration::from_secs_f64(if short { 0.5 } else { 3.0 }),
        read_users: if short { 100 } else { 1000 },
        binary: argument("--userd").map_or_else(default_userd_binary, Into::into),
        short,
    };
    let backend = argument("--backend").unwrap_or_else(|| "both".to_owned());
    let mut results = Vec::new();
    if backend == "both" || backend == "postgres" {
        results.push(postgres(&plan).await?);
    }
    if backend == "both" || backend == "sqlite" {
        results.push(sqlite(&plan).await?);
    }
    if backend == "logins" {
        results.push(logins_only(&plan).await?);
    }
    println!(
        "{}",
        json!({"seconds": seconds, "short": short, "results": results})
    );
    Ok(())
}
