//! SearchUsers over HTTP against the real binary, on SQLite and on PostgreSQL: every
//! filter and method, both body forms, paging, refusals, and what a caller may see.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use serde_json::{Value, json};
use support::{USERS, Userd, assert_rfc3339_utc, reason};
use userd_testkit::{TestDatabase, on_both_backends_blocking};

on_both_backends_blocking!(
    each_filter_finds_what_it_should,
    every_text_method_matches_literally,
    both_body_forms_and_query_parameters_agree,
    paging_walks_every_match_exactly_once,
    bad_searches_are_refused_with_code_3,
    callers_find_only_users_they_may_read,
);

const SEARCH: &str = "/resources/v3alpha/users/_search";

fn populate(userd: &Userd) {
    let users = [
        json!({"userId": "ada", "schemaId": "employee",
               "contact": {"email": {"address": "Ada@Example.com"}, "phone": {"number": "+41790000001"}},
               "authenticators": {"usernames": [{"username": "ada", "isOrganizationSpecific": true}]}}),
        json!({"userId": "grace", "contact": {"email": {"address": "grace_hopper@navy.mil"}},
               "authenticators": {"usernames": [{"username": "Amazing_Grace"}]}}),
        json!({"userId": "linus", "schemaId": "contractor",
               "contact": {"email": {"address": "linus%torvalds@kernel.org"}, "phone": {"number": "0790000002"}}}),
        json!({"userId": "jürgen", "contact": {"email": {"address": "JÜRGEN@beispiel.de"}}}),
        json!({"userId": "nobody"}),
        json!({"userId": "gone", "contact": {"email": {"address": "gone@example.com"}}}),
    ];
    for user in users {
        let (status, body) = userd.create(&user);
        assert_eq!(status, 201, "{body}");
    }
    assert_eq!(userd.act("grace", "_lock").0, 200);
    assert_eq!(userd.act("linus", "_deactivate").0, 200);
    assert_eq!(userd.delete(&format!("{USERS}/gone")).0, 200);
}

/// Ids found by a search body, sorted by id; only the users this test made.
fn ids(userd: &Userd, body: Value) -> Vec<String> {
    let (status, answer) = userd.post(&format!("{SEARCH}?sortingColumn=FIELD_NAME_ID"), &body);
    assert_eq!(status, 200, "{body}: {answer}");
    let found: Vec<String> = answer["result"]
        .as_array()
        .map(|users| {
            users
                .iter()
                .map(|u| u["details"]["id"].as_str().unwrap().to_owned())
                .filter(|id| {
                    ["ada", "grace", "linus", "jürgen", "nobody", "gone"].contains(&id.as_str())
                })
                .collect()
        })
        .unwrap_or_default();
    found
}

fn each_filter_finds_what_it_should(db: TestDatabase) {
    let userd = Userd::start(db);
    populate(&userd);
    let cases = [
        (json!([{"userIdFilter": {"id": "ada"}}]), vec!["ada"]),
        (
            json!([{"emailFilter": {"address": "ada@example.com", "method": "TEXT_FILTER_METHOD_EQUALS_IGNORE_CASE"}}]),
            vec!["ada"],
        ),
        (
            json!([{"phoneFilter": {"number": "079", "method": "TEXT_FILTER_METHOD_STARTS_WITH"}}]),
            vec!["linus"],
        ),
        (
            json!([{"usernameFilter": {
                "username": "amazing_grace",
                "method": "TEXT_FILTER_METHOD_EQUALS_IGNORE_CASE"
            }}]),
            vec!["grace"],
        ),
        (
            json!([{"usernameFilter": {"username": "ada", "isOrganizationSpecific": false}}]),
            vec![],
        ),
        (
            json!([{"usernameFilter": {"username": "ada", "isOrganizationSpecific": true}}]),
            vec!["ada"],
        ),
        (
            json!([{"stateFilter": {"state": "USER_STATE_LOCKED"}}]),
            vec!["grace"],
        ),
        (
            json!([{"stateFilter": {"state": "USER_STATE_INACTIVE"}}]),
            vec!["linus"],
        ),
        (
            json!([{"stateFilter": {"state": "USER_STATE_DELETED"}}]),
            vec![],
        ),
        (json!([{"schemaIdFilter": {"id": "employee"}}]), vec!["ada"]),
        (
            json!([{"orFilter": {"queries": [{"userIdFilter": {"id": "ada"}}, {"userIdFilter": {"id": "linus"}}]}}]),
            vec!["ada", "linus"],
        ),
        (
            json!([{"andFilter": {"queries": [
                {"schemaIdFilter": {"id": "contractor"}},
                {"stateFilter": {"state": "USER_STATE_INACTIVE"}}
            ]}}]),
            vec!["linus"],
        ),
        (
            json!([{"notFilter": {"query": {"emailFilter": {"address": "@", "method": "TEXT_FILTER_METHOD_CONTAINS"}}}},
                {"userIdFilter": {"id": "n", "method": "TEXT_FILTER_METHOD_STARTS_WITH"}}]),
            vec!["nobody"],
        ),
        (
            json!([{"emailFilter": {"address": "gone", "method": "TEXT_FILTER_METHOD_STARTS_WITH"}}]),
            vec![],
        ),
    ];
    for (body, expected) in cases {
        assert_eq!(ids(&userd, body.clone()), expected, "{body}");
    }
    // The organization filter, with the organization the users were made in.
    let (_, ada) = userd.user("ada");
    let org = ada["user"]["details"]["owner"]["id"].as_str().unwrap();
    let found = ids(&userd, json!([{"organizationIdFilter": {"id": org}}]));
    assert_eq!(found, ["ada", "grace", "jürgen", "linus", "nobody"]);
    // Results have the GetUser shape, with the same state GetUser reports.
    let (_, answer) = userd.post(SEARCH, &json!([{"userIdFilter": {"id": "grace"}}]));
    let (_, got) = userd.user("grace");
    assert_eq!(answer["result"][0], got["user"]);
    assert_eq!(answer["details"]["totalResult"], "1");
    assert_eq!(answer["details"]["appliedLimit"], "100");
    assert_rfc3339_utc(&answer["details"]["timestamp"]);
}

fn every_text_method_matches_literally(db: TestDatabase) {
    let userd = Userd::start(db);
    populate(&userd);
    let email = |value: &str, method: &str| {
        ids(
            &userd,
            json!([{"emailFilter": {"address": value, "method": format!("TEXT_FILTER_METHOD_{method}")}}]),
        )
    };
    assert_eq!(email("Ada@Example.com", "EQUALS"), ["ada"]);
    assert_eq!(email("ada@example.com", "EQUALS"), Vec::<String>::new());
    assert_eq!(email("ADA@EXAMPLE.COM", "EQUALS_IGNORE_CASE"), ["ada"]);
    assert_eq!(email("grace_", "STARTS_WITH"), ["grace"]);
    assert_eq!(email("Grace_", "STARTS_WITH"), Vec::<String>::new());
    assert_eq!(email("GRACE_", "STARTS_WITH_IGNORE_CASE"), ["grace"]);
    assert_eq!(
        email("%", "CONTAINS"),
        ["linus"],
        "% is an ordinary character"
    );
    assert_eq!(
        email("_", "CONTAINS"),
        ["grace"],
        "_ is an ordinary character"
    );
    assert_eq!(email("jürgen", "CONTAINS"), Vec::<String>::new());
    assert_eq!(
        email("jürgen", "CONTAINS_IGNORE_CASE"),
        ["jürgen"],
        "non-ASCII letters fold"
    );
    assert_eq!(email(".mil", "ENDS_WITH"), ["grace"]);
    assert_eq!(email(".COM", "ENDS_WITH_IGNORE_CASE"), ["ada"]);
}

fn both_body_forms_and_query_parameters_agree(db: TestDatabase) {
    let userd = Userd::start(db);
    populate(&userd);
    let filter = json!({"emailFilter": {"address": "a", "method": "TEXT_FILTER_METHOD_CONTAINS"}});
    let (_, bare) = userd.post(
        &format!(
            "{SEARCH}?query.limit=2&query.offset=1&query.desc=true&sortingColumn=FIELD_NAME_ID"
        ),
        &json!([filter]),
    );
    let (_, wrapped) = userd.post(
        SEARCH,
        &json!({
            "query": {"limit": 2, "offset": "1", "desc": true},
            "sortingColumn": "FIELD_NAME_ID",
            "filters": [filter]
        }),
    );
    assert_eq!(bare["result"], wrapped["result"]);
    assert_eq!(
        bare["details"]["totalResult"],
        wrapped["details"]["totalResult"]
    );
    assert_eq!(bare["details"]["appliedLimit"], "2");
    assert_eq!(bare["sortingColumn"], "FIELD_NAME_ID");
    let page: Vec<&str> = bare["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["details"]["id"].as_str().unwrap())
        .collect();
    // The same page cut from the unpaged answer: offset 1, two users.
    let (_, everything) = userd.post(
        &format!("{SEARCH}?sortingColumn=FIELD_NAME_ID&query.desc=true"),
        &json!([filter]),
    );
    let all: Vec<&str> = everything["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["details"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(page, all[1..3]);
    // No body at all searches everything.
    let (status, answer) = userd.call("POST", SEARCH, None);
    assert_eq!(status, 200);
    assert!(
        answer["details"]["totalResult"]
            .as_str()
            .unwrap()
            .parse::<u32>()
            .unwrap()
            >= 5
    );
}

fn paging_walks_every_match_exactly_once(db: TestDatabase) {
    let userd = Userd::start(db);
    populate(&userd);
    for column in [
        "FIELD_NAME_ID",
        "FIELD_NAME_CREATION_DATE",
        "FIELD_NAME_CHANGE_DATE",
        "FIELD_NAME_EMAIL",
        "FIELD_NAME_PHONE",
        "FIELD_NAME_STATE",
        "FIELD_NAME_SCHEMA_ID",
    ] {
        for desc in [false, true] {
            let mut walked = Vec::new();
            let mut total;
            loop {
                let path = format!(
                    "{SEARCH}?sortingColumn={column}&query.desc={desc}&query.limit=2&query.offset={}",
                    walked.len()
                );
                let (status, page) = userd.call("POST", &path, None);
                assert_eq!(status, 200, "{page}");
                total = Some(
                    page["details"]["totalResult"]
                        .as_str()
                        .unwrap()
                        .parse::<usize>()
                        .unwrap(),
                );
                let Some(users) = page["result"].as_array() else {
                    break;
                };
                walked.extend(
                    users
                        .iter()
                        .map(|u| u["details"]["id"].as_str().unwrap().to_owned()),
                );
            }
            let mut unique = walked.clone();
            unique.sort();
            unique.dedup();
            assert_eq!(
                unique.len(),
                walked.len(),
                "{column} {desc}: a user appeared twice"
            );
            assert_eq!(
                Some(walked.len()),
                total,
                "{column} {desc}: every match once"
            );
        }
    }
}

fn bad_searches_are_refused_with_code_3(db: TestDatabase) {
    let userd = Userd::start(db);
    let deep = (0..11).fold(
        json!({"userIdFilter": {"id": "x"}}),
        |inner, _| json!({"notFilter": {"query": inner}}),
    );
    let many: Vec<Value> = (0..101)
        .map(|i| json!({"userIdFilter": {"id": i.to_string()}}))
        .collect();
    let cases = [
        (
            format!("{SEARCH}?query.limit=1001"),
            json!([]),
            "LIMIT_EXCEEDED",
        ),
        (
            SEARCH.to_owned(),
            json!({"query": {"limit": 5000}}),
            "LIMIT_EXCEEDED",
        ),
        (
            SEARCH.to_owned(),
            json!([{"shoeSizeFilter": {"size": 42}}]),
            "UNKNOWN_FILTER",
        ),
        (
            SEARCH.to_owned(),
            json!([{"stateFilter": {"state": "USER_STATE_SLEEPY"}}]),
            "INVALID_FILTER",
        ),
        (SEARCH.to_owned(), json!([{}]), "INVALID_FILTER"),
        (
            SEARCH.to_owned(),
            json!([{"userIdFilter": {"id": "a"}, "emailFilter": {"address": "b"}}]),
            "INVALID_FILTER",
        ),
        (SEARCH.to_owned(), json!([deep]), "FILTER_TOO_DEEP"),
        (SEARCH.to_owned(), json!(many), "TOO_MANY_FILTERS"),
        (
            SEARCH.to_owned(),
            json!([{"emailFilter": {"address": ["a"]}}]),
            "INVALID_FILTER",
        ),
        (
            SEARCH.to_owned(),
            json!({"filters": "all"}),
            "INVALID_FILTER",
        ),
        (
            format!("{SEARCH}?sortingColumn=FIELD_NAME_MOOD"),
            json!([]),
            "INVALID_ARGUMENT",
        ),
    ];
    for (path, body, expected) in cases {
        let (status, answer) = userd.post(&path, &body);
        assert_eq!(
            (status, answer["code"].as_u64(), reason(&answer)),
            (400, Some(3), expected),
            "{path} {body}"
        );
    }
    let ten_deep = (0..9).fold(
        json!({"userIdFilter": {"id": "x"}}),
        |inner, _| json!({"notFilter": {"query": inner}}),
    );
    assert_eq!(
        userd.post(SEARCH, &json!([ten_deep])).0,
        200,
        "depth 10 is allowed"
    );
}

fn callers_find_only_users_they_may_read(db: TestDatabase) {
    let userd = Userd::start(db);
    populate(&userd);
    let (_, org) = userd.post("/v2/organizations", &json!({"name": "Other"}));
    let other = org["organizationId"].as_str().unwrap().to_owned();
    for id in ["o1", "o2", "viewer"] {
        let (status, body) = userd.post(
            &format!("{USERS}?organization.orgId={other}"),
            &json!({"userId": id}),
        );
        assert_eq!(status, 201, "{body}");
    }
    let (status, _) = userd.post(
        &format!("/v2/organizations/{other}/members"),
        &json!({"userId": "viewer", "roles": ["ORG_USER_VIEWER"]}),
    );
    assert_eq!(status, 200);
    let (_, minted) = userd.post(&format!("{USERS}/viewer/pats"), &json!({}));
    let viewer = minted["personalAccessToken"].as_str().unwrap();

    let (status, answer) = userd.call_as(
        Some(viewer),
        "POST",
        &format!("{SEARCH}?sortingColumn=FIELD_NAME_ID"),
        None,
    );
    assert_eq!(status, 200);
    let found: Vec<&str> = answer["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["details"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        found,
        ["o1", "o2", "viewer"],
        "only the organization the viewer may read"
    );
    assert_eq!(answer["details"]["totalResult"], "3");

    let (_, answer) = userd.call_as(
        Some(viewer),
        "POST",
        SEARCH,
        Some(&json!([{"userIdFilter": {"id": "ada"}}]).to_string()),
    );
    assert_eq!(answer["details"]["totalResult"], "0");
    assert!(answer.get("result").is_none(), "an empty result is omitted");

    // The bootstrap admin (IAM_OWNER) finds everyone; narrowed by organization.orgId.
    let (_, answer) = userd.call(
        "POST",
        &format!("{SEARCH}?organization.orgId={other}"),
        None,
    );
    assert_eq!(answer["details"]["totalResult"], "3");
}
