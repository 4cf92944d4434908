//! Search latency with 100,000 users on PostgreSQL: an email-prefix search with limit 100
//! and the exact totalResult, over HTTP against the real userd. A benchmark, not a test:
//! it prints figures; `docs/benchmarks.md` records them.
//!
//! cargo build --release -p userd -p userd-bench
//! target/release/search-bench [--users 100000] [--requests 500] [--userd target/release/userd]
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::time::{Duration, Instant};

use serde_json::json;
use userd_bench::{
    BenchDatabase, Error, UserdProcess, argument, default_userd_binary, percentiles,
};

fn main() -> Result<(), Error> {
    let users: u64 = argument("--users").map_or(Ok(100_000), |v| v.parse())?;
    let requests: usize = argument("--requests").map_or(Ok(500), |v| v.parse())?;
    let binary = argument("--userd").map_or_else(default_userd_binary, Into::into);

    let database = BenchDatabase::create("search")?;
    let dir = std::env::temp_dir().join(format!("userd-search-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    // The first start migrates and bootstraps; the users are then written in bulk.
    let userd = UserdProcess::start(&binary, &database.url, &dir, &[])?;
    let started = Instant::now();
    database.execute(&format!(
        "INSERT INTO users (id, id_key, org_id, data, email, email_key, email_verified, phone_verified, \
         usernames, lifecycle, locked, state, created_at_us, changed_at_us, sequence) \
         SELECT 'bench' || n, 'bench' || n, (SELECT id FROM organizations LIMIT 1), '{{\"n\":' || n || '}}', \
                'user' || n || '@example' || (n % 10) || '.com', 'user' || n || '@example' || (n % 10) || '.com', \
                FALSE, FALSE, '[]', 'ACTIVE', n % 7 = 0, \
                CASE WHEN n % 7 = 0 THEN 'USER_STATE_LOCKED' ELSE 'USER_STATE_ACTIVE' END, \
                1700000000000000 + n * 1000, 1700000000000000 + n * 1000, 1 \
         FROM generate_series(1, {users}) AS n; ANALYZE"
    ))?;
    println!(
        "inserted {users} users in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let url = format!(
        "{}/resources/v3alpha/users/_search?query.limit=100",
        userd.base
    );
    let search = |prefix: &str, method: &str| -> Result<(Duration, u64), Error> {
        let body = json!([{"emailFilter": {"address": prefix, "method": method}}]).to_string();
        let started = Instant::now();
        let mut response = agent
            .post(&url)
            .header("Authorization", format!("Bearer {}", userd.token))
            .header("Content-Type", "application/json")
            .send(body)?;
        let answer: serde_json::Value = response.body_mut().read_json()?;
        let elapsed = started.elapsed();
        let total = answer["details"]["totalResult"]
            .as_str()
            .and_then(|t| t.parse().ok())
            .ok_or("no totalResult")?;
        Ok((elapsed, total))
    };

    println!("| search | requests | matches per search | p50 ms | p95 ms | p99 ms | max ms |");
    println!("|---|---|---|---|---|---|---|");
    let mut report = Vec::new();
    for (label, method, case) in [
        ("email prefix", "TEXT_FILTER_METHOD_STARTS_WITH", false),
        (
            "email prefix, ignoring case",
            "TEXT_FILTER_METHOD_STARTS_WITH_IGNORE_CASE",
            true,
        ),
    ] {
        // Prefixes "user10".."user99": 1,111 matches each at 100,000 users.
        let prefixes: Vec<String> = (10..100)
            .map(|n| {
                if case {
                    format!("USER{n}")
                } else {
                    format!("user{n}")
                }
            })
            .collect();
        for prefix in prefixes.iter().take(20) {
            search(prefix, method)?;
        }
        let mut samples = Vec::with_capacity(requests);
        let mut matches = 0;
        for i in 0..requests {
            let (elapsed, total) = search(&prefixes[i % prefixes.len()], method)?;
            samples.push(elapsed);
            matches = total;
        }
        let p = percentiles(&mut samples);
        println!(
            "| {label} | {requests} | {matches} | {:.2} | {:.2} | {:.2} | {:.2} |",
            p.p50, p.p95, p.p99, p.max
        );
        report.push(
            json!({"search": label, "requests": requests, "matches": matches,
                           "p50_ms": p.p50, "p95_ms": p.p95, "p99_ms": p.p99, "max_ms": p.max}),
        );
    }
    println!("{}", json!({"users": users, "results": report}));
    drop(userd);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
