//! The authorization steps the use cases share, in the contract's order.

use userd_domain::authz::{AccessError, Caller, Permission};
use userd_domain::user::User;
use userd_ports::error::ServiceError;
use userd_ports::service::UserRef;

use crate::UseCases;

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
        match caller.authorize(&user.org_id, permission) {
            Ok(()) => Ok(user),
            Err(AccessError::NotVisible) => Err(not_found()),
            Err(AccessError::Denied(permission)) => {
                Err(ServiceError::PermissionDenied { permission })
            }
        }
    }
}
