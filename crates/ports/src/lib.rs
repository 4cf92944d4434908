//! The application core of userd: the driven ports it needs (storage, authentication,
//! clock, ids) and the use cases that drive them.
//!
//! The HTTP adapter calls the driving port [`service::UserService`]; the binary builds a
//! [`service::UseCases`] from whatever adapters it chose.

pub mod admin;
pub mod auth_cache;
pub mod bootstrap;
pub mod clock;
pub mod error;
pub mod ids;
pub mod recovery;
pub mod repository;
pub mod search;
pub mod service;
pub mod tokens;

pub use error::{ErrorKind, ServiceError};
