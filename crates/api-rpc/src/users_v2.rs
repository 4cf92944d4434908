//! `zitadel.user.v2.UserService`, the human-user lifecycle, on the use cases.

use std::sync::Arc;

use buffa::MessageField;
use connectrpc::{ConnectError, RequestContext, Response, ServiceRequest, ServiceResult};
use serde_json::{Map, Value};
use userd_domain::authz::Caller;
use userd_domain::user::ContactKind;
use userd_domain::user::{Command, UserPatch};
use userd_domain::values::OrgId;
use userd_ports::ServiceError;
use userd_ports::contact::{ContactChange, ContactService};
use userd_ports::login::{LoginService, ResetDelivery};
use userd_ports::service::{IfMatch, ResourceDetails, UserRef, UserService as Users, WrittenUser};

use crate::contact::{self, Asked};
use crate::convert::user_id;
use crate::convert_v2 as convert;
use crate::errors::service_error;
use crate::proto::zitadel::object::v2::{Details, ListDetails};
use crate::proto::zitadel::user::v2::*;

/// How often an update that reads, merges and writes is retried when another write to
/// the same user came in between.
const MERGE_ATTEMPTS: usize = 8;

/// The v2 user service, as ZITADEL's SDKs call it.
pub struct UsersV2 {
    users: Arc<dyn Users>,
    login: Arc<dyn LoginService>,
    contact: Arc<dyn ContactService>,
}

impl UsersV2 {
    pub fn new(
        users: Arc<dyn Users>,
        login: Arc<dyn LoginService>,
        contact: Arc<dyn ContactService>,
    ) -> Self {
        UsersV2 {
            users,
            login,
            contact,
        }
    }

    async fn set_contact(
        &self,
        ctx: &RequestContext,
        user: &str,
        address: Result<userd_ports::contact::Address, ServiceError>,
        asked: Option<Asked<'_>>,
    ) -> Result<ContactChange, ConnectError> {
        let caller = self.caller(ctx).await?;
        let target = UserRef::new(user_id(user).map_err(service_error)?);
        let address = address.map_err(service_error)?;
        self.contact
            .set_contact(&caller, &target, address, contact::verification(asked))
            .await
            .map_err(service_error)
    }

    async fn verify_contact(
        &self,
        ctx: &RequestContext,
        user: &str,
        kind: ContactKind,
        code: &str,
    ) -> Result<ResourceDetails, ConnectError> {
        let caller = self.caller(ctx).await?;
        let target = UserRef::new(user_id(user).map_err(service_error)?);
        let code = contact::code(code).map_err(service_error)?;
        self.contact
            .verify_contact(&caller, &target, kind, code)
            .await
            .map_err(service_error)
    }

    async fn resend_code(
        &self,
        ctx: &RequestContext,
        user: &str,
        kind: ContactKind,
        asked: Option<Asked<'_>>,
    ) -> Result<ContactChange, ConnectError> {
        let caller = self.caller(ctx).await?;
        let target = UserRef::new(user_id(user).map_err(service_error)?);
        self.contact
            .resend_contact_code(&caller, &target, kind, contact::delivery(asked))
            .await
            .map_err(service_error)
    }

    async fn caller(&self, ctx: &RequestContext) -> Result<Caller, ConnectError> {
        crate::caller::caller(self.users.as_ref(), ctx).await
    }

    async fn run<P: buffa::ProtoBox<Details>>(
        &self,
        ctx: &RequestContext,
        id: &str,
        command: Command,
    ) -> Result<MessageField<Details, P>, ConnectError> {
        let caller = self.caller(ctx).await?;
        let target = UserRef::new(user_id(id).map_err(service_error)?);
        let changed = self
            .users
            .execute(&caller, &target, command)
            .await
            .map_err(service_error)?;
        Ok(details(&changed))
    }

    /// Applies an update that changes parts of `data`: read, merge, write only if the
    /// user is still at the version read, retrying when it is not.
    async fn update(
        &self,
        caller: &Caller,
        change: &Update<'_>,
    ) -> Result<WrittenUser, ServiceError> {
        let id = user_id(change.user_id)?;
        for _ in 0..MERGE_ATTEMPTS {
            let user = self
                .users
                .get_user(caller, &UserRef::new(id.clone()))
                .await?;
            if let Some(username) = change.username {
                let current = user.usernames.first().map(|u| u.username.as_str());
                if current != Some(username) {
                    return Err(ServiceError::InvalidArgument {
                        reason: "UNSUPPORTED_USERNAME_CHANGE",
                        message: "userd does not rename users".to_owned(),
                        field: Some("username".to_owned()),
                    });
                }
            }
            let data = match &change.profile {
                None => None,
                Some(merge) => {
                    let mut data = user.data.as_map().clone();
                    merge(&mut data);
                    Some(convert::user_data(data)?)
                }
            };
            let patch = UserPatch {
                schema_id: None,
                data,
                email: change.email.map(convert::email).transpose()?,
                phone: change.phone.map(convert::phone).transpose()?.flatten(),
            };
            let target = UserRef {
                if_match: Some(IfMatch::Versions(vec![user.sequence])),
                ..UserRef::new(id.clone())
            };
            let codes = convert::codes(change.email, change.phone);
            match self.users.patch_user(caller, &target, patch, codes).await {
                Err(ServiceError::VersionMismatch { .. }) => continue,
                outcome => return outcome,
            }
        }
        Err(ServiceError::Aborted {
            user_id: id.to_string(),
        })
    }

    async fn create(
        &self,
        ctx: &RequestContext,
        org: Option<OrgId>,
        human: &convert::Human<'_>,
    ) -> Result<WrittenUser, ConnectError> {
        let caller = self.caller(ctx).await?;
        let new_user = convert::new_human(human).map_err(service_error)?;
        self.users
            .create_user(&caller, org, new_user)
            .await
            .map_err(service_error)
    }
}

/// Merges a profile into a user's `data`.
type ProfileMerge<'a> = Box<dyn Fn(&mut Map<String, Value>) + Send + Sync + 'a>;

/// What UpdateHumanUser and UpdateUser's human both change.
struct Update<'a> {
    user_id: &'a str,
    username: Option<&'a str>,
    profile: Option<ProfileMerge<'a>>,
    email: Option<&'a SetHumanEmail>,
    phone: Option<&'a SetHumanPhone>,
}

fn machines_unsupported() -> ConnectError {
    service_error(ServiceError::invalid(
        "UNSUPPORTED_USER_TYPE",
        "userd holds human users only",
    ))
}

fn details<P>(details: &ResourceDetails) -> MessageField<Details, P>
where
    P: buffa::ProtoBox<Details>,
{
    MessageField::some(convert::details(details))
}

/// An RPC that runs one state-machine command on the user named by `user_id`.
macro_rules! state_change {
    ($method:ident, $request:ty, $response:ident, $command:ident) => {
        async fn $method(
            &self,
            ctx: RequestContext,
            request: ServiceRequest<'_, $request>,
        ) -> ServiceResult<$response> {
            let request = request.to_owned_message();
            Response::ok($response {
                details: self.run(&ctx, &request.user_id, Command::$command).await?,
                ..Default::default()
            })
        }
    };
}

// Concrete return types instead of the trait's `impl Encodable`: the generated trait allows it.
#[allow(refining_impl_trait)]
impl UserService for UsersV2 {
    async fn add_human_user(
        &self,
        ctx: RequestContext,
        request: ServiceRequest<'_, AddHumanUserRequest>,
    ) -> ServiceResult<AddHumanUserResponse> {
        let request = request.to_owned_message();
        let org = convert::organization(request.organization.as_option()).map_err(service_error)?;
        let human = convert::Human {
            user_id: request.user_id.as_deref(),
            username: request.username.as_deref(),
            profile: request.profile.as_option(),
            email: request.email.as_option(),
            phone: request.phone.as_option(),
            password: request.password_type.as_ref().map(|given| {
                use __buffa::oneof::add_human_user_request::PasswordType;
                match given {
                    PasswordType::Password(p) => convert::Password::Plain(p),
                    PasswordType::HashedPassword(p) => convert::Password::Hashed(p),
                }
            }),
        };
        let created = self.create(&ctx, org, &human).await?;
        Response::ok(AddHumanUserResponse {
            user_id: created.details.id.clone(),
            details: details(&created.details),
            email_code: created.email_code,
            phone_code: created.phone_code,
            ..Default::default()
        })
    }

    async fn get_user_by_id(
        &self,
        ctx: RequestContext,
        request: ServiceRequest<'_, GetUserByIDRequest>,
    ) -> ServiceResult<GetUserByIDResponse> {
        let request = request.to_owned_message();
        let caller = self.caller(&ctx).await?;
        let target = UserRef::new(user_id(&request.user_id).map_err(service_error)?);
        let user = self
            .users
            .get_user(&caller, &target)
            .await
            .map_err(service_error)?;
        let found = convert::user(&user);
        Response::ok(GetUserByIDResponse {
            details: found.details.clone(),
            user: MessageField::some(found),
            ..Default::default()
        })
    }

    async fn list_users(
        &self,
        ctx: RequestContext,
        request: ServiceRequest<'_, ListUsersRequest>,
    ) -> ServiceResult<ListUsersResponse> {
        let request = request.to_owned_message();
        let caller = self.caller(&ctx).await?;
        let search = convert::search_request(&request).map_err(service_error)?;
        let found = self
            .users
            .search_users(&caller, search)
            .await
            .map_err(service_error)?;
        Response::ok(ListUsersResponse {
            details: MessageField::some(ListDetails {
                total_result: found.total,
                timestamp: MessageField::some(crate::convert::timestamp(found.timestamp)),
                ..Default::default()
            }),
            sorting_column: request.sorting_column,
            result: found.users.iter().map(convert::user).collect(),
            ..Default::default()
        })
    }

    async fn update_human_user(
        &self,
        ctx: RequestContext,
        request: ServiceRequest<'_, UpdateHumanUserRequest>,
    ) -> ServiceResult<UpdateHumanUserResponse> {
        let request = request.to_owned_message();
        let caller = self.caller(&ctx).await?;
        let change = Update {
            user_id: &request.user_id,
            username: request.username.as_deref(),
            profile: request
                .profile
                .as_option()
                .map(|profile| -> ProfileMerge<'_> {
                    Box::new(move |data| convert::merge_profile(data, profile))
                }),
            email: request.email.as_option(),
            phone: request.phone.as_option(),
        };
        let changed = self.update(&caller, &change).await.map_err(service_error)?;
        Response::ok(UpdateHumanUserResponse {
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
        reactivate_user,
        ReactivateUserRequest,
        ReactivateUserResponse,
        Activate
    );
    state_change!(lock_user, LockUserRequest, LockUserResponse, Lock);
    state_change!(unlock_user, UnlockUserRequest, UnlockUserResponse, Unlock);
    state_change!(delete_user, DeleteUserRequest, DeleteUserResponse, Delete);

    async fn create_user(
        &self,
        ctx: RequestContext,
        request: ServiceRequest<'_, CreateUserRequest>,
    ) -> ServiceResult<CreateUserResponse> {
        use __buffa::oneof::create_user_request::UserType;
        let request = request.to_owned_message();
        let Some(UserType::Human(human)) = &request.user_type else {
            return Err(machines_unsupported());
        };
        let org = (!request.organization_id.is_empty())
            .then(|| OrgId::new(request.organization_id.as_str()))
            .transpose()
            .map_err(|e| service_error(crate::convert::invalid("organizationId", e)))?;
        let human = convert::Human {
            user_id: request.user_id.as_deref(),
            username: request.username.as_deref(),
            profile: human.profile.as_option(),
            email: human.email.as_option(),
            phone: human.phone.as_option(),
            password: human.password_type.as_ref().map(|given| {
                use __buffa::oneof::create_user_request::human::PasswordType;
                match given {
                    PasswordType::Password(p) => convert::Password::Plain(p),
                    PasswordType::HashedPassword(p) => convert::Password::Hashed(p),
                }
            }),
        };
        let created = self.create(&ctx, org, &human).await?;
        Response::ok(CreateUserResponse {
            id: created.details.id.clone(),
            creation_date: MessageField::some(crate::convert::timestamp(created.details.created)),
            email_code: created.email_code,
            phone_code: created.phone_code,
            ..Default::default()
        })
    }

    async fn update_user(
        &self,
        ctx: RequestContext,
        request: ServiceRequest<'_, UpdateUserRequest>,
    ) -> ServiceResult<UpdateUserResponse> {
        use __buffa::oneof::update_user_request::UserType;
        let request = request.to_owned_message();
        let human = match &request.user_type {
            Some(UserType::Human(human)) => Some(human.as_ref()),
            Some(UserType::Machine(_)) => return Err(machines_unsupported()),
            None => None,
        };
        let caller = self.caller(&ctx).await?;
        let change = Update {
            user_id: &request.user_id,
            username: request.username.as_deref(),
            profile: human
                .and_then(|h| h.profile.as_option())
                .map(|profile| -> ProfileMerge<'_> {
                    Box::new(move |data| convert::merge_profile_update(data, profile))
                }),
            email: human.and_then(|h| h.email.as_option()),
            phone: human.and_then(|h| h.phone.as_option()),
        };
        let changed = self.update(&caller, &change).await.map_err(service_error)?;
        Response::ok(UpdateUserResponse {
            change_date: MessageField::some(crate::convert::timestamp(changed.details.changed)),
            email_code: changed.email_code,
            phone_code: changed.phone_code,
            ..Default::default()
        })
    }

    async fn set_password(
        &self,
        ctx: RequestContext,
        request: ServiceRequest<'_, SetPasswordRequest>,
    ) -> ServiceResult<SetPasswordResponse> {
        use __buffa::oneof::set_password_request::Verification;
        let request = request.to_owned_message();
        let caller = self.caller(&ctx).await?;
        let target = UserRef::new(user_id(&request.user_id).map_err(service_error)?);
        let new_password = request.new_password.as_option();
        let set = crate::passwords::set_password(
            "newPassword.password",
            new_password.map(|p| crate::passwords::Given::Plain(&p.password)),
            new_password.is_some_and(|p| p.change_required),
            request.verification.as_ref().map(|proof| match proof {
                Verification::CurrentPassword(text) => {
                    crate::passwords::Proof::CurrentPassword(text)
                }
                Verification::VerificationCode(code) => {
                    crate::passwords::Proof::VerificationCode(code)
                }
            }),
        )
        .map_err(service_error)?;
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

    async fn password_reset(
        &self,
        ctx: RequestContext,
        request: ServiceRequest<'_, PasswordResetRequest>,
    ) -> ServiceResult<PasswordResetResponse> {
        use __buffa::oneof::password_reset_request::Medium;
        let request = request.to_owned_message();
        let caller = self.caller(&ctx).await?;
        let target = UserRef::new(user_id(&request.user_id).map_err(service_error)?);
        let delivery = match &request.medium {
            None => ResetDelivery::SendEmail { url_template: None },
            Some(Medium::SendLink(link)) => match link.notification_type.as_known() {
                Some(NotificationType::NOTIFICATION_TYPE_SMS) => ResetDelivery::SendSms,
                _ => ResetDelivery::SendEmail {
                    url_template: link.url_template.clone(),
                },
            },
            Some(Medium::ReturnCode(_)) => ResetDelivery::ReturnCode,
        };
        let reset = self
            .login
            .request_password_reset(&caller, &target, delivery)
            .await
            .map_err(service_error)?;
        Response::ok(PasswordResetResponse {
            details: details(&reset.details),
            verification_code: reset.code,
            ..Default::default()
        })
    }

    async fn set_email(
        &self,
        ctx: RequestContext,
        request: ServiceRequest<'_, SetEmailRequest>,
    ) -> ServiceResult<SetEmailResponse> {
        use __buffa::oneof::set_email_request::Verification as V;
        let request = request.to_owned_message();
        let asked = request.verification.as_ref().map(|v| match v {
            V::SendCode(send) => Asked::Send(send.url_template.as_deref()),
            V::ReturnCode(_) => Asked::Return,
            V::IsVerified(verified) => Asked::IsVerified(*verified),
        });
        let address = contact::email("email", &request.email);
        let change = self
            .set_contact(&ctx, &request.user_id, address, asked)
            .await?;
        Response::ok(SetEmailResponse {
            details: details(&change.details),
            verification_code: change.code,
            ..Default::default()
        })
    }

    async fn resend_email_code(
        &self,
        ctx: RequestContext,
        request: ServiceRequest<'_, ResendEmailCodeRequest>,
    ) -> ServiceResult<ResendEmailCodeResponse> {
        use __buffa::oneof::resend_email_code_request::Verification as V;
        let request = request.to_owned_message();
        let asked = request.verification.as_ref().map(|v| match v {
            V::SendCode(send) => Asked::Send(send.url_template.as_deref()),
            V::ReturnCode(_) => Asked::Return,
        });
        let change = self
            .resend_code(&ctx, &request.user_id, ContactKind::Email, asked)
            .await?;
        Response::ok(ResendEmailCodeResponse {
            details: details(&change.details),
            verification_code: change.code,
            ..Default::default()
        })
    }

    async fn verify_email(
        &self,
        ctx: RequestContext,
        request: ServiceRequest<'_, VerifyEmailRequest>,
    ) -> ServiceResult<VerifyEmailResponse> {
        let request = request.to_owned_message();
        let verified = self
            .verify_contact(
                &ctx,
                &request.user_id,
                ContactKind::Email,
                &request.verification_code,
            )
            .await?;
        Response::ok(VerifyEmailResponse {
            details: details(&verified),
            ..Default::default()
        })
    }

    async fn set_phone(
        &self,
        ctx: RequestContext,
        request: ServiceRequest<'_, SetPhoneRequest>,
    ) -> ServiceResult<SetPhoneResponse> {
        use __buffa::oneof::set_phone_request::Verification as V;
        let request = request.to_owned_message();
        let asked = request.verification.as_ref().map(|v| match v {
            V::SendCode(_) => Asked::Send(None),
            V::ReturnCode(_) => Asked::Return,
            V::IsVerified(verified) => Asked::IsVerified(*verified),
        });
        let address = contact::phone("phone", &request.phone);
        let change = self
            .set_contact(&ctx, &request.user_id, address, asked)
            .await?;
        Response::ok(SetPhoneResponse {
            details: details(&change.details),
            verification_code: change.code,
            ..Default::default()
        })
    }

    async fn resend_phone_code(
        &self,
        ctx: RequestContext,
        request: ServiceRequest<'_, ResendPhoneCodeRequest>,
    ) -> ServiceResult<ResendPhoneCodeResponse> {
        use __buffa::oneof::resend_phone_code_request::Verification as V;
        let request = request.to_owned_message();
        let asked = request.verification.as_ref().map(|v| match v {
            V::SendCode(_) => Asked::Send(None),
            V::ReturnCode(_) => Asked::Return,
        });
        let change = self
            .resend_code(&ctx, &request.user_id, ContactKind::Phone, asked)
            .await?;
        Response::ok(ResendPhoneCodeResponse {
            details: details(&change.details),
            verification_code: change.code,
            ..Default::default()
        })
    }

    async fn verify_phone(
        &self,
        ctx: RequestContext,
        request: ServiceRequest<'_, VerifyPhoneRequest>,
    ) -> ServiceResult<VerifyPhoneResponse> {
        let request = request.to_owned_message();
        let verified = self
            .verify_contact(
                &ctx,
                &request.user_id,
                ContactKind::Phone,
                &request.verification_code,
            )
            .await?;
        Response::ok(VerifyPhoneResponse {
            details: details(&verified),
            ..Default::default()
        })
    }
}
