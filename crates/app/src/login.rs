//! Passwords, login sessions and the settings that govern them: [`LoginService`]
//! implemented by [`UseCases`].
//!
//! The password check is the heart of it ([`UseCases::check_password`]): verify the hash
//! (slow, off the workers, bounded), then record the outcome on the user's latest state
//! with the same optimistic concurrency as every other write. Reading the user again
//! after verifying is what makes the lockout exact: a lock committed while a hash was
//! being verified is seen, and every failure is counted on the state it follows, so
//! concurrent checks (in one process or several) count each failure once and stop at
//! the limit.

use std::time::Duration;

use async_trait::async_trait;
use userd_domain::Timestamp;
use userd_domain::authz::{Caller, Permission};
use userd_domain::password::{CheckRefusal, CodeRefusal, PasswordHash, Verified};
use userd_domain::user::{Command, User};
use userd_domain::values::{OrgId, UserId, username_key};
use userd_ports::error::{ServiceError, StoreError};
use userd_ports::login::{
    EffectiveSettings, IssuedSession, LoginService, NewPassword, PasswordProof, PasswordReset,
    ResetDelivery, SessionChecks, SessionUser, SessionView, SetPassword,
};
use userd_ports::passwords::{HashError, PlainPassword};
use userd_ports::service::{Owner, OwnerType, ResourceDetails, UserRef};
use userd_ports::sessions::SessionRecord;
use userd_ports::settings::{ComplexitySettings, LockoutSettings, SettingsKind, SettingsScope};

use crate::UseCases;
use crate::access::{authorize_in, require};
use crate::messages;
use crate::tokens::{generate_code, generate_secret, hash_code};
use userd_ports::notify::{Channel, Message};

/// Session tokens carry their own prefix, so a leaked one is told apart from a PAT.
pub const SESSION_TOKEN_PREFIX: &str = "userd_st_";

/// The longest password accepted, in bytes: hashing cost must not grow with input.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Password checks re-read and retry on a lost race many more times than other writes:
/// a storm of checks on one user is exactly the case they must survive, and each lost
/// race means another check was recorded.
const CHECK_ATTEMPTS: u32 = 256;

fn hash_failed(error: HashError) -> ServiceError {
    ServiceError::Internal(Box::new(error))
}

fn invalid_credentials() -> ServiceError {
    ServiceError::Credentials(CheckRefusal::UnknownUser)
}

/// The rules of `settings` a password breaks, first one first.
fn check_complexity(password: &str, settings: &ComplexitySettings) -> Result<(), ServiceError> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(ServiceError::InvalidArgument {
            reason: "PASSWORD_TOO_LONG",
            message: format!("a password may have at most {MAX_PASSWORD_BYTES} bytes"),
            field: Some("newPassword.password".to_owned()),
        });
    }
    let characters = password.chars().count() as u64;
    let weak =
        |rule: &'static str, message: String| Err(ServiceError::PasswordTooWeak { rule, message });
    if characters < settings.min_length {
        return weak(
            "minLength",
            format!("it needs at least {} characters", settings.min_length),
        );
    }
    let has = |test: fn(char) -> bool| password.chars().any(test);
    if settings.requires_uppercase && !has(char::is_uppercase) {
        return weak("requiresUppercase", "it needs an uppercase letter".into());
    }
    if settings.requires_lowercase && !has(char::is_lowercase) {
        return weak("requiresLowercase", "it needs a lowercase letter".into());
    }
    if settings.requires_number && !has(char::is_numeric) {
        return weak("requiresNumber", "it needs a digit".into());
    }
    if settings.requires_symbol && !has(|c| !c.is_alphanumeric() && !c.is_whitespace()) {
        return weak("requiresSymbol", "it needs a symbol".into());
    }
    Ok(())
}

fn session_not_found(session_id: &str) -> ServiceError {
    ServiceError::SessionNotFound {
        session_id: session_id.to_owned(),
    }
}

fn session_details(session: &SessionRecord) -> ResourceDetails {
    ResourceDetails {
        id: session.id.clone(),
        created: session.created,
        changed: session.changed,
        owner: Owner {
            kind: OwnerType::Organization,
            id: session.org_id.to_string(),
        },
        // Sessions carry no version.
        sequence: 0,
    }
}

/// Needs `permission` on the instance: the session and settings roles are instance roles.
fn require_on_instance(caller: &Caller, permission: Permission) -> Result<(), ServiceError> {
    require(
        caller.instance_permissions().contains(permission),
        permission,
    )
}

impl UseCases {
    async fn lockout_for(&self, org: &OrgId) -> Result<LockoutSettings, ServiceError> {
        Ok(self
            .ports
            .settings
            .lockout_applying_to(org)
            .await?
            .unwrap_or(LockoutSettings::DEFAULT))
    }

    async fn instance_lockout(&self) -> Result<LockoutSettings, ServiceError> {
        Ok(self
            .ports
            .settings
            .lockout(&SettingsScope::Instance)
            .await?
            .map_or(LockoutSettings::DEFAULT, |stored| stored.value))
    }

    async fn complexity_for(&self, org: &OrgId) -> Result<ComplexitySettings, ServiceError> {
        let own = self
            .ports
            .settings
            .complexity(&SettingsScope::Organization(org.clone()))
            .await?;
        Ok(match own {
            Some(stored) => stored.value,
            None => self
                .ports
                .settings
                .complexity(&SettingsScope::Instance)
                .await?
                .map_or(ComplexitySettings::DEFAULT, |stored| stored.value),
        })
    }

    /// The hash to store for a new password of a user of `org`.
    pub(crate) async fn new_password_hash(
        &self,
        org: &OrgId,
        password: &NewPassword,
    ) -> Result<PasswordHash, ServiceError> {
        match password {
            NewPassword::Plain(plain) => {
                check_complexity(plain.expose(), &self.complexity_for(org).await?)?;
                self.ports.hasher.hash(plain).await.map_err(hash_failed)
            }
            NewPassword::Hash(encoded) => {
                self.ports.hasher.import(encoded).map_err(|unsupported| {
                    ServiceError::InvalidArgument {
                        reason: "UNSUPPORTED_HASH",
                        message: format!("newPassword.hash: {unsupported}"),
                        field: Some("newPassword.hash".to_owned()),
                    }
                })
            }
        }
    }

    /// Spends a verification and answers as a wrong password would.
    async fn refuse_unknown(&self, password: &PlainPassword) -> ServiceError {
        if let Err(error) = self.ports.hasher.verify_nothing(password).await {
            return hash_failed(error);
        }
        invalid_credentials()
    }

    /// Checks `password` for the user with `user_id`, counting a failure and locking at
    /// the limit. `Ok` with the user's state after the check when it passed.
    /// `loaded` is the user when the caller just read it, saving a read.
    pub(crate) async fn check_password(
        &self,
        user_id: &UserId,
        loaded: Option<User>,
        password: &PlainPassword,
        actor: Option<UserId>,
    ) -> Result<User, ServiceError> {
        let loaded = match loaded {
            Some(user) => Some(user),
            None => self.live_user(user_id).await?,
        };
        let Some(mut user) = loaded else {
            return Err(self.refuse_unknown(password).await);
        };
        for _ in 0..CHECK_ATTEMPTS {
            let now = self.ports.clock.now();
            let hash = match user.password_to_check(now) {
                Ok(hash) => hash.clone(),
                Err(CheckRefusal::NoPassword) => return Err(self.refuse_unknown(password).await),
                Err(refusal) => return Err(ServiceError::Credentials(refusal)),
            };
            let verification = self
                .ports
                .hasher
                .verify(password, &hash)
                .await
                .map_err(hash_failed)?;
            let policy = self.lockout_for(&user.org_id).await?.policy();
            // Record on the newest state, re-read after the slow verification; a lost
            // race re-reads and records again, without verifying again while the hash
            // stays the same.
            loop {
                let Some(latest) = self.live_user(user_id).await? else {
                    return Err(invalid_credentials());
                };
                user = latest;
                let now = self.ports.clock.now();
                let verified = Verified {
                    hash: &hash,
                    matches: verification.matches,
                };
                let check = match user.record_password_check(verified, &policy, now, actor.clone())
                {
                    Ok(check) => check,
                    // The password changed meanwhile: verify the new one.
                    Err(CheckRefusal::PasswordChanged) => break,
                    Err(refusal) => return Err(ServiceError::Credentials(refusal)),
                };
                if !check.events.is_empty() {
                    match self
                        .ports
                        .users
                        .append_all(&check.next, &check.events)
                        .await
                    {
                        Ok(()) => {}
                        Err(StoreError::Conflict) => continue,
                        Err(other) => return Err(other.into()),
                    }
                }
                // Locked now: its tokens stop at once, not when the cache expires.
                if check.next.lock.is_some() && user.lock.is_none() {
                    self.ports.authenticator.forget_user(&check.next.id);
                }
                if !check.passed {
                    return Err(invalid_credentials());
                }
                if verification.outdated {
                    self.upgrade_hash(&check.next, password, &hash).await;
                }
                return Ok(check.next);
            }
        }
        Err(ServiceError::Aborted {
            user_id: user_id.to_string(),
        })
    }

    /// Replaces an imported or weaker hash after a successful check. Best effort: the
    /// login has succeeded whatever happens here, and a lost race means the password was
    /// just set anew anyway.
    async fn upgrade_hash(&self, user: &User, password: &PlainPassword, old: &PasswordHash) {
        let Ok(hash) = self.ports.hasher.hash(password).await else {
            return;
        };
        let Some(current) = user.password.as_ref().filter(|p| &p.hash == old) else {
            return;
        };
        let command = Command::SetPassword {
            hash,
            change_required: current.change_required,
        };
        if let Ok(Some((next, event))) = user.execute(&command, self.ports.clock.now(), None)
            && let Err(error) = self.ports.users.append(&next, &event).await
        {
            tracing::debug!(user_id = %user.id, %error, "the password hash was not upgraded");
        }
    }

    /// A stored session, ended or not; not found when there is none.
    async fn stored_session(&self, session_id: &str) -> Result<SessionRecord, ServiceError> {
        self.ports
            .sessions
            .find_session(session_id)
            .await?
            .ok_or_else(|| session_not_found(session_id))
    }

    /// The live user `target` names; not found when there is none.
    pub(crate) async fn target_user(&self, target: &UserRef) -> Result<User, ServiceError> {
        self.live_user(&target.id)
            .await?
            .ok_or_else(|| ServiceError::UserNotFound {
                user_id: target.id.to_string(),
            })
    }

    async fn live_user(&self, id: &UserId) -> Result<Option<User>, ServiceError> {
        Ok(self
            .ports
            .users
            .find(id)
            .await?
            .filter(|user| !user.is_deleted()))
    }

    /// Runs a password command on `target` for `caller`, who may act with `user.write`
    /// or, on its own user, with a proof.
    async fn password_command(
        &self,
        caller: &Caller,
        target: &UserRef,
        command: impl Fn(&User) -> Command + Send + Sync,
    ) -> Result<ResourceDetails, ServiceError> {
        self.password_command_telling(caller, target, command, |_| Ok(None))
            .await
    }

    /// [`UseCases::password_command`], storing the message `tell` makes for the user in
    /// the outbox with the event, in the same transaction.
    async fn password_command_telling(
        &self,
        caller: &Caller,
        target: &UserRef,
        command: impl Fn(&User) -> Command + Send + Sync,
        tell: impl Fn(&User) -> Result<Option<Message>, ServiceError> + Send + Sync,
    ) -> Result<ResourceDetails, ServiceError> {
        for _ in 0..self.write_attempts {
            let user = self.target_user(target).await?;
            if let Some(condition) = &target.if_match
                && !condition.matches(user.sequence)
            {
                return Err(ServiceError::VersionMismatch {
                    user_id: target.id.to_string(),
                    current: user.sequence,
                });
            }
            let Some((next, event)) = user
                .execute(
                    &command(&user),
                    self.ports.clock.now(),
                    Some(caller.user_id.clone()),
                )
                .map_err(|refusal| ServiceError::refused(refusal, target.id.to_string()))?
            else {
                return Ok(ResourceDetails::of_user(&user));
            };
            let written = match tell(&next)? {
                None => self.ports.users.append(&next, &event).await,
                Some(message) => {
                    let message =
                        messages::outbound(self.ports.ids.next_id(), &next, message, event.at);
                    let written = self
                        .ports
                        .users
                        .append_notifying(&next, &[event], &[message])
                        .await;
                    if written.is_ok() {
                        self.delivery.tell_worker();
                    }
                    written
                }
            };
            match written {
                Ok(()) => return Ok(ResourceDetails::of_user(&next)),
                Err(StoreError::Conflict) => continue,
                Err(other) => return Err(other.into()),
            }
        }
        Err(ServiceError::Aborted {
            user_id: target.id.to_string(),
        })
    }

    /// Whether `caller` may change `user`'s password without a proof, after the checks
    /// of docs/api.md: a stranger learns nothing (not found), a member without
    /// `user.write` is denied, except on its own user, which then needs a proof.
    pub(crate) async fn may_set_password_freely(
        &self,
        caller: &Caller,
        target: &UserRef,
    ) -> Result<bool, ServiceError> {
        let own = caller.user_id == target.id;
        let not_found = || ServiceError::UserNotFound {
            user_id: target.id.to_string(),
        };
        let user = self.live_user(&target.id).await?.ok_or_else(not_found)?;
        if target
            .expected_org
            .as_ref()
            .is_some_and(|org| *org != user.org_id)
        {
            return Err(not_found());
        }
        match authorize_in(caller, &user.org_id, Permission::UserWrite, not_found) {
            Ok(()) => {
                self.ensure_covers(caller, &user).await?;
                Ok(true)
            }
            Err(_) if own => Ok(false),
            Err(error) => Err(error),
        }
    }

    /// The organization of a live user.
    async fn org_of(&self, target: &UserRef) -> Result<OrgId, ServiceError> {
        Ok(self.target_user(target).await?.org_id)
    }

    /// Sets a password with a reset code as the proof. The code is checked on the same
    /// state the new password is written onto, so two uses of one code cannot both win:
    /// the second finds it gone. A wrong code is counted, and the fifth kills it.
    async fn set_password_with_code(
        &self,
        caller: &Caller,
        target: &UserRef,
        code_hash: &str,
        hash: PasswordHash,
        change_required: bool,
    ) -> Result<ResourceDetails, ServiceError> {
        self.try_code(caller, target, |user, now| {
            Ok(match user.check_password_code(code_hash, now) {
                Ok(()) => (
                    Command::SetPassword {
                        hash: hash.clone(),
                        change_required,
                    },
                    Ok(()),
                ),
                Err(CodeRefusal::Invalid) if user.password_code.is_some() => {
                    (Command::FailPasswordCode, Err(CodeRefusal::Invalid))
                }
                Err(refusal) => return Err(ServiceError::Code(refusal)),
            })
        })
        .await
    }

    /// One try of a code on `target`'s newest state. `judge` says which command records
    /// it (the change a right code makes, or the count of a wrong one) and what to
    /// answer; the code is judged on the state the command is written onto, so two uses
    /// of one code cannot both win: the second finds it gone.
    pub(crate) async fn try_code(
        &self,
        caller: &Caller,
        target: &UserRef,
        judge: impl Fn(&User, Timestamp) -> Result<(Command, Result<(), CodeRefusal>), ServiceError>
        + Send
        + Sync,
    ) -> Result<ResourceDetails, ServiceError> {
        let actor = Some(caller.user_id.clone());
        for _ in 0..self.write_attempts {
            let user = self.target_user(target).await?;
            let now = self.ports.clock.now();
            let (command, outcome) = judge(&user, now)?;
            let Some((next, event)) = user
                .execute(&command, now, actor.clone())
                .map_err(|refusal| ServiceError::refused(refusal, target.id.to_string()))?
            else {
                return Err(ServiceError::Code(CodeRefusal::Invalid));
            };
            match self.ports.users.append(&next, &event).await {
                Ok(()) => {}
                Err(StoreError::Conflict) => continue,
                Err(other) => return Err(other.into()),
            }
            return match outcome {
                Ok(()) => Ok(ResourceDetails::of_user(&next)),
                Err(refusal) => Err(ServiceError::Code(refusal)),
            };
        }
        Err(ServiceError::Aborted {
            user_id: target.id.to_string(),
        })
    }

    /// The user a session's user check names, if it exists.
    async fn session_user(
        &self,
        named: &SessionUser,
    ) -> Result<Option<(User, String)>, ServiceError> {
        match named {
            SessionUser::Id(id) => Ok(self.live_user(id).await?.map(|user| {
                let name = user
                    .usernames
                    .first()
                    .map_or_else(|| user.id.to_string(), |u| u.username.as_str().to_owned());
                (user, name)
            })),
            SessionUser::LoginName { name, organization } => {
                let found = self
                    .ports
                    .users
                    .find_by_login_name(&username_key(name), organization.clone())
                    .await?;
                // The username rules make a match unique; two would be a broken store,
                // and guessing between them is not an option.
                Ok(match found.as_slice() {
                    [only] => Some((only.clone(), name.clone())),
                    _ => None,
                })
            }
        }
    }

    /// A session that still counts at `now`, with its user: not expired, not deleted,
    /// its user active and unlocked, and no new password since it began.
    async fn live_session(
        &self,
        session_id: &str,
        now: Timestamp,
    ) -> Result<(SessionRecord, User), ServiceError> {
        let gone = || session_not_found(session_id);
        let session = self.stored_session(session_id).await?;
        if session.expires_at.is_some_and(|expires| expires <= now) {
            return Err(gone());
        }
        let user = self.live_user(&session.user_id).await?.ok_or_else(gone)?;
        if !user.keeps_session(session.created, now) {
            return Err(gone());
        }
        Ok((session, user))
    }
}

fn expiry(now: Timestamp, lifetime: Option<Duration>) -> Option<Timestamp> {
    lifetime.map(|lifetime| now.saturating_add(lifetime))
}

#[async_trait]
impl LoginService for UseCases {
    async fn set_password(
        &self,
        caller: &Caller,
        target: &UserRef,
        request: SetPassword,
    ) -> Result<ResourceDetails, ServiceError> {
        let freely = self.may_set_password_freely(caller, target).await?;
        match &request.proof {
            PasswordProof::CurrentPassword(current) => {
                self.check_password(&target.id, None, current, Some(caller.user_id.clone()))
                    .await?;
            }
            PasswordProof::VerificationCode(code) => {
                let org = self.org_of(target).await?;
                let hash = self.new_password_hash(&org, &request.password).await?;
                return self
                    .set_password_with_code(
                        caller,
                        target,
                        &hash_code(code),
                        hash,
                        request.change_required,
                    )
                    .await;
            }
            PasswordProof::None if freely => {}
            PasswordProof::None => {
                return Err(ServiceError::InvalidArgument {
                    reason: "CURRENT_PASSWORD_REQUIRED",
                    message: "changing one's own password needs currentPassword or a \
                              verificationCode"
                        .to_owned(),
                    field: Some("newPassword.currentPassword".to_owned()),
                });
            }
        }
        let org = self.org_of(target).await?;
        let hash = self.new_password_hash(&org, &request.password).await?;
        self.password_command(caller, target, |_| Command::SetPassword {
            hash: hash.clone(),
            change_required: request.change_required,
        })
        .await
    }

    async fn remove_password(
        &self,
        caller: &Caller,
        target: &UserRef,
    ) -> Result<ResourceDetails, ServiceError> {
        if !self.may_set_password_freely(caller, target).await? {
            return Err(ServiceError::PermissionDenied {
                permission: Permission::UserWrite,
            });
        }
        self.password_command(caller, target, |_| Command::RemovePassword)
            .await
    }

    async fn request_password_reset(
        &self,
        caller: &Caller,
        target: &UserRef,
        delivery: ResetDelivery,
    ) -> Result<PasswordReset, ServiceError> {
        // user.write on the user, or the user itself.
        self.may_set_password_freely(caller, target).await?;
        let (channel, url_template) = match &delivery {
            ResetDelivery::ReturnCode => (None, None),
            ResetDelivery::SendEmail { url_template } => {
                (Some(Channel::Email), url_template.as_deref())
            }
            ResetDelivery::SendSms => (Some(Channel::Sms), None),
        };
        if let Some(channel) = channel {
            self.delivery.require(channel)?;
        }
        let (code, code_hash) = generate_code().map_err(|e| ServiceError::Internal(Box::new(e)))?;
        let expires = self.ports.clock.now().saturating_add(self.code_ttl);
        let details = self
            .password_command_telling(
                caller,
                target,
                |_| Command::RequestPasswordReset {
                    code_hash: code_hash.clone(),
                    expires,
                },
                |user| {
                    channel
                        .map(|channel| {
                            messages::password_reset(
                                user,
                                channel,
                                &code,
                                url_template,
                                self.code_ttl,
                            )
                        })
                        .transpose()
                },
            )
            .await?;
        Ok(PasswordReset {
            details,
            // Only the caller that delivers it sees the code.
            code: channel.is_none().then_some(code),
        })
    }

    async fn create_session(
        &self,
        caller: &Caller,
        checks: SessionChecks,
        lifetime: Option<Duration>,
    ) -> Result<IssuedSession, ServiceError> {
        require_on_instance(caller, Permission::SessionWrite)?;
        let Some(named) = &checks.user else {
            return Err(ServiceError::InvalidArgument {
                reason: "USER_CHECK_REQUIRED",
                message: "a new session needs checks.user".to_owned(),
                field: Some("checks.user".to_owned()),
            });
        };
        let Some((user, login_name)) = self.session_user(named).await? else {
            return Err(match &checks.password {
                Some(password) => self.refuse_unknown(password).await,
                None => invalid_credentials(),
            });
        };
        let (user, password_verified_at) = match &checks.password {
            Some(password) => {
                let checked = self
                    .check_password(
                        &user.id.clone(),
                        Some(user),
                        password,
                        Some(caller.user_id.clone()),
                    )
                    .await?;
                (checked, Some(self.ports.clock.now()))
            }
            None => {
                let now = self.ports.clock.now();
                match user.password_to_check(now) {
                    Err(refusal @ (CheckRefusal::Locked | CheckRefusal::Inactive)) => {
                        return Err(ServiceError::Credentials(refusal));
                    }
                    _ => (user, None),
                }
            }
        };
        let now = self.ports.clock.now();
        let (token, token_hash) = generate_secret(SESSION_TOKEN_PREFIX)
            .map_err(|e| ServiceError::Internal(Box::new(e)))?;
        let session = SessionRecord {
            id: self.ports.ids.next_id(),
            user_id: user.id.clone(),
            org_id: user.org_id.clone(),
            login_name,
            token_hash,
            created: now,
            changed: now,
            expires_at: expiry(now, lifetime),
            user_verified_at: now,
            password_verified_at,
        };
        match self.ports.sessions.create_session(&session).await {
            Ok(()) => {}
            // Deleted between the check and the insert.
            Err(StoreError::UserNotFound) => return Err(invalid_credentials()),
            Err(other) => return Err(other.into()),
        }
        Ok(IssuedSession {
            details: session_details(&session),
            session_id: session.id,
            token,
        })
    }

    async fn set_session(
        &self,
        caller: &Caller,
        session_id: &str,
        checks: SessionChecks,
        lifetime: Option<Duration>,
    ) -> Result<IssuedSession, ServiceError> {
        require_on_instance(caller, Permission::SessionWrite)?;
        let (session, user) = self
            .live_session(session_id, self.ports.clock.now())
            .await?;
        if let Some(named) = &checks.user {
            let same = match named {
                SessionUser::Id(id) => *id == user.id,
                SessionUser::LoginName { .. } => self
                    .session_user(named)
                    .await?
                    .is_some_and(|(found, _)| found.id == user.id),
            };
            if !same {
                return Err(ServiceError::InvalidArgument {
                    reason: "SESSION_USER_MISMATCH",
                    message: "checks.user names another user than the session's".to_owned(),
                    field: Some("checks.user".to_owned()),
                });
            }
        }
        let mut password_verified_at = session.password_verified_at;
        if let Some(password) = &checks.password {
            self.check_password(
                &user.id,
                Some(user.clone()),
                password,
                Some(caller.user_id.clone()),
            )
            .await?;
            password_verified_at = Some(self.ports.clock.now());
        }
        let now = self.ports.clock.now().max(session.changed);
        let (token, token_hash) = generate_secret(SESSION_TOKEN_PREFIX)
            .map_err(|e| ServiceError::Internal(Box::new(e)))?;
        let updated = SessionRecord {
            token_hash,
            changed: now,
            expires_at: match lifetime {
                Some(_) => expiry(now, lifetime),
                None => session.expires_at,
            },
            password_verified_at,
            ..session.clone()
        };
        if !self
            .ports
            .sessions
            .update_session(&updated, session.changed)
            .await?
        {
            return Err(ServiceError::Aborted {
                user_id: user.id.to_string(),
            });
        }
        Ok(IssuedSession {
            details: session_details(&updated),
            session_id: updated.id,
            token,
        })
    }

    async fn get_session(
        &self,
        caller: &Caller,
        session_id: &str,
    ) -> Result<SessionView, ServiceError> {
        require_on_instance(caller, Permission::SessionRead)?;
        let (session, _) = self
            .live_session(session_id, self.ports.clock.now())
            .await?;
        Ok(SessionView {
            id: session.id,
            created: session.created,
            changed: session.changed,
            expires_at: session.expires_at,
            user_id: session.user_id,
            org_id: session.org_id,
            login_name: session.login_name,
            user_verified_at: session.user_verified_at,
            password_verified_at: session.password_verified_at,
        })
    }

    async fn delete_session(
        &self,
        caller: &Caller,
        session_id: &str,
    ) -> Result<ResourceDetails, ServiceError> {
        require_on_instance(caller, Permission::SessionWrite)?;
        let session = self.stored_session(session_id).await?;
        if !self.ports.sessions.delete_session(session_id).await? {
            return Err(session_not_found(session_id));
        }
        Ok(ResourceDetails {
            changed: self.ports.clock.now(),
            ..session_details(&session)
        })
    }

    async fn lockout_settings(
        &self,
        caller: &Caller,
        scope: &SettingsScope,
    ) -> Result<EffectiveSettings<LockoutSettings>, ServiceError> {
        match scope {
            SettingsScope::Instance => Ok(EffectiveSettings {
                value: self.instance_lockout().await?,
                from_organization: false,
            }),
            SettingsScope::Organization(org) => {
                self.visible_organization(caller, org).await?;
                let own = self.ports.settings.lockout(scope).await?;
                Ok(match own {
                    Some(stored) => EffectiveSettings {
                        value: stored.value,
                        from_organization: true,
                    },
                    None => EffectiveSettings {
                        value: self.instance_lockout().await?,
                        from_organization: false,
                    },
                })
            }
        }
    }

    async fn set_lockout_settings(
        &self,
        caller: &Caller,
        scope: &SettingsScope,
        settings: LockoutSettings,
    ) -> Result<Timestamp, ServiceError> {
        self.authorize_settings_write(caller, scope).await?;
        let times = self
            .ports
            .settings
            .set_lockout(scope, &settings, self.ports.clock.now())
            .await
            .map_err(|error| settings_error(error, scope))?;
        Ok(times.changed)
    }

    async fn reset_lockout_settings(
        &self,
        caller: &Caller,
        org: &OrgId,
    ) -> Result<Timestamp, ServiceError> {
        let scope = SettingsScope::Organization(org.clone());
        self.authorize_settings_write(caller, &scope).await?;
        self.ports
            .settings
            .remove(&scope, SettingsKind::Lockout)
            .await?;
        Ok(self.ports.clock.now())
    }

    async fn complexity_settings(
        &self,
        caller: &Caller,
        scope: &SettingsScope,
    ) -> Result<EffectiveSettings<ComplexitySettings>, ServiceError> {
        let from_organization = match scope {
            SettingsScope::Instance => false,
            SettingsScope::Organization(org) => {
                self.visible_organization(caller, org).await?;
                self.ports.settings.complexity(scope).await?.is_some()
            }
        };
        let value = match scope {
            SettingsScope::Instance => self
                .ports
                .settings
                .complexity(scope)
                .await?
                .map_or(ComplexitySettings::DEFAULT, |stored| stored.value),
            SettingsScope::Organization(org) => self.complexity_for(org).await?,
        };
        Ok(EffectiveSettings {
            value,
            from_organization,
        })
    }

    async fn set_complexity_settings(
        &self,
        caller: &Caller,
        scope: &SettingsScope,
        settings: ComplexitySettings,
    ) -> Result<Timestamp, ServiceError> {
        self.authorize_settings_write(caller, scope).await?;
        if settings.min_length > MAX_PASSWORD_BYTES as u64 {
            return Err(ServiceError::InvalidArgument {
                reason: "INVALID_SETTINGS",
                message: format!("minLength may be at most {MAX_PASSWORD_BYTES}"),
                field: Some("minLength".to_owned()),
            });
        }
        let times = self
            .ports
            .settings
            .set_complexity(scope, &settings, self.ports.clock.now())
            .await
            .map_err(|error| settings_error(error, scope))?;
        Ok(times.changed)
    }
}

fn settings_error(error: StoreError, scope: &SettingsScope) -> ServiceError {
    match (error, scope) {
        (StoreError::OrganizationNotFound, SettingsScope::Organization(org)) => {
            ServiceError::OrganizationNotFound {
                org_id: org.to_string(),
            }
        }
        (error, _) => error.into(),
    }
}

impl UseCases {
    /// Settings of an organization need `settings.write` there (ORG_OWNER) or on the
    /// instance (IAM_OWNER); the instance's own need it on the instance.
    async fn authorize_settings_write(
        &self,
        caller: &Caller,
        scope: &SettingsScope,
    ) -> Result<(), ServiceError> {
        match scope {
            SettingsScope::Instance => require_on_instance(caller, Permission::SettingsWrite),
            SettingsScope::Organization(org) => {
                self.visible_organization(caller, org).await?;
                require(
                    caller
                        .permissions_in(org)
                        .contains(Permission::SettingsWrite),
                    Permission::SettingsWrite,
                )
            }
        }
    }
}

#[cfg(test)]
mod tests;
