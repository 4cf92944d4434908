//! Keeping working, and losing nothing, under concurrency, outages, crashes and
//! conditional writes, against the real binary.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use support::{USERS, Userd, reason};
use userd_domain::values::UserId;
use userd_ports::repository::EventLog;
use userd_store_diesel::{Database, DatabaseTarget, PoolSettings};
use userd_testkit::{TestDatabase, ThrowawayCluster, on_both_backends_blocking};

on_both_backends_blocking!(
    etags_guard_writes,
    two_processes_on_one_database_lose_nothing,
    answered_writes_survive_a_kill,
);

fn etag(headers: &[(String, String)]) -> String {
    headers
        .iter()
        .find(|(name, _)| name == "etag")
        .map(|(_, value)| value.clone())
        .expect("an ETag header")
}

fn etags_guard_writes(db: TestDatabase) {
    let userd = Userd::start(db);
    let (status, headers, _) = userd.exchange(
        Some(&userd.token),
        "POST",
        USERS,
        Some(r#"{"userId": "e"}"#),
        &[],
    );
    assert_eq!(status, 201);
    assert_eq!(etag(&headers), "\"1\"");
    let (_, headers, user) =
        userd.exchange(Some(&userd.token), "GET", &format!("{USERS}/e"), None, &[]);
    let first = etag(&headers);
    assert_eq!(first, "\"1\"");

    let lock = format!("{USERS}/e/_lock");
    let (status, headers, _) = userd.exchange(
        Some(&userd.token),
        "POST",
        &lock,
        None,
        &[("if-match", &first)],
    );
    assert_eq!(status, 200);
    let second = etag(&headers);
    assert_eq!(second, "\"2\"");

    // The old version no longer matches: 412, code 9, and nothing is written.
    let (status, _, body) = userd.exchange(
        Some(&userd.token),
        "PATCH",
        &format!("{USERS}/e"),
        Some(r#"{"data": {"x": 1}}"#),
        &[("if-match", &first)],
    );
    assert_eq!(
        (status, body["code"].as_u64(), reason(&body)),
        (412, Some(9), "ETAG_MISMATCH")
    );
    let (_, headers, after) =
        userd.exchange(Some(&userd.token), "GET", &format!("{USERS}/e"), None, &[]);
    assert_eq!(etag(&headers), second, "unchanged");
    assert!(after["user"].get("data").is_none());
    assert_ne!(
        after["user"]["details"]["changed"],
        user["user"]["details"]["changed"]
    );

    for (tag, expected) in [("*", 200), ("\"999\"", 412), ("W/\"3\"", 412)] {
        let (status, _, _) = userd.exchange(
            Some(&userd.token),
            "POST",
            &format!("{USERS}/e/_unlock"),
            None,
            &[("if-match", tag)],
        );
        assert_eq!(status, expected, "If-Match: {tag}");
    }
    let (status, _, _) = userd.exchange(
        Some(&userd.token),
        "DELETE",
        &format!("{USERS}/e"),
        None,
        &[("if-match", "\"1\"")],
    );
    assert_eq!(status, 412, "deletion is guarded too");
    assert_eq!(userd.user("e").0, 200);
}

/// A few hundred mixed writes on a handful of users through two processes sharing one
/// database: afterwards every live row is the fold of its events, each 200 wrote exactly
/// one event, and nothing answered 5xx.
fn two_processes_on_one_database_lose_nothing(db: TestDatabase) {
    const USERS_N: usize = 5;
    const WORKERS: usize = 16;
    const REQUESTS_PER_WORKER: usize = 20;
    let url = db.url.clone();
    let first = Userd::start(db);
    let second = first.start_peer();
    for i in 0..USERS_N {
        assert_eq!(first.create(&json!({"userId": format!("c{i}")})).0, 201);
    }
    let applied: Arc<Mutex<BTreeMap<String, usize>>> = Arc::default();
    let outcomes: Arc<Mutex<BTreeMap<u16, usize>>> = Arc::default();
    let workers: Vec<_> = (0..WORKERS)
        .map(|w| {
            let client = if w % 2 == 0 {
                first.client.clone()
            } else {
                second.client.clone()
            };
            let token = first.token.clone();
            let (applied, outcomes) = (Arc::clone(&applied), Arc::clone(&outcomes));
            std::thread::spawn(move || {
                for r in 0..REQUESTS_PER_WORKER {
                    let user = format!("c{}", (w * 7 + r) % USERS_N);
                    let (method, path, body) = match (w + r) % 5 {
                        0 => ("POST", format!("{USERS}/{user}/_lock"), None),
                        1 => ("POST", format!("{USERS}/{user}/_unlock"), None),
                        2 => ("POST", format!("{USERS}/{user}/_deactivate"), None),
                        3 => ("POST", format!("{USERS}/{user}/_activate"), None),
                        // A unique value: every accepted patch changes something.
                        _ => (
                            "PATCH",
                            format!("{USERS}/{user}"),
                            Some(json!({"data": {"by": w, "n": r}}).to_string()),
                        ),
                    };
                    let (status, answer) =
                        client.call_as(Some(&token), method, &path, body.as_deref());
                    assert!(status < 500, "{method} {path}: {status} {answer}");
                    match status {
                        200 => *applied.lock().unwrap().entry(user).or_default() += 1,
                        400 => assert_eq!(answer["code"], 9, "{answer}"),
                        409 => assert_eq!(answer["code"], 10, "{answer}"),
                        other => panic!("unexpected {other}: {answer}"),
                    }
                    *outcomes.lock().unwrap().entry(status).or_default() += 1;
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }
    let total: usize = outcomes.lock().unwrap().values().sum();
    assert_eq!(total, WORKERS * REQUESTS_PER_WORKER);

    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let db = Database::open(
            &DatabaseTarget::parse(&url).unwrap(),
            &PoolSettings::default(),
        )
        .unwrap();
        let applied = applied.lock().unwrap().clone();
        for i in 0..USERS_N {
            let id = format!("c{i}");
            let events = db
                .user_events(&UserId::new(id.clone()).unwrap())
                .await
                .unwrap();
            let written = events.len() - 1; // all but user.created
            assert_eq!(
                written,
                applied.get(&id).copied().unwrap_or(0),
                "user {id}: 200 answers vs events"
            );
        }
        let drift = db.verify_projection().await.unwrap();
        assert!(drift.is_clean(), "{drift:?}");
    });
    eprintln!("outcomes by status: {:?}", outcomes.lock().unwrap());
}

fn answered_writes_survive_a_kill(db: TestDatabase) {
    let mut userd = Userd::start(db);
    let created: Arc<Mutex<Vec<String>>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let client = userd.client.clone();
            let token = userd.token.clone();
            let (created, stop) = (Arc::clone(&created), Arc::clone(&stop));
            std::thread::spawn(move || {
                let mut n = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let id = format!("k{w}-{n}");
                    n += 1;
                    let body = json!({"userId": id, "data": {"n": n}}).to_string();
                    // Once the process is gone the request fails: only answered writes count.
                    if let Ok((201, _, _)) =
                        client.exchange(Some(&token), "POST", USERS, Some(&body), &[])
                    {
                        created.lock().unwrap().push(id);
                    }
                }
            })
        })
        .collect();
    // Crash once writes are surely flowing.
    let flowing = Instant::now();
    const FLOWING: usize = 20;
    while created.lock().unwrap().len() < FLOWING {
        assert!(
            flowing.elapsed() < Duration::from_secs(60),
            "no writes were answered"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    userd.crash_and_restart();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for writer in writers {
        writer.join().unwrap();
    }
    let created = created.lock().unwrap().clone();
    assert!(
        created.len() >= FLOWING,
        "the writers got going: {}",
        created.len()
    );
    for id in &created {
        let (status, body) = userd.user(id);
        assert_eq!(status, 200, "{id} was answered 201 before the kill: {body}");
    }
}

#[test]
fn a_database_outage_answers_503_and_recovers_without_a_restart() {
    let Some(cluster) = ThrowawayCluster::start() else {
        return;
    };
    let db = TestDatabase::external(cluster.url());
    let userd = Userd::start_with(
        db,
        &[
            ("USERD__DATABASE__POOL_TIMEOUT_MS", "1500"),
            ("USERD__SERVER__TOKEN_CACHE_MS", "0"),
        ],
    );
    assert_eq!(userd.create(&json!({"userId": "o"})).0, 201);

    cluster.halt();
    for (path, method) in [
        (format!("{USERS}/o"), "GET"),
        (format!("{USERS}/o/_lock"), "POST"),
    ] {
        let started = Instant::now();
        let (status, body) = userd.call(method, &path, None);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "no hang: {:?}",
            started.elapsed()
        );
        assert_eq!(
            (status, body["code"].as_u64()),
            (503, Some(14)),
            "{method} {path}: {body}"
        );
    }
    assert_eq!(userd.call_as(None, "GET", "/readyz", None).0, 503);
    assert_eq!(userd.call_as(None, "GET", "/healthz", None).0, 200);

    cluster.resume();
    let back = Instant::now();
    loop {
        let (status, _) = userd.user("o");
        if status == 200 {
            break;
        }
        assert!(
            back.elapsed() < Duration::from_secs(20),
            "userd did not come back: {status}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(userd.act("o", "_lock").0, 200, "writes work again");
    assert_eq!(userd.call_as(None, "GET", "/readyz", None).0, 200);
}
