//! The user repository: one transaction appends the event and writes the current state.

use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::{PgConnection, QueryResult};
use sha2::{Digest, Sha256};
use userd_domain::user::{User, UserChange, UserEvent};
use userd_domain::values::UserId;
use userd_ports::error::StoreError;
use userd_ports::repository::UserRepository;
use userd_ports::search::{UserPage, UserQuery};

use crate::connection::{Database, DbConnection, write_transaction};
use crate::errors::{is_foreign_key_violation, store_error, violated_key};
use crate::projection::{EventRow, ProjectionRow, UsernameRow, username_rows};
use crate::schema::{events, usernames, users};

/// Counts of appended events by type, for metrics.
#[derive(Debug, Default)]
pub(crate) struct AppendedEvents([AtomicU64; EVENT_TYPES.len()]);

const EVENT_TYPES: [&str; 7] = [
    UserChange::CREATED,
    UserChange::UPDATED,
    UserChange::LOCKED,
    UserChange::UNLOCKED,
    UserChange::DEACTIVATED,
    UserChange::ACTIVATED,
    UserChange::DELETED,
];

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

/// Everything one accepted command writes.
pub(crate) struct UserWrite {
    event: EventRow,
    row: ProjectionRow,
    usernames: Vec<UsernameRow>,
    deleted: bool,
}

impl UserWrite {
    pub(crate) fn new(state: &User, event: &UserEvent) -> UserWrite {
        UserWrite {
            event: EventRow::of(event, &state.org_id),
            row: ProjectionRow::of(state),
            usernames: username_rows(state),
            deleted: state.is_deleted(),
        }
    }

    /// Writes inside the caller's transaction, which must hold the write lock.
    pub(crate) fn apply(self, conn: &mut DbConnection) -> Result<(), StoreError> {
        let sequence = self.event.sequence;
        if let Err(error) = diesel::insert_into(events::table)
            .values(&self.event)
            .execute(conn)
        {
            return Err(match violated_key(&error) {
                Some(_) if sequence == 1 => StoreError::UserIdTaken,
                Some(_) => StoreError::Conflict,
                None => store_error(error),
            });
        }

        if sequence == 1 {
            claim_usernames(conn, &self.usernames)?;
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
            return Ok(());
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
        if written == 1 {
            Ok(())
        } else {
            Err(StoreError::Conflict)
        }
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
                " WHERE id = ", Text => &row.id;
                " AND sequence = ", BigInt => &self.previous;
                " RETURNING id) ";
            );
        }
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
            " FROM moved";
        );
        Ok(())
    }
}

impl<const DELETE: bool> RunQueryDsl<PgConnection> for MoveAndAppend<'_, DELETE> {}

impl UserWrite {
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

/// Refuses usernames that clash with a live user's, per the contract: an
/// organization-specific username is unique in its organization, any other among all
/// users. Must run inside the write transaction.
fn claim_usernames(conn: &mut DbConnection, claims: &[UsernameRow]) -> Result<(), StoreError> {
    if claims.is_empty() {
        return Ok(());
    }
    if let DbConnection::Postgres(pg) = conn {
        // PostgreSQL runs writers concurrently and no single unique index expresses the
        // rule across organizations, so creators of the same username key take turns.
        // (SQLite's write transactions are already serialized.)
        let mut locks: Vec<i64> = claims.iter().map(|c| lock_key(&c.username_key)).collect();
        locks.sort_unstable();
        locks.dedup();
        for key in locks {
            diesel::sql_query("SELECT pg_advisory_xact_lock($1)")
                .bind::<diesel::sql_types::BigInt, _>(key)
                .execute(pg)
                .map_err(store_error)?;
        }
    }
    for claim in claims {
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
            .first::<String>(conn)
            .optional()
            .map_err(store_error)?;
        if clash.is_some() {
            return Err(StoreError::UsernameTaken(claim.username.clone()));
        }
    }
    Ok(())
}

fn lock_key(username_key: &str) -> i64 {
    let digest = Sha256::digest(format!("userd.username:{username_key}").as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(bytes)
}

#[async_trait]
impl UserRepository for Database {
    async fn find(&self, id: &UserId) -> Result<Option<User>, StoreError> {
        let id = id.to_string();
        let row = self
            .run(move |conn| {
                users::table
                    .find(id)
                    .select(ProjectionRow::as_select())
                    .first(conn)
                    .optional()
                    .map_err(store_error)
            })
            .await?;
        row.map(ProjectionRow::into_user).transpose()
    }

    async fn append(&self, state: &User, event: &UserEvent) -> Result<(), StoreError> {
        let write = UserWrite::new(state, event);
        self.run(move |conn| match conn {
            DbConnection::Postgres(pg) if write.event.sequence > 1 => {
                write.apply_in_one_statement(pg)
            }
            _ => write_transaction(conn, |conn| write.apply(conn)),
        })
        .await?;
        self.appended.count(event.change.event_type());
        Ok(())
    }

    async fn search(&self, query: &UserQuery) -> Result<UserPage, StoreError> {
        self.search_users(query).await
    }
}
