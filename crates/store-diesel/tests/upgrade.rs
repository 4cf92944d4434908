//! Upgrading a database written by an earlier release: the data migrations give old
//! tokens a ceiling and re-key usernames under Unicode comparison, reporting clashes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection, SqliteConnection};
use userd_app::tokens::hash_token;
use userd_domain::Timestamp;
use userd_domain::authz::{Permission, PermissionSet, Role};
use userd_domain::user::{Contact, User, UserCreated, UsernameEntry};
use userd_domain::values::{OrgId, UserData, UserId, Username, UsernameId};
use userd_ports::error::StoreError;
use userd_ports::repository::{Authenticator, UserRepository};
use userd_store_diesel::{Database, DatabaseTarget, PoolSettings, UsernameClash};
use userd_testkit::{TestDatabase, on_both_backends};

on_both_backends!(
    a_database_of_the_first_release_is_upgraded,
    locks_and_deactivations_before_passwords_read_as_the_log_says,
);

/// The last SQL migration before passwords and lockout.
const BEFORE_PASSWORDS: &str = "2026-12-02-000001";

/// The last SQL migration of the first release.
const FIRST_RELEASE: &str = "2026-11-28-000001";

fn raw_sql(url: &str, sql: &str) {
    match url.strip_prefix("sqlite://") {
        Some(path) => SqliteConnection::establish(path)
            .unwrap()
            .batch_execute(sql)
            .unwrap(),
        None => PgConnection::establish(url)
            .unwrap()
            .batch_execute(sql)
            .unwrap(),
    }
}

fn user_row(id: &str, org: &str, created: i64) -> String {
    format!(
        "INSERT INTO users (id, id_key, org_id, schema_id, data, email, email_key, \
         email_verified, phone, phone_verified, usernames, lifecycle, locked, state, \
         created_at_us, changed_at_us, sequence) VALUES ('{id}', '{id}', '{org}', NULL, '{{}}', \
         NULL, NULL, FALSE, NULL, FALSE, '[]', 'ACTIVE', FALSE, 'USER_STATE_ACTIVE', \
         {created}, {created}, 1);"
    )
}

/// A username row as the first release wrote it: the key is the Unicode lowercase.
fn username_row(id: &str, user: &str, org: &str, name: &str, specific: bool) -> String {
    format!(
        "INSERT INTO usernames (id, user_id, org_id, username, username_key, \
         organization_specific) VALUES ('{id}', '{user}', '{org}', '{name}', '{}', {});",
        name.to_lowercase(),
        if specific { "TRUE" } else { "FALSE" }
    )
}

async fn a_database_of_the_first_release_is_upgraded(db: TestDatabase) {
    let target = DatabaseTarget::parse(&db.url).unwrap();
    let store = Database::open(&target, &PoolSettings::default()).unwrap();
    store.migrate_sql_through(FIRST_RELEASE).unwrap();
    let mut sql =
        String::from("INSERT INTO organizations VALUES ('o1', 'One', 1, 1), ('o2', 'Two', 1, 1);");
    sql += &user_row("u1", "o1", 10);
    sql += &user_row("u2", "o2", 20);
    sql += &user_row("u3", "o1", 30);
    sql += &username_row("n1", "u1", "o1", "jos\u{e9}", false);
    sql += &username_row("n2", "u2", "o2", "jose\u{301}", false);
    sql += &username_row("n3", "u3", "o1", "Ｂｏｓｓ", true);
    // u1 was an organization owner when its token was made and still is.
    sql += "INSERT INTO org_members VALUES ('o1', 'u1', 'ORG_OWNER', 5, 5);";
    // u2 became IAM_OWNER after its token was made.
    sql += "INSERT INTO instance_members VALUES ('u2', 'IAM_OWNER', 200, 200);";
    sql += "INSERT INTO personal_access_tokens (id, user_id, token_hash, expires_at_us, \
            revoked_at_us, created_at_us) VALUES ";
    sql += &format!(
        "('t1', 'u1', '{}', NULL, NULL, 100), ('t2', 'u2', '{}', NULL, NULL, 100);",
        hash_token("old-one").as_str(),
        hash_token("old-two").as_str()
    );
    raw_sql(&db.url, &sql);

    let report = store.migrate().unwrap();
    assert!(report.applied >= 1, "{report:?}");
    assert_eq!(report.data.applied.len(), 2, "{report:?}");
    assert_eq!(report.data.tokens_capped, 1);
    let clash = UsernameClash {
        username: "jose\u{301}".into(),
        user_id: "u2".into(),
        kept_by_user_id: "u1".into(),
    };
    assert_eq!(report.data.username_clashes, std::slice::from_ref(&clash));
    assert_eq!(
        store.username_clashes().unwrap(),
        [clash],
        "reported at every start"
    );

    // The token whose user's roles did not change works as before...
    let now = Timestamp::from_unix_micros(1_000);
    let one = store
        .caller_for_token(&hash_token("old-one"), now)
        .await
        .unwrap()
        .unwrap()
        .caller;
    let o1 = OrgId::new("o1").unwrap();
    assert_eq!(one.permissions_in(&o1), Role::OrgOwner.permissions());
    // ...and the one whose user gained IAM_OWNER later does not gain it.
    let two = store
        .caller_for_token(&hash_token("old-two"), now)
        .await
        .unwrap()
        .unwrap()
        .caller;
    assert!(two.roles.instance.roles().contains(&Role::IamOwner));
    assert_eq!(two.instance_permissions(), PermissionSet::EMPTY);
    assert!(!two.permissions_in(&o1).contains(Permission::UserRead));

    // The name is held by the first user: a third spelling is taken.
    let created = UserCreated {
        org_id: OrgId::new("o2").unwrap(),
        schema_id: None,
        data: UserData::default(),
        contact: Contact::default(),
        usernames: vec![UsernameEntry {
            id: UsernameId::new("n4").unwrap(),
            username: Username::new("JOSÉ").unwrap(),
            organization_specific: false,
        }],
    };
    let (user, event) = User::create(UserId::new("u4").unwrap(), created, now, None).unwrap();
    assert!(matches!(
        store.append(&user, &event).await,
        Err(StoreError::UsernameTaken(_))
    ));
    let again = store.migrate().unwrap();
    assert!(again.data.applied.is_empty(), "data migrations run once");
}

/// A user locked and deactivated by a release without lockout: after the upgrade its lock
/// is an administrator's (never ending by itself), sessions count only from its
/// deactivation, and the tables still equal the fold of the log.
async fn locks_and_deactivations_before_passwords_read_as_the_log_says(db: TestDatabase) {
    let target = DatabaseTarget::parse(&db.url).unwrap();
    let store = Database::open(&target, &PoolSettings::default()).unwrap();
    store.migrate_sql_through(BEFORE_PASSWORDS).unwrap();
    let mut sql = String::from("INSERT INTO organizations VALUES ('o1', 'One', 1, 1);");
    sql += "INSERT INTO users (id, id_key, org_id, schema_id, data, email, email_key, \
            email_verified, phone, phone_verified, usernames, lifecycle, locked, state, \
            created_at_us, changed_at_us, sequence) VALUES ('u1', 'u1', 'o1', NULL, '{}', \
            NULL, NULL, FALSE, NULL, FALSE, '[]', 'INACTIVE', TRUE, 'USER_STATE_INACTIVE', \
            10, 30, 3);";
    for (sequence, event_type, payload, at) in [
        (1, "user.created", r#"{"orgId":"o1"}"#, 10),
        (2, "user.locked", "{}", 20),
        (3, "user.deactivated", "{}", 30),
    ] {
        sql += &format!(
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, org_id, \
             actor_id, payload, created_at_us) VALUES ('user', 'u1', {sequence}, \
             '{event_type}', 'o1', NULL, '{payload}', {at});"
        );
    }
    raw_sql(&db.url, &sql);
    store.migrate().unwrap();

    let user = store
        .find(&UserId::new("u1").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(user.lock, Some(userd_domain::password::Lock::ADMIN));
    assert_eq!(user.sessions_valid_from, Timestamp::from_unix_micros(30));
    assert_eq!(user.password, None);
    let drift = store.verify_projection().await.unwrap();
    assert!(drift.is_clean(), "{drift:?}");
}
