//! Login settings and sessions.

use async_trait::async_trait;
use diesel::prelude::*;
use userd_domain::Timestamp;
use userd_domain::values::{OrgId, UserId};
use userd_ports::error::StoreError;
use userd_ports::repository::RecordTimes;
use userd_ports::sessions::{SessionRecord, SessionRepository};
use userd_ports::settings::{
    ComplexitySettings, LockoutSettings, SettingsKind, SettingsRepository, SettingsScope, Stored,
};
use userd_ports::tokens::TokenHash;

use crate::connection::{Database, write_transaction};
use crate::errors::{store_error, violated_key};
use crate::schema::{login_settings, organizations, sessions, users};
use crate::stored::{decode_complexity, decode_lockout, encode_complexity, encode_lockout};

/// The stored key of a scope: an organization's id, or '' for the instance.
fn scope_key(scope: &SettingsScope) -> String {
    match scope {
        SettingsScope::Instance => String::new(),
        SettingsScope::Organization(org) => org.to_string(),
    }
}

impl Database {
    async fn load_settings(
        &self,
        scope: &SettingsScope,
        kind: SettingsKind,
    ) -> Result<Option<(String, RecordTimes)>, StoreError> {
        let scope = scope_key(scope);
        let row: Option<(String, i64, i64)> = self
            .run(move |conn| {
                login_settings::table
                    .find((scope, kind.as_str()))
                    .select((
                        login_settings::value,
                        login_settings::created_at_us,
                        login_settings::changed_at_us,
                    ))
                    .first(conn)
                    .optional()
                    .map_err(store_error)
            })
            .await?;
        Ok(row.map(|(value, created, changed)| {
            (
                value,
                RecordTimes {
                    created: Timestamp::from_unix_micros(created),
                    changed: Timestamp::from_unix_micros(changed),
                },
            )
        }))
    }

    /// Writes one scope's settings of one kind: an insert, or an update keeping the
    /// creation time. One transaction, so the organization cannot vanish in between.
    async fn store_settings(
        &self,
        scope: &SettingsScope,
        kind: SettingsKind,
        value: String,
        at: Timestamp,
    ) -> Result<RecordTimes, StoreError> {
        let org = match scope {
            SettingsScope::Instance => None,
            SettingsScope::Organization(org) => Some(org.to_string()),
        };
        let key = scope_key(scope);
        let at = at.unix_micros();
        self.run(move |conn| {
            write_transaction(conn, |conn| {
                if let Some(org) = &org {
                    let exists: Option<String> = organizations::table
                        .find(org)
                        .select(organizations::id)
                        .first(conn)
                        .optional()
                        .map_err(store_error)?;
                    if exists.is_none() {
                        return Err(StoreError::OrganizationNotFound);
                    }
                }
                let created: Option<i64> = login_settings::table
                    .find((&key, kind.as_str()))
                    .select(login_settings::created_at_us)
                    .first(conn)
                    .optional()
                    .map_err(store_error)?;
                match created {
                    Some(created) => {
                        diesel::update(login_settings::table.find((&key, kind.as_str())))
                            .set((
                                login_settings::value.eq(&value),
                                login_settings::changed_at_us.eq(at),
                            ))
                            .execute(conn)
                            .map_err(store_error)?;
                        Ok(RecordTimes {
                            created: Timestamp::from_unix_micros(created),
                            changed: Timestamp::from_unix_micros(at),
                        })
                    }
                    None => {
                        diesel::insert_into(login_settings::table)
                            .values((
                                login_settings::scope.eq(&key),
                                login_settings::kind.eq(kind.as_str()),
                                login_settings::value.eq(&value),
                                login_settings::created_at_us.eq(at),
                                login_settings::changed_at_us.eq(at),
                            ))
                            .execute(conn)
                            .map_err(|error| match violated_key(&error) {
                                // Another writer inserted first: last writer wins on retry.
                                Some(_) => StoreError::Conflict,
                                None => store_error(error),
                            })?;
                        let at = Timestamp::from_unix_micros(at);
                        Ok(RecordTimes {
                            created: at,
                            changed: at,
                        })
                    }
                }
            })
        })
        .await
    }
}

#[async_trait]
impl SettingsRepository for Database {
    async fn lockout(
        &self,
        scope: &SettingsScope,
    ) -> Result<Option<Stored<LockoutSettings>>, StoreError> {
        self.load_settings(scope, SettingsKind::Lockout)
            .await?
            .map(|(value, times)| {
                Ok(Stored {
                    value: decode_lockout(&value)?,
                    times,
                })
            })
            .transpose()
    }

    async fn set_lockout(
        &self,
        scope: &SettingsScope,
        settings: &LockoutSettings,
        at: Timestamp,
    ) -> Result<RecordTimes, StoreError> {
        self.store_settings(scope, SettingsKind::Lockout, encode_lockout(settings)?, at)
            .await
    }

    async fn lockout_applying_to(
        &self,
        org: &OrgId,
    ) -> Result<Option<LockoutSettings>, StoreError> {
        let org = org.to_string();
        let rows: Vec<(String, String)> = self
            .run(move |conn| {
                login_settings::table
                    .filter(login_settings::kind.eq(SettingsKind::Lockout.as_str()))
                    .filter(login_settings::scope.eq_any([org, String::new()]))
                    .select((login_settings::scope, login_settings::value))
                    .load(conn)
                    .map_err(store_error)
            })
            .await?;
        // The organization's own ('' sorts first, so look for it by name).
        let own = rows.iter().find(|(scope, _)| !scope.is_empty());
        let instance = rows.iter().find(|(scope, _)| scope.is_empty());
        own.or(instance)
            .map(|(_, value)| decode_lockout(value))
            .transpose()
    }

    async fn complexity(
        &self,
        scope: &SettingsScope,
    ) -> Result<Option<Stored<ComplexitySettings>>, StoreError> {
        self.load_settings(scope, SettingsKind::Complexity)
            .await?
            .map(|(value, times)| {
                Ok(Stored {
                    value: decode_complexity(&value)?,
                    times,
                })
            })
            .transpose()
    }

    async fn set_complexity(
        &self,
        scope: &SettingsScope,
        settings: &ComplexitySettings,
        at: Timestamp,
    ) -> Result<RecordTimes, StoreError> {
        let value = encode_complexity(settings)?;
        self.store_settings(scope, SettingsKind::Complexity, value, at)
            .await
    }

    async fn remove(&self, scope: &SettingsScope, kind: SettingsKind) -> Result<bool, StoreError> {
        let key = scope_key(scope);
        self.run(move |conn| {
            diesel::delete(login_settings::table.find((key, kind.as_str())))
                .execute(conn)
                .map(|removed| removed > 0)
                .map_err(store_error)
        })
        .await
    }
}

type SessionRow = (
    String,
    String,
    String,
    String,
    String,
    i64,
    i64,
    Option<i64>,
    i64,
    Option<i64>,
);

fn session_of(row: SessionRow) -> Result<SessionRecord, StoreError> {
    let (id, user, org, login_name, hash, created, changed, expires, user_at, password_at) = row;
    let corrupt = |e| StoreError::corrupt(format!("the session {id:?}"), Box::new(e));
    Ok(SessionRecord {
        user_id: UserId::new(user).map_err(corrupt)?,
        org_id: OrgId::new(org).map_err(corrupt)?,
        id,
        login_name,
        token_hash: TokenHash::from_hex(hash),
        created: Timestamp::from_unix_micros(created),
        changed: Timestamp::from_unix_micros(changed),
        expires_at: expires.map(Timestamp::from_unix_micros),
        user_verified_at: Timestamp::from_unix_micros(user_at),
        password_verified_at: password_at.map(Timestamp::from_unix_micros),
    })
}

#[async_trait]
impl SessionRepository for Database {
    async fn create_session(&self, session: &SessionRecord) -> Result<(), StoreError> {
        let s = session.clone();
        self.run(move |conn| {
            diesel::insert_into(sessions::table)
                .values((
                    sessions::id.eq(&s.id),
                    sessions::user_id.eq(s.user_id.as_str()),
                    sessions::org_id.eq(s.org_id.as_str()),
                    sessions::login_name.eq(&s.login_name),
                    sessions::token_hash.eq(s.token_hash.as_str()),
                    sessions::created_at_us.eq(s.created.unix_micros()),
                    sessions::changed_at_us.eq(s.changed.unix_micros()),
                    sessions::expires_at_us.eq(s.expires_at.map(Timestamp::unix_micros)),
                    sessions::user_verified_at_us.eq(s.user_verified_at.unix_micros()),
                    sessions::password_verified_at_us
                        .eq(s.password_verified_at.map(Timestamp::unix_micros)),
                ))
                .execute(conn)
                .map(drop)
                .map_err(|error| {
                    if crate::errors::is_foreign_key_violation(&error) {
                        StoreError::UserNotFound
                    } else if violated_key(&error).is_some() {
                        StoreError::Conflict
                    } else {
                        store_error(error)
                    }
                })
        })
        .await
    }

    async fn find_session(&self, id: &str) -> Result<Option<SessionRecord>, StoreError> {
        let id = id.to_owned();
        let row: Option<SessionRow> = self
            .run(move |conn| {
                sessions::table
                    .find(id)
                    .select((
                        sessions::id,
                        sessions::user_id,
                        sessions::org_id,
                        sessions::login_name,
                        sessions::token_hash,
                        sessions::created_at_us,
                        sessions::changed_at_us,
                        sessions::expires_at_us,
                        sessions::user_verified_at_us,
                        sessions::password_verified_at_us,
                    ))
                    .first(conn)
                    .optional()
                    .map_err(store_error)
            })
            .await?;
        row.map(session_of).transpose()
    }

    async fn update_session(
        &self,
        session: &SessionRecord,
        changed_before: Timestamp,
    ) -> Result<bool, StoreError> {
        let s = session.clone();
        self.run(move |conn| {
            diesel::update(
                sessions::table
                    .find(&s.id)
                    .filter(sessions::changed_at_us.eq(changed_before.unix_micros())),
            )
            .set((
                sessions::token_hash.eq(s.token_hash.as_str()),
                sessions::changed_at_us.eq(s.changed.unix_micros()),
                sessions::expires_at_us.eq(s.expires_at.map(Timestamp::unix_micros)),
                sessions::password_verified_at_us
                    .eq(s.password_verified_at.map(Timestamp::unix_micros)),
            ))
            .execute(conn)
            .map(|updated| updated == 1)
            .map_err(store_error)
        })
        .await
    }

    async fn delete_session(&self, id: &str) -> Result<bool, StoreError> {
        let id = id.to_owned();
        self.run(move |conn| {
            diesel::delete(sessions::table.find(id))
                .execute(conn)
                .map(|deleted| deleted == 1)
                .map_err(store_error)
        })
        .await
    }

    async fn purge_ended(&self, expired_before: Timestamp) -> Result<u64, StoreError> {
        let before = expired_before.unix_micros();
        let deleted = self
            .run(move |conn| {
                let ended_by_user = users::table
                    .filter(users::id.eq(sessions::user_id))
                    .filter(users::sessions_valid_from_us.ge(sessions::created_at_us))
                    .select(users::id);
                diesel::delete(
                    sessions::table.filter(
                        sessions::expires_at_us
                            .lt(before)
                            .or(diesel::dsl::exists(ended_by_user)),
                    ),
                )
                .execute(conn)
                .map_err(store_error)
            })
            .await?;
        Ok(u64::try_from(deleted).unwrap_or_default())
    }
}
