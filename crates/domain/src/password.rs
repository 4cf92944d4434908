//! The password authenticator and the lockout rules around it.
//!
//! Hashing is not done here (it is slow and needs a crate of its own): the state machine
//! holds the hash as an opaque string and is told whether a check matched. What it
//! decides is everything around that verdict: who may be checked at all, how failures
//! are counted, when they lock the user and when such a lock ends by itself.

use std::fmt;
use std::time::Duration;

use crate::Timestamp;

/// A password hash in PHC or modular-crypt form. Its `Debug` never shows the hash, so a
/// user logged with `{:?}` leaks nothing an attacker could crack offline.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash(String);

impl PasswordHash {
    pub fn new(encoded: impl Into<String>) -> Self {
        PasswordHash(encoded.into())
    }

    pub fn encoded(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordHash(<redacted>)")
    }
}

/// A user's password authenticator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Password {
    pub hash: PasswordHash,
    /// When it was last set.
    pub changed: Timestamp,
    /// Whether the user must choose a new one at the next login.
    pub change_required: bool,
}

/// The lockout settings that apply to a user (its organization's, or the instance's).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LockoutPolicy {
    /// Failed checks that lock the user; 0 never locks.
    pub max_password_attempts: u32,
    /// How long a lockout lasts; `None` until an administrator unlocks.
    pub lockout_duration: Option<Duration>,
}

impl LockoutPolicy {
    /// ZITADEL's instance default: ten failures, locked until unlocked.
    pub const INSTANCE_DEFAULT: LockoutPolicy = LockoutPolicy {
        max_password_attempts: 10,
        lockout_duration: None,
    };

    /// The lock a user gets on reaching the limit at `now`.
    pub fn lockout(&self, now: Timestamp) -> Lock {
        Lock {
            cause: LockCause::Lockout,
            until: self
                .lockout_duration
                .map(|duration| now.saturating_add(duration)),
        }
    }
}

/// Who locked a user.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LockCause {
    /// `_lock` by an administrator: never ends by itself.
    Admin,
    /// Too many failed password checks.
    Lockout,
}

impl LockCause {
    pub fn as_str(self) -> &'static str {
        match self {
            LockCause::Admin => "admin",
            LockCause::Lockout => "lockout",
        }
    }

    pub fn parse(text: &str) -> Option<LockCause> {
        match text {
            "admin" => Some(LockCause::Admin),
            "lockout" => Some(LockCause::Lockout),
            _ => None,
        }
    }
}

/// A lock on a user: its cause and, for a lockout with a duration, when it ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Lock {
    pub cause: LockCause,
    pub until: Option<Timestamp>,
}

impl Lock {
    pub const ADMIN: Lock = Lock {
        cause: LockCause::Admin,
        until: None,
    };

    /// Whether the lock still holds at `now`.
    pub fn holds_at(&self, now: Timestamp) -> bool {
        self.until.is_none_or(|until| now < until)
    }
}

/// Why a lock ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UnlockCause {
    /// `_unlock`.
    Admin,
    /// A lockout's duration ran out; recorded when the expiry was first acted on.
    LockoutExpired,
}

impl UnlockCause {
    pub fn as_str(self) -> &'static str {
        match self {
            UnlockCause::Admin => "admin",
            UnlockCause::LockoutExpired => "lockout_expired",
        }
    }

    pub fn parse(text: &str) -> Option<UnlockCause> {
        match text {
            "admin" => Some(UnlockCause::Admin),
            "lockout_expired" => Some(UnlockCause::LockoutExpired),
            _ => None,
        }
    }
}

/// Why a password check was refused before or instead of counting it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum CheckRefusal {
    #[error("invalid credentials")]
    UnknownUser,
    #[error("invalid credentials")]
    NoPassword,
    #[error("the user is locked")]
    Locked,
    #[error("the user is inactive")]
    Inactive,
    /// The hash that was verified is no longer the user's: a concurrent change won.
    #[error("invalid credentials")]
    PasswordChanged,
}

impl CheckRefusal {
    /// The reason clients see. An unknown user and a user without a password read
    /// exactly like a wrong password, so a check never tells who exists.
    pub fn reason(self) -> &'static str {
        match self {
            CheckRefusal::UnknownUser
            | CheckRefusal::NoPassword
            | CheckRefusal::PasswordChanged => "INVALID_CREDENTIALS",
            CheckRefusal::Locked => "USER_LOCKED",
            CheckRefusal::Inactive => "USER_INACTIVE",
        }
    }
}

/// A password-reset code as the user holds it: only its hash, when it ends, and how many
/// wrong codes were tried against it.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordCode {
    /// Hex SHA-256 of the code. A code has 40 random bits and dies after
    /// [`MAX_CODE_ATTEMPTS`] wrong tries or when it expires, so a fast hash is enough to
    /// keep it out of a database dump's plain sight.
    pub hash: String,
    pub expires: Timestamp,
    pub failed_attempts: u32,
}

impl fmt::Debug for PasswordCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordCode")
            .field("expires", &self.expires)
            .field("failed_attempts", &self.failed_attempts)
            .finish_non_exhaustive()
    }
}

/// Wrong codes a code survives; the last of them still answers INVALID_CODE, every try
/// after it CODE_EXHAUSTED.
pub const MAX_CODE_ATTEMPTS: u32 = 5;

/// Why a code was not accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum CodeRefusal {
    #[error("the verification code is not valid")]
    Invalid,
    #[error("the verification code has expired")]
    Expired,
    #[error("the verification code was tried too often; request a new one")]
    Exhausted,
}

impl CodeRefusal {
    pub fn reason(self) -> &'static str {
        match self {
            CodeRefusal::Invalid => "INVALID_CODE",
            CodeRefusal::Expired => "CODE_EXPIRED",
            CodeRefusal::Exhausted => "CODE_EXHAUSTED",
        }
    }
}

/// The verdict of verifying a password against a hash the user had.
#[derive(Clone, Copy, Debug)]
pub struct Verified<'a> {
    /// The hash that was verified, so a concurrent password change is noticed.
    pub hash: &'a PasswordHash,
    pub matches: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_never_shows_in_debug_output() {
        let hash = PasswordHash::new("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA");
        assert_eq!(format!("{hash:?}"), "PasswordHash(<redacted>)");
        let password = Password {
            hash,
            changed: Timestamp::UNIX_EPOCH,
            change_required: false,
        };
        assert!(!format!("{password:?}").contains("argon2"));
    }

    #[test]
    fn an_admin_lock_holds_forever_and_a_timed_lockout_ends() {
        let far = Timestamp::from_unix_micros(i64::MAX);
        assert!(Lock::ADMIN.holds_at(far));
        let policy = LockoutPolicy {
            max_password_attempts: 3,
            lockout_duration: Some(Duration::from_secs(60)),
        };
        let lock = policy.lockout(Timestamp::from_unix_micros(0));
        assert!(lock.holds_at(Timestamp::from_unix_micros(59_999_999)));
        assert!(!lock.holds_at(Timestamp::from_unix_micros(60_000_000)));
        assert!(LockoutPolicy::INSTANCE_DEFAULT.lockout(far).holds_at(far));
    }

    #[test]
    fn causes_round_trip_through_their_names() {
        for cause in [LockCause::Admin, LockCause::Lockout] {
            assert_eq!(LockCause::parse(cause.as_str()), Some(cause));
        }
        for cause in [UnlockCause::Admin, UnlockCause::LockoutExpired] {
            assert_eq!(UnlockCause::parse(cause.as_str()), Some(cause));
        }
        assert_eq!(LockCause::parse("root"), None);
    }

    #[test]
    fn unknown_users_and_missing_passwords_read_as_wrong_passwords() {
        assert_eq!(CheckRefusal::UnknownUser.reason(), "INVALID_CREDENTIALS");
        assert_eq!(CheckRefusal::NoPassword.reason(), "INVALID_CREDENTIALS");
        assert_eq!(
            CheckRefusal::UnknownUser.to_string(),
            CheckRefusal::NoPassword.to_string()
        );
        assert_eq!(CheckRefusal::Locked.reason(), "USER_LOCKED");
        assert_eq!(CheckRefusal::Inactive.reason(), "USER_INACTIVE");
    }
}
