//! The user aggregate.
//!
//! A user has a lifecycle (`Active`, `Inactive`, `Deleted`) and, independently, a lock
//! flag. Every accepted command appends exactly one [`UserEvent`]; the current state is
//! the fold of those events ([`User::replay`]). Commands never mutate: [`User::execute`]
//! checks the guard and returns the event together with the state it leads to.

use crate::Timestamp;
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
    pub locked: bool,
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
    Locked,
    Unlocked,
    Deactivated,
    Activated,
    Deleted,
}

impl UserChange {
    /// The event names of the API reference, also the labels of the events metric.
    pub const TYPES: [&'static str; 7] = [
        Self::CREATED,
        Self::UPDATED,
        Self::LOCKED,
        Self::UNLOCKED,
        Self::DEACTIVATED,
        Self::ACTIVATED,
        Self::DELETED,
    ];

    pub const CREATED: &'static str = "user.created";
    pub const UPDATED: &'static str = "user.updated";
    pub const LOCKED: &'static str = "user.locked";
    pub const UNLOCKED: &'static str = "user.unlocked";
    pub const DEACTIVATED: &'static str = "user.deactivated";
    pub const ACTIVATED: &'static str = "user.activated";
    pub const DELETED: &'static str = "user.deleted";

    pub fn event_type(&self) -> &'static str {
        match self {
            UserChange::Created(_) => Self::CREATED,
            UserChange::Updated(_) => Self::UPDATED,
            UserChange::Locked => Self::LOCKED,
            UserChange::Unlocked => Self::UNLOCKED,
            UserChange::Deactivated => Self::DEACTIVATED,
            UserChange::Activated => Self::ACTIVATED,
            UserChange::Deleted => Self::DELETED,
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
            Refusal::Deleted => "USER_NOT_FOUND",
        }
    }
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
            locked: false,
            created: at,
            changed: at,
            sequence: 1,
        };
        (user, event)
    }

    pub fn state(&self) -> UserState {
        UserState::of(self.lifecycle, self.locked)
    }

    /// Whether the user's credentials (tokens) work: only while active and unlocked.
    pub fn may_authenticate(&self) -> bool {
        self.state() == UserState::Active
    }

    pub fn is_deleted(&self) -> bool {
        self.lifecycle == Lifecycle::Deleted
    }

    /// The guard: which change a command makes, `None` when it would change nothing
    /// (a patch with the current values), or why it is refused.
    pub fn decide(&self, command: &Command) -> Result<Option<UserChange>, Refusal> {
        if self.is_deleted() {
            return Err(Refusal::Deleted);
        }
        let change = match command {
            Command::Lock if self.locked => return Err(Refusal::AlreadyLocked),
            Command::Lock => UserChange::Locked,
            Command::Unlock if !self.locked => return Err(Refusal::NotLocked),
            Command::Unlock => UserChange::Unlocked,
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
        let Some(change) = self.decide(command)? else {
            return Ok(None);
        };
        let event = UserEvent {
            user_id: self.id.clone(),
            sequence: self.sequence + 1,
            at: now.max(self.changed),
            actor,
            change,
        };
        let mut next = self.clone();
        next.fold(&event);
        Ok(Some((next, event)))
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
                if let Some(email) = patch.email {
                    self.contact.email = Some(email);
                }
                if let Some(phone) = patch.phone {
                    self.contact.phone = Some(phone);
                }
            }
            UserChange::Locked => self.locked = true,
            UserChange::Unlocked => self.locked = false,
            UserChange::Deactivated => self.lifecycle = Lifecycle::Inactive,
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

#[cfg(test)]
mod tests;
