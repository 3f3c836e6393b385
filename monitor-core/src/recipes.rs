//! Wire codecs of the protocol recipes: pure builders and parsers, each tested byte for byte
//! against the documented formats. The [`Recipe`] itself is spec data in `monitor-spec`.

use std::collections::BTreeMap;
use std::net::SocketAddr;

pub use monitor_spec::recipe::{ProxyProtocol, RECIPES, Recipe};

/// The signature that opens every PROXY protocol v2 header.
pub const PROXY_V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";

/// The PROXY protocol header for a connection from `source` (our end) to `destination`.
pub fn proxy_header(
    version: ProxyProtocol,
    source: SocketAddr,
    destination: SocketAddr,
) -> Vec<u8> {
    // A dual-stack socket reports a v4-mapped address on one side only; show both as v4.
    let (source, destination) = (canonical(source), canonical(destination));
    let v4 = source.is_ipv4() && destination.is_ipv4();
    match version {
        ProxyProtocol::V1 => {
            let (family, source, destination) = if v4 || source.is_ipv6() == destination.is_ipv6() {
                (if v4 { "TCP4" } else { "TCP6" }, source, destination)
            } else {
                return b"PROXY UNKNOWN\r\n".to_vec();
            };
            format!(
                "PROXY {family} {} {} {} {}\r\n",
                source.ip(),
                destination.ip(),
                source.port(),
                destination.port()
            )
            .into_bytes()
        }
        ProxyProtocol::V2 => {
            let mut out = PROXY_V2_SIGNATURE.to_vec();
            out.push(0x21); // version 2, PROXY command
            match (source, destination) {
                (SocketAddr::V4(s), SocketAddr::V4(d)) => {
                    out.push(0x11); // AF_INET, STREAM
                    out.extend_from_slice(&12u16.to_be_bytes());
                    out.extend_from_slice(&s.ip().octets());
                    out.extend_from_slice(&d.ip().octets());
                }
                (SocketAddr::V6(s), SocketAddr::V6(d)) => {
                    out.push(0x21); // AF_INET6, STREAM
                    out.extend_from_slice(&36u16.to_be_bytes());
                    out.extend_from_slice(&s.ip().octets());
                    out.extend_from_slice(&d.ip().octets());
                }
                _ => {
                    out.push(0x00); // AF_UNSPEC: addresses unknown
                    out.extend_from_slice(&0u16.to_be_bytes());
                    return out;
                }
            }
            out.extend_from_slice(&source.port().to_be_bytes());
            out.extend_from_slice(&destination.port().to_be_bytes());
            out
        }
    }
}

fn canonical(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(v4.into(), v6.port()),
            None => addr,
        },
        SocketAddr::V4(_) => addr,
    }
}

/// What a recipe learned, by name: `server_version`, `software`, `capabilities`, ...
pub type Learned = BTreeMap<String, String>;

/// Redis: a command as a RESP array of bulk strings.
pub fn resp_command(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Redis: the fields of an `INFO` reply body (`key:value` lines; `#` lines are headers).
pub fn redis_info(body: &str) -> BTreeMap<&str, &str> {
    body.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim(), v.trim()))
        .collect()
}

/// SSH: the parts of an identification line `SSH-protoversion-softwareversion SP comments`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshIdent<'a> {
    /// `2.0`, or `1.99` for a server that also speaks protocol 1.
    pub protocol: &'a str,
    /// Such as `OpenSSH_9.2p1`.
    pub software: &'a str,
    /// Such as `Debian-2+deb12u3`.
    pub comments: Option<&'a str>,
}

/// Parses an SSH identification line (without CRLF); `None` when it is not one.
pub fn ssh_ident(line: &str) -> Option<SshIdent<'_>> {
    let rest = line.strip_prefix("SSH-")?;
    let (protocol, rest) = rest.split_once('-')?;
    let (software, comments) = match rest.split_once(' ') {
        Some((s, c)) => (s, Some(c)),
        None => (rest, None),
    };
    (!protocol.is_empty() && !software.is_empty()).then_some(SshIdent {
        protocol,
        software,
        comments,
    })
}

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
}

/// The MySQL capability flag for TLS support (`CLIENT_SSL`).
pub const MYSQL_CLIENT_SSL: u32 = 0x0800;

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

/// Parses the payload (after the 4-byte packet header) of the first MySQL packet.
pub fn mysql_greeting(payload: &[u8]) -> Result<MysqlGreeting, String> {
    let mut r = Reader(payload);
    match r.u8()? {
        0xff => {
            let code = r.u16_le()?;
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
            let server_version = r.cstr()?;
            let connection_id = r.u32_le()?;
            r.take(8)?; // auth-plugin-data part 1
            r.take(1)?; // filler
            let lower = u32::from(r.u16_le()?);
            let mut capabilities = lower;
            let mut auth_plugin = None;
            if !r.0.is_empty() {
                r.take(1)?; // character set
                r.take(2)?; // status flags
                capabilities |= u32::from(r.u16_le()?) << 16;
                let data_len = r.u8()?;
                r.take(10)?; // reserved
                if capabilities & 0x8000 != 0 {
                    // CLIENT_SECURE_CONNECTION: auth-plugin-data part 2.
                    r.take((i32::from(data_len) - 8).max(13) as usize)?;
                }
                if capabilities & 0x0008_0000 != 0 {
                    // CLIENT_PLUGIN_AUTH
                    auth_plugin = Some(r.cstr().or_else(|_| Ok::<_, String>(r.rest()))?);
                }
            }
            Ok(MysqlGreeting::Handshake(MysqlHandshake {
                protocol_version: 10,
                server_version,
                connection_id,
                capabilities,
                auth_plugin,
            }))
        }
        other => Err(format!(
            "the first packet starts with byte {other:#04x}, not a MySQL handshake (10) or error (0xff)"
        )),
    }
}

/// PostgreSQL: the startup message (protocol 3.0) for `user` and `database`.
pub fn postgres_startup(user: &str, database: &str) -> Vec<u8> {
    let mut body = 196_608u32.to_be_bytes().to_vec(); // 3 << 16
    for (k, v) in [
        ("user", user),
        ("database", database),
        ("application_name", "monitors"),
    ] {
        body.extend_from_slice(k.as_bytes());
        body.push(0);
        body.extend_from_slice(v.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut out = ((body.len() + 4) as u32).to_be_bytes().to_vec();
    out.extend(body);
    out
}

/// The fields of a PostgreSQL ErrorResponse or NoticeResponse body, by field code
/// (`S` severity, `C` SQLSTATE, `M` message, ...).
pub fn postgres_fields(body: &[u8]) -> BTreeMap<char, String> {
    body.split(|b| *b == 0)
        .filter(|f| !f.is_empty())
        .map(|f| (f[0] as char, String::from_utf8_lossy(&f[1..]).into_owned()))
        .collect()
}

/// The name of a PostgreSQL authentication request code.
pub fn postgres_auth_name(code: u32, body: &[u8]) -> String {
    match code {
        0 => "trust".to_owned(),
        2 => "kerberos".to_owned(),
        3 => "password".to_owned(),
        5 => "md5".to_owned(),
        7 => "gss".to_owned(),
        9 => "sspi".to_owned(),
        10 => {
            let mechanisms: Vec<String> = body
                .split(|b| *b == 0)
                .filter(|m| !m.is_empty())
                .map(|m| String::from_utf8_lossy(m).to_lowercase())
                .collect();
            mechanisms.join(" ")
        }
        other => format!("method {other}"),
    }
}

/// SQLSTATEs that mean the server is up but not serving new sessions: starting up, shutting
/// down or in recovery (57P0x), too many connections (53300), out of resources (53xxx).
pub fn postgres_unavailable(sqlstate: &str) -> bool {
    sqlstate.starts_with("57P") || sqlstate.starts_with("53")
}

/// MongoDB: the OP_MSG `hello` command (`{hello: 1, $db: "admin"}`) with `request_id`.
pub fn mongodb_hello(request_id: i32) -> Vec<u8> {
    let mut doc = Vec::new();
    doc.push(0x10); // int32
    doc.extend_from_slice(b"hello\0");
    doc.extend_from_slice(&1i32.to_le_bytes());
    doc.push(0x02); // string
    doc.extend_from_slice(b"$db\0");
    doc.extend_from_slice(&6i32.to_le_bytes());
    doc.extend_from_slice(b"admin\0");
    doc.push(0); // end of document
    let mut bson = ((doc.len() + 4) as i32).to_le_bytes().to_vec();
    bson.extend(doc);

    let length = 16 + 4 + 1 + bson.len();
    let mut out = Vec::with_capacity(length);
    out.extend_from_slice(&(length as i32).to_le_bytes());
    out.extend_from_slice(&request_id.to_le_bytes());
    out.extend_from_slice(&0i32.to_le_bytes()); // responseTo
    out.extend_from_slice(&MONGODB_OP_MSG.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes()); // flagBits
    out.push(0); // section kind 0: body
    out.extend(bson);
    out
}

/// The OP_MSG opcode.
pub const MONGODB_OP_MSG: i32 = 2013;

/// A scalar value of a BSON document's top level; nested documents and arrays are shown
/// as their keys or elements joined.
#[derive(Debug, Clone, PartialEq)]
pub enum Bson {
    /// double, int32, int64.
    Number(f64),
    /// string.
    Text(String),
    /// boolean.
    Bool(bool),
    /// Any other type, by its BSON type name.
    Other(&'static str),
}

/// Parses an OP_MSG reply (the whole message, header included) into its body document's
/// top-level fields.
pub fn mongodb_reply(message: &[u8]) -> Result<BTreeMap<String, Bson>, String> {
    let mut r = Reader(message);
    let length = r.i32_le()?;
    if length as usize != message.len() {
        return Err(format!(
            "the message length field says {length} bytes but {} arrived",
            message.len()
        ));
    }
    r.take(8)?; // requestID, responseTo
    let opcode = r.i32_le()?;
    if opcode != MONGODB_OP_MSG {
        return Err(format!(
            "the reply has opcode {opcode}, not OP_MSG ({MONGODB_OP_MSG})"
        ));
    }
    r.take(4)?; // flagBits
    if r.u8()? != 0 {
        return Err("the reply's first section is not a body (kind 0)".to_owned());
    }
    bson_document(r.0)
}

/// The top-level fields of one BSON document (the document may be followed by more bytes).
pub fn bson_document(bytes: &[u8]) -> Result<BTreeMap<String, Bson>, String> {
    let mut r = Reader(bytes);
    let size = r.i32_le()?;
    if size < 5 || size as usize > bytes.len() {
        return Err(format!(
            "a BSON document of {size} bytes does not fit in {}",
            bytes.len()
        ));
    }
    let mut r = Reader(&bytes[4..size as usize]);
    let mut fields = BTreeMap::new();
    loop {
        let kind = r.u8()?;
        if kind == 0 {
            return Ok(fields);
        }
        let name = r.cstr()?;
        let value = match kind {
            0x01 => Bson::Number(f64::from_le_bytes(r.array()?)),
            0x02 => {
                let len = r.i32_le()?;
                let text = r.take(usize::try_from(len).map_err(|_| "negative string length")?)?;
                let text = text.strip_suffix(&[0]).unwrap_or(text);
                Bson::Text(String::from_utf8_lossy(text).into_owned())
            }
            0x03 | 0x04 => {
                let len =
                    r.0.get(..4)
                        .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]));
                let len = usize::try_from(len.ok_or("truncated document")?)
                    .map_err(|_| "negative document length")?;
                r.take(len)?;
                Bson::Other(if kind == 0x03 { "document" } else { "array" })
            }
            0x05 => {
                let len = r.i32_le()?;
                r.take(usize::try_from(len).map_err(|_| "negative binary length")? + 1)?;
                Bson::Other("binary")
            }
            0x07 => {
                r.take(12)?;
                Bson::Other("objectId")
            }
            0x08 => Bson::Bool(r.u8()? != 0),
            0x09 => {
                r.take(8)?;
                Bson::Other("date")
            }
            0x0A => Bson::Other("null"),
            0x10 => Bson::Number(f64::from(r.i32_le()?)),
            0x11 => {
                r.take(8)?;
                Bson::Other("timestamp")
            }
            0x12 => Bson::Number(i64::from_le_bytes(r.array()?) as f64),
            0x13 => {
                r.take(16)?;
                Bson::Other("decimal128")
            }
            other => {
                return Err(format!(
                    "field `{name}` has BSON type {other:#04x}, not read here"
                ));
            }
        };
        fields.insert(name, value);
    }
}

/// The MongoDB release that introduced a maximum wire version.
pub fn mongodb_release(max_wire_version: i64) -> Option<&'static str> {
    Some(match max_wire_version {
        6 => "3.6",
        7 => "4.0",
        8 => "4.2",
        9 => "4.4",
        13 => "5.0",
        17 => "6.0",
        21 => "7.0",
        25 => "8.0",
        _ => return None,
    })
}

/// A cursor over bytes that reports truncation as an error.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.0.len() < n {
            return Err(format!(
                "truncated: needed {n} more bytes, {} left",
                self.0.len()
            ));
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    fn u16_le(&mut self) -> Result<u16, String> {
        Ok(u16::from_le_bytes(self.array()?))
    }
    fn u32_le(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    fn i32_le(&mut self) -> Result<i32, String> {
        Ok(i32::from_le_bytes(self.array()?))
    }
    fn cstr(&mut self) -> Result<String, String> {
        let end = memchr::memchr(0, self.0).ok_or("a string is not NUL-terminated")?;
        let s = String::from_utf8_lossy(&self.0[..end]).into_owned();
        self.0 = &self.0[end + 1..];
        Ok(s)
    }
    fn rest(&mut self) -> String {
        let s = String::from_utf8_lossy(self.0).into_owned();
        self.0 = &[];
        s
    }
}
