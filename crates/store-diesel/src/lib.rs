//! userd's storage adapter: diesel over SQLite (the embedded default) and PostgreSQL.
//!
//! Users are stored as an append-only event log (`events`) plus their current state
//! (`users`, `usernames`), both written in one transaction. The backend follows the
//! database URL's scheme. Diesel is synchronous, so every checkout and query runs on
//! tokio's blocking pool ([`Database::run`]); the async ports never block a worker.

mod auth;
mod bootstrap;
mod connection;
mod data_migrations;
mod errors;
mod login;
mod migrations;
mod organizations;
mod outbox;
mod projection;
mod schema;
mod search;
mod stored;
mod users;

pub use connection::{Backend, Database, DatabaseTarget, DbConnection, PoolSettings};
pub use data_migrations::{DataMigrationReport, UsernameClash};
pub use errors::OpenError;
pub use migrations::MigrationReport;
pub use projection::{ProjectionDrift, ProjectionRow, RebuildReport, UsernameRow};
pub use users::BlockingSession;
