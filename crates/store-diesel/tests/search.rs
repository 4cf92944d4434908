//! Search against a reference model: a plain in-memory filter over the same users,
//! written here from docs/api.md. Runs on SQLite and on PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::cmp::Ordering;

use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::json;
use userd_domain::Timestamp;
use userd_domain::user::{
    Command, Contact, EmailContact, Lifecycle, PhoneContact, User, UserCreated, UserState,
    UsernameEntry,
};
use userd_domain::values::{Email, OrgId, Phone, SchemaId, UserData, UserId, Username, UsernameId};
use userd_ports::repository::{Organization, OrganizationRepository, UserRepository};
use userd_ports::search::{Filter, ReadScope, SortColumn, TextMatch, TextMethod, UserQuery};
use userd_store_diesel::{Database, DatabaseTarget, PoolSettings};
use userd_testkit::{Backend, TestDatabase, on_both_backends};

on_both_backends!(
    every_filter_and_method_agrees_with_the_model,
    random_filter_trees_agree_with_the_model,
    pages_cover_every_match_exactly_once_in_every_order,
    scope_and_deletion_limit_what_is_found,
    prefix_searches_use_an_index,
);

// --- the users ---------------------------------------------------------------------

struct Seed {
    id: &'static str,
    org: usize,
    email: Option<&'static str>,
    phone: Option<&'static str>,
    schema: Option<&'static str>,
    usernames: &'static [(&'static str, bool)],
    commands: &'static [Command],
    /// Creation time in seconds; equal times test the tie-break by id.
    created: i64,
}

const fn seed(id: &'static str, org: usize, created: i64) -> Seed {
    Seed {
        id,
        org,
        email: None,
        phone: None,
        schema: None,
        usernames: &[],
        commands: &[],
        created,
    }
}

fn seeds() -> Vec<Seed> {
    vec![
        Seed {
            email: Some("ada@example.com"),
            usernames: &[("ada", true)],
            schema: Some("employee"),
            ..seed("u01", 0, 10)
        },
        Seed {
            email: Some("Ada.Lovelace@Example.COM"),
            usernames: &[("Lovelace", false)],
            phone: Some("+41790000001"),
            ..seed("U02", 0, 10)
        },
        Seed {
            email: Some("grace%hopper@navy.mil"),
            usernames: &[("grace_h", true), ("amazing", false)],
            commands: &[Command::Lock],
            ..seed("u03", 0, 12)
        },
        Seed {
            email: Some("under_score@x.org"),
            phone: Some("0790000002"),
            commands: &[Command::Deactivate],
            schema: Some("customer"),
            ..seed("u04", 1, 13)
        },
        Seed {
            email: Some(r#""back\slash"@x.org"#),
            commands: &[Command::Lock, Command::Deactivate],
            ..seed("u05", 1, 13)
        },
        Seed {
            email: Some("ÄRGER@Beispiel.de"),
            usernames: &[("Jürgen", true)],
            ..seed("Ünïcode", 0, 14)
        },
        Seed {
            email: Some("ärger@beispiel.de"),
            usernames: &[("jürgen", true)],
            ..seed("ünïcode-2", 1, 15)
        },
        Seed {
            phone: Some("+41790000003"),
            usernames: &[("pct%name", false)],
            schema: Some("employee"),
            ..seed("pct%1", 1, 16)
        },
        Seed {
            usernames: &[("x_y", true)],
            ..seed("under_id", 0, 16)
        },
        Seed {
            email: Some("deleted@example.com"),
            usernames: &[("ghost", false)],
            commands: &[Command::Delete],
            ..seed("u10", 0, 17)
        },
        Seed {
            email: Some("plain@example.com"),
            schema: Some("Employee"),
            ..seed("u11", 1, 18)
        },
        Seed {
            ..seed("u12", 0, 19)
        },
        Seed {
            email: Some("zed@example.com"),
            phone: Some("+1"),
            commands: &[Command::Lock, Command::Unlock],
            ..seed("u13", 0, 19)
        },
    ]
}

struct World {
    db: Database,
    orgs: [OrgId; 2],
    /// Live users as the model sees them.
    users: Vec<User>,
    _guard: TestDatabase,
}

async fn world(test_db: TestDatabase) -> World {
    let target = DatabaseTarget::parse(&test_db.url).unwrap();
    let db = Database::open(&target, &PoolSettings::default()).unwrap();
    db.migrate().unwrap();
    let orgs = [OrgId::new("100").unwrap(), OrgId::new("200").unwrap()];
    for org in &orgs {
        db.create_organization(&Organization {
            id: org.clone(),
            name: org.to_string(),
            created: Timestamp::from_unix_micros(1),
            changed: Timestamp::from_unix_micros(1),
        })
        .await
        .unwrap();
    }
    let mut users = Vec::new();
    for (n, seed) in seeds().into_iter().enumerate() {
        let created = UserCreated {
            org_id: orgs[seed.org].clone(),
            schema_id: seed.schema.map(|s| SchemaId::new(s).unwrap()),
            data: UserData::from_value(json!({"n": n})).unwrap(),
            contact: Contact {
                email: seed.email.map(|e| EmailContact {
                    address: Email::new(e).unwrap(),
                    verified: false,
                }),
                phone: seed.phone.map(|p| PhoneContact {
                    number: Phone::new(p).unwrap(),
                    verified: false,
                }),
            },
            usernames: seed
                .usernames
                .iter()
                .enumerate()
                .map(|(i, (name, specific))| UsernameEntry {
                    id: UsernameId::new(format!("{n}-{i}")).unwrap(),
                    username: Username::new(*name).unwrap(),
                    organization_specific: *specific,
                })
                .collect(),
        };
        let at = Timestamp::from_unix_micros(seed.created * 1_000_000);
        let (mut user, event) =
            User::create(UserId::new(seed.id).unwrap(), created, at, None).unwrap();
        db.append(&user, &event).await.unwrap();
        for (i, command) in seed.commands.iter().enumerate() {
            let later =
                Timestamp::from_unix_micros((seed.created + 100 + i as i64) * 1_000_000 + n as i64);
            let (next, event) = user.execute(command, later, None).unwrap().unwrap();
            db.append(&next, &event).await.unwrap();
            user = next;
        }
        if !user.is_deleted() {
            users.push(user);
        }
    }
    World {
        db,
        orgs,
        users,
        _guard: test_db,
    }
}

// --- the model ---------------------------------------------------------------------

fn text_matches(method: TextMethod, candidate: &str, value: &str) -> bool {
    use TextMethod::*;
    let folded = matches!(
        method,
        EqualsIgnoreCase | StartsWithIgnoreCase | ContainsIgnoreCase | EndsWithIgnoreCase
    );
    let (candidate, value) = if folded {
        (candidate.to_lowercase(), value.to_lowercase())
    } else {
        (candidate.to_owned(), value.to_owned())
    };
    match method {
        Equals | EqualsIgnoreCase => candidate == value,
        StartsWith | StartsWithIgnoreCase => candidate.starts_with(&value),
        Contains | ContainsIgnoreCase => candidate.contains(&value),
        EndsWith | EndsWithIgnoreCase => candidate.ends_with(&value),
    }
}

fn model_matches(filter: &Filter, user: &User) -> bool {
    let text = |t: &TextMatch, candidate: Option<&str>| {
        candidate.is_some_and(|c| text_matches(t.method, c, &t.value))
    };
    match filter {
        Filter::UserId(t) => text(t, Some(user.id.as_str())),
        Filter::OrganizationId(t) => text(t, Some(user.org_id.as_str())),
        Filter::Email(t) => text(t, user.contact.email.as_ref().map(|e| e.address.as_str())),
        Filter::Phone(t) => text(t, user.contact.phone.as_ref().map(|p| p.number.as_str())),
        Filter::Username {
            text: t,
            organization_specific,
        } => user.usernames.iter().any(|u| {
            text(t, Some(u.username.as_str()))
                && organization_specific.is_none_or(|s| s == u.organization_specific)
        }),
        Filter::State(state) => {
            let reported = match (user.lifecycle, user.lock.is_some()) {
                (Lifecycle::Inactive, _) => UserState::Inactive,
                (Lifecycle::Active, true) => UserState::Locked,
                (Lifecycle::Active, false) => UserState::Active,
                (Lifecycle::Deleted, _) => UserState::Deleted,
            };
            reported == *state
        }
        Filter::SchemaId(id) => user.schema_id.as_ref().is_some_and(|s| s.as_str() == id),
        Filter::And(all) => all.iter().all(|f| model_matches(f, user)),
        Filter::Or(any) => any.iter().any(|f| model_matches(f, user)),
        Filter::Not(f) => !model_matches(f, user),
    }
}

/// NULLs last, then the column's byte order, then id; descending reverses it all.
fn model_order(sort: SortColumn, descending: bool, a: &User, b: &User) -> Ordering {
    fn optional(a: Option<&str>, b: Option<&str>) -> Ordering {
        match (a, b) {
            (Some(a), Some(b)) => a.cmp(b),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        }
    }
    let column = match sort {
        SortColumn::Id => Ordering::Equal,
        SortColumn::CreationDate => a.created.cmp(&b.created),
        SortColumn::ChangeDate => a.changed.cmp(&b.changed),
        SortColumn::Email => optional(
            a.contact.email.as_ref().map(|e| e.address.as_str()),
            b.contact.email.as_ref().map(|e| e.address.as_str()),
        ),
        SortColumn::Phone => optional(
            a.contact.phone.as_ref().map(|p| p.number.as_str()),
            b.contact.phone.as_ref().map(|p| p.number.as_str()),
        ),
        SortColumn::State => a.state().as_str().cmp(b.state().as_str()),
        SortColumn::SchemaId => optional(
            a.schema_id.as_ref().map(SchemaId::as_str),
            b.schema_id.as_ref().map(SchemaId::as_str),
        ),
    };
    let order = column.then_with(|| a.id.as_str().cmp(b.id.as_str()));
    if descending { order.reverse() } else { order }
}

impl World {
    fn query(&self, filter: Filter) -> UserQuery {
        UserQuery {
            filter,
            scope: ReadScope::Everything,
            sort: SortColumn::Id,
            descending: false,
            offset: 0,
            limit: 1000,
            at: Timestamp::UNIX_EPOCH,
        }
    }

    fn expected(&self, query: &UserQuery) -> (u64, Vec<String>) {
        let in_scope = |user: &User| match &query.scope {
            ReadScope::Everything => true,
            ReadScope::Organizations(orgs) => orgs.contains(&user.org_id),
        };
        let mut found: Vec<&User> = self
            .users
            .iter()
            .filter(|u| in_scope(u) && model_matches(&query.filter, u))
            .collect();
        found.sort_by(|a, b| model_order(query.sort, query.descending, a, b));
        let total = found.len() as u64;
        let page = found
            .into_iter()
            .skip(query.offset as usize)
            .take(query.limit as usize)
            .map(|u| u.id.to_string())
            .collect();
        (total, page)
    }

    async fn check(&self, query: &UserQuery) {
        let page = self.db.search(query).await.unwrap();
        let got: Vec<String> = page.users.iter().map(|u| u.id.to_string()).collect();
        let (total, expected) = self.expected(query);
        assert_eq!((page.total, &got), (total, &expected), "{query:?}");
        for user in &page.users {
            let live = self.users.iter().find(|u| u.id == user.id).unwrap();
            assert_eq!(user, live, "search returns the same user GetUser does");
        }
    }
}

/// Values worth searching for: exact ones, case variants, wildcards, non-ASCII.
const VALUES: [&str; 22] = [
    "ada",
    "ADA",
    "Ada",
    "u0",
    "U0",
    "%",
    "_",
    r"\",
    "example.com",
    "EXAMPLE",
    "ärger",
    "ÄRGER",
    "jürgen",
    "grace%",
    "under_",
    "x_y",
    "+41",
    "079",
    "ünïcode",
    "pct%",
    "100",
    "",
];

fn text_filters(value: &str, method: TextMethod) -> Vec<Filter> {
    let t = TextMatch {
        value: value.to_owned(),
        method,
    };
    vec![
        Filter::UserId(t.clone()),
        Filter::OrganizationId(t.clone()),
        Filter::Email(t.clone()),
        Filter::Phone(t.clone()),
        Filter::Username {
            text: t.clone(),
            organization_specific: None,
        },
        Filter::Username {
            text: t.clone(),
            organization_specific: Some(true),
        },
        Filter::Username {
            text: t,
            organization_specific: Some(false),
        },
    ]
}

async fn every_filter_and_method_agrees_with_the_model(db: TestDatabase) {
    let w = world(db).await;
    for value in VALUES {
        for method in TextMethod::ALL {
            for filter in text_filters(value, method) {
                w.check(&w.query(filter.clone())).await;
                w.check(&w.query(Filter::Not(Box::new(filter)))).await;
            }
        }
    }
    for state in UserState::ALL {
        w.check(&w.query(Filter::State(state))).await;
    }
    for schema in ["employee", "Employee", "customer", "none"] {
        w.check(&w.query(Filter::SchemaId(schema.into()))).await;
    }
    // Spot checks that the model itself says what docs/api.md says.
    let (_, literal) = w.expected(&w.query(Filter::Email(TextMatch {
        value: "%".into(),
        method: TextMethod::Contains,
    })));
    assert_eq!(literal, ["u03"], "% is an ordinary character");
    let (_, folded) = w.expected(&w.query(Filter::Email(TextMatch {
        value: "ärger".into(),
        method: TextMethod::StartsWithIgnoreCase,
    })));
    assert_eq!(folded.len(), 2, "non-ASCII letters fold");
}

fn any_text() -> impl Strategy<Value = TextMatch> {
    (
        proptest::sample::select(VALUES.to_vec()),
        proptest::sample::select(TextMethod::ALL.to_vec()),
    )
        .prop_map(|(value, method)| TextMatch {
            value: value.to_owned(),
            method,
        })
}

fn any_filter() -> impl Strategy<Value = Filter> {
    let leaf = prop_oneof![
        any_text().prop_map(Filter::UserId),
        any_text().prop_map(Filter::Email),
        any_text().prop_map(Filter::Phone),
        any_text().prop_map(Filter::OrganizationId),
        (any_text(), proptest::option::of(any::<bool>())).prop_map(
            |(text, organization_specific)| Filter::Username {
                text,
                organization_specific
            }
        ),
        proptest::sample::select(UserState::ALL.to_vec()).prop_map(Filter::State),
        proptest::sample::select(vec!["employee", "customer"])
            .prop_map(|s| Filter::SchemaId(s.into())),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 1..4).prop_map(Filter::And),
            proptest::collection::vec(inner.clone(), 1..4).prop_map(Filter::Or),
            inner.prop_map(|f| Filter::Not(Box::new(f))),
        ]
    })
}

fn any_query(orgs: [OrgId; 2]) -> impl Strategy<Value = UserQuery> {
    (
        any_filter(),
        proptest::sample::select(SortColumn::ALL.to_vec()),
        any::<bool>(),
        0u64..6,
        1u64..8,
        0usize..4,
    )
        .prop_map(
            move |(filter, sort, descending, offset, limit, scope)| UserQuery {
                filter,
                scope: match scope {
                    0 => ReadScope::Organizations(vec![orgs[0].clone()]),
                    1 => ReadScope::Organizations(vec![orgs[1].clone()]),
                    _ => ReadScope::Everything,
                },
                sort,
                descending,
                offset,
                limit,
                at: Timestamp::UNIX_EPOCH,
            },
        )
}

async fn random_filter_trees_agree_with_the_model(db: TestDatabase) {
    let w = world(db).await;
    let handle = tokio::runtime::Handle::current();
    let mut runner = TestRunner::new(Config {
        cases: 200,
        ..Config::default()
    });
    let result = tokio::task::block_in_place(|| {
        runner.run(&any_query(w.orgs.clone()), |query| {
            let page = handle.block_on(w.db.search(&query)).unwrap();
            let got: Vec<String> = page.users.iter().map(|u| u.id.to_string()).collect();
            let (total, expected) = w.expected(&query);
            prop_assert_eq!((page.total, got), (total, expected), "{:?}", query);
            Ok(())
        })
    });
    if let Err(failure) = result {
        panic!("{failure}");
    }
}

async fn pages_cover_every_match_exactly_once_in_every_order(db: TestDatabase) {
    let w = world(db).await;
    for sort in SortColumn::ALL {
        for descending in [false, true] {
            let base = UserQuery {
                sort,
                descending,
                limit: 3,
                ..w.query(Filter::And(Vec::new()))
            };
            let mut walked = Vec::new();
            loop {
                let page =
                    w.db.search(&UserQuery {
                        offset: walked.len() as u64,
                        ..base.clone()
                    })
                    .await
                    .unwrap();
                assert_eq!(page.total, w.users.len() as u64);
                if page.users.is_empty() {
                    break;
                }
                walked.extend(page.users.into_iter().map(|u| u.id.to_string()));
            }
            let (_, everything) = w.expected(&UserQuery {
                limit: 1000,
                ..base
            });
            assert_eq!(walked, everything, "{sort:?} descending={descending}");
        }
    }
}

async fn scope_and_deletion_limit_what_is_found(db: TestDatabase) {
    let w = world(db).await;
    let all =
        w.db.search(&w.query(Filter::And(Vec::new())))
            .await
            .unwrap();
    assert_eq!(all.total, 12, "the deleted user is gone");
    assert!(all.users.iter().all(|u| u.id.as_str() != "u10"));
    let ghost = Filter::Username {
        text: TextMatch {
            value: "ghost".into(),
            method: TextMethod::Equals,
        },
        organization_specific: None,
    };
    assert_eq!(w.db.search(&w.query(ghost)).await.unwrap().total, 0);
    assert_eq!(
        w.db.search(&w.query(Filter::State(UserState::Deleted)))
            .await
            .unwrap()
            .total,
        0
    );

    let only_second = UserQuery {
        scope: ReadScope::Organizations(vec![w.orgs[1].clone()]),
        ..w.query(Filter::And(Vec::new()))
    };
    w.check(&only_second).await;
    let found = w.db.search(&only_second).await.unwrap();
    assert!(found.users.iter().all(|u| u.org_id == w.orgs[1]));
    assert_eq!(found.total, 5);
}

/// With many users in an organization, an email prefix search over it must use an index.
async fn prefix_searches_use_an_index(db: TestDatabase) {
    let backend = db.backend;
    let url = db.url.clone();
    let w = world(db).await;
    let org = &w.orgs[0];
    // Bulk rows straight in SQL: far faster than the event path, and only the plan matters.
    let fill = format!(
        "INSERT INTO users (id, id_key, org_id, data, email, email_key, email_verified, \
         phone_verified, usernames, lifecycle, locked, state, created_at_us, changed_at_us, sequence) \
         SELECT 'bulk' || n, 'bulk' || n, '{org}', '{{}}', 'user' || n || '@bulk.example', \
         'user' || n || '@bulk.example', FALSE, FALSE, '[]', 'ACTIVE', FALSE, 'USER_STATE_ACTIVE', n, n, 1 \
         FROM {series}",
        series = match backend {
            Backend::Postgres => "generate_series(1, 20000) AS n".to_owned(),
            Backend::Sqlite => "(WITH RECURSIVE s(n) AS \
                                (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < 20000) SELECT n FROM s)"
                .to_owned(),
        }
    );
    match backend {
        Backend::Postgres => {
            let mut conn = PgConnection::establish(&url).unwrap();
            conn.batch_execute(&fill).unwrap();
            conn.batch_execute("ANALYZE users").unwrap();
        }
        Backend::Sqlite => {
            let path = url.strip_prefix("sqlite://").unwrap();
            let mut conn = diesel::SqliteConnection::establish(path).unwrap();
            conn.batch_execute(&fill).unwrap();
            conn.batch_execute("ANALYZE").unwrap();
        }
    }
    for method in [
        TextMethod::StartsWith,
        TextMethod::StartsWithIgnoreCase,
        TextMethod::Equals,
    ] {
        let query = UserQuery {
            filter: Filter::Email(TextMatch {
                value: "user123".into(),
                method,
            }),
            scope: ReadScope::Organizations(vec![org.clone()]),
            sort: SortColumn::CreationDate,
            descending: false,
            offset: 0,
            limit: 100,
            at: Timestamp::UNIX_EPOCH,
        };
        let plan = w.db.explain_search(&query).await.unwrap().join("\n");
        match backend {
            Backend::Postgres => {
                assert!(!plan.contains("Seq Scan on users"), "{method:?}:\n{plan}")
            }
            Backend::Sqlite => assert!(
                plan.contains("USING INDEX") && !plan.contains("SCAN users"),
                "{method:?}:\n{plan}"
            ),
        }
        let found = w.db.search(&query).await.unwrap();
        let expected = if method == TextMethod::Equals { 0 } else { 111 };
        assert_eq!(found.total, expected, "{method:?}");
    }
}
