//! Passwords (v3alpha authenticators), sessions (v2 SessionService) and login settings
//! (v2 SettingsService) over REST: shapes and handlers.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::web::{self, Payload};
use actix_web::{HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use userd_domain::values::{OrgId, UserId};
use userd_ports::ServiceError;
use userd_ports::login::{
    LoginService, NewPassword, PasswordProof, ResetDelivery, SessionChecks, SessionUser,
    SessionView, SetPassword,
};
use userd_ports::passwords::PlainPassword;
use userd_ports::settings::{ComplexitySettings, LockoutSettings, SettingsScope};
use utoipa::ToSchema;

use crate::body::{parse_json, read_body};
use crate::dto::{DetailsOut, DetailsResponse};
use crate::error::ApiError;
use crate::handlers::{Answer, Service, authenticate, details, user_ref};

pub(crate) type Login = web::Data<dyn LoginService>;

fn invalid(reason: &'static str, field: &str, message: impl Into<String>) -> ServiceError {
    ServiceError::InvalidArgument {
        reason,
        message: format!("{field}: {}", message.into()),
        field: Some(field.to_owned()),
    }
}

/// A proto3 JSON 64-bit integer: a string or a number.
fn uint64(field: &str, value: Option<&Value>) -> Result<u64, ServiceError> {
    match value {
        None | Some(Value::Null) => Some(0),
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.parse().ok(),
        Some(_) => None,
    }
    .ok_or_else(|| invalid("INVALID_ARGUMENT", field, "expected a non-negative integer"))
}

/// A proto3 JSON duration: seconds with up to nine decimals and an `s`, like `"3600s"` or
/// `"1.5s"`. Negative durations are refused: nothing here can last less than nothing.
fn duration(field: &str, text: &str) -> Result<Duration, ServiceError> {
    let refuse = || {
        invalid(
            "INVALID_DURATION",
            field,
            format!("{text:?} is not a duration like \"300s\""),
        )
    };
    let seconds = text.strip_suffix('s').ok_or_else(refuse)?;
    let (whole, fraction) = match seconds.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (seconds, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || fraction.is_some_and(|f| !digits(f) || f.len() > 9) {
        return Err(refuse());
    }
    // ZITADEL's Duration is bounded to about 10,000 years; so is this.
    let whole: u64 = whole
        .parse()
        .ok()
        .filter(|s| *s <= 315_576_000_000)
        .ok_or_else(refuse)?;
    let nanos: u32 = format!("{:0<9}", fraction.unwrap_or(""))
        .parse()
        .map_err(|_| refuse())?;
    Ok(Duration::new(whole, nanos))
}

fn format_duration(duration: Duration) -> String {
    match duration.subsec_nanos() {
        0 => format!("{}s", duration.as_secs()),
        nanos => {
            let fraction = format!("{nanos:09}");
            format!("{}.{}s", duration.as_secs(), fraction.trim_end_matches('0'))
        }
    }
}

fn plain(field: &str, text: Option<String>) -> Result<PlainPassword, ServiceError> {
    match text {
        Some(text) if !text.is_empty() => Ok(PlainPassword::new(text)),
        _ => Err(invalid(
            "PASSWORD_REQUIRED",
            field,
            "a password is required",
        )),
    }
}

// --- passwords ---------------------------------------------------------------------

/// ZITADEL's `SetPassword`: exactly one of `password` and `hash`; at most one of
/// `currentPassword` and `verificationCode`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SetPasswordInput {
    /// In clear, at most 1,024 bytes; userd hashes it with argon2id.
    password: Option<String>,
    /// An existing hash to import: argon2id, argon2i, bcrypt, pbkdf2-sha256 or scrypt.
    hash: Option<String>,
    change_required: Option<bool>,
    current_password: Option<String>,
    verification_code: Option<String>,
}

impl SetPasswordInput {
    pub(crate) fn into_request(self, prefix: &str) -> Result<SetPassword, ServiceError> {
        let field = |name: &str| format!("{prefix}.{name}");
        let password = match (self.password, self.hash) {
            (Some(password), None) => {
                NewPassword::Plain(plain(&field("password"), Some(password))?)
            }
            (None, Some(hash)) => NewPassword::Hash(hash),
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "INVALID_ARGUMENT",
                    prefix,
                    "give either password or hash, not both",
                ));
            }
            (None, None) => {
                return Err(invalid(
                    "PASSWORD_REQUIRED",
                    &field("password"),
                    "password or hash is required",
                ));
            }
        };
        let proof = match (self.current_password, self.verification_code) {
            (None, None) => PasswordProof::None,
            (Some(current), None) => {
                PasswordProof::CurrentPassword(plain(&field("currentPassword"), Some(current))?)
            }
            (None, Some(code)) => PasswordProof::VerificationCode(code),
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "INVALID_ARGUMENT",
                    prefix,
                    "give either currentPassword or verificationCode, not both",
                ));
            }
        };
        Ok(SetPassword {
            password,
            change_required: self.change_required.unwrap_or(false),
            proof,
        })
    }
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SetPasswordRequest {
    new_password: Option<SetPasswordInput>,
}

#[utoipa::path(
    post,
    path = "/resources/v3alpha/users/{id}/password",
    tag = "passwords",
    params(("id" = String, Path, description = "The id of the user.")),
    request_body(content = SetPasswordRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "The password is set", body = DetailsResponse),
        crate::openapi::WriteErrors,
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn set_password(
    req: HttpRequest,
    id: web::Path<String>,
    payload: Payload,
    service: Service,
    login: Login,
) -> Answer {
    let caller = authenticate(&req, &service).await?;
    let target = user_ref(&req, id.into_inner())?;
    let body = read_body(&req, payload).await?;
    let request = parse_json::<SetPasswordRequest>(&body)?
        .new_password
        .ok_or_else(|| {
            invalid(
                "PASSWORD_REQUIRED",
                "newPassword",
                "newPassword is required",
            )
        })?
        .into_request("newPassword")?;
    let changed = login.set_password(&caller, &target, request).await?;
    Ok(details(StatusCode::OK, &changed))
}

#[utoipa::path(
    delete,
    path = "/resources/v3alpha/users/{id}/password",
    tag = "passwords",
    params(("id" = String, Path, description = "The id of the user.")),
    responses(
        (status = 200, description = "The password is removed", body = DetailsResponse),
        crate::openapi::WriteErrors,
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn remove_password(
    req: HttpRequest,
    id: web::Path<String>,
    service: Service,
    login: Login,
) -> Answer {
    let caller = authenticate(&req, &service).await?;
    let target = user_ref(&req, id.into_inner())?;
    let changed = login.remove_password(&caller, &target).await?;
    Ok(details(StatusCode::OK, &changed))
}

/// `sendEmail` (the default), `sendSms` or `returnCode`: exactly one.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ResetPasswordRequest {
    send_email: Option<SendEmail>,
    #[schema(value_type = Option<Object>)]
    send_sms: Option<Value>,
    /// `{}`: the code comes back in the answer, for callers that deliver it themselves.
    #[schema(value_type = Option<Object>)]
    return_code: Option<Value>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SendEmail {
    /// A link for the message, with `{{.UserID}}`, `{{.Code}}`, `{{.OrgID}}`.
    url_template: Option<String>,
}

impl ResetPasswordRequest {
    fn delivery(self) -> Result<ResetDelivery, ServiceError> {
        match (self.send_email, self.send_sms, self.return_code) {
            (None, None, None) => Ok(ResetDelivery::SendEmail { url_template: None }),
            (Some(email), None, None) => Ok(ResetDelivery::SendEmail {
                url_template: email.url_template,
            }),
            (None, Some(_), None) => Ok(ResetDelivery::SendSms),
            (None, None, Some(_)) => Ok(ResetDelivery::ReturnCode),
            _ => Err(invalid(
                "INVALID_ARGUMENT",
                "medium",
                "give one of sendEmail, sendSms and returnCode",
            )),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ResetPasswordResponse {
    details: DetailsOut,
    /// With `returnCode` only: 8 characters, valid once, for `notify.code_ttl_secs`.
    #[serde(skip_serializing_if = "Option::is_none")]
    verification_code: Option<String>,
}

#[utoipa::path(
    post,
    path = "/resources/v3alpha/users/{id}/password/_reset",
    tag = "passwords",
    params(("id" = String, Path, description = "The id of the user.")),
    request_body(content = ResetPasswordRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "A new code; any earlier one is void", body = ResetPasswordResponse),
        crate::openapi::WriteErrors,
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn reset_password(
    req: HttpRequest,
    id: web::Path<String>,
    payload: Payload,
    service: Service,
    login: Login,
) -> Answer {
    let caller = authenticate(&req, &service).await?;
    let target = user_ref(&req, id.into_inner())?;
    let body = read_body(&req, payload).await?;
    let delivery = parse_json::<ResetPasswordRequest>(&body)?.delivery()?;
    let reset = login
        .request_password_reset(&caller, &target, delivery)
        .await?;
    Ok(HttpResponse::Ok().json(ResetPasswordResponse {
        details: (&reset.details).into(),
        verification_code: reset.code,
    }))
}

// --- sessions ----------------------------------------------------------------------

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CheckUser {
    user_id: Option<String>,
    login_name: Option<String>,
    /// With `loginName`: also match this organization's organization-specific usernames.
    organization_id: Option<String>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
pub(crate) struct CheckPassword {
    password: Option<String>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
pub(crate) struct Checks {
    user: Option<CheckUser>,
    password: Option<CheckPassword>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
pub(crate) struct SessionRequest {
    checks: Option<Checks>,
    /// How long the session lasts, like `"3600s"`; without it, until deleted.
    lifetime: Option<String>,
}

impl SessionRequest {
    fn into_parts(self) -> Result<(SessionChecks, Option<Duration>), ServiceError> {
        let checks = self.checks.unwrap_or_default();
        let user = match checks.user {
            None => None,
            Some(CheckUser {
                user_id: Some(id),
                login_name: None,
                organization_id: None,
            }) => Some(SessionUser::Id(UserId::new(id).map_err(|e| {
                ServiceError::invalid_field("checks.user.userId", e)
            })?)),
            Some(CheckUser {
                user_id: None,
                login_name: Some(name),
                organization_id,
            }) => Some(SessionUser::LoginName {
                name,
                organization: organization_id
                    .map(OrgId::new)
                    .transpose()
                    .map_err(|e| ServiceError::invalid_field("checks.user.organizationId", e))?,
            }),
            Some(_) => {
                return Err(invalid(
                    "INVALID_ARGUMENT",
                    "checks.user",
                    "give userId, or loginName with an optional organizationId",
                ));
            }
        };
        let password = checks
            .password
            .map(|check| plain("checks.password.password", check.password))
            .transpose()?;
        let lifetime = self
            .lifetime
            .map(|text| duration("lifetime", &text))
            .transpose()?;
        Ok((SessionChecks { user, password }, lifetime))
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CreateSessionResponse {
    details: DetailsOut,
    session_id: String,
    /// Shown this once; userd keeps only its hash.
    session_token: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SetSessionResponse {
    details: DetailsOut,
    session_token: String,
}

#[utoipa::path(
    post,
    path = "/v2/sessions",
    tag = "sessions",
    request_body(content = SessionRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "The session, and its token", body = CreateSessionResponse),
        crate::openapi::CreateErrors,
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn create_session(
    req: HttpRequest,
    payload: Payload,
    service: Service,
    login: Login,
) -> Answer {
    let caller = authenticate(&req, &service).await?;
    let body = read_body(&req, payload).await?;
    let (checks, lifetime) = parse_json::<SessionRequest>(&body)?.into_parts()?;
    let issued = login.create_session(&caller, checks, lifetime).await?;
    Ok(HttpResponse::Created().json(CreateSessionResponse {
        details: (&issued.details).into(),
        session_id: issued.session_id,
        session_token: issued.token.expose().to_owned(),
    }))
}

#[utoipa::path(
    patch,
    path = "/v2/sessions/{sessionId}",
    tag = "sessions",
    params(("sessionId" = String, Path)),
    request_body(content = SessionRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "Checked; a new token", body = SetSessionResponse),
        crate::openapi::WriteErrors,
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn set_session(
    req: HttpRequest,
    session_id: web::Path<String>,
    payload: Payload,
    service: Service,
    login: Login,
) -> Answer {
    let caller = authenticate(&req, &service).await?;
    let body = read_body(&req, payload).await?;
    let (checks, lifetime) = parse_json::<SessionRequest>(&body)?.into_parts()?;
    let issued = login
        .set_session(&caller, &session_id, checks, lifetime)
        .await?;
    Ok(HttpResponse::Ok().json(SetSessionResponse {
        details: (&issued.details).into(),
        session_token: issued.token.expose().to_owned(),
    }))
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct VerifiedAt {
    verified_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct UserFactor {
    verified_at: String,
    id: String,
    login_name: String,
    organization_id: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Factors {
    user: UserFactor,
    #[serde(skip_serializing_if = "Option::is_none")]
    password: Option<VerifiedAt>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SessionOut {
    id: String,
    creation_date: String,
    change_date: String,
    factors: Factors,
    #[serde(skip_serializing_if = "Option::is_none")]
    expiration_date: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct GetSessionResponse {
    session: SessionOut,
}

impl From<SessionView> for SessionOut {
    fn from(view: SessionView) -> Self {
        SessionOut {
            id: view.id,
            creation_date: view.created.to_rfc3339(),
            change_date: view.changed.to_rfc3339(),
            factors: Factors {
                user: UserFactor {
                    verified_at: view.user_verified_at.to_rfc3339(),
                    id: view.user_id.to_string(),
                    login_name: view.login_name,
                    organization_id: view.org_id.to_string(),
                },
                password: view.password_verified_at.map(|at| VerifiedAt {
                    verified_at: at.to_rfc3339(),
                }),
            },
            expiration_date: view.expires_at.map(|at| at.to_rfc3339()),
        }
    }
}

#[utoipa::path(
    get,
    path = "/v2/sessions/{sessionId}",
    tag = "sessions",
    params(("sessionId" = String, Path)),
    responses(
        (status = 200, description = "The session", body = GetSessionResponse),
        crate::openapi::ReadErrors,
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn get_session(
    req: HttpRequest,
    session_id: web::Path<String>,
    service: Service,
    login: Login,
) -> Answer {
    let caller = authenticate(&req, &service).await?;
    let view = login.get_session(&caller, &session_id).await?;
    Ok(HttpResponse::Ok().json(GetSessionResponse {
        session: view.into(),
    }))
}

#[utoipa::path(
    delete,
    path = "/v2/sessions/{sessionId}",
    tag = "sessions",
    params(("sessionId" = String, Path)),
    responses(
        (status = 200, description = "The session has ended", body = DetailsResponse),
        crate::openapi::ReadErrors,
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn delete_session(
    req: HttpRequest,
    session_id: web::Path<String>,
    service: Service,
    login: Login,
) -> Answer {
    let caller = authenticate(&req, &service).await?;
    let ended = login.delete_session(&caller, &session_id).await?;
    Ok(details(StatusCode::OK, &ended))
}

// --- settings ----------------------------------------------------------------------

/// `ctx`: an organization, or the instance. Without it, the caller's organization.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RequestContext {
    org_id: Option<String>,
    instance: Option<bool>,
}

impl RequestContext {
    fn scope(self, caller_org: &OrgId) -> Result<SettingsScope, ServiceError> {
        match (self.org_id, self.instance.unwrap_or(false)) {
            (Some(_), true) => Err(invalid(
                "INVALID_ARGUMENT",
                "ctx",
                "give orgId or instance, not both",
            )),
            (Some(org), false) => Ok(SettingsScope::Organization(
                OrgId::new(org).map_err(|e| ServiceError::invalid_field("ctx.orgId", e))?,
            )),
            (None, true) => Ok(SettingsScope::Instance),
            (None, false) => Ok(SettingsScope::Organization(caller_org.clone())),
        }
    }
}

/// `ctx.orgId` / `ctx.instance` from the query string.
fn context_of_query(req: &HttpRequest) -> Result<RequestContext, ServiceError> {
    #[derive(Deserialize)]
    struct Query {
        #[serde(rename = "ctx.orgId")]
        org_id: Option<String>,
        #[serde(rename = "ctx.instance")]
        instance: Option<String>,
    }
    let query = web::Query::<Query>::from_query(req.query_string())
        .map_err(|e| ServiceError::invalid("INVALID_QUERY", format!("invalid query string: {e}")))?
        .into_inner();
    let instance = match query.instance.as_deref() {
        None | Some("false" | "0" | "") => false,
        Some("true" | "1") => true,
        Some(other) => {
            return Err(invalid(
                "INVALID_ARGUMENT",
                "ctx.instance",
                format!("{other:?} is not a boolean"),
            ));
        }
    };
    Ok(RequestContext {
        org_id: query.org_id,
        instance: Some(instance),
    })
}

fn resource_owner_type(from_organization: bool) -> &'static str {
    if from_organization {
        "RESOURCE_OWNER_TYPE_ORG"
    } else {
        "RESOURCE_OWNER_TYPE_INSTANCE"
    }
}

fn is_zero(value: &u64) -> bool {
    *value == 0
}

fn is_false(value: &bool) -> bool {
    !*value
}

/// 64-bit integers as JSON strings, zero values omitted (proto3 JSON).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct LockoutSettingsOut {
    #[serde(skip_serializing_if = "is_zero", serialize_with = "as_string")]
    #[schema(value_type = Option<String>)]
    max_password_attempts: u64,
    #[serde(skip_serializing_if = "is_zero", serialize_with = "as_string")]
    #[schema(value_type = Option<String>)]
    max_otp_attempts: u64,
    /// A userd extension: how long a lockout lasts, like `"300s"`; absent: until unlocked.
    #[serde(skip_serializing_if = "Option::is_none")]
    lockout_duration: Option<String>,
    resource_owner_type: &'static str,
}

fn as_string<S: serde::Serializer>(value: &u64, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(value)
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct GetLockoutSettingsResponse {
    settings: LockoutSettingsOut,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SetLockoutSettingsRequest {
    ctx: Option<RequestContext>,
    /// A 64-bit integer, as a string or a number; 0 never locks.
    #[schema(value_type = Option<String>)]
    max_password_attempts: Option<Value>,
    #[schema(value_type = Option<String>)]
    max_otp_attempts: Option<Value>,
    /// Like `"300s"`; `"0s"` or absent: locked until unlocked.
    lockout_duration: Option<String>,
}

/// The `details` of a settings change.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SettingsDetailsOut {
    change_date: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SettingsChangedResponse {
    details: SettingsDetailsOut,
}

fn settings_changed(at: userd_domain::Timestamp) -> HttpResponse {
    HttpResponse::Ok().json(SettingsChangedResponse {
        details: SettingsDetailsOut {
            change_date: at.to_rfc3339(),
        },
    })
}

#[utoipa::path(
    get,
    path = "/v2/settings/lockout",
    tag = "settings",
    params(
        ("ctx.orgId" = Option<String>, Query, description = "An organization's settings (its own or the instance's)"),
        ("ctx.instance" = Option<bool>, Query, description = "The instance's settings"),
    ),
    responses(
        (status = 200, description = "The settings that apply", body = GetLockoutSettingsResponse),
        crate::openapi::ReadErrors,
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn get_lockout_settings(
    req: HttpRequest,
    service: Service,
    login: Login,
) -> Answer {
    let caller = authenticate(&req, &service).await?;
    let scope = context_of_query(&req)?.scope(&caller.org_id)?;
    let found = login.lockout_settings(&caller, &scope).await?;
    let settings = found.value;
    Ok(HttpResponse::Ok().json(GetLockoutSettingsResponse {
        settings: LockoutSettingsOut {
            max_password_attempts: settings.max_password_attempts,
            max_otp_attempts: settings.max_otp_attempts,
            lockout_duration: (!settings.lockout_duration.is_zero())
                .then(|| format_duration(settings.lockout_duration)),
            resource_owner_type: resource_owner_type(found.from_organization),
        },
    }))
}

#[utoipa::path(
    put,
    path = "/v2/settings/lockout",
    tag = "settings",
    request_body(content = SetLockoutSettingsRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "Stored", body = SettingsChangedResponse),
        crate::openapi::WriteErrors,
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn set_lockout_settings(
    req: HttpRequest,
    payload: Payload,
    service: Service,
    login: Login,
) -> Answer {
    let caller = authenticate(&req, &service).await?;
    let body = read_body(&req, payload).await?;
    let request = parse_json::<SetLockoutSettingsRequest>(&body)?;
    let scope = request.ctx.unwrap_or_default().scope(&caller.org_id)?;
    let settings = LockoutSettings {
        max_password_attempts: uint64(
            "maxPasswordAttempts",
            request.max_password_attempts.as_ref(),
        )?,
        max_otp_attempts: uint64("maxOtpAttempts", request.max_otp_attempts.as_ref())?,
        lockout_duration: request
            .lockout_duration
            .as_deref()
            .map(|text| duration("lockoutDuration", text))
            .transpose()?
            .unwrap_or_default(),
    };
    let changed = login
        .set_lockout_settings(&caller, &scope, settings)
        .await?;
    Ok(settings_changed(changed))
}

#[utoipa::path(
    delete,
    path = "/v2/settings/lockout",
    tag = "settings",
    params(("ctx.orgId" = String, Query, description = "The organization to return to the instance's settings")),
    responses(
        (status = 200, description = "Back to the instance's settings", body = SettingsChangedResponse),
        crate::openapi::WriteErrors,
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn reset_lockout_settings(
    req: HttpRequest,
    service: Service,
    login: Login,
) -> Answer {
    let caller = authenticate(&req, &service).await?;
    let org = match context_of_query(&req)?.scope(&caller.org_id)? {
        SettingsScope::Organization(org) => org,
        SettingsScope::Instance => {
            return Err(ApiError::from(invalid(
                "INVALID_ARGUMENT",
                "ctx",
                "the instance's settings cannot be removed, only changed",
            )));
        }
    };
    let changed = login.reset_lockout_settings(&caller, &org).await?;
    Ok(settings_changed(changed))
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ComplexitySettingsOut {
    #[serde(skip_serializing_if = "is_zero", serialize_with = "as_string")]
    #[schema(value_type = Option<String>)]
    min_length: u64,
    #[serde(skip_serializing_if = "is_false")]
    requires_uppercase: bool,
    #[serde(skip_serializing_if = "is_false")]
    requires_lowercase: bool,
    #[serde(skip_serializing_if = "is_false")]
    requires_number: bool,
    #[serde(skip_serializing_if = "is_false")]
    requires_symbol: bool,
    resource_owner_type: &'static str,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct GetComplexitySettingsResponse {
    settings: ComplexitySettingsOut,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SetComplexitySettingsRequest {
    ctx: Option<RequestContext>,
    #[schema(value_type = Option<String>)]
    min_length: Option<Value>,
    requires_uppercase: Option<bool>,
    requires_lowercase: Option<bool>,
    requires_number: Option<bool>,
    requires_symbol: Option<bool>,
}

#[utoipa::path(
    get,
    path = "/v2/settings/password/complexity",
    tag = "settings",
    params(
        ("ctx.orgId" = Option<String>, Query, description = "An organization's settings (its own or the instance's)"),
        ("ctx.instance" = Option<bool>, Query, description = "The instance's settings"),
    ),
    responses(
        (status = 200, description = "The settings that apply", body = GetComplexitySettingsResponse),
        crate::openapi::ReadErrors,
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn get_complexity_settings(
    req: HttpRequest,
    service: Service,
    login: Login,
) -> Answer {
    let caller = authenticate(&req, &service).await?;
    let scope = context_of_query(&req)?.scope(&caller.org_id)?;
    let found = login.complexity_settings(&caller, &scope).await?;
    let settings: ComplexitySettings = found.value;
    Ok(HttpResponse::Ok().json(GetComplexitySettingsResponse {
        settings: ComplexitySettingsOut {
            min_length: settings.min_length,
            requires_uppercase: settings.requires_uppercase,
            requires_lowercase: settings.requires_lowercase,
            requires_number: settings.requires_number,
            requires_symbol: settings.requires_symbol,
            resource_owner_type: resource_owner_type(found.from_organization),
        },
    }))
}

#[utoipa::path(
    put,
    path = "/v2/settings/password/complexity",
    tag = "settings",
    request_body(content = SetComplexitySettingsRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "Stored", body = SettingsChangedResponse),
        crate::openapi::WriteErrors,
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn set_complexity_settings(
    req: HttpRequest,
    payload: Payload,
    service: Service,
    login: Login,
) -> Answer {
    let caller = authenticate(&req, &service).await?;
    let body = read_body(&req, payload).await?;
    let request = parse_json::<SetComplexitySettingsRequest>(&body)?;
    let scope = request.ctx.unwrap_or_default().scope(&caller.org_id)?;
    let settings = ComplexitySettings {
        min_length: uint64("minLength", request.min_length.as_ref())?,
        requires_uppercase: request.requires_uppercase.unwrap_or(false),
        requires_lowercase: request.requires_lowercase.unwrap_or(false),
        requires_number: request.requires_number.unwrap_or(false),
        requires_symbol: request.requires_symbol.unwrap_or(false),
    };
    let changed = login
        .set_complexity_settings(&caller, &scope, settings)
        .await?;
    Ok(settings_changed(changed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_and_write_as_proto3_json() {
        assert_eq!(duration("d", "300s").unwrap(), Duration::from_secs(300));
        assert_eq!(duration("d", "1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(
            duration("d", "0.000000001s").unwrap(),
            Duration::from_nanos(1)
        );
        for bad in [
            "",
            "s",
            "5",
            "-5s",
            "1.s",
            "1.0000000001s",
            "5m",
            " 5s",
            "1e3s",
        ] {
            assert!(duration("d", bad).is_err(), "{bad:?}");
        }
        assert_eq!(format_duration(Duration::from_secs(300)), "300s");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1.5s");
    }

    #[test]
    fn integers_come_as_strings_or_numbers() {
        assert_eq!(uint64("n", Some(&Value::from("10"))).unwrap(), 10);
        assert_eq!(uint64("n", Some(&Value::from(10))).unwrap(), 10);
        assert_eq!(uint64("n", None).unwrap(), 0);
        assert!(uint64("n", Some(&Value::from(-1))).is_err());
        assert!(uint64("n", Some(&Value::from("ten"))).is_err());
    }
}
