//! The LDAP recipe (RFC 4511): a simple bind (anonymous without a login, as the login's
//! DN with its password otherwise), with a login a baseObject search of the login's base
//! DN counted as `entry_count`, then an UnbindRequest; the result codes sorted into the
//! kinds a pager acts on.

use tokio::io::{AsyncRead, AsyncWrite};

use super::super::conn::Conn;
use super::super::dialog::DialogError;
use super::super::speak::{Context, Learned, Outcome, goodbye, mismatch, said, unavailable};
use super::ldap::{ber_element, ber_int, ldap_result_name};
use super::mongodb_login::password;
use monitor_spec::escape::escape_excerpt;
use monitor_spec::login::Login;
use monitor_spec::result::ErrorKind;

/// The longest LDAPMessage read, in bytes (the connection's byte cap bounds it too).
pub const MAX_LDAP_MESSAGE_BYTES: usize = 1 << 20;

/// The most messages a search may answer with before its SearchResultDone.
pub const MAX_SEARCH_MESSAGES: usize = 64;

/// The size limit the search asks for.
pub const SEARCH_SIZE_LIMIT: u8 = 2;

/// BER tags of the protocol operations read and written here.
mod tag {
    pub const BIND_REQUEST: u8 = 0x60;
    pub const BIND_RESPONSE: u8 = 0x61;
    pub const UNBIND_REQUEST: u8 = 0x42;
    pub const SEARCH_REQUEST: u8 = 0x63;
    pub const SEARCH_ENTRY: u8 = 0x64;
    pub const SEARCH_DONE: u8 = 0x65;
    pub const SEARCH_REFERENCE: u8 = 0x73;
    pub const EXTENDED_RESPONSE: u8 = 0x78;
}

/// One BER element: `tag`, the definite length, `contents`.
pub fn ber(tag: u8, contents: &[u8]) -> Vec<u8> {
    let len = contents.len();
    let mut out = vec![tag];
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(contents);
    out
}

/// An LDAPMessage: messageID `id` and the operation `op` (already BER).
pub fn ldap_message(id: u8, op: &[u8]) -> Vec<u8> {
    let mut body = ber(0x02, &[id]);
    body.extend_from_slice(op);
    ber(0x30, &body)
}

/// A BindRequest (version 3, simple) for `dn` with `password`; both empty: anonymous.
pub fn bind_request(id: u8, dn: &str, password: &str) -> Vec<u8> {
    let mut op = ber(0x02, &[3]);
    op.extend(ber(0x04, dn.as_bytes()));
    op.extend(ber(0x80, password.as_bytes()));
    ldap_message(id, &ber(tag::BIND_REQUEST, &op))
}

/// A SearchRequest of `base` alone (scope baseObject), filter `(objectClass=*)`, no
/// attributes (`1.1`), at most [`SEARCH_SIZE_LIMIT`] entries.
pub fn search_request(id: u8, base: &str, time_limit: u8) -> Vec<u8> {
    let mut op = ber(0x04, base.as_bytes());
    op.extend(ber(0x0a, &[0])); // scope baseObject
    op.extend(ber(0x0a, &[0])); // derefAliases neverDerefAliases
    op.extend(ber(0x02, &[SEARCH_SIZE_LIMIT]));
    op.extend(ber(0x02, &[time_limit]));
    op.extend(ber(0x01, &[0])); // typesOnly FALSE
    op.extend(ber(0x87, b"objectClass")); // present filter
    op.extend(ber(0x30, &ber(0x04, b"1.1")));
    ldap_message(id, &ber(tag::SEARCH_REQUEST, &op))
}

/// An UnbindRequest.
pub fn unbind_request(id: u8) -> Vec<u8> {
    ldap_message(id, &[tag::UNBIND_REQUEST, 0])
}

/// An LDAPMessage read: its ID, its operation's tag and the operation's contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LdapMessage {
    /// messageID.
    pub id: i64,
    /// The protocolOp's BER tag.
    pub op: u8,
    /// The protocolOp's contents.
    pub contents: Vec<u8>,
}

/// An LDAPResult: resultCode and diagnosticMessage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LdapResult {
    /// resultCode.
    pub code: i64,
    /// diagnosticMessage (may be empty).
    pub diagnostic: String,
}

impl LdapResult {
    /// `resultCode N (name): "diagnostic"`, the diagnostic escaped and cut short.
    pub fn describe(&self) -> String {
        let name = ldap_result_name(self.code).map_or_else(String::new, |n| format!(" ({n})"));
        let diagnostic = if self.diagnostic.is_empty() {
            String::new()
        } else {
            format!(": \"{}\"", self.diagnostic)
        };
        format!("resultCode {}{name}{diagnostic}", self.code)
    }
}

/// Parses an LDAPMessage's contents (what follows the SEQUENCE header).
pub fn parse_message(body: &[u8]) -> Result<LdapMessage, &'static str> {
    let malformed = "a well-formed LDAPMessage";
    let (t, id, rest) = ber_element(body).ok_or(malformed)?;
    if t != 0x02 {
        return Err(malformed);
    }
    let id = ber_int(id).ok_or(malformed)?;
    let (op, contents, _controls) = ber_element(rest).ok_or(malformed)?;
    Ok(LdapMessage {
        id,
        op,
        contents: contents.to_vec(),
    })
}

/// Parses the LDAPResult at the start of an operation's contents.
pub fn parse_result(contents: &[u8]) -> Result<LdapResult, &'static str> {
    let malformed = "a well-formed LDAPResult";
    let (t, code, rest) = ber_element(contents).ok_or(malformed)?;
    if t != 0x0a {
        return Err(malformed);
    }
    let code = ber_int(code).ok_or(malformed)?;
    let diagnostic = ber_element(rest)
        .and_then(|(_, _, rest)| ber_element(rest))
        .filter(|(t, _, _)| *t == 0x04)
        .map_or_else(String::new, |(_, value, _)| escape_excerpt(value, 200));
    Ok(LdapResult { code, diagnostic })
}

/// Reads one LDAPMessage.
async fn read_message<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut Conn<'_, S>,
    cx: &Context<'_>,
) -> Result<LdapMessage, DialogError> {
    let expected = "an LDAPMessage (a BER SEQUENCE)";
    let head = s.take(2, "an LDAPMessage").await?;
    let &[t, first] = head.as_slice() else {
        return Err(mismatch(cx, expected, &escape_excerpt(&head, 16)));
    };
    if t != 0x30 {
        return Err(mismatch(cx, expected, &escape_excerpt(&head, 16)));
    }
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return Err(mismatch(cx, expected, &escape_excerpt(&head, 16)));
        }
        let bytes = s.take(n, "an LDAPMessage length").await?;
        bytes.iter().fold(0usize, |l, b| l << 8 | usize::from(*b))
    };
    if len > MAX_LDAP_MESSAGE_BYTES {
        return Err(mismatch(cx, expected, &format!("a message of {len} bytes")));
    }
    let body = s.take(len, "an LDAPMessage").await?;
    parse_message(&body).map_err(|why| mismatch(cx, why, &escape_excerpt(&body, 32)))
}

/// Reads the response to request `id` with operation `op`, failing on a notice of
/// disconnection (messageID 0).
async fn response<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut Conn<'_, S>,
    cx: &Context<'_>,
    id: u8,
    ops: &[u8],
) -> Result<LdapMessage, DialogError> {
    let message = read_message(s, cx).await?;
    if message.id == 0 && message.op == tag::EXTENDED_RESPONSE {
        let result = parse_result(&message.contents)
            .map_err(|why| mismatch(cx, why, "a notice of disconnection"))?;
        return Err(unavailable(
            cx,
            "LDAP",
            &format!(
                "it sent a notice of disconnection with {}",
                result.describe()
            ),
            vec!["check the server's log and connection limits".to_owned()],
        ));
    }
    if message.id != i64::from(id) || !ops.contains(&message.op) {
        return Err(mismatch(
            cx,
            "an LDAP response to the request sent",
            &format!("messageID {} with BER tag {:#04x}", message.id, message.op),
        ));
    }
    Ok(message)
}

/// The failure a result code means: 49 a refused login, 50 and `missing` (noSuchObject
/// for a search) access denied, 51/52/53 a server not serving, else `other`.
fn refused(cx: &Context<'_>, what: &str, result: &LdapResult, other: ErrorKind) -> DialogError {
    let text = format!("LDAP refused {what}: {}", result.describe());
    let (kind, hint) = match result.code {
        49 => (
            ErrorKind::AuthenticationFailed,
            "check the bind DN and its password (rotated?)",
        ),
        50 => (
            ErrorKind::AccessDenied,
            "check the server's access control for the bind DN",
        ),
        32 => (
            ErrorKind::AccessDenied,
            "no entry DN: check recipe.login.query (the base DN) and that the bind DN may see it",
        ),
        51..=53 => {
            return unavailable(
                cx,
                "LDAP",
                &format!("{what}: {}", result.describe()),
                vec!["busy, unavailable or unwilling: check the server's log".to_owned()],
            );
        }
        _ => (other, "check the server's log for the operation"),
    };
    said(cx, kind, text, vec![hint.to_owned()])
}

/// The LDAP recipe: a simple bind answered by a BindResponse; with a login, the bind as
/// the login's DN, a baseObject search of the login's base DN (the root DSE when absent)
/// whose entries are counted as `entry_count`; then an UnbindRequest.
pub(crate) async fn recipe<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut Conn<'_, S>,
    cx: &Context<'_>,
    login: Option<&Login>,
    learned: &mut Learned,
) -> Outcome {
    // messageID 1 may have gone to StartTLS.
    let mut id = 2u8;
    let dn = login.and_then(|l| l.user.as_deref()).unwrap_or_default();
    let secret = match login {
        Some(l) if l.has_password() => password(cx, l, "ldap")?,
        _ => "",
    };
    s.send(&bind_request(id, dn, secret), "sending the BindRequest")
        .await?;
    let bound = response(s, cx, id, &[tag::BIND_RESPONSE]).await?;
    let result =
        parse_result(&bound.contents).map_err(|why| mismatch(cx, why, "a BindResponse"))?;
    let name = ldap_result_name(result.code).map_or_else(|| result.code.to_string(), str::to_owned);
    learned.insert("result".into(), name);
    let who = if dn.is_empty() {
        "the anonymous bind".to_owned()
    } else {
        format!("the bind of {}", escape_excerpt(dn.as_bytes(), 200))
    };
    let Some(login) = login else {
        // Any BindResponse proves LDAP; a server that refuses anonymous binds serves.
        if matches!(result.code, 51 | 52) {
            return Err(refused(cx, &who, &result, ErrorKind::ServiceUnavailable));
        }
        id += 1;
        return goodbye(s, cx, &unbind_request(id)).await;
    };
    if result.code != 0 {
        return Err(refused(cx, &who, &result, ErrorKind::AuthenticationFailed));
    }
    id += 1;
    let base = login.query.as_deref().unwrap_or_default();
    let seconds = cx.spec.timeouts.read_ms.div_ceil(1000).clamp(1, 255) as u8;
    s.send(
        &search_request(id, base, seconds),
        "sending the SearchRequest",
    )
    .await?;
    let mut entries = 0usize;
    let searched = format!("the search of \"{}\"", escape_excerpt(base.as_bytes(), 200));
    for _ in 0..MAX_SEARCH_MESSAGES {
        let message = response(
            s,
            cx,
            id,
            &[tag::SEARCH_ENTRY, tag::SEARCH_REFERENCE, tag::SEARCH_DONE],
        )
        .await?;
        match message.op {
            tag::SEARCH_ENTRY => entries += 1,
            tag::SEARCH_DONE => {
                let result = parse_result(&message.contents)
                    .map_err(|why| mismatch(cx, why, "a SearchResultDone"))?;
                // sizeLimitExceeded: the entries read are the ones counted.
                if !matches!(result.code, 0 | 4) {
                    return Err(refused(cx, &searched, &result, ErrorKind::QueryFailed));
                }
                learned.insert("entry_count".into(), entries.to_string());
                id += 1;
                return goodbye(s, cx, &unbind_request(id)).await;
            }
            _ => {}
        }
    }
    Err(mismatch(
        cx,
        "an LDAP search answer",
        "too many messages before SearchResultDone",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_bind_search_and_unbind() {
        assert_eq!(
            bind_request(2, "", ""),
            [
                0x30, 0x0c, 0x02, 0x01, 0x02, 0x60, 0x07, 0x02, 0x01, 0x03, 0x04, 0x00, 0x80, 0x00
            ]
        );
        assert_eq!(
            unbind_request(4),
            [0x30, 0x05, 0x02, 0x01, 0x04, 0x42, 0x00]
        );
        let long = "x".repeat(300);
        let bind = bind_request(2, &long, "");
        // 3 (messageID) + 4 + 3 + (4 + 300) + 2 (the BindRequest) = 316 = 0x13c.
        assert_eq!(&bind[..4], &[0x30, 0x82, 0x01, 0x3c]);
        assert_eq!(bind.len(), 4 + 316);
        let search = search_request(3, "dc=example,dc=org", 5);
        let message = parse_message(&search[2..]).unwrap();
        assert_eq!((message.id, message.op), (3, tag::SEARCH_REQUEST));
    }

    #[test]
    fn parses_results() {
        // BindResponse { resultCode 49, matchedDN "", diagnosticMessage "bad" }
        let body = [
            0x02, 0x01, 0x02, 0x61, 0x0a, 0x0a, 0x01, 0x31, 0x04, 0x00, 0x04, 0x03, b'b', b'a',
            b'd',
        ];
        let message = parse_message(&body).unwrap();
        assert_eq!((message.id, message.op), (2, tag::BIND_RESPONSE));
        let result = parse_result(&message.contents).unwrap();
        assert_eq!(result.code, 49);
        assert_eq!(
            result.describe(),
            "resultCode 49 (invalidCredentials): \"bad\""
        );
        assert!(parse_result(&[0x04, 0x00]).is_err());
        assert!(parse_message(&[0x02, 0x05, 0x01]).is_err());
    }

    #[test]
    fn truncated_or_mutated_messages_do_not_panic() {
        // SearchResultEntry, then SearchResultDone with diagnostic "x".
        let good = [
            0x02, 0x01, 0x03, 0x64, 0x08, 0x04, 0x04, b'd', b'c', b'=', b'x', 0x30, 0x00,
        ];
        let done = [
            0x02, 0x01, 0x03, 0x65, 0x08, 0x0a, 0x01, 0x00, 0x04, 0x00, 0x04, 0x01, b'x',
        ];
        for fixture in [&good[..], &done[..]] {
            for end in 0..fixture.len() {
                let _ = parse_message(&fixture[..end]).map(|m| parse_result(&m.contents));
            }
            for at in 0..fixture.len() {
                for byte in [0x00, 0x7f, 0x80, 0x84, 0xff] {
                    let mut mutated = fixture.to_vec();
                    mutated[at] = byte;
                    let _ = parse_message(&mutated).map(|m| parse_result(&m.contents));
                }
            }
        }
        let message = parse_message(&done).unwrap();
        assert_eq!(parse_result(&message.contents).unwrap().diagnostic, "x");
    }
}
