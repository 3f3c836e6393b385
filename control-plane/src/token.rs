//! API tokens: generated from the system's secure random source, stored only as their
//! SHA-256, compared in constant time.

use std::fmt;

use ring::rand::{SecureRandom, SystemRandom};
use thiserror::Error;

/// The prefix of every token, so that secret scanners recognise them.
pub const TOKEN_PREFIX: &str = "mon_";

/// The SHA-256 of a token: what the store keeps.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TokenHash(pub [u8; 32]);

impl TokenHash {
    /// The hash of a token as presented by a client.
    pub fn of(token: &str) -> TokenHash {
        let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(digest.as_ref());
        TokenHash(out)
    }

    /// Lower-case hex, as stored.
    pub fn to_hex(&self) -> String {
        crate::hash::hex(&self.0)
    }

    /// Compares with another hash without data-dependent branches.
    pub fn ct_eq(&self, other: &[u8]) -> bool {
        ct_eq(&self.0, other)
    }
}

/// Whether two byte strings are equal, in time that depends only on their lengths.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenHash({})", self.to_hex())
    }
}

/// The system random source failed.
#[derive(Debug, Error)]
#[error("the system random source failed")]
pub struct RandomError;

/// A new token: [`TOKEN_PREFIX`] and 32 random bytes as hex.
pub fn generate() -> Result<String, RandomError> {
    let mut bytes = [0u8; 32];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| RandomError)?;
    Ok(format!("{TOKEN_PREFIX}{}", crate::hash::hex(&bytes)))
}

/// Parses an `Authorization` header value: `Bearer TOKEN` (scheme case-insensitive).
pub fn bearer(header: &str) -> Option<&str> {
    let (scheme, token) = header.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_prefixed() {
        let a = generate().unwrap();
        let b = generate().unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with(TOKEN_PREFIX));
        assert_eq!(a.len(), TOKEN_PREFIX.len() + 64);
    }

    #[test]
    fn hash_compares() {
        let h = TokenHash::of("mon_x");
        assert!(h.ct_eq(&TokenHash::of("mon_x").0));
        assert!(!h.ct_eq(&TokenHash::of("mon_y").0));
        assert!(!h.ct_eq(&[0u8; 31]));
        assert!(!format!("{h:?}").contains("mon_x"));
    }

    #[test]
    fn bearer_header() {
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("bearer  abc "), Some("abc"));
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("Bearer"), None);
        assert_eq!(bearer("Bearer "), None);
    }
}
