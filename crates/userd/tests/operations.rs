//! Running userd as an operator does: graceful shutdown, metrics, logs, start-up
//! failures and the command line.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection, SqliteConnection};
use serde_json::{Value, json};
use support::{USERS, Userd};
use userd_testkit::{Backend, TestDatabase, on_both_backends_blocking};

on_both_backends_blocking!(
    an_in_flight_request_finishes_after_sigterm,
    an_in_flight_request_finishes_after_sigint,
    an_idle_keep_alive_connection_does_not_hold_the_stop,
    metrics_count_requests_pool_and_events,
    every_request_is_one_structured_log_line,
    a_saturated_pool_answers_503_after_a_bounded_wait,
    the_current_state_tables_are_rebuilt_from_the_log,
);

/// Holds the database's write lock from outside userd until dropped.
enum WriteLock {
    Sqlite(SqliteConnection),
    Postgres(PgConnection),
}

impl WriteLock {
    fn take(db: &TestDatabase) -> WriteLock {
        match db.backend {
            Backend::Sqlite => {
                let mut conn =
                    SqliteConnection::establish(db.url.strip_prefix("sqlite://").unwrap()).unwrap();
                conn.batch_execute("BEGIN IMMEDIATE").unwrap();
                WriteLock::Sqlite(conn)
            }
            Backend::Postgres => {
                let mut conn = PgConnection::establish(&db.url).unwrap();
                // Blocks every insert into the log; reads go on.
                conn.batch_execute("BEGIN; LOCK TABLE events IN EXCLUSIVE MODE")
                    .unwrap();
                WriteLock::Postgres(conn)
            }
        }
    }

    /// Returns once the request `request_id` waits for the lock in userd, so that it is
    /// surely in flight, however slow the machine: on PostgreSQL seen in `pg_locks`;
    /// SQLite's waiters cannot be seen, so there userd's log says that request began a
    /// write transaction, holding its connection, which the lock held here then blocks.
    fn wait_for_a_blocked_writer(&mut self, userd: &Userd, request_id: &str) {
        match self {
            WriteLock::Sqlite(_) => {
                userd.wait_for_log_line(0, |line| {
                    line.contains("beginning a write transaction") && line.contains(request_id)
                });
            }
            WriteLock::Postgres(conn) => {
                use diesel::RunQueryDsl;
                let deadline = Instant::now() + Duration::from_secs(20);
                loop {
                    let waiting: i64 =
                        diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
                            "(SELECT count(*) FROM pg_locks WHERE NOT granted \
                         AND relation = 'events'::regclass)",
                        ))
                        .get_result(conn)
                        .unwrap();
                    if waiting > 0 {
                        return;
                    }
                    assert!(
                        Instant::now() < deadline,
                        "no writer ever waited for the lock"
                    );
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
    }

    fn release(self) {
        match self {
            WriteLock::Sqlite(mut conn) => conn.batch_execute("ROLLBACK").unwrap(),
            WriteLock::Postgres(mut conn) => conn.batch_execute("ROLLBACK").unwrap(),
        }
    }
}

/// Lets a test see writes begin (see [`WriteLock::wait_for_a_blocked_writer`]), and lets
/// SQLite writers wait on the test's lock for as long as the slowest machine needs.
const WRITES_VISIBLE: [(&str, &str); 2] = [
    ("USERD__LOG__LEVEL", "info,userd_store_diesel=debug"),
    ("USERD__DATABASE__SQLITE_BUSY_TIMEOUT_MS", "120000"),
];

fn an_in_flight_request_finishes_after_sigterm(db: TestDatabase) {
    an_in_flight_request_finishes_after("-TERM", db);
}

fn an_in_flight_request_finishes_after_sigint(db: TestDatabase) {
    an_in_flight_request_finishes_after("-INT", db);
}

fn an_in_flight_request_finishes_after(signal: &str, db: TestDatabase) {
    let mut userd = Userd::start_with(db, &WRITES_VISIBLE);
    assert_eq!(userd.create(&json!({"userId": "slow"})).0, 201);
    let mut lock = WriteLock::take(&userd.db);
    let mark = userd.log_len();

    // A write that waits for the lock: in flight when the signal comes.
    let client = userd.client.clone();
    let token = userd.token.clone();
    let in_flight = std::thread::spawn(move || {
        let path = format!("{USERS}/slow/_lock");
        let headers = [("x-request-id", "in-flight-lock")];
        let (status, _, body) = client
            .exchange(Some(&token), "POST", &path, None, &headers)
            .unwrap();
        (status, body)
    });
    lock.wait_for_a_blocked_writer(&userd, "in-flight-lock");
    let pid = userd.pid().to_string();
    assert!(
        Command::new("kill")
            .args([signal, &pid])
            .status()
            .unwrap()
            .success()
    );
    userd.wait_for_log(mark, "stop signal received");
    let address = userd.base.trim_start_matches("http://").parse().unwrap();
    let stopping = Instant::now();
    while std::net::TcpStream::connect_timeout(&address, Duration::from_millis(500)).is_ok() {
        assert!(
            stopping.elapsed() < Duration::from_secs(20),
            "new connections are still accepted"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // The request cannot finish while the lock is held here.
    if let Some(exit) = userd.exit_status() {
        panic!(
            "userd exited ({exit}) before finishing the request:\n{}",
            userd.log_tail(30)
        );
    }

    lock.release();
    let (status, body) = in_flight.join().unwrap();
    assert_eq!(status, 200, "the in-flight request completed: {body}");
    let exit = userd.wait_for_exit(Duration::from_secs(10));
    assert_eq!(exit.code(), Some(0), "{}", userd.log_tail(10));
    assert!(userd.log_tail(5).contains("stopped"));
}

/// Keep-alive and grace far longer than the test waits: only closing the idle
/// connection at the stop lets userd exit in time.
fn an_idle_keep_alive_connection_does_not_hold_the_stop(db: TestDatabase) {
    use std::io::{Read, Write};
    let mut userd = Userd::start_with(
        db,
        &[
            ("USERD__SERVER__KEEP_ALIVE_SECS", "3600"),
            ("USERD__SERVER__SHUTDOWN_GRACE_SECS", "3600"),
        ],
    );
    let address = userd.base.trim_start_matches("http://");
    let mut idle = std::net::TcpStream::connect(address).unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: userd\r\n\r\n")
        .unwrap();
    idle.set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut answer = Vec::new();
    let mut chunk = [0_u8; 4096];
    while !answer.ends_with(b"}") {
        let read = idle.read(&mut chunk).unwrap();
        assert!(read > 0, "closed before answering");
        answer.extend_from_slice(&chunk[..read]);
    }
    assert!(answer.starts_with(b"HTTP/1.1 200"));

    let mark = userd.log_len();
    let pid = userd.pid().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    userd.wait_for_log(mark, "stop signal received");
    assert_eq!(
        idle.read(&mut chunk).unwrap(),
        0,
        "userd closes the idle connection"
    );
    let exit = userd.wait_for_exit(Duration::from_secs(60));
    assert_eq!(exit.code(), Some(0), "{}", userd.log_tail(10));
}

fn a_saturated_pool_answers_503_after_a_bounded_wait(db: TestDatabase) {
    let userd = Userd::start_with(
        db,
        &[
            ("USERD__DATABASE__POOL_SIZE", "1"),
            ("USERD__DATABASE__POOL_TIMEOUT_MS", "300"),
            ("USERD__SERVER__TOKEN_CACHE_MS", "2000"),
            WRITES_VISIBLE[0],
            WRITES_VISIBLE[1],
        ],
    );
    assert_eq!(userd.create(&json!({"userId": "p"})).0, 201);
    let mut lock = WriteLock::take(&userd.db);
    // This write holds the only connection while it waits for the lock.
    let client = userd.client.clone();
    let token = userd.token.clone();
    let holder = std::thread::spawn(move || {
        let path = format!("{USERS}/p/_lock");
        let headers = [("x-request-id", "pool-holder")];
        let (status, _, body) = client
            .exchange(Some(&token), "POST", &path, None, &headers)
            .unwrap();
        (status, body)
    });
    lock.wait_for_a_blocked_writer(&userd, "pool-holder");
    let started = Instant::now();
    let (status, body) = userd.user("p");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "bounded wait: {:?}",
        started.elapsed()
    );
    assert_eq!((status, body["code"].as_u64()), (503, Some(14)), "{body}");
    let (status, _) = userd.call_as(None, "GET", "/readyz", None);
    assert_eq!(status, 503, "not ready while no connection is free");
    lock.release();
    assert_eq!(holder.join().unwrap().0, 200);
    assert_eq!(
        userd.user("p").0,
        200,
        "serves again once a connection is free"
    );
}

fn metrics_count_requests_pool_and_events(db: TestDatabase) {
    let userd = Userd::start(db);
    assert_eq!(userd.create(&json!({"userId": "m1"})).0, 201);
    assert_eq!(userd.act("m1", "_lock").0, 200);
    assert_eq!(userd.act("m1", "_lock").0, 400);
    let (status, text) = userd.client.get_text("/metrics");
    assert_eq!(status, 200);
    for expected in [
        r#"userd_http_requests_total{method="POST",route="/resources/v3alpha/users/{id}/_lock",status="200"} 1"#,
        r#"userd_http_requests_total{method="POST",route="/resources/v3alpha/users/{id}/_lock",status="400"} 1"#,
        r#"userd_events_appended_total{type="user.locked"} 1"#,
        r#"userd_events_appended_total{type="user.created"} 1"#,
        r#"userd_db_pool_connections{state="idle"}"#,
        r#"userd_db_pool_connections{state="in_use"}"#,
        "userd_http_request_duration_seconds_bucket",
    ] {
        assert!(text.contains(expected), "missing {expected}:\n{text}");
    }
    assert!(!text.contains("m1"), "no raw ids in labels");
}

fn every_request_is_one_structured_log_line(db: TestDatabase) {
    let userd = Userd::start(db);
    let (status, _, _) = userd.exchange(
        Some(&userd.token),
        "POST",
        &format!("{USERS}/nobody/_unlock"),
        None,
        &[("x-request-id", "trace-me-42")],
    );
    assert_eq!(status, 404);
    userd.wait_for_log(0, "trace-me-42");
    let log = userd.log.lock().unwrap().clone();
    let lines: Vec<Value> = log
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["span"]["request_id"] == "trace-me-42")
        .collect();
    assert_eq!(lines.len(), 1, "{log:?}");
    let line = &lines[0];
    assert_eq!(line["message"], "request served");
    assert_eq!(line["route"], "/resources/v3alpha/users/{id}/_unlock");
    assert_eq!(line["status"], 404);
    assert_eq!(line["reason"], "USER_NOT_FOUND");
    assert_eq!(line["span"]["method"], "POST");
    assert!(line["latency_ms"].as_f64().is_some());
    assert!(
        line["span"]["user_id"]
            .as_str()
            .is_some_and(|id| !id.is_empty()),
        "{line}"
    );
    let everything = log.join("\n");
    assert!(
        !everything.contains(&userd.token),
        "tokens are never logged"
    );
}

/// Runs SQL on the test database from outside userd, as an operator's mistake would.
fn run_sql(db: &TestDatabase, sql: &str) {
    match db.backend {
        Backend::Sqlite => {
            SqliteConnection::establish(db.url.strip_prefix("sqlite://").unwrap())
                .unwrap()
                .batch_execute(sql)
                .unwrap();
        }
        Backend::Postgres => PgConnection::establish(&db.url)
            .unwrap()
            .batch_execute(sql)
            .unwrap(),
    }
}

fn the_current_state_tables_are_rebuilt_from_the_log(db: TestDatabase) {
    let mut userd = Userd::start(db);
    for id in ["kept", "lost", "gone"] {
        let username = json!({"username": format!("{id}-name"), "isOrganizationSpecific": true});
        let body = json!({"userId": id, "authenticators": {"usernames": [username]}});
        assert_eq!(userd.create(&body).0, 201);
    }
    assert_eq!(userd.act("kept", "_lock").0, 200);
    assert_eq!(userd.delete(&format!("{USERS}/gone")).0, 200);
    let (check, clean, stderr) = userd.run_cli(&["rebuild-projection", "--check"]);
    assert_eq!(check, 0, "the tables agree with the log: {clean}{stderr}");

    // Damage the tables behind userd's back: a row lost, a state rewritten.
    userd.stop();
    run_sql(
        &userd.db,
        "DELETE FROM usernames WHERE user_id = 'lost'; \
         DELETE FROM users WHERE id = 'lost'; \
         UPDATE users SET locked = false, state = 'USER_STATE_ACTIVE' WHERE id = 'kept';",
    );
    let (check, report, _) = userd.run_cli(&["rebuild-projection", "--check"]);
    assert_eq!(check, 1, "drift is reported: {report}");
    assert!(
        report.contains("\"lost\"") && report.contains("\"kept\""),
        "{report}"
    );

    let (code, stdout, stderr) = userd.run_cli(&["rebuild-projection"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("rows written"), "{stdout}");
    let (check, report, _) = userd.run_cli(&["rebuild-projection", "--check"]);
    assert_eq!(check, 0, "clean after the rebuild: {report}");

    userd.restart();
    let (status, kept) = userd.user("kept");
    assert_eq!(
        (status, kept["user"]["state"].as_str()),
        (200, Some("USER_STATE_LOCKED"))
    );
    assert_eq!(userd.user("lost").0, 200, "the lost row is back");
    assert_eq!(userd.user("gone").0, 404, "deleted stays deleted");
    let (status, found) = userd.post(
        &format!("{USERS}/_search"),
        &json!({"filters": [{"usernameFilter": {"username": "lost-name"}}]}),
    );
    assert_eq!(status, 200, "{found}");
    assert_eq!(
        found["result"][0]["details"]["id"], "lost",
        "its username is indexed again: {found}"
    );
}

// --- start-up and the command line --------------------------------------------------

fn userd(env: &[(&str, &str)], args: &[&str]) -> (Option<i32>, String, String, Duration) {
    let dir = tempfile::tempdir().unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_userd"));
    command
        .current_dir(dir.path())
        .env("USERD_CONFIG_DIR", dir.path().join("none"))
        .env("USERD__SERVER__PORT", "0")
        .env("USERD__SERVER__RPC_PORT", "0")
        .args(args);
    for (key, value) in env {
        command.env(key, value);
    }
    let started = Instant::now();
    let output = command.output().unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
        started.elapsed(),
    )
}

#[test]
fn a_bad_configuration_value_stops_start_up_with_its_name() {
    let (code, _, stderr, _) = userd(&[("USERD__SERVER__PORT", "eighty")], &[]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("server.port"), "{stderr}");
    let (code, _, stderr, _) = userd(&[("USERD__SERVER__PROT", "1")], &[]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("prot"), "{stderr}");
    let (code, _, stderr, _) = userd(
        &[("USERD__DATABASE__URL", "mysql://root@localhost/db")],
        &[],
    );
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("unsupported database URL scheme"),
        "{stderr}"
    );
    let (code, _, stderr, _) = userd(&[("USERD__SERVER__TOKEN_CACHE_MS", "5000")], &[]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("token_cache_ms"), "{stderr}");
}

#[test]
fn an_unreachable_database_stops_start_up_after_a_bounded_retry() {
    let (code, _, stderr, elapsed) = userd(
        &[
            (
                "USERD__DATABASE__URL",
                "postgres://postgres@127.0.0.1:1/nowhere",
            ),
            ("USERD__DATABASE__CONNECT_ATTEMPTS", "2"),
            ("USERD__DATABASE__POOL_TIMEOUT_MS", "500"),
        ],
        &[],
    );
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("cannot reach the database") && stderr.contains("2 attempts"),
        "{stderr}"
    );
    assert!(elapsed < Duration::from_secs(15), "bounded: {elapsed:?}");
}

#[test]
fn the_command_line_documents_itself_and_migrates() {
    let (code, stdout, _, _) = userd(&[], &["--version"]);
    assert_eq!(code, Some(0));
    assert!(stdout.starts_with("userd "), "{stdout}");
    let (code, stdout, _, _) = userd(&[], &["--help"]);
    assert_eq!(code, Some(0));
    for expected in [
        "serve",
        "migrate",
        "admin-token",
        "USERD__SERVER__PORT",
        "USERD__DATABASE__URL",
        "USERD__LOG__FORMAT",
    ] {
        assert!(
            stdout.contains(expected),
            "--help lacks {expected}:\n{stdout}"
        );
    }
    let db = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", db.path().join("m.db").display());
    let (code, _, stderr, _) = userd(&[("USERD__DATABASE__URL", &url)], &["migrate"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("database ready"), "{stderr}");
    let (code, _, stderr, _) = userd(&[("USERD__DATABASE__URL", &url)], &["migrate"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("applied=0") || stderr.contains("\"applied\":0"),
        "a second run applies nothing: {stderr}"
    );
}
