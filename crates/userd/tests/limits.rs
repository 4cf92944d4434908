//! Hostile and clumsy clients are answered or cut off without affecting the others.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::json;
use support::{USERS, Userd, reason};
use userd_testkit::TestDatabase;

fn start() -> Userd {
    Userd::start_with(
        TestDatabase::sqlite(),
        &[
            ("USERD__SERVER__CLIENT_REQUEST_TIMEOUT_MS", "800"),
            ("USERD__SERVER__KEEP_ALIVE_SECS", "1"),
        ],
    )
}

fn connect(userd: &Userd) -> TcpStream {
    let stream = TcpStream::connect(userd.base.trim_start_matches("http://")).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
}

/// Reads until the server closes the connection or the read times out; returns what came
/// and whether the server closed it.
fn read_to_close(stream: &mut TcpStream) -> (String, bool) {
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => return (String::from_utf8_lossy(&answer).into_owned(), true),
            Ok(n) => answer.extend_from_slice(&buffer[..n]),
            Err(_) => return (String::from_utf8_lossy(&answer).into_owned(), false),
        }
    }
}

#[test]
fn a_slow_client_is_cut_off_while_others_are_served() {
    let userd = start();
    let mut slow = connect(&userd);
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .unwrap(); // never finished
    let started = Instant::now();
    for _ in 0..5 {
        assert_eq!(
            userd.call_as(None, "GET", "/healthz", None).0,
            200,
            "others are served meanwhile"
        );
    }
    let (_, closed) = read_to_close(&mut slow);
    assert!(closed, "the slow connection is closed");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(500) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
}

#[test]
fn idle_keep_alive_connections_are_closed() {
    let userd = start();
    let mut idle = connect(&userd);
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let started = Instant::now();
    let (answer, closed) = read_to_close(&mut idle);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        closed && started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn too_many_or_too_large_headers_are_refused() {
    let userd = start();
    let many: String = (0..200).map(|i| format!("X-Filler-{i}: {i}\r\n")).collect();
    let huge = format!("X-Huge: {}\r\n", "a".repeat(128 * 1024));
    for extra in [many, huge] {
        let mut stream = connect(&userd);
        let request = format!("GET /healthz HTTP/1.1\r\nHost: x\r\n{extra}\r\n");
        let _ = stream.write_all(request.as_bytes());
        let (answer, _) = read_to_close(&mut stream);
        assert!(
            answer.starts_with("HTTP/1.1 431"),
            "{}",
            &answer[..answer.len().min(200)]
        );
    }
    assert_eq!(userd.call_as(None, "GET", "/healthz", None).0, 200);
}

#[test]
fn deep_json_and_long_strings_are_invalid_arguments() {
    let userd = start();
    let deep = format!(
        r#"{{"data": {{"x": {}{}}}}}"#,
        "[".repeat(5000),
        "]".repeat(5000)
    );
    let (status, body) = userd.call("POST", USERS, Some(&deep));
    assert_eq!((status, body["code"].as_u64()), (400, Some(3)), "{body}");
    let long_id = "x".repeat(10_000);
    let (status, body) = userd.user(&long_id);
    assert_eq!((status, reason(&body)), (400, "INVALID_USER_ID"));
    let long_name = json!({"authenticators": {"usernames": [{"username": "n".repeat(100_000)}]}});
    let (status, body) = userd.create(&long_name);
    assert_eq!((status, reason(&body)), (400, "INVALID_USERNAME"));
    let deep_search = format!(
        r#"[{}{}]"#,
        r#"{"notFilter": {"query": "#.repeat(300),
        r#"{"userIdFilter": {"id": "x"}}"#.to_owned() + &"}}".repeat(300)
    );
    let (status, body) = userd.call("POST", &format!("{USERS}/_search"), Some(&deep_search));
    assert_eq!((status, body["code"].as_u64()), (400, Some(3)), "{body}");
    assert_eq!(
        userd.call_as(None, "GET", "/healthz", None).0,
        200,
        "still serving"
    );
}
