//! The user use cases: [`UserService`] implemented by [`UseCases`].
//!
//! Every use case runs its checks in the order docs/api.md states: authenticate (the caller was
//! resolved from its token), authorize (no role in the user's organization: not found; a
//! role without the permission: denied), the state machine's guard, then the write.

use async_trait::async_trait;
use userd_domain::authz::{Caller, Permission};
use userd_domain::user::{Command, User, UserCreated, UserEvent, UserPatch, UsernameEntry};
use userd_domain::values::{OrgId, UserId, UsernameId, check_plain_text};

use userd_ports::error::{ServiceError, StoreError};

use userd_ports::search::{
    DEFAULT_LIMIT, Filter, MAX_FILTER_DEPTH, MAX_FILTERS, MAX_LIMIT, ReadScope, SearchRequest,
    UserQuery,
};
use userd_ports::service::{
    CodeRequests, Credentials, NewUser, ResourceDetails, SearchResult, UserRef, UserService,
    WrittenUser,
};

use crate::UseCases;
use crate::access::authorize_in;
use crate::fresh_ids::FreshIdAttempts;
use crate::tokens::hash_token;

impl UseCases {
    fn new_user_state(
        &self,
        caller: &Caller,
        org_id: &OrgId,
        user_id: UserId,
        new_user: &NewUser,
    ) -> Result<(User, UserEvent), ServiceError> {
        let usernames = new_user
            .usernames
            .iter()
            .map(|u| {
                Ok(UsernameEntry {
                    id: UsernameId::new(self.ports.ids.next_id())
                        .map_err(|e| ServiceError::Internal(Box::new(e)))?,
                    username: u.username.clone(),
                    organization_specific: u.organization_specific,
                })
            })
            .collect::<Result<Vec<_>, ServiceError>>()?;
        let created = UserCreated {
            org_id: org_id.clone(),
            schema_id: new_user.schema_id.clone(),
            data: new_user.data.clone(),
            contact: new_user.contact.clone(),
            usernames,
        };
        User::create(
            user_id,
            created,
            self.ports.clock.now(),
            Some(caller.user_id.clone()),
        )
        .map_err(|e| ServiceError::invalid_field("authenticators.usernames", e))
    }
}

/// Whether the command changes if the user's tokens work.
fn changes_standing(command: &Command) -> bool {
    !matches!(command, Command::Patch(_))
}

fn invalid_filter(reason: &'static str, message: String) -> ServiceError {
    ServiceError::InvalidArgument {
        reason,
        message,
        field: Some("filters".to_owned()),
    }
}

/// The limits on a filter tree (docs/api.md).
fn check_filters(filters: &[Filter]) -> Result<(), ServiceError> {
    /// No empty combinator, and no control character in any value.
    fn well_formed(filter: &Filter) -> Result<(), ServiceError> {
        let plain = |text: &str| {
            check_plain_text(text, "a filter value", "INVALID_FILTER")
                .map_err(|e| invalid_filter(e.reason, e.message))
        };
        match filter {
            Filter::And(children) | Filter::Or(children) if children.is_empty() => {
                Err(invalid_filter(
                    "INVALID_FILTER",
                    "andFilter and orFilter need at least one query".to_owned(),
                ))
            }
            Filter::And(children) | Filter::Or(children) => {
                children.iter().try_for_each(well_formed)
            }
            Filter::Not(child) => well_formed(child),
            Filter::UserId(text)
            | Filter::OrganizationId(text)
            | Filter::Email(text)
            | Filter::Phone(text)
            | Filter::Username { text, .. } => plain(&text.value),
            Filter::SchemaId(id) => plain(id),
            Filter::State(_) => Ok(()),
        }
    }
    let (mut depth, mut count) = (0, 0);
    for filter in filters {
        let (filter_depth, filter_count) = filter.size();
        depth = depth.max(filter_depth);
        count += filter_count;
    }
    if depth > MAX_FILTER_DEPTH {
        return Err(invalid_filter(
            "FILTER_TOO_DEEP",
            format!("filters may nest at most {MAX_FILTER_DEPTH} deep, got {depth}"),
        ));
    }
    if count > MAX_FILTERS {
        return Err(invalid_filter(
            "TOO_MANY_FILTERS",
            format!("at most {MAX_FILTERS} filters in all, got {count}"),
        ));
    }
    filters.iter().try_for_each(well_formed)
}

/// The organizations whose users the caller may read, narrowed to `only` when given.
fn read_scope(caller: &Caller, only: Option<&OrgId>) -> ReadScope {
    let everything = caller.instance_permissions().contains(Permission::UserRead);
    let readable = |org: &OrgId| caller.permissions_in(org).contains(Permission::UserRead);
    match only {
        Some(org) if readable(org) => ReadScope::Organizations(vec![org.clone()]),
        Some(_) => ReadScope::Organizations(Vec::new()),
        None if everything => ReadScope::Everything,
        None => ReadScope::Organizations(
            caller
                .organizations()
                .filter(|org| readable(org))
                .cloned()
                .collect(),
        ),
    }
}

fn permission_for(command: &Command) -> Permission {
    match command {
        Command::Delete => Permission::UserDelete,
        _ => Permission::UserWrite,
    }
}

#[async_trait]
impl UserService for UseCases {
    async fn authenticate(&self, credentials: &Credentials) -> Result<Caller, ServiceError> {
        let Credentials::Bearer(token) = credentials else {
            return Err(ServiceError::Unauthenticated);
        };
        let hash = hash_token(token);
        self.ports
            .authenticator
            .caller_for_token(&hash, self.ports.clock.now())
            .await?
            .map(|found| found.caller)
            .ok_or(ServiceError::Unauthenticated)
    }

    async fn create_user(
        &self,
        caller: &Caller,
        org: Option<OrgId>,
        new_user: NewUser,
    ) -> Result<WrittenUser, ServiceError> {
        let org_id = org.unwrap_or_else(|| caller.org_id.clone());
        authorize_in(caller, &org_id, Permission::UserWrite, || {
            ServiceError::OrganizationNotFound {
                org_id: org_id.to_string(),
            }
        })?;

        if new_user
            .password
            .as_ref()
            .is_some_and(|p| p.proof != userd_ports::login::PasswordProof::None)
        {
            return Err(ServiceError::InvalidArgument {
                reason: "INVALID_ARGUMENT",
                message: "authenticators.password: a new user has no password to prove".into(),
                field: Some("authenticators.password".into()),
            });
        }
        let password = match &new_user.password {
            Some(request) => Some((
                self.new_password_hash(&org_id, &request.password).await?,
                request.change_required,
            )),
            None => None,
        };
        let codes = self.new_codes(&new_user.codes)?;
        let client_chose_id = new_user.user_id.is_some();
        let mut attempts = FreshIdAttempts::new("user", self.write_attempts);
        loop {
            attempts.start()?;
            let user_id = match &new_user.user_id {
                Some(id) => id.clone(),
                None => UserId::new(self.ports.ids.next_id())
                    .map_err(|e| ServiceError::Internal(Box::new(e)))?,
            };
            let (mut user, event) = self.new_user_state(caller, &org_id, user_id, &new_user)?;
            let at = event.at;
            let actor = Some(caller.user_id.clone());
            let mut events = vec![event];
            if let Some((hash, change_required)) = &password {
                let set = Command::SetPassword {
                    hash: hash.clone(),
                    change_required: *change_required,
                };
                let (with_password, password_set) = user
                    .execute(&set, at, actor.clone())
                    .map_err(|refusal| ServiceError::refused(refusal, user.id.to_string()))?
                    .ok_or_else(|| {
                        ServiceError::Internal("setting a password changed nothing".into())
                    })?;
                user = with_password;
                events.push(password_set);
            }
            let messages = self.add_codes(&mut user, &mut events, &codes, at, actor)?;
            let written = match events.as_slice() {
                [only] if messages.is_empty() => self.ports.users.append(&user, only).await,
                _ => self.write_with_messages(&user, &events, messages).await,
            };
            return match written.map(|()| user) {
                Ok(user) => Ok(written_user(ResourceDetails::of_user(&user), &codes)),
                Err(StoreError::UserIdTaken) if client_chose_id => {
                    Err(ServiceError::UserAlreadyExists {
                        user_id: new_user
                            .user_id
                            .as_ref()
                            .map(ToString::to_string)
                            .unwrap_or_default(),
                    })
                }
                // The user's id or a username's, both server-made.
                Err(StoreError::UserIdTaken | StoreError::Conflict) => continue,
                Err(StoreError::UsernameTaken(username)) => {
                    Err(ServiceError::UsernameTaken { username })
                }
                Err(StoreError::OrganizationNotFound) => Err(ServiceError::OrganizationNotFound {
                    org_id: org_id.to_string(),
                }),
                Err(other) => Err(other.into()),
            };
        }
    }

    async fn get_user(&self, caller: &Caller, target: &UserRef) -> Result<User, ServiceError> {
        let user = self
            .load_authorized(caller, target, Permission::UserRead)
            .await?;
        Ok(user.seen_at(self.ports.clock.now()))
    }

    async fn execute(
        &self,
        caller: &Caller,
        target: &UserRef,
        command: Command,
    ) -> Result<ResourceDetails, ServiceError> {
        let permission = permission_for(&command);
        for attempt in 1..=self.write_attempts {
            let user = self.load_authorized(caller, target, permission).await?;
            if attempt == 1 {
                self.ensure_covers(caller, &user).await?;
            }
            // The client's precondition comes after authorization (a stranger learns
            // nothing) and before the state machine.
            if let Some(condition) = &target.if_match
                && !condition.matches(user.sequence)
            {
                return Err(ServiceError::VersionMismatch {
                    user_id: target.id.to_string(),
                    current: user.sequence,
                });
            }
            let outcome = user
                .execute(
                    &command,
                    self.ports.clock.now(),
                    Some(caller.user_id.clone()),
                )
                .map_err(|refusal| ServiceError::refused(refusal, target.id.to_string()))?;
            let Some((next, event)) = outcome else {
                // Nothing would change: nothing is written.
                return Ok(ResourceDetails::of_user(&user));
            };
            match self.ports.users.append(&next, &event).await {
                Ok(()) => {
                    if changes_standing(&command) {
                        self.ports.authenticator.forget_user(&next.id);
                    }
                    return Ok(ResourceDetails::of_user(&next));
                }
                Err(StoreError::Conflict) => {
                    tracing::debug!(user_id = %target.id, attempt, "lost a write race; reloading");
                }
                Err(other) => return Err(other.into()),
            }
        }
        Err(ServiceError::Aborted {
            user_id: target.id.to_string(),
        })
    }

    async fn patch_user(
        &self,
        caller: &Caller,
        target: &UserRef,
        patch: UserPatch,
        codes: CodeRequests,
    ) -> Result<WrittenUser, ServiceError> {
        if codes.is_empty() {
            let details = self.execute(caller, target, Command::Patch(patch)).await?;
            return Ok(WrittenUser::without_codes(details));
        }
        let codes = self.new_codes(&codes)?;
        let command = Command::Patch(patch);
        for attempt in 1..=self.write_attempts {
            let user = self
                .load_authorized(caller, target, permission_for(&command))
                .await?;
            if attempt == 1 {
                self.ensure_covers(caller, &user).await?;
            }
            if let Some(condition) = &target.if_match
                && !condition.matches(user.sequence)
            {
                return Err(ServiceError::VersionMismatch {
                    user_id: target.id.to_string(),
                    current: user.sequence,
                });
            }
            let now = self.ports.clock.now();
            let actor = Some(caller.user_id.clone());
            let mut state = user.clone();
            let mut events = Vec::new();
            if let Some((next, event)) = user
                .execute(&command, now, actor.clone())
                .map_err(|refusal| ServiceError::refused(refusal, target.id.to_string()))?
            {
                state = next;
                events.push(event);
            }
            let messages = self.add_codes(&mut state, &mut events, &codes, now, actor)?;
            match self.write_with_messages(&state, &events, messages).await {
                Ok(()) => return Ok(written_user(ResourceDetails::of_user(&state), &codes)),
                Err(StoreError::Conflict) => {
                    tracing::debug!(user_id = %target.id, attempt, "lost a write race; reloading");
                }
                Err(other) => return Err(other.into()),
            }
        }
        Err(ServiceError::Aborted {
            user_id: target.id.to_string(),
        })
    }

    async fn search_users(
        &self,
        caller: &Caller,
        request: SearchRequest,
    ) -> Result<SearchResult, ServiceError> {
        let limit = match request.limit {
            0 => DEFAULT_LIMIT,
            limit if limit > MAX_LIMIT => {
                return Err(ServiceError::InvalidArgument {
                    reason: "LIMIT_EXCEEDED",
                    message: format!("query.limit may be at most {MAX_LIMIT}, got {limit}"),
                    field: Some("query.limit".to_owned()),
                });
            }
            limit => limit,
        };
        check_filters(&request.filters)?;
        let timestamp = self.ports.clock.now();
        let scope = read_scope(caller, request.organization.as_ref());
        if scope == ReadScope::Organizations(Vec::new()) {
            return Ok(SearchResult {
                total: 0,
                users: Vec::new(),
                applied_limit: limit,
                sort: request.sort,
                timestamp,
            });
        }
        let mut filters = request.filters;
        let filter = if filters.len() == 1 {
            filters.remove(0)
        } else {
            Filter::And(filters)
        };
        let page = self
            .ports
            .users
            .search(&UserQuery {
                filter,
                scope,
                sort: request.sort.unwrap_or_default(),
                descending: request.descending,
                offset: request.offset,
                limit,
                at: timestamp,
            })
            .await?;
        Ok(SearchResult {
            total: page.total,
            users: page
                .users
                .into_iter()
                .map(|user| user.seen_at(timestamp))
                .collect(),
            applied_limit: limit,
            sort: request.sort,
            timestamp,
        })
    }

    async fn readiness(&self) -> Result<(), ServiceError> {
        self.ports.health.ping().await.map_err(ServiceError::from)
    }
}

/// A written user, with the codes the caller asked to have back.
fn written_user(
    details: ResourceDetails,
    codes: &[(userd_domain::user::ContactKind, crate::contact::NewCode)],
) -> WrittenUser {
    let returned = |wanted| {
        codes
            .iter()
            .find(|(kind, _)| *kind == wanted)
            .and_then(|(_, code)| crate::contact::returned(code))
    };
    WrittenUser {
        details,
        email_code: returned(userd_domain::user::ContactKind::Email),
        phone_code: returned(userd_domain::user::ContactKind::Phone),
    }
}

#[cfg(test)]
pub(crate) mod tests;
