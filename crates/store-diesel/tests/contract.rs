//! The repository contract, run against SQLite (a temp file) and PostgreSQL (a database
//! created for the test): real connections, no mocks.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection, SqliteConnection};
use serde_json::json;
use userd_app::bootstrap::bootstrap_if_empty;
use userd_app::clock::SystemClock;
use userd_app::ids::SnowflakeIds;
use userd_app::tokens::hash_token;
use userd_app::{Ports, UseCases};
use userd_domain::Timestamp;
use userd_domain::authz::{Caller, Memberships, Role, RoleSet};
use userd_domain::user::{
    Command, Contact, EmailContact, PhoneContact, User, UserChange, UserCreated, UserPatch,
    UsernameEntry,
};
use userd_domain::values::{
    Email, OrgId, Phone, SchemaId, UserData, UserId, Username, UsernameId, usernames_clash,
};
use userd_ports::bootstrap::BootstrapStore;
use userd_ports::clock::Clock;
use userd_ports::error::{ErrorKind, StoreError};
use userd_ports::ids::IdGenerator;
use userd_ports::repository::{
    Authenticator, EventLog, HealthProbe, MembershipRepository, NewToken, Organization,
    OrganizationRepository, TokenRepository, UserRepository,
};
use userd_ports::service::{UserRef, UserService};
use userd_store_diesel::{Database, DatabaseTarget, PoolSettings};
use userd_testkit::{TestDatabase, on_both_backends};

on_both_backends!(
    migrations_are_idempotent_and_the_database_answers,
    a_created_user_reads_back_identically,
    unknown_ids_are_not_found,
    a_stale_sequence_conflicts_and_writes_nothing,
    an_id_is_never_created_twice,
    a_user_needs_an_existing_organization,
    usernames_are_unique_per_the_contract,
    the_stored_username_rule_is_the_domain_s,
    the_refusal_names_the_username_that_is_taken,
    concurrent_creators_of_one_username_leave_one_holder,
    deletion_removes_the_row_frees_usernames_and_keeps_the_events,
    the_event_log_refuses_updates_and_deletes,
    thirty_two_concurrent_locks_append_exactly_one_event,
    the_live_table_is_the_fold_of_the_event_log,
    a_tampered_projection_is_detected,
    bootstrap_runs_once_and_its_token_authenticates,
    tokens_stop_working_for_locked_inactive_and_deleted_users,
    memberships_are_set_replaced_and_removed,
    tokens_expire_and_are_revoked,
    a_caller_carries_all_its_roles,
    the_instance_id_is_recorded_once,
    password_checks_write_their_events_at_once_and_a_timed_lockout_ends_on_time,
    forty_concurrent_wrong_checks_count_exactly_the_limit_and_lock,
    settings_are_stored_per_scope_and_sessions_round_trip,
    messages_are_stored_with_their_events_or_not_at_all,
    claims_are_exclusive_until_their_lease_ends,
    delivered_and_abandoned_messages_forget_their_text,
);

struct Fixture {
    db: Database,
    raw_url: String,
    _guard: TestDatabase,
    ids: SnowflakeIds,
    org: OrgId,
    admin: Caller,
}

impl Fixture {
    async fn new(test_db: TestDatabase) -> Fixture {
        let target = DatabaseTarget::parse(&test_db.url).unwrap();
        let db = Database::open(&target, &PoolSettings::default()).unwrap();
        db.migrate().unwrap();
        let ids = SnowflakeIds::new(1);
        let org = OrgId::new(ids.next_id()).unwrap();
        db.create_organization(&Organization {
            id: org.clone(),
            name: "Acme".into(),
            created: SystemClock.now(),
            changed: SystemClock.now(),
        })
        .await
        .unwrap();
        let admin = Caller {
            user_id: UserId::new("admin").unwrap(),
            org_id: org.clone(),
            roles: userd_domain::authz::Memberships {
                instance: RoleSet::new([Role::IamOwner]),
                organizations: Default::default(),
            },
            ceiling: None,
        };
        Fixture {
            db,
            raw_url: test_db.url.clone(),
            _guard: test_db,
            ids,
            org,
            admin,
        }
    }

    fn service(&self) -> UseCases {
        let db = Arc::new(self.db.clone());
        UseCases::new(Ports {
            users: db.clone(),
            authenticator: db.clone(),
            organizations: db.clone(),
            members: db.clone(),
            tokens: db.clone(),
            health: db.clone(),
            clock: Arc::new(SystemClock),
            ids: Arc::new(SnowflakeIds::new(2)),
            hasher: Arc::new(userd_hasher::Argon2idHasher::new(2).unwrap()),
            settings: db.clone(),
            sessions: db.clone(),
            instance_id: "instance".into(),
        })
    }

    async fn other_org(&self) -> OrgId {
        let id = OrgId::new(self.ids.next_id()).unwrap();
        self.db
            .create_organization(&Organization {
                id: id.clone(),
                name: "Globex".into(),
                created: SystemClock.now(),
                changed: SystemClock.now(),
            })
            .await
            .unwrap();
        id
    }

    fn new_user(
        &self,
        id: &str,
        org: &OrgId,
        usernames: &[(&str, bool)],
    ) -> (User, userd_domain::user::UserEvent) {
        let created = UserCreated {
            org_id: org.clone(),
            schema_id: Some(SchemaId::new("employee").unwrap()),
            data: UserData::from_value(json!({"givenName": "Ada", "n": [1, 2, {"x": null}]}))
                .unwrap(),
            contact: Contact {
                email: Some(EmailContact {
                    address: Email::new("Ada@Example.com").unwrap(),
                    verified: true,
                }),
                phone: Some(PhoneContact {
                    number: Phone::new("+41790000000").unwrap(),
                    verified: false,
                }),
            },
            usernames: usernames
                .iter()
                .map(|(name, org_specific)| UsernameEntry {
                    id: UsernameId::new(self.ids.next_id()).unwrap(),
                    username: Username::new(*name).unwrap(),
                    organization_specific: *org_specific,
                })
                .collect(),
        };
        User::create(UserId::new(id).unwrap(), created, SystemClock.now(), None).unwrap()
    }

    async fn create(
        &self,
        id: &str,
        org: &OrgId,
        usernames: &[(&str, bool)],
    ) -> Result<User, StoreError> {
        let (user, event) = self.new_user(id, org, usernames);
        self.db.append(&user, &event).await.map(|()| user)
    }

    async fn run(&self, user: &User, command: Command) -> User {
        let (next, event) = user
            .execute(&command, SystemClock.now(), None)
            .unwrap()
            .unwrap();
        self.db.append(&next, &event).await.unwrap();
        next
    }

    /// The `n` a `SELECT ... AS n` answers, read over a connection of its own.
    fn count(&self, sql: &str) -> i64 {
        use diesel::RunQueryDsl;
        #[derive(diesel::QueryableByName)]
        struct Count {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let rows: Vec<Count> = match self.raw_url.strip_prefix("sqlite://") {
            Some(path) => diesel::sql_query(sql)
                .load(&mut SqliteConnection::establish(path).unwrap())
                .unwrap(),
            None => diesel::sql_query(sql)
                .load(&mut PgConnection::establish(&self.raw_url).unwrap())
                .unwrap(),
        };
        rows[0].n
    }

    fn raw_sql(&self, sql: &str) -> Result<(), String> {
        match self.raw_url.strip_prefix("sqlite://") {
            Some(path) => SqliteConnection::establish(path)
                .unwrap()
                .batch_execute(sql)
                .map_err(|e| e.to_string()),
            None => PgConnection::establish(&self.raw_url)
                .unwrap()
                .batch_execute(sql)
                .map_err(|e| e.to_string()),
        }
    }

    /// (organization, organization-specific) of every holder of a username key, read
    /// straight from the table.
    fn username_holders(&self, username_key: &str) -> Vec<(String, bool)> {
        use diesel::RunQueryDsl;
        use diesel::sql_types::{Bool, Text};
        #[derive(diesel::QueryableByName)]
        struct Holder {
            #[diesel(sql_type = Text)]
            org_id: String,
            #[diesel(sql_type = Bool)]
            organization_specific: bool,
        }
        let query = diesel::sql_query(
            "SELECT org_id, organization_specific FROM usernames WHERE username_key = ",
        );
        let rows: Vec<Holder> = match self.raw_url.strip_prefix("sqlite://") {
            Some(path) => query
                .sql("?")
                .bind::<Text, _>(username_key)
                .load(&mut SqliteConnection::establish(path).unwrap()),
            None => query
                .sql("$1")
                .bind::<Text, _>(username_key)
                .load(&mut PgConnection::establish(&self.raw_url).unwrap()),
        }
        .unwrap();
        rows.into_iter()
            .map(|h| (h.org_id, h.organization_specific))
            .collect()
    }
}

async fn migrations_are_idempotent_and_the_database_answers(db: TestDatabase) {
    let f = Fixture::new(db).await;
    let again = f.db.migrate().unwrap();
    assert_eq!(again.applied, 0, "nothing left to apply");
    assert!(again.data.applied.is_empty(), "{again:?}");
    f.db.ping().await.unwrap();
}

async fn a_created_user_reads_back_identically(db: TestDatabase) {
    let f = Fixture::new(db).await;
    let user = f
        .create("u1", &f.org, &[("ada", true), ("Lovelace", false)])
        .await
        .unwrap();
    let found = f.db.find(&user.id).await.unwrap().unwrap();
    assert_eq!(found, user);

    let patched = f
        .run(
            &user,
            Command::Patch(UserPatch {
                data: Some(UserData::from_value(json!({"givenName": "Augusta"})).unwrap()),
                ..UserPatch::default()
            }),
        )
        .await;
    let locked = f.run(&patched, Command::Lock).await;
    assert_eq!(f.db.find(&user.id).await.unwrap().unwrap(), locked);
    let events = f.db.user_events(&user.id).await.unwrap();
    let types: Vec<_> = events.iter().map(|e| e.change.event_type()).collect();
    assert_eq!(types, ["user.created", "user.updated", "user.locked"]);
}

async fn unknown_ids_are_not_found(db: TestDatabase) {
    let f = Fixture::new(db).await;
    assert_eq!(
        f.db.find(&UserId::new("nobody").unwrap()).await.unwrap(),
        None
    );
    assert!(
        f.db.user_events(&UserId::new("nobody").unwrap())
            .await
            .unwrap()
            .is_empty()
    );
}

async fn a_stale_sequence_conflicts_and_writes_nothing(db: TestDatabase) {
    let f = Fixture::new(db).await;
    let user = f.create("u1", &f.org, &[]).await.unwrap();
    let _winner = f.run(&user, Command::Lock).await;
    // A writer that still holds the old state.
    let (stale, event) = user
        .execute(&Command::Deactivate, SystemClock.now(), None)
        .unwrap()
        .unwrap();
    assert!(matches!(
        f.db.append(&stale, &event).await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(f.db.user_events(&user.id).await.unwrap().len(), 2);
    let current = f.db.find(&user.id).await.unwrap().unwrap();
    assert!(current.lock.is_some() && current.lifecycle == userd_domain::user::Lifecycle::Active);
}

async fn an_id_is_never_created_twice(db: TestDatabase) {
    let f = Fixture::new(db).await;
    let user = f.create("u1", &f.org, &[]).await.unwrap();
    assert!(matches!(
        f.create("u1", &f.org, &[]).await,
        Err(StoreError::UserIdTaken)
    ));
    // Not even after deletion: the id's event stream still exists.
    f.run(&user, Command::Delete).await;
    assert!(matches!(
        f.create("u1", &f.org, &[]).await,
        Err(StoreError::UserIdTaken)
    ));
}

async fn a_user_needs_an_existing_organization(db: TestDatabase) {
    let f = Fixture::new(db).await;
    let nowhere = OrgId::new("no-such-org").unwrap();
    assert!(matches!(
        f.create("u1", &nowhere, &[("ada", true)]).await,
        Err(StoreError::OrganizationNotFound)
    ));
    assert!(
        f.db.user_events(&UserId::new("u1").unwrap())
            .await
            .unwrap()
            .is_empty(),
        "rolled back"
    );
}

async fn usernames_are_unique_per_the_contract(db: TestDatabase) {
    let f = Fixture::new(db).await;
    let other = f.other_org().await;
    f.create("a1", &f.org, &[("ada", true)]).await.unwrap();

    let taken =
        |result: Result<User, StoreError>| matches!(result, Err(StoreError::UsernameTaken(_)));
    assert!(
        taken(f.create("a2", &f.org, &[("ADA", true)]).await),
        "case-insensitive, same org"
    );
    assert!(
        taken(f.create("a3", &f.org, &[("ada", false)]).await),
        "global clashes with any"
    );
    f.create("a4", &other, &[("ada", true)])
        .await
        .expect("org-specific names repeat across orgs");

    f.create("g1", &f.org, &[("grace", false)]).await.unwrap();
    assert!(
        taken(f.create("g2", &other, &[("grace", true)]).await),
        "a global name is unique everywhere"
    );
    assert!(taken(f.create("g3", &other, &[("Grace", false)]).await));
    assert!(
        f.db.find(&UserId::new("a2").unwrap())
            .await
            .unwrap()
            .is_none(),
        "nothing half-written"
    );
    assert!(
        f.db.user_events(&UserId::new("a2").unwrap())
            .await
            .unwrap()
            .is_empty()
    );
}

/// The SQL that enforces username uniqueness agrees with the domain's rule, over a
/// pseudo-random walk of creations and deletions of one name in several spellings.
async fn the_stored_username_rule_is_the_domain_s(db: TestDatabase) {
    let f = Fixture::new(db).await;
    let orgs = [f.org.clone(), f.other_org().await];
    let spellings = ["ada", "ADA", "\u{ff41}\u{ff44}\u{ff41}"];
    // (organization, organization-specific, user) of each live holder.
    let mut held: Vec<(OrgId, bool, User)> = Vec::new();
    let (mut accepted, mut refused) = (0, 0);
    let mut seed: u64 = 20_261_202;
    for n in 0..48 {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        if (seed >> 60) < 4 && !held.is_empty() {
            let (_, _, user) = held.remove((seed >> 20) as usize % held.len());
            f.run(&user, Command::Delete).await;
        }
        let org = &orgs[(seed >> 33) as usize % orgs.len()];
        let specific = (seed >> 40) & 1 == 1;
        let spelling = spellings[(seed >> 45) as usize % spellings.len()];
        let clash = held.iter().any(|(held_org, held_specific, _)| {
            usernames_clash(
                (held_org.as_str(), *held_specific),
                (org.as_str(), specific),
            )
        });
        match f
            .create(&format!("u{n}"), org, &[(spelling, specific)])
            .await
        {
            Ok(user) => {
                assert!(
                    !clash,
                    "u{n} ({spelling}, specific: {specific}) was accepted"
                );
                accepted += 1;
                held.push((org.clone(), specific, user));
            }
            Err(StoreError::UsernameTaken(_)) => {
                assert!(clash, "u{n} ({spelling}, specific: {specific}) was refused");
                refused += 1;
            }
            Err(other) => panic!("u{n}: {other}"),
        }
    }
    assert!(
        accepted > 5 && refused > 5,
        "{accepted} accepted, {refused} refused"
    );
}

async fn the_refusal_names_the_username_that_is_taken(db: TestDatabase) {
    let f = Fixture::new(db).await;
    f.create("a1", &f.org, &[("grace", false)]).await.unwrap();
    let refused = f
        .create(
            "a2",
            &f.org,
            &[("ada", true), ("Grace", true), ("hopper", false)],
        )
        .await;
    assert!(
        matches!(&refused, Err(StoreError::UsernameTaken(name)) if name == "Grace"),
        "{refused:?}"
    );
    assert!(
        f.db.find(&UserId::new("a2").unwrap())
            .await
            .unwrap()
            .is_none()
    );
    f.create("a3", &f.org, &[("ada", true), ("hopper", false)])
        .await
        .expect("the other names were not kept by the refused creation");
}

/// Creators in different organizations race for one global username; the check and the
/// insert must not interleave, or two users would hold it.
async fn concurrent_creators_of_one_username_leave_one_holder(db: TestDatabase) {
    let f = Arc::new(Fixture::new(db).await);
    let mut orgs = Vec::new();
    for _ in 0..4 {
        orgs.push(f.other_org().await);
    }
    for round in 0..10 {
        let name = format!("Lovelace{round}");
        let start = Arc::new(tokio::sync::Barrier::new(16));
        let racers: Vec<_> = (0..16)
            .map(|i| {
                let (f, org, name) = (Arc::clone(&f), orgs[i % orgs.len()].clone(), name.clone());
                let start = Arc::clone(&start);
                tokio::spawn(async move {
                    // Mostly global claims, which no unique index can catch across
                    // organizations; some org-specific ones beside them.
                    let specific = i % 4 == 0;
                    start.wait().await;
                    f.create(&format!("racer{round}x{i}"), &org, &[(&name, specific)])
                        .await
                })
            })
            .collect();
        let mut created = 0;
        for racer in racers {
            match racer.await.unwrap() {
                Ok(_) => created += 1,
                Err(StoreError::UsernameTaken(taken)) => assert_eq!(taken, name),
                Err(other) => panic!("unexpected {other:?}"),
            }
        }
        // Org-specific holders may repeat across organizations, but never beside a
        // global holder, and never twice in one organization.
        let holders = f.username_holders(&name.to_lowercase());
        assert_eq!(holders.len(), created);
        let globals = holders.iter().filter(|(_, specific)| !specific).count();
        let mut holder_orgs: Vec<_> = holders.iter().map(|(org, _)| org.clone()).collect();
        holder_orgs.sort();
        holder_orgs.dedup();
        assert!(created >= 1);
        assert!(globals == 0 || created == 1, "round {round}: {holders:?}");
        assert_eq!(holder_orgs.len(), created, "round {round}: {holders:?}");
    }
}

async fn deletion_removes_the_row_frees_usernames_and_keeps_the_events(db: TestDatabase) {
    let f = Fixture::new(db).await;
    let user = f.create("u1", &f.org, &[("ada", false)]).await.unwrap();
    f.run(&user, Command::Delete).await;
    assert_eq!(f.db.find(&user.id).await.unwrap(), None);
    let events = f.db.user_events(&user.id).await.unwrap();
    assert_eq!(events.last().map(|e| &e.change), Some(&UserChange::Deleted));
    f.create("u2", &f.org, &[("ada", false)])
        .await
        .expect("the username is free again");
}

async fn the_event_log_refuses_updates_and_deletes(db: TestDatabase) {
    let f = Fixture::new(db).await;
    f.create("u1", &f.org, &[]).await.unwrap();
    let update = f.raw_sql("UPDATE events SET event_type = 'user.locked'");
    assert!(update.unwrap_err().contains("append-only"));
    let delete = f.raw_sql("DELETE FROM events");
    assert!(delete.unwrap_err().contains("append-only"));
    assert_eq!(
        f.db.user_events(&UserId::new("u1").unwrap())
            .await
            .unwrap()
            .len(),
        1
    );
}

async fn thirty_two_concurrent_locks_append_exactly_one_event(db: TestDatabase) {
    let f = Fixture::new(db).await;
    let user = f.create("u1", &f.org, &[]).await.unwrap();
    let service = Arc::new(f.service());
    let target = UserRef {
        id: user.id.clone(),
        expected_org: None,
        if_match: None,
    };
    let attempts = (0..32).map(|_| {
        let service = Arc::clone(&service);
        let (caller, target) = (f.admin.clone(), target.clone());
        tokio::spawn(async move { service.execute(&caller, &target, Command::Lock).await })
    });
    let outcomes = futures::future::join_all(attempts).await;
    let mut locked = 0;
    let mut refused = 0;
    for outcome in outcomes {
        match outcome.unwrap() {
            Ok(_) => locked += 1,
            Err(error) if error.reason() == "USER_ALREADY_LOCKED" => {
                assert_eq!(error.kind(), ErrorKind::FailedPrecondition);
                refused += 1;
            }
            Err(other) => panic!("unexpected outcome: {other:?}"),
        }
    }
    assert_eq!((locked, refused), (1, 31));
    let events = f.db.user_events(&user.id).await.unwrap();
    let locks = events
        .iter()
        .filter(|e| matches!(e.change, UserChange::Locked(_)))
        .count();
    assert_eq!(locks, 1);
}

/// A mixed workload through the use cases, including races, then a replay.
async fn the_live_table_is_the_fold_of_the_event_log(db: TestDatabase) {
    let f = Fixture::new(db).await;
    let service = Arc::new(f.service());
    let mut users = Vec::new();
    for i in 0..6 {
        users.push(
            f.create(
                &format!("u{i}"),
                &f.org,
                &[(&format!("name{i}"), i % 2 == 0)],
            )
            .await
            .unwrap(),
        );
    }
    let commands = [
        Command::Lock,
        Command::Unlock,
        Command::Deactivate,
        Command::Activate,
        Command::Patch(UserPatch {
            phone: Some(PhoneContact {
                number: Phone::new("+100").unwrap(),
                verified: true,
            }),
            ..UserPatch::default()
        }),
    ];
    let work = (0..120).map(|i| {
        let service = Arc::clone(&service);
        let caller = f.admin.clone();
        let target = UserRef {
            id: users[i % users.len()].id.clone(),
            expected_org: None,
            if_match: None,
        };
        let command = if i == 77 {
            Command::Delete
        } else {
            commands[i * 7 % commands.len()].clone()
        };
        tokio::spawn(async move { service.execute(&caller, &target, command).await })
    });
    for outcome in futures::future::join_all(work).await {
        if let Err(error) = outcome.unwrap() {
            assert!(
                matches!(
                    error.kind(),
                    ErrorKind::FailedPrecondition | ErrorKind::NotFound | ErrorKind::Aborted
                ),
                "{error:?}"
            );
        }
    }
    let drift = f.db.verify_projection().await.unwrap();
    assert!(drift.is_clean(), "{drift:?}");
    assert_eq!(drift.users_replayed, 6);
}

async fn a_tampered_projection_is_detected(db: TestDatabase) {
    let f = Fixture::new(db).await;
    f.create("u1", &f.org, &[]).await.unwrap();
    f.create("u2", &f.org, &[]).await.unwrap();
    f.raw_sql("UPDATE users SET locked = TRUE WHERE id = 'u1'")
        .unwrap();
    f.raw_sql("DELETE FROM users WHERE id = 'u2'").unwrap();
    let drift = f.db.verify_projection().await.unwrap();
    assert_eq!(drift.different, ["u1"]);
    assert_eq!(drift.missing, ["u2"]);
}

async fn bootstrap_runs_once_and_its_token_authenticates(db: TestDatabase) {
    let target = DatabaseTarget::parse(&db.url).unwrap();
    let store = Database::open(&target, &PoolSettings::default()).unwrap();
    store.migrate().unwrap();
    let ids = SnowflakeIds::new(3);
    let first = bootstrap_if_empty(&store, &SystemClock, &ids, "Default", "admin")
        .await
        .unwrap()
        .expect("an empty database is bootstrapped");
    let again = bootstrap_if_empty(&store, &SystemClock, &ids, "Default", "admin")
        .await
        .unwrap();
    assert!(again.is_none(), "later starts change nothing");

    let caller = store
        .caller_for_token(&hash_token(first.token.expose()), SystemClock.now())
        .await
        .unwrap()
        .expect("the bootstrap token authenticates")
        .caller;
    assert_eq!(caller.user_id, first.admin_id);
    assert_eq!(caller.org_id, first.org_id);
    assert_eq!(caller.roles.instance, RoleSet::new([Role::IamOwner]));
    let unknown = store
        .caller_for_token(&hash_token("userd_pat_nope"), SystemClock.now())
        .await
        .unwrap();
    assert_eq!(unknown, None);
}

async fn tokens_stop_working_for_locked_inactive_and_deleted_users(db: TestDatabase) {
    let target = DatabaseTarget::parse(&db.url).unwrap();
    let store = Database::open(&target, &PoolSettings::default()).unwrap();
    store.migrate().unwrap();
    let boot = bootstrap_if_empty(
        &store,
        &SystemClock,
        &SnowflakeIds::new(4),
        "Default",
        "admin",
    )
    .await
    .unwrap()
    .unwrap();
    let hash = hash_token(boot.token.expose());
    let works = || async {
        store
            .caller_for_token(&hash, Timestamp::UNIX_EPOCH)
            .await
            .unwrap()
            .is_some()
    };
    let admin = store.find(&boot.admin_id).await.unwrap().unwrap();
    assert!(works().await);

    let step = |user: &User, command: Command| {
        user.execute(&command, SystemClock.now(), None)
            .unwrap()
            .unwrap()
    };
    let (locked, event) = step(&admin, Command::Lock);
    store.append(&locked, &event).await.unwrap();
    assert!(!works().await, "locked");
    let (unlocked, event) = step(&locked, Command::Unlock);
    store.append(&unlocked, &event).await.unwrap();
    assert!(works().await, "unlocked again");
    let (inactive, event) = step(&unlocked, Command::Deactivate);
    store.append(&inactive, &event).await.unwrap();
    assert!(!works().await, "inactive");
    let (active, event) = step(&inactive, Command::Activate);
    store.append(&active, &event).await.unwrap();
    assert!(works().await, "active again");
    let (deleted, event) = step(&active, Command::Delete);
    store.append(&deleted, &event).await.unwrap();
    assert!(!works().await, "deleted");
}

async fn memberships_are_set_replaced_and_removed(db: TestDatabase) {
    let f = Fixture::new(db).await;
    let other = f.other_org().await;
    let user = f.create("m1", &f.org, &[]).await.unwrap();
    let at = |micros| Timestamp::from_unix_micros(micros);
    let viewer = RoleSet::new([Role::OrgUserViewer]);
    let first =
        f.db.set_org_member(&other, &user.id, &viewer, at(10))
            .await
            .unwrap();
    assert_eq!((first.created, first.changed), (at(10), at(10)));
    let owner = RoleSet::new([Role::OrgOwner, Role::OrgUserViewer]);
    let second =
        f.db.set_org_member(&other, &user.id, &owner, at(20))
            .await
            .unwrap();
    assert_eq!(
        (second.created, second.changed),
        (at(10), at(20)),
        "replaced, not added"
    );
    f.db.set_instance_member(&user.id, &RoleSet::new([Role::IamUserManager]), at(30))
        .await
        .unwrap();
    assert_eq!(
        f.db.memberships_of(&user.id).await.unwrap(),
        Memberships {
            instance: RoleSet::new([Role::IamUserManager]),
            organizations: [(other.clone(), owner)].into(),
        }
    );

    let removed =
        f.db.remove_org_member(&other, &user.id, at(40))
            .await
            .unwrap();
    assert_eq!(removed.map(|t| t.created), Some(at(10)));
    assert_eq!(
        f.db.remove_org_member(&other, &user.id, at(50))
            .await
            .unwrap(),
        None
    );

    let nobody = UserId::new("nobody").unwrap();
    assert!(matches!(
        f.db.set_org_member(&other, &nobody, &viewer, at(1)).await,
        Err(StoreError::UserNotFound)
    ));
    assert!(matches!(
        f.db.set_org_member(&OrgId::new("no-org").unwrap(), &user.id, &viewer, at(1))
            .await,
        Err(StoreError::OrganizationNotFound)
    ));
    assert!(matches!(
        f.db.set_instance_member(&nobody, &RoleSet::new([Role::IamOwner]), at(1))
            .await,
        Err(StoreError::UserNotFound)
    ));

    // Deleting the user ends its memberships.
    f.db.set_org_member(&other, &user.id, &viewer, at(60))
        .await
        .unwrap();
    f.run(&user, Command::Delete).await;
    assert_eq!(
        f.db.memberships_of(&user.id).await.unwrap(),
        Memberships::default()
    );
}

async fn tokens_expire_and_are_revoked(db: TestDatabase) {
    let f = Fixture::new(db).await;
    let user = f.create("t1", &f.org, &[]).await.unwrap();
    let at = |micros| Timestamp::from_unix_micros(micros);
    let token = |id: &str, secret: &str, expires: Option<i64>| NewToken {
        id: id.into(),
        user_id: user.id.clone(),
        hash: hash_token(secret),
        expires_at: expires.map(at),
        created: at(5),
        issuer: None,
        ceiling: None,
    };
    f.db.create_token(&token("p1", "s1", Some(1_000)))
        .await
        .unwrap();
    f.db.create_token(&token("p2", "s2", None)).await.unwrap();
    let resolve = |secret: &'static str, now: i64| {
        let db = f.db.clone();
        async move {
            db.caller_for_token(&hash_token(secret), at(now))
                .await
                .unwrap()
        }
    };
    let found = resolve("s1", 999).await.expect("valid before expiry");
    assert_eq!(found.expires_at, Some(at(1_000)));
    assert_eq!(found.caller.user_id, user.id);
    assert!(
        resolve("s1", 1_000).await.is_none(),
        "expired at its expiry"
    );

    assert!(resolve("s2", 999).await.is_some());
    let revoked = f.db.revoke_token(&user.id, "p2", at(700)).await.unwrap();
    assert_eq!(
        revoked.map(|t| (t.created, t.changed)),
        Some((at(5), at(700)))
    );
    assert!(resolve("s2", 999).await.is_none(), "revoked");
    assert_eq!(
        f.db.revoke_token(&user.id, "p2", at(800)).await.unwrap(),
        None,
        "once"
    );
    let stranger = UserId::new("someone-else").unwrap();
    assert_eq!(
        f.db.revoke_token(&stranger, "p1", at(800)).await.unwrap(),
        None,
        "not theirs"
    );
}

async fn a_caller_carries_all_its_roles(db: TestDatabase) {
    let f = Fixture::new(db).await;
    let second = f.other_org().await;
    let third = f.other_org().await;
    let user = f.create("r1", &f.org, &[]).await.unwrap();
    let now = SystemClock.now();
    f.db.set_org_member(&second, &user.id, &RoleSet::new([Role::OrgOwner]), now)
        .await
        .unwrap();
    f.db.set_org_member(&third, &user.id, &RoleSet::new([Role::OrgUserViewer]), now)
        .await
        .unwrap();
    f.db.create_token(&NewToken {
        id: "p1".into(),
        user_id: user.id.clone(),
        hash: hash_token("secret"),
        expires_at: None,
        created: now,
        issuer: None,
        ceiling: None,
    })
    .await
    .unwrap();
    let caller =
        f.db.caller_for_token(&hash_token("secret"), now)
            .await
            .unwrap()
            .unwrap()
            .caller;
    assert_eq!(caller.org_id, f.org);
    assert!(caller.roles.instance.is_empty());
    assert_eq!(
        caller.roles.organizations,
        [
            (second, RoleSet::new([Role::OrgOwner])),
            (third, RoleSet::new([Role::OrgUserViewer]))
        ]
        .into()
    );
    f.db.set_instance_member(&user.id, &RoleSet::new([Role::IamOwner]), now)
        .await
        .unwrap();
    let caller =
        f.db.caller_for_token(&hash_token("secret"), now)
            .await
            .unwrap()
            .unwrap()
            .caller;
    assert_eq!(caller.roles.instance, RoleSet::new([Role::IamOwner]));
    assert_eq!(caller.roles.organizations.len(), 2);
}

async fn the_instance_id_is_recorded_once(db: TestDatabase) {
    let f = Fixture::new(db).await;
    assert_eq!(f.db.instance_id("first").await.unwrap(), "first");
    assert_eq!(f.db.instance_id("second").await.unwrap(), "first");
}

async fn password_checks_write_their_events_at_once_and_a_timed_lockout_ends_on_time(
    db: TestDatabase,
) {
    use userd_domain::password::{LockCause, LockoutPolicy, PasswordHash, Verified};
    use userd_domain::user::UserState;
    use userd_ports::search::{Filter, ReadScope, SortColumn, UserQuery};

    let f = Fixture::new(db).await;
    let user = f.create("u1", &f.org, &[]).await.unwrap();
    let hash = PasswordHash::new("$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo");
    let mut user = f
        .run(
            &user,
            Command::SetPassword {
                hash: hash.clone(),
                change_required: true,
            },
        )
        .await;
    let policy = LockoutPolicy {
        max_password_attempts: 2,
        lockout_duration: Some(std::time::Duration::from_secs(60)),
    };
    let wrong = Verified {
        hash: &hash,
        matches: false,
    };
    let now = SystemClock.now();
    let first = user
        .record_password_check(wrong, &policy, now, None)
        .unwrap();
    f.db.append_all(&first.next, &first.events).await.unwrap();
    let second = first
        .next
        .record_password_check(wrong, &policy, now, None)
        .unwrap();
    assert_eq!(second.events.len(), 2, "the failure and the lock");
    // A writer that started from the older state loses, and writes none of its events.
    let stale = first
        .next
        .record_password_check(wrong, &policy, now, None)
        .unwrap();
    f.db.append_all(&second.next, &second.events).await.unwrap();
    assert!(matches!(
        f.db.append_all(&stale.next, &stale.events).await,
        Err(StoreError::Conflict)
    ));
    user = second.next;

    let stored = f.db.find(&user.id).await.unwrap().unwrap();
    assert_eq!(stored, user);
    let lock = stored.lock.unwrap();
    assert_eq!(lock.cause, LockCause::Lockout);
    assert_eq!(stored.failed_password_checks, 2);
    assert_eq!(stored.password.as_ref().map(|p| &p.hash), Some(&hash));
    let types: Vec<&str> =
        f.db.user_events(&user.id)
            .await
            .unwrap()
            .iter()
            .map(|e| e.change.event_type())
            .collect();
    assert_eq!(
        types,
        [
            "user.created",
            "user.password.set",
            "user.password.check.failed",
            "user.password.check.failed",
            "user.locked"
        ]
    );

    let until = lock.until.unwrap();
    let found = |state: UserState, at: Timestamp| {
        let query = UserQuery {
            filter: Filter::State(state),
            scope: ReadScope::Everything,
            sort: SortColumn::Id,
            descending: false,
            offset: 0,
            limit: 10,
            at,
        };
        let db = f.db.clone();
        async move {
            let page = db.search(&query).await.unwrap();
            page.users.iter().any(|u| u.id.as_str() == "u1")
        }
    };
    let just_before = Timestamp::from_unix_micros(until.unix_micros() - 1);
    assert!(found(UserState::Locked, just_before).await);
    assert!(!found(UserState::Active, just_before).await);
    assert!(!found(UserState::Locked, until).await, "the lockout ended");
    assert!(found(UserState::Active, until).await);

    let drift = f.db.verify_projection().await.unwrap();
    assert!(drift.is_clean(), "{drift:?}");
}

async fn forty_concurrent_wrong_checks_count_exactly_the_limit_and_lock(db: TestDatabase) {
    use userd_ports::login::{
        LoginService, NewPassword, PasswordProof, SessionChecks, SessionUser, SetPassword,
    };
    use userd_ports::passwords::PlainPassword;
    use userd_ports::settings::{LockoutSettings, SettingsScope};

    let f = Fixture::new(db).await;
    let service = Arc::new(f.service());
    let user = f.create("u1", &f.org, &[("ada", false)]).await.unwrap();
    service
        .set_lockout_settings(
            &f.admin,
            &SettingsScope::Organization(f.org.clone()),
            LockoutSettings {
                max_password_attempts: 5,
                ..LockoutSettings::DEFAULT
            },
        )
        .await
        .unwrap();
    let right = PlainPassword::new("correct horse battery".into());
    service
        .set_password(
            &f.admin,
            &UserRef::new(user.id.clone()),
            SetPassword {
                password: NewPassword::Plain(right.clone()),
                change_required: false,
                proof: PasswordProof::None,
            },
        )
        .await
        .unwrap();

    let login = |password: PlainPassword| {
        let service = Arc::clone(&service);
        let caller = f.admin.clone();
        let checks = SessionChecks {
            user: Some(SessionUser::LoginName {
                name: "ADA".into(),
                organization: None,
            }),
            password: Some(password),
        };
        async move { service.create_session(&caller, checks, None).await }
    };
    let checks = (0..40).map(|n| tokio::spawn(login(PlainPassword::new(format!("wrong {n}")))));
    let mut reasons = std::collections::BTreeMap::<&str, usize>::new();
    for outcome in futures::future::join_all(checks).await {
        let error = outcome.unwrap().expect_err("a wrong password never passes");
        *reasons.entry(error.reason()).or_default() += 1;
    }
    assert_eq!(reasons.get("INVALID_CREDENTIALS"), Some(&5), "{reasons:?}");
    assert_eq!(reasons.get("USER_LOCKED"), Some(&35), "{reasons:?}");

    let locked = f.db.find(&user.id).await.unwrap().unwrap();
    assert_eq!(locked.failed_password_checks, 5);
    assert!(locked.lock.is_some());
    let failures =
        f.db.user_events(&user.id)
            .await
            .unwrap()
            .iter()
            .filter(|e| e.change.event_type() == "user.password.check.failed")
            .count();
    assert_eq!(failures, 5);

    // The right password after the lock fails; unlocking lets the user in again.
    let refused = login(right.clone()).await;
    assert_eq!(refused.unwrap_err().reason(), "USER_LOCKED");
    service
        .execute(&f.admin, &UserRef::new(user.id.clone()), Command::Unlock)
        .await
        .unwrap();
    let session = login(right.clone()).await.unwrap();
    assert!(session.token.expose().starts_with("userd_st_"));
    let unlocked = f.db.find(&user.id).await.unwrap().unwrap();
    assert_eq!(unlocked.failed_password_checks, 0);
    let drift = f.db.verify_projection().await.unwrap();
    assert!(drift.is_clean(), "{drift:?}");
}

async fn settings_are_stored_per_scope_and_sessions_round_trip(db: TestDatabase) {
    use userd_ports::sessions::{SessionRecord, SessionRepository};
    use userd_ports::settings::{
        ComplexitySettings, LockoutSettings, SettingsKind, SettingsRepository, SettingsScope,
    };
    use userd_ports::tokens::TokenHash;

    let f = Fixture::new(db).await;
    let org = SettingsScope::Organization(f.org.clone());
    assert_eq!(f.db.lockout(&org).await.unwrap(), None);
    let lockout = LockoutSettings {
        max_password_attempts: 3,
        max_otp_attempts: 2,
        lockout_duration: std::time::Duration::from_micros(1_500_000),
    };
    let first =
        f.db.set_lockout(&org, &lockout, Timestamp::from_unix_micros(10))
            .await
            .unwrap();
    let again =
        f.db.set_lockout(&org, &lockout, Timestamp::from_unix_micros(20))
            .await
            .unwrap();
    assert_eq!(
        (first.created, again.created),
        (again.created, Timestamp::from_unix_micros(10))
    );
    assert_eq!(f.db.lockout(&org).await.unwrap().unwrap().value, lockout);
    assert_eq!(f.db.lockout(&SettingsScope::Instance).await.unwrap(), None);
    let complexity = ComplexitySettings {
        requires_symbol: true,
        ..ComplexitySettings::DEFAULT
    };
    f.db.set_complexity(
        &SettingsScope::Instance,
        &complexity,
        Timestamp::from_unix_micros(5),
    )
    .await
    .unwrap();
    assert_eq!(
        f.db.complexity(&SettingsScope::Instance)
            .await
            .unwrap()
            .unwrap()
            .value,
        complexity
    );
    assert!(f.db.remove(&org, SettingsKind::Lockout).await.unwrap());
    assert!(!f.db.remove(&org, SettingsKind::Lockout).await.unwrap());
    let unknown = SettingsScope::Organization(OrgId::new("999").unwrap());
    assert!(matches!(
        f.db.set_lockout(&unknown, &lockout, Timestamp::UNIX_EPOCH)
            .await,
        Err(StoreError::OrganizationNotFound)
    ));

    f.db.set_lockout(
        &SettingsScope::Instance,
        &LockoutSettings::DEFAULT,
        Timestamp::UNIX_EPOCH,
    )
    .await
    .unwrap();
    assert_eq!(
        f.db.lockout_applying_to(&f.org).await.unwrap(),
        Some(LockoutSettings::DEFAULT)
    );
    f.db.set_lockout(&org, &lockout, Timestamp::UNIX_EPOCH)
        .await
        .unwrap();
    assert_eq!(
        f.db.lockout_applying_to(&f.org).await.unwrap(),
        Some(lockout)
    );

    // Login names: an organization-specific username counts only with its organization.
    f.create("zoe", &f.org, &[("Zoë", true)]).await.unwrap();
    f.create("max", &f.org, &[("max", false)]).await.unwrap();
    let named = |name: &'static str, org: Option<OrgId>| {
        let db = f.db.clone();
        async move {
            let key = userd_domain::values::username_key(name);
            let found = db.find_by_login_name(&key, org).await.unwrap();
            found
                .into_iter()
                .map(|u| u.id.to_string())
                .collect::<Vec<_>>()
        }
    };
    assert!(named("ZOË", None).await.is_empty());
    assert_eq!(named("ZOË", Some(f.org.clone())).await, ["zoe"]);
    assert!(
        named("zoë", Some(OrgId::new("999").unwrap()))
            .await
            .is_empty()
    );
    assert_eq!(named("MAX", None).await, ["max"]);
    assert_eq!(named("max", Some(f.org.clone())).await, ["max"]);

    let user = f.create("u1", &f.org, &[]).await.unwrap();
    let session = SessionRecord {
        id: "s1".into(),
        user_id: user.id.clone(),
        org_id: f.org.clone(),
        login_name: "ada".into(),
        token_hash: TokenHash::from_hex("ab".repeat(32)),
        created: Timestamp::from_unix_micros(100),
        changed: Timestamp::from_unix_micros(100),
        expires_at: Some(Timestamp::from_unix_micros(5_000)),
        user_verified_at: Timestamp::from_unix_micros(100),
        password_verified_at: None,
    };
    f.db.create_session(&session).await.unwrap();
    assert_eq!(
        f.db.find_session("s1").await.unwrap().as_ref(),
        Some(&session)
    );
    let checked = SessionRecord {
        changed: Timestamp::from_unix_micros(200),
        password_verified_at: Some(Timestamp::from_unix_micros(200)),
        ..session.clone()
    };
    assert!(
        f.db.update_session(&checked, session.changed)
            .await
            .unwrap()
    );
    assert!(
        !f.db
            .update_session(&checked, session.changed)
            .await
            .unwrap(),
        "a change from a stale version is refused"
    );
    assert_eq!(f.db.find_session("s1").await.unwrap(), Some(checked));
    let ghost = SessionRecord {
        id: "s2".into(),
        user_id: UserId::new("nobody").unwrap(),
        ..session.clone()
    };
    assert!(matches!(
        f.db.create_session(&ghost).await,
        Err(StoreError::UserNotFound)
    ));
    assert!(f.db.delete_session("s1").await.unwrap());
    assert!(!f.db.delete_session("s1").await.unwrap());
    assert_eq!(f.db.find_session("s1").await.unwrap(), None);

    // Purged: sessions expired long enough ago, and those their user's lock ended.
    let later = SystemClock
        .now()
        .saturating_add(std::time::Duration::from_secs(3600));
    let other = f.create("u2", &f.org, &[]).await.unwrap();
    let sessions = [
        (
            "expired",
            &other,
            Some(5_000),
            Timestamp::from_unix_micros(100),
        ),
        (
            "ended-by-lock",
            &user,
            None,
            Timestamp::from_unix_micros(100),
        ),
        ("after-lock", &user, None, later),
        ("open", &other, None, later),
    ];
    for (id, owner, expires, created) in sessions {
        f.db.create_session(&SessionRecord {
            id: id.into(),
            user_id: owner.id.clone(),
            expires_at: expires.map(Timestamp::from_unix_micros),
            created,
            ..session.clone()
        })
        .await
        .unwrap();
    }
    f.run(&user, Command::Lock).await;
    assert_eq!(
        f.db.purge_ended(Timestamp::from_unix_micros(10_000))
            .await
            .unwrap(),
        2
    );
    for (id, kept) in [
        ("expired", false),
        ("ended-by-lock", false),
        ("after-lock", true),
        ("open", true),
    ] {
        assert_eq!(f.db.find_session(id).await.unwrap().is_some(), kept, "{id}");
    }
}

fn reset_message(f: &Fixture, user: &User, n: u32) -> userd_ports::notify::OutboundMessage {
    use userd_ports::notify::{Channel, Message, OutboundMessage};
    OutboundMessage {
        id: f.ids.next_id(),
        user_id: user.id.clone(),
        message: Message {
            channel: if n.is_multiple_of(2) {
                Channel::Email
            } else {
                Channel::Sms
            },
            to: format!("to-{n}"),
            subject: "Reset your password".into(),
            text: format!("code {n}"),
        },
        created: SystemClock.now(),
    }
}

/// Stores `count` messages for a new user, each with an event of its own.
async fn with_messages(f: &Fixture, id: &str, count: u32) -> User {
    let mut user = f.create(id, &f.org, &[]).await.unwrap();
    for n in 0..count {
        let (next, event) = user
            .execute(&Command::Lock, SystemClock.now(), None)
            .unwrap()
            .unwrap();
        f.db.append_notifying(&next, &[event], &[reset_message(f, &next, n)])
            .await
            .unwrap();
        let (back, event) = next
            .execute(&Command::Unlock, SystemClock.now(), None)
            .unwrap()
            .unwrap();
        f.db.append(&back, &event).await.unwrap();
        user = back;
    }
    user
}

async fn messages_are_stored_with_their_events_or_not_at_all(db: TestDatabase) {
    use userd_ports::notify::Outbox;
    let f = Fixture::new(db).await;
    let user = f.create("u1", &f.org, &[]).await.unwrap();
    let (next, event) = user
        .execute(&Command::Lock, SystemClock.now(), None)
        .unwrap()
        .unwrap();
    let message = reset_message(&f, &next, 0);
    f.db.append_notifying(
        &next,
        std::slice::from_ref(&event),
        std::slice::from_ref(&message),
    )
    .await
    .unwrap();
    // The same write again loses the race: neither its event nor its message is stored.
    let again = reset_message(&f, &next, 1);
    assert!(matches!(
        f.db.append_notifying(&next, &[event], &[again]).await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(f.db.counts().await.unwrap().pending, 1);

    // A new user and its message come together too.
    let (created, event) = f.new_user("u2", &f.org, &[("ada", false)]);
    let first = reset_message(&f, &created, 2);
    f.db.append_notifying(&created, std::slice::from_ref(&event), &[first])
        .await
        .unwrap();
    let (clash, event) = f.new_user("u3", &f.org, &[("ada", false)]);
    let second = reset_message(&f, &clash, 3);
    assert!(matches!(
        f.db.append_notifying(&clash, &[event], &[second]).await,
        Err(StoreError::UsernameTaken(_))
    ));

    let claimed =
        f.db.claim_due(SystemClock.now(), std::time::Duration::from_secs(60), 10)
            .await
            .unwrap();
    let texts: Vec<&str> = claimed.iter().map(|c| c.message.text.as_str()).collect();
    assert_eq!(texts, ["code 0", "code 2"]);
    assert_eq!(claimed[0].message, message.message);
    assert_eq!(claimed[0].attempt, 1);
}

async fn claims_are_exclusive_until_their_lease_ends(db: TestDatabase) {
    use std::collections::BTreeSet;
    use std::time::Duration;
    use userd_ports::notify::Outbox;
    let f = Fixture::new(db).await;
    with_messages(&f, "u1", 40).await;
    let now = SystemClock.now();
    let lease = Duration::from_secs(60);

    // Eight workers claim at once, four at a time: each message goes to one of them.
    let claims = (0..8).map(|_| {
        let db = f.db.clone();
        tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let batch = db.claim_due(now, lease, 4).await.unwrap();
                if batch.is_empty() {
                    return mine;
                }
                mine.extend(batch.into_iter().map(|c| c.id));
            }
        })
    });
    let mut seen = BTreeSet::new();
    let mut total = 0;
    for claim in futures::future::join_all(claims).await {
        for id in claim.unwrap() {
            total += 1;
            seen.insert(id);
        }
    }
    assert_eq!(
        (total, seen.len()),
        (40, 40),
        "every message claimed exactly once"
    );

    // Claimed messages are not due until the lease ends; then they are, once more.
    assert!(f.db.claim_due(now, lease, 100).await.unwrap().is_empty());
    let next = f.db.next_due().await.unwrap().unwrap();
    assert_eq!(next, now.saturating_add(lease));
    let after = now.saturating_add(lease);
    let again = f.db.claim_due(after, lease, 100).await.unwrap();
    assert_eq!(again.len(), 40);
    assert!(again.iter().all(|c| c.attempt == 2));
}

async fn delivered_and_abandoned_messages_forget_their_text(db: TestDatabase) {
    use std::time::Duration;
    use userd_ports::notify::{Outbox, OutboxCounts};
    let f = Fixture::new(db).await;
    with_messages(&f, "u1", 3).await;
    let now = SystemClock.now();
    let lease = Duration::from_secs(60);
    let claimed = f.db.claim_due(now, lease, 10).await.unwrap();
    assert_eq!(claimed.len(), 3);
    f.db.mark_sent(&claimed[0].id, now).await.unwrap();
    let retry_at = now.saturating_add(Duration::from_secs(5));
    f.db.mark_failed(&claimed[1].id, "server down", now, Some(retry_at))
        .await
        .unwrap();
    f.db.mark_failed(&claimed[2].id, "no such mailbox", now, None)
        .await
        .unwrap();
    assert_eq!(
        f.db.counts().await.unwrap(),
        OutboxCounts {
            pending: 1,
            sent: 1,
            failed: 1
        }
    );
    // Only the retried message falls due again, when its retry does.
    assert_eq!(f.db.next_due().await.unwrap(), Some(retry_at));
    assert!(f.db.claim_due(now, lease, 10).await.unwrap().is_empty());
    let retried = f.db.claim_due(retry_at, lease, 10).await.unwrap();
    assert_eq!(retried.len(), 1);
    assert_eq!(retried[0].id, claimed[1].id);
    assert_eq!(retried[0].message.text, "code 1", "kept until delivered");

    // Done messages are purged once old enough; the pending one stays.
    assert_eq!(
        f.db.purge_done(now).await.unwrap(),
        0,
        "not before their time"
    );
    let later = now.saturating_add(Duration::from_secs(1));
    // No code stays in clear once a message is done with.
    let in_clear = f.count(
        "SELECT COUNT(*) AS n FROM outbox \
         WHERE body <> '' AND (sent_at_us IS NOT NULL OR failed_at_us IS NOT NULL)",
    );
    assert_eq!(in_clear, 0);
    assert_eq!(
        f.count("SELECT COUNT(*) AS n FROM outbox WHERE body <> ''"),
        1
    );
    assert_eq!(f.db.purge_done(later).await.unwrap(), 2);
    assert_eq!(f.count("SELECT COUNT(*) AS n FROM outbox"), 1);
}
