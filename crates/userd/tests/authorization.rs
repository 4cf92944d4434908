//! Organizations, roles and tokens over HTTP against the real binary, on SQLite and on
//! PostgreSQL: the corners of the role matrix, every escalation path, revocation and
//! expiry (also across two processes), and the recovery command.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{USERS, World, reason};
use userd_testkit::{TestDatabase, on_both_backends_blocking};

on_both_backends_blocking!(
    org_roles_reach_their_organization_only,
    instance_roles_reach_every_organization,
    no_path_escalates_privilege,
    tokens_stop_on_revocation_expiry_and_standing,
    revocation_reaches_every_process_within_two_seconds,
    the_recovery_command_issues_a_working_owner_token,
);

fn org_roles_reach_their_organization_only(db: TestDatabase) {
    let w = World::new(db);
    w.user("alice", &w.home);
    w.user("bob", &w.away);
    w.user("viewer", &w.home);
    w.user("manager", &w.home);
    w.grant(&w.home, "viewer", &["ORG_USER_VIEWER"]);
    w.grant(&w.home, "manager", &["ORG_USER_MANAGER"]);
    let viewer = w.token("viewer");
    let manager = w.token("manager");

    // A viewer reads in its organization, and learns nothing elsewhere.
    assert_eq!(
        w.as_(&viewer, "GET", &format!("{USERS}/alice"), None).0,
        200
    );
    let (status, body) = w.as_(&viewer, "POST", &format!("{USERS}/alice/_lock"), None);
    assert_eq!((status, body["code"].as_u64()), (403, Some(7)), "{body}");
    let (status, hidden) = w.as_(&viewer, "POST", &format!("{USERS}/bob/_unlock"), None);
    assert_eq!(
        (status, hidden["code"].as_u64(), reason(&hidden)),
        (404, Some(5), "USER_NOT_FOUND")
    );
    // The same request once bob is really gone answers exactly the same.
    assert_eq!(w.userd.delete(&format!("{USERS}/bob")).0, 200);
    let (status, missing) = w.as_(&viewer, "POST", &format!("{USERS}/bob/_unlock"), None);
    assert_eq!(
        (status, &missing),
        (404, &hidden),
        "hidden and missing are indistinguishable"
    );

    // A manager writes and deletes in its organization only.
    assert_eq!(
        w.as_(&manager, "POST", &format!("{USERS}/alice/_lock"), None)
            .0,
        200
    );
    assert_eq!(
        w.as_(&manager, "POST", &format!("{USERS}/alice/_unlock"), None)
            .0,
        200
    );
    let (status, created) = w.as_(&manager, "POST", USERS, Some(json!({"userId": "carol"})));
    assert_eq!(status, 201, "{created}");
    assert_eq!(
        created["details"]["owner"]["id"],
        w.home.as_str(),
        "created in the caller's own organization"
    );
    let (status, body) = w.as_(
        &manager,
        "POST",
        &format!("{USERS}?organization.orgId={}", w.away),
        Some(json!({"userId": "dave"})),
    );
    assert_eq!((status, reason(&body)), (404, "ORGANIZATION_NOT_FOUND"));
    let (status, body) = w.as_(&viewer, "POST", USERS, Some(json!({"userId": "erin"})));
    assert_eq!((status, body["code"].as_u64()), (403, Some(7)));
    assert_eq!(
        w.as_(&manager, "DELETE", &format!("{USERS}/carol"), None).0,
        200
    );

    // Organizations are visible to their members only.
    assert_eq!(
        w.as_(
            &viewer,
            "GET",
            &format!("/v2/organizations/{}", w.home),
            None
        )
        .0,
        200
    );
    let (status, body) = w.as_(
        &viewer,
        "GET",
        &format!("/v2/organizations/{}", w.away),
        None,
    );
    assert_eq!((status, reason(&body)), (404, "ORGANIZATION_NOT_FOUND"));
    // A user with no role at all sees nothing, but is authenticated.
    w.user("nobody", &w.home);
    let nobody = w.token("nobody");
    let (status, body) = w.as_(&nobody, "GET", &format!("{USERS}/alice"), None);
    assert_eq!((status, reason(&body)), (404, "USER_NOT_FOUND"));
}

fn instance_roles_reach_every_organization(db: TestDatabase) {
    let w = World::new(db);
    w.user("bob", &w.away);
    w.user("ops", &w.home);
    w.grant_instance("ops", &["IAM_USER_MANAGER"]);
    let ops = w.token("ops");
    assert_eq!(
        w.as_(&ops, "POST", &format!("{USERS}/bob/_lock"), None).0,
        200
    );
    assert_eq!(
        w.as_(&ops, "GET", &format!("/v2/organizations/{}", w.away), None)
            .0,
        200
    );
    let (status, body) = w.as_(
        &ops,
        "POST",
        "/v2/organizations",
        Some(json!({"name": "Mine"})),
    );
    assert_eq!(
        (status, body["code"].as_u64()),
        (403, Some(7)),
        "only IAM_OWNER creates organizations"
    );
    let (status, _) = w.as_(
        &ops,
        "POST",
        &format!("/v2/organizations/{}/members", w.away),
        Some(json!({"userId": "ops", "roles": ["ORG_USER_VIEWER"]})),
    );
    assert_eq!(status, 403, "user management is not member management");
    let (status, body) = w.as_(&ops, "POST", &format!("{USERS}/bob/pats"), Some(json!({})));
    assert_eq!((status, body["code"].as_u64()), (403, Some(7)));
}

fn no_path_escalates_privilege(db: TestDatabase) {
    let w = World::new(db);
    w.user("owner", &w.home);
    w.user("alice", &w.home);
    w.user("bob", &w.away);
    w.grant(&w.home, "owner", &["ORG_OWNER"]);
    let owner = w.token("owner");
    let admin_id = admin_user_id(&w);

    let refusals = [
        (
            "POST",
            "/v2/instance/members".to_owned(),
            json!({"userId": "owner", "roles": ["IAM_OWNER"]}),
            403,
        ),
        (
            "POST",
            "/v2/instance/members".to_owned(),
            json!({"userId": "alice", "roles": ["IAM_USER_MANAGER"]}),
            403,
        ),
        (
            "POST",
            format!("/v2/organizations/{}/members", w.away),
            json!({"userId": "owner", "roles": ["ORG_OWNER"]}),
            404,
        ),
        ("POST", format!("{USERS}/{admin_id}/pats"), json!({}), 403),
        ("POST", format!("{USERS}/bob/pats"), json!({}), 404),
        (
            "POST",
            "/v2/organizations".to_owned(),
            json!({"name": "Mine"}),
            403,
        ),
        (
            "POST",
            format!("/v2/organizations/{}/members", w.home),
            json!({"userId": "alice", "roles": ["IAM_OWNER"]}),
            400,
        ),
    ];
    for (method, path, body, expected) in refusals {
        let (status, answer) = w.as_(&owner, method, &path, Some(body.clone()));
        assert_eq!(status, expected, "{method} {path} {body}: {answer}");
    }
    let (_, answer) = w.as_(
        &owner,
        "POST",
        &format!("{USERS}/{admin_id}/pats"),
        Some(json!({})),
    );
    assert_eq!(reason(&answer), "PRIVILEGE_ESCALATION");

    // An equal grant and a token for a weaker user are fine, and that token works.
    let (status, _) = w.as_(
        &owner,
        "POST",
        &format!("/v2/organizations/{}/members", w.home),
        Some(json!({"userId": "alice", "roles": ["ORG_OWNER"]})),
    );
    assert_eq!(status, 200);
    let (status, minted) = w.as_(
        &owner,
        "POST",
        &format!("{USERS}/alice/pats"),
        Some(json!({})),
    );
    assert_eq!(status, 201, "{minted}");
    let alice = minted["personalAccessToken"].as_str().unwrap();
    assert_eq!(
        w.as_(alice, "GET", &format!("/v2/organizations/{}", w.home), None)
            .0,
        200
    );
    assert_eq!(
        w.as_(alice, "GET", &format!("/v2/organizations/{}", w.away), None)
            .0,
        404
    );
    // Removing the membership takes the power away at once.
    let (status, _) = w.as_(
        &owner,
        "DELETE",
        &format!("/v2/organizations/{}/members/alice", w.home),
        None,
    );
    assert_eq!(status, 200);
    assert_eq!(
        w.as_(alice, "GET", &format!("/v2/organizations/{}", w.home), None)
            .0,
        404
    );
}

/// The bootstrap admin's id: the only IAM_OWNER, so the one the recovery tool picks (and
/// logs).
fn admin_user_id(w: &World) -> String {
    let (code, _, stderr) = w.userd.run_cli(&["admin-token", "--print"]);
    assert_eq!(code, 0, "{stderr}");
    stderr
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .find_map(|entry| entry["user_id"].as_str().map(str::to_owned))
        .expect("the recovery tool logs the user it issued a token for")
}

fn tokens_stop_on_revocation_expiry_and_standing(db: TestDatabase) {
    let w = World::new(db);
    w.user("alice", &w.home);
    w.grant(&w.home, "alice", &["ORG_USER_VIEWER"]);
    let read = |token: &str| w.as_(token, "GET", &format!("{USERS}/alice"), None).0;

    // Revocation.
    let (status, minted) = w.userd.post(&format!("{USERS}/alice/pats"), &json!({}));
    assert_eq!(status, 201);
    let token = minted["personalAccessToken"].as_str().unwrap().to_owned();
    let token_id = minted["personalAccessTokenId"].as_str().unwrap().to_owned();
    assert_eq!(read(&token), 200);
    let (status, revoked) = w.userd.delete(&format!("{USERS}/alice/pats/{token_id}"));
    assert_eq!(status, 200, "{revoked}");
    assert_eq!(revoked["details"]["id"], token_id.as_str());
    let (status, body) = w.as_(&token, "GET", &format!("{USERS}/alice"), None);
    assert_eq!((status, body["code"].as_u64()), (401, Some(16)));
    let (status, body) = w.userd.delete(&format!("{USERS}/alice/pats/{token_id}"));
    assert_eq!((status, reason(&body)), (404, "TOKEN_NOT_FOUND"));

    // Expiry: in the past is refused; a near one ends by itself.
    let (status, body) = w.userd.post(
        &format!("{USERS}/alice/pats"),
        &json!({"expirationDate": "2020-01-01T00:00:00Z"}),
    );
    assert_eq!(
        (status, body["code"].as_u64(), reason(&body)),
        (400, Some(3), "EXPIRATION_IN_PAST")
    );
    // Far enough ahead that the token surely works first, on the slowest machine.
    let soon = chrono_in(Duration::from_secs(4));
    let (status, body) = w.userd.post(
        &format!("{USERS}/alice/pats"),
        &json!({"expirationDate": soon}),
    );
    assert_eq!(status, 201, "{body}");
    let short = body["personalAccessToken"].as_str().unwrap().to_owned();
    assert_eq!(read(&short), 200);
    let issued = Instant::now();
    while read(&short) == 200 {
        assert!(
            issued.elapsed() < Duration::from_secs(30),
            "the token never expired"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(read(&short), 401, "expired");

    // Standing: locked, inactive and deleted users' tokens stop, and come back.
    let token = w.token("alice");
    for (stop, resume) in [("_lock", "_unlock"), ("_deactivate", "_activate")] {
        assert_eq!(w.userd.act("alice", stop).0, 200);
        assert_eq!(read(&token), 401, "after {stop}");
        assert_eq!(w.userd.act("alice", resume).0, 200);
        assert_eq!(read(&token), 200, "after {resume}");
    }
    assert_eq!(w.userd.delete(&format!("{USERS}/alice")).0, 200);
    assert_eq!(read(&token), 401, "deleted");
}

/// An RFC 3339 UTC time `after` from now.
fn chrono_in(after: Duration) -> String {
    let at = std::time::SystemTime::now() + after;
    let secs = at
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let whole = secs.floor() as i64;
    let millis = ((secs - secs.floor()) * 1000.0) as i64;
    let days = whole.div_euclid(86_400);
    let rest = whole.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn revocation_reaches_every_process_within_two_seconds(db: TestDatabase) {
    let w = World::new(db);
    w.user("alice", &w.home);
    w.grant(&w.home, "alice", &["ORG_USER_VIEWER"]);
    let peer = w.userd.start_peer();
    let (_, minted) = w.userd.post(&format!("{USERS}/alice/pats"), &json!({}));
    let token = minted["personalAccessToken"].as_str().unwrap().to_owned();
    let token_id = minted["personalAccessTokenId"].as_str().unwrap();
    let read_on_peer = || {
        peer.client
            .call_as(Some(&token), "GET", &format!("{USERS}/alice"), None)
            .0
    };
    // Warm the peer's cache.
    for _ in 0..3 {
        assert_eq!(read_on_peer(), 200);
    }
    assert_eq!(
        w.userd.delete(&format!("{USERS}/alice/pats/{token_id}")).0,
        200
    );
    let revoked_at = Instant::now();
    while read_on_peer() != 401 {
        assert!(
            revoked_at.elapsed() < Duration::from_secs(2),
            "the peer still accepts a revoked token"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Locking on the peer stops the token on the first process too.
    let other = w.token("alice");
    assert_eq!(w.as_(&other, "GET", &format!("{USERS}/alice"), None).0, 200);
    let (status, _) = peer.client.call_as(
        Some(&w.userd.token),
        "POST",
        &format!("{USERS}/alice/_lock"),
        None,
    );
    assert_eq!(status, 200);
    let locked_at = Instant::now();
    while w.as_(&other, "GET", &format!("{USERS}/alice"), None).0 != 401 {
        assert!(
            locked_at.elapsed() < Duration::from_secs(2),
            "a locked user's token still works"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn the_recovery_command_issues_a_working_owner_token(db: TestDatabase) {
    let w = World::new(db);
    let (code, stdout, stderr) = w.userd.run_cli(&["admin-token", "--print"]);
    assert_eq!(code, 0, "{stderr}");
    let token = stdout.trim();
    assert!(token.starts_with("userd_pat_"), "{stdout}");
    assert!(!stderr.contains(token), "the token is never logged");
    let (status, body) = w.as_(
        token,
        "POST",
        "/v2/organizations",
        Some(json!({"name": "Recovered"})),
    );
    assert_eq!(status, 201, "an IAM_OWNER token: {body}");

    // For a named user, who becomes IAM_OWNER; written to a 0600 file.
    w.user("ops", &w.away);
    let file = w.userd.db.dir().join("recovered.pat");
    let (code, _, stderr) = w.userd.run_cli(&[
        "admin-token",
        "--user-id",
        "ops",
        "--output",
        file.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    let ops = std::fs::read_to_string(&file).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let (status, _) = w.as_(
        ops.trim(),
        "POST",
        "/v2/organizations",
        Some(json!({"name": "Ops"})),
    );
    assert_eq!(status, 201);

    // A locked user is refused with a clear message.
    assert_eq!(w.userd.act("ops", "_lock").0, 200);
    let (code, _, stderr) = w
        .userd
        .run_cli(&["admin-token", "--user-id", "ops", "--print"]);
    assert_ne!(code, 0);
    assert!(stderr.contains("locked"), "{stderr}");
}
