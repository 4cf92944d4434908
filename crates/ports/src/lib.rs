//! The ports of userd: the traits that connect the application to the world, and the
//! types that cross them. Nothing here does any work.
//!
//! - Driving ports, called by transport adapters: [`service::UserService`] and
//!   [`admin::AdminService`], with their errors ([`error::ServiceError`]).
//! - Driven ports, implemented by storage and other adapters: [`repository`] (users,
//!   memberships, tokens, organizations, the event log, health), [`clock::Clock`],
//!   [`ids::IdGenerator`], [`bootstrap::BootstrapStore`], [`recovery::RecoveryStore`],
//!   [`passwords::PasswordHasher`], [`notify::Outbox`] and [`notify::Notifier`].
//!
//! The use cases that implement the driving ports with the driven ones live in the
//! `userd-app` crate.

pub mod admin;
pub mod bootstrap;
pub mod clock;
pub mod contact;
pub mod error;
pub mod ids;
pub mod login;
pub mod notify;
pub mod passwords;
pub mod recovery;
pub mod repository;
pub mod search;
pub mod service;
pub mod sessions;
pub mod settings;
pub mod tokens;

pub use error::{ErrorKind, ServiceError};
