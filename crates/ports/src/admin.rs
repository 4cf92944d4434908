//! The driving port of administration ([`AdminService`]): organizations, memberships and
//! personal access tokens.

use async_trait::async_trait;
use userd_domain::Timestamp;
use userd_domain::authz::{Caller, Role};
use userd_domain::values::{OrgId, UserId};

use crate::error::ServiceError;
use crate::repository::TokenRecord;
use crate::service::{ResourceDetails, UserRef};
use crate::tokens::TokenSecret;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrganizationView {
    pub details: ResourceDetails,
    pub name: String,
}

/// A new token, shown to the client once.
#[derive(Clone, Debug)]
pub struct IssuedToken {
    pub details: ResourceDetails,
    pub token_id: String,
    pub token: TokenSecret,
}

#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait AdminService: Send + Sync {
    /// Needs `IAM_OWNER`.
    async fn create_organization(
        &self,
        caller: &Caller,
        name: &str,
    ) -> Result<ResourceDetails, ServiceError>;

    /// Needs a role in the organization (or on the instance).
    async fn get_organization(
        &self,
        caller: &Caller,
        org: &OrgId,
    ) -> Result<OrganizationView, ServiceError>;

    /// Gives `user` exactly `roles` in `org`. Needs `ORG_OWNER` there (or `IAM_OWNER`).
    async fn set_org_member(
        &self,
        caller: &Caller,
        org: &OrgId,
        user: &UserId,
        roles: &[Role],
    ) -> Result<ResourceDetails, ServiceError>;

    async fn remove_org_member(
        &self,
        caller: &Caller,
        org: &OrgId,
        user: &UserId,
    ) -> Result<ResourceDetails, ServiceError>;

    /// Gives `user` exactly `roles` on the instance. Needs `IAM_OWNER`.
    async fn set_instance_member(
        &self,
        caller: &Caller,
        user: &UserId,
        roles: &[Role],
    ) -> Result<ResourceDetails, ServiceError>;

    /// Ends every instance role of `user`. Needs `IAM_OWNER`.
    async fn remove_instance_member(
        &self,
        caller: &Caller,
        user: &UserId,
    ) -> Result<ResourceDetails, ServiceError>;

    /// Needs `ORG_OWNER` of the user's organization (or `IAM_OWNER`), and every
    /// permission the user holds.
    async fn create_token(
        &self,
        caller: &Caller,
        target: &UserRef,
        expires_at: Option<Timestamp>,
    ) -> Result<IssuedToken, ServiceError>;

    /// The user's tokens that are not revoked. Needs what issuing one needs.
    async fn list_tokens(
        &self,
        caller: &Caller,
        target: &UserRef,
    ) -> Result<Vec<TokenRecord>, ServiceError>;

    async fn revoke_token(
        &self,
        caller: &Caller,
        target: &UserRef,
        token_id: &str,
    ) -> Result<ResourceDetails, ServiceError>;
}
