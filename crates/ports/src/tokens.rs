//! Personal access tokens as the ports see them: a secret shown once, and the hash that
//! is stored and looked up. How they are made and hashed is the application's business.

use std::fmt;

/// A token in clear. Shown once, never logged: its `Debug` form is redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenSecret(String);

impl TokenSecret {
    pub fn new(secret: String) -> TokenSecret {
        TokenSecret(secret)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for TokenSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenSecret(<redacted>)")
    }
}

/// The stored form of a token: lowercase hex of its SHA-256.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TokenHash(String);

impl TokenHash {
    /// Wraps a hash made by the application or read back from storage.
    pub fn from_hex(hex: String) -> TokenHash {
        TokenHash(hex)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_show_in_debug_output() {
        let secret = TokenSecret::new("userd_pat_abc".into());
        assert!(!format!("{secret:?}").contains("abc"));
        assert_eq!(secret.expose(), "userd_pat_abc");
    }
}
