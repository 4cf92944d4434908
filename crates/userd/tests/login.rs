//! Passwords, sessions and lockout against the real binary, on SQLite and PostgreSQL:
//! the hard cases of docs/api.md ("Passwords, sessions and lockout").
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{Client, USERS, Userd, World, reason};
use userd_testkit::{TestDatabase, on_both_backends_blocking};

on_both_backends_blocking!(
    forty_concurrent_wrong_checks_count_exactly_the_limit_and_unlock_lets_in,
    two_processes_share_one_failure_count,
    unknown_users_and_wrong_passwords_look_alike,
    a_timed_lockout_ends_by_itself,
    sessions_are_checked_renewed_read_and_ended,
    password_rules_and_proofs,
    imported_hashes_log_in_and_no_secret_leaves_userd,
    settings_fall_back_to_the_instance_and_need_their_roles,
    reset_codes_are_single_use_and_die_after_five_wrong_tries,
    reset_codes_expire,
);

const RIGHT: &str = "Correct-Horse-7";

/// A user `id` (username = id) with [`RIGHT`] as its password, in `org`.
fn user_with_password(w: &World, id: &str, org: &str) {
    let (status, body) = w.userd.post(
        &format!("{USERS}?organization.orgId={org}"),
        &json!({
            "userId": id,
            "authenticators": {
                "usernames": [{"username": id}],
                "password": {"password": RIGHT},
            },
        }),
    );
    assert_eq!(status, 201, "{body}");
}

/// A token for a login front end: a user holding IAM_LOGIN_CLIENT.
fn login_client(w: &World) -> String {
    w.user("frontend", &w.home);
    w.grant_instance("frontend", &["IAM_LOGIN_CLIENT"]);
    w.token("frontend")
}

fn set_lockout(w: &World, org: &str, body: Value) {
    let mut body = body;
    body["ctx"] = json!({"orgId": org});
    let (status, answer) = w
        .userd
        .call("PUT", "/v2/settings/lockout", Some(&body.to_string()));
    assert_eq!(status, 200, "{answer}");
}

fn login(client: &Client, token: &str, name: &str, password: &str) -> (u16, Value) {
    let body = json!({"checks": {"user": {"loginName": name}, "password": {"password": password}}});
    client.call_as(Some(token), "POST", "/v2/sessions", Some(&body.to_string()))
}

/// (status, code, reason) of an answer.
fn outcome(answer: &(u16, Value)) -> (u16, u64, String) {
    let (status, body) = answer;
    (
        *status,
        body["code"].as_u64().unwrap_or_default(),
        reason(body).to_owned(),
    )
}

fn state_of(w: &World, id: &str) -> String {
    let (status, body) = w.userd.user(id);
    assert_eq!(status, 200, "{body}");
    body["user"]["state"].as_str().unwrap().to_owned()
}

/// Runs `count` wrong logins at once, spread over `clients`; counts the answers.
fn wrong_logins_at_once(
    clients: &[Client],
    token: &str,
    name: &str,
    count: usize,
) -> BTreeMap<(u16, u64, String), usize> {
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(count));
    let threads: Vec<_> = (0..count)
        .map(|n| {
            let client = clients[n % clients.len()].clone();
            let (token, name, barrier) = (token.to_owned(), name.to_owned(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                outcome(&login(&client, &token, &name, &format!("wrong-{n}")))
            })
        })
        .collect();
    let mut counts = BTreeMap::new();
    for thread in threads {
        *counts.entry(thread.join().unwrap()).or_default() += 1;
    }
    counts
}

fn invalid_credentials() -> (u16, u64, String) {
    (400, 3, "INVALID_CREDENTIALS".to_owned())
}

fn user_locked() -> (u16, u64, String) {
    (400, 9, "USER_LOCKED".to_owned())
}

fn forty_concurrent_wrong_checks_count_exactly_the_limit_and_unlock_lets_in(db: TestDatabase) {
    let w = World::new(db);
    user_with_password(&w, "ada", &w.home);
    let frontend = login_client(&w);
    set_lockout(&w, &w.home, json!({"maxPasswordAttempts": "5"}));

    let counts = wrong_logins_at_once(std::slice::from_ref(&w.userd.client), &frontend, "ada", 40);
    assert_eq!(
        counts,
        BTreeMap::from([(invalid_credentials(), 5), (user_locked(), 35)]),
        "exactly the limit is counted, then the user is locked"
    );
    assert_eq!(state_of(&w, "ada"), "USER_STATE_LOCKED");
    let right = login(&w.userd.client, &frontend, "ada", RIGHT);
    assert_eq!(
        outcome(&right),
        user_locked(),
        "the right password after the lock"
    );

    let (status, body) = w.userd.act("ada", "_unlock");
    assert_eq!(status, 200, "{body}");
    let (status, session) = login(&w.userd.client, &frontend, "ada", RIGHT);
    assert_eq!(status, 201, "{session}");
    assert!(
        session["sessionToken"]
            .as_str()
            .unwrap()
            .starts_with("userd_st_")
    );
    assert_eq!(state_of(&w, "ada"), "USER_STATE_ACTIVE");
}

fn two_processes_share_one_failure_count(db: TestDatabase) {
    let w = World::new(db);
    user_with_password(&w, "bob", &w.home);
    let frontend = login_client(&w);
    set_lockout(&w, &w.home, json!({"maxPasswordAttempts": 5}));
    let peer = w.userd.start_peer();

    let clients = [w.userd.client.clone(), peer.client.clone()];
    let counts = wrong_logins_at_once(&clients, &frontend, "bob", 40);
    assert_eq!(
        counts,
        BTreeMap::from([(invalid_credentials(), 5), (user_locked(), 35)]),
        "two processes, one counter"
    );
    let right = login(&peer.client, &frontend, "bob", RIGHT);
    assert_eq!(outcome(&right), user_locked());
}

/// The median time of `n` calls of `call`.
fn median_time(n: usize, mut call: impl FnMut()) -> Duration {
    let mut times: Vec<Duration> = (0..n)
        .map(|_| {
            let started = Instant::now();
            call();
            started.elapsed()
        })
        .collect();
    times.sort();
    times[n / 2]
}

fn unknown_users_and_wrong_passwords_look_alike(db: TestDatabase) {
    let w = World::new(db);
    user_with_password(&w, "cleo", &w.home);
    w.user("nopassword", &w.home);
    let (status, body) = w.userd.post(
        &format!("{USERS}/nopassword/password"),
        &json!({"newPassword": {"password": RIGHT}}),
    );
    assert_eq!(status, 200, "{body}");
    let (status, body) = w.userd.delete(&format!("{USERS}/nopassword/password"));
    assert_eq!(status, 200, "{body}");
    let frontend = login_client(&w);
    // Never locked by this test's own wrong guesses.
    set_lockout(&w, &w.home, json!({"maxPasswordAttempts": 0}));

    let wrong = login(&w.userd.client, &frontend, "cleo", "wrong-password");
    let unknown = login(&w.userd.client, &frontend, "nobody", "wrong-password");
    let without = login(&w.userd.client, &frontend, "nopassword", "wrong-password");
    assert_eq!(wrong.0, 400);
    assert_eq!(wrong, unknown, "the same status and body");
    assert_eq!(wrong, without, "the same status and body");
    assert!(!wrong.1.to_string().contains("cleo"), "{}", wrong.1);

    let time = |name: &'static str| {
        let (client, token) = (w.userd.client.clone(), frontend.clone());
        median_time(9, move || {
            login(&client, &token, name, "wrong-password");
        })
    };
    let (wrong, unknown) = (time("cleo"), time("nobody"));
    // Without a decoy verification an unknown user would answer some 20 to 50 times
    // faster (no argon2id at all). A wrong password also records the failure, a write
    // that a loaded database slows down; the bounds only have to tell the two apart on a
    // busy machine.
    let ratio = unknown.as_secs_f64() / wrong.as_secs_f64();
    assert!(
        (0.2..=5.0).contains(&ratio),
        "unknown {unknown:?} vs wrong {wrong:?}"
    );
}

fn a_timed_lockout_ends_by_itself(db: TestDatabase) {
    let w = World::new(db);
    user_with_password(&w, "dan", &w.home);
    let frontend = login_client(&w);
    set_lockout(
        &w,
        &w.home,
        json!({"maxPasswordAttempts": "2", "lockoutDuration": "1s"}),
    );
    let (status, body) = w
        .userd
        .get(&format!("/v2/settings/lockout?ctx.orgId={}", w.home));
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"settings": {"maxPasswordAttempts": "2", "lockoutDuration": "1s",
                             "resourceOwnerType": "RESOURCE_OWNER_TYPE_ORG"}})
    );

    for _ in 0..2 {
        assert_eq!(
            outcome(&login(&w.userd.client, &frontend, "dan", "nope")),
            invalid_credentials()
        );
    }
    assert_eq!(state_of(&w, "dan"), "USER_STATE_LOCKED");
    let (status, found) = w.userd.post(
        &format!("{USERS}/_search"),
        &json!({"filters": [{"stateFilter": {"state": "USER_STATE_LOCKED"}}]}),
    );
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["result"].as_array().map(Vec::len), Some(1), "{found}");

    // The lock ends when its time is up; nothing else happens meanwhile.
    let deadline = Instant::now() + Duration::from_secs(30);
    while state_of(&w, "dan") != "USER_STATE_ACTIVE" {
        assert!(Instant::now() < deadline, "the lockout never ended");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (status, found) = w.userd.post(
        &format!("{USERS}/_search"),
        &json!({"filters": [{"stateFilter": {"state": "USER_STATE_LOCKED"}}]}),
    );
    assert_eq!(status, 200, "{found}");
    assert_eq!(
        found["result"].as_array().map(Vec::len).unwrap_or(0),
        0,
        "{found}"
    );
    let (status, session) = login(&w.userd.client, &frontend, "dan", RIGHT);
    assert_eq!(status, 201, "{session}");
    // An admin lock never ends by itself, and _unlock is refused for an ended lockout.
    let (status, body) = w.userd.act("dan", "_unlock");
    assert_eq!((status, reason(&body)), (400, "USER_NOT_LOCKED"));
}

fn sessions_are_checked_renewed_read_and_ended(db: TestDatabase) {
    let w = World::new(db);
    user_with_password(&w, "eve", &w.home);
    let frontend = login_client(&w);
    let call = |method: &str, path: &str, body: Option<Value>| w.as_(&frontend, method, path, body);

    let (status, created) = call(
        "POST",
        "/v2/sessions",
        Some(json!({"checks": {"user": {"userId": "eve"}}, "lifetime": "3600s"})),
    );
    assert_eq!(status, 201, "{created}");
    let id = created["sessionId"].as_str().unwrap().to_owned();
    let first_token = created["sessionToken"].as_str().unwrap().to_owned();
    assert_eq!(created["details"]["id"], id.as_str());
    let (status, read) = call("GET", &format!("/v2/sessions/{id}"), None);
    assert_eq!(status, 200, "{read}");
    let session = &read["session"];
    assert_eq!(session["factors"]["user"]["id"], "eve");
    assert_eq!(session["factors"]["user"]["loginName"], "eve");
    assert_eq!(
        session["factors"]["user"]["organizationId"],
        w.home.as_str()
    );
    assert!(session["factors"]["password"].is_null(), "{read}");
    assert!(session["expirationDate"].is_string(), "{read}");

    let (status, checked) = call(
        "PATCH",
        &format!("/v2/sessions/{id}"),
        Some(json!({"checks": {"password": {"password": RIGHT}}})),
    );
    assert_eq!(status, 200, "{checked}");
    assert_ne!(checked["sessionToken"].as_str().unwrap(), first_token);
    let (_, read) = call("GET", &format!("/v2/sessions/{id}"), None);
    assert!(
        read["session"]["factors"]["password"]["verifiedAt"].is_string(),
        "{read}"
    );
    let (status, wrong) = call(
        "PATCH",
        &format!("/v2/sessions/{id}"),
        Some(json!({"checks": {"password": {"password": "nope"}}})),
    );
    assert_eq!((status, reason(&wrong)), (400, "INVALID_CREDENTIALS"));

    // A lock ends the session for good: unlocking does not bring it back.
    assert_eq!(w.userd.act("eve", "_lock").0, 200);
    let (status, gone) = call("GET", &format!("/v2/sessions/{id}"), None);
    assert_eq!((status, reason(&gone)), (404, "SESSION_NOT_FOUND"));
    assert_eq!(w.userd.act("eve", "_unlock").0, 200);
    let (status, _) = call("GET", &format!("/v2/sessions/{id}"), None);
    assert_eq!(status, 404);

    let (_, again) = call(
        "POST",
        "/v2/sessions",
        Some(json!({"checks": {"user": {"userId": "eve"}}})),
    );
    let id = again["sessionId"].as_str().unwrap().to_owned();
    let (status, ended) = call("DELETE", &format!("/v2/sessions/{id}"), None);
    assert_eq!(status, 200, "{ended}");
    let (status, gone) = call("DELETE", &format!("/v2/sessions/{id}"), None);
    assert_eq!((status, reason(&gone)), (404, "SESSION_NOT_FOUND"));

    // Sessions need session.write: a user manager has none.
    w.user("manager", &w.home);
    w.grant(&w.home, "manager", &["ORG_USER_MANAGER"]);
    let manager = w.token("manager");
    let (status, denied) = w.as_(
        &manager,
        "POST",
        "/v2/sessions",
        Some(json!({"checks": {"user": {"userId": "eve"}}})),
    );
    assert_eq!((status, reason(&denied)), (403, "PERMISSION_DENIED"));
    let (status, missing) = call("POST", "/v2/sessions", Some(json!({"checks": {}})));
    assert_eq!(
        (status, missing["code"].as_u64()),
        (400, Some(3)),
        "{missing}"
    );
    let (status, bad) = call(
        "POST",
        "/v2/sessions",
        Some(json!({"checks": {"user": {"userId": "eve"}}, "lifetime": "an hour"})),
    );
    assert_eq!((status, reason(&bad)), (400, "INVALID_DURATION"));
}

fn password_rules_and_proofs(db: TestDatabase) {
    let w = World::new(db);
    user_with_password(&w, "fay", &w.home);
    let path = format!("{USERS}/fay/password");
    let (status, body) = w.userd.call(
        "PUT",
        "/v2/settings/password/complexity",
        Some(
            &json!({"ctx": {"orgId": w.home}, "minLength": "10", "requiresSymbol": true})
                .to_string(),
        ),
    );
    assert_eq!(status, 200, "{body}");
    let (status, weak) = w.userd.post(
        &path,
        &json!({"newPassword": {"password": "LongEnough123"}}),
    );
    assert_eq!(
        (status, reason(&weak)),
        (400, "PASSWORD_TOO_WEAK"),
        "{weak}"
    );
    assert_eq!(weak["details"][0]["metadata"]["rule"], "requiresSymbol");
    let (status, long) = w.userd.post(
        &path,
        &json!({"newPassword": {"password": "x!".repeat(600)}}),
    );
    assert_eq!((status, reason(&long)), (400, "PASSWORD_TOO_LONG"));
    let (status, unsupported) = w.userd.post(
        &path,
        &json!({"newPassword": {"hash": "$1$salt$notsupported"}}),
    );
    assert_eq!((status, reason(&unsupported)), (400, "UNSUPPORTED_HASH"));

    // Acting on oneself without a role needs a proof.
    let fay = w.token("fay");
    let (status, needed) = w.as_(
        &fay,
        "POST",
        &path,
        Some(json!({"newPassword": {"password": "New-Pass-123!"}})),
    );
    assert_eq!(
        (status, reason(&needed)),
        (400, "CURRENT_PASSWORD_REQUIRED"),
        "{needed}"
    );
    let (status, wrong) = w.as_(
        &fay,
        "POST",
        &path,
        Some(json!({"newPassword": {"password": "New-Pass-123!", "currentPassword": "wrong"}})),
    );
    assert_eq!((status, reason(&wrong)), (400, "INVALID_CREDENTIALS"));
    let (status, changed) = w.as_(
        &fay,
        "POST",
        &path,
        Some(
            json!({"newPassword": {"password": "New-Pass-123!", "currentPassword": RIGHT,
                                     "changeRequired": true}}),
        ),
    );
    assert_eq!(status, 200, "{changed}");
    let (_, user) = w.userd.user("fay");
    let password = &user["user"]["authenticators"]["password"];
    assert!(password["lastChanged"].is_string(), "{user}");
    assert_eq!(password["changeRequired"], true);
    assert_eq!(password.as_object().unwrap().len(), 2, "no hash: {user}");

    // Someone else without user.write learns nothing, or is denied.
    w.user("viewer", &w.home);
    w.grant(&w.home, "viewer", &["ORG_USER_VIEWER"]);
    let viewer = w.token("viewer");
    let (status, denied) = w.as_(&viewer, "DELETE", &path, None);
    assert_eq!((status, reason(&denied)), (403, "PERMISSION_DENIED"));
    let (status, removed) = w.userd.delete(&path);
    assert_eq!(status, 200, "{removed}");
    let (status, again) = w.userd.delete(&path);
    assert_eq!((status, reason(&again)), (400, "PASSWORD_NOT_SET"));
}

/// Made by Python's `bcrypt` (cost 4) for "correct horse".
const BCRYPT: &str = "$2b$04$q3cyJrRgYCpG4e/XMYlR6u1QAqEVCBmsSndtvsfpj6B/wpVonX2f6";

fn imported_hashes_log_in_and_no_secret_leaves_userd(db: TestDatabase) {
    let w = World::new(db);
    let (status, body) = w.userd.post(
        USERS,
        &json!({"userId": "gus", "authenticators": {"usernames": [{"username": "gus"}],
                                                     "password": {"hash": BCRYPT}}}),
    );
    assert_eq!(status, 201, "{body}");
    let frontend = login_client(&w);
    let (status, session) = login(&w.userd.client, &frontend, "gus", "correct horse");
    assert_eq!(status, 201, "{session}");
    // The imported hash was replaced by an argon2id one; the password still works.
    let (status, session) = login(&w.userd.client, &frontend, "gus", "correct horse");
    assert_eq!(status, 201, "{session}");
    assert_eq!(
        outcome(&login(&w.userd.client, &frontend, "gus", "wrong horse")),
        invalid_credentials()
    );
    user_with_password(&w, "hal", &w.home);
    let (_, user) = w.userd.user("gus");
    let text = user.to_string();
    assert!(!text.contains("$2b$") && !text.contains("argon2"), "{text}");

    let log = w.userd.log.lock().unwrap().join("\n");
    for secret in [
        "correct horse",
        "wrong horse",
        RIGHT,
        "$2b$",
        "$argon2",
        "userd_st_",
    ] {
        assert!(!log.contains(secret), "{secret:?} is in the log");
    }
}

fn settings_fall_back_to_the_instance_and_need_their_roles(db: TestDatabase) {
    let w = World::new(db);
    let get = |query: &str| w.userd.get(&format!("/v2/settings/lockout?{query}"));
    let (status, body) = get("ctx.instance=true");
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"settings": {"maxPasswordAttempts": "10",
                             "resourceOwnerType": "RESOURCE_OWNER_TYPE_INSTANCE"}})
    );
    let (status, body) = w.userd.call(
        "PUT",
        "/v2/settings/lockout",
        Some(&json!({"ctx": {"instance": true}, "maxPasswordAttempts": 3}).to_string()),
    );
    assert_eq!(status, 200, "{body}");
    assert!(body["details"]["changeDate"].is_string(), "{body}");
    let (_, body) = get(&format!("ctx.orgId={}", w.away));
    assert_eq!(body["settings"]["maxPasswordAttempts"], "3");
    assert_eq!(
        body["settings"]["resourceOwnerType"],
        "RESOURCE_OWNER_TYPE_INSTANCE"
    );
    set_lockout(&w, &w.away, json!({"maxPasswordAttempts": "4"}));
    let (_, body) = get(&format!("ctx.orgId={}", w.away));
    assert_eq!(
        body["settings"]["resourceOwnerType"],
        "RESOURCE_OWNER_TYPE_ORG"
    );
    let (status, _) = w
        .userd
        .delete(&format!("/v2/settings/lockout?ctx.orgId={}", w.away));
    assert_eq!(status, 200);
    let (_, body) = get(&format!("ctx.orgId={}", w.away));
    assert_eq!(body["settings"]["maxPasswordAttempts"], "3");

    // ORG_OWNER may change its organization's, not the instance's; others may not.
    w.user("owner", &w.away);
    w.grant(&w.away, "owner", &["ORG_OWNER"]);
    let owner = w.token("owner");
    let put = |token: &str, ctx: Value| {
        w.as_(
            token,
            "PUT",
            "/v2/settings/lockout",
            Some(json!({"ctx": ctx, "maxPasswordAttempts": "6"})),
        )
    };
    assert_eq!(put(&owner, json!({"orgId": w.away})).0, 200);
    let (status, denied) = put(&owner, json!({"instance": true}));
    assert_eq!((status, reason(&denied)), (403, "PERMISSION_DENIED"));
    let (status, hidden) = put(&owner, json!({"orgId": w.home}));
    assert_eq!((status, reason(&hidden)), (404, "ORGANIZATION_NOT_FOUND"));
    let (status, bad) = w.userd.call(
        "PUT",
        "/v2/settings/lockout",
        Some(&json!({"ctx": {"instance": true}, "maxPasswordAttempts": "-1"}).to_string()),
    );
    assert_eq!((status, bad["code"].as_u64()), (400, Some(3)), "{bad}");
}

fn request_code(w: &World, user: &str) -> String {
    let (status, body) = w.userd.post(
        &format!("{USERS}/{user}/password/_reset"),
        &json!({"returnCode": {}}),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["details"]["id"], user);
    let code = body["verificationCode"].as_str().unwrap().to_owned();
    assert_eq!(code.len(), 8, "{code}");
    code
}

fn set_with_code(w: &World, token: &str, user: &str, code: &str, password: &str) -> (u16, Value) {
    w.as_(
        token,
        "POST",
        &format!("{USERS}/{user}/password"),
        Some(json!({"newPassword": {"password": password, "verificationCode": code}})),
    )
}

fn reset_codes_are_single_use_and_die_after_five_wrong_tries(db: TestDatabase) {
    let w = World::new(db);
    user_with_password(&w, "ida", &w.home);
    let ida = w.token("ida");
    let (status, body) = w.userd.post(
        &format!("{USERS}/ida/password/_reset"),
        &json!({"sendEmail": {}}),
    );
    assert_eq!(
        (status, reason(&body)),
        (400, "NOTIFICATIONS_NOT_CONFIGURED")
    );
    assert_eq!(body["code"], 9);

    // The user itself, holding no role, proves itself with the code.
    let code = request_code(&w, "ida");
    let (status, body) = set_with_code(&w, &ida, "ida", &code.to_lowercase(), "Second-Pass-1");
    assert_eq!(status, 200, "{body}");
    let (status, again) = set_with_code(&w, &ida, "ida", &code, "Third-Pass-1");
    assert_eq!(
        (status, reason(&again)),
        (400, "INVALID_CODE"),
        "single use"
    );
    let frontend = login_client(&w);
    assert_eq!(
        login(&w.userd.client, &frontend, "ida", "Second-Pass-1").0,
        201
    );

    // A new code voids the old one.
    let old = request_code(&w, "ida");
    let new = request_code(&w, "ida");
    assert_eq!(
        reason(&set_with_code(&w, &ida, "ida", &old, "Fourth-Pass-1").1),
        "INVALID_CODE"
    );

    // Four more wrong tries make five: the fifth still says INVALID_CODE, then the code
    // is dead, even for the right code.
    for n in 0..4 {
        let (status, wrong) = set_with_code(&w, &ida, "ida", "WRONGCOD", "Fourth-Pass-1");
        assert_eq!((status, reason(&wrong)), (400, "INVALID_CODE"), "try {n}");
    }
    let (status, dead) = set_with_code(&w, &ida, "ida", &new, "Fourth-Pass-1");
    assert_eq!(
        (status, reason(&dead), dead["code"].as_u64()),
        (400, "CODE_EXHAUSTED", Some(9))
    );
    let fresh = request_code(&w, "ida");
    assert_eq!(
        set_with_code(&w, &ida, "ida", &fresh, "Fourth-Pass-1").0,
        200
    );

    // The code proves nothing for someone else's user.
    w.user("other", &w.home);
    let other = w.token("other");
    let code = request_code(&w, "ida");
    let (status, hidden) = set_with_code(&w, &other, "ida", &code, "Fifth-Pass-1");
    assert_eq!((status, reason(&hidden)), (404, "USER_NOT_FOUND"));
}

fn reset_codes_expire(db: TestDatabase) {
    let w = World::with(Userd::start_with(
        db,
        &[("USERD__NOTIFY__CODE_TTL_SECS", "1")],
    ));
    user_with_password(&w, "jon", &w.home);
    let code = request_code(&w, "jon");
    // The code's end is a time, not an event userd announces: wait until the server's
    // clock, which read no later than ours when it answered, has passed it.
    let requested = Instant::now();
    while requested.elapsed() < Duration::from_millis(1500) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let (status, expired) = set_with_code(&w, &w.userd.token, "jon", &code, "Other-Pass-1");
    assert_eq!(
        (status, reason(&expired), expired["code"].as_u64()),
        (400, "CODE_EXPIRED", Some(9))
    );
}
