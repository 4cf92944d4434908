//! The findings of the security probe, each reproduced against the real binary on both
//! backends: token ceilings, the covering rule, member visibility, hostile text, request
//! smuggling, look-alike usernames, and the smaller holes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::{Value, json};
use support::{USERS, Userd, World, reason};
use userd_testkit::{Backend, TestDatabase, on_both_backends_blocking};

on_both_backends_blocking!(
    a_token_never_gains_what_its_issuer_did_not_hold,
    nobody_writes_to_a_user_stronger_than_themselves,
    members_are_users_the_caller_can_see,
    control_characters_are_refused_everywhere_alike,
    conflicting_framing_is_refused_and_nothing_behind_it_is_served,
    look_alike_usernames_are_one_name_or_refused,
    the_smaller_holes_are_closed,
    transport_answers_are_status_json,
);

fn a_token_never_gains_what_its_issuer_did_not_hold(db: TestDatabase) {
    let w = World::new(db);
    w.user("owner", &w.home);
    w.user("plain", &w.home);
    w.user("stranger", &w.away);
    w.grant(&w.home, "owner", &["ORG_OWNER"]);
    let owner = w.token_by(None, "owner");
    // The organization owner mints a token for a user with no role...
    let minted = w.token_by(Some(&owner), "plain");
    // ...who is later made IAM_OWNER by somebody else.
    w.grant_instance("plain", &["IAM_OWNER"]);

    let (status, body) = w.as_(&minted, "GET", &format!("{USERS}/stranger"), None);
    assert_eq!(
        (status, reason(&body)),
        (404, "USER_NOT_FOUND"),
        "other organizations stay hidden"
    );
    let (status, body) = w.as_(
        &minted,
        "POST",
        "/v2/instance/members",
        Some(json!({"userId": "owner", "roles": ["IAM_OWNER"]})),
    );
    assert_eq!((status, body["code"].as_u64()), (403, Some(7)), "{body}");
    let (status, _) = w.as_(
        &minted,
        "POST",
        "/v2/organizations",
        Some(json!({"name": "X"})),
    );
    assert_eq!(status, 403);
    // Within what its issuer held, it works.
    assert_eq!(
        w.as_(&minted, "GET", &format!("{USERS}/owner"), None).0,
        200
    );

    // A token the user got from someone holding everything carries everything.
    let full = w.token_by(None, "plain");
    assert_eq!(
        w.as_(&full, "GET", &format!("{USERS}/stranger"), None).0,
        200
    );

    // The user's tokens can be listed, with who issued them, never their secrets.
    let (status, listed) = w.userd.get(&format!("{USERS}/plain/pats"));
    assert_eq!(status, 200, "{listed}");
    let result = listed["result"].as_array().unwrap();
    assert_eq!(result.len(), 2, "{listed}");
    let admin_id = w.userd.log_admin_id();
    let owner_issued = &result[0];
    assert_eq!(owner_issued["issuerId"], "owner");
    assert_eq!(result[1]["issuerId"], admin_id.as_str());
    support::assert_rfc3339_utc(&owner_issued["creationDate"]);
    assert!(owner_issued.get("expirationDate").is_none());
    let text = listed.to_string();
    assert!(
        !text.contains(&minted) && !text.contains("userd_pat_"),
        "{text}"
    );

    // Revoked tokens leave the list; listing needs what issuing needs.
    let id = owner_issued["personalAccessTokenId"].as_str().unwrap();
    assert_eq!(w.userd.delete(&format!("{USERS}/plain/pats/{id}")).0, 200);
    let (_, listed) = w.userd.get(&format!("{USERS}/plain/pats"));
    assert_eq!(listed["result"].as_array().unwrap().len(), 1);
    let (status, body) = w.as_(&owner, "GET", &format!("{USERS}/plain/pats"), None);
    assert_eq!(
        (status, reason(&body)),
        (403, "PRIVILEGE_ESCALATION"),
        "plain is IAM_OWNER now"
    );
}

fn nobody_writes_to_a_user_stronger_than_themselves(db: TestDatabase) {
    let w = World::new(db);
    for id in ["manager", "boss", "root", "someone"] {
        w.user(id, &w.home);
    }
    w.grant(&w.home, "manager", &["ORG_USER_MANAGER"]);
    w.grant(&w.home, "boss", &["ORG_OWNER"]);
    w.grant_instance("root", &["IAM_OWNER"]);
    let manager = w.token_by(None, "manager");

    for (method, path, body) in [
        ("POST", format!("{USERS}/root/_deactivate"), None),
        ("DELETE", format!("{USERS}/root"), None),
        ("POST", format!("{USERS}/root/_lock"), None),
        (
            "PATCH",
            format!("{USERS}/boss"),
            Some(
                json!({"contact": {"email": {"address": "mine@evil.example", "isVerified": true}}}),
            ),
        ),
        ("POST", format!("{USERS}/boss/_lock"), None),
    ] {
        let (status, answer) = w.as_(&manager, method, &path, body);
        assert_eq!(
            (status, answer["code"].as_u64(), reason(&answer)),
            (403, Some(7), "PRIVILEGE_ESCALATION"),
            "{method} {path}: {answer}"
        );
    }
    let (_, boss) = w.userd.user("boss");
    assert_eq!(
        boss["user"]["contact"]["email"]["address"],
        "boss@example.com"
    );
    let (_, root) = w.userd.user("root");
    assert_eq!(root["user"]["state"], "USER_STATE_ACTIVE");

    // Equals and weaker are fine, and so is oneself.
    assert_eq!(
        w.as_(&manager, "POST", &format!("{USERS}/someone/_lock"), None)
            .0,
        200
    );
    let (status, body) = w.as_(
        &manager,
        "PATCH",
        &format!("{USERS}/manager"),
        Some(json!({"data": {"note": "me"}})),
    );
    assert_eq!(status, 200, "{body}");
    // The order of checks holds: a stranger's user is hidden before anything else.
    w.user("far", &w.away);
    w.grant_instance("far", &["IAM_OWNER"]);
    let (status, body) = w.as_(&manager, "POST", &format!("{USERS}/far/_lock"), None);
    assert_eq!((status, reason(&body)), (404, "USER_NOT_FOUND"));
}

fn members_are_users_the_caller_can_see(db: TestDatabase) {
    let w = World::new(db);
    w.user("owner", &w.home);
    w.user("stranger", &w.away);
    w.grant(&w.home, "owner", &["ORG_OWNER"]);
    let owner = w.token_by(None, "owner");
    let add = |user: &str| {
        w.as_(
            &owner,
            "POST",
            &format!("/v2/organizations/{}/members", w.home),
            Some(json!({"userId": user, "roles": ["ORG_USER_VIEWER"]})),
        )
    };
    let (status, hidden) = add("stranger");
    let (_, missing) = add("nobody-at-all");
    assert_eq!(
        (status, reason(&hidden)),
        (404, "USER_NOT_FOUND"),
        "{hidden}"
    );
    assert_eq!(hidden["code"], missing["code"]);
    assert_eq!(hidden["message"], missing["message"]);
    assert_eq!(reason(&hidden), reason(&missing));
    // The other organization's owner still manages its user.
    w.user("their-owner", &w.away);
    w.grant(&w.away, "their-owner", &["ORG_OWNER"]);
    let theirs = w.token_by(None, "their-owner");
    assert_eq!(
        w.as_(&theirs, "POST", &format!("{USERS}/stranger/_lock"), None)
            .0,
        200
    );
}

fn control_characters_are_refused_everywhere_alike(db: TestDatabase) {
    let userd = Userd::start(db);
    assert_eq!(
        userd
            .create(&json!({"userId": "u1", "contact": {"email": {"address": "a@example.com"}}}))
            .0,
        201
    );
    let search = format!("{USERS}/_search");
    for filter in [
        json!({"emailFilter": {"address": "\u{0}", "method": "TEXT_FILTER_METHOD_CONTAINS"}}),
        json!({"userIdFilter": {"id": "u\u{0}1"}}),
        json!({"usernameFilter": {"username": "a\u{1b}", "method": "TEXT_FILTER_METHOD_STARTS_WITH"}}),
        json!({"phoneFilter": {"number": "\u{7f}"}}),
        json!({"schemaIdFilter": {"id": "\u{0}"}}),
        json!({"notFilter": {"query": {"organizationIdFilter": {"id": "\u{0}"}}}}),
    ] {
        let (status, body) = userd.post(&search, &json!([filter]));
        assert_eq!(
            (status, body["code"].as_u64(), reason(&body)),
            (400, Some(3), "INVALID_FILTER"),
            "{filter}: {body}"
        );
    }
    for body in [
        json!({"userId": "a\u{0}b"}),
        json!({"contact": {"email": {"address": "a\u{0}@example.com"}}}),
        json!({"authenticators": {"usernames": [{"username": "x\u{0}"}]}}),
        json!({"schemaId": "s\u{0}"}),
    ] {
        let (status, answer) = userd.create(&body);
        assert_eq!(
            (status, answer["code"].as_u64()),
            (400, Some(3)),
            "{body}: {answer}"
        );
    }
    let (status, body) = userd.get(&format!("{USERS}/u%001"));
    assert_eq!((status, reason(&body)), (400, "INVALID_USER_ID"));
    // `data` is free-form: control characters are fine there.
    assert_eq!(
        userd
            .create(&json!({"data": {"note": "line\nbreak\u{0}"}}))
            .0,
        201
    );
}

/// Sends raw bytes and reads until the server closes the connection (or 10 s pass).
fn raw(userd: &Userd, request: &[u8]) -> (String, bool) {
    let mut stream = TcpStream::connect(userd.base.trim_start_matches("http://")).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let _ = stream.write_all(request);
    let mut answer = Vec::new();
    let mut buffer = [0u8; 8192];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => return (String::from_utf8_lossy(&answer).into_owned(), true),
            Ok(n) => answer.extend_from_slice(&buffer[..n]),
            Err(_) => return (String::from_utf8_lossy(&answer).into_owned(), false),
        }
    }
}

fn conflicting_framing_is_refused_and_nothing_behind_it_is_served(db: TestDatabase) {
    let userd = Userd::start(db);
    let smuggled_body = r#"{"userId":"smuggled"}"#;
    let smuggled = format!(
        "POST {USERS} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{smuggled_body}",
        userd.token,
        smuggled_body.len()
    );
    // A proxy trusting Content-Length sees one request whose body holds the second.
    let body = format!("0\r\n\r\n{smuggled}");
    let request = format!(
        "POST {USERS} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nTransfer-Encoding: chunked\r\n\r\n{body}",
        userd.token,
        body.len()
    );
    let (answer, closed) = raw(&userd, request.as_bytes());
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("AMBIGUOUS_FRAMING"), "{answer}");
    assert!(
        !answer.contains("HTTP/1.1 201"),
        "the smuggled request was served: {answer}"
    );
    assert!(closed, "the connection is closed");
    assert!(
        answer.to_lowercase().contains("connection: close"),
        "{answer}"
    );
    let (status, _) = userd.user("smuggled");
    assert_eq!(status, 404, "nothing behind the refused request was served");

    // Both headers on a request without a body, in HTTP/1.0 too.
    let (answer, closed) = raw(
        &userd,
        b"GET /healthz HTTP/1.0\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n",
    );
    // Refused before its version is known, so the answer is HTTP/1.1 (RFC 9110 §2.5).
    assert!(answer.starts_with("HTTP/1.1 400") && closed, "{answer}");
    assert!(answer.contains("AMBIGUOUS_FRAMING"), "{answer}");
    assert_eq!(
        userd.call_as(None, "GET", "/healthz", None).0,
        200,
        "still serving"
    );
}

fn look_alike_usernames_are_one_name_or_refused(db: TestDatabase) {
    let userd = Userd::start(db);
    let create =
        |name: &str| userd.create(&json!({"authenticators": {"usernames": [{"username": name}]}}));
    assert_eq!(create("jos\u{e9}").0, 201);
    let (status, body) = create("jose\u{301}");
    assert_eq!((status, reason(&body)), (409, "USERNAME_TAKEN"), "{body}");
    assert_eq!(create("boss").0, 201);
    let (status, body) = create("ｂｏｓｓ");
    assert_eq!((status, reason(&body)), (409, "USERNAME_TAKEN"), "{body}");
    assert_eq!(create("STRASSE").0, 201);
    assert_eq!(create("straße").0, 409);
    for bad in [
        " ada",
        "ada ",
        "a\u{200b}da",
        "ad\u{202e}a",
        "\u{feff}ada",
        "a\u{2066}da",
    ] {
        let (status, body) = create(bad);
        assert_eq!(
            (status, reason(&body)),
            (400, "INVALID_USERNAME"),
            "{bad:?}: {body}"
        );
    }
    assert_eq!(create("Ada Lovelace").0, 201, "inner spaces are fine");
    // Searching ignoring case finds a name however it is written.
    let (status, found) = userd.post(
        &format!("{USERS}/_search"),
        &json!([{"usernameFilter": {"username": "JOSE\u{301}", "method": "TEXT_FILTER_METHOD_EQUALS_IGNORE_CASE"}}]),
    );
    assert_eq!(
        (status, found["details"]["totalResult"].as_str()),
        (200, Some("1")),
        "{found}"
    );
}

fn the_smaller_holes_are_closed(db: TestDatabase) {
    let sqlite = db.backend == Backend::Sqlite;
    let nested = db.dir().join("fresh/data/userd.db");
    let url = format!("sqlite://{}", nested.display());
    let userd = if sqlite {
        Userd::start_with(db, &[("USERD__DATABASE__URL", url.as_str())])
    } else {
        Userd::start(db)
    };
    let w = World::with(userd);
    // A path whose escape is not UTF-8 addresses nobody.
    let (answer, _) = raw(
        &w.userd,
        format!(
            "GET {USERS}/%FF HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
            w.userd.token
        )
        .as_bytes(),
    );
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("INVALID_PATH"), "{answer}");
    // Ids beginning with `_` are reserved for actions.
    let (status, body) = w.userd.create(&json!({"userId": "_search"}));
    assert_eq!((status, reason(&body)), (400, "INVALID_USER_ID"));
    // Instance roles can be removed.
    w.user("ops", &w.home);
    w.grant_instance("ops", &["IAM_USER_MANAGER"]);
    let ops = w.token_by(None, "ops");
    assert_eq!(w.as_(&ops, "GET", &format!("{USERS}/probe"), None).0, 200);
    let (status, body) = w.userd.delete("/v2/instance/members/ops");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["details"]["owner"]["type"], "OWNER_TYPE_INSTANCE");
    let (status, _) = w.as_(&ops, "GET", &format!("{USERS}/probe"), None);
    assert_eq!(status, 404, "the role is gone at once");
    let (status, body) = w.userd.delete("/v2/instance/members/ops");
    assert_eq!((status, reason(&body)), (404, "MEMBER_NOT_FOUND"));
    let (status, _) = w.as_(&ops, "DELETE", "/v2/instance/members/probe", None);
    assert_eq!(status, 403, "only IAM_OWNER removes instance roles");
    // The SQLite file and the directories userd made are its owner's only.
    if sqlite {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&nested), 0o600);
        assert_eq!(mode(nested.parent().unwrap()), 0o700);
        assert_eq!(mode(nested.parent().unwrap().parent().unwrap()), 0o700);
    }
}

fn transport_answers_are_status_json(db: TestDatabase) {
    let userd = Userd::start_with(db, &[("USERD__SERVER__CLIENT_REQUEST_TIMEOUT_MS", "500")]);
    let body_of = |answer: &str| -> Value {
        let body = answer
            .split_once("\r\n\r\n")
            .map(|(_, b)| b)
            .unwrap_or_default();
        serde_json::from_str(body).unwrap_or_else(|_| panic!("not JSON: {answer}"))
    };
    // Over the request-head limit.
    let huge = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Huge: {}\r\n\r\n",
        "a".repeat(140 * 1024)
    );
    let (answer, _) = raw(&userd, huge.as_bytes());
    assert!(
        answer.starts_with("HTTP/1.1 431"),
        "{}",
        &answer[..answer.len().min(300)]
    );
    assert!(answer.contains("application/json"));
    let status = body_of(&answer);
    assert_eq!(
        (status["code"].as_u64(), reason(&status)),
        (Some(3), "REQUEST_HEADER_TOO_LARGE")
    );
    // Under it, served.
    let large = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Large: {}\r\n\r\n",
        "a".repeat(100 * 1024)
    );
    let (answer, _) = raw(&userd, large.as_bytes());
    assert!(
        answer.starts_with("HTTP/1.1 200"),
        "{}",
        &answer[..answer.len().min(300)]
    );
    // Too slow to send a head.
    let (answer, closed) = raw(&userd, b"GET /healthz HTTP/1.1\r\nHost: x\r\n");
    assert!(answer.starts_with("HTTP/1.1 408") && closed, "{answer}");
    assert_eq!(reason(&body_of(&answer)), "REQUEST_TIMEOUT");
    // Not HTTP at all.
    let (answer, _) = raw(&userd, b"GARBAGE\x01 / HTTP/1.1\r\n\r\n");
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert_eq!(body_of(&answer)["code"], 3);
}
