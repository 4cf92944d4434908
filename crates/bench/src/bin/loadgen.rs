//! Drives a running userd with a closed loop of clients and reports throughput and
//! latency per step, as a table and as JSON.
//!
//! loadgen --url http://127.0.0.1:8080 --token-file data/admin.pat \
//!         [--scenario flow|read] [--clients 16] [--seconds 30] [--warmup 3] [--read-users 1000]
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::time::Duration;

use userd_bench::load::{LoadSettings, Scenario, run};
use userd_bench::{Error, argument};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let base = argument("--url").unwrap_or_else(|| "http://127.0.0.1:8080".to_owned());
    let token = match argument("--token") {
        Some(token) => token,
        None => std::fs::read_to_string(
            argument("--token-file").unwrap_or_else(|| "data/admin.pat".to_owned()),
        )?
        .trim()
        .to_owned(),
    };
    let scenario = Scenario::parse(&argument("--scenario").unwrap_or_else(|| "flow".to_owned()))
        .ok_or("--scenario is flow, read or grpc-flow")?;
    let settings = LoadSettings {
        base,
        rpc_base: argument("--rpc-url").unwrap_or_else(|| "http://127.0.0.1:8081".to_owned()),
        token,
        scenario,
        clients: argument("--clients").map_or(Ok(16), |v| v.parse())?,
        duration: Duration::from_secs_f64(argument("--seconds").map_or(Ok(30.0), |v| v.parse())?),
        warmup: Duration::from_secs_f64(argument("--warmup").map_or(Ok(3.0), |v| v.parse())?),
        read_users: argument("--read-users").map_or(Ok(1000), |v| v.parse())?,
    };
    let report = run(&settings).await?;
    println!("{}", report.table());
    println!("{}", report.json());
    if report.errors > 0 {
        eprintln!("errors: {:?}", report.first_errors);
    }
    Ok(())
}
