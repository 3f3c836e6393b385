//! LDAP (RFC 4511): the BER reading of an ExtendedResponse and the StartTLS extended
//! operation (RFC 4513); the recipe (bind, search, unbind) is in [`super::ldap_login`].

use tokio::io::{AsyncRead, AsyncWrite};

use super::super::upgrade::{
    MAX_EXCERPT_BYTES, MAX_PLAINTEXT_BYTES, Stage, StartTlsError, Upgrade,
};
use monitor_spec::escape::escape_excerpt;

/// The StartTLS OID (RFC 4511 section 4.14.1).
const LDAP_STARTTLS_OID: &[u8; 22] = b"1.3.6.1.4.1.1466.20037";

/// LDAPMessage { messageID 1, ExtendedRequest { requestName [0] the OID } }.
fn ldap_starttls_request() -> Vec<u8> {
    let mut request = vec![0x30, 0x1d, 0x02, 0x01, 0x01, 0x77, 0x18, 0x80, 0x16];
    request.extend_from_slice(LDAP_STARTTLS_OID);
    request
}

/// One BER element: tag, contents, and what follows it. Definite lengths only (as LDAP
/// requires), of at most four length bytes.
pub(crate) fn ber_element(data: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = data.split_first()?;
    if tag & 0x1f == 0x1f {
        return None;
    }
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let bytes = rest.get(..n)?;
        let len = bytes.iter().fold(0usize, |l, b| l << 8 | usize::from(*b));
        (len, rest.get(n..)?)
    };
    Some((tag, rest.get(..len)?, rest.get(len..)?))
}

/// A BER INTEGER or ENUMERATED of one to four bytes.
pub(crate) fn ber_int(value: &[u8]) -> Option<i64> {
    if value.is_empty() || value.len() > 4 {
        return None;
    }
    let negative = value.first().is_some_and(|b| b & 0x80 != 0);
    let start = if negative { -1i64 } else { 0 };
    Some(value.iter().fold(start, |n, b| n << 8 | i64::from(*b)))
}

/// The name of an LDAP result code (RFC 4511 appendix A).
pub(crate) fn ldap_result_name(code: i64) -> Option<&'static str> {
    Some(match code {
        0 => "success",
        1 => "operationsError",
        2 => "protocolError",
        3 => "timeLimitExceeded",
        4 => "sizeLimitExceeded",
        7 => "authMethodNotSupported",
        8 => "strongerAuthRequired",
        10 => "referral",
        11 => "adminLimitExceeded",
        12 => "unavailableCriticalExtension",
        13 => "confidentialityRequired",
        32 => "noSuchObject",
        34 => "invalidDNSyntax",
        48 => "inappropriateAuthentication",
        49 => "invalidCredentials",
        50 => "insufficientAccessRights",
        51 => "busy",
        52 => "unavailable",
        53 => "unwillingToPerform",
        80 => "other",
        _ => return None,
    })
}

/// The parts of an LDAP ExtendedResponse that matter here.
struct LdapResponse<'a> {
    message_id: i64,
    result_code: i64,
    diagnostic: &'a [u8],
}

/// Parses the contents of an LDAPMessage holding an ExtendedResponse.
fn ldap_extended_response(body: &[u8]) -> Result<LdapResponse<'_>, &'static str> {
    let malformed = "a well-formed LDAP ExtendedResponse";
    let (tag, id, rest) = ber_element(body).ok_or(malformed)?;
    if tag != 0x02 {
        return Err(malformed);
    }
    let message_id = ber_int(id).ok_or(malformed)?;
    let (tag, op, _controls) = ber_element(rest).ok_or(malformed)?;
    if tag != 0x78 {
        return Err("an ExtendedResponse (BER tag 0x78) to the StartTLS request");
    }
    let (tag, code, rest) = ber_element(op).ok_or(malformed)?;
    if tag != 0x0a {
        return Err(malformed);
    }
    let result_code = ber_int(code).ok_or(malformed)?;
    // matchedDN, then diagnosticMessage; both may be absent in a careless server's reply.
    let diagnostic = ber_element(rest)
        .and_then(|(_, _, rest)| ber_element(rest))
        .filter(|(tag, _, _)| *tag == 0x04)
        .map_or(&[][..], |(_, value, _)| value);
    Ok(LdapResponse {
        message_id,
        result_code,
        diagnostic,
    })
}

/// LDAP (RFC 4511, RFC 4513): the StartTLS extended operation.
pub(crate) async fn starttls<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Upgrade<S>,
) -> Result<Option<String>, StartTlsError> {
    conn.send(Stage::Upgrade, &ldap_starttls_request()).await?;
    conn.begin();
    let expected = "an LDAPMessage (a BER SEQUENCE)";
    let head = conn.exact(Stage::Upgrade, 2).await?;
    let &[tag, first] = head.as_slice() else {
        return Err(conn.unexpected(expected));
    };
    if tag != 0x30 {
        return Err(conn.unexpected(expected));
    }
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return Err(conn.unexpected(expected));
        }
        let bytes = conn.exact(Stage::Upgrade, n).await?;
        bytes.iter().fold(0usize, |l, b| l << 8 | usize::from(*b))
    };
    if len > MAX_PLAINTEXT_BYTES.saturating_sub(conn.pos()) {
        return Err(conn.too_large(Stage::Upgrade));
    }
    let body = conn.exact(Stage::Upgrade, len).await?;
    let response = match ldap_extended_response(&body) {
        Ok(response) => response,
        Err(expected) => return Err(conn.unexpected(expected)),
    };
    let notice = match response.message_id {
        1 => false,
        // An unsolicited notification, such as a notice of disconnection.
        0 => true,
        _ => return Err(conn.unexpected("an LDAP reply with messageID 1")),
    };
    let code = response.result_code;
    if code != 0 || notice {
        let name = ldap_result_name(code).map_or_else(String::new, |n| format!(" ({n})"));
        let diagnostic = if response.diagnostic.is_empty() {
            String::new()
        } else {
            format!(
                ": \"{}\"",
                escape_excerpt(response.diagnostic, MAX_EXCERPT_BYTES)
            )
        };
        let answered = if notice {
            "it sent a notice of disconnection"
        } else {
            "it answered the StartTLS extended request"
        };
        let detail = format!("{answered} with resultCode {code}{name}{diagnostic}");
        return Err(match code {
            // protocolError: StartTLS not supported; referral: ask another server;
            // unavailable: TLS not set up (or broken) on this server.
            2 | 10 | 52 => conn.not_offered(detail),
            _ => conn.refused(detail),
        });
    }
    conn.drained("the StartTLS extended response")?;
    Ok(None)
}
