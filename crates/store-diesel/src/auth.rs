//! Tokens, memberships, and authenticating a request with them.

use std::collections::BTreeMap;

use async_trait::async_trait;
use diesel::prelude::*;
use userd_domain::Timestamp;
use userd_domain::authz::{Caller, Memberships, Role, RoleSet};
use userd_domain::user::UserState;
use userd_domain::values::{OrgId, UserId};
use userd_ports::error::StoreError;
use userd_ports::repository::{
    AuthenticatedToken, Authenticator, HealthProbe, MembershipRepository, NewToken, RecordTimes,
    TokenRecord, TokenRepository,
};
use userd_ports::tokens::TokenHash;

use crate::connection::{Database, DbConnection, write_transaction};
use crate::errors::{store_error, violated_key};
use crate::schema::{instance_members, org_members, organizations, personal_access_tokens, users};
use crate::stored::{decode_grants, encode_grants};

/// Stored role lists are comma-separated role names.
pub(crate) fn parse_roles(text: &str) -> RoleSet {
    RoleSet::new(
        text.split(',')
            .filter(|name| !name.is_empty())
            .filter_map(|name| {
                let role = Role::parse(name);
                if role.is_none() {
                    tracing::warn!(
                        role = name,
                        "ignoring an unknown role stored in the database"
                    );
                }
                role
            }),
    )
}

pub(crate) fn format_roles(roles: &RoleSet) -> String {
    roles
        .roles()
        .iter()
        .map(|role| role.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

fn corrupt(user_id: &str) -> impl Fn(userd_domain::values::InvalidValue) -> StoreError + '_ {
    move |e| StoreError::corrupt(format!("a membership of user {user_id:?}"), Box::new(e))
}

/// The users whose credentials work at `now` (unix microseconds), as
/// [`userd_domain::user::User::may_authenticate_at`] decides: the stored state, computed
/// by the domain, or a timed lockout that has run out since.
#[diesel::dsl::auto_type]
pub(crate) fn may_authenticate_at(now: i64) -> _ {
    let active: &'static str = UserState::Active.as_str();
    let locked: &'static str = UserState::Locked.as_str();
    users::state
        .eq(active)
        .or(users::state.eq(locked).and(users::locked_until_us.le(now)))
}

type TokenRow = (
    String,
    String,
    Option<i64>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

#[async_trait]
impl Authenticator for Database {
    async fn caller_for_token(
        &self,
        token: &TokenHash,
        now: Timestamp,
    ) -> Result<Option<AuthenticatedToken>, StoreError> {
        let hash = token.as_str().to_owned();
        let now = now.unix_micros();
        self.run(move |conn| {
            // One statement: the token by its unique hash, its user by primary key, and the
            // user's memberships by their indexes (a row per organization membership).
            // Deleted users have no row, so the inner join also refuses their tokens.
            let rows: Vec<TokenRow> = personal_access_tokens::table
                .inner_join(
                    users::table
                        .left_join(instance_members::table)
                        .left_join(org_members::table),
                )
                .filter(personal_access_tokens::token_hash.eq(&hash))
                .filter(personal_access_tokens::revoked_at_us.is_null())
                .filter(
                    personal_access_tokens::expires_at_us
                        .is_null()
                        .or(personal_access_tokens::expires_at_us.gt(now)),
                )
                .filter(may_authenticate_at(now))
                .select((
                    users::id,
                    users::org_id,
                    personal_access_tokens::expires_at_us,
                    personal_access_tokens::ceiling,
                    instance_members::roles.nullable(),
                    org_members::org_id.nullable(),
                    org_members::roles.nullable(),
                ))
                .load(conn)
                .map_err(store_error)?;
            let Some((user_id, org_id, expires_at, ceiling, instance_roles, _, _)) =
                rows.first().cloned()
            else {
                return Ok(None);
            };
            let mut org_roles = BTreeMap::new();
            for (_, _, _, _, _, org, roles) in rows {
                if let (Some(org), Some(roles)) = (org, roles) {
                    org_roles.insert(
                        OrgId::new(org).map_err(corrupt(&user_id))?,
                        parse_roles(&roles),
                    );
                }
            }
            Ok(Some(AuthenticatedToken {
                caller: Caller {
                    user_id: UserId::new(user_id.clone()).map_err(corrupt(&user_id))?,
                    org_id: OrgId::new(org_id).map_err(corrupt(&user_id))?,
                    roles: Memberships {
                        instance: instance_roles
                            .as_deref()
                            .map(parse_roles)
                            .unwrap_or_default(),
                        organizations: org_roles,
                    },
                    ceiling: ceiling.as_deref().map(decode_grants).transpose()?,
                },
                expires_at: expires_at.map(Timestamp::from_unix_micros),
            }))
        })
        .await
    }

    /// Nothing is remembered here; the cache in front of this forgets.
    fn forget_user(&self, _user: &UserId) {}
}

#[async_trait]
impl HealthProbe for Database {
    async fn ping(&self) -> Result<(), StoreError> {
        self.run(|conn| {
            use diesel::connection::SimpleConnection;
            conn.batch_execute("SELECT 1").map_err(store_error)
        })
        .await
    }
}

fn live_user_exists(conn: &mut DbConnection, user: &str) -> Result<bool, StoreError> {
    users::table
        .find(user)
        .select(users::id)
        .first::<String>(conn)
        .optional()
        .map(|found| found.is_some())
        .map_err(store_error)
}

fn times(created: i64, changed: i64) -> RecordTimes {
    RecordTimes {
        created: Timestamp::from_unix_micros(created),
        changed: Timestamp::from_unix_micros(changed),
    }
}

#[async_trait]
impl MembershipRepository for Database {
    async fn memberships_of(&self, user: &UserId) -> Result<Memberships, StoreError> {
        let user = user.to_string();
        self.run(move |conn| {
            let instance: Option<String> = instance_members::table
                .find(&user)
                .select(instance_members::roles)
                .first(conn)
                .optional()
                .map_err(store_error)?;
            let rows: Vec<(String, String)> = org_members::table
                .filter(org_members::user_id.eq(&user))
                .select((org_members::org_id, org_members::roles))
                .load(conn)
                .map_err(store_error)?;
            let mut organizations = BTreeMap::new();
            for (org, roles) in rows {
                organizations.insert(
                    OrgId::new(org).map_err(corrupt(&user))?,
                    parse_roles(&roles),
                );
            }
            Ok(Memberships {
                instance: instance.as_deref().map(parse_roles).unwrap_or_default(),
                organizations,
            })
        })
        .await
    }

    async fn set_org_member(
        &self,
        org: &OrgId,
        user: &UserId,
        roles: &RoleSet,
        at: Timestamp,
    ) -> Result<RecordTimes, StoreError> {
        let (org, user, roles, at) = (
            org.to_string(),
            user.to_string(),
            format_roles(roles),
            at.unix_micros(),
        );
        self.run(move |conn| {
            write_transaction(conn, |conn| {
                let org_exists = organizations::table
                    .find(&org)
                    .select(organizations::id)
                    .first::<String>(conn)
                    .optional()
                    .map_err(store_error)?
                    .is_some();
                if !org_exists {
                    return Err(StoreError::OrganizationNotFound);
                }
                if !live_user_exists(conn, &user)? {
                    return Err(StoreError::UserNotFound);
                }
                let member = org_members::table.find((&org, &user));
                let created: Option<i64> = member
                    .select(org_members::created_at_us)
                    .first(conn)
                    .optional()
                    .map_err(store_error)?;
                match created {
                    Some(created) => {
                        diesel::update(member)
                            .set((
                                org_members::roles.eq(&roles),
                                org_members::changed_at_us.eq(at),
                            ))
                            .execute(conn)
                            .map_err(store_error)?;
                        Ok(times(created, at))
                    }
                    None => {
                        diesel::insert_into(org_members::table)
                            .values((
                                org_members::org_id.eq(&org),
                                org_members::user_id.eq(&user),
                                org_members::roles.eq(&roles),
                                org_members::created_at_us.eq(at),
                                org_members::changed_at_us.eq(at),
                            ))
                            .execute(conn)
                            .map_err(store_error)?;
                        Ok(times(at, at))
                    }
                }
            })
        })
        .await
    }

    async fn remove_org_member(
        &self,
        org: &OrgId,
        user: &UserId,
        at: Timestamp,
    ) -> Result<Option<RecordTimes>, StoreError> {
        let (org, user, at) = (org.to_string(), user.to_string(), at.unix_micros());
        self.run(move |conn| {
            write_transaction(conn, |conn| {
                let member = org_members::table.find((&org, &user));
                let created: Option<i64> = member
                    .select(org_members::created_at_us)
                    .first(conn)
                    .optional()
                    .map_err(store_error)?;
                let Some(created) = created else {
                    return Ok(None);
                };
                diesel::delete(member).execute(conn).map_err(store_error)?;
                Ok(Some(times(created, at)))
            })
        })
        .await
    }

    async fn set_instance_member(
        &self,
        user: &UserId,
        roles: &RoleSet,
        at: Timestamp,
    ) -> Result<RecordTimes, StoreError> {
        let (user, roles, at) = (user.to_string(), format_roles(roles), at.unix_micros());
        self.run(move |conn| {
            write_transaction(conn, |conn| {
                if !live_user_exists(conn, &user)? {
                    return Err(StoreError::UserNotFound);
                }
                let member = instance_members::table.find(&user);
                let created: Option<i64> = member
                    .select(instance_members::created_at_us)
                    .first(conn)
                    .optional()
                    .map_err(store_error)?;
                match created {
                    Some(created) => {
                        diesel::update(member)
                            .set((
                                instance_members::roles.eq(&roles),
                                instance_members::changed_at_us.eq(at),
                            ))
                            .execute(conn)
                            .map_err(store_error)?;
                        Ok(times(created, at))
                    }
                    None => {
                        diesel::insert_into(instance_members::table)
                            .values((
                                instance_members::user_id.eq(&user),
                                instance_members::roles.eq(&roles),
                                instance_members::created_at_us.eq(at),
                                instance_members::changed_at_us.eq(at),
                            ))
                            .execute(conn)
                            .map_err(store_error)?;
                        Ok(times(at, at))
                    }
                }
            })
        })
        .await
    }

    async fn remove_instance_member(
        &self,
        user: &UserId,
        at: Timestamp,
    ) -> Result<Option<RecordTimes>, StoreError> {
        let (user, at) = (user.to_string(), at.unix_micros());
        self.run(move |conn| {
            write_transaction(conn, |conn| {
                let member = instance_members::table.find(&user);
                let created: Option<i64> = member
                    .select(instance_members::created_at_us)
                    .first(conn)
                    .optional()
                    .map_err(store_error)?;
                let Some(created) = created else {
                    return Ok(None);
                };
                diesel::delete(member).execute(conn).map_err(store_error)?;
                Ok(Some(times(created, at)))
            })
        })
        .await
    }
}

#[async_trait]
impl TokenRepository for Database {
    async fn create_token(&self, token: &NewToken) -> Result<(), StoreError> {
        let token = token.clone();
        let ceiling = token.ceiling.as_ref().map(encode_grants).transpose()?;
        self.run(move |conn| {
            diesel::insert_into(personal_access_tokens::table)
                .values((
                    personal_access_tokens::id.eq(&token.id),
                    personal_access_tokens::user_id.eq(token.user_id.as_str()),
                    personal_access_tokens::token_hash.eq(token.hash.as_str()),
                    personal_access_tokens::expires_at_us
                        .eq(token.expires_at.map(Timestamp::unix_micros)),
                    personal_access_tokens::created_at_us.eq(token.created.unix_micros()),
                    personal_access_tokens::issuer_id.eq(token.issuer.as_ref().map(UserId::as_str)),
                    personal_access_tokens::ceiling.eq(ceiling),
                ))
                .execute(conn)
                .map(drop)
                .map_err(|error| match violated_key(&error) {
                    Some(_) => StoreError::Conflict,
                    None => store_error(error),
                })
        })
        .await
    }

    async fn tokens_of(&self, user: &UserId) -> Result<Vec<TokenRecord>, StoreError> {
        let user = user.to_string();
        let rows: Vec<(String, i64, Option<i64>, Option<String>)> = self
            .run(move |conn| {
                personal_access_tokens::table
                    .filter(personal_access_tokens::user_id.eq(&user))
                    .filter(personal_access_tokens::revoked_at_us.is_null())
                    .order((
                        personal_access_tokens::created_at_us,
                        personal_access_tokens::id,
                    ))
                    .select((
                        personal_access_tokens::id,
                        personal_access_tokens::created_at_us,
                        personal_access_tokens::expires_at_us,
                        personal_access_tokens::issuer_id,
                    ))
                    .load(conn)
                    .map_err(store_error)
            })
            .await?;
        rows.into_iter()
            .map(|(id, created, expires, issuer)| {
                Ok(TokenRecord {
                    id,
                    created: Timestamp::from_unix_micros(created),
                    expires_at: expires.map(Timestamp::from_unix_micros),
                    issuer: issuer
                        .map(UserId::new)
                        .transpose()
                        .map_err(|e| StoreError::corrupt("a token's issuer", Box::new(e)))?,
                })
            })
            .collect()
    }

    async fn revoke_token(
        &self,
        user: &UserId,
        token_id: &str,
        at: Timestamp,
    ) -> Result<Option<RecordTimes>, StoreError> {
        let (user, token_id, at) = (user.to_string(), token_id.to_owned(), at.unix_micros());
        self.run(move |conn| {
            write_transaction(conn, |conn| {
                let live = personal_access_tokens::table
                    .filter(personal_access_tokens::id.eq(&token_id))
                    .filter(personal_access_tokens::user_id.eq(&user))
                    .filter(personal_access_tokens::revoked_at_us.is_null());
                let created: Option<i64> = live
                    .select(personal_access_tokens::created_at_us)
                    .first(conn)
                    .optional()
                    .map_err(store_error)?;
                let Some(created) = created else {
                    return Ok(None);
                };
                diesel::update(live)
                    .set(personal_access_tokens::revoked_at_us.eq(at))
                    .execute(conn)
                    .map_err(store_error)?;
                Ok(Some(times(created, at)))
            })
        })
        .await
    }
}
