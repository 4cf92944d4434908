//! Login policy settings, per organization with the instance's as the fallback: lockout
//! and password complexity.

use std::time::Duration;

use async_trait::async_trait;
use userd_domain::password::LockoutPolicy;
use userd_domain::values::OrgId;

use crate::error::StoreError;
use crate::repository::RecordTimes;

/// Where settings apply: the whole instance, or one organization.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SettingsScope {
    Instance,
    Organization(OrgId),
}

/// The lockout settings (ZITADEL's `LockoutSettings`, plus userd's `lockout_duration`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LockoutSettings {
    /// Failed password checks that lock a user; 0 never locks.
    pub max_password_attempts: u64,
    /// Stored and shown; userd has no OTP checks yet.
    pub max_otp_attempts: u64,
    /// How long a lockout lasts; zero until an administrator unlocks.
    pub lockout_duration: Duration,
}

impl LockoutSettings {
    /// The instance default when nothing is stored: ZITADEL's ten attempts, locked until
    /// unlocked.
    pub const DEFAULT: LockoutSettings = LockoutSettings {
        max_password_attempts: 10,
        max_otp_attempts: 0,
        lockout_duration: Duration::ZERO,
    };

    /// The rule the state machine applies.
    pub fn policy(&self) -> LockoutPolicy {
        LockoutPolicy {
            max_password_attempts: u32::try_from(self.max_password_attempts).unwrap_or(u32::MAX),
            lockout_duration: (!self.lockout_duration.is_zero()).then_some(self.lockout_duration),
        }
    }
}

/// Password complexity (ZITADEL's `PasswordComplexitySettings`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ComplexitySettings {
    pub min_length: u64,
    pub requires_uppercase: bool,
    pub requires_lowercase: bool,
    pub requires_number: bool,
    pub requires_symbol: bool,
}

impl ComplexitySettings {
    pub const DEFAULT: ComplexitySettings = ComplexitySettings {
        min_length: 8,
        requires_uppercase: false,
        requires_lowercase: false,
        requires_number: false,
        requires_symbol: false,
    };
}

/// Settings as stored for one scope, and when.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stored<T> {
    pub value: T,
    pub times: RecordTimes,
}

/// Settings storage. Each getter answers for exactly the scope asked, `None` when that
/// scope stores nothing (the use cases apply the fallback).
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait SettingsRepository: Send + Sync {
    async fn lockout(
        &self,
        scope: &SettingsScope,
    ) -> Result<Option<Stored<LockoutSettings>>, StoreError>;

    /// An unknown organization is [`StoreError::OrganizationNotFound`].
    async fn set_lockout(
        &self,
        scope: &SettingsScope,
        settings: &LockoutSettings,
        at: userd_domain::Timestamp,
    ) -> Result<RecordTimes, StoreError>;

    /// The lockout settings that apply in `org`: its own, else the instance's, else
    /// none stored; one read, as every password check needs it.
    async fn lockout_applying_to(&self, org: &OrgId)
    -> Result<Option<LockoutSettings>, StoreError>;

    async fn complexity(
        &self,
        scope: &SettingsScope,
    ) -> Result<Option<Stored<ComplexitySettings>>, StoreError>;

    async fn set_complexity(
        &self,
        scope: &SettingsScope,
        settings: &ComplexitySettings,
        at: userd_domain::Timestamp,
    ) -> Result<RecordTimes, StoreError>;

    /// Drops what `scope` stores of one kind (`lockout` or `complexity`); false when it
    /// stored nothing.
    async fn remove(&self, scope: &SettingsScope, kind: SettingsKind) -> Result<bool, StoreError>;
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SettingsKind {
    Lockout,
    Complexity,
}

impl SettingsKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SettingsKind::Lockout => "lockout",
            SettingsKind::Complexity => "password_complexity",
        }
    }
}
