//! The application layer of userd: the use cases that implement the driving ports
//! ([`userd_ports::service::UserService`], [`userd_ports::admin::AdminService`]) with the
//! driven ones, plus what surrounds them: the token cache, the first-start bootstrap,
//! administrator recovery, and the system clock and id generator.
//!
//! Where things are decided:
//! - [`users`]: reading, creating, changing and searching users (lock, unlock, ...);
//! - [`admin`]: organizations, members and tokens;
//! - [`login`]: passwords, password checks and lockout, sessions, login settings;
//! - [`messages`]: what userd says to users (codes by e-mail or SMS), for the outbox;
//! - [`access`]: the authorization steps every use case shares;
//! - the rules themselves (the state machine, who covers whom) live in `userd-domain`.

use std::sync::Arc;

use userd_ports::clock::Clock;
use userd_ports::ids::IdGenerator;
use userd_ports::passwords::PasswordHasher;
use userd_ports::repository::{
    Authenticator, HealthProbe, MembershipRepository, OrganizationRepository, TokenRepository,
    UserRepository,
};
use userd_ports::sessions::SessionRepository;
use userd_ports::settings::SettingsRepository;

pub mod access;
pub mod admin;
pub mod auth_cache;
pub mod bootstrap;
pub mod clock;
pub mod contact;
mod fresh_ids;
pub mod ids;
pub mod login;
pub mod messages;
pub mod recovery;
pub mod tokens;
pub mod users;

/// The driven ports the use cases need.
#[derive(Clone)]
pub struct Ports {
    pub users: Arc<dyn UserRepository>,
    pub authenticator: Arc<dyn Authenticator>,
    pub organizations: Arc<dyn OrganizationRepository>,
    pub members: Arc<dyn MembershipRepository>,
    pub tokens: Arc<dyn TokenRepository>,
    pub health: Arc<dyn HealthProbe>,
    pub clock: Arc<dyn Clock>,
    pub ids: Arc<dyn IdGenerator>,
    pub hasher: Arc<dyn PasswordHasher>,
    pub settings: Arc<dyn SettingsRepository>,
    pub sessions: Arc<dyn SessionRepository>,
    /// The id of this userd instance, the owner of organizations.
    pub instance_id: String,
}

/// How many times a write that lost a race is re-tried against the new state before the
/// client gets ABORTED. Each lost race means another writer made progress.
pub const DEFAULT_WRITE_ATTEMPTS: u32 = 16;

/// The use cases: [`userd_ports::service::UserService`] in [`users`],
/// [`userd_ports::admin::AdminService`] in [`admin`].
pub struct UseCases {
    pub(crate) ports: Ports,
    write_attempts: u32,
    /// How long a verification code (password reset) lasts.
    code_ttl: std::time::Duration,
    /// How messages reach users: the channels a notifier is configured for.
    delivery: messages::Delivery,
}

/// How long a verification code lasts unless configured otherwise: an hour.
pub const DEFAULT_CODE_TTL: std::time::Duration = std::time::Duration::from_secs(3600);

impl UseCases {
    pub fn new(ports: Ports) -> Self {
        UseCases {
            ports,
            write_attempts: DEFAULT_WRITE_ATTEMPTS,
            code_ttl: DEFAULT_CODE_TTL,
            delivery: messages::Delivery::default(),
        }
    }

    /// The channels messages can go through, and whom to tell when one is stored.
    pub fn with_delivery(mut self, delivery: messages::Delivery) -> Self {
        self.delivery = delivery;
        self
    }

    pub fn with_code_ttl(mut self, ttl: std::time::Duration) -> Self {
        self.code_ttl = ttl;
        self
    }

    pub fn with_write_attempts(mut self, attempts: u32) -> Self {
        self.write_attempts = attempts.max(1);
        self
    }
}
