//! The user repository: one transaction appends the event and writes the current state.

use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::{PgConnection, QueryResult};
use sha2::{Digest, Sha256};
use userd_domain::user::{User, UserChange, UserEvent};
use userd_domain::values::{OrgId, UserId};
use userd_ports::error::StoreError;
use userd_ports::notify::OutboundMessage;
use userd_ports::repository::UserRepository;
use userd_ports::search::{UserPage, UserQuery};

use crate::connection::{Database, DbConnection, postgres_write_transaction, write_transaction};
use crate::errors::{is_foreign_key_violation, store_error, violated_key};
use crate::projection::{EventRow, ProjectionRow, UsernameRow, username_rows};
use crate::schema::{events, usernames, users};

/// Counts of appended events by type, for metrics.
#[derive(Debug, Default)]
pub(crate) struct AppendedEvents([AtomicU64; EVENT_TYPES.len()]);

const EVENT_TYPES: [&str; UserChange::TYPES.len()] = UserChange::TYPES;

impl AppendedEvents {
    pub(crate) fn count(&self, event_type: &str) {
        if let Some(i) = EVENT_TYPES.iter().position(|t| *t == event_type) {
            self.0[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn snapshot(&self) -> Vec<(&'static str, u64)> {
        EVENT_TYPES
            .iter()
            .zip(&self.0)
            .map(|(name, count)| (*name, count.load(Ordering::Relaxed)))
            .collect()
    }
}

/// Everything one accepted command writes: usually one event, a few for a password
/// check (see [`UserRepository::append_all`]).
pub(crate) struct UserWrite {
    /// The first event, which the fast paths write alone.
    event: EventRow,
    /// Any events after it, in order.
    more: Vec<EventRow>,
    row: ProjectionRow,
    usernames: Vec<UsernameRow>,
    deleted: bool,
    /// Outbox messages written in the same transaction.
    messages: Vec<crate::outbox::OutboxRow>,
}

impl UserWrite {
    pub(crate) fn new(state: &User, event: &UserEvent) -> Result<UserWrite, StoreError> {
        UserWrite::of_all(state, std::slice::from_ref(event))
    }

    /// The write of several consecutive events, `state` being where the last one leads.
    fn of_all(state: &User, events: &[UserEvent]) -> Result<UserWrite, StoreError> {
        let Some((first, more)) = events.split_first() else {
            return Err(StoreError::Internal("a write without events".into()));
        };
        Ok(UserWrite {
            event: EventRow::of(first, &state.org_id)?,
            more: more
                .iter()
                .map(|event| EventRow::of(event, &state.org_id))
                .collect::<Result<_, _>>()?,
            row: ProjectionRow::of(state)?,
            usernames: username_rows(state),
            deleted: state.is_deleted(),
            messages: Vec::new(),
        })
    }

    /// The same write, with outbox messages stored alongside.
    fn with_messages(mut self, messages: &[OutboundMessage]) -> UserWrite {
        self.messages = messages.iter().map(crate::outbox::OutboxRow::of).collect();
        self
    }

    /// Writes inside the caller's transaction, which must hold the write lock.
    pub(crate) fn apply(self, conn: &mut DbConnection) -> Result<(), StoreError> {
        let sequence = self.event.sequence;
        for event in std::iter::once(&self.event).chain(&self.more) {
            if let Err(error) = diesel::insert_into(events::table)
                .values(event)
                .execute(conn)
            {
                return Err(match violated_key(&error) {
                    Some(_) if sequence == 1 => StoreError::UserIdTaken,
                    Some(_) => StoreError::Conflict,
                    None => store_error(error),
                });
            }
        }

        if sequence == 1 {
            // SQLite runs one write transaction at a time: checking then inserting is safe.
            if let Some(taken) = first_taken_username!(conn, &self.usernames) {
                return Err(StoreError::UsernameTaken(taken));
            }
            diesel::insert_into(users::table)
                .values(&self.row)
                .execute(conn)
                .map_err(|error| {
                    if is_foreign_key_violation(&error) {
                        StoreError::OrganizationNotFound
                    } else if violated_key(&error).is_some() {
                        StoreError::UserIdTaken
                    } else {
                        store_error(error)
                    }
                })?;
            for name in &self.usernames {
                diesel::insert_into(usernames::table)
                    .values(name)
                    .execute(conn)
                    .map_err(|error| match violated_key(&error) {
                        Some(key)
                            if key.contains("username_key") || key.contains("unique_in_org") =>
                        {
                            StoreError::UsernameTaken(name.username.clone())
                        }
                        // A server-made username id clashed: the use case retries.
                        Some(_) => StoreError::Conflict,
                        None => store_error(error),
                    })?;
            }
            return crate::outbox::insert_any(conn, &self.messages);
        }

        // Only the writer that appended the previous event may move the row on.
        let current = users::table
            .filter(users::id.eq(&self.row.id))
            .filter(users::sequence.eq(sequence - 1));
        let written = if self.deleted {
            // Usernames and memberships go with the row (ON DELETE CASCADE).
            diesel::delete(current).execute(conn)
        } else {
            diesel::update(current).set(&self.row).execute(conn)
        }
        .map_err(store_error)?;
        if written != 1 {
            return Err(StoreError::Conflict);
        }
        crate::outbox::insert_any(conn, &self.messages)
    }
}

/// Writes SQL text with bind parameters in between: `"text", Type => value; ...`.
macro_rules! sql_with_binds {
    ($out:ident; $($sql:literal $(, $ty:ty => $value:expr)?);* $(;)?) => {{
        $(
            $out.push_sql($sql);
            $( $out.push_bind_param::<$ty, _>($value)?; )?
        )*
    }};
}

/// PostgreSQL: the row moves on and the event is appended in one statement, so a write
/// costs one round trip instead of four (BEGIN, INSERT, UPDATE, COMMIT). The event is
/// inserted only when the row was still at the previous sequence: the same optimistic
/// check as the transaction, and a single statement is atomic on its own. The text is
/// fixed for each of the two forms (`DELETE` or not), so diesel prepares each once per
/// connection: its cache is keyed by the query id type, which therefore differs.
struct MoveAndAppend<'a, const DELETE: bool> {
    write: &'a UserWrite,
    previous: i64,
}

impl<const DELETE: bool> QueryId for MoveAndAppend<'_, DELETE> {
    type QueryId = MoveAndAppend<'static, DELETE>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl<const DELETE: bool> QueryFragment<Pg> for MoveAndAppend<'_, DELETE> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        use diesel::sql_types::{BigInt, Bool, Nullable, Text};
        let (row, event) = (&self.write.row, &self.write.event);
        if DELETE {
            // Usernames and memberships go with the row (ON DELETE CASCADE).
            sql_with_binds!(out;
                "WITH moved AS (DELETE FROM users WHERE id = ", Text => &row.id;
                " AND sequence = ", BigInt => &self.previous;
                " RETURNING id) ";
            );
        } else {
            sql_with_binds!(out;
                "WITH moved AS (UPDATE users SET id_key = ", Text => &row.id_key;
                ", org_id = ", Text => &row.org_id;
                ", schema_id = ", Nullable<Text> => &row.schema_id;
                ", data = ", Text => &row.data;
                ", email = ", Nullable<Text> => &row.email;
                ", email_key = ", Nullable<Text> => &row.email_key;
                ", email_verified = ", Bool => &row.email_verified;
                ", phone = ", Nullable<Text> => &row.phone;
                ", phone_verified = ", Bool => &row.phone_verified;
                ", usernames = ", Text => &row.usernames;
                ", lifecycle = ", Text => &row.lifecycle;
                ", locked = ", Bool => &row.locked;
                ", state = ", Text => &row.state;
                ", created_at_us = ", BigInt => &row.created_at_us;
                ", changed_at_us = ", BigInt => &row.changed_at_us;
                ", sequence = ", BigInt => &row.sequence;
                ", lock_cause = ", Nullable<Text> => &row.lock_cause;
                ", locked_until_us = ", Nullable<BigInt> => &row.locked_until_us;
                ", password_hash = ", Nullable<Text> => &row.password_hash;
                ", password_changed_at_us = ", Nullable<BigInt> => &row.password_changed_at_us;
                ", password_change_required = ", Bool => &row.password_change_required;
                ", failed_password_checks = ", BigInt => &row.failed_password_checks;
                ", password_code_hash = ", Nullable<Text> => &row.password_code_hash;
                ", password_code_expires_at_us = ", Nullable<BigInt> => &row.password_code_expires_at_us;
                ", password_code_failures = ", BigInt => &row.password_code_failures;
                ", contact_codes = ", Nullable<Text> => &row.contact_codes;
                ", sessions_valid_from_us = ", BigInt => &row.sessions_valid_from_us;
                " WHERE id = ", Text => &row.id;
                " AND sequence = ", BigInt => &self.previous;
                " RETURNING id) ";
            );
        }
        append_event_per_row_of(&mut out, event, "moved")
    }
}

/// `INSERT INTO events ... SELECT <event> FROM <source>`: the event is appended once for
/// each row the `source` step wrote, that is, only when the write took place.
fn append_event_per_row_of<'b>(
    out: &mut AstPass<'_, 'b, Pg>,
    event: &'b EventRow,
    source: &'static str,
) -> QueryResult<()> {
    use diesel::sql_types::{BigInt, Nullable, Text};
    sql_with_binds!(out;
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, org_id, \
         actor_id, payload, created_at_us) SELECT ", Text => &event.aggregate_type;
        ", ", Text => &event.aggregate_id;
        ", ", BigInt => &event.sequence;
        ", ", Text => &event.event_type;
        ", ", Text => &event.org_id;
        ", ", Nullable<Text> => &event.actor_id;
        ", ", Text => &event.payload;
        ", ", BigInt => &event.created_at_us;
        " FROM ";
    );
    out.push_sql(source);
    Ok(())
}

impl<const DELETE: bool> RunQueryDsl<PgConnection> for MoveAndAppend<'_, DELETE> {}

/// PostgreSQL: a new user's row, usernames and first event in one statement, written only
/// when none of the usernames is taken (see [`first_taken_username`] for the rule). The
/// usernames travel as arrays, so the text is the same however many there are.
struct CreateAndAppend<'a> {
    write: &'a UserWrite,
    name_ids: Vec<&'a str>,
    names: Vec<&'a str>,
    name_keys: Vec<&'a str>,
    name_specific: Vec<bool>,
}

impl QueryId for CreateAndAppend<'_> {
    type QueryId = CreateAndAppend<'static>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl QueryFragment<Pg> for CreateAndAppend<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        use diesel::sql_types::{Array, BigInt, Bool, Nullable, Text};
        let (row, event) = (&self.write.row, &self.write.event);
        sql_with_binds!(out;
            "WITH taken AS (SELECT 1 FROM usernames u JOIN unnest(", Array<Text> => &self.name_keys;
            ", ", Array<Bool> => &self.name_specific;
            ") AS c(username_key, specific) ON u.username_key = c.username_key \
             WHERE NOT c.specific OR NOT u.organization_specific OR u.org_id = ", Text => &row.org_id;
            " LIMIT 1), created AS (INSERT INTO users (id, id_key, org_id, schema_id, data, \
             email, email_key, email_verified, phone, phone_verified, usernames, lifecycle, \
             locked, state, created_at_us, changed_at_us, sequence, lock_cause, \
             locked_until_us, password_hash, password_changed_at_us, \
             password_change_required, failed_password_checks, password_code_hash, \
             password_code_expires_at_us, password_code_failures, contact_codes, \
             sessions_valid_from_us) \
             SELECT ", Text => &row.id;
            ", ", Text => &row.id_key;
            ", ", Text => &row.org_id;
            ", ", Nullable<Text> => &row.schema_id;
            ", ", Text => &row.data;
            ", ", Nullable<Text> => &row.email;
            ", ", Nullable<Text> => &row.email_key;
            ", ", Bool => &row.email_verified;
            ", ", Nullable<Text> => &row.phone;
            ", ", Bool => &row.phone_verified;
            ", ", Text => &row.usernames;
            ", ", Text => &row.lifecycle;
            ", ", Bool => &row.locked;
            ", ", Text => &row.state;
            ", ", BigInt => &row.created_at_us;
            ", ", BigInt => &row.changed_at_us;
            ", ", BigInt => &row.sequence;
            ", ", Nullable<Text> => &row.lock_cause;
            ", ", Nullable<BigInt> => &row.locked_until_us;
            ", ", Nullable<Text> => &row.password_hash;
            ", ", Nullable<BigInt> => &row.password_changed_at_us;
            ", ", Bool => &row.password_change_required;
            ", ", BigInt => &row.failed_password_checks;
            ", ", Nullable<Text> => &row.password_code_hash;
            ", ", Nullable<BigInt> => &row.password_code_expires_at_us;
            ", ", BigInt => &row.password_code_failures;
            ", ", Nullable<Text> => &row.contact_codes;
            ", ", BigInt => &row.sessions_valid_from_us;
            " WHERE NOT EXISTS (SELECT 1 FROM taken) RETURNING id, org_id), \
             names AS (INSERT INTO usernames (id, user_id, org_id, \
             username, username_key, organization_specific) SELECT n.id, created.id, \
             created.org_id, n.username, n.username_key, n.specific FROM created, unnest(",
                Array<Text> => &self.name_ids;
            ", ", Array<Text> => &self.names;
            ", ", Array<Text> => &self.name_keys;
            ", ", Array<Bool> => &self.name_specific;
            ") AS n(id, username, username_key, specific)) ";
        );
        append_event_per_row_of(&mut out, event, "created")
    }
}

impl RunQueryDsl<PgConnection> for CreateAndAppend<'_> {}

impl UserWrite {
    /// Writes on its own. On PostgreSQL a change is one statement, and so is a creation
    /// without usernames; a creation with usernames is a transaction of three round trips
    /// (BEGIN with the username locks, the statement, COMMIT). On SQLite every write is a
    /// transaction.
    fn commit(self, conn: &mut DbConnection) -> Result<(), StoreError> {
        match conn {
            // Messages go with their events: one transaction, whatever the write.
            DbConnection::Postgres(pg) if !self.messages.is_empty() && self.event.sequence > 1 => {
                postgres_write_transaction(pg, "", |pg| {
                    self.apply_in_one_statement(pg)?;
                    self.append_more(pg)?;
                    crate::outbox::insert(pg, &self.messages)
                })
            }
            DbConnection::Postgres(pg) if !self.messages.is_empty() => {
                let locks = username_locks(&self.usernames);
                postgres_write_transaction(pg, &locks, |pg| {
                    if !self.create_in_one_statement(pg)? {
                        return Err(match first_taken_username!(pg, &self.usernames) {
                            Some(taken) => StoreError::UsernameTaken(taken),
                            None => StoreError::Conflict,
                        });
                    }
                    self.append_more(pg)?;
                    crate::outbox::insert(pg, &self.messages)
                })
            }
            DbConnection::Postgres(pg) if self.event.sequence > 1 && self.more.is_empty() => {
                self.apply_in_one_statement(pg)
            }
            // Several events (a password check that also locks): the same statement and
            // the events after the first, in one transaction.
            DbConnection::Postgres(pg) if self.event.sequence > 1 => {
                postgres_write_transaction(pg, "", |pg| {
                    self.apply_in_one_statement(pg)?;
                    self.append_more(pg)
                })
            }
            DbConnection::Postgres(pg) if self.usernames.is_empty() && self.more.is_empty() => {
                match self.create_in_one_statement(pg)? {
                    true => Ok(()),
                    // Without usernames nothing can be taken; say it was a race.
                    false => Err(StoreError::Conflict),
                }
            }
            DbConnection::Postgres(pg) => {
                // PostgreSQL runs writers concurrently and no unique index expresses the
                // username rule across organizations, so creators of the same username
                // take turns; the statement after the locks sees every earlier creator.
                let locks = username_locks(&self.usernames);
                postgres_write_transaction(pg, &locks, |pg| {
                    if self.create_in_one_statement(pg)? {
                        return self.append_more(pg);
                    }
                    // Name the username that was taken.
                    Err(match first_taken_username!(pg, &self.usernames) {
                        Some(taken) => StoreError::UsernameTaken(taken),
                        None => StoreError::Conflict,
                    })
                })
            }
            DbConnection::Sqlite(_) => write_transaction(conn, |conn| self.apply(conn)),
        }
    }

    /// Creates a user on PostgreSQL in one statement; false when a username was taken and
    /// nothing was written.
    fn create_in_one_statement(&self, pg: &mut PgConnection) -> Result<bool, StoreError> {
        let statement = CreateAndAppend {
            write: self,
            name_ids: self.usernames.iter().map(|n| n.id.as_str()).collect(),
            names: self.usernames.iter().map(|n| n.username.as_str()).collect(),
            name_keys: self
                .usernames
                .iter()
                .map(|n| n.username_key.as_str())
                .collect(),
            name_specific: self
                .usernames
                .iter()
                .map(|n| n.organization_specific)
                .collect(),
        };
        let created = statement.execute(pg).map_err(|error| {
            if is_foreign_key_violation(&error) {
                return StoreError::OrganizationNotFound;
            }
            match violated_key(&error) {
                // The id has events, or a live row: it was used before.
                Some(key) if key.starts_with("events") || key.starts_with("users") => {
                    StoreError::UserIdTaken
                }
                // Which name clashed is not said; a race this close is reported as one.
                Some(key) if key.contains("unique_in_org") => match self.usernames.as_slice() {
                    [only] => StoreError::UsernameTaken(only.username.clone()),
                    _ => StoreError::Conflict,
                },
                // A server-made username id clashed: the use case retries.
                Some(_) => StoreError::Conflict,
                None => store_error(error),
            }
        })?;
        Ok(created == 1)
    }

    /// The events after the first, inside the caller's PostgreSQL transaction.
    fn append_more(&self, pg: &mut PgConnection) -> Result<(), StoreError> {
        for event in &self.more {
            diesel::insert_into(events::table)
                .values(event)
                .execute(pg)
                .map_err(|error| match violated_key(&error) {
                    Some(_) => StoreError::Conflict,
                    None => store_error(error),
                })?;
        }
        Ok(())
    }

    /// Writes a change of an existing user on PostgreSQL in one statement.
    fn apply_in_one_statement(&self, pg: &mut PgConnection) -> Result<(), StoreError> {
        let previous = self.event.sequence - 1;
        let written = if self.deleted {
            MoveAndAppend::<true> {
                write: self,
                previous,
            }
            .execute(pg)
        } else {
            MoveAndAppend::<false> {
                write: self,
                previous,
            }
            .execute(pg)
        };
        match written {
            Ok(1) => Ok(()),
            // The row had moved on: another writer was first.
            Ok(_) => Err(StoreError::Conflict),
            Err(error) if violated_key(&error).is_some() => Err(StoreError::Conflict),
            Err(error) => Err(store_error(error)),
        }
    }
}

/// The statements that make creators of the same usernames take turns on PostgreSQL:
/// transaction-scoped advisory locks, taken in one order so two creators cannot deadlock.
fn username_locks(claims: &[UsernameRow]) -> String {
    let mut keys: Vec<i64> = claims.iter().map(|c| lock_key(&c.username_key)).collect();
    keys.sort_unstable();
    keys.dedup();
    keys.iter()
        .map(|key| format!("SELECT pg_advisory_xact_lock({key});"))
        .collect()
}

/// The first of `claims` a live user already holds, per docs/api.md: an
/// organization-specific username is unique in its organization, any other among all
/// users. Only sound where no concurrent creator can slip in between (SQLite's single
/// writer, or PostgreSQL holding the username locks).
///
/// A macro so that it runs on either connection type (the boxed query's backend follows
/// the connection); it returns from the enclosing function on a database error.
macro_rules! first_taken_username {
    ($conn:expr, $claims:expr) => {{
        let mut taken = None;
        for claim in $claims {
            let mut clashes = usernames::table
                .filter(usernames::username_key.eq(&claim.username_key))
                .into_boxed();
            if claim.organization_specific {
                clashes = clashes.filter(
                    usernames::org_id
                        .eq(&claim.org_id)
                        .or(usernames::organization_specific.eq(false)),
                );
            }
            let clash = clashes
                .select(usernames::id)
                .first::<String>($conn)
                .optional()
                .map_err(store_error)?;
            if clash.is_some() {
                taken = Some(claim.username.clone());
                break;
            }
        }
        taken
    }};
}
use first_taken_username;

fn lock_key(username_key: &str) -> i64 {
    let digest = Sha256::digest(format!("userd.username:{username_key}").as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(bytes)
}

/// The current row of a user. Run on the backend's own connection, not through the
/// multi-backend wrapper: that way diesel caches the prepared statement by the query's
/// type instead of building its SQL text again on every call (the hottest read).
fn find_row(conn: &mut DbConnection, id: &str) -> Result<Option<ProjectionRow>, StoreError> {
    // A macro, not a value: the selection's type depends on the backend.
    macro_rules! query {
        () => {
            users::table.find(id).select(ProjectionRow::as_select())
        };
    }
    match conn {
        DbConnection::Postgres(pg) => query!().first(pg),
        DbConnection::Sqlite(sqlite) => query!().first(sqlite),
    }
    .optional()
    .map_err(store_error)
}

#[async_trait]
impl UserRepository for Database {
    async fn find(&self, id: &UserId) -> Result<Option<User>, StoreError> {
        let id = id.to_string();
        let row = self.run(move |conn| find_row(conn, &id)).await?;
        row.map(ProjectionRow::into_user).transpose()
    }

    async fn append(&self, state: &User, event: &UserEvent) -> Result<(), StoreError> {
        let write = UserWrite::new(state, event)?;
        self.run(move |conn| write.commit(conn)).await?;
        self.appended.count(event.change.event_type());
        Ok(())
    }

    async fn append_notifying(
        &self,
        state: &User,
        events: &[UserEvent],
        messages: &[OutboundMessage],
    ) -> Result<(), StoreError> {
        let write = UserWrite::of_all(state, events)?.with_messages(messages);
        self.run(move |conn| write.commit(conn)).await?;
        for event in events {
            self.appended.count(event.change.event_type());
        }
        Ok(())
    }

    async fn append_all(&self, state: &User, events: &[UserEvent]) -> Result<(), StoreError> {
        let write = UserWrite::of_all(state, events)?;
        self.run(move |conn| write.commit(conn)).await?;
        for event in events {
            self.appended.count(event.change.event_type());
        }
        Ok(())
    }

    async fn find_by_login_name(
        &self,
        name_key: &str,
        org: Option<OrgId>,
    ) -> Result<Vec<User>, StoreError> {
        let (name_key, org) = (name_key.to_owned(), org.map(|org| org.to_string()));
        let rows = self
            .run(move |conn| {
                // `org_id = $2` with $2 NULL matches nothing: one statement text either way.
                macro_rules! query {
                    () => {
                        users::table
                            .filter(
                                users::id.eq_any(
                                    usernames::table
                                        .filter(usernames::username_key.eq(&name_key))
                                        .filter(
                                            usernames::organization_specific
                                                .eq(false)
                                                .or(usernames::org_id.nullable().eq(&org)),
                                        )
                                        .select(usernames::user_id),
                                ),
                            )
                            .select(ProjectionRow::as_select())
                            .limit(2)
                    };
                }
                match conn {
                    DbConnection::Postgres(pg) => query!().load(pg),
                    DbConnection::Sqlite(sqlite) => query!().load(sqlite),
                }
                .map_err(store_error)
            })
            .await?;
        rows.into_iter().map(ProjectionRow::into_user).collect()
    }

    async fn search(&self, query: &UserQuery) -> Result<UserPage, StoreError> {
        self.search_users(query).await
    }
}

/// One connection held by the calling thread, running the repository's statements
/// without the async bridge: for benchmarks measuring the storage limit in-process.
#[doc(hidden)]
pub struct BlockingSession {
    pooled: r2d2::PooledConnection<crate::connection::Manager>,
}

impl std::fmt::Debug for BlockingSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BlockingSession")
    }
}

impl BlockingSession {
    pub fn find(&mut self, id: &UserId) -> Result<Option<User>, StoreError> {
        find_row(&mut self.pooled.conn, id.as_str())?
            .map(ProjectionRow::into_user)
            .transpose()
    }

    pub fn append(&mut self, state: &User, event: &UserEvent) -> Result<(), StoreError> {
        UserWrite::new(state, event)?.commit(&mut self.pooled.conn)
    }
}

impl Database {
    #[doc(hidden)]
    pub fn blocking_session(&self) -> Result<BlockingSession, StoreError> {
        Ok(BlockingSession {
            pooled: self.connection()?,
        })
    }
}
