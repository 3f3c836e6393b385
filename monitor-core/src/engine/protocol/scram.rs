//! A generic SCRAM-SHA-256 client (RFC 5802, RFC 7677) on ring's PBKDF2, HMAC and SHA-256,
//! for logins that name their user in the SASL exchange (MongoDB); it never shows the
//! password, only the messages the RFC defines.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ring::{digest, hmac, pbkdf2};
use std::num::NonZeroU32;

/// The SASL mechanism name.
pub const SCRAM_SHA_256: &str = "SCRAM-SHA-256";

/// The most PBKDF2 iterations a server may ask for: more is a server burning the
/// monitor's time (MongoDB's default is 15000, RFC 7677's minimum 4096).
pub const MAX_ITERATIONS: u32 = 1_000_000;

/// The longest server message read, in bytes.
pub const MAX_SERVER_MESSAGE_BYTES: usize = 4096;

/// Why the exchange cannot go on; the words name the RFC's fields, never the password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScramError {
    /// The password cannot be prepared (SASLprep, RFC 4013).
    #[error("the password is not a valid SASLprep string ({0})")]
    Prep(String),
    /// The server's message does not follow RFC 5802.
    #[error("the server's SCRAM message {0}")]
    Malformed(String),
    /// The server answered with `e=`.
    #[error("the server ended the SCRAM exchange: {0}")]
    Server(String),
    /// The server's signature is not the one the password gives.
    #[error("the server's SCRAM signature does not verify")]
    Signature,
}

/// The client's side of one exchange: `client_first()`, then `client_final(server_first)`,
/// then `verify(server_final)`.
pub struct ScramClient {
    password: String,
    client_first_bare: String,
    nonce: String,
    server_signature: Option<hmac::Tag>,
}

impl std::fmt::Debug for ScramClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScramClient")
            .field("client_first_bare", &self.client_first_bare)
            .finish_non_exhaustive()
    }
}

/// A user name as SCRAM writes it: `=` as `=3D`, `,` as `=2C`.
pub fn sasl_name(user: &str) -> String {
    user.replace('=', "=3D").replace(',', "=2C")
}

/// A fresh client nonce: 24 random bytes in base64.
pub fn random_nonce() -> String {
    use ring::rand::SecureRandom as _;
    let mut bytes = [0u8; 24];
    // The system's random source does not fail on Linux; a zero nonce would still be
    // unique enough per process for a check, and the server adds its own part.
    let _ = ring::rand::SystemRandom::new().fill(&mut bytes);
    STANDARD.encode(bytes)
}

/// The attribute `key` of a SCRAM message (`r=...,s=...`).
fn attribute(message: &str, key: char) -> Option<&str> {
    message.split(',').find_map(|part| {
        let mut chars = part.chars();
        (chars.next() == Some(key) && chars.next() == Some('=')).then(|| &part[2..])
    })
}

fn hmac256(key: &[u8], message: &[u8]) -> hmac::Tag {
    hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), message)
}

impl ScramClient {
    /// A client for `user` with `password` (SASLprep'ed here) and the client `nonce`
    /// (printable, without `,`: use [`random_nonce`]).
    pub fn new(user: &str, password: &str, nonce: &str) -> Result<Self, ScramError> {
        let password = stringprep::saslprep(password)
            .map_err(|e| ScramError::Prep(e.to_string()))?
            .into_owned();
        Ok(ScramClient {
            password,
            client_first_bare: format!("n={},r={nonce}", sasl_name(user)),
            nonce: nonce.to_owned(),
            server_signature: None,
        })
    }

    /// The client-first message: the GS2 header `n,,` (no channel binding) and the bare
    /// message.
    pub fn client_first(&self) -> String {
        format!("n,,{}", self.client_first_bare)
    }

    /// The client-final message answering `server_first` (`r=`, `s=`, `i=`).
    pub fn client_final(&mut self, server_first: &[u8]) -> Result<String, ScramError> {
        if server_first.len() > MAX_SERVER_MESSAGE_BYTES {
            return Err(ScramError::Malformed("is too long".into()));
        }
        let server_first = std::str::from_utf8(server_first)
            .map_err(|_| ScramError::Malformed("is not UTF-8".into()))?;
        if let Some(e) = attribute(server_first, 'e') {
            return Err(ScramError::Server(e.to_owned()));
        }
        let nonce = attribute(server_first, 'r')
            .ok_or_else(|| ScramError::Malformed("has no nonce (r=)".into()))?;
        if !nonce.starts_with(&self.nonce) || nonce.len() == self.nonce.len() {
            return Err(ScramError::Malformed(
                "has a nonce that does not extend the client's".into(),
            ));
        }
        let salt = attribute(server_first, 's')
            .and_then(|s| STANDARD.decode(s).ok())
            .ok_or_else(|| ScramError::Malformed("has no base64 salt (s=)".into()))?;
        let iterations = attribute(server_first, 'i')
            .and_then(|i| i.parse::<u32>().ok())
            .and_then(NonZeroU32::new)
            .ok_or_else(|| ScramError::Malformed("has no iteration count (i=)".into()))?;
        if iterations.get() > MAX_ITERATIONS {
            return Err(ScramError::Malformed(format!(
                "asks for {iterations} iterations, more than {MAX_ITERATIONS}"
            )));
        }
        let mut salted = [0u8; digest::SHA256_OUTPUT_LEN];
        pbkdf2::derive(
            pbkdf2::PBKDF2_HMAC_SHA256,
            iterations,
            &salt,
            self.password.as_bytes(),
            &mut salted,
        );
        let client_key = hmac256(&salted, b"Client Key");
        let stored_key = digest::digest(&digest::SHA256, client_key.as_ref());
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{server_first},{without_proof}", self.client_first_bare);
        let client_signature = hmac256(stored_key.as_ref(), auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .as_ref()
            .iter()
            .zip(client_signature.as_ref())
            .map(|(k, s)| k ^ s)
            .collect();
        let server_key = hmac256(&salted, b"Server Key");
        self.server_signature = Some(hmac256(server_key.as_ref(), auth_message.as_bytes()));
        Ok(format!("{without_proof},p={}", STANDARD.encode(proof)))
    }

    /// Checks the server-final message (`v=` the server's signature).
    pub fn verify(&self, server_final: &[u8]) -> Result<(), ScramError> {
        let text = std::str::from_utf8(
            server_final
                .get(..MAX_SERVER_MESSAGE_BYTES.min(server_final.len()))
                .unwrap_or_default(),
        )
        .map_err(|_| ScramError::Malformed("is not UTF-8".into()))?;
        if let Some(e) = attribute(text, 'e') {
            return Err(ScramError::Server(e.to_owned()));
        }
        let expected = self
            .server_signature
            .as_ref()
            .ok_or_else(|| ScramError::Malformed("came before the client-final message".into()))?;
        let given = attribute(text, 'v')
            .and_then(|v| STANDARD.decode(v).ok())
            .ok_or_else(|| ScramError::Malformed("has no base64 signature (v=)".into()))?;
        // Constant-time comparison of the two signatures.
        if given.len() != expected.as_ref().len()
            || given
                .iter()
                .zip(expected.as_ref())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                != 0
        {
            return Err(ScramError::Signature);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677 section 3's example exchange.
    #[test]
    fn rfc7677_example() {
        let mut c = ScramClient::new("user", "pencil", "rOprNGfwEbeRWgbNEkqO").unwrap();
        assert_eq!(c.client_first(), "n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let last = c
            .client_final(
                b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
            )
            .unwrap();
        assert_eq!(
            last,
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        c.verify(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
            .unwrap();
        assert_eq!(
            c.verify(b"v=7rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="),
            Err(ScramError::Signature)
        );
        assert!(matches!(
            c.verify(b"e=invalid-proof"),
            Err(ScramError::Server(_))
        ));
    }

    #[test]
    fn refuses_bad_server_first() {
        let mut c = ScramClient::new("u,=", "pencil", "abc").unwrap();
        assert_eq!(c.client_first(), "n,,n=u=2C=3D,r=abc");
        for bad in [
            &b"r=xyz,s=AAAA,i=4096"[..],
            b"r=abc,s=AAAA,i=4096",
            b"r=abcd,s=!!,i=4096",
            b"r=abcd,s=AAAA,i=0",
            b"r=abcd,s=AAAA,i=99999999",
            b"\xff",
        ] {
            assert!(matches!(c.client_final(bad), Err(ScramError::Malformed(_))));
        }
        assert!(c.verify(b"v=AAAA").is_err());
    }

    #[test]
    fn saslprep_refuses_prohibited() {
        assert!(matches!(
            ScramClient::new("u", "a\u{0007}b", "n"),
            Err(ScramError::Prep(_))
        ));
        // Non-ASCII spaces map to a space (RFC 4013 section 2.1).
        let a = ScramClient::new("u", "a\u{00a0}b", "n").unwrap();
        assert_eq!(a.password, "a b");
    }
}
