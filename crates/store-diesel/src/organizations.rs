use async_trait::async_trait;
use diesel::prelude::*;
use userd_domain::Timestamp;
use userd_domain::user::UserEvent;
use userd_domain::values::{OrgId, UserId};
use userd_ports::error::StoreError;
use userd_ports::repository::{EventLog, Organization, OrganizationRepository};

use crate::connection::Database;
use crate::errors::{store_error, violated_key};
use crate::projection::{EventRow, USER_AGGREGATE};
use crate::schema::{events, organizations};

#[async_trait]
impl OrganizationRepository for Database {
    async fn create_organization(&self, organization: &Organization) -> Result<(), StoreError> {
        let organization = organization.clone();
        self.run(move |conn| {
            diesel::insert_into(organizations::table)
                .values((
                    organizations::id.eq(organization.id.as_str()),
                    organizations::name.eq(&organization.name),
                    organizations::created_at_us.eq(organization.created.unix_micros()),
                    organizations::changed_at_us.eq(organization.changed.unix_micros()),
                ))
                .execute(conn)
                .map(|_| ())
                .map_err(|error| match violated_key(&error) {
                    Some(_) => StoreError::Conflict,
                    None => store_error(error),
                })
        })
        .await
    }

    async fn find_organization(&self, id: &OrgId) -> Result<Option<Organization>, StoreError> {
        let id = id.clone();
        self.run(move |conn| {
            let row: Option<(String, i64, i64)> = organizations::table
                .find(id.as_str())
                .select((
                    organizations::name,
                    organizations::created_at_us,
                    organizations::changed_at_us,
                ))
                .first(conn)
                .optional()
                .map_err(store_error)?;
            Ok(row.map(|(name, created, changed)| Organization {
                id,
                name,
                created: Timestamp::from_unix_micros(created),
                changed: Timestamp::from_unix_micros(changed),
            }))
        })
        .await
    }
}

#[async_trait]
impl EventLog for Database {
    async fn user_events(&self, id: &UserId) -> Result<Vec<UserEvent>, StoreError> {
        let id = id.to_string();
        let rows: Vec<EventRow> = self
            .run(move |conn| {
                events::table
                    .filter(events::aggregate_type.eq(USER_AGGREGATE))
                    .filter(events::aggregate_id.eq(id))
                    .order(events::sequence)
                    .select(EventRow::as_select())
                    .load(conn)
                    .map_err(store_error)
            })
            .await?;
        rows.into_iter().map(EventRow::into_event).collect()
    }
}
