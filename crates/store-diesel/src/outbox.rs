//! The outbox: messages stored with the events that cause them, claimed by delivery
//! workers. PostgreSQL lets workers of several processes claim side by side (`FOR
//! UPDATE SKIP LOCKED`); SQLite runs one write transaction at a time, so a claim there
//! is a plain read and update under its write lock.

use std::time::Duration;

use async_trait::async_trait;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer, Text};
use userd_domain::Timestamp;
use userd_ports::error::StoreError;
use userd_ports::notify::{
    Channel, ClaimedMessage, Message, OutboundMessage, Outbox, OutboxCounts,
};

use crate::connection::{Database, DbConnection, write_transaction};
use crate::errors::store_error;
use crate::schema::outbox;

/// A message as stored.
#[derive(Insertable, Clone, Debug, PartialEq, Eq)]
#[diesel(table_name = outbox)]
pub(crate) struct OutboxRow {
    id: String,
    user_id: String,
    channel: String,
    recipient: String,
    subject: String,
    body: String,
    created_at_us: i64,
    next_attempt_at_us: i64,
}

impl OutboxRow {
    pub(crate) fn of(message: &OutboundMessage) -> OutboxRow {
        let created = message.created.unix_micros();
        OutboxRow {
            id: message.id.clone(),
            user_id: message.user_id.to_string(),
            channel: message.message.channel.as_str().to_owned(),
            recipient: message.message.to.clone(),
            subject: message.message.subject.clone(),
            body: message.message.text.clone(),
            created_at_us: created,
            next_attempt_at_us: created,
        }
    }
}

/// Stores `messages` inside the caller's PostgreSQL transaction.
pub(crate) fn insert(pg: &mut PgConnection, messages: &[OutboxRow]) -> Result<(), StoreError> {
    diesel::insert_into(outbox::table)
        .values(messages)
        .execute(pg)
        .map(drop)
        .map_err(store_error)
}

/// Stores `messages` inside the caller's transaction, on either backend.
pub(crate) fn insert_any(
    conn: &mut DbConnection,
    messages: &[OutboxRow],
) -> Result<(), StoreError> {
    if messages.is_empty() {
        return Ok(());
    }
    match conn {
        DbConnection::Postgres(pg) => insert(pg, messages),
        DbConnection::Sqlite(sqlite) => diesel::insert_into(outbox::table)
            .values(messages)
            .execute(sqlite)
            .map(drop)
            .map_err(store_error),
    }
}

#[derive(QueryableByName, Queryable, Debug)]
struct ClaimedRow {
    #[diesel(sql_type = Text)]
    id: String,
    #[diesel(sql_type = Text)]
    channel: String,
    #[diesel(sql_type = Text)]
    recipient: String,
    #[diesel(sql_type = Text)]
    subject: String,
    #[diesel(sql_type = Text)]
    body: String,
    #[diesel(sql_type = Integer)]
    attempts: i32,
}

impl ClaimedRow {
    fn into_claimed(self) -> Result<ClaimedMessage, StoreError> {
        let channel = Channel::parse(&self.channel).ok_or_else(|| {
            StoreError::Internal(format!("outbox message with channel {:?}", self.channel).into())
        })?;
        Ok(ClaimedMessage {
            id: self.id,
            message: Message {
                channel,
                to: self.recipient,
                subject: self.subject,
                text: self.body,
            },
            attempt: u32::try_from(self.attempts).unwrap_or_default(),
        })
    }
}

/// Oldest first; rows another worker is claiming right now are skipped, not waited for.
const CLAIM_POSTGRES: &str = "\
WITH claimed AS (
    UPDATE outbox SET claimed_until_us = $1, attempts = attempts + 1
    WHERE id IN (
        SELECT id FROM outbox
        WHERE sent_at_us IS NULL AND failed_at_us IS NULL AND next_attempt_at_us <= $2
          AND (claimed_until_us IS NULL OR claimed_until_us <= $2)
        ORDER BY next_attempt_at_us
        LIMIT $3
        FOR UPDATE SKIP LOCKED)
    RETURNING id, channel, recipient, subject, body, attempts, next_attempt_at_us)
SELECT id, channel, recipient, subject, body, attempts FROM claimed
ORDER BY next_attempt_at_us, id";

fn claim(
    conn: &mut DbConnection,
    now: i64,
    until: i64,
    limit: i64,
) -> Result<Vec<ClaimedRow>, StoreError> {
    match conn {
        DbConnection::Postgres(pg) => diesel::sql_query(CLAIM_POSTGRES)
            .bind::<BigInt, _>(until)
            .bind::<BigInt, _>(now)
            .bind::<BigInt, _>(limit)
            .load(pg)
            .map_err(store_error),
        DbConnection::Sqlite(_) => write_transaction(conn, |conn| {
            let due = outbox::table
                .filter(outbox::sent_at_us.is_null())
                .filter(outbox::failed_at_us.is_null())
                .filter(outbox::next_attempt_at_us.le(now))
                .filter(
                    outbox::claimed_until_us
                        .is_null()
                        .or(outbox::claimed_until_us.le(now)),
                )
                .order(outbox::next_attempt_at_us)
                .limit(limit)
                .select(outbox::id)
                .load::<String>(conn)
                .map_err(store_error)?;
            diesel::update(outbox::table.filter(outbox::id.eq_any(&due)))
                .set((
                    outbox::claimed_until_us.eq(until),
                    outbox::attempts.eq(outbox::attempts + 1),
                ))
                .execute(conn)
                .map_err(store_error)?;
            outbox::table
                .filter(outbox::id.eq_any(&due))
                .order((outbox::next_attempt_at_us, outbox::id))
                .select((
                    outbox::id,
                    outbox::channel,
                    outbox::recipient,
                    outbox::subject,
                    outbox::body,
                    outbox::attempts,
                ))
                .load::<ClaimedRow>(conn)
                .map_err(store_error)
        }),
    }
}

fn micros(duration: Duration) -> i64 {
    i64::try_from(duration.as_micros()).unwrap_or(i64::MAX)
}

#[async_trait]
impl Outbox for Database {
    async fn claim_due(
        &self,
        now: Timestamp,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<ClaimedMessage>, StoreError> {
        let now = now.unix_micros();
        let until = now.saturating_add(micros(lease));
        let rows = self
            .run(move |conn| claim(conn, now, until, i64::from(limit)))
            .await?;
        rows.into_iter().map(ClaimedRow::into_claimed).collect()
    }

    async fn mark_sent(&self, id: &str, at: Timestamp) -> Result<(), StoreError> {
        let id = id.to_owned();
        self.run(move |conn| {
            diesel::update(outbox::table.find(&id))
                .set((
                    outbox::sent_at_us.eq(at.unix_micros()),
                    outbox::claimed_until_us.eq(None::<i64>),
                    // The code has done its work; nothing in clear stays behind.
                    outbox::body.eq(""),
                    outbox::last_error.eq(None::<String>),
                ))
                .execute(conn)
                .map(drop)
                .map_err(store_error)
        })
        .await
    }

    async fn mark_failed(
        &self,
        id: &str,
        error: &str,
        at: Timestamp,
        retry_at: Option<Timestamp>,
    ) -> Result<(), StoreError> {
        let (id, error) = (id.to_owned(), error.to_owned());
        self.run(move |conn| {
            let target = outbox::table.find(&id);
            let written = match retry_at {
                Some(at) => diesel::update(target)
                    .set((
                        outbox::next_attempt_at_us.eq(at.unix_micros()),
                        outbox::claimed_until_us.eq(None::<i64>),
                        outbox::last_error.eq(Some(error)),
                    ))
                    .execute(conn),
                None => diesel::update(target)
                    .set((
                        outbox::failed_at_us.eq(Some(at.unix_micros())),
                        outbox::claimed_until_us.eq(None::<i64>),
                        outbox::body.eq(""),
                        outbox::last_error.eq(Some(error)),
                    ))
                    .execute(conn),
            };
            written.map(drop).map_err(store_error)
        })
        .await
    }

    async fn next_due(&self) -> Result<Option<Timestamp>, StoreError> {
        // A claimed message falls due again when its claim ends (a worker that died),
        // an unclaimed one at its next attempt.
        let (unclaimed, claimed) = self
            .run(|conn| {
                let unclaimed = outbox::table
                    .filter(outbox::sent_at_us.is_null())
                    .filter(outbox::failed_at_us.is_null())
                    .filter(outbox::claimed_until_us.is_null())
                    .select(diesel::dsl::min(outbox::next_attempt_at_us))
                    .first::<Option<i64>>(conn)
                    .map_err(store_error)?;
                let claimed = outbox::table
                    .filter(outbox::sent_at_us.is_null())
                    .filter(outbox::failed_at_us.is_null())
                    .select(diesel::dsl::min(outbox::claimed_until_us))
                    .first::<Option<i64>>(conn)
                    .map_err(store_error)?;
                Ok((unclaimed, claimed))
            })
            .await?;
        let next = match (unclaimed, claimed) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        Ok(next.map(Timestamp::from_unix_micros))
    }

    async fn counts(&self) -> Result<OutboxCounts, StoreError> {
        let (pending, sent, failed) = self
            .run(|conn| {
                let pending = outbox::table
                    .filter(outbox::sent_at_us.is_null())
                    .filter(outbox::failed_at_us.is_null())
                    .count()
                    .get_result::<i64>(conn);
                let sent = outbox::table
                    .filter(outbox::sent_at_us.is_not_null())
                    .count()
                    .get_result::<i64>(conn);
                let failed = outbox::table
                    .filter(outbox::failed_at_us.is_not_null())
                    .count()
                    .get_result::<i64>(conn);
                Ok((
                    pending.map_err(store_error)?,
                    sent.map_err(store_error)?,
                    failed.map_err(store_error)?,
                ))
            })
            .await?;
        let count = |n: i64| u64::try_from(n).unwrap_or_default();
        Ok(OutboxCounts {
            pending: count(pending),
            sent: count(sent),
            failed: count(failed),
        })
    }

    async fn purge_done(&self, before: Timestamp) -> Result<u64, StoreError> {
        let before = before.unix_micros();
        let deleted = self
            .run(move |conn| {
                diesel::delete(
                    outbox::table.filter(
                        outbox::sent_at_us
                            .lt(before)
                            .or(outbox::failed_at_us.lt(before)),
                    ),
                )
                .execute(conn)
                .map_err(store_error)
            })
            .await?;
        Ok(u64::try_from(deleted).unwrap_or_default())
    }
}
