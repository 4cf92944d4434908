//! Runs the real userd binary and talks HTTP to it, as a client would.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use userd_testkit::TestDatabase;

pub mod rpc;

pub const USERS: &str = "/resources/v3alpha/users";

type Log = Arc<Mutex<Vec<String>>>;

/// Status, response headers and JSON body of one exchange.
pub type Exchange = (u16, Vec<(String, String)>, Value);

/// An HTTP client for one userd process.
#[derive(Clone)]
pub struct Client {
    pub base: String,
    agent: ureq::Agent,
}

impl Client {
    fn new(base: String) -> Client {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into();
        Client { base, agent }
    }

    /// The full exchange: status, response headers and JSON body.
    pub fn exchange(
        &self,
        token: Option<&str>,
        method: &str,
        path: &str,
        body: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Result<Exchange, String> {
        let url = format!("{}{}", self.base, path);
        let mut request = ureq::http::Request::builder().method(method).uri(&url);
        if let Some(token) = token {
            request = request.header("Authorization", format!("Bearer {token}"));
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if body.is_some() {
            request = request.header("Content-Type", "application/json");
        }
        let request = request
            .body(body.unwrap_or("").to_owned())
            .map_err(|e| e.to_string())?;
        let sent = body.map_or(0, str::len);
        let mut response = self
            .agent
            .run(request)
            .map_err(|e| format!("{method} {url} ({sent} bytes sent): {e}"))?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    v.to_str().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        let text = response.body_mut().read_to_string().unwrap_or_default();
        let json = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text)
                .map_err(|_| format!("{method} {url} answered non-JSON: {text}"))?
        };
        Ok((status, headers, json))
    }

    pub fn call_as(
        &self,
        token: Option<&str>,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> (u16, Value) {
        let (status, _, json) = self
            .exchange(token, method, path, body, &[])
            .unwrap_or_else(|e| panic!("{e}"));
        (status, json)
    }

    /// A GET whose answer is text, not JSON.
    pub fn get_text(&self, path: &str) -> (u16, String) {
        let mut response = self
            .agent
            .get(format!("{}{}", self.base, path))
            .call()
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let status = response.status().as_u16();
        (
            status,
            response.body_mut().read_to_string().unwrap_or_default(),
        )
    }
}

/// A running userd process on a free port, with the database it serves.
pub struct Userd {
    child: Child,
    pub base: String,
    pub token: String,
    pub db: TestDatabase,
    pub log: Log,
    pub client: Client,
    extra_env: Vec<(String, String)>,
}

/// Another userd process serving the same database.
pub struct Peer {
    child: Child,
    pub client: Client,
    pub log: Log,
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn pat_path(db: &TestDatabase) -> PathBuf {
    db.dir().join("secrets/admin.pat")
}

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

impl Userd {
    pub fn start(db: TestDatabase) -> Userd {
        Userd::start_with(db, &[])
    }

    pub fn start_with(db: TestDatabase, env: &[(&str, &str)]) -> Userd {
        let extra_env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let (child, base, log) = spawn(&db, &extra_env);
        let token = std::fs::read_to_string(pat_path(&db))
            .expect("the first start writes the admin token")
            .trim()
            .to_owned();
        Userd {
            child,
            client: Client::new(base.clone()),
            base,
            token,
            db,
            log,
            extra_env,
        }
    }

    /// A second process serving the same database.
    pub fn start_peer(&self) -> Peer {
        let (child, base, log) = spawn(&self.db, &self.extra_env);
        Peer {
            child,
            client: Client::new(base),
            log,
        }
    }

    /// Runs `userd <args>` against this database: exit code, stdout, stderr.
    pub fn run_cli(&self, args: &[&str]) -> (i32, String, String) {
        let output = command(&self.db, &self.extra_env)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .expect("run userd");
        (
            output.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    /// Stops the process (SIGTERM) and starts a new one on the same database.
    pub fn restart(&mut self) {
        self.stop();
        let (child, base, log) = spawn(&self.db, &self.extra_env);
        self.child = child;
        self.client = Client::new(base.clone());
        self.base = base;
        self.log = log;
    }

    pub fn stop(&mut self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        for _ in 0..100 {
            if self.child.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Kills the process outright (SIGKILL), as a crash would, and starts a new one on
    /// the same database.
    pub fn crash_and_restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let (child, base, log) = spawn(&self.db, &self.extra_env);
        self.child = child;
        self.client = Client::new(base.clone());
        self.base = base;
        self.log = log;
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn exit_status(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Sends a request with the admin token; the body, when given, is sent as is.
    pub fn call(&self, method: &str, path: &str, body: Option<&str>) -> (u16, Value) {
        self.call_as(Some(&self.token), method, path, body)
    }

    pub fn call_as(
        &self,
        token: Option<&str>,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> (u16, Value) {
        let (status, _, json) = self.exchange(token, method, path, body, &[]);
        (status, json)
    }

    /// The full exchange: status, response headers and JSON body.
    pub fn exchange(
        &self,
        token: Option<&str>,
        method: &str,
        path: &str,
        body: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Exchange {
        self.client
            .exchange(token, method, path, body, headers)
            .unwrap_or_else(|e| panic!("{e}\nlast server log lines:\n{}", self.log_tail(8)))
    }

    /// The id of the admin the first start made, as its log line says.
    pub fn log_admin_id(&self) -> String {
        let log = self.log.lock().map(|l| l.clone()).unwrap_or_default();
        log.iter()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .find_map(|entry| entry["admin_user_id"].as_str().map(str::to_owned))
            .expect("the first start logs the admin's id")
    }

    /// The last `lines` lines the server wrote, for failure messages.
    /// `http://host:port` of the RPC listener, as userd logged it.
    pub fn rpc_base(&self) -> String {
        let line = self.wait_for_log(0, "rpc_address");
        let entry: Value = serde_json::from_str(&line).unwrap();
        format!("http://{}", entry["rpc_address"].as_str().unwrap())
    }

    /// How many log lines have been read so far: a mark for [`Userd::wait_for_log`].
    pub fn log_len(&self) -> usize {
        self.log.lock().map(|l| l.len()).unwrap_or_default()
    }

    /// Returns the first log line after `mark` that contains `needle`, once userd has
    /// written it; fails after a generous deadline.
    /// The exit status once userd has exited; fails if it is still running after `within`.
    pub fn wait_for_exit(&mut self, within: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.exit_status() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "userd did not exit:\n{}",
                self.log_tail(10)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn wait_for_log(&self, mark: usize, needle: &str) -> String {
        self.wait_for_log_line(mark, |line| line.contains(needle))
    }

    /// Returns the first log line after `mark` that `wanted` accepts, once userd has
    /// written it; fails after a generous deadline.
    pub fn wait_for_log_line(&self, mark: usize, wanted: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let found = self
                .log
                .lock()
                .ok()
                .and_then(|log| log.iter().skip(mark).find(|line| wanted(line)).cloned());
            if let Some(line) = found {
                return line;
            }
            assert!(
                Instant::now() < deadline,
                "userd never logged the line waited for:\n{}",
                self.log_tail(20)
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn log_tail(&self, lines: usize) -> String {
        let log = self.log.lock().map(|l| l.clone()).unwrap_or_default();
        log[log.len().saturating_sub(lines)..].join("\n")
    }

    pub fn get(&self, path: &str) -> (u16, Value) {
        self.call("GET", path, None)
    }

    pub fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.call("POST", path, Some(&body.to_string()))
    }

    pub fn patch(&self, path: &str, body: &Value) -> (u16, Value) {
        self.call("PATCH", path, Some(&body.to_string()))
    }

    pub fn delete(&self, path: &str) -> (u16, Value) {
        self.call("DELETE", path, None)
    }

    /// POST /users/{id}/{action} with no body.
    pub fn act(&self, id: &str, action: &str) -> (u16, Value) {
        self.call("POST", &format!("{USERS}/{id}/{action}"), None)
    }

    pub fn create(&self, body: &Value) -> (u16, Value) {
        self.post(USERS, body)
    }

    pub fn user(&self, id: &str) -> (u16, Value) {
        self.get(&format!("{USERS}/{id}"))
    }
}

impl Drop for Userd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn command(db: &TestDatabase, extra_env: &[(String, String)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_userd"));
    command
        .current_dir(db.dir())
        .env("USERD_CONFIG_DIR", workspace_root().join("config"))
        .env("USERD__SERVER__PORT", "0")
        .env("USERD__SERVER__RPC_PORT", "0")
        .env("USERD__SERVER__WORKERS", "2")
        .env("USERD__DATABASE__URL", &db.url)
        .env("USERD__BOOTSTRAP__ADMIN_PAT_PATH", pat_path(db))
        .env("USERD__LOG__FORMAT", "json")
        .env("USERD__LOG__LEVEL", "info");
    for (key, value) in extra_env {
        command.env(key, value);
    }
    command
}

fn spawn(db: &TestDatabase, extra_env: &[(String, String)]) -> (Child, String, Log) {
    let mut child = command(db, extra_env)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start userd");
    let log: Log = Arc::new(Mutex::new(Vec::new()));
    let (address_tx, address_rx) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    {
        let log = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(entry) = serde_json::from_str::<Value>(&line)
                    && let Some(address) = entry["address"].as_str()
                {
                    let _ = address_tx.send(address.to_owned());
                }
                log.lock().unwrap().push(line);
            }
        });
    }
    {
        let log = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                log.lock().unwrap().push(format!("stderr: {line}"));
            }
        });
    }
    match address_rx.recv_timeout(Duration::from_secs(60)) {
        Ok(address) => (child, format!("http://{address}"), log),
        Err(_) => {
            let _ = child.kill();
            let lines = log.lock().unwrap().join("\n");
            panic!("userd did not start listening:\n{lines}");
        }
    }
}

/// Two organizations, the bootstrap one ("home") and "away", and helpers to act in them.
pub struct World {
    pub userd: Userd,
    pub home: String,
    pub away: String,
}

impl World {
    pub fn new(db: TestDatabase) -> World {
        World::with(Userd::start(db))
    }

    pub fn with(userd: Userd) -> World {
        let (status, created) = userd.create(&json!({"userId": "probe"}));
        assert_eq!(status, 201, "{created}");
        let home = created["details"]["owner"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let (status, org) = userd.post("/v2/organizations", &json!({"name": "Away"}));
        assert_eq!(status, 201, "{org}");
        let away = org["organizationId"].as_str().unwrap().to_owned();
        assert_eq!(org["details"]["id"], away.as_str());
        assert_eq!(org["details"]["owner"]["type"], "OWNER_TYPE_INSTANCE");
        World { userd, home, away }
    }

    /// A user with a verified e-mail address in `org`, made by the admin.
    pub fn user(&self, id: &str, org: &str) {
        let email = json!({"address": format!("{id}@example.com"), "isVerified": true});
        let (status, body) = self.userd.post(
            &format!("{USERS}?organization.orgId={org}"),
            &json!({"userId": id, "contact": {"email": email}}),
        );
        assert_eq!(status, 201, "{body}");
    }

    pub fn grant(&self, org: &str, user: &str, roles: &[&str]) {
        let (status, body) = self.userd.post(
            &format!("/v2/organizations/{org}/members"),
            &json!({"userId": user, "roles": roles}),
        );
        assert_eq!(status, 200, "{body}");
    }

    pub fn grant_instance(&self, user: &str, roles: &[&str]) {
        let (status, body) = self.userd.post(
            "/v2/instance/members",
            &json!({"userId": user, "roles": roles}),
        );
        assert_eq!(status, 200, "{body}");
    }

    /// A token for `user`, minted by the admin.
    pub fn token(&self, user: &str) -> String {
        self.token_by(None, user)
    }

    /// A token for `user`, minted with `issuer` (the admin's token when `None`).
    pub fn token_by(&self, issuer: Option<&str>, user: &str) -> String {
        let issuer = issuer.unwrap_or(&self.userd.token);
        let (status, body) = self.as_(
            issuer,
            "POST",
            &format!("{USERS}/{user}/pats"),
            Some(json!({})),
        );
        assert_eq!(status, 201, "{body}");
        body["personalAccessToken"].as_str().unwrap().to_owned()
    }

    pub fn as_(&self, token: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let body = body.map(|b| b.to_string());
        self.userd
            .call_as(Some(token), method, path, body.as_deref())
    }
}

/// The reason of an error body.
pub fn reason(body: &Value) -> &str {
    body["details"][0]["reason"].as_str().unwrap_or_default()
}

pub fn assert_rfc3339_utc(text: &Value) {
    let text = text
        .as_str()
        .unwrap_or_else(|| panic!("not a string: {text}"));
    assert!(text.ends_with('Z'), "{text}");
    let fraction = text
        .split('.')
        .nth(1)
        .map_or(0, |f| f.trim_end_matches('Z').len());
    assert!([0, 3, 6, 9].contains(&fraction), "{text}");
    assert!(text.len() >= 20 && text.as_bytes()[10] == b'T', "{text}");
}
