//! Server-made ids are unique across processes only almost surely (see
//! [`crate::ids::SnowflakeIds`]); the database's unique keys catch the rare clash, and
//! the write is tried again with fresh ids, a bounded number of times.

use userd_ports::error::ServiceError;

/// The ids of a kind of resource kept clashing: something else is wrong.
#[derive(Debug, thiserror::Error)]
#[error("could not make a unique {what} id in {attempts} attempts")]
pub struct IdsExhausted {
    what: &'static str,
    attempts: u32,
}

/// Counts the attempts at writing with fresh ids.
pub(crate) struct FreshIdAttempts {
    what: &'static str,
    left: u32,
    attempts: u32,
}

impl FreshIdAttempts {
    pub(crate) fn new(what: &'static str, attempts: u32) -> Self {
        FreshIdAttempts {
            what,
            left: attempts,
            attempts,
        }
    }

    /// Starts another attempt, or fails once all are used.
    pub(crate) fn start(&mut self) -> Result<(), ServiceError> {
        if self.left == 0 {
            return Err(ServiceError::Internal(Box::new(IdsExhausted {
                what: self.what,
                attempts: self.attempts,
            })));
        }
        if self.left < self.attempts {
            tracing::debug!(what = self.what, "a server-made id clashed; retrying");
        }
        self.left -= 1;
        Ok(())
    }
}
