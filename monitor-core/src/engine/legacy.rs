//! An opt-in legacy protocol probe: sends a minimal hand-built TLS 1.0 or TLS 1.1
//! ClientHello (which rustls cannot speak) and reads the version of the server's answer.
//!
//! The probe reads the ServerHello and, when the version is accepted, the Certificate
//! message that follows it in clear (TLS 1.2 and older), so a legacy-only server still
//! shows its chain; it never completes a handshake, so it needs no legacy cryptography.
//! Every read is bounded and any input, however malformed, is classified rather than
//! trusted.

use std::io;

use rustls_pki_types::DnsName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::place::EXCERPT_BYTES;
use monitor_spec::escape::escape_excerpt;

/// The largest record length accepted: the TLS limit for a protected record,
/// 2^14 + 2048 bytes. A longer length means the answer is not TLS.
pub const MAX_RECORD_LEN: usize = 16384 + 2048;

/// How many records the probe reads while waiting for a complete ServerHello.
const MAX_RECORDS: usize = 16;

/// How many bytes one `read` call asks for.
const READ_CHUNK: usize = 4096;

/// The record-layer version of the ClientHello, TLS 1.0 for both probes, as old servers
/// expect.
const RECORD_VERSION: u16 = 0x0301;

const CONTENT_CHANGE_CIPHER_SPEC: u8 = 0x14;
const CONTENT_ALERT: u8 = 0x15;
const CONTENT_HANDSHAKE: u8 = 0x16;
const CONTENT_APPLICATION_DATA: u8 = 0x17;

const HANDSHAKE_CLIENT_HELLO: u8 = 0x01;
const HANDSHAKE_SERVER_HELLO: u8 = 0x02;
const HANDSHAKE_CERTIFICATE: u8 = 0x0b;
const HANDSHAKE_SERVER_HELLO_DONE: u8 = 0x0e;

/// The most handshake bytes kept while looking for the Certificate message.
pub const MAX_FLIGHT_BYTES: usize = 64 * 1024;

/// How long the probe waits, after an accepted ServerHello, for the rest of the server's
/// first flight (it is normally sent at once).
const FLIGHT_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// The cipher suites offered: ECDHE and plain RSA with AES-CBC, 3DES, DHE, and the
/// renegotiation-info signalling suite. Broad enough for servers of the TLS 1.0 era.
pub const CIPHER_SUITES: [u16; 10] = [
    0xc013, // TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA
    0xc014, // TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA
    0xc009, // TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA
    0xc00a, // TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA
    0x002f, // TLS_RSA_WITH_AES_128_CBC_SHA
    0x0035, // TLS_RSA_WITH_AES_256_CBC_SHA
    0x000a, // TLS_RSA_WITH_3DES_EDE_CBC_SHA
    0x0033, // TLS_DHE_RSA_WITH_AES_128_CBC_SHA
    0x0039, // TLS_DHE_RSA_WITH_AES_256_CBC_SHA
    0x00ff, // TLS_EMPTY_RENEGOTIATION_INFO_SCSV
];

const EXT_SERVER_NAME: u16 = 0;
const EXT_SUPPORTED_GROUPS: u16 = 10;
const EXT_EC_POINT_FORMATS: u16 = 11;

/// secp256r1, secp384r1, x25519.
const GROUPS: [u16; 3] = [0x0017, 0x0018, 0x001d];

/// A legacy TLS version the probe can ask for.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum LegacyVersion {
    /// TLS 1.0 (RFC 2246), wire version 0x0301.
    Tls1_0,
    /// TLS 1.1 (RFC 4346), wire version 0x0302.
    Tls1_1,
}

impl LegacyVersion {
    /// Both legacy versions, oldest first.
    pub const ALL: [LegacyVersion; 2] = [LegacyVersion::Tls1_0, LegacyVersion::Tls1_1];

    /// The conventional name: `TLSv1.0` or `TLSv1.1`.
    pub fn as_str(self) -> &'static str {
        match self {
            LegacyVersion::Tls1_0 => "TLSv1.0",
            LegacyVersion::Tls1_1 => "TLSv1.1",
        }
    }

    /// The version as it is written on the wire: 0x0301 or 0x0302.
    pub fn wire(self) -> u16 {
        match self {
            LegacyVersion::Tls1_0 => 0x0301,
            LegacyVersion::Tls1_1 => 0x0302,
        }
    }
}

impl std::fmt::Display for LegacyVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a server answered a legacy ClientHello.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LegacyAnswer {
    /// The server answered with a ServerHello for exactly this version.
    Accepted {
        /// The cipher suite the server chose, as its two-byte code (e.g. 0xc013).
        cipher_suite: u16,
        /// The certificates of the Certificate message that followed, leaf first, as DER;
        /// empty when the server sent none or it could not be read.
        chain: Vec<Vec<u8>>,
    },
    /// The server refused: a TLS alert (with its description code), a ServerHello for
    /// another version, or it closed the connection.
    Rejected {
        /// Why, in a lower-case sentence fragment such as `server sent a fatal alert:
        /// protocol_version (70)`.
        reason: String,
    },
    /// The server answered with something that is not TLS (excerpt escaped with
    /// [`escape_excerpt`]). Records that are framed as TLS but cannot be (an oversized
    /// length, a malformed alert or ServerHello) count as not TLS too.
    NotTls {
        /// The bytes received, escaped, at most [`EXCERPT_BYTES`] of them.
        excerpt: String,
    },
}

impl LegacyAnswer {
    /// Whether the server accepted the probed version.
    pub fn is_accepted(&self) -> bool {
        matches!(self, LegacyAnswer::Accepted { .. })
    }
}

/// The conventional name of a protocol version on the wire: `SSLv3`, `TLSv1.0` to
/// `TLSv1.3`, or `version 0xNNNN` for anything else.
pub fn version_name(wire: u16) -> String {
    match wire {
        0x0300 => "SSLv3".to_owned(),
        0x0301 => "TLSv1.0".to_owned(),
        0x0302 => "TLSv1.1".to_owned(),
        0x0303 => "TLSv1.2".to_owned(),
        0x0304 => "TLSv1.3".to_owned(),
        other => format!("version 0x{other:04x}"),
    }
}

/// The name of a TLS alert description code (RFC 5246 / RFC 8446), if it has one.
pub fn alert_name(description: u8) -> Option<&'static str> {
    Some(match description {
        0 => "close_notify",
        10 => "unexpected_message",
        20 => "bad_record_mac",
        21 => "decryption_failed",
        22 => "record_overflow",
        30 => "decompression_failure",
        40 => "handshake_failure",
        41 => "no_certificate",
        42 => "bad_certificate",
        43 => "unsupported_certificate",
        44 => "certificate_revoked",
        45 => "certificate_expired",
        46 => "certificate_unknown",
        47 => "illegal_parameter",
        48 => "unknown_ca",
        49 => "access_denied",
        50 => "decode_error",
        51 => "decrypt_error",
        60 => "export_restriction",
        70 => "protocol_version",
        71 => "insufficient_security",
        80 => "internal_error",
        86 => "inappropriate_fallback",
        90 => "user_canceled",
        100 => "no_renegotiation",
        109 => "missing_extension",
        110 => "unsupported_extension",
        112 => "unrecognized_name",
        113 => "bad_certificate_status_response",
        115 => "unknown_psk_identity",
        116 => "certificate_required",
        120 => "no_application_protocol",
        _ => return None,
    })
}

/// The bytes of a TLS record carrying a legacy ClientHello for `version`, with a
/// server_name extension when `server_name` is a DNS name (not an IP literal).
///
/// The record offers [`CIPHER_SUITES`], no compression, and the supported_groups and
/// ec_point_formats extensions; it never offers supported_versions, so a TLS 1.3 server
/// must answer at the legacy version or refuse.
pub fn client_hello(version: LegacyVersion, server_name: Option<&str>) -> Vec<u8> {
    hello(version.wire(), server_name, &CIPHER_SUITES)
}

/// The signature algorithms a TLS 1.2 ClientHello offers: SHA-256 and up for ECDSA, RSA
/// PSS, RSA PKCS#1 and Ed25519, then SHA-1 for the oldest servers.
const SIGNATURE_ALGORITHMS: [u16; 11] = [
    0x0403, 0x0503, 0x0804, 0x0805, 0x0806, 0x0401, 0x0501, 0x0601, 0x0807, 0x0201, 0x0203,
];

const EXT_SIGNATURE_ALGORITHMS: u16 = 13;
const EXT_SUPPORTED_VERSIONS: u16 = 43;
const EXT_KEY_SHARE: u16 = 51;
const GROUP_X25519: u16 = 0x001d;

/// A ClientHello record for the wire version `wire` offering `suites`; from TLS 1.2 on it
/// also offers signature_algorithms. For TLS 1.3 (0x0304) the hello says TLS 1.2 in its
/// version field and offers TLS 1.3 alone in supported_versions, with an x25519 key_share
/// (random bytes: the probe never completes the handshake).
pub(crate) fn hello(wire: u16, server_name: Option<&str>, suites: &[u16]) -> Vec<u8> {
    let mut extensions = Vec::with_capacity(64);
    if let Some(name) = server_name.and_then(sni_name) {
        let name = name.as_bytes();
        // list length (2) + name type (1) + name length (2) + name
        let list_len = 3 + name.len();
        push_u16(&mut extensions, EXT_SERVER_NAME);
        push_len16(&mut extensions, 2 + list_len);
        push_len16(&mut extensions, list_len);
        extensions.push(0); // host_name
        push_len16(&mut extensions, name.len());
        extensions.extend_from_slice(name);
    }
    push_u16(&mut extensions, EXT_SUPPORTED_GROUPS);
    push_len16(&mut extensions, 2 + 2 * GROUPS.len());
    push_len16(&mut extensions, 2 * GROUPS.len());
    for group in GROUPS {
        push_u16(&mut extensions, group);
    }
    if wire >= 0x0303 {
        push_u16(&mut extensions, EXT_SIGNATURE_ALGORITHMS);
        push_len16(&mut extensions, 2 + 2 * SIGNATURE_ALGORITHMS.len());
        push_len16(&mut extensions, 2 * SIGNATURE_ALGORITHMS.len());
        for scheme in SIGNATURE_ALGORITHMS {
            push_u16(&mut extensions, scheme);
        }
    }
    push_u16(&mut extensions, EXT_EC_POINT_FORMATS);
    push_len16(&mut extensions, 2);
    extensions.push(1); // one format
    extensions.push(0); // uncompressed
    if wire >= 0x0304 {
        push_u16(&mut extensions, EXT_SUPPORTED_VERSIONS);
        push_len16(&mut extensions, 3);
        extensions.push(2); // one version
        push_u16(&mut extensions, wire);
        // list length (2) + group (2) + key length (2) + key (32)
        push_u16(&mut extensions, EXT_KEY_SHARE);
        push_len16(&mut extensions, 2 + 2 + 2 + 32);
        push_len16(&mut extensions, 2 + 2 + 32);
        push_u16(&mut extensions, GROUP_X25519);
        push_len16(&mut extensions, 32);
        extensions.extend_from_slice(&random_bytes());
    }

    let mut body = Vec::with_capacity(64 + extensions.len());
    push_u16(&mut body, wire.min(0x0303));
    body.extend_from_slice(&random_bytes());
    body.push(0); // empty session id
    push_len16(&mut body, 2 * suites.len());
    for &suite in suites {
        push_u16(&mut body, suite);
    }
    body.push(1); // one compression method
    body.push(0); // null
    push_len16(&mut body, extensions.len());
    body.extend_from_slice(&extensions);

    let mut record = Vec::with_capacity(9 + body.len());
    record.push(CONTENT_HANDSHAKE);
    push_u16(&mut record, RECORD_VERSION);
    push_len16(&mut record, 4 + body.len());
    record.push(HANDSHAKE_CLIENT_HELLO);
    // The body is far below 2^24 bytes: a name is at most 253 bytes.
    let len = u32::try_from(body.len()).unwrap_or(u32::MAX).to_be_bytes();
    record.extend_from_slice(&len[1..]);
    record.extend_from_slice(&body);
    record
}

/// Sends a legacy ClientHello for `version` on an already connected (and, for STARTTLS,
/// already upgraded-in-plaintext) stream and classifies the answer. No timeout inside: the
/// caller wraps it.
///
/// A connection reset while waiting for the answer counts as a refusal, as old servers
/// often reset on a version they do not speak; other I/O errors are returned.
pub async fn probe<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    version: LegacyVersion,
    server_name: Option<&str>,
) -> io::Result<LegacyAnswer> {
    probe_wire(stream, version.wire(), server_name).await
}

/// Like [`probe`] with a TLS 1.2 ClientHello offering the same CBC cipher suites: a
/// server rustls cannot talk to (CBC suites only, say) still shows its chain this way.
pub async fn probe_tls12<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    server_name: Option<&str>,
) -> io::Result<LegacyAnswer> {
    probe_wire(stream, 0x0303, server_name).await
}

async fn probe_wire<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    wire: u16,
    server_name: Option<&str>,
) -> io::Result<LegacyAnswer> {
    probe_offer(stream, wire, server_name, &CIPHER_SUITES).await
}

/// Sends a ClientHello for the wire version `wire` (0x0301 to 0x0304) offering `suites`
/// and classifies the answer as [`probe`] does; a TLS 1.3 answer is recognised by its
/// supported_versions extension. No timeout inside: the caller wraps it.
pub async fn probe_offer<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    wire: u16,
    server_name: Option<&str>,
    suites: &[u16],
) -> io::Result<LegacyAnswer> {
    let hello = hello(wire, server_name, suites);
    stream.write_all(&hello).await?;
    stream.flush().await?;
    let mut reader = Reader {
        stream,
        seen: Vec::with_capacity(READ_CHUNK),
    };
    match read_answer(&mut reader, wire).await {
        Ok(answer) => Ok(answer),
        Err(e) if is_reset(&e) => Ok(rejected("reset the connection")),
        Err(e) => Err(e),
    }
}

/// Classifies a server's answer: reads records until an alert, a ServerHello, or
/// something that is not TLS.
async fn read_answer<S: AsyncRead + Unpin>(
    reader: &mut Reader<'_, S>,
    wire: u16,
) -> io::Result<LegacyAnswer> {
    let mut handshake = Vec::new();
    let mut at = 0usize;
    for _ in 0..MAX_RECORDS {
        // The record header.
        let got = reader.fill(at + 5).await?;
        let header = reader.seen.get(at..got.min(at + 5)).unwrap_or_default();
        if let Some(&content_type) = header.first()
            && !(CONTENT_CHANGE_CIPHER_SPEC..=CONTENT_APPLICATION_DATA).contains(&content_type)
        {
            return Ok(reader.not_tls());
        }
        if let Some(&major) = header.get(1)
            && major != 3
        {
            return Ok(reader.not_tls());
        }
        let &[content_type, _, _, len_hi, len_lo] = header else {
            return Ok(closed(got));
        };
        let len = usize::from(u16::from_be_bytes([len_hi, len_lo]));
        if len > MAX_RECORD_LEN {
            return Ok(reader.not_tls());
        }
        // The record body.
        let start = at + 5;
        let end = start + len;
        let got = reader.fill(end).await?;
        let Some(body) = reader.seen.get(start..end) else {
            return Ok(closed(got));
        };
        at = end;
        match content_type {
            CONTENT_ALERT => {
                // One alert is two bytes; a longer record may carry more, the first decides.
                let Some(&[level, description]) = body.get(..2) else {
                    return Ok(reader.not_tls());
                };
                return Ok(alert(level, description));
            }
            CONTENT_HANDSHAKE => {
                handshake.extend_from_slice(body);
                match server_hello(&handshake) {
                    Hello::NeedMore => continue,
                    Hello::Malformed => return Ok(reader.not_tls()),
                    Hello::Other(kind) => {
                        return Ok(rejected(&format!(
                            "server answered with handshake message type {kind} instead of a ServerHello"
                        )));
                    }
                    Hello::Found {
                        version: answered,
                        cipher_suite,
                    } => {
                        return Ok(if answered == wire && wire >= 0x0304 {
                            // TLS 1.3 encrypts the Certificate message.
                            LegacyAnswer::Accepted {
                                cipher_suite,
                                chain: Vec::new(),
                            }
                        } else if answered == wire {
                            let flight = read_flight(reader, handshake, at);
                            let chain = tokio::time::timeout(FLIGHT_WAIT, flight)
                                .await
                                .unwrap_or_default();
                            LegacyAnswer::Accepted {
                                cipher_suite,
                                chain,
                            }
                        } else {
                            rejected(&format!("server answered with {}", version_name(answered)))
                        });
                    }
                }
            }
            CONTENT_CHANGE_CIPHER_SPEC => {
                return Ok(rejected(
                    "server sent a change_cipher_spec record instead of a ServerHello",
                ));
            }
            _ => {
                return Ok(rejected(
                    "server sent an application_data record instead of a ServerHello",
                ));
            }
        }
    }
    Ok(rejected(&format!(
        "server sent {MAX_RECORDS} records without a complete ServerHello"
    )))
}

/// Reads the rest of the server's first flight after an accepted ServerHello, up to its
/// Certificate message, and returns the certificates in it. Best effort: anything else
/// (an alert, the end of the stream, too many bytes) gives what was found, usually none.
async fn read_flight<S: AsyncRead + Unpin>(
    reader: &mut Reader<'_, S>,
    mut handshake: Vec<u8>,
    mut at: usize,
) -> Vec<Vec<u8>> {
    for _ in 0..=MAX_RECORDS {
        if let Some(chain) = flight_chain(&handshake) {
            return chain;
        }
        if handshake.len() > MAX_FLIGHT_BYTES {
            break;
        }
        let Ok(got) = reader.fill(at + 5).await else {
            break;
        };
        let Some(&[CONTENT_HANDSHAKE, 3, _, len_hi, len_lo]) = reader.seen.get(at..at + 5) else {
            break;
        };
        let len = usize::from(u16::from_be_bytes([len_hi, len_lo]));
        let (start, end) = (at + 5, at + 5 + len);
        if len > MAX_RECORD_LEN || got < at + 5 {
            break;
        }
        if reader.fill(end).await.is_err() {
            break;
        }
        let Some(body) = reader.seen.get(start..end) else {
            break;
        };
        handshake.extend_from_slice(body);
        at = end;
    }
    Vec::new()
}

/// The certificates of the first flight's handshake messages (ServerHello, Certificate,
/// ...), once the Certificate message is complete; an empty chain when the flight ends
/// (ServerHelloDone) without one; `None` while more bytes are needed.
pub fn flight_chain(handshake: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut rest = handshake;
    loop {
        let (&kind, after) = rest.split_first()?;
        let len = u24(after)?;
        let body = after.get(3..3 + len)?;
        match kind {
            HANDSHAKE_CERTIFICATE => return Some(certificate_list(body)),
            HANDSHAKE_SERVER_HELLO_DONE => return Some(Vec::new()),
            _ => rest = after.get(3 + len..)?,
        }
    }
}

/// The certificates of a Certificate message body (RFC 5246 7.4.2): a 24-bit list length,
/// then each certificate with a 24-bit length. A malformed list gives those read so far.
fn certificate_list(body: &[u8]) -> Vec<Vec<u8>> {
    let mut chain = Vec::new();
    let Some(total) = u24(body) else {
        return chain;
    };
    let mut list = body.get(3..).unwrap_or_default();
    list = list.get(..total).unwrap_or(list);
    while let Some(len) = u24(list) {
        let Some(cert) = list.get(3..3 + len) else {
            break;
        };
        chain.push(cert.to_vec());
        list = list.get(3 + len..).unwrap_or_default();
    }
    chain
}

/// A 24-bit big-endian length at the start of `bytes`.
fn u24(bytes: &[u8]) -> Option<usize> {
    let &[a, b, c] = bytes.get(..3)? else {
        return None;
    };
    Some((usize::from(a) << 16) | (usize::from(b) << 8) | usize::from(c))
}

/// What the handshake bytes received so far hold.
enum Hello {
    /// Not enough bytes yet.
    NeedMore,
    /// A ServerHello whose fields do not fit.
    Malformed,
    /// Another handshake message first.
    Other(u8),
    /// A ServerHello's version and cipher suite.
    Found { version: u16, cipher_suite: u16 },
}

/// Parses the start of a ServerHello: type, length, server_version, random, session id,
/// cipher suite.
fn server_hello(bytes: &[u8]) -> Hello {
    let Some(&kind) = bytes.first() else {
        return Hello::NeedMore;
    };
    if kind != HANDSHAKE_SERVER_HELLO {
        return Hello::Other(kind);
    }
    let Some(&[l0, l1, l2]) = bytes.get(1..4) else {
        return Hello::NeedMore;
    };
    let declared = (usize::from(l0) << 16) | (usize::from(l1) << 8) | usize::from(l2);
    let body = bytes.get(4..).unwrap_or_default();
    // version (2) + random (32) + session id length (1)
    let Some(&session_len) = body.get(34) else {
        return if declared < 35 {
            Hello::Malformed
        } else {
            Hello::NeedMore
        };
    };
    let session_len = usize::from(session_len);
    let needed = 35 + session_len + 2;
    if session_len > 32 || declared < needed {
        return Hello::Malformed;
    }
    let (Some(&[v0, v1]), Some(&[c0, c1])) = (body.get(0..2), body.get(needed - 2..needed)) else {
        return Hello::NeedMore;
    };
    let mut version = u16::from_be_bytes([v0, v1]);
    // compression method (1), then the extensions when the message has any
    if declared > needed + 1 {
        let Some(message) = body.get(..declared) else {
            return Hello::NeedMore;
        };
        match selected_version(message.get(needed + 1..).unwrap_or_default()) {
            Some(Some(selected)) => version = selected,
            Some(None) => {}
            None => return Hello::Malformed,
        }
    }
    Hello::Found {
        version,
        cipher_suite: u16::from_be_bytes([c0, c1]),
    }
}

/// The version a ServerHello's supported_versions extension selects (`Some(None)` when
/// there is none); `None` when the extension block is malformed.
fn selected_version(extensions: &[u8]) -> Option<Option<u16>> {
    let &[l0, l1] = extensions.get(..2)? else {
        return None;
    };
    let mut rest = extensions.get(2..2 + usize::from(u16::from_be_bytes([l0, l1])))?;
    while !rest.is_empty() {
        let &[t0, t1, n0, n1] = rest.get(..4)? else {
            return None;
        };
        let len = usize::from(u16::from_be_bytes([n0, n1]));
        let data = rest.get(4..4 + len)?;
        if u16::from_be_bytes([t0, t1]) == EXT_SUPPORTED_VERSIONS {
            let &[s0, s1] = data else {
                return None;
            };
            return Some(Some(u16::from_be_bytes([s0, s1])));
        }
        rest = rest.get(4 + len..)?;
    }
    Some(None)
}

/// Reads from the stream into one buffer that keeps every byte received, for excerpts.
struct Reader<'a, S> {
    stream: &'a mut S,
    seen: Vec<u8>,
}

impl<S: AsyncRead + Unpin> Reader<'_, S> {
    /// Reads until at least `want` bytes have been received in all or the stream ends;
    /// returns how many have been received. A read may return more than asked for.
    async fn fill(&mut self, want: usize) -> io::Result<usize> {
        let mut chunk = [0u8; READ_CHUNK];
        while self.seen.len() < want {
            let n = self.stream.read(&mut chunk).await?;
            let Some(read) = chunk.get(..n) else { break };
            if read.is_empty() {
                break;
            }
            self.seen.extend_from_slice(read);
        }
        Ok(self.seen.len())
    }

    /// The answer for bytes that are not TLS.
    fn not_tls(&self) -> LegacyAnswer {
        LegacyAnswer::NotTls {
            excerpt: escape_excerpt(&self.seen, EXCERPT_BYTES),
        }
    }
}

fn rejected(reason: &str) -> LegacyAnswer {
    LegacyAnswer::Rejected {
        reason: reason.to_owned(),
    }
}

fn closed(received: usize) -> LegacyAnswer {
    if received == 0 {
        rejected("closed the connection without answering")
    } else {
        rejected(&format!(
            "closed the connection after {received} bytes, before a complete answer"
        ))
    }
}

fn alert(level: u8, description: u8) -> LegacyAnswer {
    let level = match level {
        1 => "warning",
        2 => "fatal",
        _ => "unknown-level",
    };
    let name = alert_name(description).unwrap_or("unknown");
    rejected(&format!(
        "server sent a {level} alert: {name} ({description})"
    ))
}

fn is_reset(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted
    )
}

/// The name for the server_name extension: a valid DNS name without its trailing dot.
fn sni_name(name: &str) -> Option<&str> {
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.parse::<std::net::IpAddr>().is_ok() {
        return None;
    }
    DnsName::try_from(name).ok().map(|_| name)
}

/// 32 bytes for the ClientHello random: from the system generator, or from the clock if
/// that fails (the value only needs to differ between probes).
fn random_bytes() -> [u8; 32] {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 32];
    if ring::rand::SystemRandom::new().fill(&mut bytes).is_ok() {
        return bytes;
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mut state = (nanos as u64) ^ 0x9e37_79b9_7f4a_7c15;
    for chunk in bytes.chunks_mut(8) {
        // splitmix64
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        let z = z.to_be_bytes();
        let n = chunk.len().min(z.len());
        if let (Some(dst), Some(src)) = (chunk.get_mut(..n), z.get(..n)) {
            dst.copy_from_slice(src);
        }
    }
    bytes
}

fn push_u16(out: &mut Vec<u8>, value: u16) {
    out.extend_from_slice(&value.to_be_bytes());
}

/// Writes a two-byte length; every length here is far below 2^16.
fn push_len16(out: &mut Vec<u8>, len: usize) {
    push_u16(out, u16::try_from(len).unwrap_or(u16::MAX));
}
