//! Login sessions (ZITADEL's v2 SessionService) as stored.

use async_trait::async_trait;
use userd_domain::Timestamp;
use userd_domain::values::{OrgId, UserId};

use crate::error::StoreError;
use crate::tokens::TokenHash;

/// One session: whose, since when, what was checked, and the hash of its current token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRecord {
    pub id: String,
    pub user_id: UserId,
    pub org_id: OrgId,
    /// The name the user was identified by (a username), or its id when none.
    pub login_name: String,
    pub token_hash: TokenHash,
    pub created: Timestamp,
    pub changed: Timestamp,
    pub expires_at: Option<Timestamp>,
    pub user_verified_at: Timestamp,
    pub password_verified_at: Option<Timestamp>,
}

#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait SessionRepository: Send + Sync {
    async fn create_session(&self, session: &SessionRecord) -> Result<(), StoreError>;

    async fn find_session(&self, id: &str) -> Result<Option<SessionRecord>, StoreError>;

    /// Replaces a session that still exists and was last changed at `changed_before`
    /// (optimistic: a concurrent change wins, the answer is then false).
    async fn update_session(
        &self,
        session: &SessionRecord,
        changed_before: Timestamp,
    ) -> Result<bool, StoreError>;

    /// False when there was no such session.
    async fn delete_session(&self, id: &str) -> Result<bool, StoreError>;

    /// Deletes the sessions that can never count again: expired before `expired_before`,
    /// or begun before their user's `sessions_valid_from` (locked, deactivated or given a
    /// new password since); how many.
    async fn purge_ended(&self, expired_before: Timestamp) -> Result<u64, StoreError>;
}
