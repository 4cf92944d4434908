//! `zitadel.resources.user.v3alpha.ZITADELUsers` on the use cases.

use std::sync::Arc;

use buffa::MessageField;
use connectrpc::{ConnectError, RequestContext, Response, ServiceRequest, ServiceResult};
use userd_domain::authz::Caller;
use userd_domain::user::Command;
use userd_domain::user::ContactKind;
use userd_ports::contact::ContactService;
use userd_ports::login::{LoginService, ResetDelivery};
use userd_ports::service::{ResourceDetails, UserRef, UserService};

use crate::contact::{self, Asked};
use crate::convert;
use crate::errors::service_error;
use crate::proto::zitadel::object::v3alpha::Organization;
use crate::proto::zitadel::resources::object::v3alpha::{Details, ListDetails};
use crate::proto::zitadel::resources::user::v3alpha::*;

/// The v3alpha user service, as ZITADEL's clients call it.
pub struct UsersV3alpha {
    users: Arc<dyn UserService>,
    login: Arc<dyn LoginService>,
    contact: Arc<dyn ContactService>,
}

impl UsersV3alpha {
    pub fn new(
        users: Arc<dyn UserService>,
        login: Arc<dyn LoginService>,
        contact: Arc<dyn ContactService>,
    ) -> Self {
        UsersV3alpha {
            users,
            login,
            contact,
        }
    }

    async fn caller(&self, ctx: &RequestContext) -> Result<Caller, ConnectError> {
        crate::caller::caller(self.users.as_ref(), ctx).await
    }

    fn target(id: &str, organization: Option<&Organization>) -> Result<UserRef, ConnectError> {
        Ok(UserRef {
            id: convert::user_id(id).map_err(service_error)?,
            expected_org: convert::organization(organization).map_err(service_error)?,
            if_match: None,
        })
    }

    async fn set_contact(
        &self,
        ctx: &RequestContext,
        id: &str,
        organization: Option<&Organization>,
        address: Result<userd_ports::contact::Address, userd_ports::ServiceError>,
        asked: Option<Asked<'_>>,
    ) -> Result<userd_ports::contact::ContactChange, ConnectError> {
        let caller = self.caller(ctx).await?;
        let target = Self::target(id, organization)?;
        let address = address.map_err(service_error)?;
        self.contact
            .set_contact(&caller, &target, address, contact::verification(asked))
            .await
            .map_err(service_error)
    }

    async fn verify(
        &self,
        ctx: &RequestContext,
        id: &str,
        organization: Option<&Organization>,
        kind: ContactKind,
        code: &str,
    ) -> Result<ResourceDetails, ConnectError> {
        let caller = self.caller(ctx).await?;
        let target = Self::target(id, organization)?;
        let code = contact::code(code).map_err(service_error)?;
        self.contact
            .verify_contact(&caller, &target, kind, code)
            .await
            .map_err(service_error)
    }

    async fn resend(
        &self,
        ctx: &RequestContext,
        id: &str,
        organization: Option<&Organization>,
        kind: ContactKind,
        asked: Option<Asked<'_>>,
    ) -> Result<userd_ports::contact::ContactChange, ConnectError> {
        let caller = self.caller(ctx).await?;
        let target = Self::target(id, organization)?;
        self.contact
            .resend_contact_code(&caller, &target, kind, contact::delivery(asked))
            .await
            .map_err(service_error)
    }

    async fn run(
        &self,
        ctx: &RequestContext,
        id: &str,
        organization: Option<&Organization>,
        command: Command,
    ) -> Result<ResourceDetails, ConnectError> {
        let caller = self.caller(ctx).await?;
        let target = Self::target(id, organization)?;
        self.users
            .execute(&caller, &target, command)
            .await
            .map_err(service_error)
    }
}

fn details<P>(details: &ResourceDetails) -> MessageField<Details, P>
where
    P: buffa::ProtoBox<Details>,
{
    MessageField::some(convert::details(details))
}

/// An RPC that runs one state-machine command on the user named by `id`.
macro_rules! state_change {
    ($method:ident, $request:ty, $response:ident, $command:ident) => {
        async fn $method(
            &self,
            ctx: RequestContext,
            request: ServiceRequest<'_, $request>,
        ) -> ServiceResult<$response> {
            let request = request.to_owned_message();
            let organization = request.organization.as_option();
            let changed = self
                .run(&ctx, &request.id, organization, Command::$command)
                .await?;
            Response::ok($response {
                details: details(&changed),
                ..Default::default()
            })
        }
    };
}

// Concrete return types instead of the trait's `impl Encodable`: the generated trait allows it.
#[allow(refining_impl_trait)]
impl ZitadelUsers for UsersV3alpha {
    async fn search_users(
        &self,
        ctx: RequestContext,
        request: ServiceRequest<'_, SearchUsersRequest>,
    ) -> ServiceResult<SearchUsersResponse> {
        let request = request.to_owned_message();
        let caller = self.caller(&ctx).await?;
        let search = convert::search_request(&request).map_err(service_error)?;
        let found = self
            .users
            .search_users(&caller, search)
            .await
            .map_err(service_error)?;
        Response::ok(SearchUsersResponse {
            details: MessageField::some(ListDetails {
                applied_limit: found.applied_limit,
                total_result: found.total,
                timestamp: MessageField::some(convert::timestamp(found.timestamp)),
                ..Default::default()
            }),
            result: found.users.iter().map(convert::user).collect(),
            ..Default::default()
        })
    }

    async fn get_user(
        &self,
        ctx: RequestContext,
        request: ServiceRequest<'_, GetUserRequest>,
    ) -> ServiceResult<GetUserResponse> {
        let request = request.to_owned_message();
        let caller = self.caller(&ctx).await?;
        let target = Self::target(&request.id, None)?;
        let user = self
            .users
            .get_user(&caller, &target)
            .await
            .map_err(service_error)?;
        Response::ok(GetUserResponse {
            user: MessageField::some(convert::user(&user)),
            ..Default::default()
        })
    }

    async fn create_user(
        &self,
        ctx: RequestContext,
        request: ServiceRequest<'_, CreateUserRequest>,
    ) -> ServiceResult<CreateUserResponse> {
        let request = request.to_owned_message();
        let caller = self.caller(&ctx).await?;
        let org = convert::organization(request.organization.as_option()).map_err(service_error)?;
        let user = request.user.as_option().cloned().unwrap_or_default();
        let new_user = convert::new_user(&user).map_err(service_error)?;
        let created = self
            .users
            .create_user(&caller, org, new_user)
            .await
            .map_err(service_error)?;
        Response::ok(CreateUserResponse {
            details: details(&created.details),
            email_code: created.email_code,
            phone_code: created.phone_code,
            ..Default::default()
        })
    }

    async fn patch_user(
        &self,
        ctx: RequestContext,
        request: ServiceRequest<'_, PatchUserRequest>,
    ) -> ServiceResult<PatchUserResponse> {
        let request = request.to_owned_message();
        let user = request.user.as_option().cloned().unwrap_or_default();
        let patch = convert::patch(&user).map_err(service_error)?;
        let codes = convert::codes(user.contact.as_option());
        let caller = self.caller(&ctx).await?;
        let target = Self::target(&request.id, request.organization.as_option())?;
        let changed = self
            .users
            .patch_user(&caller, &target, patch, codes)
            .await
            .map_err(service_error)?;
        Response::ok(PatchUserResponse {
            details: details(&changed.details),
            email_code: changed.email_code,
            phone_code: changed.phone_code,
            ..Default::default()
        })
    }

    state_change!(
        deactivate_user,
        DeactivateUserRequest,
        DeactivateUserResponse,
        Deactivate
    );
    state_change!(
        activate_user,
        ActivateUserRequest,
        ActivateUserResponse,
        Activate
    );
    state_change!(lock_user, LockUserRequest, LockUserResponse, Lock);
    state_change!(unlock_user, UnlockUserRequest, UnlockUserResponse, Unlock);
    state_change!(delete_user, DeleteUserRequest, DeleteUserResponse, Delete);

    async fn set_password(
        &self,
        ctx: RequestContext,
        request: ServiceRequest<'_, SetPasswordRequest>,
    ) -> ServiceResult<SetPasswordResponse> {
        let request = request.to_owned_message();
        let caller = self.caller(&ctx).await?;
        let target = Self::target(&request.id, request.organization.as_option())?;
        let password = request
            .new_password
            .as_option()
            .cloned()
            .unwrap_or_default();
        let set = convert::set_password("newPassword", &password).map_err(service_error)?;
        let changed = self
            .login
            .set_password(&caller, &target, set)
            .await
            .map_err(service_error)?;
        Response::ok(SetPasswordResponse {
            details: details(&changed),
            ..Default::default()
        })
    }

    async fn request_password_reset(
        &self,
        ctx: RequestContext,
        request: ServiceRequest<'_, RequestPasswordResetRequest>,
    ) -> ServiceResult<RequestPasswordResetResponse> {
        use __buffa::oneof::request_password_reset_request::Medium;
        let request = request.to_owned_message();
        let caller = self.caller(&ctx).await?;
        let target = Self::target(&request.id, request.organization.as_option())?;
        let delivery = match &request.medium {
            None => ResetDelivery::SendEmail { url_template: None },
            Some(Medium::SendEmail(email)) => ResetDelivery::SendEmail {
                url_template: email.url_template.clone(),
            },
            Some(Medium::SendSms(_)) => ResetDelivery::SendSms,
            Some(Medium::ReturnCode(_)) => ResetDelivery::ReturnCode,
        };
        let reset = self
            .login
            .request_password_reset(&caller, &target, delivery)
            .await
            .map_err(service_error)?;
        Response::ok(RequestPasswordResetResponse {
            details: details(&reset.details),
            verification_code: reset.code,
            ..Default::default()
        })
    }

    async fn remove_password(
        &self,
        ctx: RequestContext,
        request: ServiceRequest<'_, RemovePasswordRequest>,
    ) -> ServiceResult<RemovePasswordResponse> {
        let request = request.to_owned_message();
        let caller = self.caller(&ctx).await?;
        let target = Self::target(&request.id, request.organization.as_option())?;
        let changed = self
            .login
            .remove_password(&caller, &target)
            .await
            .map_err(service_error)?;
        Response::ok(RemovePasswordResponse {
            details: details(&changed),
            ..Default::default()
        })
    }

    async fn set_contact_email(
        &self,
        ctx: RequestContext,
        request: ServiceRequest<'_, SetContactEmailRequest>,
    ) -> ServiceResult<SetContactEmailResponse> {
        use __buffa::oneof::set_email::Verification as V;
        let request = request.to_owned_message();
        let email = request.email.as_option().cloned().unwrap_or_default();
        let asked = email.verification.as_ref().map(|v| match v {
            V::SendCode(send) => Asked::Send(send.url_template.as_deref()),
            V::ReturnCode(_) => Asked::Return,
            V::IsVerified(verified) => Asked::IsVerified(*verified),
        });
        let address = contact::email("email.address", &email.address);
        let change = self
            .set_contact(
                &ctx,
                &request.id,
                request.organization.as_option(),
                address,
                asked,
            )
            .await?;
        Response::ok(SetContactEmailResponse {
            details: details(&change.details),
            verification_code: change.code,
            ..Default::default()
        })
    }

    async fn verify_contact_email(
        &self,
        ctx: RequestContext,
        request: ServiceRequest<'_, VerifyContactEmailRequest>,
    ) -> ServiceResult<VerifyContactEmailResponse> {
        let request = request.to_owned_message();
        let verified = self
            .verify(
                &ctx,
                &request.id,
                request.organization.as_option(),
                ContactKind::Email,
                &request.verification_code,
            )
            .await?;
        Response::ok(VerifyContactEmailResponse {
            details: details(&verified),
            ..Default::default()
        })
    }

    async fn resend_contact_email_code(
        &self,
        ctx: RequestContext,
        request: ServiceRequest<'_, ResendContactEmailCodeRequest>,
    ) -> ServiceResult<ResendContactEmailCodeResponse> {
        use __buffa::oneof::resend_contact_email_code_request::Verification as V;
        let request = request.to_owned_message();
        let asked = request.verification.as_ref().map(|v| match v {
            V::SendCode(send) => Asked::Send(send.url_template.as_deref()),
            V::ReturnCode(_) => Asked::Return,
        });
        let change = self
            .resend(
                &ctx,
                &request.id,
                request.organization.as_option(),
                ContactKind::Email,
                asked,
            )
            .await?;
        Response::ok(ResendContactEmailCodeResponse {
            details: details(&change.details),
            verification_code: change.code,
            ..Default::default()
        })
    }

    async fn set_contact_phone(
        &self,
        ctx: RequestContext,
        request: ServiceRequest<'_, SetContactPhoneRequest>,
    ) -> ServiceResult<SetContactPhoneResponse> {
        use __buffa::oneof::set_phone::Verification as V;
        let request = request.to_owned_message();
        let phone = request.phone.as_option().cloned().unwrap_or_default();
        let asked = phone.verification.as_ref().map(|v| match v {
            V::SendCode(_) => Asked::Send(None),
            V::ReturnCode(_) => Asked::Return,
            V::IsVerified(verified) => Asked::IsVerified(*verified),
        });
        let address = contact::phone("phone.number", &phone.number);
        let change = self
            .set_contact(
                &ctx,
                &request.id,
                request.organization.as_option(),
                address,
                asked,
            )
            .await?;
        Response::ok(SetContactPhoneResponse {
            details: details(&change.details),
            verification_code: change.code,
            ..Default::default()
        })
    }

    async fn verify_contact_phone(
        &self,
        ctx: RequestContext,
        request: ServiceRequest<'_, VerifyContactPhoneRequest>,
    ) -> ServiceResult<VerifyContactPhoneResponse> {
        let request = request.to_owned_message();
        let verified = self
            .verify(
                &ctx,
                &request.id,
                request.organization.as_option(),
                ContactKind::Phone,
                &request.verification_code,
            )
            .await?;
        Response::ok(VerifyContactPhoneResponse {
            details: details(&verified),
            ..Default::default()
        })
    }

    async fn resend_contact_phone_code(
        &self,
        ctx: RequestContext,
        request: ServiceRequest<'_, ResendContactPhoneCodeRequest>,
    ) -> ServiceResult<ResendContactPhoneCodeResponse> {
        use __buffa::oneof::resend_contact_phone_code_request::Verification as V;
        let request = request.to_owned_message();
        let asked = request.verification.as_ref().map(|v| match v {
            V::SendCode(_) => Asked::Send(None),
            V::ReturnCode(_) => Asked::Return,
        });
        let change = self
            .resend(
                &ctx,
                &request.id,
                request.organization.as_option(),
                ContactKind::Phone,
                asked,
            )
            .await?;
        Response::ok(ResendContactPhoneCodeResponse {
            details: details(&change.details),
            verification_code: change.code,
            ..Default::default()
        })
    }
}
