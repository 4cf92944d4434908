//! The password-hashing port: slow, memory-hard work kept out of the domain and off the
//! request workers. The domain holds hashes as opaque strings; an adapter makes and
//! verifies them.

use std::fmt;

use async_trait::async_trait;
use userd_domain::password::PasswordHash;

/// A password in clear, as a client sent it. Never logged: its `Debug` form is redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct PlainPassword(String);

impl PlainPassword {
    pub fn new(password: String) -> PlainPassword {
        PlainPassword(password)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PlainPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PlainPassword(<redacted>)")
    }
}

/// The outcome of verifying a password against a hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verification {
    pub matches: bool,
    /// The hash is not what [`PasswordHasher::hash`] makes today (an imported or weaker
    /// algorithm, or older parameters): after a successful check it should be replaced.
    pub outdated: bool,
}

/// An imported hash userd cannot verify: an unknown algorithm, a malformed string, or
/// parameters beyond what a login may cost. The text says which, for the client.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct UnsupportedHash(pub &'static str);

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// A stored hash that cannot be read: storage was tampered with or damaged.
    #[error("a stored password hash cannot be read")]
    Corrupt,
    #[error("password hashing failed: {0}")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait PasswordHasher: Send + Sync {
    /// A new hash of `password`, in the current algorithm and parameters.
    async fn hash(&self, password: &PlainPassword) -> Result<PasswordHash, HashError>;

    /// Whether `password` matches `hash`.
    async fn verify(
        &self,
        password: &PlainPassword,
        hash: &PasswordHash,
    ) -> Result<Verification, HashError>;

    /// Spends what verifying a current hash spends, and says nothing: a check for a user
    /// that does not exist must take as long as one for a user that does.
    async fn verify_nothing(&self, password: &PlainPassword) -> Result<(), HashError>;

    /// Accepts an existing hash to store as is, when it is one this hasher can verify.
    fn import(&self, encoded: &str) -> Result<PasswordHash, UnsupportedHash>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_show_in_debug_output() {
        let password = PlainPassword::new("correct horse".into());
        assert_eq!(format!("{password:?}"), "PlainPassword(<redacted>)");
        assert_eq!(password.expose(), "correct horse");
    }
}
