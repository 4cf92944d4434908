//! Personal access tokens: opaque secrets of 256 random bits, kept only as a hash.
//!
//! A token is looked up by its SHA-256. A fast hash is the right tool here, unlike for
//! passwords: the secret already carries 256 bits of entropy, so there is nothing to
//! brute-force, and a request must be authenticated with one indexed lookup.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

/// The prefix makes leaked tokens recognizable to secret scanners.
pub const TOKEN_PREFIX: &str = "userd_pat_";
const TOKEN_RANDOM_BYTES: usize = 32;

/// A token in clear. Shown once, never logged: its `Debug` form is redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenSecret(String);

impl TokenSecret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for TokenSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenSecret(<redacted>)")
    }
}

/// The stored form of a token: lowercase hex SHA-256 of the whole token text.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TokenHash(String);

impl TokenHash {
    pub fn of(token: &str) -> TokenHash {
        let digest = Sha256::digest(token.as_bytes());
        let mut hex = String::with_capacity(64);
        for byte in digest {
            hex.push(char::from(b"0123456789abcdef"[usize::from(byte >> 4)]));
            hex.push(char::from(b"0123456789abcdef"[usize::from(byte & 0xf)]));
        }
        TokenHash(hex)
    }

    /// Wraps a hash read back from storage.
    pub fn from_stored(hex: String) -> TokenHash {
        TokenHash(hex)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, thiserror::Error)]
#[error("the operating system's random number generator failed: {0}")]
pub struct NoRandomness(getrandom::Error);

/// A fresh token and its hash.
pub fn generate_token() -> Result<(TokenSecret, TokenHash), NoRandomness> {
    let mut bytes = [0u8; TOKEN_RANDOM_BYTES];
    getrandom::fill(&mut bytes).map_err(NoRandomness)?;
    let secret = format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
    let hash = TokenHash::of(&secret);
    Ok((TokenSecret(secret), hash))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_prefixed_and_hash_to_their_hash() {
        let (a, hash_a) = generate_token().unwrap();
        let (b, _) = generate_token().unwrap();
        assert_ne!(a, b);
        assert!(a.expose().starts_with(TOKEN_PREFIX));
        assert_eq!(
            a.expose().len(),
            TOKEN_PREFIX.len() + 43,
            "32 bytes in base64url"
        );
        assert_eq!(TokenHash::of(a.expose()), hash_a);
        assert_eq!(hash_a.as_str().len(), 64);
        assert!(!format!("{a:?}").contains(a.expose()));
    }

    #[test]
    fn hash_is_sha256_hex() {
        assert_eq!(
            TokenHash::of("abc").as_str(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
