//! MySQL and MariaDB (client/server protocol): the codec (the one parser of the server's
//! first packet, the SSL Request), the STARTTLS upgrade and the recipe, which logs in
//! with [`super::mysql_login`] when the monitor names a login.

use tokio::io::{AsyncRead, AsyncWrite};

use super::super::conn::Conn;
use super::super::speak::{Context, Learned, Outcome, mismatch, unavailable, yes_no};
use super::super::upgrade::{
    MAX_EXCERPT_BYTES, MAX_PLAINTEXT_BYTES, Stage, StartTlsError, Upgrade,
};
use super::bytes::Reader;
use super::mysql_auth::{
    CHARSET_UTF8, CLIENT_LONG_PASSWORD, CLIENT_PLUGIN_AUTH, CLIENT_PROTOCOL_41,
    CLIENT_SECURE_CONNECTION, CLIENT_SSL, MAX_PACKET,
};
use super::mysql_login::{Greeted, login as log_in};
use monitor_spec::escape::escape_excerpt;
use monitor_spec::login::Login;

/// MySQL: what the initial handshake packet (protocol 10) says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MysqlHandshake {
    /// The protocol version byte (10).
    pub protocol_version: u8,
    /// Such as `10.11.6-MariaDB-0+deb12u1` or `8.0.36`.
    pub server_version: String,
    /// The connection id the server assigned.
    pub connection_id: u32,
    /// The capability flags, lower and upper halves joined.
    pub capabilities: u32,
    /// The default authentication plugin, when the server names it.
    pub auth_plugin: Option<String>,
    /// The auth-plugin-data (the scramble, 20 bytes from MySQL and MariaDB): both parts
    /// joined, without the NUL that ends the second.
    pub auth_data: Vec<u8>,
}

/// The MySQL capability flag for TLS support (`CLIENT_SSL`).
pub const MYSQL_CLIENT_SSL: u32 = CLIENT_SSL;

/// A MySQL packet the server opens with: a handshake, or an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MysqlGreeting {
    /// The server is ready to authenticate.
    Handshake(MysqlHandshake),
    /// The server turned the connection away (error packet, `0xff`).
    Error {
        /// The error code, such as 1040 for too many connections.
        code: u16,
        /// The error text.
        message: String,
    },
}

/// The SSL Request packet: header (length 32, sequence 1), then the payload.
fn mysql_ssl_request() -> Vec<u8> {
    let flags = MYSQL_CLIENT_SSL
        | CLIENT_PROTOCOL_41
        | CLIENT_SECURE_CONNECTION
        | CLIENT_LONG_PASSWORD
        | CLIENT_PLUGIN_AUTH;
    let mut packet = vec![32, 0, 0, 1];
    packet.extend_from_slice(&flags.to_le_bytes());
    packet.extend_from_slice(&MAX_PACKET.to_le_bytes());
    packet.push(CHARSET_UTF8);
    packet.extend_from_slice(&[0; 23]);
    packet
}

/// The payload length the 4-byte header of the server's first packet gives: `None` unless
/// it is the first packet (sequence 0) and has a payload.
fn first_packet_len(header: &[u8]) -> Option<usize> {
    let &[l0, l1, l2, sequence] = header else {
        return None;
    };
    let len = usize::from(l0) | usize::from(l1) << 8 | usize::from(l2) << 16;
    (sequence == 0 && len != 0).then_some(len)
}

/// Parses the payload (after the 4-byte packet header) of the first MySQL packet.
pub fn mysql_greeting(payload: &[u8]) -> Result<MysqlGreeting, String> {
    parse_greeting(payload, true)
}

/// Parses the first packet's payload. With `whole`, every field of the packet must be
/// there; without, what STARTTLS needs (the version and the lower capability flags) is
/// enough, the upper flags are read when present, and an error packet's code may be
/// missing (0).
fn parse_greeting(payload: &[u8], whole: bool) -> Result<MysqlGreeting, String> {
    let mut r = Reader(payload);
    match r.u8()? {
        0xff => {
            let code = match r.u16_le() {
                Ok(code) => code,
                Err(why) if whole => return Err(why),
                Err(_) => {
                    r.0 = &[];
                    0
                }
            };
            let mut rest = r.0;
            if rest.first() == Some(&b'#') && rest.len() >= 6 {
                rest = &rest[6..];
            }
            Ok(MysqlGreeting::Error {
                code,
                message: String::from_utf8_lossy(rest).into_owned(),
            })
        }
        10 => {
            let server_version = without_compat_prefix(r.cstr()?);
            let connection_id = r.u32_le()?;
            let auth_data = r.take(8)?.to_vec(); // auth-plugin-data part 1
            r.take(1)?; // filler
            let mut handshake = MysqlHandshake {
                protocol_version: 10,
                server_version,
                connection_id,
                capabilities: u32::from(r.u16_le()?),
                auth_plugin: None,
                auth_data,
            };
            if !r.0.is_empty() {
                let rest = handshake_rest(&mut r, &mut handshake);
                if whole {
                    rest?;
                }
            }
            Ok(MysqlGreeting::Handshake(handshake))
        }
        other => Err(format!(
            "the first packet starts with byte {other:#04x}, not a MySQL handshake (10) or error (0xff)"
        )),
    }
}

/// The handshake's fields after the lower capability flags.
fn handshake_rest(r: &mut Reader<'_>, handshake: &mut MysqlHandshake) -> Result<(), String> {
    r.take(1)?; // character set
    r.take(2)?; // status flags
    handshake.capabilities |= u32::from(r.u16_le()?) << 16;
    let capabilities = handshake.capabilities;
    let data_len = r.u8()?;
    r.take(10)?; // reserved
    if capabilities & CLIENT_SECURE_CONNECTION != 0 {
        // auth-plugin-data part 2, NUL-terminated.
        let part = r.take((i32::from(data_len) - 8).max(13) as usize)?;
        handshake
            .auth_data
            .extend_from_slice(part.strip_suffix(&[0]).unwrap_or(part));
    }
    if capabilities & CLIENT_PLUGIN_AUTH != 0 {
        handshake.auth_plugin = Some(r.cstr().or_else(|_| Ok::<_, String>(r.rest()))?);
    }
    Ok(())
}

/// MySQL and MariaDB: the server's handshake, then the client's SSL Request.
pub(crate) async fn starttls<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Upgrade<S>,
) -> Result<Option<String>, StartTlsError> {
    conn.begin();
    let expected = "a MySQL handshake packet";
    let header = conn.exact(Stage::Greeting, 4).await?;
    let Some(len) = first_packet_len(&header) else {
        return Err(conn.unexpected(expected));
    };
    if len > MAX_PLAINTEXT_BYTES.saturating_sub(conn.pos()) {
        return Err(conn.too_large(Stage::Greeting));
    }
    let payload = conn.exact(Stage::Greeting, len).await?;
    if !matches!(payload.first(), Some(0xff | 10)) {
        return Err(conn.unexpected("a MySQL handshake packet of protocol version 10"));
    }
    let handshake = match parse_greeting(&payload, false) {
        Ok(MysqlGreeting::Handshake(handshake)) => handshake,
        Ok(MysqlGreeting::Error { code, message }) => {
            return Err(conn.turned_away(format!(
                "it sent error {code} instead of a handshake: {}",
                escape_excerpt(message.as_bytes(), MAX_EXCERPT_BYTES)
            )));
        }
        Err(_) => return Err(conn.unexpected("a complete MySQL handshake packet")),
    };
    if handshake.capabilities & MYSQL_CLIENT_SSL == 0 {
        return Err(conn.not_offered("its handshake lacks the CLIENT_SSL capability flag"));
    }
    let version = handshake.server_version;
    conn.drained("the handshake packet")?;
    conn.send(Stage::Upgrade, &mysql_ssl_request()).await?;
    Ok(Some(version))
}

/// MariaDB 10 announces itself as `5.5.5-10.11.6-MariaDB` so old MySQL clients accept
/// it: the version without that prefix is the one `mariadbd --version` prints.
fn without_compat_prefix(version: String) -> String {
    match version.strip_prefix("5.5.5-") {
        Some(real) if real.contains("MariaDB") => real.to_owned(),
        _ => version,
    }
}

/// The MySQL recipe: the server's handshake packet (or the one STARTTLS read), parsed;
/// with a login, the login ([`super::mysql_login`]) on the same connection.
pub(crate) async fn recipe<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut Conn<'_, S>,
    cx: &Context<'_>,
    login: Option<&Login>,
    learned: &mut Learned,
) -> Outcome {
    let payload = match cx.upgraded {
        // STARTTLS already read the handshake: it opens the plaintext transcript.
        Some(pre) => pre.transcript.get(4..).unwrap_or_default().to_vec(),
        None => {
            let head = s.take(4, "the MySQL handshake packet header").await?;
            let Some(len) = first_packet_len(&head) else {
                return Err(mismatch(
                    cx,
                    "a MySQL handshake",
                    &escape_excerpt(&head, 16),
                ));
            };
            s.take(len, "the MySQL handshake packet").await?
        }
    };
    match mysql_greeting(&payload) {
        Ok(MysqlGreeting::Handshake(h)) => {
            learned.insert("protocol_version".into(), h.protocol_version.to_string());
            learned.insert("server_version".into(), h.server_version);
            learned.insert("capabilities".into(), format!("{:#010x}", h.capabilities));
            learned.insert("ssl".into(), yes_no(h.capabilities & MYSQL_CLIENT_SSL != 0));
            if let Some(plugin) = &h.auth_plugin {
                learned.insert("auth_plugin".into(), plugin.clone());
            }
            let Some(login) = login else {
                return Ok(());
            };
            let greeted = Greeted {
                capabilities: h.capabilities,
                auth_data: &h.auth_data,
                plugin: h.auth_plugin.as_deref(),
                // After the SSL Request (sequence 1), the response is the third packet.
                sequence: if cx.upgraded.is_some() { 2 } else { 1 },
            };
            log_in(s, cx, login, greeted, learned).await
        }
        Ok(MysqlGreeting::Error { code, message }) => {
            let text = format!("error {code}: {message}");
            learned.insert("server_error".into(), text.clone());
            Err(unavailable(
                cx,
                "MySQL",
                &text,
                vec![match code {
                    1040 => "too many connections: raise max_connections or find the client holding them".to_owned(),
                    1129 => "this host is blocked after connection errors: run `mysqladmin flush-hosts` and raise max_connect_errors".to_owned(),
                    1130 => "this host may not connect: grant access to a user for this address".to_owned(),
                    _ => "read the error text and the server's error log".to_owned(),
                }],
            ))
        }
        Err(why) => Err(mismatch(
            cx,
            "a MySQL handshake",
            &format!("{why}: {}", escape_excerpt(&payload, 64)),
        )),
    }
}
