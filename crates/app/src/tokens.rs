//! Personal access tokens: opaque secrets of 256 random bits, kept only as a hash.
//!
//! A token is looked up by its SHA-256. A fast hash is the right tool here, unlike for
//! passwords: the secret already carries 256 bits of entropy, so there is nothing to
//! brute-force, and a request must be authenticated with one indexed lookup.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use userd_ports::tokens::{TokenHash, TokenSecret};

/// The prefix makes leaked tokens recognizable to secret scanners.
pub const TOKEN_PREFIX: &str = "userd_pat_";
const TOKEN_RANDOM_BYTES: usize = 32;

/// The stored form of a token: lowercase hex SHA-256 of the whole token text.
pub fn hash_token(token: &str) -> TokenHash {
    TokenHash::from_hex(format!("{:x}", Sha256::digest(token.as_bytes())))
}

/// Verification codes: 8 characters from an alphabet without look-alikes (no 0/O, 1/I),
/// 40 random bits; typed by people, so compared without regard to case.
const CODE_ALPHABET: &[u8; 32] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
const CODE_LENGTH: usize = 8;

/// The stored form of a verification code: hex SHA-256 of its upper-case text.
pub fn hash_code(code: &str) -> String {
    format!(
        "{:x}",
        Sha256::digest(code.trim().to_uppercase().as_bytes())
    )
}

/// A fresh verification code and its hash.
pub fn generate_code() -> Result<(String, String), NoRandomness> {
    let mut bytes = [0u8; CODE_LENGTH];
    getrandom::fill(&mut bytes).map_err(NoRandomness)?;
    // 256 is a multiple of 32: every symbol is equally likely.
    let code: String = bytes
        .iter()
        .map(|b| char::from(CODE_ALPHABET[usize::from(b % 32)]))
        .collect();
    let hash = hash_code(&code);
    Ok((code, hash))
}

#[derive(Debug, thiserror::Error)]
#[error("the operating system's random number generator failed")]
pub struct NoRandomness(#[source] getrandom::Error);

/// A fresh token and its hash.
pub fn generate_token() -> Result<(TokenSecret, TokenHash), NoRandomness> {
    generate_secret(TOKEN_PREFIX)
}

/// A fresh secret of 256 random bits after `prefix`, and its hash.
pub fn generate_secret(prefix: &str) -> Result<(TokenSecret, TokenHash), NoRandomness> {
    let mut bytes = [0u8; TOKEN_RANDOM_BYTES];
    getrandom::fill(&mut bytes).map_err(NoRandomness)?;
    let secret = format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes));
    let hash = hash_token(&secret);
    Ok((TokenSecret::new(secret), hash))
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
        assert_eq!(hash_token(a.expose()), hash_a);
        assert_eq!(hash_a.as_str().len(), 64);
        assert!(!format!("{a:?}").contains(a.expose()));
    }

    #[test]
    fn codes_are_eight_unambiguous_characters_compared_without_case() {
        let (code, hash) = generate_code().unwrap();
        assert_eq!(code.len(), 8);
        assert!(code.bytes().all(|b| CODE_ALPHABET.contains(&b)), "{code}");
        assert_eq!(hash_code(&code.to_lowercase()), hash);
        assert_eq!(hash_code(&format!(" {code} ")), hash);
        assert_ne!(generate_code().unwrap().0, code);
    }

    #[test]
    fn hash_is_sha256_hex() {
        assert_eq!(
            hash_token("abc").as_str(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
