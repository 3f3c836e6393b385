//! The MySQL/MariaDB login's codec: the Handshake Response 41, the answers of the
//! authentication plugins (`mysql_native_password`, `caching_sha2_password` with its RSA
//! key exchange, `sha256_password`, MariaDB's `client_ed25519`, `mysql_clear_password`),
//! and the packets of the command phase (OK, EOF, ERR, text result sets). Pure functions,
//! no I/O: `mysql_login` speaks them on the engine's connection.

use curve25519_dalek::EdwardsPoint;
use curve25519_dalek::scalar::{Scalar, clamp_integer};
use ring::digest::{Context as Hash, SHA1_FOR_LEGACY_USE_ONLY as SHA1, SHA256, SHA512, digest};

use super::bytes::Reader;

/// `CLIENT_LONG_PASSWORD` (MariaDB: `CLIENT_MYSQL`, "not a MariaDB-only client").
pub const CLIENT_LONG_PASSWORD: u32 = 0x0000_0001;
/// `CLIENT_CONNECT_WITH_DB`: the response names the default schema.
pub const CLIENT_CONNECT_WITH_DB: u32 = 0x0000_0008;
/// `CLIENT_PROTOCOL_41`: the 4.1 protocol (SQLSTATE in errors, 2-byte status flags).
pub const CLIENT_PROTOCOL_41: u32 = 0x0000_0200;
/// `CLIENT_SSL`: TLS after the SSL Request.
pub const CLIENT_SSL: u32 = 0x0000_0800;
/// `CLIENT_TRANSACTIONS`: status flags in OK and EOF packets.
pub const CLIENT_TRANSACTIONS: u32 = 0x0000_2000;
/// `CLIENT_SECURE_CONNECTION`: a length-prefixed authentication response.
pub const CLIENT_SECURE_CONNECTION: u32 = 0x0000_8000;
/// `CLIENT_MULTI_RESULTS`: a statement (a `CALL`) may answer with several result sets.
pub const CLIENT_MULTI_RESULTS: u32 = 0x0002_0000;
/// `CLIENT_PLUGIN_AUTH`: authentication plugins, AuthSwitchRequest.
pub const CLIENT_PLUGIN_AUTH: u32 = 0x0008_0000;

/// utf8_general_ci, known to every server version.
pub const CHARSET_UTF8: u8 = 0x21;
/// The largest packet the client announces it accepts.
pub const MAX_PACKET: u32 = 16 * 1024 * 1024;

/// The status flag of an OK or EOF packet saying another result set follows.
pub const SERVER_MORE_RESULTS_EXISTS: u16 = 0x0008;

/// COM_QUERY: the rest of the packet is the statement.
pub const COM_QUERY: u8 = 0x03;
/// COM_QUIT: the session ends, the server closes without answering.
pub const COM_QUIT: u8 = 0x01;

/// The bytes of the scramble `mysql_native_password` and `caching_sha2_password` use.
pub const SCRAMBLE_BYTES: usize = 20;
/// The bytes of the nonce MariaDB's `ed25519` plugin signs.
pub const ED25519_NONCE_BYTES: usize = 32;

/// An authentication plugin the monitor can answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plugin {
    /// `mysql_native_password`: SHA-1 challenge and response.
    Native,
    /// `caching_sha2_password` (MySQL 8): SHA-256 fast auth; full auth sends the password
    /// over TLS or RSA-encrypted.
    CachingSha2,
    /// `sha256_password` (MySQL 5.6+): the password over TLS or RSA-encrypted.
    Sha256,
    /// `client_ed25519` (MariaDB's `ed25519`): an Ed25519 signature of a nonce.
    Ed25519,
    /// `mysql_clear_password`: the password as it is.
    Clear,
}

impl Plugin {
    /// The plugin the server names, if the monitor can answer it.
    pub fn from_name(name: &str) -> Option<Plugin> {
        Some(match name {
            "mysql_native_password" => Plugin::Native,
            "caching_sha2_password" => Plugin::CachingSha2,
            "sha256_password" => Plugin::Sha256,
            "client_ed25519" => Plugin::Ed25519,
            "mysql_clear_password" => Plugin::Clear,
            _ => return None,
        })
    }

    /// The plugin's name on the wire (the client side's name).
    pub fn name(self) -> &'static str {
        match self {
            Plugin::Native => "mysql_native_password",
            Plugin::CachingSha2 => "caching_sha2_password",
            Plugin::Sha256 => "sha256_password",
            Plugin::Ed25519 => "client_ed25519",
            Plugin::Clear => "mysql_clear_password",
        }
    }
}

/// A packet: the 3-byte little-endian length and the sequence id, then `payload`
/// (shorter than 16 MiB: the monitor's packets are).
pub fn frame(sequence: u8, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len())
        .unwrap_or(u32::MAX)
        .min(0x00ff_ffff);
    let mut packet = len.to_le_bytes()[..3].to_vec();
    packet.push(sequence);
    packet.extend_from_slice(payload);
    packet
}

/// The payload length a packet header gives, and its sequence id.
pub fn header(head: &[u8]) -> Option<(usize, u8)> {
    let &[l0, l1, l2, sequence] = head else {
        return None;
    };
    Some((
        usize::from(l0) | usize::from(l1) << 8 | usize::from(l2) << 16,
        sequence,
    ))
}

/// The Handshake Response 41 payload: `capabilities`, the user, the plugin's answer
/// (length-prefixed: at most 255 bytes), the default schema when
/// `capabilities` has `CLIENT_CONNECT_WITH_DB`, and the plugin's name.
pub fn handshake_response(
    capabilities: u32,
    user: &str,
    auth: &[u8],
    database: Option<&str>,
    plugin: &str,
) -> Vec<u8> {
    let mut p = capabilities.to_le_bytes().to_vec();
    p.extend_from_slice(&MAX_PACKET.to_le_bytes());
    p.push(CHARSET_UTF8);
    p.extend_from_slice(&[0; 23]);
    p.extend_from_slice(user.as_bytes());
    p.push(0);
    let auth = auth.get(..255).unwrap_or(auth);
    p.push(auth.len() as u8);
    p.extend_from_slice(auth);
    if let Some(db) = database.filter(|_| capabilities & CLIENT_CONNECT_WITH_DB != 0) {
        p.extend_from_slice(db.as_bytes());
        p.push(0);
    }
    if capabilities & CLIENT_PLUGIN_AUTH != 0 {
        p.extend_from_slice(plugin.as_bytes());
        p.push(0);
    }
    p
}

/// The scramble a plugin hashes: the first 20 bytes of the server's data (the handshake's
/// or an AuthSwitchRequest's, which add a NUL).
pub fn scramble(data: &[u8]) -> &[u8] {
    data.get(..SCRAMBLE_BYTES).unwrap_or(data)
}

fn xor(a: &[u8], b: &[u8]) -> Vec<u8> {
    a.iter().zip(b).map(|(x, y)| x ^ y).collect()
}

/// `mysql_native_password`: SHA1(password) XOR SHA1(scramble, SHA1(SHA1(password))); empty
/// for an empty password.
pub fn native_password(password: &[u8], scramble: &[u8]) -> Vec<u8> {
    if password.is_empty() {
        return Vec::new();
    }
    let stage1 = digest(&SHA1, password);
    let stage2 = digest(&SHA1, stage1.as_ref());
    let mut h = Hash::new(&SHA1);
    h.update(scramble);
    h.update(stage2.as_ref());
    xor(stage1.as_ref(), h.finish().as_ref())
}

/// `caching_sha2_password` fast auth: SHA256(password) XOR SHA256(SHA256(SHA256(password)),
/// nonce); empty for an empty password.
pub fn caching_sha2_scramble(password: &[u8], nonce: &[u8]) -> Vec<u8> {
    if password.is_empty() {
        return Vec::new();
    }
    let stage1 = digest(&SHA256, password);
    let stage2 = digest(&SHA256, stage1.as_ref());
    let mut h = Hash::new(&SHA256);
    h.update(stage2.as_ref());
    h.update(nonce);
    xor(stage1.as_ref(), h.finish().as_ref())
}

/// MariaDB's `client_ed25519`: the Ed25519 signature of `message` (the server's 32-byte
/// nonce) under the key MariaDB derives from the password. Unlike RFC 8032, which hashes
/// a 32-byte seed, the 64-byte expanded key is SHA-512 of the password itself: its first
/// half, clamped, is the secret scalar `a`, its second half the nonce prefix. Then as in
/// RFC 8032: `A = aB`, `r = SHA-512(prefix, M)`, `R = rB`, `k = SHA-512(R, A, M)`,
/// `S = r + k a`, and the signature is `R || S`.
pub fn ed25519_signature(password: &[u8], message: &[u8]) -> [u8; 64] {
    let az = digest(&SHA512, password);
    let (low, prefix) = az.as_ref().split_at(32);
    let mut seed = [0u8; 32];
    seed.copy_from_slice(low);
    let a = Scalar::from_bytes_mod_order(clamp_integer(seed));
    let public = EdwardsPoint::mul_base(&a).compress();
    let wide = |parts: &[&[u8]]| {
        let mut h = Hash::new(&SHA512);
        for part in parts {
            h.update(part);
        }
        let mut out = [0u8; 64];
        out.copy_from_slice(h.finish().as_ref());
        Scalar::from_bytes_mod_order_wide(&out)
    };
    let r = wide(&[prefix, message]);
    let big_r = EdwardsPoint::mul_base(&r).compress();
    let k = wide(&[big_r.as_bytes(), public.as_bytes(), message]);
    let s = k * a + r;
    let mut signature = [0u8; 64];
    signature[..32].copy_from_slice(big_r.as_bytes());
    signature[32..].copy_from_slice(&s.to_bytes());
    signature
}

/// The password as the server reads it in full authentication: NUL-terminated.
pub fn password_nul(password: &[u8]) -> Vec<u8> {
    let mut out = password.to_vec();
    out.push(0);
    out
}

/// The RSA step of `caching_sha2_password` and `sha256_password` without TLS: the
/// NUL-terminated password XOR the scramble (repeated), encrypted with RSA-OAEP (SHA-1,
/// MGF1-SHA-1) under the server's public key `pem` (PKCS#8 `PUBLIC KEY` or PKCS#1
/// `RSA PUBLIC KEY`).
pub fn rsa_encrypt(pem: &[u8], password: &[u8], scramble: &[u8]) -> Result<Vec<u8>, String> {
    use rsa::pkcs1::DecodeRsaPublicKey;
    use rsa::pkcs8::DecodePublicKey;
    let text = std::str::from_utf8(pem)
        .map_err(|_| "the server's public key is not PEM text".to_owned())?
        .trim_matches(|c: char| c == '\0' || c.is_whitespace());
    let key = rsa::PublicKey::from_public_key_pem(text)
        .or_else(|_| rsa::PublicKey::from_pkcs1_pem(text))
        .map_err(|e| format!("the server's public key cannot be read: {e}"))?;
    let mut plain = password_nul(password);
    if !scramble.is_empty() {
        for (i, b) in plain.iter_mut().enumerate() {
            *b ^= scramble[i % scramble.len()];
        }
    }
    key.oaep_encrypt::<sha1::Sha1>(&plain)
        .map_err(|e| format!("the password cannot be encrypted with the server's key: {e}"))
}

/// An ERR packet: the error code, the SQLSTATE and the server's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerError {
    /// Such as 1045 (access denied).
    pub code: u16,
    /// Such as `28000`; `HY000` when the packet has none.
    pub sqlstate: String,
    /// The server's words.
    pub message: String,
}

impl std::fmt::Display for ServerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "error {} ({}): {}",
            self.code, self.sqlstate, self.message
        )
    }
}

/// The most bytes of a server's error message kept.
const MAX_ERROR_MESSAGE_BYTES: usize = 512;

/// Parses an ERR packet's payload (`0xff`, code, `#` and SQLSTATE, message).
pub fn server_error(payload: &[u8]) -> Result<ServerError, String> {
    let mut r = Reader(payload);
    if r.u8()? != 0xff {
        return Err("not an error packet".into());
    }
    let code = r.u16_le()?;
    let mut sqlstate = "HY000".to_owned();
    if r.0.first() == Some(&b'#') && r.0.len() >= 6 {
        sqlstate = monitor_spec::escape::escape_excerpt(&r.0[1..6], 5);
        r.0 = &r.0[6..];
    }
    Ok(ServerError {
        code,
        sqlstate,
        message: monitor_spec::escape::escape_excerpt(r.0, MAX_ERROR_MESSAGE_BYTES),
    })
}

/// A length-encoded integer; `Ok(None)` for `0xfb` (NULL).
pub(crate) fn lenenc(r: &mut Reader<'_>) -> Result<Option<u64>, String> {
    Ok(Some(match r.u8()? {
        n @ 0..=0xfa => u64::from(n),
        0xfb => return Ok(None),
        0xfc => u64::from(r.u16_le()?),
        0xfd => {
            let [a, b, c] = r.array()?;
            u64::from_le_bytes([a, b, c, 0, 0, 0, 0, 0])
        }
        0xfe => u64::from_le_bytes(r.array()?),
        0xff => return Err("0xff is not a length-encoded integer".into()),
    }))
}

/// Whether a payload is an EOF packet (`0xfe`, shorter than 9 bytes: longer ones are rows
/// starting with an 8-byte length).
pub fn is_eof(payload: &[u8]) -> bool {
    payload.first() == Some(&0xfe) && payload.len() < 9
}

/// The status flags of an OK packet (after the affected rows and the last insert id).
pub fn ok_status(payload: &[u8]) -> Result<u16, String> {
    let mut r = Reader(payload.get(1..).unwrap_or_default());
    lenenc(&mut r)?;
    lenenc(&mut r)?;
    r.u16_le()
}

/// The status flags of an EOF packet (after the warning count); 0 when it is too short.
pub fn eof_status(payload: &[u8]) -> u16 {
    let mut r = Reader(payload.get(3..).unwrap_or_default());
    r.u16_le().unwrap_or(0)
}

/// The column count a result set opens with.
pub fn column_count(payload: &[u8]) -> Result<u64, String> {
    lenenc(&mut Reader(payload))?.ok_or_else(|| "a NULL column count".to_owned())
}

/// The first value of a text row: `Ok(None)` for NULL.
pub fn first_value(row: &[u8]) -> Result<Option<&[u8]>, String> {
    let mut r = Reader(row);
    let Some(len) = lenenc(&mut r)? else {
        return Ok(None);
    };
    let len = usize::try_from(len).map_err(|_| "a value longer than memory".to_owned())?;
    r.take(len).map(Some)
}

/// A COM_QUERY packet (sequence 0) for `query`.
pub fn query_packet(query: &str) -> Vec<u8> {
    let mut payload = vec![COM_QUERY];
    payload.extend_from_slice(query.as_bytes());
    frame(0, &payload)
}

/// Whether the value of `@@global.read_only` says the server refuses writes: `1`/`ON`
/// (and MariaDB 11's `NO_LOCK` variants) yes, `0`/`OFF` no. MySQL's `super_read_only`
/// turns `read_only` on with it, so one variable answers for both.
pub fn read_only(value: &[u8]) -> bool {
    let value = String::from_utf8_lossy(value).trim().to_ascii_lowercase();
    !matches!(value.as_str(), "0" | "off" | "no" | "false")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The server's check of `mysql_native_password` (sql_acl.cc): SHA1(scramble, stored)
    /// XOR the response is SHA1(password), whose SHA-1 is the stored hash.
    #[test]
    fn native_password_verifies_as_the_server_checks_it() {
        let scramble = b"abcdefghijklmnopqrst";
        let response = native_password(b"sesame", scramble);
        let stored = digest(&SHA1, digest(&SHA1, b"sesame").as_ref());
        let mut h = Hash::new(&SHA1);
        h.update(scramble);
        h.update(stored.as_ref());
        let stage1 = xor(&response, h.finish().as_ref());
        assert_eq!(digest(&SHA1, &stage1).as_ref(), stored.as_ref());
        assert!(native_password(b"", scramble).is_empty());
    }

    /// The signature verifies as a standard Ed25519 signature (ring's verifier) under the
    /// public key MariaDB stores for the password: clamp(SHA-512(password)[..32]) times B.
    #[test]
    fn ed25519_signatures_verify_under_the_password_key() {
        let az = digest(&SHA512, b"sesame");
        let mut seed = [0u8; 32];
        seed.copy_from_slice(&az.as_ref()[..32]);
        let public = EdwardsPoint::mul_base_clamped(seed).compress();
        let nonce = [7u8; ED25519_NONCE_BYTES];
        let signature = ed25519_signature(b"sesame", &nonce);
        let key =
            ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, public.as_bytes());
        assert!(key.verify(&nonce, &signature).is_ok());
        assert!(key.verify(&[8u8; 32], &signature).is_err());
        let other = ed25519_signature(b"sesamE", &nonce);
        assert!(key.verify(&nonce, &other).is_err());
    }

    #[test]
    fn lenenc_reads_every_width_and_refuses_truncation() {
        let cases: [(&[u8], Option<u64>); 5] = [
            (&[0x05], Some(5)),
            (&[0xfb], None),
            (&[0xfc, 0x34, 0x12], Some(0x1234)),
            (&[0xfd, 1, 2, 3], Some(0x030201)),
            (&[0xfe, 1, 0, 0, 0, 0, 0, 0, 0], Some(1)),
        ];
        for (bytes, want) in cases {
            assert_eq!(lenenc(&mut Reader(bytes)).unwrap(), want, "{bytes:?}");
        }
        assert!(lenenc(&mut Reader(&[0xfe, 1, 2])).is_err());
        assert!(lenenc(&mut Reader(&[0xff])).is_err());
        assert!(first_value(&[0x09, b'a']).is_err());
    }

    #[test]
    fn error_packets_keep_code_sqlstate_and_message() {
        let mut p = vec![0xff];
        p.extend_from_slice(&1045u16.to_le_bytes());
        p.extend_from_slice(b"#28000Access denied");
        let e = server_error(&p).unwrap();
        assert_eq!(e.to_string(), "error 1045 (28000): Access denied");
        assert!(server_error(&[0xff, 1]).is_err());
    }

    #[test]
    fn read_only_values() {
        for (v, ro) in [
            (&b"0"[..], false),
            (b"OFF", false),
            (b"1", true),
            (b"ON", true),
            (b"NO_LOCK", true),
        ] {
            assert_eq!(read_only(v), ro, "{v:?}");
        }
    }
}
