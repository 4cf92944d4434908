//! The user lifecycle over HTTP against the real binary, on SQLite and on PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use serde_json::{Value, json};
use support::{USERS, Userd, assert_rfc3339_utc, pat_path, reason};
use userd_testkit::{TestDatabase, on_both_backends_blocking};

on_both_backends_blocking!(
    unlock_answers_details_or_the_reason_it_cannot,
    lock_deactivate_and_activate_follow_the_state_machine,
    inactive_and_locked_is_reported_inactive,
    usernames_are_unique_and_freed_by_delete,
    a_patch_that_changes_nothing_writes_nothing,
    deleted_users_are_not_found_everywhere,
    requests_need_a_valid_token,
    bad_input_gets_contract_errors,
    a_restart_keeps_data_and_the_token_file,
);

fn create(userd: &Userd, body: Value) -> Value {
    let (status, created) = userd.create(&body);
    assert_eq!(status, 201, "{created}");
    created
}

fn state_of(userd: &Userd, id: &str) -> (String, bool) {
    let (status, body) = userd.user(id);
    assert_eq!(status, 200, "{body}");
    (
        body["user"]["state"].as_str().unwrap().to_owned(),
        body["user"]["locked"].as_bool().unwrap_or(false),
    )
}

fn unlock_answers_details_or_the_reason_it_cannot(db: TestDatabase) {
    let userd = Userd::start(db);
    let created = create(&userd, json!({"data": {"givenName": "Ada"}}));
    let id = created["details"]["id"].as_str().unwrap().to_owned();
    assert!(
        id.parse::<u64>().is_ok_and(|n| n < 1 << 63),
        "a server-made decimal id: {id}"
    );
    let org = created["details"]["owner"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(created["details"]["owner"]["type"], "OWNER_TYPE_ORG");

    let (status, body) = userd.act(&id, "_unlock");
    assert_eq!(
        (status, body["code"].as_u64(), reason(&body)),
        (400, Some(9), "USER_NOT_LOCKED")
    );
    assert_eq!(body["details"][0]["metadata"]["userId"], id.as_str());

    let (status, locked) = userd.act(&id, "_lock");
    assert_eq!(status, 200, "{locked}");
    let (status, unlocked) = userd.act(&id, "_unlock");
    assert_eq!(status, 200, "{unlocked}");
    let details = &unlocked["details"];
    assert_eq!(
        unlocked.as_object().unwrap().len(),
        1,
        "only details: {unlocked}"
    );
    assert_eq!(details["id"], id.as_str());
    assert_eq!(
        details["owner"],
        json!({"type": "OWNER_TYPE_ORG", "id": org})
    );
    assert_eq!(details["created"], created["details"]["created"]);
    assert_rfc3339_utc(&details["created"]);
    assert_rfc3339_utc(&details["changed"]);
    assert!(details["changed"].as_str() > locked["details"]["changed"].as_str());
    assert_eq!(
        state_of(&userd, &id),
        ("USER_STATE_ACTIVE".to_owned(), false)
    );

    let (status, body) = userd.act("no-such-user", "_unlock");
    assert_eq!(
        (status, body["code"].as_u64(), reason(&body)),
        (404, Some(5), "USER_NOT_FOUND")
    );
}

fn lock_deactivate_and_activate_follow_the_state_machine(db: TestDatabase) {
    let userd = Userd::start(db);
    create(&userd, json!({"userId": "grace"}));
    let expect = |action: &str, status: u16, why: &str| {
        let (got, body) = userd.act("grace", action);
        assert_eq!(got, status, "{action}: {body}");
        if !why.is_empty() {
            assert_eq!(
                (body["code"].as_u64(), reason(&body)),
                (Some(9), why),
                "{action}"
            );
        }
    };
    expect("_activate", 400, "USER_NOT_INACTIVE");
    expect("_lock", 200, "");
    expect("_lock", 400, "USER_ALREADY_LOCKED");
    expect("_deactivate", 200, "");
    expect("_deactivate", 400, "USER_ALREADY_INACTIVE");
    expect("_unlock", 200, "");
    expect("_activate", 200, "");
    expect("_activate", 400, "USER_NOT_INACTIVE");
    expect("_deactivate", 200, "");
    expect("_lock", 200, "");
    assert_eq!(
        state_of(&userd, "grace"),
        ("USER_STATE_INACTIVE".to_owned(), true)
    );
}

fn inactive_and_locked_is_reported_inactive(db: TestDatabase) {
    let userd = Userd::start(db);
    create(&userd, json!({"userId": "linus"}));
    assert_eq!(userd.act("linus", "_lock").0, 200);
    assert_eq!(
        state_of(&userd, "linus"),
        ("USER_STATE_LOCKED".to_owned(), true)
    );
    assert_eq!(userd.act("linus", "_deactivate").0, 200);
    assert_eq!(
        state_of(&userd, "linus"),
        ("USER_STATE_INACTIVE".to_owned(), true)
    );
    assert_eq!(userd.act("linus", "_activate").0, 200);
    assert_eq!(
        state_of(&userd, "linus"),
        ("USER_STATE_LOCKED".to_owned(), true)
    );
    assert_eq!(userd.act("linus", "_unlock").0, 200);
    let (_, body) = userd.user("linus");
    assert_eq!(body["user"]["state"], "USER_STATE_ACTIVE");
    assert!(
        body["user"].get("locked").is_none(),
        "locked is omitted when false: {body}"
    );
}

fn usernames_are_unique_and_freed_by_delete(db: TestDatabase) {
    let userd = Userd::start(db);
    let with_name = |id: &str, name: &str| {
        let username = json!({"username": name, "isOrganizationSpecific": true});
        json!({"userId": id, "authenticators": {"usernames": [username]}})
    };
    create(&userd, with_name("u1", "ada"));
    let (status, body) = userd.create(&with_name("u2", "ADA"));
    assert_eq!(
        (status, body["code"].as_u64(), reason(&body)),
        (409, Some(6), "USERNAME_TAKEN")
    );
    let (status, _) = userd.user("u2");
    assert_eq!(status, 404, "nothing was created");

    let (status, body) = userd.create(&json!({"userId": "u1"}));
    assert_eq!((status, reason(&body)), (409, "USER_ALREADY_EXISTS"));

    assert_eq!(userd.delete(&format!("{USERS}/u1")).0, 200);
    let created = create(&userd, with_name("u3", "ada"));
    assert_eq!(created["details"]["id"], "u3");
    let (_, body) = userd.user("u3");
    assert_eq!(
        body["user"]["authenticators"]["usernames"][0]["username"],
        "ada"
    );
    assert_eq!(
        body["user"]["authenticators"]["usernames"][0]["isOrganizationSpecific"],
        true
    );
}

fn a_patch_that_changes_nothing_writes_nothing(db: TestDatabase) {
    let userd = Userd::start(db);
    let created = create(
        &userd,
        json!({"userId": "p1", "data": {"a": 1}, "contact": {"email": {"address": "p@example.com"}}}),
    );
    let path = format!("{USERS}/p1");
    let (status, same) = userd.patch(
        &path,
        &json!({"data": {"a": 1}, "contact": {"email": {"address": "p@example.com"}}}),
    );
    assert_eq!(status, 200, "{same}");
    assert_eq!(
        same["details"]["changed"], created["details"]["changed"],
        "no event, no change"
    );
    let (status, empty) = userd.patch(&path, &json!({}));
    assert_eq!(
        (status, &empty["details"]["changed"]),
        (200, &created["details"]["changed"])
    );

    let (status, changed) = userd.patch(&path, &json!({"data": {"a": 2}, "schemaId": "employee"}));
    assert_eq!(status, 200);
    assert_ne!(changed["details"]["changed"], created["details"]["changed"]);
    let (_, body) = userd.user("p1");
    assert_eq!(body["user"]["data"], json!({"a": 2}));
    assert_eq!(body["user"]["schema"], json!({"id": "employee"}));
    assert_eq!(
        body["user"]["contact"]["email"],
        json!({"address": "p@example.com"})
    );
    assert_eq!(
        body["user"]["details"]["changed"],
        changed["details"]["changed"]
    );
}

fn deleted_users_are_not_found_everywhere(db: TestDatabase) {
    let userd = Userd::start(db);
    create(&userd, json!({"userId": "gone"}));
    let (status, deleted) = userd.delete(&format!("{USERS}/gone"));
    assert_eq!(status, 200, "{deleted}");
    assert_eq!(deleted["details"]["id"], "gone");
    let path = format!("{USERS}/gone");
    let attempts = [
        userd.get(&path),
        userd.patch(&path, &json!({"data": {"x": 1}})),
        userd.delete(&path),
        userd.act("gone", "_lock"),
        userd.act("gone", "_unlock"),
        userd.act("gone", "_deactivate"),
        userd.act("gone", "_activate"),
    ];
    let (_, never_existed) = userd.get(&format!("{USERS}/never"));
    for (status, body) in attempts {
        assert_eq!(
            (status, body["code"].as_u64(), reason(&body)),
            (404, Some(5), "USER_NOT_FOUND")
        );
        assert_eq!(
            body["message"], never_existed["message"],
            "same as an id that never existed"
        );
    }
}

fn requests_need_a_valid_token(db: TestDatabase) {
    let userd = Userd::start(db);
    for token in [None, Some("userd_pat_not-a-real-token")] {
        let (status, body) = userd.call_as(token, "GET", &format!("{USERS}/x"), None);
        assert_eq!(
            (status, body["code"].as_u64(), reason(&body)),
            (401, Some(16), "UNAUTHENTICATED")
        );
    }
    let (status, body) = userd.call_as(None, "GET", "/healthz", None);
    assert_eq!((status, body), (200, json!({"status": "SERVING"})));
    let (status, _) = userd.call_as(None, "GET", "/readyz", None);
    assert_eq!(status, 200);
}

fn bad_input_gets_contract_errors(db: TestDatabase) {
    let userd = Userd::start(db);
    let cases = [
        (r#"{"userId": "#, 400, 3),
        (r#"{"userId": 7}"#, 400, 3),
        (r#"{"contact": {"email": {"address": "nope"}}}"#, 400, 3),
        (r#"{"contact": {"phone": {"number": "call me"}}}"#, 400, 3),
    ];
    for (body, status, code) in cases {
        let (got, answer) = userd.call("POST", USERS, Some(body));
        assert_eq!(
            (got, answer["code"].as_u64()),
            (status, Some(code)),
            "{body}: {answer}"
        );
    }
    let huge = format!(r#"{{"data": {{"x": "{}"}}}}"#, "y".repeat(300 * 1024));
    let (status, body) = userd.call("POST", USERS, Some(&huge));
    assert_eq!((status, body["code"].as_u64()), (413, Some(3)));
    let big_data = json!({"data": {"x": "y".repeat(70 * 1024)}}).to_string();
    let (status, body) = userd.call("POST", USERS, Some(&big_data));
    assert_eq!((status, reason(&body)), (400, "DATA_TOO_LARGE"));
    let (status, body) = userd.user(&"9".repeat(201));
    assert_eq!((status, body["code"].as_u64()), (400, Some(3)));
    let (status, body) = userd.call("GET", "/no/such/route", None);
    assert_eq!((status, body["code"].as_u64()), (404, Some(5)));
    let (status, body) = userd.call("PUT", &format!("{USERS}/x"), None);
    assert_eq!((status, body["code"].as_u64()), (405, Some(12)));
    // Nothing above was written.
    let (status, _) = userd.user("x");
    assert_eq!(status, 404);
}

fn a_restart_keeps_data_and_the_token_file(db: TestDatabase) {
    let mut userd = Userd::start(db);
    create(&userd, json!({"userId": "keep", "data": {"k": "v"}}));
    let token_before = std::fs::read_to_string(pat_path(&userd.db)).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(pat_path(&userd.db))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    userd.restart();
    assert_eq!(
        std::fs::read_to_string(pat_path(&userd.db)).unwrap(),
        token_before
    );
    let (status, body) = userd.user("keep");
    assert_eq!(status, 200, "the old token still works: {body}");
    assert_eq!(body["user"]["data"], json!({"k": "v"}));
    let log = userd.log.lock().unwrap().join("\n");
    assert!(
        !log.contains(userd.token.as_str()),
        "the token is never logged"
    );
}
