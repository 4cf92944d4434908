//! The user aggregate.
//!
//! A user has a lifecycle (`Active`, `Inactive`, `Deleted`) and, independently, a lock
//! (by an administrator, or a lockout after failed password checks, which may end by
//! itself). Every accepted command appends exactly one [`UserEvent`]; a password check
//! may append a few ([`User::record_password_check`]). The current state is the fold of
//! those events ([`User::replay`]). Commands never mutate: [`User::execute`] checks the
//! guard and returns the event together with the state it leads to.

use crate::Timestamp;
use crate::password::{
    CheckRefusal, CodeRefusal, Lock, LockoutPolicy, MAX_CODE_ATTEMPTS, Password, PasswordCode,
    PasswordHash, UnlockCause, Verified,
};
use crate::values::{
    Email, InvalidValue, MAX_USERNAMES_PER_USER, OrgId, Phone, SchemaId, UserData, UserId,
    Username, UsernameId,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Lifecycle {
    Active,
    Inactive,
    Deleted,
}

/// The state a user is reported in. Derived, never stored on its own: inactive wins over
/// locked, locked over active.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum UserState {
    Active,
    Inactive,
    Locked,
    Deleted,
}

impl UserState {
    pub const ALL: [UserState; 4] = [
        UserState::Active,
        UserState::Inactive,
        UserState::Locked,
        UserState::Deleted,
    ];

    pub fn of(lifecycle: Lifecycle, locked: bool) -> UserState {
        match (lifecycle, locked) {
            (Lifecycle::Deleted, _) => UserState::Deleted,
            (Lifecycle::Inactive, _) => UserState::Inactive,
            (Lifecycle::Active, true) => UserState::Locked,
            (Lifecycle::Active, false) => UserState::Active,
        }
    }

    /// The enum name clients see.
    pub fn as_str(self) -> &'static str {
        match self {
            UserState::Active => "USER_STATE_ACTIVE",
            UserState::Inactive => "USER_STATE_INACTIVE",
            UserState::Locked => "USER_STATE_LOCKED",
            UserState::Deleted => "USER_STATE_DELETED",
        }
    }

    pub fn parse(name: &str) -> Option<UserState> {
        UserState::ALL
            .into_iter()
            .find(|state| state.as_str() == name)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmailContact {
    pub address: Email,
    pub verified: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PhoneContact {
    pub number: Phone,
    pub verified: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Contact {
    pub email: Option<EmailContact>,
    pub phone: Option<PhoneContact>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsernameEntry {
    pub id: UsernameId,
    pub username: Username,
    pub organization_specific: bool,
}

/// The current state of one user.
#[derive(Clone, Debug, PartialEq)]
pub struct User {
    pub id: UserId,
    pub org_id: OrgId,
    pub schema_id: Option<SchemaId>,
    pub data: UserData,
    pub contact: Contact,
    pub usernames: Vec<UsernameEntry>,
    pub lifecycle: Lifecycle,
    /// The lock as the last event left it. A lockout with a duration may have run out
    /// since: [`User::lock_at`] says whether it still holds.
    pub lock: Option<Lock>,
    pub password: Option<Password>,
    /// Failed password checks since the last success, password change or unlock; never
    /// more than the lockout limit that applied when they were counted.
    pub failed_password_checks: u32,
    /// The outstanding password-reset code, if one was requested and not yet used.
    pub password_code: Option<PasswordCode>,
    /// The outstanding code that proves the e-mail address, if one was sent.
    pub email_code: Option<PasswordCode>,
    /// The outstanding code that proves the phone number, if one was sent.
    pub phone_code: Option<PasswordCode>,
    /// Login sessions begun before this time are over: the time of the last lock,
    /// deactivation or password change (the creation, before any).
    pub sessions_valid_from: Timestamp,
    /// Time of the first event.
    pub created: Timestamp,
    /// Time of the last event.
    pub changed: Timestamp,
    /// Sequence number of the last event; the first event is 1.
    pub sequence: u64,
}

/// Everything a new user starts with.
#[derive(Clone, Debug, PartialEq)]
pub struct UserCreated {
    pub org_id: OrgId,
    pub schema_id: Option<SchemaId>,
    pub data: UserData,
    pub contact: Contact,
    pub usernames: Vec<UsernameEntry>,
}

/// A change of profile. Present fields replace the current value; an event carries only
/// the fields that actually changed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct UserPatch {
    pub schema_id: Option<SchemaId>,
    pub data: Option<UserData>,
    pub email: Option<EmailContact>,
    pub phone: Option<PhoneContact>,
}

impl UserPatch {
    pub fn is_empty(&self) -> bool {
        self.schema_id.is_none()
            && self.data.is_none()
            && self.email.is_none()
            && self.phone.is_none()
    }
}

/// What an event did to a user.
#[derive(Clone, Debug, PartialEq)]
pub enum UserChange {
    Created(Box<UserCreated>),
    Updated(Box<UserPatch>),
    Locked(Lock),
    Unlocked(UnlockCause),
    Deactivated,
    Activated,
    Deleted,
    PasswordSet {
        hash: PasswordHash,
        change_required: bool,
    },
    PasswordRemoved,
    /// A failed check, and the user's count of failures after it.
    PasswordCheckFailed {
        failed_checks: u32,
    },
    /// A successful check that ended a run of failures (not every success is recorded).
    PasswordCheckSucceeded,
    /// A password-reset code was made; it replaces any earlier one.
    PasswordCodeAdded {
        hash: String,
        expires: Timestamp,
    },
    /// A wrong code was tried against the outstanding one.
    PasswordCodeCheckFailed,
    /// A code that proves an address was made; it replaces any earlier one.
    ContactCodeAdded {
        kind: ContactKind,
        hash: String,
        expires: Timestamp,
    },
    /// The address was proven with its code.
    ContactVerified(ContactKind),
    /// A wrong code was tried against the address's outstanding one.
    ContactCodeCheckFailed(ContactKind),
}

/// Which of a user's addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ContactKind {
    Email,
    Phone,
}

impl UserChange {
    /// The event names of the API reference, also the labels of the events metric.
    pub const TYPES: [&'static str; 19] = [
        Self::CREATED,
        Self::UPDATED,
        Self::LOCKED,
        Self::UNLOCKED,
        Self::DEACTIVATED,
        Self::ACTIVATED,
        Self::DELETED,
        Self::PASSWORD_SET,
        Self::PASSWORD_REMOVED,
        Self::PASSWORD_CHECK_FAILED,
        Self::PASSWORD_CHECK_SUCCEEDED,
        Self::PASSWORD_CODE_ADDED,
        Self::PASSWORD_CODE_CHECK_FAILED,
        Self::EMAIL_CODE_ADDED,
        Self::EMAIL_VERIFIED,
        Self::EMAIL_CODE_CHECK_FAILED,
        Self::PHONE_CODE_ADDED,
        Self::PHONE_VERIFIED,
        Self::PHONE_CODE_CHECK_FAILED,
    ];

    pub const CREATED: &'static str = "user.created";
    pub const UPDATED: &'static str = "user.updated";
    pub const LOCKED: &'static str = "user.locked";
    pub const UNLOCKED: &'static str = "user.unlocked";
    pub const DEACTIVATED: &'static str = "user.deactivated";
    pub const ACTIVATED: &'static str = "user.activated";
    pub const DELETED: &'static str = "user.deleted";
    pub const PASSWORD_SET: &'static str = "user.password.set";
    pub const PASSWORD_REMOVED: &'static str = "user.password.removed";
    pub const PASSWORD_CHECK_FAILED: &'static str = "user.password.check.failed";
    pub const PASSWORD_CHECK_SUCCEEDED: &'static str = "user.password.check.succeeded";
    pub const PASSWORD_CODE_ADDED: &'static str = "user.password.code.added";
    pub const PASSWORD_CODE_CHECK_FAILED: &'static str = "user.password.code.check.failed";
    pub const EMAIL_CODE_ADDED: &'static str = "user.email.code.added";
    pub const EMAIL_VERIFIED: &'static str = "user.email.verified";
    pub const EMAIL_CODE_CHECK_FAILED: &'static str = "user.email.code.check.failed";
    pub const PHONE_CODE_ADDED: &'static str = "user.phone.code.added";
    pub const PHONE_VERIFIED: &'static str = "user.phone.verified";
    pub const PHONE_CODE_CHECK_FAILED: &'static str = "user.phone.code.check.failed";

    pub fn event_type(&self) -> &'static str {
        match self {
            UserChange::Created(_) => Self::CREATED,
            UserChange::Updated(_) => Self::UPDATED,
            UserChange::Locked(_) => Self::LOCKED,
            UserChange::Unlocked(_) => Self::UNLOCKED,
            UserChange::Deactivated => Self::DEACTIVATED,
            UserChange::Activated => Self::ACTIVATED,
            UserChange::Deleted => Self::DELETED,
            UserChange::PasswordSet { .. } => Self::PASSWORD_SET,
            UserChange::PasswordRemoved => Self::PASSWORD_REMOVED,
            UserChange::PasswordCheckFailed { .. } => Self::PASSWORD_CHECK_FAILED,
            UserChange::PasswordCheckSucceeded => Self::PASSWORD_CHECK_SUCCEEDED,
            UserChange::PasswordCodeAdded { .. } => Self::PASSWORD_CODE_ADDED,
            UserChange::PasswordCodeCheckFailed => Self::PASSWORD_CODE_CHECK_FAILED,
            UserChange::ContactCodeAdded { kind, .. } => match kind {
                ContactKind::Email => Self::EMAIL_CODE_ADDED,
                ContactKind::Phone => Self::PHONE_CODE_ADDED,
            },
            UserChange::ContactVerified(kind) => match kind {
                ContactKind::Email => Self::EMAIL_VERIFIED,
                ContactKind::Phone => Self::PHONE_VERIFIED,
            },
            UserChange::ContactCodeCheckFailed(kind) => match kind {
                ContactKind::Email => Self::EMAIL_CODE_CHECK_FAILED,
                ContactKind::Phone => Self::PHONE_CODE_CHECK_FAILED,
            },
        }
    }
}

/// One entry of a user's event log: when, who, what.
#[derive(Clone, Debug, PartialEq)]
pub struct UserEvent {
    pub user_id: UserId,
    pub sequence: u64,
    pub at: Timestamp,
    /// The user who caused it; `None` for the system itself (the first-start bootstrap).
    pub actor: Option<UserId>,
    pub change: UserChange,
}

/// Something a client may ask of an existing user.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    Patch(UserPatch),
    Lock,
    Unlock,
    Deactivate,
    Activate,
    Delete,
    /// Sets (or replaces) the password with an already computed hash.
    SetPassword {
        hash: PasswordHash,
        change_required: bool,
    },
    RemovePassword,
    /// Makes a password-reset code (given as its hash), valid until `expires`.
    RequestPasswordReset {
        code_hash: String,
        expires: Timestamp,
    },
    /// Counts a wrong code against the outstanding one.
    FailPasswordCode,
    /// Makes a code (given as its hash) that proves an unverified address.
    AddContactCode {
        kind: ContactKind,
        code_hash: String,
        expires: Timestamp,
    },
    /// Marks an address as proven; the caller checked its code.
    VerifyContact(ContactKind),
    /// Counts a wrong code against the address's outstanding one.
    FailContactCode(ContactKind),
}

impl Command {
    pub fn name(&self) -> &'static str {
        match self {
            Command::Patch(_) => "patch",
            Command::Lock => "lock",
            Command::Unlock => "unlock",
            Command::Deactivate => "deactivate",
            Command::Activate => "activate",
            Command::Delete => "delete",
            Command::SetPassword { .. } => "set_password",
            Command::RemovePassword => "remove_password",
            Command::RequestPasswordReset { .. } => "request_password_reset",
            Command::FailPasswordCode => "fail_password_code",
            Command::AddContactCode { .. } => "add_contact_code",
            Command::VerifyContact(_) => "verify_contact",
            Command::FailContactCode(_) => "fail_contact_code",
        }
    }
}

/// Why the state machine refused a command. One variant per refusal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum Refusal {
    #[error("user is already locked")]
    AlreadyLocked,
    #[error("user is not locked")]
    NotLocked,
    #[error("user is already inactive")]
    AlreadyInactive,
    #[error("user is not inactive")]
    NotInactive,
    #[error("user has no password")]
    NoPassword,
    #[error("user has no e-mail address")]
    NoEmail,
    #[error("user has no phone number")]
    NoPhone,
    #[error("the e-mail address is already verified")]
    EmailAlreadyVerified,
    #[error("the phone number is already verified")]
    PhoneAlreadyVerified,
    /// A deleted user accepts nothing; callers report it exactly like an unknown id.
    #[error("user not found")]
    Deleted,
}

impl Refusal {
    /// The stable, machine-readable reason clients see.
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::AlreadyLocked => "USER_ALREADY_LOCKED",
            Refusal::NotLocked => "USER_NOT_LOCKED",
            Refusal::AlreadyInactive => "USER_ALREADY_INACTIVE",
            Refusal::NotInactive => "USER_NOT_INACTIVE",
            Refusal::NoPassword => "PASSWORD_NOT_SET",
            Refusal::NoEmail => "EMAIL_NOT_SET",
            Refusal::NoPhone => "PHONE_NOT_SET",
            Refusal::EmailAlreadyVerified => "EMAIL_ALREADY_VERIFIED",
            Refusal::PhoneAlreadyVerified => "PHONE_ALREADY_VERIFIED",
            Refusal::Deleted => "USER_NOT_FOUND",
        }
    }
}

/// The rules every code follows: none outstanding or a wrong one is invalid; five
/// wrong tries use it up, whatever comes next; it dies at its expiry.
fn check_code(
    code: Option<&PasswordCode>,
    code_hash: &str,
    now: Timestamp,
) -> Result<(), CodeRefusal> {
    let Some(code) = code else {
        return Err(CodeRefusal::Invalid);
    };
    if code.failed_attempts >= MAX_CODE_ATTEMPTS {
        return Err(CodeRefusal::Exhausted);
    }
    if code.expires <= now {
        return Err(CodeRefusal::Expired);
    }
    if code.hash != code_hash {
        return Err(CodeRefusal::Invalid);
    }
    Ok(())
}

/// An event log that does not describe a user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    #[error("the first event of user {0} is not user.created")]
    NotCreatedFirst(String),
    #[error("user {user_id} was created twice (sequence {sequence})")]
    CreatedTwice { user_id: String, sequence: u64 },
    #[error("event {sequence} of user {user_id} follows its deletion")]
    AfterDeletion { user_id: String, sequence: u64 },
    #[error("user {user_id}: expected sequence {expected}, found {found}")]
    SequenceGap {
        user_id: String,
        expected: u64,
        found: u64,
    },
    #[error("event {sequence} belongs to user {found}, not to {expected}")]
    WrongUser {
        expected: String,
        found: String,
        sequence: u64,
    },
}

impl UserCreated {
    /// The limits on a new user's usernames: at most [`MAX_USERNAMES_PER_USER`], and no
    /// name given twice (compared as usernames are).
    pub fn check_usernames(&self) -> Result<(), InvalidValue> {
        if self.usernames.len() > MAX_USERNAMES_PER_USER {
            return Err(InvalidValue::new(
                "TOO_MANY_USERNAMES",
                format!("a user may have at most {MAX_USERNAMES_PER_USER} usernames"),
            ));
        }
        let mut keys: Vec<String> = self.usernames.iter().map(|u| u.username.key()).collect();
        keys.sort();
        if let Some(pair) = keys.windows(2).find(|pair| pair[0] == pair[1]) {
            return Err(InvalidValue::new(
                "DUPLICATE_USERNAME",
                format!("the username {:?} is given twice", pair[0]),
            ));
        }
        Ok(())
    }
}

impl User {
    /// Starts a new user: the state after its `user.created` event, and that event.
    /// Refused when the usernames break [`UserCreated::check_usernames`].
    pub fn create(
        id: UserId,
        created: UserCreated,
        at: Timestamp,
        actor: Option<UserId>,
    ) -> Result<(User, UserEvent), InvalidValue> {
        created.check_usernames()?;
        Ok(User::start(id, created, at, actor))
    }

    /// The state after a `user.created` event, whose content was checked when it was
    /// first accepted (replay trusts the log).
    fn start(
        id: UserId,
        created: UserCreated,
        at: Timestamp,
        actor: Option<UserId>,
    ) -> (User, UserEvent) {
        let event = UserEvent {
            user_id: id.clone(),
            sequence: 1,
            at,
            actor,
            change: UserChange::Created(Box::new(created.clone())),
        };
        let user = User {
            id,
            org_id: created.org_id,
            schema_id: created.schema_id,
            data: created.data,
            contact: created.contact,
            usernames: created.usernames,
            lifecycle: Lifecycle::Active,
            lock: None,
            password: None,
            failed_password_checks: 0,
            password_code: None,
            email_code: None,
            phone_code: None,
            sessions_valid_from: at,
            created: at,
            changed: at,
            sequence: 1,
        };
        (user, event)
    }

    /// The lock that holds at `now`: none when a timed lockout has run out.
    pub fn lock_at(&self, now: Timestamp) -> Option<Lock> {
        self.lock.filter(|lock| lock.holds_at(now))
    }

    /// The state to report at `now`.
    pub fn state_at(&self, now: Timestamp) -> UserState {
        UserState::of(self.lifecycle, self.lock_at(now).is_some())
    }

    /// The state as the last event left it: a timed lockout that ran out since still
    /// reads locked here. Storage keeps this; a user to report is first
    /// [`seen_at`](User::seen_at) the time of reporting.
    pub fn state(&self) -> UserState {
        UserState::of(self.lifecycle, self.lock.is_some())
    }

    /// Whether the user's credentials (tokens, sessions) work, as the last event left
    /// it; see [`User::state`].
    pub fn may_authenticate(&self) -> bool {
        self.state() == UserState::Active
    }

    /// Whether the user's credentials work at `now`: only while active and not locked.
    pub fn may_authenticate_at(&self, now: Timestamp) -> bool {
        self.state_at(now) == UserState::Active
    }

    /// Whether a login session begun at `began` still counts at `now`: the user may
    /// authenticate, and was not locked, deactivated or given a new password since (an
    /// unlock does not bring a session back). Judged on the user as stored, so every
    /// process agrees without a write to the sessions.
    pub fn keeps_session(&self, began: Timestamp, now: Timestamp) -> bool {
        self.may_authenticate_at(now) && began > self.sessions_valid_from
    }

    /// The user as it reads at `now`: a timed lockout that ran out is no longer shown.
    /// Nothing is recorded; the next change records the expiry when it acts on it.
    pub fn seen_at(mut self, now: Timestamp) -> User {
        if self.lock.is_some() && self.lock_at(now).is_none() {
            self.lock = None;
            self.failed_password_checks = 0;
        }
        self
    }

    pub fn is_deleted(&self) -> bool {
        self.lifecycle == Lifecycle::Deleted
    }

    /// The guard: which change a command makes, `None` when it would change nothing
    /// (a patch with the current values), or why it is refused.
    ///
    /// A lock is judged as it holds at `now`: a timed lockout that ran out can be locked
    /// again (an admin lock replaces it) but not unlocked.
    pub fn decide(&self, command: &Command, now: Timestamp) -> Result<Option<UserChange>, Refusal> {
        if self.is_deleted() {
            return Err(Refusal::Deleted);
        }
        let locked = self.lock_at(now).is_some();
        let change = match command {
            Command::Lock if locked => return Err(Refusal::AlreadyLocked),
            Command::Lock => UserChange::Locked(Lock::ADMIN),
            Command::Unlock if !locked => return Err(Refusal::NotLocked),
            Command::Unlock => UserChange::Unlocked(UnlockCause::Admin),
            Command::SetPassword {
                hash,
                change_required,
            } => UserChange::PasswordSet {
                hash: hash.clone(),
                change_required: *change_required,
            },
            Command::RemovePassword if self.password.is_none() => {
                return Err(Refusal::NoPassword);
            }
            Command::RemovePassword => UserChange::PasswordRemoved,
            Command::RequestPasswordReset { code_hash, expires } => UserChange::PasswordCodeAdded {
                hash: code_hash.clone(),
                expires: *expires,
            },
            Command::FailPasswordCode if self.password_code.is_none() => return Ok(None),
            Command::FailPasswordCode => UserChange::PasswordCodeCheckFailed,
            Command::AddContactCode {
                kind,
                code_hash,
                expires,
            } => {
                self.unverified(*kind)?;
                UserChange::ContactCodeAdded {
                    kind: *kind,
                    hash: code_hash.clone(),
                    expires: *expires,
                }
            }
            Command::VerifyContact(kind) => {
                self.unverified(*kind)?;
                UserChange::ContactVerified(*kind)
            }
            Command::FailContactCode(kind) if self.contact_code(*kind).is_none() => {
                return Ok(None);
            }
            Command::FailContactCode(kind) => UserChange::ContactCodeCheckFailed(*kind),
            Command::Deactivate if self.lifecycle != Lifecycle::Active => {
                return Err(Refusal::AlreadyInactive);
            }
            Command::Deactivate => UserChange::Deactivated,
            Command::Activate if self.lifecycle != Lifecycle::Inactive => {
                return Err(Refusal::NotInactive);
            }
            Command::Activate => UserChange::Activated,
            Command::Delete => UserChange::Deleted,
            Command::Patch(patch) => {
                let effective = self.effective_patch(patch);
                if effective.is_empty() {
                    return Ok(None);
                }
                UserChange::Updated(Box::new(effective))
            }
        };
        Ok(Some(change))
    }

    /// Runs a command: the event it appends and the state after it, `None` for a no-op.
    ///
    /// The event's time never precedes the previous event's, so `created <= changed`
    /// holds even when the wall clock steps backwards.
    pub fn execute(
        &self,
        command: &Command,
        now: Timestamp,
        actor: Option<UserId>,
    ) -> Result<Option<(User, UserEvent)>, Refusal> {
        let Some(change) = self.decide(command, now)? else {
            return Ok(None);
        };
        let mut next = self.clone();
        let event = next.advance(change, now, actor);
        Ok(Some((next, event)))
    }

    /// Appends one event to this state in place, returning it. Its time never precedes
    /// the previous event's.
    fn advance(&mut self, change: UserChange, now: Timestamp, actor: Option<UserId>) -> UserEvent {
        let event = UserEvent {
            user_id: self.id.clone(),
            sequence: self.sequence + 1,
            at: now.max(self.changed),
            actor,
            change,
        };
        self.fold(&event);
        event
    }

    /// The outstanding code of an address.
    pub fn contact_code(&self, kind: ContactKind) -> Option<&PasswordCode> {
        match kind {
            ContactKind::Email => self.email_code.as_ref(),
            ContactKind::Phone => self.phone_code.as_ref(),
        }
    }

    /// Refuses an address that is missing or already proven.
    fn unverified(&self, kind: ContactKind) -> Result<(), Refusal> {
        let verified = match kind {
            ContactKind::Email => self.contact.email.as_ref().map(|e| e.verified),
            ContactKind::Phone => self.contact.phone.as_ref().map(|p| p.verified),
        };
        match (kind, verified) {
            (ContactKind::Email, None) => Err(Refusal::NoEmail),
            (ContactKind::Phone, None) => Err(Refusal::NoPhone),
            (ContactKind::Email, Some(true)) => Err(Refusal::EmailAlreadyVerified),
            (ContactKind::Phone, Some(true)) => Err(Refusal::PhoneAlreadyVerified),
            (_, Some(false)) => Ok(()),
        }
    }

    /// Whether `code_hash` is the address's outstanding code at `now`, by the rules of
    /// reset codes ([`User::check_password_code`]).
    pub fn check_contact_code(
        &self,
        kind: ContactKind,
        code_hash: &str,
        now: Timestamp,
    ) -> Result<(), CodeRefusal> {
        check_code(self.contact_code(kind), code_hash, now)
    }

    /// Whether `code_hash` is the outstanding reset code at `now`. The caller records a
    /// wrong code with [`Command::FailPasswordCode`] when the answer is
    /// [`CodeRefusal::Invalid`] and a code is outstanding.
    pub fn check_password_code(&self, code_hash: &str, now: Timestamp) -> Result<(), CodeRefusal> {
        check_code(self.password_code.as_ref(), code_hash, now)
    }

    /// The hash a password check at `now` must verify against, or why no check may run:
    /// a locked or inactive user is refused without verifying anything, and a user
    /// without a password reads exactly like a wrong password.
    pub fn password_to_check(&self, now: Timestamp) -> Result<&PasswordHash, CheckRefusal> {
        match self.state_at(now) {
            UserState::Active => {}
            UserState::Locked => return Err(CheckRefusal::Locked),
            UserState::Inactive => return Err(CheckRefusal::Inactive),
            UserState::Deleted => return Err(CheckRefusal::UnknownUser),
        }
        self.password
            .as_ref()
            .map(|password| &password.hash)
            .ok_or(CheckRefusal::NoPassword)
    }

    /// Records the outcome of a password check made at `now`: the events it appends and
    /// the state they lead to.
    ///
    /// The guard of [`User::password_to_check`] is applied again to this state, which may
    /// be newer than the one the check started from: a user locked meanwhile stays
    /// locked even for the right password, and a verdict about a hash that is no longer
    /// the user's counts for nothing ([`CheckRefusal::PasswordChanged`]).
    ///
    /// A lockout that ran out is first recorded as ended. A failure is counted; the one
    /// that reaches the policy's limit also locks the user, in the same batch, so the
    /// counter never passes the limit. A success after failures is recorded and resets
    /// the counter; a success without earlier failures appends nothing.
    pub fn record_password_check(
        &self,
        verified: Verified<'_>,
        policy: &LockoutPolicy,
        now: Timestamp,
        actor: Option<UserId>,
    ) -> Result<PasswordCheck, CheckRefusal> {
        if self.password_to_check(now)? != verified.hash {
            return Err(CheckRefusal::PasswordChanged);
        }
        let mut next = self.clone();
        let mut events = Vec::new();
        if let Some(lock) = self.lock
            && !lock.holds_at(now)
        {
            events.push(next.advance(
                UserChange::Unlocked(UnlockCause::LockoutExpired),
                now,
                actor.clone(),
            ));
        }
        if verified.matches {
            if next.failed_password_checks > 0 {
                events.push(next.advance(UserChange::PasswordCheckSucceeded, now, actor));
            }
        } else {
            let limit = policy.max_password_attempts;
            // Held at the limit: a limit lowered since earlier failures locks at once
            // instead of leaving the count above it.
            let failed_checks = match limit {
                0 => next.failed_password_checks.saturating_add(1),
                limit => next.failed_password_checks.saturating_add(1).min(limit),
            };
            events.push(next.advance(
                UserChange::PasswordCheckFailed { failed_checks },
                now,
                actor.clone(),
            ));
            if limit > 0 && failed_checks >= limit {
                events.push(next.advance(UserChange::Locked(policy.lockout(now)), now, actor));
            }
        }
        Ok(PasswordCheck {
            passed: verified.matches,
            next,
            events,
        })
    }

    /// Folds one more event into the state.
    pub fn apply(&mut self, event: &UserEvent) -> Result<(), ReplayError> {
        if event.user_id != self.id {
            return Err(ReplayError::WrongUser {
                expected: self.id.to_string(),
                found: event.user_id.to_string(),
                sequence: event.sequence,
            });
        }
        if self.is_deleted() {
            return Err(ReplayError::AfterDeletion {
                user_id: self.id.to_string(),
                sequence: event.sequence,
            });
        }
        if event.sequence != self.sequence + 1 {
            return Err(ReplayError::SequenceGap {
                user_id: self.id.to_string(),
                expected: self.sequence + 1,
                found: event.sequence,
            });
        }
        if matches!(event.change, UserChange::Created(_)) {
            return Err(ReplayError::CreatedTwice {
                user_id: self.id.to_string(),
                sequence: event.sequence,
            });
        }
        self.fold(event);
        Ok(())
    }

    /// Applies an event already known to follow this state.
    fn fold(&mut self, event: &UserEvent) {
        match &event.change {
            // Only ever the first event, which `create` handles.
            UserChange::Created(_) => {}
            UserChange::Updated(patch) => {
                let patch = patch.as_ref().clone();
                if let Some(schema_id) = patch.schema_id {
                    self.schema_id = Some(schema_id);
                }
                if let Some(data) = patch.data {
                    self.data = data;
                }
                // A new address (or one declared verified) voids the code sent before.
                if let Some(email) = patch.email {
                    self.contact.email = Some(email);
                    self.email_code = None;
                }
                if let Some(phone) = patch.phone {
                    self.contact.phone = Some(phone);
                    self.phone_code = None;
                }
            }
            UserChange::Locked(lock) => {
                self.lock = Some(*lock);
                self.sessions_valid_from = event.at;
            }
            UserChange::Unlocked(_) => {
                self.lock = None;
                self.failed_password_checks = 0;
            }
            UserChange::PasswordSet {
                hash,
                change_required,
            } => {
                self.password = Some(Password {
                    hash: hash.clone(),
                    changed: event.at,
                    change_required: *change_required,
                });
                self.failed_password_checks = 0;
                self.password_code = None;
                self.sessions_valid_from = event.at;
            }
            UserChange::PasswordRemoved => {
                self.password = None;
                self.failed_password_checks = 0;
                self.password_code = None;
                self.sessions_valid_from = event.at;
            }
            UserChange::PasswordCodeAdded { hash, expires } => {
                self.password_code = Some(PasswordCode {
                    hash: hash.clone(),
                    expires: *expires,
                    failed_attempts: 0,
                });
            }
            UserChange::PasswordCodeCheckFailed => {
                if let Some(code) = &mut self.password_code {
                    code.failed_attempts = code.failed_attempts.saturating_add(1);
                }
            }
            UserChange::ContactCodeAdded {
                kind,
                hash,
                expires,
            } => {
                let code = Some(PasswordCode {
                    hash: hash.clone(),
                    expires: *expires,
                    failed_attempts: 0,
                });
                match kind {
                    ContactKind::Email => self.email_code = code,
                    ContactKind::Phone => self.phone_code = code,
                }
            }
            UserChange::ContactVerified(kind) => match kind {
                ContactKind::Email => {
                    if let Some(email) = &mut self.contact.email {
                        email.verified = true;
                    }
                    self.email_code = None;
                }
                ContactKind::Phone => {
                    if let Some(phone) = &mut self.contact.phone {
                        phone.verified = true;
                    }
                    self.phone_code = None;
                }
            },
            UserChange::ContactCodeCheckFailed(kind) => {
                let code = match kind {
                    ContactKind::Email => &mut self.email_code,
                    ContactKind::Phone => &mut self.phone_code,
                };
                if let Some(code) = code {
                    code.failed_attempts = code.failed_attempts.saturating_add(1);
                }
            }
            UserChange::PasswordCheckFailed { failed_checks } => {
                self.failed_password_checks = *failed_checks;
            }
            UserChange::PasswordCheckSucceeded => self.failed_password_checks = 0,
            UserChange::Deactivated => {
                self.lifecycle = Lifecycle::Inactive;
                self.sessions_valid_from = event.at;
            }
            UserChange::Activated => self.lifecycle = Lifecycle::Active,
            UserChange::Deleted => self.lifecycle = Lifecycle::Deleted,
        }
        self.sequence = event.sequence;
        self.changed = event.at;
    }

    /// The state a log of events describes, `None` for an empty log.
    pub fn replay(
        events: impl IntoIterator<Item = UserEvent>,
    ) -> Result<Option<User>, ReplayError> {
        let mut events = events.into_iter();
        let Some(first) = events.next() else {
            return Ok(None);
        };
        let UserChange::Created(created) = first.change else {
            return Err(ReplayError::NotCreatedFirst(first.user_id.to_string()));
        };
        if first.sequence != 1 {
            return Err(ReplayError::SequenceGap {
                user_id: first.user_id.to_string(),
                expected: 1,
                found: first.sequence,
            });
        }
        let (mut user, _) = User::start(first.user_id, *created, first.at, first.actor);
        for event in events {
            user.apply(&event)?;
        }
        Ok(Some(user))
    }

    /// The part of a patch that differs from the current state.
    fn effective_patch(&self, patch: &UserPatch) -> UserPatch {
        fn differs<T: PartialEq + Clone>(new: &Option<T>, current: Option<&T>) -> Option<T> {
            new.as_ref().filter(|new| Some(*new) != current).cloned()
        }
        UserPatch {
            schema_id: differs(&patch.schema_id, self.schema_id.as_ref()),
            data: differs(&patch.data, Some(&self.data)),
            email: differs(&patch.email, self.contact.email.as_ref()),
            phone: differs(&patch.phone, self.contact.phone.as_ref()),
        }
    }
}

/// What a password check recorded: whether it passed, the events it appends (possibly
/// none) and the state they lead to.
#[derive(Clone, Debug, PartialEq)]
pub struct PasswordCheck {
    pub passed: bool,
    pub next: User,
    pub events: Vec<UserEvent>,
}

#[cfg(test)]
mod contact_tests;
#[cfg(test)]
mod lockout_tests;
#[cfg(test)]
mod tests;
