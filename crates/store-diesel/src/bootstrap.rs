use async_trait::async_trait;
use diesel::prelude::*;
use userd_domain::Timestamp;
use userd_domain::authz::{Role, RoleSet};
use userd_domain::values::{OrgId, UserId};
use userd_ports::bootstrap::{BootstrapPlan, BootstrapStore};
use userd_ports::error::StoreError;
use userd_ports::recovery::RecoveryStore;

use crate::auth::{format_roles, may_authenticate_at};
use crate::connection::{Database, DbConnection, write_transaction};
use crate::errors::store_error;
use crate::schema::{instance, instance_members, organizations, personal_access_tokens, users};
use crate::users::UserWrite;

/// Serializes the first start of several processes on one PostgreSQL database.
const BOOTSTRAP_LOCK: i64 = 0x7573_6572_645f_6273; // "userd_bs"

#[async_trait]
impl BootstrapStore for Database {
    async fn is_empty(&self) -> Result<bool, StoreError> {
        self.run(|conn| {
            let count: i64 = organizations::table
                .count()
                .get_result(conn)
                .map_err(store_error)?;
            Ok(count == 0)
        })
        .await
    }

    async fn instance_id(&self, candidate: &str) -> Result<String, StoreError> {
        let candidate = candidate.to_owned();
        self.run(move |conn| {
            write_transaction(conn, |conn| {
                lock_bootstrap(conn)?;
                record_instance(conn, &candidate, 0)
            })
        })
        .await
    }

    async fn bootstrap_if_empty(&self, plan: &BootstrapPlan) -> Result<bool, StoreError> {
        let plan = plan.clone();
        self.run(move |conn| write_transaction(conn, |conn| bootstrap(conn, &plan)))
            .await
    }
}

fn lock_bootstrap(conn: &mut DbConnection) -> Result<(), StoreError> {
    if let DbConnection::Postgres(pg) = conn {
        diesel::sql_query(format!("SELECT pg_advisory_xact_lock({BOOTSTRAP_LOCK})"))
            .execute(pg)
            .map_err(store_error)?;
    }
    Ok(())
}

/// The recorded instance id, or `candidate` after recording it.
fn record_instance(
    conn: &mut DbConnection,
    candidate: &str,
    at: i64,
) -> Result<String, StoreError> {
    let recorded: Option<String> = instance::table
        .select(instance::id)
        .first(conn)
        .optional()
        .map_err(store_error)?;
    if let Some(id) = recorded {
        return Ok(id);
    }
    diesel::insert_into(instance::table)
        .values((instance::id.eq(candidate), instance::created_at_us.eq(at)))
        .execute(conn)
        .map_err(store_error)?;
    Ok(candidate.to_owned())
}

fn bootstrap(conn: &mut DbConnection, plan: &BootstrapPlan) -> Result<bool, StoreError> {
    lock_bootstrap(conn)?;
    let organizations_present: i64 = organizations::table
        .count()
        .get_result(conn)
        .map_err(store_error)?;
    if organizations_present > 0 {
        return Ok(false);
    }
    let at = plan.at.unix_micros();
    record_instance(conn, &plan.instance_id, at)?;
    diesel::insert_into(organizations::table)
        .values((
            organizations::id.eq(plan.org_id.as_str()),
            organizations::name.eq(&plan.org_name),
            organizations::created_at_us.eq(at),
            organizations::changed_at_us.eq(at),
        ))
        .execute(conn)
        .map_err(store_error)?;
    UserWrite::new(&plan.admin, &plan.admin_created)?.apply(conn)?;
    diesel::insert_into(instance_members::table)
        .values((
            instance_members::user_id.eq(plan.admin.id.as_str()),
            instance_members::roles.eq(format_roles(&RoleSet::new([Role::IamOwner]))),
            instance_members::created_at_us.eq(at),
            instance_members::changed_at_us.eq(at),
        ))
        .execute(conn)
        .map_err(store_error)?;
    diesel::insert_into(personal_access_tokens::table)
        .values((
            personal_access_tokens::id.eq(&plan.token_id),
            personal_access_tokens::user_id.eq(plan.admin.id.as_str()),
            personal_access_tokens::token_hash.eq(plan.token_hash.as_str()),
            personal_access_tokens::created_at_us.eq(at),
        ))
        .execute(conn)
        .map_err(store_error)?;
    Ok(true)
}

#[async_trait]
impl RecoveryStore for Database {
    async fn usable_instance_owner(&self, now: Timestamp) -> Result<Option<UserId>, StoreError> {
        let now = now.unix_micros();
        let found: Option<String> = self
            .run(move |conn| {
                instance_members::table
                    .inner_join(users::table)
                    // Role lists are comma-separated names; no other role name contains
                    // this one.
                    .filter(instance_members::roles.like("%IAM_OWNER%"))
                    .filter(may_authenticate_at(now))
                    .order((users::created_at_us, users::id))
                    .select(users::id)
                    .first(conn)
                    .optional()
                    .map_err(store_error)
            })
            .await?;
        found
            .map(|id| UserId::new(id).map_err(|e| StoreError::corrupt("a user id", Box::new(e))))
            .transpose()
    }

    async fn first_organization(&self) -> Result<Option<OrgId>, StoreError> {
        let found: Option<String> = self
            .run(|conn| {
                organizations::table
                    .order((organizations::created_at_us, organizations::id))
                    .select(organizations::id)
                    .first(conn)
                    .optional()
                    .map_err(store_error)
            })
            .await?;
        found
            .map(|id| {
                OrgId::new(id).map_err(|e| StoreError::corrupt("an organization id", Box::new(e)))
            })
            .transpose()
    }
}
