//! The event log is the truth: events written by an earlier release replay to the same
//! current state, and the current-state tables can be rebuilt from the log.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection, SqliteConnection};
use serde_json::Value;
use userd_domain::values::UserId;
use userd_ports::repository::UserRepository;
use userd_store_diesel::{Database, DatabaseTarget, PoolSettings};
use userd_testkit::{TestDatabase, on_both_backends};

on_both_backends!(
    events_of_an_earlier_release_replay_to_the_same_rows,
    a_rebuild_repairs_the_tables_and_keeps_memberships,
);

const FIXTURE: &str = include_str!("fixtures/events-2026-12-02.json");

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

fn literal(value: &Value) -> String {
    match value {
        Value::Null => "NULL".to_owned(),
        Value::Bool(b) => if *b { "TRUE" } else { "FALSE" }.to_owned(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => format!("'{}'", s.replace('\'', "''")),
        other => panic!("not a column value: {other}"),
    }
}

fn insert(table: &str, rows: &Value, columns: &[&str]) -> String {
    rows.as_array()
        .unwrap()
        .iter()
        .map(|row| {
            let values: Vec<String> = columns.iter().map(|c| literal(&row[*c])).collect();
            format!(
                "INSERT INTO {table} ({}) VALUES ({});",
                columns.join(", "),
                values.join(", ")
            )
        })
        .collect()
}

async fn open(db: &TestDatabase) -> Database {
    let target = DatabaseTarget::parse(&db.url).unwrap();
    let store = Database::open(&target, &PoolSettings::default()).unwrap();
    store.migrate().unwrap();
    store
}

const USER_COLUMNS: [&str; 17] = [
    "id",
    "id_key",
    "org_id",
    "schema_id",
    "data",
    "email",
    "email_key",
    "email_verified",
    "phone",
    "phone_verified",
    "usernames",
    "lifecycle",
    "locked",
    "state",
    "created_at_us",
    "changed_at_us",
    "sequence",
];

/// The fixture's expected rows, in the shape of [`Database::current_state_rows`].
fn expected_rows(fixture: &Value) -> Value {
    let mut users = serde_json::Map::new();
    for user in fixture["users"].as_array().unwrap() {
        let id = user["id"].as_str().unwrap();
        let names: Vec<Value> = fixture["usernames"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|n| n["user_id"] == id)
            .cloned()
            .collect();
        users.insert(
            id.to_owned(),
            serde_json::json!({"row": user, "usernames": names}),
        );
    }
    Value::Object(users)
}

async fn actual_rows(store: &Database) -> Value {
    let mut users = serde_json::Map::new();
    for (id, (row, names)) in store.current_state_rows().await.unwrap() {
        let mut row_json = serde_json::Map::new();
        let values = [
            Value::from(row.id),
            Value::from(row.id_key),
            Value::from(row.org_id),
            row.schema_id.map_or(Value::Null, Value::from),
            Value::from(row.data),
            row.email.map_or(Value::Null, Value::from),
            row.email_key.map_or(Value::Null, Value::from),
            Value::from(row.email_verified),
            row.phone.map_or(Value::Null, Value::from),
            Value::from(row.phone_verified),
            Value::from(row.usernames),
            Value::from(row.lifecycle),
            Value::from(row.locked),
            Value::from(row.state),
            Value::from(row.created_at_us),
            Value::from(row.changed_at_us),
            Value::from(row.sequence),
        ];
        for (column, value) in USER_COLUMNS.iter().zip(values) {
            row_json.insert((*column).to_owned(), value);
        }
        let names: Vec<Value> = names
            .into_iter()
            .map(|n| {
                serde_json::json!({"id": n.id, "user_id": n.user_id, "org_id": n.org_id,
                    "username": n.username, "username_key": n.username_key,
                    "organization_specific": n.organization_specific})
            })
            .collect();
        users.insert(id, serde_json::json!({"row": row_json, "usernames": names}));
    }
    Value::Object(users)
}

async fn events_of_an_earlier_release_replay_to_the_same_rows(db: TestDatabase) {
    let fixture: Value = serde_json::from_str(FIXTURE).unwrap();
    let store = open(&db).await;
    let mut sql = insert(
        "organizations",
        &fixture["organizations"],
        &["id", "name", "created_at_us", "changed_at_us"],
    );
    sql += &insert(
        "events",
        &fixture["events"],
        &[
            "aggregate_id",
            "sequence",
            "event_type",
            "org_id",
            "actor_id",
            "payload",
            "created_at_us",
        ],
    )
    .replace(
        "INSERT INTO events (",
        "INSERT INTO events (aggregate_type, ",
    )
    .replace(") VALUES (", ") VALUES ('user', ");
    raw_sql(&db.url, &sql);

    let report = store.rebuild_projection().await.unwrap();
    assert_eq!(
        report.users_replayed, 4,
        "admin, ada, bob, and the deleted carol"
    );
    assert_eq!(report.rows_written, 3);
    assert_eq!(actual_rows(&store).await, expected_rows(&fixture));
    assert!(store.verify_projection().await.unwrap().is_clean());
    let ada = store
        .find(&UserId::new("ada").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ada.sequence, 6);
    assert_eq!(ada.usernames.len(), 2);

    // A second rebuild has nothing left to do.
    let again = store.rebuild_projection().await.unwrap();
    assert_eq!((again.rows_written, again.rows_removed), (0, 0));
}

async fn a_rebuild_repairs_the_tables_and_keeps_memberships(db: TestDatabase) {
    let fixture: Value = serde_json::from_str(FIXTURE).unwrap();
    let store = open(&db).await;
    let mut sql = insert(
        "organizations",
        &fixture["organizations"],
        &["id", "name", "created_at_us", "changed_at_us"],
    );
    sql += &insert("users", &fixture["users"], &USER_COLUMNS);
    sql += &insert(
        "usernames",
        &fixture["usernames"],
        &[
            "id",
            "user_id",
            "org_id",
            "username",
            "username_key",
            "organization_specific",
        ],
    );
    sql += &insert(
        "events",
        &fixture["events"],
        &[
            "aggregate_id",
            "sequence",
            "event_type",
            "org_id",
            "actor_id",
            "payload",
            "created_at_us",
        ],
    )
    .replace(
        "INSERT INTO events (",
        "INSERT INTO events (aggregate_type, ",
    )
    .replace(") VALUES (", ") VALUES ('user', ");
    let org = fixture["organizations"][0]["id"].as_str().unwrap();
    sql += &format!("INSERT INTO org_members VALUES ('{org}', 'ada', 'ORG_OWNER', 1, 1);");
    // The fixture's rows predate sessions_valid_from_us; set it as the migration does.
    sql += "UPDATE users SET sessions_valid_from_us = created_at_us;";
    // Damage: a wrong flag, a missing row, a row for a user the log deleted.
    sql += "UPDATE users SET locked = TRUE, state = 'USER_STATE_LOCKED' WHERE id = 'ada';";
    sql += "DELETE FROM usernames WHERE user_id = 'ada';";
    sql += "DELETE FROM users WHERE id = 'bob';";
    sql += &format!(
        "INSERT INTO users ({}) SELECT 'carol', 'carol', org_id, schema_id, data, email, \
         email_key, email_verified, phone, phone_verified, '[]', lifecycle, locked, state, \
         created_at_us, changed_at_us, 9 FROM users WHERE id = 'ada';",
        USER_COLUMNS.join(", ")
    );
    raw_sql(&db.url, &sql);
    let drift = store.verify_projection().await.unwrap();
    assert_eq!(
        (drift.different, drift.missing, drift.unexpected),
        (
            vec!["ada".to_owned()],
            vec!["bob".to_owned()],
            vec!["carol".to_owned()]
        )
    );

    let report = store.rebuild_projection().await.unwrap();
    assert_eq!((report.rows_written, report.rows_removed), (2, 1));
    assert!(store.verify_projection().await.unwrap().is_clean());
    assert_eq!(actual_rows(&store).await, expected_rows(&fixture));
    use userd_ports::repository::MembershipRepository;
    let held = store
        .memberships_of(&UserId::new("ada").unwrap())
        .await
        .unwrap();
    assert_eq!(
        held.organizations.len(),
        1,
        "memberships are not events: kept"
    );
}
