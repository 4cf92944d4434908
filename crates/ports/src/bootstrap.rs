//! The driven port of the first start: an empty database gets an organization, an admin
//! user who is `IAM_OWNER`, and a token for that admin.

use async_trait::async_trait;
use userd_domain::Timestamp;
use userd_domain::user::{User, UserEvent};
use userd_domain::values::OrgId;

use crate::error::StoreError;
use crate::tokens::TokenHash;

/// Everything the first start writes, in one transaction.
#[derive(Debug, Clone)]
pub struct BootstrapPlan {
    pub instance_id: String,
    pub org_id: OrgId,
    pub org_name: String,
    pub admin: User,
    pub admin_created: UserEvent,
    pub token_id: String,
    pub token_hash: TokenHash,
    pub at: Timestamp,
}

#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait BootstrapStore: Send + Sync {
    /// Whether no organization exists yet (a cheap check before preparing anything).
    async fn is_empty(&self) -> Result<bool, StoreError>;

    /// Writes the plan if, and only if, the database holds no organization yet. Returns
    /// whether it wrote. Safe against several processes starting at once.
    async fn bootstrap_if_empty(&self, plan: &BootstrapPlan) -> Result<bool, StoreError>;

    /// The id of this instance, recording `candidate` when none is recorded yet.
    async fn instance_id(&self, candidate: &str) -> Result<String, StoreError>;
}
