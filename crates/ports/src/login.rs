//! The driving port of passwords, sessions and login settings ([`LoginService`]): what a
//! transport adapter may ask, in adapter-neutral types.

use std::time::Duration;

use async_trait::async_trait;
use userd_domain::Timestamp;
use userd_domain::authz::Caller;
use userd_domain::values::{OrgId, UserId};

use crate::error::ServiceError;
use crate::passwords::PlainPassword;
use crate::service::{ResourceDetails, UserRef};
use crate::settings::{ComplexitySettings, LockoutSettings, SettingsScope};
use crate::tokens::TokenSecret;

/// A new password: in clear (userd hashes it), or a hash brought from elsewhere.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NewPassword {
    Plain(PlainPassword),
    Hash(String),
}

/// What a caller proves when it changes a password.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PasswordProof {
    None,
    CurrentPassword(PlainPassword),
    VerificationCode(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetPassword {
    pub password: NewPassword,
    pub change_required: bool,
    pub proof: PasswordProof,
}

/// Who a session is for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SessionUser {
    Id(UserId),
    /// A username, with the organization whose organization-specific usernames also
    /// count.
    LoginName {
        name: String,
        organization: Option<OrgId>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct SessionChecks {
    pub user: Option<SessionUser>,
    pub password: Option<PlainPassword>,
}

/// A session just created or changed: its new token, shown this once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuedSession {
    pub details: ResourceDetails,
    pub session_id: String,
    pub token: TokenSecret,
}

/// A session as GetSession shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionView {
    pub id: String,
    pub created: Timestamp,
    pub changed: Timestamp,
    pub expires_at: Option<Timestamp>,
    pub user_id: UserId,
    pub org_id: OrgId,
    pub login_name: String,
    pub user_verified_at: Timestamp,
    pub password_verified_at: Option<Timestamp>,
}

/// How a password-reset code reaches the user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResetDelivery {
    /// The caller delivers it: the code is in the answer.
    ReturnCode,
    SendEmail {
        url_template: Option<String>,
    },
    SendSms,
}

/// A password reset just requested.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PasswordReset {
    pub details: ResourceDetails,
    /// With [`ResetDelivery::ReturnCode`] only.
    pub code: Option<String>,
}

/// Settings as read: the values that apply and where they come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EffectiveSettings<T> {
    pub value: T,
    /// Whether an organization's own settings apply rather than the instance's.
    pub from_organization: bool,
}

/// Passwords, sessions and the settings that govern them.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait LoginService: Send + Sync {
    async fn set_password(
        &self,
        caller: &Caller,
        target: &UserRef,
        request: SetPassword,
    ) -> Result<ResourceDetails, ServiceError>;

    async fn remove_password(
        &self,
        caller: &Caller,
        target: &UserRef,
    ) -> Result<ResourceDetails, ServiceError>;

    /// Makes a password-reset code (voiding any earlier one) and delivers it.
    async fn request_password_reset(
        &self,
        caller: &Caller,
        target: &UserRef,
        delivery: ResetDelivery,
    ) -> Result<PasswordReset, ServiceError>;

    async fn create_session(
        &self,
        caller: &Caller,
        checks: SessionChecks,
        lifetime: Option<Duration>,
    ) -> Result<IssuedSession, ServiceError>;

    async fn set_session(
        &self,
        caller: &Caller,
        session_id: &str,
        checks: SessionChecks,
        lifetime: Option<Duration>,
    ) -> Result<IssuedSession, ServiceError>;

    async fn get_session(
        &self,
        caller: &Caller,
        session_id: &str,
    ) -> Result<SessionView, ServiceError>;

    async fn delete_session(
        &self,
        caller: &Caller,
        session_id: &str,
    ) -> Result<ResourceDetails, ServiceError>;

    async fn lockout_settings(
        &self,
        caller: &Caller,
        scope: &SettingsScope,
    ) -> Result<EffectiveSettings<LockoutSettings>, ServiceError>;

    async fn set_lockout_settings(
        &self,
        caller: &Caller,
        scope: &SettingsScope,
        settings: LockoutSettings,
    ) -> Result<Timestamp, ServiceError>;

    /// Returns an organization to the instance's settings.
    async fn reset_lockout_settings(
        &self,
        caller: &Caller,
        org: &OrgId,
    ) -> Result<Timestamp, ServiceError>;

    async fn complexity_settings(
        &self,
        caller: &Caller,
        scope: &SettingsScope,
    ) -> Result<EffectiveSettings<ComplexitySettings>, ServiceError>;

    async fn set_complexity_settings(
        &self,
        caller: &Caller,
        scope: &SettingsScope,
        settings: ComplexitySettings,
    ) -> Result<Timestamp, ServiceError>;
}
