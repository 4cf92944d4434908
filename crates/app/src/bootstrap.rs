//! First start: an empty database gets an organization, an admin user who is
//! `IAM_OWNER`, and a token for that admin.

use userd_domain::user::{Contact, User, UserCreated, UsernameEntry};
use userd_domain::values::{InvalidValue, OrgId, UserData, UserId, Username, UsernameId};
use userd_ports::bootstrap::{BootstrapPlan, BootstrapStore};
use userd_ports::clock::Clock;
use userd_ports::error::StoreError;
use userd_ports::ids::IdGenerator;
use userd_ports::tokens::TokenSecret;

use crate::tokens::{NoRandomness, generate_token};

#[derive(Debug)]
pub struct Bootstrapped {
    pub org_id: OrgId,
    pub admin_id: UserId,
    pub token: TokenSecret,
}

#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    #[error("invalid bootstrap setting")]
    Setting(#[from] InvalidValue),
    #[error(transparent)]
    Randomness(#[from] NoRandomness),
    #[error("could not write the first organization and admin")]
    Store(#[from] StoreError),
}

/// Runs the first-start bootstrap; `None` when the database was already set up.
pub async fn bootstrap_if_empty(
    store: &dyn BootstrapStore,
    clock: &dyn Clock,
    ids: &dyn IdGenerator,
    org_name: &str,
    admin_username: &str,
) -> Result<Option<Bootstrapped>, BootstrapError> {
    let at = clock.now();
    let org_id = OrgId::new(ids.next_id())?;
    let admin_id = UserId::new(ids.next_id())?;
    let created = UserCreated {
        org_id: org_id.clone(),
        schema_id: None,
        data: UserData::default(),
        contact: Contact::default(),
        usernames: vec![UsernameEntry {
            id: UsernameId::new(ids.next_id())?,
            username: Username::new(admin_username)?,
            organization_specific: false,
        }],
    };
    let (admin, admin_created) = User::create(admin_id.clone(), created, at, None)?;
    let (token, token_hash) = generate_token()?;
    let plan = BootstrapPlan {
        instance_id: ids.next_id(),
        org_id: org_id.clone(),
        org_name: org_name.to_owned(),
        admin,
        admin_created,
        token_id: ids.next_id(),
        token_hash,
        at,
    };
    if store.bootstrap_if_empty(&plan).await? {
        Ok(Some(Bootstrapped {
            org_id,
            admin_id,
            token,
        }))
    } else {
        Ok(None)
    }
}
