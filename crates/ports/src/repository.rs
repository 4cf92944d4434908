//! The driven storage ports.

use async_trait::async_trait;
use userd_domain::Timestamp;
use userd_domain::authz::{Caller, Grants, Memberships, RoleSet};
use userd_domain::user::{User, UserEvent};
use userd_domain::values::{OrgId, UserId};

pub use crate::error::StoreError;
use crate::search::{UserPage, UserQuery};
use crate::tokens::TokenHash;

/// Users: an append-only event log plus the current state of every live user.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait UserRepository: Send + Sync {
    /// The current state of a live user; `None` for an unknown or deleted id.
    async fn find(&self, id: &UserId) -> Result<Option<User>, StoreError>;

    /// Appends `event` and writes `state`, the state it leads to, in one transaction.
    ///
    /// The event's sequence must directly follow the stored one, else nothing is written
    /// and the answer is [`StoreError::Conflict`] (another writer was first). A first event
    /// (sequence 1) for an id that already has events is [`StoreError::UserIdTaken`]; a
    /// username that clashes with a live user's is [`StoreError::UsernameTaken`]; an owner
    /// organization that does not exist is [`StoreError::OrganizationNotFound`].
    async fn append(&self, state: &User, event: &UserEvent) -> Result<(), StoreError>;

    /// Appends consecutive `events` and writes `state`, where the last one leads, in one
    /// transaction: all or nothing, under the same rules as [`UserRepository::append`].
    /// For the few changes that are several events at once (a password check that ends
    /// an expired lockout, counts a failure and locks).
    async fn append_all(&self, state: &User, events: &[UserEvent]) -> Result<(), StoreError>;

    /// Like [`UserRepository::append_all`], and stores `messages` in the outbox in the
    /// same transaction: a message exists exactly when the events that cause it do.
    async fn append_notifying(
        &self,
        state: &User,
        events: &[UserEvent],
        messages: &[crate::notify::OutboundMessage],
    ) -> Result<(), StoreError>;

    /// The live users a login name names: those with a username whose comparison key
    /// ([`userd_domain::values::username_key`]) is `name_key` and that is not
    /// organization-specific, or is specific to `org`. At most two are returned (the
    /// username rules allow one; two mean the rules were broken).
    async fn find_by_login_name(
        &self,
        name_key: &str,
        org: Option<OrgId>,
    ) -> Result<Vec<User>, StoreError>;

    /// One page of the live users matching `query`, and how many match in all.
    async fn search(&self, query: &UserQuery) -> Result<UserPage, StoreError>;
}

/// A token that authenticated, and the caller it stands for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthenticatedToken {
    pub caller: Caller,
    /// When the token stops working by itself.
    pub expires_at: Option<Timestamp>,
}

/// Resolves credentials to callers.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait Authenticator: Send + Sync {
    /// The caller a token stands for, with all its roles; `None` when the token is
    /// unknown, revoked, expired at `now`, or its user is deleted, inactive or locked.
    async fn caller_for_token(
        &self,
        token: &TokenHash,
        now: Timestamp,
    ) -> Result<Option<AuthenticatedToken>, StoreError>;

    /// Drops anything remembered about the tokens of `user`, whose standing just changed
    /// (locked, deactivated, deleted, roles or tokens changed).
    fn forget_user(&self, user: &UserId);
}

/// Whether the storage answers.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait HealthProbe: Send + Sync {
    async fn ping(&self) -> Result<(), StoreError>;
}

/// When a membership or a token was made and last changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordTimes {
    pub created: Timestamp,
    pub changed: Timestamp,
}

/// Roles held by users, on the instance and in organizations.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait MembershipRepository: Send + Sync {
    async fn memberships_of(&self, user: &UserId) -> Result<Memberships, StoreError>;

    /// Gives `user` exactly `roles` in `org`, creating the membership if needed. An unknown
    /// (or deleted) user is [`StoreError::UserNotFound`]; an unknown organization
    /// [`StoreError::OrganizationNotFound`].
    async fn set_org_member(
        &self,
        org: &OrgId,
        user: &UserId,
        roles: &RoleSet,
        at: Timestamp,
    ) -> Result<RecordTimes, StoreError>;

    /// Ends a membership; `None` when there was none.
    async fn remove_org_member(
        &self,
        org: &OrgId,
        user: &UserId,
        at: Timestamp,
    ) -> Result<Option<RecordTimes>, StoreError>;

    async fn set_instance_member(
        &self,
        user: &UserId,
        roles: &RoleSet,
        at: Timestamp,
    ) -> Result<RecordTimes, StoreError>;

    /// Ends a user's instance roles; `None` when it held none.
    async fn remove_instance_member(
        &self,
        user: &UserId,
        at: Timestamp,
    ) -> Result<Option<RecordTimes>, StoreError>;
}

/// A personal access token to be stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewToken {
    pub id: String,
    pub user_id: UserId,
    pub hash: TokenHash,
    pub expires_at: Option<Timestamp>,
    pub created: Timestamp,
    /// Who issued it; `None` when userd itself did (first start, recovery).
    pub issuer: Option<UserId>,
    /// The most the token may ever carry (see [`Caller::ceiling`]); `None` when it acts
    /// with its user's roles alone.
    pub ceiling: Option<Grants>,
}

/// A token as listed: never its secret nor its hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRecord {
    pub id: String,
    pub created: Timestamp,
    pub expires_at: Option<Timestamp>,
    pub issuer: Option<UserId>,
}

#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait TokenRepository: Send + Sync {
    async fn create_token(&self, token: &NewToken) -> Result<(), StoreError>;

    /// The tokens of `user` that are not revoked (expired ones included), oldest first.
    async fn tokens_of(&self, user: &UserId) -> Result<Vec<TokenRecord>, StoreError>;

    /// Revokes a token of `user` that is not revoked yet; `None` when there is none.
    async fn revoke_token(
        &self,
        user: &UserId,
        token_id: &str,
        at: Timestamp,
    ) -> Result<Option<RecordTimes>, StoreError>;
}

/// An organization: the owner of users.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Organization {
    pub id: userd_domain::values::OrgId,
    pub name: String,
    pub created: Timestamp,
    pub changed: Timestamp,
}

#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait OrganizationRepository: Send + Sync {
    async fn create_organization(&self, organization: &Organization) -> Result<(), StoreError>;
    async fn find_organization(
        &self,
        id: &userd_domain::values::OrgId,
    ) -> Result<Option<Organization>, StoreError>;
}

/// Reading the event log, for audits and tests.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait EventLog: Send + Sync {
    /// Every event of a user, deleted or not, in order.
    async fn user_events(&self, id: &UserId) -> Result<Vec<UserEvent>, StoreError>;
}
