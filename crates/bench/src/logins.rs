//! The login benchmark: successful password logins per second through userd, against
//! what the same machine does verifying the same argon2id hashes in-process with as many
//! threads as userd hashes with; then resident memory and `/healthz` latency while 200
//! logins are in flight at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use reqwest::{Client, Method};
use serde_json::{Value, json};

use crate::load::resident_mib;
use crate::{Error, Percentiles, UserdProcess, percentiles};

const PASSWORD: &str = "Bench-Login-Secret-1";

/// What the login benchmark measured.
#[derive(Debug, Clone)]
pub struct LoginReport {
    pub hash_threads: usize,
    /// argon2id verifications per second, in-process, `hash_threads` threads.
    pub in_process_per_second: f64,
    pub clients: usize,
    /// Successful logins (`POST /v2/sessions` with the right password) per second.
    pub logins_per_second: f64,
    pub login_latency: Percentiles,
    pub errors: u64,
    pub storm_clients: usize,
    pub storm_logins: u64,
    pub storm_peak_resident_mib: f64,
    pub storm_healthz: Percentiles,
}

impl LoginReport {
    pub fn ratio(&self) -> f64 {
        if self.in_process_per_second > 0.0 {
            self.logins_per_second / self.in_process_per_second
        } else {
            0.0
        }
    }

    pub fn table(&self) -> String {
        let l = &self.login_latency;
        let h = &self.storm_healthz;
        format!(
            "| logins | per second | p50 ms | p95 ms | p99 ms | max ms |\n|---|---|---|---|---|---|\n\
             | argon2id verifications in-process, {} threads | {:.1} | | | | |\n\
             | userd, {} clients, POST /v2/sessions (right password) | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} |\n\n\
             userd / in-process: {:.2}; errors: {}\n\n\
             {} logins in flight at once: {} done, userd resident at most {:.1} MiB; \
             /healthz p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms\n",
            self.hash_threads,
            self.in_process_per_second,
            self.clients,
            self.logins_per_second,
            l.p50,
            l.p95,
            l.p99,
            l.max,
            self.ratio(),
            self.errors,
            self.storm_clients,
            self.storm_logins,
            self.storm_peak_resident_mib,
            h.p50,
            h.p99,
            h.max,
        )
    }

    pub fn json(&self) -> Value {
        json!({
            "hash_threads": self.hash_threads,
            "in_process_per_second": self.in_process_per_second,
            "clients": self.clients,
            "logins_per_second": self.logins_per_second,
            "ratio_to_in_process": self.ratio(),
            "login_latency_ms": {"p50": self.login_latency.p50, "p95": self.login_latency.p95,
                                 "p99": self.login_latency.p99, "max": self.login_latency.max},
            "errors": self.errors,
            "storm": {"clients": self.storm_clients, "logins": self.storm_logins,
                      "peak_resident_mib": self.storm_peak_resident_mib,
                      "healthz_ms": {"p50": self.storm_healthz.p50, "p99": self.storm_healthz.p99,
                                     "max": self.storm_healthz.max}},
        })
    }
}

/// argon2id verifications per second on `threads` threads for `duration`.
pub fn in_process_verifications(threads: usize, duration: Duration) -> Result<f64, Error> {
    let hash = userd_hasher::hash_blocking(PASSWORD)?;
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let (hash, done) = (hash.clone(), Arc::clone(&done));
            std::thread::spawn(move || {
                while started.elapsed() < duration {
                    if userd_hasher::verify_blocking(PASSWORD, &hash).is_ok_and(|v| v.matches) {
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().map_err(|_| "a verifying thread panicked")?;
    }
    Ok(done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64())
}

struct Api {
    client: Client,
    base: String,
    authorization: String,
}

impl Api {
    async fn call(&self, method: Method, path: &str, body: Value) -> Result<(u16, Value), Error> {
        let response = self
            .client
            .request(method, format!("{}{path}", self.base))
            .header("Authorization", &self.authorization)
            .header("Content-Type", "application/json")
            .body(body.to_string())
            .send()
            .await?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await?;
        Ok((
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        ))
    }

    async fn login(&self) -> Result<bool, Error> {
        let body = json!({"checks": {"user": {"loginName": "bench-login"},
                                     "password": {"password": PASSWORD}}});
        let (status, _) = self.call(Method::POST, "/v2/sessions", body).await?;
        Ok(status == 201)
    }
}

/// Logins by `clients` tasks for `duration` (after `warmup`): successes per second,
/// latencies, failures.
async fn logins(
    api: &Arc<Api>,
    clients: usize,
    warmup: Duration,
    duration: Duration,
) -> Result<(f64, Vec<Duration>, u64), Error> {
    let measure_from = Instant::now() + warmup;
    let stop_at = measure_from + duration;
    let errors = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let (api, errors) = (Arc::clone(api), Arc::clone(&errors));
            tokio::spawn(async move {
                let mut samples = Vec::new();
                while Instant::now() < stop_at {
                    let started = Instant::now();
                    let ok = api.login().await.unwrap_or(false);
                    if !ok {
                        errors.fetch_add(1, Ordering::Relaxed);
                    } else if started >= measure_from && Instant::now() <= stop_at {
                        samples.push(started.elapsed());
                    }
                }
                samples
            })
        })
        .collect();
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await?);
    }
    let per_second = all.len() as f64 / duration.as_secs_f64();
    Ok((per_second, all, errors.load(Ordering::Relaxed)))
}

/// Runs the whole login benchmark against a started userd.
pub async fn run(
    userd: &UserdProcess,
    clients: usize,
    storm_clients: usize,
    warmup: Duration,
    duration: Duration,
) -> Result<LoginReport, Error> {
    let hash_threads = std::thread::available_parallelism().map_or(1, usize::from);
    let api = Arc::new(Api {
        client: Client::builder()
            .pool_max_idle_per_host(storm_clients.max(clients))
            .tcp_nodelay(true)
            .build()?,
        base: userd.base.clone(),
        authorization: format!("Bearer {}", userd.token),
    });
    let user = json!({"userId": "bench-login", "authenticators": {
        "usernames": [{"username": "bench-login"}], "password": {"password": PASSWORD}}});
    let (status, body) = api
        .call(Method::POST, "/resources/v3alpha/users", user)
        .await?;
    if status != 201 {
        return Err(format!("cannot create the login user: {status} {body}").into());
    }

    let limit_duration = duration;
    let in_process = tokio::task::spawn_blocking(move || {
        in_process_verifications(hash_threads, limit_duration).map_err(|e| e.to_string())
    })
    .await??;

    let (logins_per_second, mut latencies, errors) =
        logins(&api, clients, warmup, duration).await?;

    // The storm: many more logins at once than hashing threads, while memory is sampled
    // and /healthz is asked every 50 ms.
    let pid = userd.pid();
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = {
        let sampling = Arc::clone(&sampling);
        std::thread::spawn(move || {
            let mut peak: f64 = 0.0;
            while sampling.load(Ordering::Relaxed) {
                peak = peak.max(resident_mib(pid).unwrap_or(0.0));
                std::thread::sleep(Duration::from_millis(50));
            }
            peak
        })
    };
    let prober = {
        let (api, sampling) = (Arc::clone(&api), Arc::clone(&sampling));
        tokio::spawn(async move {
            let mut samples = Vec::new();
            while sampling.load(Ordering::Relaxed) {
                let started = Instant::now();
                let answered = api
                    .client
                    .get(format!("{}/healthz", api.base))
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success());
                // A probe that failed counts as the whole wait it cost.
                samples.push(if answered {
                    started.elapsed()
                } else {
                    Duration::from_secs(60)
                });
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            samples
        })
    };
    let (_, storm, storm_errors) = logins(&api, storm_clients, Duration::ZERO, duration).await?;
    sampling.store(false, Ordering::Relaxed);
    let peak = sampler.join().map_err(|_| "the memory sampler panicked")?;
    let mut healthz = prober.await?;

    Ok(LoginReport {
        hash_threads,
        in_process_per_second: in_process,
        clients,
        logins_per_second,
        login_latency: percentiles(&mut latencies),
        errors: errors + storm_errors,
        storm_clients,
        storm_logins: storm.len() as u64,
        storm_peak_resident_mib: peak,
        storm_healthz: percentiles(&mut healthz),
    })
}
