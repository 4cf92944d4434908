//! Regaining administrator access when every admin token is lost: run by an operator
//! against the database (there is no caller to authenticate), it issues a new token for
//! a usable `IAM_OWNER`, making one if none is left.

use userd_domain::Timestamp;
use userd_domain::authz::{Role, RoleSet};
use userd_domain::user::{Contact, User, UserCreated, UserState, UsernameEntry};
use userd_domain::values::{InvalidValue, UserData, UserId, Username, UsernameId};
use userd_ports::clock::Clock;
use userd_ports::error::StoreError;
use userd_ports::ids::IdGenerator;
use userd_ports::recovery::RecoveryStore;
use userd_ports::repository::{MembershipRepository, NewToken, TokenRepository, UserRepository};
use userd_ports::tokens::TokenSecret;

use crate::tokens::{NoRandomness, generate_token};

pub struct RecoveryPorts<'a> {
    pub recovery: &'a dyn RecoveryStore,
    pub users: &'a dyn UserRepository,
    pub members: &'a dyn MembershipRepository,
    pub tokens: &'a dyn TokenRepository,
    pub clock: &'a dyn Clock,
    pub ids: &'a dyn IdGenerator,
}

#[derive(Debug)]
pub struct RecoveredAccess {
    pub user_id: UserId,
    /// Whether a new admin user had to be made.
    pub created_user: bool,
    pub token_id: String,
    pub token: TokenSecret,
}

#[derive(Debug, thiserror::Error)]
pub enum RecoveryError {
    #[error("user {0} does not exist (or is deleted)")]
    UnknownUser(String),
    #[error(
        "user {0} is {1}; its tokens would not work. Name another user, or none to let userd pick or make one"
    )]
    Unusable(String, &'static str),
    #[error("the database has no organization yet; start userd once to set it up")]
    NotSetUp,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("invalid value")]
    Invalid(#[from] InvalidValue),
    #[error(transparent)]
    Randomness(#[from] NoRandomness),
}

/// Issues a new token carrying `IAM_OWNER`: for `user` when given (granting it the role
/// if needed), else for a usable instance owner, else for a new admin user.
pub async fn issue_admin_token(
    ports: RecoveryPorts<'_>,
    user: Option<UserId>,
    expires_at: Option<Timestamp>,
) -> Result<RecoveredAccess, RecoveryError> {
    let now = ports.clock.now();
    let (user_id, created_user) = match user {
        Some(id) => {
            let found = ports
                .users
                .find(&id)
                .await?
                .ok_or_else(|| RecoveryError::UnknownUser(id.to_string()))?;
            if !found.may_authenticate_at(now) {
                let standing = match found.state_at(now) {
                    UserState::Locked => "locked",
                    _ => "inactive",
                };
                return Err(RecoveryError::Unusable(id.to_string(), standing));
            }
            (id, false)
        }
        None => match ports.recovery.usable_instance_owner(now).await? {
            Some(id) => (id, false),
            None => (new_admin(&ports, now).await?, true),
        },
    };
    let held = ports.members.memberships_of(&user_id).await?;
    if !held.instance.roles().contains(&Role::IamOwner) {
        let roles = RoleSet::new(
            held.instance
                .roles()
                .iter()
                .copied()
                .chain([Role::IamOwner]),
        );
        ports
            .members
            .set_instance_member(&user_id, &roles, now)
            .await?;
    }
    let (token, hash) = generate_token()?;
    let token_id = ports.ids.next_id();
    ports
        .tokens
        .create_token(&NewToken {
            id: token_id.clone(),
            user_id: user_id.clone(),
            hash,
            expires_at,
            created: now,
            // Issued by the operator through userd itself, for the user's own roles.
            issuer: None,
            ceiling: None,
        })
        .await?;
    Ok(RecoveredAccess {
        user_id,
        created_user,
        token_id,
        token,
    })
}

async fn new_admin(ports: &RecoveryPorts<'_>, now: Timestamp) -> Result<UserId, RecoveryError> {
    let org = ports
        .recovery
        .first_organization()
        .await?
        .ok_or(RecoveryError::NotSetUp)?;
    let id = UserId::new(ports.ids.next_id())?;
    let created = UserCreated {
        org_id: org,
        schema_id: None,
        data: UserData::default(),
        contact: Contact::default(),
        usernames: vec![UsernameEntry {
            id: UsernameId::new(ports.ids.next_id())?,
            // The id makes the name unique without a lookup.
            username: Username::new(format!("recovery-admin-{id}"))?,
            organization_specific: false,
        }],
    };
    let (user, event) = User::create(id.clone(), created, now, None)?;
    ports.users.append(&user, &event).await?;
    Ok(id)
}
