//! A closed-loop load generator: N clients, each sending its next request as soon as the
//! previous one is answered, for a fixed time. Latencies are recorded per step.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use reqwest::{Client, Method};
use serde_json::{Value, json};

use buffa::MessageField;
use bytes::Bytes;
use connectrpc::Protocol;
use connectrpc::client::{BoxFuture, ClientBody, ClientConfig, ClientTransport};
use http_body_util::BodyExt;
use userd_api_rpc::proto::zitadel::resources::user::v3alpha as v3;
use v3::ZitadelUsersClient;

use crate::{Error, Percentiles, percentiles};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scenario {
    /// create → get → patch → lock → unlock → delete, one new user per iteration.
    Flow,
    /// GET of existing users.
    Read,
    /// The flow's six steps through the RPC port: v3alpha ZITADELUsers over gRPC.
    GrpcFlow,
}

impl Scenario {
    pub fn parse(name: &str) -> Option<Scenario> {
        match name {
            "flow" => Some(Scenario::Flow),
            "read" => Some(Scenario::Read),
            "grpc-flow" => Some(Scenario::GrpcFlow),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Scenario::Flow => "flow",
            Scenario::Read => "read",
            Scenario::GrpcFlow => "grpc-flow",
        }
    }

    pub fn steps(self) -> &'static [&'static str] {
        match self {
            Scenario::Flow | Scenario::GrpcFlow => {
                &["create", "get", "patch", "lock", "unlock", "delete"]
            }
            Scenario::Read => &["get"],
        }
    }
}

#[derive(Clone, Debug)]
pub struct LoadSettings {
    pub base: String,
    /// The RPC listener, for the gRPC scenario.
    pub rpc_base: String,
    pub token: String,
    pub scenario: Scenario,
    pub clients: usize,
    pub duration: Duration,
    pub warmup: Duration,
    /// Read: how many users to create first and read at random.
    pub read_users: usize,
}

#[derive(Debug, Clone)]
pub struct StepReport {
    pub step: &'static str,
    pub requests: usize,
    pub latency: Percentiles,
}

#[derive(Debug, Clone)]
pub struct LoadReport {
    pub scenario: Scenario,
    pub clients: usize,
    pub seconds: f64,
    pub iterations: u64,
    pub requests: u64,
    pub errors: u64,
    pub first_errors: Vec<String>,
    pub steps: Vec<StepReport>,
    /// Every measured latency, per step, so that reports of several rounds can be
    /// combined into one with true percentiles.
    samples: Samples,
}

impl LoadReport {
    /// One report for several rounds of the same scenario: their iterations over their
    /// summed time, their latencies pooled.
    pub fn combine(rounds: Vec<LoadReport>) -> Option<LoadReport> {
        let mut rounds = rounds.into_iter();
        let mut all = rounds.next()?;
        for round in rounds {
            all.seconds += round.seconds;
            all.iterations += round.iterations;
            all.requests += round.requests;
            all.errors += round.errors;
            all.first_errors.extend(round.first_errors);
            for (pooled, more) in all.samples.iter_mut().zip(round.samples) {
                pooled.extend(more);
            }
        }
        all.first_errors.truncate(5);
        all.steps = step_reports(all.scenario, &mut all.samples);
        Some(all)
    }

    pub fn iterations_per_second(&self) -> f64 {
        self.iterations as f64 / self.seconds
    }

    pub fn requests_per_second(&self) -> f64 {
        self.requests as f64 / self.seconds
    }

    pub fn table(&self) -> String {
        let mut out = format!(
            "{} with {} clients for {:.0} s: {:.1} iterations/s, {:.1} requests/s, {} errors\n\n\
             | step | requests | p50 ms | p95 ms | p99 ms | max ms |\n|---|---|---|---|---|---|\n",
            self.scenario.name(),
            self.clients,
            self.seconds,
            self.iterations_per_second(),
            self.requests_per_second(),
            self.errors
        );
        for step in &self.steps {
            let p = step.latency;
            out.push_str(&format!(
                "| {} | {} | {:.2} | {:.2} | {:.2} | {:.2} |\n",
                step.step, step.requests, p.p50, p.p95, p.p99, p.max
            ));
        }
        out
    }

    pub fn json(&self) -> Value {
        json!({
            "scenario": self.scenario.name(),
            "clients": self.clients,
            "seconds": self.seconds,
            "iterations": self.iterations,
            "iterations_per_second": self.iterations_per_second(),
            "requests_per_second": self.requests_per_second(),
            "errors": self.errors,
            "first_errors": self.first_errors,
            "steps": self.steps.iter().map(|s| json!({
                "step": s.step, "requests": s.requests,
                "p50_ms": s.latency.p50, "p95_ms": s.latency.p95,
                "p99_ms": s.latency.p99, "max_ms": s.latency.max,
            })).collect::<Vec<_>>(),
        })
    }
}

struct Shared {
    client: Client,
    /// A gRPC channel (its own HTTP/2 connection) per client task, as the REST clients
    /// each keep their own keep-alive connection.
    rpc: Vec<ZitadelUsersClient<Http2Channel>>,
    base: String,
    authorization: String,
    errors: AtomicU64,
    first_errors: std::sync::Mutex<Vec<String>>,
}

impl Shared {
    /// One request; `Ok(latency)` when answered with the expected status.
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<String>,
        expect: u16,
        // Most steps need only the status, as pgbench needs no results: parse only when
        // asked.
        parse: bool,
    ) -> Option<(Duration, Value)> {
        let started = Instant::now();
        let mut request = self
            .client
            .request(method.clone(), format!("{}{}", self.base, path))
            .header("Authorization", &self.authorization);
        if let Some(body) = body {
            request = request
                .header("Content-Type", "application/json")
                .body(body);
        }
        let outcome = match request.send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                let bytes = response.bytes().await.unwrap_or_default();
                let elapsed = started.elapsed();
                if status == expect {
                    let answer = if parse {
                        serde_json::from_slice(&bytes).unwrap_or(Value::Null)
                    } else {
                        Value::Null
                    };
                    return Some((elapsed, answer));
                }
                format!(
                    "{method} {path}: {status} {}",
                    String::from_utf8_lossy(&bytes)
                )
            }
            Err(error) => format!("{method} {path}: {error}"),
        };
        self.errors.fetch_add(1, Ordering::Relaxed);
        let mut first = self.first_errors.lock().unwrap_or_else(|p| p.into_inner());
        if first.len() < 5 {
            first.push(outcome);
        }
        None
    }
}

type Samples = Vec<Vec<Duration>>;

/// One HTTP/2 connection, as a gRPC channel, on the `h2` crate that hyper's HTTP/2 is
/// built on. Each client task has its own, as each REST client has its own keep-alive
/// connection.
///
/// Not hyper's client connection: it opens a request's stream before its body may be
/// sent, so every unary call's DATA frame waits for a second task and leaves in a second
/// write after the HEADERS frame (strace: two writev calls per call). gRPC's own clients
/// write a unary call's HEADERS and DATA together; here the message is queued on the
/// stream right behind its headers and both leave in one write.
#[derive(Clone)]
struct Http2Channel {
    sender: h2::client::SendRequest<Bytes>,
}

impl ClientTransport for Http2Channel {
    type ResponseBody = Http2Answer;
    type Error = std::io::Error;

    fn send(
        &self,
        request: hyper::Request<ClientBody>,
    ) -> BoxFuture<'static, Result<hyper::Response<Http2Answer>, std::io::Error>> {
        let sender = self.sender.clone();
        Box::pin(async move {
            let (head, body) = request.into_parts();
            let message = body
                .collect()
                .await
                .map_err(std::io::Error::other)?
                .to_bytes();
            let mut sender = sender.ready().await.map_err(std::io::Error::other)?;
            let (answer, mut stream) = sender
                .send_request(hyper::Request::from_parts(head, ()), false)
                .map_err(std::io::Error::other)?;
            stream
                .send_data(message, true)
                .map_err(std::io::Error::other)?;
            let answer = answer.await.map_err(std::io::Error::other)?;
            Ok(answer.map(|stream| Http2Answer {
                stream,
                data_done: false,
            }))
        })
    }
}

/// An answer's body: its DATA frames, then its trailers (where gRPC puts the status).
struct Http2Answer {
    stream: h2::RecvStream,
    data_done: bool,
}

impl http_body::Body for Http2Answer {
    type Data = Bytes;
    type Error = h2::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, h2::Error>>> {
        use std::task::Poll;
        if !self.data_done {
            match self.stream.poll_data(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(data))) => {
                    // Hand the window back, or the connection stalls once 64 KiB of
                    // answers have been read.
                    let _ = self.stream.flow_control().release_capacity(data.len());
                    return Poll::Ready(Some(Ok(http_body::Frame::data(data))));
                }
                Poll::Ready(Some(Err(error))) => return Poll::Ready(Some(Err(error))),
                Poll::Ready(None) => self.data_done = true,
            }
        }
        match self.stream.poll_trailers(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(Some(trailers))) => {
                Poll::Ready(Some(Ok(http_body::Frame::trailers(trailers))))
            }
            Poll::Ready(Ok(None)) => Poll::Ready(None),
            Poll::Ready(Err(error)) => Poll::Ready(Some(Err(error))),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.stream.is_end_stream()
    }
}

/// Opens `count` HTTP/2 connections to the RPC port.
async fn rpc_channels(base: &str, count: usize) -> Result<Vec<Http2Channel>, Error> {
    let uri: hyper::Uri = base.parse()?;
    let address = format!(
        "{}:{}",
        uri.host().ok_or("the RPC URL has no host")?,
        uri.port_u16().unwrap_or(80)
    );
    let mut channels = Vec::with_capacity(count);
    for _ in 0..count {
        let stream = tokio::net::TcpStream::connect(&address).await?;
        stream.set_nodelay(true)?;
        let (sender, connection) = h2::client::handshake(stream).await?;
        tokio::spawn(connection);
        channels.push(Http2Channel { sender });
    }
    Ok(channels)
}

async fn flow_iteration(shared: &Shared, client: usize, n: u64, samples: &mut Samples) -> bool {
    const USERS: &str = "/resources/v3alpha/users";
    let name = format!("load-{client}-{n}-{}", std::process::id());
    let create = json!({
        "data": {"givenName": "Ada", "familyName": "Lovelace", "n": n},
        "contact": {"email": {"address": format!("{name}@example.com"), "isVerified": true}},
        "authenticators": {"usernames": [{"username": name, "isOrganizationSpecific": true}]},
    });
    let Some((latency, created)) = shared
        .send(Method::POST, USERS, Some(create.to_string()), 201, true)
        .await
    else {
        return false;
    };
    samples[0].push(latency);
    let Some(id) = created["details"]["id"].as_str().map(str::to_owned) else {
        return false;
    };
    let user = format!("{USERS}/{id}");
    let steps: [(Method, String, Option<String>); 5] = [
        (Method::GET, user.clone(), None),
        (
            Method::PATCH,
            user.clone(),
            Some(json!({"data": {"givenName": "Augusta", "n": n}}).to_string()),
        ),
        (Method::POST, format!("{user}/_lock"), None),
        (Method::POST, format!("{user}/_unlock"), None),
        (Method::DELETE, user, None),
    ];
    for (i, (method, path, body)) in steps.into_iter().enumerate() {
        match shared.send(method, &path, body, 200, false).await {
            Some((latency, _)) => samples[i + 1].push(latency),
            None => return false,
        }
    }
    true
}

impl Shared {
    /// Times one RPC; counts and keeps its error when it fails.
    async fn rpc<T, F>(&self, step: &str, call: F) -> Option<(Duration, T)>
    where
        F: std::future::Future<Output = Result<T, connectrpc::ConnectError>>,
    {
        let started = Instant::now();
        match call.await {
            Ok(answer) => Some((started.elapsed(), answer)),
            Err(error) => {
                self.errors.fetch_add(1, Ordering::Relaxed);
                let mut first = self.first_errors.lock().unwrap_or_else(|p| p.into_inner());
                if first.len() < 5 {
                    first.push(format!("{step}: {error:?}"));
                }
                None
            }
        }
    }
}

/// The flow over gRPC, step for step what [`flow_iteration`] sends over REST.
async fn grpc_flow_iteration(
    shared: &Shared,
    client: usize,
    n: u64,
    samples: &mut Samples,
) -> bool {
    let rpc = &shared.rpc[client % shared.rpc.len()];
    let name = format!("grpc-{client}-{n}-{}", std::process::id());
    let data = |given: &str| {
        let fields = json!({"givenName": given, "familyName": "Lovelace", "n": n});
        serde_json::from_value::<buffa_types::google::protobuf::Struct>(fields)
            .ok()
            .into()
    };
    let create = v3::CreateUserRequest {
        user: MessageField::some(v3::CreateUser {
            data: data("Ada"),
            contact: MessageField::some(v3::SetContact {
                email: MessageField::some(v3::SetEmail {
                    address: format!("{name}@example.com"),
                    verification: Some(v3::__buffa::oneof::set_email::Verification::IsVerified(
                        true,
                    )),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            authenticators: MessageField::some(v3::SetAuthenticators {
                usernames: vec![v3::SetUsername {
                    username: name,
                    is_organization_specific: true,
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let Some((latency, created)) = shared.rpc("create", rpc.create_user(create)).await else {
        return false;
    };
    samples[0].push(latency);
    let id = created.into_owned().details.id.clone();
    let get = v3::GetUserRequest {
        id: id.clone(),
        ..Default::default()
    };
    let Some((latency, _)) = shared.rpc("get", rpc.get_user(get)).await else {
        return false;
    };
    samples[1].push(latency);
    let patch = v3::PatchUserRequest {
        id: id.clone(),
        user: MessageField::some(v3::PatchUser {
            data: data("Augusta"),
            ..Default::default()
        }),
        ..Default::default()
    };
    let Some((latency, _)) = shared.rpc("patch", rpc.patch_user(patch)).await else {
        return false;
    };
    samples[2].push(latency);
    let lock = v3::LockUserRequest {
        id: id.clone(),
        ..Default::default()
    };
    let Some((latency, _)) = shared.rpc("lock", rpc.lock_user(lock)).await else {
        return false;
    };
    samples[3].push(latency);
    let unlock = v3::UnlockUserRequest {
        id: id.clone(),
        ..Default::default()
    };
    let Some((latency, _)) = shared.rpc("unlock", rpc.unlock_user(unlock)).await else {
        return false;
    };
    samples[4].push(latency);
    let delete = v3::DeleteUserRequest {
        id,
        ..Default::default()
    };
    let Some((latency, _)) = shared.rpc("delete", rpc.delete_user(delete)).await else {
        return false;
    };
    samples[5].push(latency);
    true
}

/// Creates the users the read scenario reads; returns their ids.
async fn prepare_reads(shared: &Shared, count: usize) -> Result<Vec<String>, Error> {
    let mut ids = Vec::with_capacity(count);
    for n in 0..count {
        let body = json!({"data": {"n": n}, "contact": {"email": {"address": format!("read{n}@example.com")}}});
        let (_, created) = shared
            .send(
                Method::POST,
                "/resources/v3alpha/users",
                Some(body.to_string()),
                201,
                true,
            )
            .await
            .ok_or("could not create the users to read")?;
        ids.push(created["details"]["id"].as_str().ok_or("no id")?.to_owned());
    }
    Ok(ids)
}

pub async fn run(settings: &LoadSettings) -> Result<LoadReport, Error> {
    let client = Client::builder()
        .pool_max_idle_per_host(settings.clients)
        .tcp_nodelay(true)
        .build()?;
    let rpc_config = ClientConfig::new(settings.rpc_base.parse()?)
        .with_protocol(Protocol::Grpc)
        .proto()
        .with_default_header("authorization", format!("Bearer {}", settings.token));
    let shared = Arc::new(Shared {
        client,
        rpc: rpc_channels(&settings.rpc_base, settings.clients.max(1))
            .await?
            .into_iter()
            .map(|channel| ZitadelUsersClient::new(channel, rpc_config.clone()))
            .collect(),
        base: settings.base.clone(),
        authorization: format!("Bearer {}", settings.token),
        errors: AtomicU64::new(0),
        first_errors: std::sync::Mutex::new(Vec::new()),
    });
    let readable = match settings.scenario {
        Scenario::Read => Arc::new(prepare_reads(&shared, settings.read_users).await?),
        Scenario::Flow | Scenario::GrpcFlow => Arc::new(Vec::new()),
    };
    let started = Instant::now();
    let measure_from = started + settings.warmup;
    let stop_at = measure_from + settings.duration;
    let iterations = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for client in 0..settings.clients {
        let (shared, readable, iterations) = (
            Arc::clone(&shared),
            Arc::clone(&readable),
            Arc::clone(&iterations),
        );
        let scenario = settings.scenario;
        tasks.push(tokio::spawn(async move {
            let mut samples: Samples = vec![Vec::new(); scenario.steps().len()];
            let mut scratch: Samples = vec![Vec::new(); scenario.steps().len()];
            let mut n: u64 = 0;
            let mut next = client.wrapping_mul(7919);
            loop {
                let now = Instant::now();
                if now >= stop_at {
                    break;
                }
                let measuring = now >= measure_from;
                let target = if measuring {
                    &mut samples
                } else {
                    &mut scratch
                };
                let ok = match scenario {
                    Scenario::Flow => flow_iteration(&shared, client, n, target).await,
                    Scenario::GrpcFlow => grpc_flow_iteration(&shared, client, n, target).await,
                    Scenario::Read => {
                        next = next.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                        let id = &readable[next % readable.len().max(1)];
                        match shared
                            .send(
                                Method::GET,
                                &format!("/resources/v3alpha/users/{id}"),
                                None,
                                200,
                                false,
                            )
                            .await
                        {
                            Some((latency, _)) => {
                                target[0].push(latency);
                                true
                            }
                            None => false,
                        }
                    }
                };
                n += 1;
                if ok && measuring && Instant::now() <= stop_at {
                    iterations.fetch_add(1, Ordering::Relaxed);
                }
            }
            samples
        }));
    }
    let mut merged: Samples = vec![Vec::new(); settings.scenario.steps().len()];
    for task in tasks {
        for (all, mine) in merged.iter_mut().zip(task.await?) {
            all.extend(mine);
        }
    }
    let seconds = settings.duration.as_secs_f64();
    let requests = merged.iter().map(Vec::len).sum::<usize>() as u64;
    let steps = step_reports(settings.scenario, &mut merged);
    let errors = shared.errors.load(Ordering::Relaxed);
    let first_errors = shared
        .first_errors
        .lock()
        .map(|e| e.clone())
        .unwrap_or_default();
    Ok(LoadReport {
        scenario: settings.scenario,
        clients: settings.clients,
        seconds,
        iterations: iterations.load(Ordering::Relaxed),
        requests,
        errors,
        first_errors,
        steps,
        samples: merged,
    })
}

fn step_reports(scenario: Scenario, samples: &mut Samples) -> Vec<StepReport> {
    scenario
        .steps()
        .iter()
        .zip(samples.iter_mut())
        .map(|(step, samples)| StepReport {
            step,
            requests: samples.len(),
            latency: percentiles(samples),
        })
        .collect()
}

/// Resident memory of a process, in MiB, from /proc.
pub fn resident_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: f64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kib / 1024.0)
}

/// Sorted step names to reports, for lookups.
pub fn by_step(report: &LoadReport) -> BTreeMap<&'static str, &StepReport> {
    report.steps.iter().map(|s| (s.step, s)).collect()
}
