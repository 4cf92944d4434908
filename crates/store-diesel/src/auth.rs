//! Token authentication against the tables.

use std::collections::BTreeMap;

use async_trait::async_trait;
use diesel::prelude::*;
use userd_domain::Timestamp;
use userd_domain::authz::{Caller, Role, RoleSet};
use userd_domain::values::{OrgId, UserId};
use userd_ports::error::StoreError;
use userd_ports::repository::{Authorizer, HealthProbe};
use userd_ports::tokens::TokenHash;

use crate::connection::Database;
use crate::errors::store_error;
use crate::schema::{instance_members, org_members, personal_access_tokens, users};

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

#[async_trait]
impl Authorizer for Database {
    async fn caller_for_token(
        &self,
        token: &TokenHash,
        now: Timestamp,
    ) -> Result<Option<Caller>, StoreError> {
        let hash = token.as_str().to_owned();
        let now = now.unix_micros();
        self.run(move |conn| {
            // Deleted users have no row, so the join also refuses their tokens.
            let holder: Option<(String, String)> = personal_access_tokens::table
                .inner_join(users::table)
                .filter(personal_access_tokens::token_hash.eq(&hash))
                .filter(personal_access_tokens::revoked_at_us.is_null())
                .filter(
                    personal_access_tokens::expires_at_us
                        .is_null()
                        .or(personal_access_tokens::expires_at_us.gt(now)),
                )
                .filter(users::lifecycle.eq("ACTIVE"))
                .filter(users::locked.eq(false))
                .select((users::id, users::org_id))
                .first(conn)
                .optional()
                .map_err(store_error)?;
            let Some((user_id, org_id)) = holder else {
                return Ok(None);
            };
            let instance_roles: Option<String> = instance_members::table
                .find(&user_id)
                .select(instance_members::roles)
                .first(conn)
                .optional()
                .map_err(store_error)?;
            let memberships: Vec<(String, String)> = org_members::table
                .filter(org_members::user_id.eq(&user_id))
                .select((org_members::org_id, org_members::roles))
                .load(conn)
                .map_err(store_error)?;
            let corrupt = |e: userd_domain::values::InvalidValue| {
                StoreError::internal(format!("corrupt membership of {user_id}: {e}"))
            };
            let mut org_roles = BTreeMap::new();
            for (org, roles) in memberships {
                org_roles.insert(OrgId::new(org).map_err(corrupt)?, parse_roles(&roles));
            }
            Ok(Some(Caller {
                user_id: UserId::new(user_id.clone()).map_err(corrupt)?,
                org_id: OrgId::new(org_id).map_err(corrupt)?,
                instance_roles: instance_roles
                    .as_deref()
                    .map(parse_roles)
                    .unwrap_or_default(),
                org_roles,
            }))
        })
        .await
    }
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
