//! MongoDB (OP_MSG): the codec (the `hello` command, the reply and its BSON document's
//! top level) and the recipe; the login (SCRAM-SHA-256, then `ping`) is in
//! [`super::mongodb_login`].

use std::collections::BTreeMap;

use tokio::io::{AsyncRead, AsyncWrite};

use super::super::conn::Conn;
use super::super::dialog::DialogError;
use super::super::place::place;
use super::super::speak::{Context, Learned, Outcome, mismatch, said, unavailable};
use super::bytes::Reader;
use monitor_spec::result::ErrorKind;

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

    op_msg(request_id, &bson)
}

/// An OP_MSG with `request_id` whose body is `body` (a BSON document).
pub fn op_msg(request_id: i32, body: &[u8]) -> Vec<u8> {
    let length = 16 + 4 + 1 + body.len();
    let mut out = Vec::with_capacity(length);
    out.extend_from_slice(&(length as i32).to_le_bytes());
    out.extend_from_slice(&request_id.to_le_bytes());
    out.extend_from_slice(&0i32.to_le_bytes()); // responseTo
    out.extend_from_slice(&MONGODB_OP_MSG.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes()); // flagBits
    out.push(0); // section kind 0: body
    out.extend_from_slice(body);
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
    /// binary data (any subtype): its bytes.
    Binary(Vec<u8>),
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
                let len = usize::try_from(len).map_err(|_| "negative binary length")?;
                r.take(1)?; // subtype
                Bson::Binary(r.take(len)?.to_vec())
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

/// The longest MongoDB reply read, in bytes (the connection's byte cap bounds it too).
const MAX_MONGODB_REPLY_BYTES: usize = 48 << 20;

/// Reads one OP_MSG reply and its body's top-level fields; `after` names what was sent.
pub(crate) async fn read_reply<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut Conn<'_, S>,
    cx: &Context<'_>,
    after: &str,
) -> Result<BTreeMap<String, Bson>, DialogError> {
    let mut message = s.take(16, "the MongoDB reply header").await.map_err(|e| match e {
        DialogError::Closed { .. } => said(
            cx,
            ErrorKind::ProtocolMismatch,
            format!(
                "{} closed the connection after {after}",
                place(cx.spec, Some(cx.addr))
            ),
            vec!["MongoDB before 3.6 does not speak OP_MSG; otherwise the port may not be MongoDB".to_owned()],
        ),
        other => other,
    })?;
    let len = i32::from_le_bytes([message[0], message[1], message[2], message[3]]);
    let Some(rest) = usize::try_from(len)
        .ok()
        .filter(|l| (21..=MAX_MONGODB_REPLY_BYTES).contains(l))
    else {
        return Err(mismatch(
            cx,
            "a MongoDB reply",
            &monitor_spec::escape::escape_excerpt(&message, 16),
        ));
    };
    message.extend(s.take(rest - 16, "the MongoDB reply").await?);
    mongodb_reply(&message).map_err(|why| mismatch(cx, "a MongoDB OP_MSG reply", &why))
}

/// The role a `hello` reply tells: `primary`, `replica` (a secondary), `arbiter`,
/// `standalone` (no replica set), `mongos`, or `other`.
pub fn mongodb_role(fields: &BTreeMap<String, Bson>) -> &'static str {
    let flag = |k: &str| matches!(fields.get(k), Some(Bson::Bool(true)));
    if matches!(fields.get("msg"), Some(Bson::Text(t)) if t == "isdbgrid") {
        "mongos"
    } else if flag("isWritablePrimary") || flag("ismaster") {
        if fields.contains_key("setName") {
            "primary"
        } else {
            "standalone"
        }
    } else if flag("secondary") {
        "replica"
    } else if flag("arbiterOnly") {
        "arbiter"
    } else {
        "other"
    }
}

/// The MongoDB recipe: an OP_MSG `hello`, answered with `ok: 1`, the wire versions and
/// the node's role; with a login, [`super::mongodb_login::recipe`] follows.
pub(crate) async fn recipe<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut Conn<'_, S>,
    cx: &Context<'_>,
    learned: &mut Learned,
) -> Outcome {
    s.send(&mongodb_hello(1), "sending the OP_MSG hello")
        .await?;
    let fields = read_reply(s, cx, "an OP_MSG hello").await?;
    let number = |k: &str| match fields.get(k) {
        Some(Bson::Number(n)) => Some(*n),
        _ => None,
    };
    let text = |k: &str| match fields.get(k) {
        Some(Bson::Text(t)) => Some(t.clone()),
        _ => None,
    };
    if let Some(max) = number("maxWireVersion") {
        learned.insert("max_wire_version".into(), (max as i64).to_string());
        if let Some(release) = mongodb_release(max as i64) {
            learned.insert("server_release".into(), release.to_owned());
        }
    }
    if let Some(min) = number("minWireVersion") {
        learned.insert("min_wire_version".into(), (min as i64).to_string());
    }
    if let Some(set) = text("setName") {
        learned.insert("replica_set".into(), set);
    }
    let role = mongodb_role(&fields);
    learned.insert("role".into(), role.to_owned());
    if number("ok") != Some(1.0) {
        let why = text("errmsg").unwrap_or_else(|| "ok is not 1".to_owned());
        return Err(unavailable(
            cx,
            "MongoDB",
            &why,
            vec!["read the error and the server's log".to_owned()],
        ));
    }
    Ok(())
}
