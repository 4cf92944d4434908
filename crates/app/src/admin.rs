//! The administration use cases: [`AdminService`] implemented by [`UseCases`].
//!
//! No path escalates privilege: a role is only granted, and a token only issued for a
//! user, by a caller who already holds every permission the grant or the token carries
//! ([`Caller::covers`]).

use std::collections::BTreeMap;

use async_trait::async_trait;
use userd_domain::Timestamp;
use userd_domain::authz::{Caller, Grants, Permission, Role, RoleScope, RoleSet};
use userd_domain::values::{OrgId, OrganizationName, UserId};
use userd_ports::admin::{AdminService, IssuedToken, OrganizationView};
use userd_ports::error::{ServiceError, StoreError};
use userd_ports::repository::{NewToken, Organization, RecordTimes, TokenRecord};
use userd_ports::service::{Owner, OwnerType, ResourceDetails, UserRef};

use crate::UseCases;
use crate::access::require;
use crate::fresh_ids::FreshIdAttempts;
use crate::tokens::generate_token;

const ESCALATION: &str = "the caller does not hold every permission this would grant";

fn check_roles(roles: &[Role], scope: RoleScope) -> Result<RoleSet, ServiceError> {
    let invalid = |message: String| ServiceError::InvalidArgument {
        reason: "INVALID_ROLE",
        message,
        field: Some("roles".to_owned()),
    };
    if roles.is_empty() {
        return Err(invalid("at least one role is required".to_owned()));
    }
    if let Some(role) = roles.iter().find(|role| role.scope() != scope) {
        let place = match scope {
            RoleScope::Instance => "on the instance",
            RoleScope::Organization => "in an organization",
        };
        return Err(invalid(format!("the role {role} cannot be held {place}")));
    }
    Ok(RoleSet::new(roles.iter().copied()))
}

fn member_details(user: &UserId, owner: Owner, times: RecordTimes) -> ResourceDetails {
    ResourceDetails {
        id: user.to_string(),
        created: times.created,
        changed: times.changed,
        owner,
        sequence: 0,
    }
}

fn org_owner(org: &OrgId) -> Owner {
    Owner {
        kind: OwnerType::Organization,
        id: org.to_string(),
    }
}

impl UseCases {
    fn instance_owner(&self) -> Owner {
        Owner {
            kind: OwnerType::Instance,
            id: self.ports.instance_id.clone(),
        }
    }

    /// An organization the caller has a role in (or on the instance), that exists.
    pub(crate) async fn visible_organization(
        &self,
        caller: &Caller,
        org: &OrgId,
    ) -> Result<Organization, ServiceError> {
        let not_found = || ServiceError::OrganizationNotFound {
            org_id: org.to_string(),
        };
        if !caller.sees(org) {
            return Err(not_found());
        }
        self.ports
            .organizations
            .find_organization(org)
            .await?
            .ok_or_else(not_found)
    }

    /// The caller may add and remove members of `org`, which exists.
    async fn authorize_member_management(
        &self,
        caller: &Caller,
        org: &OrgId,
    ) -> Result<(), ServiceError> {
        self.visible_organization(caller, org).await?;
        require(
            caller.permissions_in(org).contains(Permission::MemberWrite),
            Permission::MemberWrite,
        )
    }

    /// A live user the caller may read, else not found: nobody learns through the
    /// members routes which ids exist where they cannot look.
    async fn visible_user(&self, caller: &Caller, user: &UserId) -> Result<(), ServiceError> {
        self.load_authorized(caller, &UserRef::new(user.clone()), Permission::UserRead)
            .await
            .map(drop)
            .map_err(|error| match error {
                ServiceError::PermissionDenied { .. } => ServiceError::UserNotFound {
                    user_id: user.to_string(),
                },
                other => other,
            })
    }

    /// The user's organization after checking the caller may manage the user's tokens
    /// and holds everything the user holds.
    async fn authorize_token_management(
        &self,
        caller: &Caller,
        target: &UserRef,
    ) -> Result<OrgId, ServiceError> {
        let user = self
            .load_authorized(caller, target, Permission::TokenWrite)
            .await?;
        self.ensure_covers(caller, &user).await?;
        Ok(user.org_id)
    }
}

fn require_instance(caller: &Caller) -> Result<(), ServiceError> {
    require(
        caller
            .instance_permissions()
            .contains(Permission::InstanceWrite),
        Permission::InstanceWrite,
    )
}

fn not_found_member(error: StoreError, org: &OrgId, user: &UserId) -> ServiceError {
    match error {
        StoreError::UserNotFound => ServiceError::UserNotFound {
            user_id: user.to_string(),
        },
        StoreError::OrganizationNotFound => ServiceError::OrganizationNotFound {
            org_id: org.to_string(),
        },
        other => other.into(),
    }
}

#[async_trait]
impl AdminService for UseCases {
    async fn create_organization(
        &self,
        caller: &Caller,
        name: &str,
    ) -> Result<ResourceDetails, ServiceError> {
        require_instance(caller)?;
        let name =
            OrganizationName::new(name).map_err(|e| ServiceError::invalid_field("name", e))?;
        let now = self.ports.clock.now();
        let mut attempts = FreshIdAttempts::new("organization", 4);
        loop {
            attempts.start()?;
            let organization = Organization {
                id: OrgId::new(self.ports.ids.next_id())
                    .map_err(|e| ServiceError::Internal(Box::new(e)))?,
                name: name.as_str().to_owned(),
                created: now,
                changed: now,
            };
            return match self
                .ports
                .organizations
                .create_organization(&organization)
                .await
            {
                Ok(()) => Ok(ResourceDetails {
                    id: organization.id.to_string(),
                    created: now,
                    changed: now,
                    owner: self.instance_owner(),
                    sequence: 0,
                }),
                Err(StoreError::Conflict) => continue,
                Err(other) => Err(other.into()),
            };
        }
    }

    async fn get_organization(
        &self,
        caller: &Caller,
        org: &OrgId,
    ) -> Result<OrganizationView, ServiceError> {
        let organization = self.visible_organization(caller, org).await?;
        Ok(OrganizationView {
            details: ResourceDetails {
                id: organization.id.to_string(),
                created: organization.created,
                changed: organization.changed,
                owner: self.instance_owner(),
                sequence: 0,
            },
            name: organization.name,
        })
    }

    async fn set_org_member(
        &self,
        caller: &Caller,
        org: &OrgId,
        user: &UserId,
        roles: &[Role],
    ) -> Result<ResourceDetails, ServiceError> {
        let roles = check_roles(roles, RoleScope::Organization)?;
        self.authorize_member_management(caller, org).await?;
        self.visible_user(caller, user).await?;
        let grant = Grants {
            instance: Default::default(),
            organizations: BTreeMap::from([(org.clone(), roles.permissions())]),
        };
        if !caller.covers(&grant) {
            return Err(ServiceError::PrivilegeEscalation(ESCALATION));
        }
        let times = self
            .ports
            .members
            .set_org_member(org, user, &roles, self.ports.clock.now())
            .await
            .map_err(|e| not_found_member(e, org, user))?;
        self.ports.authenticator.forget_user(user);
        Ok(member_details(user, org_owner(org), times))
    }

    async fn remove_org_member(
        &self,
        caller: &Caller,
        org: &OrgId,
        user: &UserId,
    ) -> Result<ResourceDetails, ServiceError> {
        self.authorize_member_management(caller, org).await?;
        let times = self
            .ports
            .members
            .remove_org_member(org, user, self.ports.clock.now())
            .await?
            .ok_or_else(|| ServiceError::MemberNotFound {
                org_id: Some(org.to_string()),
                user_id: user.to_string(),
            })?;
        self.ports.authenticator.forget_user(user);
        Ok(member_details(user, org_owner(org), times))
    }

    async fn set_instance_member(
        &self,
        caller: &Caller,
        user: &UserId,
        roles: &[Role],
    ) -> Result<ResourceDetails, ServiceError> {
        require_instance(caller)?;
        let roles = check_roles(roles, RoleScope::Instance)?;
        let grant = Grants {
            instance: roles.permissions(),
            organizations: BTreeMap::new(),
        };
        if !caller.covers(&grant) {
            return Err(ServiceError::PrivilegeEscalation(ESCALATION));
        }
        let times = self
            .ports
            .members
            .set_instance_member(user, &roles, self.ports.clock.now())
            .await
            .map_err(|error| match error {
                StoreError::UserNotFound => ServiceError::UserNotFound {
                    user_id: user.to_string(),
                },
                other => other.into(),
            })?;
        self.ports.authenticator.forget_user(user);
        Ok(member_details(user, self.instance_owner(), times))
    }

    async fn remove_instance_member(
        &self,
        caller: &Caller,
        user: &UserId,
    ) -> Result<ResourceDetails, ServiceError> {
        require_instance(caller)?;
        let times = self
            .ports
            .members
            .remove_instance_member(user, self.ports.clock.now())
            .await?
            .ok_or_else(|| ServiceError::MemberNotFound {
                org_id: None,
                user_id: user.to_string(),
            })?;
        self.ports.authenticator.forget_user(user);
        Ok(member_details(user, self.instance_owner(), times))
    }

    async fn create_token(
        &self,
        caller: &Caller,
        target: &UserRef,
        expires_at: Option<Timestamp>,
    ) -> Result<IssuedToken, ServiceError> {
        let org = self.authorize_token_management(caller, target).await?;
        let now = self.ports.clock.now();
        if expires_at.is_some_and(|at| at <= now) {
            return Err(ServiceError::InvalidArgument {
                reason: "EXPIRATION_IN_PAST",
                message: "expirationDate must be in the future".to_owned(),
                field: Some("expirationDate".to_owned()),
            });
        }
        let (token, hash) = generate_token().map_err(|e| ServiceError::Internal(Box::new(e)))?;
        // A token made by someone else carries at most what its issuer holds now; one
        // made for oneself keeps the ceiling the issuing token is under, if any.
        let ceiling = if caller.user_id == target.id {
            caller.ceiling.clone()
        } else {
            Some(caller.grants())
        };
        let record = NewToken {
            id: self.ports.ids.next_id(),
            user_id: target.id.clone(),
            hash,
            expires_at,
            created: now,
            issuer: Some(caller.user_id.clone()),
            ceiling,
        };
        self.ports.tokens.create_token(&record).await?;
        Ok(IssuedToken {
            details: ResourceDetails {
                id: record.id.clone(),
                created: now,
                changed: now,
                owner: org_owner(&org),
                sequence: 0,
            },
            token_id: record.id,
            token,
        })
    }

    async fn list_tokens(
        &self,
        caller: &Caller,
        target: &UserRef,
    ) -> Result<Vec<TokenRecord>, ServiceError> {
        self.authorize_token_management(caller, target).await?;
        Ok(self.ports.tokens.tokens_of(&target.id).await?)
    }

    async fn revoke_token(
        &self,
        caller: &Caller,
        target: &UserRef,
        token_id: &str,
    ) -> Result<ResourceDetails, ServiceError> {
        let org = self.authorize_token_management(caller, target).await?;
        let times = self
            .ports
            .tokens
            .revoke_token(&target.id, token_id, self.ports.clock.now())
            .await?
            .ok_or_else(|| ServiceError::TokenNotFound {
                token_id: token_id.to_owned(),
            })?;
        self.ports.authenticator.forget_user(&target.id);
        Ok(ResourceDetails {
            id: token_id.to_owned(),
            created: times.created,
            changed: times.changed,
            owner: org_owner(&org),
            sequence: 0,
        })
    }
}

#[cfg(test)]
mod tests;
