//! How the engine names where a check goes (`host:port`, with the address that answered)
//! and how much of a response it shows.

use std::net::SocketAddr;
use std::sync::Arc;

use monitor_spec::spec::{Target, TcpMonitor};

/// How many bytes of the response a result shows.
pub const EXCERPT_BYTES: usize = 256;

/// The target as declared, followed by the address that answered when they differ:
/// `db.internal:5432 (10.0.0.7:5432)`, or just `127.0.0.1:5432`.
pub(crate) fn place(spec: &TcpMonitor, addr: Option<SocketAddr>) -> String {
    let target = target_text(&spec.target);
    match addr {
        Some(a) if *address_text(a) != *target => format!("{target} ({a})"),
        _ => target,
    }
}

/// The target as its `Display` writes it (`host:port`, `[v6]:port`), without the
/// formatting machinery: recipes name it in their messages at every check. (A result's
/// own target is made once per monitor, `Compiled::texts`.)
pub(crate) fn target_text(target: &Target) -> String {
    let host = target.host.as_str();
    let mut text = String::with_capacity(host.len() + 8);
    if host.contains(':') {
        text.push('[');
        text.push_str(host);
        text.push(']');
    } else {
        text.push_str(host);
    }
    text.push(':');
    push_decimal(&mut text, target.port.into());
    text
}

/// The address as its `Display` writes it (`ip:port`, `[ip6]:port`), in one allocation
/// shared by the result and its attempt: IPv4 without the formatting machinery, which
/// costs more than the rest of a result's strings together.
pub(crate) fn address_text(addr: SocketAddr) -> Arc<str> {
    match addr {
        SocketAddr::V4(v4) => {
            // `255.255.255.255:65535` is 21 bytes.
            let mut text = [0u8; 21];
            let mut len = 0;
            let mut push = |byte: u8| {
                if let Some(at) = text.get_mut(len) {
                    *at = byte;
                    len += 1;
                }
            };
            for (i, octet) in v4.ip().octets().into_iter().enumerate() {
                if i > 0 {
                    push(b'.');
                }
                decimal(octet.into(), &mut push);
            }
            push(b':');
            decimal(v4.port().into(), &mut push);
            // ASCII digits, dots and a colon: always UTF-8.
            Arc::from(std::str::from_utf8(&text[..len]).unwrap_or_default())
        }
        SocketAddr::V6(_) => Arc::from(addr.to_string()),
    }
}

/// Appends `n` in decimal.
fn push_decimal(text: &mut String, n: u32) {
    decimal(n, |d| text.push(char::from(d)));
}

/// Gives the ASCII digits of `n` in decimal, most significant first.
fn decimal(n: u32, mut digit: impl FnMut(u8)) {
    let mut digits = [0u8; 10];
    let mut at = digits.len();
    let mut n = n;
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &d in &digits[at..] {
        digit(d);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use monitor_spec::spec::IpFamily;

    #[test]
    fn the_texts_are_what_display_writes() {
        for addr in [
            "127.0.0.1:5432",
            "0.0.0.0:0",
            "255.255.255.255:65535",
            "10.20.3.4:80",
            "[::1]:5432",
            "[fe80::1%3]:22",
        ] {
            let addr: SocketAddr = addr.parse().unwrap();
            assert_eq!(*address_text(addr), addr.to_string());
        }
        for (host, port) in [
            ("db.internal", 5432),
            ("127.0.0.1", 1),
            ("::1", 65535),
            ("2001:db8::7", 443),
        ] {
            let target = Target {
                host: host.to_owned(),
                port,
                ip_family: IpFamily::Any,
            };
            assert_eq!(target_text(&target), target.to_string());
        }
    }
}
