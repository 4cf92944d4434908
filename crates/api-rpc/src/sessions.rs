//! `zitadel.session.v2.SessionService`: sessions with user and password checks, on the
//! login use cases.

use std::sync::Arc;
use std::time::Duration;

use buffa::MessageField;
use connectrpc::{ConnectError, RequestContext, Response, ServiceRequest, ServiceResult};
use userd_domain::authz::Caller;
use userd_domain::values::{OrgId, UserId};
use userd_ports::ServiceError;
use userd_ports::login::{LoginService, SessionChecks, SessionUser, SessionView};
use userd_ports::service::UserService;

use crate::convert::{invalid, timestamp};
use crate::convert_v2;
use crate::errors::service_error;
use crate::passwords;
use crate::proto::zitadel::session::v2::*;
use __buffa::oneof::check_user::Search;

/// protobuf's own bound on a Duration: about 10,000 years.
const MAX_DURATION_SECONDS: i64 = 315_576_000_000;

/// The session service, as a login front end calls it.
pub struct SessionsV2 {
    users: Arc<dyn UserService>,
    login: Arc<dyn LoginService>,
}

impl SessionsV2 {
    pub fn new(users: Arc<dyn UserService>, login: Arc<dyn LoginService>) -> Self {
        SessionsV2 { users, login }
    }

    async fn caller(&self, ctx: &RequestContext) -> Result<Caller, ConnectError> {
        crate::caller::caller(self.users.as_ref(), ctx).await
    }
}

fn unsupported_check(name: &str) -> ServiceError {
    ServiceError::InvalidArgument {
        reason: "UNSUPPORTED_CHECK",
        message: format!("checks.{name}: userd checks users and passwords only"),
        field: Some(format!("checks.{name}")),
    }
}

fn checks_of(checks: Option<&Checks>) -> Result<SessionChecks, ServiceError> {
    let Some(checks) = checks else {
        return Ok(SessionChecks::default());
    };
    let unsupported = [
        ("webAuthN", checks.web_auth_n.is_set()),
        ("idpIntent", checks.idp_intent.is_set()),
        ("totp", checks.totp.is_set()),
        ("otpSms", checks.otp_sms.is_set()),
        ("otpEmail", checks.otp_email.is_set()),
    ];
    if let Some((name, _)) = unsupported.iter().find(|(_, given)| *given) {
        return Err(unsupported_check(name));
    }
    let user = match checks.user.as_option() {
        None => None,
        Some(check) => Some(match (&check.search, &check.organization_id) {
            (Some(Search::UserId(id)), None) => SessionUser::Id(
                UserId::new(id.as_str()).map_err(|e| invalid("checks.user.userId", e))?,
            ),
            (Some(Search::LoginName(name)), organization) => SessionUser::LoginName {
                name: name.clone(),
                organization: organization
                    .as_deref()
                    .map(OrgId::new)
                    .transpose()
                    .map_err(|e| invalid("checks.user.organizationId", e))?,
            },
            _ => {
                return Err(ServiceError::InvalidArgument {
                    reason: "INVALID_ARGUMENT",
                    message:
                        "checks.user: give userId, or loginName with an optional organizationId"
                            .to_owned(),
                    field: Some("checks.user".to_owned()),
                });
            }
        }),
    };
    let password = checks
        .password
        .as_option()
        .map(|check| passwords::plain("checks.password.password", &check.password))
        .transpose()?;
    Ok(SessionChecks { user, password })
}

fn lifetime_of(
    lifetime: Option<&buffa_types::google::protobuf::Duration>,
) -> Result<Option<Duration>, ServiceError> {
    let Some(lifetime) = lifetime else {
        return Ok(None);
    };
    let refuse = || ServiceError::InvalidArgument {
        reason: "INVALID_DURATION",
        message: "lifetime: expected a duration from 0s to about 10,000 years".to_owned(),
        field: Some("lifetime".to_owned()),
    };
    if lifetime.seconds > MAX_DURATION_SECONDS {
        return Err(refuse());
    }
    Duration::try_from(lifetime.clone())
        .map(Some)
        .map_err(|_| refuse())
}

fn session_of(view: SessionView) -> Session {
    Session {
        id: view.id,
        creation_date: MessageField::some(timestamp(view.created)),
        change_date: MessageField::some(timestamp(view.changed)),
        factors: MessageField::some(Factors {
            user: MessageField::some(UserFactor {
                verified_at: MessageField::some(timestamp(view.user_verified_at)),
                id: view.user_id.to_string(),
                login_name: view.login_name,
                organization_id: view.org_id.to_string(),
                ..Default::default()
            }),
            password: view
                .password_verified_at
                .map(|at| PasswordFactor {
                    verified_at: MessageField::some(timestamp(at)),
                    ..Default::default()
                })
                .into(),
            ..Default::default()
        }),
        expiration_date: view.expires_at.map(timestamp).into(),
        ..Default::default()
    }
}

// Concrete return types instead of the trait's `impl Encodable`: the generated trait allows it.
#[allow(refining_impl_trait)]
impl SessionService for SessionsV2 {
    async fn get_session(
        &self,
        ctx: RequestContext,
        request: ServiceRequest<'_, GetSessionRequest>,
    ) -> ServiceResult<GetSessionResponse> {
        let request = request.to_owned_message();
        let caller = self.caller(&ctx).await?;
        let view = self
            .login
            .get_session(&caller, &request.session_id)
            .await
            .map_err(service_error)?;
        Response::ok(GetSessionResponse {
            session: MessageField::some(session_of(view)),
            ..Default::default()
        })
    }

    async fn create_session(
        &self,
        ctx: RequestContext,
        request: ServiceRequest<'_, CreateSessionRequest>,
    ) -> ServiceResult<CreateSessionResponse> {
        let request = request.to_owned_message();
        let caller = self.caller(&ctx).await?;
        let checks = checks_of(request.checks.as_option()).map_err(service_error)?;
        let lifetime = lifetime_of(request.lifetime.as_option()).map_err(service_error)?;
        let issued = self
            .login
            .create_session(&caller, checks, lifetime)
            .await
            .map_err(service_error)?;
        Response::ok(CreateSessionResponse {
            details: MessageField::some(convert_v2::details(&issued.details)),
            session_id: issued.session_id,
            session_token: issued.token.expose().to_owned(),
            ..Default::default()
        })
    }

    async fn set_session(
        &self,
        ctx: RequestContext,
        request: ServiceRequest<'_, SetSessionRequest>,
    ) -> ServiceResult<SetSessionResponse> {
        let request = request.to_owned_message();
        let caller = self.caller(&ctx).await?;
        let checks = checks_of(request.checks.as_option()).map_err(service_error)?;
        let lifetime = lifetime_of(request.lifetime.as_option()).map_err(service_error)?;
        let issued = self
            .login
            .set_session(&caller, &request.session_id, checks, lifetime)
            .await
            .map_err(service_error)?;
        Response::ok(SetSessionResponse {
            details: MessageField::some(convert_v2::details(&issued.details)),
            session_token: issued.token.expose().to_owned(),
            ..Default::default()
        })
    }

    async fn delete_session(
        &self,
        ctx: RequestContext,
        request: ServiceRequest<'_, DeleteSessionRequest>,
    ) -> ServiceResult<DeleteSessionResponse> {
        let request = request.to_owned_message();
        let caller = self.caller(&ctx).await?;
        let ended = self
            .login
            .delete_session(&caller, &request.session_id)
            .await
            .map_err(service_error)?;
        Response::ok(DeleteSessionResponse {
            details: MessageField::some(convert_v2::details(&ended)),
            ..Default::default()
        })
    }
}
