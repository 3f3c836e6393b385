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

/// The name of the login cookie, which holds a read or deploy token.
pub const COOKIE: &str = "cp_session";

/// Where a request carried its token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// `Authorization: Bearer TOKEN`.
    Bearer,
    /// HTTP basic, the token as the password (any user name), as Prometheus sends it.
    Basic,
    /// The login cookie: reads only, so that another site cannot make a browser change
    /// anything.
    Cookie,
}

/// A token found in a request, or why the request has none usable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// No `Authorization` header and no login cookie.
    Missing,
    /// An `Authorization` header of an unknown scheme or shape.
    Malformed,
    /// A token and where it came from.
    Token(String, Via),
}

/// The token of a request from its `Authorization` header (bearer or basic) or, without
/// one, from the login cookie among the `Cookie` headers (at most 64 read).
pub fn credential<'a>(
    authorization: Option<&str>,
    cookies: impl IntoIterator<Item = &'a str>,
) -> Credential {
    if let Some(header) = authorization {
        if let Some(token) = bearer(header) {
            return Credential::Token(token.to_owned(), Via::Bearer);
        }
        return match basic(header) {
            Some(token) => Credential::Token(token, Via::Basic),
            None => Credential::Malformed,
        };
    }
    cookies
        .into_iter()
        .take(64)
        .flat_map(|header| header.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, value)| *name == COOKIE && !value.is_empty())
        .map_or(Credential::Missing, |(_, value)| {
            Credential::Token(value.trim_matches('"').to_owned(), Via::Cookie)
        })
}

/// The password of an `Authorization: Basic` header value, the user name when the
/// password is empty.
fn basic(header: &str) -> Option<String> {
    use base64::Engine as _;
    let (scheme, encoded) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    let token = if password.is_empty() { user } else { password };
    (!token.is_empty()).then(|| token.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(authorization: Option<&str>, cookies: &[&str], expected: Credential) {
        assert_eq!(
            credential(authorization, cookies.iter().copied()),
            expected,
            "{authorization:?} {cookies:?}"
        );
    }

    #[test]
    fn credentials_come_from_the_header_then_the_cookie() {
        let token = |t: &str, via| Credential::Token(t.to_owned(), via);
        check(Some("Bearer cp_1"), &[], token("cp_1", Via::Bearer));
        check(
            Some("bearer  cp_1 "),
            &["cp_session=x"],
            token("cp_1", Via::Bearer),
        );
        // "prometheus:cp_2" and ":cp_3" and "cp_4:"
        check(
            Some("Basic cHJvbWV0aGV1czpjcF8y"),
            &[],
            token("cp_2", Via::Basic),
        );
        check(Some("basic OmNwXzM="), &[], token("cp_3", Via::Basic));
        check(Some("Basic Y3BfNDo="), &[], token("cp_4", Via::Basic));
        check(Some("Basic !!!"), &[], Credential::Malformed);
        check(Some("Basic Og=="), &[], Credential::Malformed);
        check(
            Some("Digest x"),
            &["cp_session=cp_5"],
            Credential::Malformed,
        );
        check(
            None,
            &["a=1; cp_session=cp_5; b=2"],
            token("cp_5", Via::Cookie),
        );
        check(
            None,
            &["a=1", "cp_session=\"cp_6\""],
            token("cp_6", Via::Cookie),
        );
        check(None, &["cp_session=", "other=cp_7"], Credential::Missing);
        check(None, &[], Credential::Missing);
    }

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
