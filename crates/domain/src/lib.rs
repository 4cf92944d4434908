//! The core of userd: what a user is, what may happen to it, and who may make it happen.
//!
//! Nothing here performs I/O. A [`user::User`] is the fold of its [`user::UserEvent`]s; a
//! command checks its guard against the current state and yields either the event to
//! append or a typed [`user::Refusal`]. Storage, transport and authentication live in other
//! crates and reach this one only through these types.

pub mod authz;
pub mod password;
pub mod time;
pub mod user;
pub mod values;

pub use time::Timestamp;
