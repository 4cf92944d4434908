//! Contact verification: [`ContactService`] implemented by [`UseCases`]. A new address is
//! unverified until the code sent to it (or handed to the caller) comes back; codes
//! follow the rules of reset codes. The code's message is stored in the outbox with the
//! events, in one transaction; the delivery worker sends it.

use async_trait::async_trait;
use userd_domain::Timestamp;
use userd_domain::authz::{Caller, Permission};
use userd_domain::password::CodeRefusal;
use userd_domain::user::{
    Command, ContactKind, EmailContact, PhoneContact, User, UserEvent, UserPatch,
};
use userd_ports::contact::{Address, CodeDelivery, ContactChange, ContactService, Verification};
use userd_ports::error::{ServiceError, StoreError};
use userd_ports::notify::Message;
use userd_ports::service::{ResourceDetails, UserRef};

use crate::UseCases;
use crate::messages::{self, channel_of};
use crate::tokens::{generate_code, hash_code};

/// A code just made: in clear (to send or return) and as stored.
pub(crate) struct NewCode {
    code: String,
    hash: String,
    expires: Timestamp,
    delivery: CodeDelivery,
}

impl UseCases {
    /// A new code for an address of `kind`, after checking its channel can carry it.
    pub(crate) fn new_code(
        &self,
        kind: ContactKind,
        delivery: CodeDelivery,
    ) -> Result<NewCode, ServiceError> {
        if let CodeDelivery::Send { .. } = delivery {
            self.delivery.require(channel_of(kind))?;
        }
        let (code, hash) = generate_code().map_err(|e| ServiceError::Internal(Box::new(e)))?;
        Ok(NewCode {
            code,
            hash,
            expires: self.ports.clock.now().saturating_add(self.code_ttl),
            delivery,
        })
    }

    /// The message that carries `code` to `user`'s address, when userd sends it.
    fn code_message(
        &self,
        user: &User,
        kind: ContactKind,
        code: &NewCode,
    ) -> Result<Option<Message>, ServiceError> {
        match &code.delivery {
            CodeDelivery::Return => Ok(None),
            CodeDelivery::Send { url_template } => messages::contact_code(
                user,
                kind,
                &code.code,
                url_template.as_deref(),
                self.code_ttl,
            )
            .map(Some),
        }
    }

    /// Writes `events` (leading to `state`) with `messages` in one transaction.
    pub(crate) async fn write_with_messages(
        &self,
        state: &User,
        events: &[UserEvent],
        messages: Vec<Message>,
    ) -> Result<(), StoreError> {
        if messages.is_empty() {
            return self.ports.users.append_all(state, events).await;
        }
        let at = events.last().map_or(state.changed, |e| e.at);
        let outbound: Vec<_> = messages
            .into_iter()
            .map(|message| messages::outbound(self.ports.ids.next_id(), state, message, at))
            .collect();
        self.ports
            .users
            .append_notifying(state, events, &outbound)
            .await?;
        self.delivery.tell_worker();
        Ok(())
    }

    /// Adds the codes of `codes` to `state`, appending their events and the messages
    /// that carry those userd sends.
    pub(crate) fn add_codes(
        &self,
        state: &mut User,
        events: &mut Vec<UserEvent>,
        codes: &[(ContactKind, NewCode)],
        now: Timestamp,
        actor: Option<userd_domain::values::UserId>,
    ) -> Result<Vec<Message>, ServiceError> {
        let mut messages = Vec::new();
        for (kind, code) in codes {
            let command = Command::AddContactCode {
                kind: *kind,
                code_hash: code.hash.clone(),
                expires: code.expires,
            };
            let refused = |r| ServiceError::refused(r, state.id.to_string());
            let (next, event) = state
                .execute(&command, now, actor.clone())
                .map_err(refused)?
                .ok_or_else(|| ServiceError::Internal("adding a code changed nothing".into()))?;
            *state = next;
            events.push(event);
            messages.extend(self.code_message(state, *kind, code)?);
        }
        Ok(messages)
    }

    /// The codes `requests` asks for, made.
    pub(crate) fn new_codes(
        &self,
        requests: &userd_ports::service::CodeRequests,
    ) -> Result<Vec<(ContactKind, NewCode)>, ServiceError> {
        let mut codes = Vec::new();
        if let Some(delivery) = &requests.email {
            codes.push((
                ContactKind::Email,
                self.new_code(ContactKind::Email, delivery.clone())?,
            ));
        }
        if let Some(delivery) = &requests.phone {
            codes.push((
                ContactKind::Phone,
                self.new_code(ContactKind::Phone, delivery.clone())?,
            ));
        }
        Ok(codes)
    }

    /// Runs `commands` one after the other on `target`'s newest state and writes their
    /// events (and `code`'s message) at once, retrying on a lost race.
    async fn contact_commands(
        &self,
        caller: &Caller,
        target: &UserRef,
        commands: impl Fn(&User) -> Result<Vec<Command>, ServiceError> + Send + Sync,
        code: Option<(ContactKind, &NewCode)>,
    ) -> Result<ResourceDetails, ServiceError> {
        let actor = Some(caller.user_id.clone());
        for _ in 0..self.write_attempts {
            let user = self.target_user(target).await?;
            let now = self.ports.clock.now();
            let mut state = user.clone();
            let mut events = Vec::new();
            for command in commands(&user)? {
                let refused = |r| ServiceError::refused(r, target.id.to_string());
                if let Some((next, event)) = state
                    .execute(&command, now, actor.clone())
                    .map_err(refused)?
                {
                    state = next;
                    events.push(event);
                }
            }
            if events.is_empty() {
                return Ok(ResourceDetails::of_user(&user));
            }
            let message = match code {
                Some((kind, code)) => self.code_message(&state, kind, code)?,
                None => None,
            };
            match self
                .write_with_messages(&state, &events, message.into_iter().collect())
                .await
            {
                Ok(()) => return Ok(ResourceDetails::of_user(&state)),
                Err(StoreError::Conflict) => continue,
                Err(other) => return Err(other.into()),
            }
        }
        Err(ServiceError::Aborted {
            user_id: target.id.to_string(),
        })
    }
}

/// The code handed to the caller, if it asked for it back.
pub(crate) fn returned(code: &NewCode) -> Option<String> {
    (code.delivery == CodeDelivery::Return).then(|| code.code.clone())
}

fn answer(details: ResourceDetails, code: Option<NewCode>) -> ContactChange {
    ContactChange {
        details,
        code: code.as_ref().and_then(returned),
    }
}

#[async_trait]
impl ContactService for UseCases {
    async fn set_contact(
        &self,
        caller: &Caller,
        target: &UserRef,
        address: Address,
        verification: Verification,
    ) -> Result<ContactChange, ServiceError> {
        // user.write on the user, or the user itself; vouching needs user.write.
        let freely = self.may_set_password_freely(caller, target).await?;
        let kind = address.kind();
        let code = match verification {
            Verification::Verified if !freely => {
                return Err(ServiceError::PermissionDenied {
                    permission: Permission::UserWrite,
                });
            }
            Verification::Verified => None,
            Verification::Code(delivery) => Some(self.new_code(kind, delivery)?),
        };
        let vouched = code.is_none();
        let commands = |user: &User| -> Result<Vec<Command>, ServiceError> {
            let current_verified = match (&address, &user.contact.email, &user.contact.phone) {
                (Address::Email(new), Some(old), _) => old.address == *new && old.verified,
                (Address::Phone(new), _, Some(old)) => old.number == *new && old.verified,
                _ => false,
            };
            // The same, already proven address stays proven: nothing to do.
            if current_verified {
                return Ok(Vec::new());
            }
            let patch = match &address {
                Address::Email(email) => UserPatch {
                    email: Some(EmailContact {
                        address: email.clone(),
                        verified: vouched,
                    }),
                    ..UserPatch::default()
                },
                Address::Phone(phone) => UserPatch {
                    phone: Some(PhoneContact {
                        number: phone.clone(),
                        verified: vouched,
                    }),
                    ..UserPatch::default()
                },
            };
            let mut commands = vec![Command::Patch(patch)];
            if let Some(code) = &code {
                commands.push(Command::AddContactCode {
                    kind,
                    code_hash: code.hash.clone(),
                    expires: code.expires,
                });
            }
            Ok(commands)
        };
        let details = self
            .contact_commands(caller, target, commands, code.as_ref().map(|c| (kind, c)))
            .await?;
        Ok(answer(details, code))
    }

    async fn verify_contact(
        &self,
        caller: &Caller,
        target: &UserRef,
        kind: ContactKind,
        code: &str,
    ) -> Result<ResourceDetails, ServiceError> {
        self.may_set_password_freely(caller, target).await?;
        let code_hash = hash_code(code);
        self.try_code(caller, target, |user, now| {
            // An address that is missing or already proven says so, whatever the code.
            user.decide(&Command::VerifyContact(kind), now)
                .map_err(|r| ServiceError::refused(r, target.id.to_string()))?;
            Ok(match user.check_contact_code(kind, &code_hash, now) {
                Ok(()) => (Command::VerifyContact(kind), Ok(())),
                Err(CodeRefusal::Invalid) if user.contact_code(kind).is_some() => {
                    (Command::FailContactCode(kind), Err(CodeRefusal::Invalid))
                }
                Err(refusal) => return Err(ServiceError::Code(refusal)),
            })
        })
        .await
    }

    async fn resend_contact_code(
        &self,
        caller: &Caller,
        target: &UserRef,
        kind: ContactKind,
        delivery: CodeDelivery,
    ) -> Result<ContactChange, ServiceError> {
        self.may_set_password_freely(caller, target).await?;
        let code = self.new_code(kind, delivery)?;
        let command = Command::AddContactCode {
            kind,
            code_hash: code.hash.clone(),
            expires: code.expires,
        };
        let details = self
            .contact_commands(
                caller,
                target,
                |_| Ok(vec![command.clone()]),
                Some((kind, &code)),
            )
            .await?;
        Ok(answer(details, Some(code)))
    }
}

#[cfg(test)]
mod tests;
