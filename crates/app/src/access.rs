//! The authorization steps the use cases share, in the order docs/api.md states: a resource the
//! caller has no role for is not found; a role without the permission is denied; acting
//! on a user needs covering every permission that user holds.

use userd_domain::authz::{AccessError, Caller, Permission};
use userd_domain::user::User;
use userd_domain::values::OrgId;
use userd_ports::error::ServiceError;
use userd_ports::service::UserRef;

use crate::UseCases;

/// The answer docs/api.md gives to an access error: invisible is `not_found`, else denied.
pub(crate) fn refuse(error: AccessError, not_found: impl FnOnce() -> ServiceError) -> ServiceError {
    match error {
        AccessError::NotVisible => not_found(),
        AccessError::Denied(permission) => ServiceError::PermissionDenied { permission },
    }
}

/// Denied unless `holds`.
pub(crate) fn require(holds: bool, permission: Permission) -> Result<(), ServiceError> {
    if holds {
        Ok(())
    } else {
        Err(ServiceError::PermissionDenied { permission })
    }
}

/// The caller may do `permission` on anything of `org`; invisible is `not_found`.
pub(crate) fn authorize_in(
    caller: &Caller,
    org: &OrgId,
    permission: Permission,
    not_found: impl FnOnce() -> ServiceError,
) -> Result<(), ServiceError> {
    caller
        .authorize(org, permission)
        .map_err(|error| refuse(error, not_found))
}

impl UseCases {
    /// Loads a live user the caller may act on with `permission`.
    pub(crate) async fn load_authorized(
        &self,
        caller: &Caller,
        target: &UserRef,
        permission: Permission,
    ) -> Result<User, ServiceError> {
        let not_found = || ServiceError::UserNotFound {
            user_id: target.id.to_string(),
        };
        let user = self
            .ports
            .users
            .find(&target.id)
            .await?
            .filter(|user| !user.is_deleted())
            .ok_or_else(not_found)?;
        if target
            .expected_org
            .as_ref()
            .is_some_and(|org| *org != user.org_id)
        {
            return Err(not_found());
        }
        authorize_in(caller, &user.org_id, permission, not_found)?;
        Ok(user)
    }

    /// Writing to a user (or managing its tokens) needs holding every permission the user
    /// holds, so nobody acts on someone above them. Acting on oneself is allowed.
    pub(crate) async fn ensure_covers(
        &self,
        caller: &Caller,
        user: &User,
    ) -> Result<(), ServiceError> {
        // Nothing to look up when the answer cannot be no.
        if caller.user_id == user.id || caller.holds_everything() {
            return Ok(());
        }
        let held = self.ports.members.memberships_of(&user.id).await?;
        if caller.covers(&held.grants()) {
            Ok(())
        } else {
            Err(ServiceError::PrivilegeEscalation(
                "the caller does not hold every permission of this user",
            ))
        }
    }
}
