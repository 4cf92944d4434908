//! `zitadel.settings.v2.SettingsService`: the settings that govern passwords and lockout,
//! read through the login use cases.

use std::sync::Arc;

use buffa::{EnumValue, MessageField};
use connectrpc::{ConnectError, RequestContext, Response, ServiceRequest, ServiceResult};
use userd_domain::authz::Caller;
use userd_domain::values::OrgId;
use userd_ports::ServiceError;
use userd_ports::login::LoginService;
use userd_ports::service::UserService;
use userd_ports::settings::SettingsScope;

use crate::convert::invalid;
use crate::errors::service_error;
use crate::proto::zitadel::object::v2::__buffa::oneof::request_context::ResourceOwner;
use crate::proto::zitadel::object::v2::RequestContext as SettingsContext;
use crate::proto::zitadel::settings::v2::*;

/// The settings service, for login front ends and administrators.
pub struct SettingsV2 {
    users: Arc<dyn UserService>,
    login: Arc<dyn LoginService>,
}

impl SettingsV2 {
    pub fn new(users: Arc<dyn UserService>, login: Arc<dyn LoginService>) -> Self {
        SettingsV2 { users, login }
    }

    /// The caller, and the scope its `ctx` names (without one, its own organization).
    async fn caller_and_scope(
        &self,
        ctx: &RequestContext,
        context: Option<&SettingsContext>,
    ) -> Result<(Caller, SettingsScope), ConnectError> {
        let caller = crate::caller::caller(self.users.as_ref(), ctx).await?;
        let scope = match context.and_then(|c| c.resource_owner.as_ref()) {
            None | Some(ResourceOwner::Instance(false)) => {
                SettingsScope::Organization(caller.org_id.clone())
            }
            Some(ResourceOwner::Instance(true)) => SettingsScope::Instance,
            Some(ResourceOwner::OrgId(org)) => SettingsScope::Organization(
                OrgId::new(org.as_str()).map_err(|e| service_error(invalid("ctx.orgId", e)))?,
            ),
        };
        Ok((caller, scope))
    }
}

fn owner_type(from_organization: bool) -> EnumValue<ResourceOwnerType> {
    EnumValue::from(if from_organization {
        ResourceOwnerType::RESOURCE_OWNER_TYPE_ORG
    } else {
        ResourceOwnerType::RESOURCE_OWNER_TYPE_INSTANCE
    })
}

fn answer<T>(found: Result<T, ServiceError>) -> Result<T, ConnectError> {
    found.map_err(service_error)
}

// Concrete return types instead of the trait's `impl Encodable`: the generated trait allows it.
#[allow(refining_impl_trait)]
impl SettingsService for SettingsV2 {
    async fn get_password_complexity_settings(
        &self,
        ctx: RequestContext,
        request: ServiceRequest<'_, GetPasswordComplexitySettingsRequest>,
    ) -> ServiceResult<GetPasswordComplexitySettingsResponse> {
        let request = request.to_owned_message();
        let (caller, scope) = self.caller_and_scope(&ctx, request.ctx.as_option()).await?;
        let found = answer(self.login.complexity_settings(&caller, &scope).await)?;
        let settings = found.value;
        Response::ok(GetPasswordComplexitySettingsResponse {
            settings: MessageField::some(PasswordComplexitySettings {
                min_length: settings.min_length,
                requires_uppercase: settings.requires_uppercase,
                requires_lowercase: settings.requires_lowercase,
                requires_number: settings.requires_number,
                requires_symbol: settings.requires_symbol,
                resource_owner_type: owner_type(found.from_organization),
                ..Default::default()
            }),
            ..Default::default()
        })
    }

    async fn get_lockout_settings(
        &self,
        ctx: RequestContext,
        request: ServiceRequest<'_, GetLockoutSettingsRequest>,
    ) -> ServiceResult<GetLockoutSettingsResponse> {
        let request = request.to_owned_message();
        let (caller, scope) = self.caller_and_scope(&ctx, request.ctx.as_option()).await?;
        let found = answer(self.login.lockout_settings(&caller, &scope).await)?;
        let settings = found.value;
        Response::ok(GetLockoutSettingsResponse {
            settings: MessageField::some(LockoutSettings {
                max_password_attempts: settings.max_password_attempts,
                max_otp_attempts: settings.max_otp_attempts,
                resource_owner_type: owner_type(found.from_organization),
                lockout_duration: (!settings.lockout_duration.is_zero())
                    .then(|| settings.lockout_duration.into())
                    .into(),
                ..Default::default()
            }),
            ..Default::default()
        })
    }
}
