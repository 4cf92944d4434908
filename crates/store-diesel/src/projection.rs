//! The current-state tables as a function of the domain state, and the check that they
//! equal the fold of the event log.

use std::collections::BTreeMap;

use diesel::prelude::*;
use userd_domain::Timestamp;
use userd_domain::password::{Lock, LockCause, Password, PasswordCode, PasswordHash};
use userd_domain::user::{
    Contact, EmailContact, Lifecycle, PhoneContact, User, UserEvent, UsernameEntry,
};
use userd_domain::values::{Email, OrgId, Phone, SchemaId, UserData, UserId};
use userd_ports::error::StoreError;

use crate::connection::{Database, DbConnection};
use crate::data_migrations::{NameClaim, assign_keys};
use crate::errors::store_error;
use crate::schema::{events, usernames, users};
use crate::stored::{
    decode_change, decode_contact_codes, decode_usernames, encode_change, encode_contact_codes,
    encode_usernames, stored_event_type,
};

/// The aggregate type of user streams in the event log.
pub(crate) const USER_AGGREGATE: &str = "user";

/// One row of the `users` table.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset)]
// None is written as NULL, never as DEFAULT: the statement's text then never varies,
// so diesel prepares it once per connection.
#[diesel(table_name = users, treat_none_as_null = true, treat_none_as_default_value = false)]
pub struct ProjectionRow {
    pub id: String,
    pub id_key: String,
    pub org_id: String,
    pub schema_id: Option<String>,
    pub data: String,
    pub email: Option<String>,
    pub email_key: Option<String>,
    pub email_verified: bool,
    pub phone: Option<String>,
    pub phone_verified: bool,
    pub usernames: String,
    pub lifecycle: String,
    pub locked: bool,
    pub state: String,
    pub created_at_us: i64,
    pub changed_at_us: i64,
    pub sequence: i64,
    pub lock_cause: Option<String>,
    pub locked_until_us: Option<i64>,
    pub password_hash: Option<String>,
    pub password_changed_at_us: Option<i64>,
    pub password_change_required: bool,
    pub failed_password_checks: i64,
    pub password_code_hash: Option<String>,
    pub password_code_expires_at_us: Option<i64>,
    pub password_code_failures: i64,
    /// The outstanding codes that prove the e-mail address and the phone number.
    pub contact_codes: Option<String>,
    pub sessions_valid_from_us: i64,
}

fn to_i64(sequence: u64) -> i64 {
    i64::try_from(sequence).unwrap_or(i64::MAX)
}

/// A user row that does not hold a valid user.
fn corrupt(id: &str) -> impl Fn(Box<dyn std::error::Error + Send + Sync>) -> StoreError + '_ {
    move |cause| StoreError::corrupt(format!("the row of user {id:?}"), cause)
}

impl ProjectionRow {
    pub fn of(user: &User) -> Result<ProjectionRow, StoreError> {
        let email = user.contact.email.as_ref();
        let phone = user.contact.phone.as_ref();
        let password = user.password.as_ref();
        Ok(ProjectionRow {
            id: user.id.to_string(),
            id_key: user.id.as_str().to_lowercase(),
            org_id: user.org_id.to_string(),
            schema_id: user.schema_id.as_ref().map(ToString::to_string),
            data: serde_json::Value::Object(user.data.as_map().clone()).to_string(),
            email: email.map(|e| e.address.as_str().to_owned()),
            email_key: email.map(|e| e.address.as_str().to_lowercase()),
            email_verified: email.is_some_and(|e| e.verified),
            phone: phone.map(|p| p.number.as_str().to_owned()),
            phone_verified: phone.is_some_and(|p| p.verified),
            usernames: encode_usernames(&user.usernames)?,
            lifecycle: match user.lifecycle {
                Lifecycle::Active => "ACTIVE",
                Lifecycle::Inactive => "INACTIVE",
                Lifecycle::Deleted => "DELETED",
            }
            .to_owned(),
            locked: user.lock.is_some(),
            state: user.state().as_str().to_owned(),
            created_at_us: user.created.unix_micros(),
            changed_at_us: user.changed.unix_micros(),
            sequence: to_i64(user.sequence),
            lock_cause: user.lock.map(|lock| lock.cause.as_str().to_owned()),
            locked_until_us: user
                .lock
                .and_then(|lock| lock.until)
                .map(Timestamp::unix_micros),
            password_hash: password.map(|p| p.hash.encoded().to_owned()),
            password_changed_at_us: password.map(|p| p.changed.unix_micros()),
            password_change_required: password.is_some_and(|p| p.change_required),
            failed_password_checks: i64::from(user.failed_password_checks),
            password_code_hash: user.password_code.as_ref().map(|c| c.hash.clone()),
            password_code_expires_at_us: user
                .password_code
                .as_ref()
                .map(|c| c.expires.unix_micros()),
            password_code_failures: user
                .password_code
                .as_ref()
                .map_or(0, |c| i64::from(c.failed_attempts)),
            contact_codes: encode_contact_codes(
                user.email_code.as_ref(),
                user.phone_code.as_ref(),
            )?,
            sessions_valid_from_us: user.sessions_valid_from.unix_micros(),
        })
    }

    pub fn into_user(self) -> Result<User, StoreError> {
        let id = self.id.clone();
        let corrupt = corrupt(&id);
        let boxed = |e: userd_domain::values::InvalidValue| corrupt(Box::new(e));
        let data: serde_json::Value =
            serde_json::from_str(&self.data).map_err(|e| corrupt(Box::new(e)))?;
        let usernames: Vec<UsernameEntry> = decode_usernames(&self.usernames)?;
        let codes = decode_contact_codes(self.contact_codes.as_deref())
            .map_err(|e| corrupt(Box::new(e)))?;
        let email = self
            .email
            .map(|address| {
                Ok::<_, StoreError>(EmailContact {
                    address: Email::new(address).map_err(boxed)?,
                    verified: self.email_verified,
                })
            })
            .transpose()?;
        let phone = self
            .phone
            .map(|number| {
                Ok::<_, StoreError>(PhoneContact {
                    number: Phone::new(number).map_err(boxed)?,
                    verified: self.phone_verified,
                })
            })
            .transpose()?;
        Ok(User {
            id: UserId::new(self.id).map_err(boxed)?,
            org_id: OrgId::new(self.org_id).map_err(boxed)?,
            schema_id: self
                .schema_id
                .map(SchemaId::new)
                .transpose()
                .map_err(boxed)?,
            data: UserData::from_value(data).map_err(boxed)?,
            contact: Contact { email, phone },
            usernames,
            lifecycle: match self.lifecycle.as_str() {
                "ACTIVE" => Lifecycle::Active,
                "INACTIVE" => Lifecycle::Inactive,
                other => return Err(corrupt(format!("unknown lifecycle {other:?}").into())),
            },
            lock: match (self.locked, self.lock_cause.as_deref()) {
                (false, _) => None,
                (true, cause) => Some(Lock {
                    cause: cause.and_then(LockCause::parse).ok_or_else(|| {
                        corrupt(format!("a lock without a known cause: {cause:?}").into())
                    })?,
                    until: self.locked_until_us.map(Timestamp::from_unix_micros),
                }),
            },
            password: match (self.password_hash, self.password_changed_at_us) {
                (None, _) => None,
                (Some(hash), changed) => Some(Password {
                    hash: PasswordHash::new(hash),
                    changed: Timestamp::from_unix_micros(changed.unwrap_or(self.changed_at_us)),
                    change_required: self.password_change_required,
                }),
            },
            failed_password_checks: u32::try_from(self.failed_password_checks)
                .map_err(|e| corrupt(Box::new(e)))?,
            password_code: match (self.password_code_hash, self.password_code_expires_at_us) {
                (Some(hash), Some(expires)) => Some(PasswordCode {
                    hash,
                    expires: Timestamp::from_unix_micros(expires),
                    failed_attempts: u32::try_from(self.password_code_failures)
                        .map_err(|e| corrupt(Box::new(e)))?,
                }),
                (None, None) => None,
                _ => return Err(corrupt("a reset code without its expiry".into())),
            },
            email_code: codes.email,
            phone_code: codes.phone,
            sessions_valid_from: Timestamp::from_unix_micros(self.sessions_valid_from_us),
            created: Timestamp::from_unix_micros(self.created_at_us),
            changed: Timestamp::from_unix_micros(self.changed_at_us),
            sequence: u64::try_from(self.sequence).map_err(|e| corrupt(Box::new(e)))?,
        })
    }
}

/// One row of the `usernames` table.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Queryable, Selectable, Insertable)]
#[diesel(table_name = usernames)]
pub struct UsernameRow {
    pub id: String,
    pub user_id: String,
    pub org_id: String,
    pub username: String,
    pub username_key: String,
    pub organization_specific: bool,
}

pub(crate) fn username_rows(user: &User) -> Vec<UsernameRow> {
    user.usernames
        .iter()
        .map(|entry| UsernameRow {
            id: entry.id.to_string(),
            user_id: user.id.to_string(),
            org_id: user.org_id.to_string(),
            username: entry.username.as_str().to_owned(),
            username_key: entry.username.key(),
            organization_specific: entry.organization_specific,
        })
        .collect()
}

/// One row of the `events` table.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = events, treat_none_as_default_value = false)]
pub(crate) struct EventRow {
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub org_id: String,
    pub actor_id: Option<String>,
    pub payload: String,
    pub created_at_us: i64,
}

impl EventRow {
    pub fn of(event: &UserEvent, org_id: &OrgId) -> Result<EventRow, StoreError> {
        Ok(EventRow {
            aggregate_type: USER_AGGREGATE.to_owned(),
            aggregate_id: event.user_id.to_string(),
            sequence: to_i64(event.sequence),
            event_type: stored_event_type(&event.change).to_owned(),
            org_id: org_id.to_string(),
            actor_id: event.actor.as_ref().map(ToString::to_string),
            payload: encode_change(&event.change)?,
            created_at_us: event.at.unix_micros(),
        })
    }

    pub fn into_event(self) -> Result<UserEvent, StoreError> {
        let what = format!("event {} of user {:?}", self.sequence, self.aggregate_id);
        let corrupt = |cause: Box<dyn std::error::Error + Send + Sync>| {
            StoreError::corrupt(what.clone(), cause)
        };
        Ok(UserEvent {
            user_id: UserId::new(self.aggregate_id.clone()).map_err(|e| corrupt(Box::new(e)))?,
            sequence: u64::try_from(self.sequence).map_err(|e| corrupt(Box::new(e)))?,
            at: Timestamp::from_unix_micros(self.created_at_us),
            actor: self
                .actor_id
                .clone()
                .map(UserId::new)
                .transpose()
                .map_err(|e| corrupt(Box::new(e)))?,
            change: decode_change(&self.event_type, &self.payload)?,
        })
    }
}

/// Differences between the live tables and the fold of the event log.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ProjectionDrift {
    pub users_replayed: usize,
    /// Live per the log, but without a row.
    pub missing: Vec<String>,
    /// A row for a user the log says is deleted or never existed.
    pub unexpected: Vec<String>,
    /// A row whose content differs from the fold.
    pub different: Vec<String>,
}

impl ProjectionDrift {
    pub fn is_clean(&self) -> bool {
        self.missing.is_empty() && self.unexpected.is_empty() && self.different.is_empty()
    }
}

type FullState = (ProjectionRow, Vec<UsernameRow>);

fn replayed_states(
    conn: &mut DbConnection,
) -> Result<(usize, BTreeMap<String, FullState>), StoreError> {
    let rows: Vec<EventRow> = events::table
        .filter(events::aggregate_type.eq(USER_AGGREGATE))
        .order((events::aggregate_id, events::sequence))
        .select(EventRow::as_select())
        .load(conn)
        .map_err(store_error)?;
    let mut streams: BTreeMap<String, Vec<UserEvent>> = BTreeMap::new();
    for row in rows {
        streams
            .entry(row.aggregate_id.clone())
            .or_default()
            .push(row.into_event()?);
    }
    let replayed = streams.len();
    let mut users = Vec::new();
    for (id, stream) in streams {
        let user = User::replay(stream).map_err(|e| {
            StoreError::corrupt(format!("the event log of user {id:?}"), Box::new(e))
        })?;
        users.extend(user.filter(|u| !u.is_deleted()));
    }
    // Names are claimed in the order users were created, as they were when written: a
    // name two users hold under today's comparison stays with the first (see
    // data_migrations::assign_keys).
    users.sort_by(|a, b| (a.created, a.id.as_str()).cmp(&(b.created, b.id.as_str())));
    let mut rows: Vec<(ProjectionRow, Vec<UsernameRow>)> = Vec::with_capacity(users.len());
    let mut claims = Vec::new();
    for user in &users {
        let mut names = username_rows(user);
        names.sort_by(|a, b| a.id.cmp(&b.id));
        claims.extend(names.iter().map(NameClaim::of));
        rows.push((ProjectionRow::of(user)?, names));
    }
    let (keys, _) = assign_keys(&claims);
    let mut keys = keys.into_iter();
    let mut live = BTreeMap::new();
    for (row, mut names) in rows {
        for name in &mut names {
            if let Some(key) = keys.next() {
                name.username_key = key;
            }
        }
        names.sort();
        live.insert(row.id.clone(), (row, names));
    }
    Ok((replayed, live))
}

fn stored_states(conn: &mut DbConnection) -> Result<BTreeMap<String, FullState>, StoreError> {
    let rows: Vec<ProjectionRow> = users::table
        .select(ProjectionRow::as_select())
        .load(conn)
        .map_err(store_error)?;
    let mut names: Vec<UsernameRow> = usernames::table
        .select(UsernameRow::as_select())
        .load(conn)
        .map_err(store_error)?;
    names.sort();
    let mut states: BTreeMap<String, FullState> = rows
        .into_iter()
        .map(|row| (row.id.clone(), (row, Vec::new())))
        .collect();
    for name in names {
        if let Some((_, list)) = states.get_mut(&name.user_id) {
            list.push(name);
        }
    }
    Ok(states)
}

/// What a rebuild of the current-state tables changed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RebuildReport {
    pub users_replayed: usize,
    /// Rows written anew or rewritten because they differed from the log.
    pub rows_written: usize,
    /// Rows of users the log says are deleted or never existed.
    pub rows_removed: usize,
}

fn rebuild(conn: &mut DbConnection) -> Result<RebuildReport, StoreError> {
    if let DbConnection::Postgres(pg) = conn {
        // Writers wait until the tables agree with the log again.
        diesel::sql_query("LOCK TABLE events IN EXCLUSIVE MODE")
            .execute(pg)
            .map_err(store_error)?;
    }
    let (users_replayed, replayed) = replayed_states(conn)?;
    let stored = stored_states(conn)?;
    let mut report = RebuildReport {
        users_replayed,
        ..RebuildReport::default()
    };
    // Removing a row removes its memberships with it (ON DELETE CASCADE): right for a
    // user the log says is gone, so only those rows are ever removed.
    for id in stored.keys().filter(|id| !replayed.contains_key(*id)) {
        diesel::delete(users::table.find(id))
            .execute(conn)
            .map_err(store_error)?;
        report.rows_removed += 1;
    }
    diesel::delete(usernames::table)
        .execute(conn)
        .map_err(store_error)?;
    for (id, (row, names)) in &replayed {
        match stored.get(id) {
            Some((current, _)) if current == row => {}
            Some(_) => {
                diesel::update(users::table.find(id))
                    .set(row)
                    .execute(conn)
                    .map_err(store_error)?;
                report.rows_written += 1;
            }
            None => {
                diesel::insert_into(users::table)
                    .values(row)
                    .execute(conn)
                    .map_err(store_error)?;
                report.rows_written += 1;
            }
        }
        for name in names {
            diesel::insert_into(usernames::table)
                .values(name)
                .execute(conn)
                .map_err(store_error)?;
        }
    }
    Ok(report)
}

impl Database {
    /// Rewrites the current-state tables (users and their usernames) as the fold of the
    /// event log, in one transaction that holds off writers. Memberships and tokens are
    /// not events and stay as they are, except those of users the log says are gone.
    pub async fn rebuild_projection(&self) -> Result<RebuildReport, StoreError> {
        self.run(|conn| crate::connection::write_transaction(conn, rebuild))
            .await
    }

    /// Every row of the current-state tables, by user id: for tests and diagnosis.
    #[doc(hidden)]
    pub async fn current_state_rows(
        &self,
    ) -> Result<BTreeMap<String, (ProjectionRow, Vec<UsernameRow>)>, StoreError> {
        self.run(stored_states).await
    }

    /// Replays every user's events and compares the result with the live tables.
    pub async fn verify_projection(&self) -> Result<ProjectionDrift, StoreError> {
        self.run(|conn| {
            // One snapshot for both reads.
            crate::connection::snapshot_transaction(conn, |conn| {
                let (users_replayed, replayed) = replayed_states(conn)?;
                let stored = stored_states(conn)?;
                let mut drift = ProjectionDrift {
                    users_replayed,
                    ..ProjectionDrift::default()
                };
                for (id, state) in &replayed {
                    match stored.get(id) {
                        None => drift.missing.push(id.clone()),
                        Some(row) if row != state => drift.different.push(id.clone()),
                        Some(_) => {}
                    }
                }
                drift.unexpected = stored
                    .keys()
                    .filter(|id| !replayed.contains_key(*id))
                    .cloned()
                    .collect();
                Ok(drift)
            })
        })
        .await
    }
}
