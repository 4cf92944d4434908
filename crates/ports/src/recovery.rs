//! The driven port of regaining administrator access when every admin token is lost
//! (run by an operator against the database, with no caller to authenticate).

use async_trait::async_trait;
use userd_domain::values::{OrgId, UserId};

use crate::error::StoreError;

#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait RecoveryStore: Send + Sync {
    /// The longest-standing `IAM_OWNER` whose tokens would work at `now` (active, not
    /// locked).
    async fn usable_instance_owner(
        &self,
        now: userd_domain::Timestamp,
    ) -> Result<Option<UserId>, StoreError>;
    /// The oldest organization, home of a new admin when none is left.
    async fn first_organization(&self) -> Result<Option<OrgId>, StoreError>;
}
