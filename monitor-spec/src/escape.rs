//! Bytes written as text: the escapes of `send`/`expect` text, hex payloads, and the
//! escaped excerpts shown in results.

use thiserror::Error;

/// A text or hex payload that cannot be turned into bytes.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EscapeError {
    /// A backslash followed by a character that is not an escape.
    #[error(
        "unknown escape `\\{found}` at character {at}; allowed escapes are \\r \\n \\t \\0 \\\\ and \\xNN"
    )]
    UnknownEscape {
        /// The character after the backslash.
        found: char,
        /// Character offset of the backslash.
        at: usize,
    },
    /// `\x` not followed by two hex digits.
    #[error("`\\x` at character {at} must be followed by two hex digits, as in \\x0d")]
    BadHexEscape {
        /// Character offset of the backslash.
        at: usize,
    },
    /// A backslash at the very end.
    #[error("the text ends with a lone backslash; write \\\\ for a backslash")]
    TrailingBackslash,
    /// Hex that is not pairs of hex digits.
    #[error("hex must be pairs of digits 0-9 a-f (spaces allowed between pairs); {0}")]
    BadHex(&'static str),
}

/// Decodes text with `\r`, `\n`, `\t`, `\0`, `\\` and `\xNN` escapes into bytes. Any other
/// character (including real control characters) stands for its UTF-8 bytes.
pub fn unescape(text: &str) -> Result<Vec<u8>, EscapeError> {
    let mut out = Vec::with_capacity(text.len());
    let mut chars = text.chars().enumerate();
    while let Some((at, c)) = chars.next() {
        if c != '\\' {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            continue;
        }
        match chars.next() {
            None => return Err(EscapeError::TrailingBackslash),
            Some((_, 'r')) => out.push(b'\r'),
            Some((_, 'n')) => out.push(b'\n'),
            Some((_, 't')) => out.push(b'\t'),
            Some((_, '0')) => out.push(0),
            Some((_, '\\')) => out.push(b'\\'),
            Some((_, 'x')) => {
                let hi = chars.next().and_then(|(_, c)| c.to_digit(16));
                let lo = chars.next().and_then(|(_, c)| c.to_digit(16));
                match (hi, lo) {
                    (Some(hi), Some(lo)) => out.push((hi * 16 + lo) as u8),
                    _ => return Err(EscapeError::BadHexEscape { at }),
                }
            }
            Some((_, found)) => return Err(EscapeError::UnknownEscape { found, at }),
        }
    }
    Ok(out)
}

/// Decodes hex digits in pairs; ASCII whitespace between pairs is ignored.
pub fn from_hex(hex: &str) -> Result<Vec<u8>, EscapeError> {
    let digits: Vec<u8> = hex.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    if !digits.len().is_multiple_of(2) {
        return Err(EscapeError::BadHex("found an odd number of digits"));
    }
    digits
        .chunks(2)
        .map(|pair| {
            let hi = (pair[0] as char).to_digit(16);
            let lo = (pair[1] as char).to_digit(16);
            match (hi, lo) {
                (Some(hi), Some(lo)) => Ok((hi * 16 + lo) as u8),
                _ => Err(EscapeError::BadHex(
                    "found a character that is not a hex digit",
                )),
            }
        })
        .collect()
}

/// Encodes bytes as lower-case hex without separators.
pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

/// Shows bytes as text a person can read and paste back into a `send` or `expect`:
/// printable ASCII as it is, `\r`, `\n`, `\t`, `\\`, and `\xNN` for every other byte.
/// At most `limit` input bytes are shown; a cut excerpt ends with `...`.
pub fn escape_excerpt(bytes: &[u8], limit: usize) -> String {
    let shown = &bytes[..bytes.len().min(limit)];
    let mut s = String::with_capacity(shown.len() + 8);
    for &b in shown {
        match b {
            b'\r' => s.push_str("\\r"),
            b'\n' => s.push_str("\\n"),
            b'\t' => s.push_str("\\t"),
            b'\\' => s.push_str("\\\\"),
            0x20..=0x7e => s.push(b as char),
            _ => {
                s.push_str("\\x");
                s.push_str(&to_hex(&[b]));
            }
        }
    }
    if bytes.len() > limit {
        s.push_str("...");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: Result<&[u8], EscapeError>) {
        assert_eq!(unescape(input).as_deref(), expected.as_deref(), "{input:?}");
    }

    #[test]
    fn unescape_cases() {
        check("PING\\r\\n", Ok(b"PING\r\n"));
        check("a\\tb\\0c\\\\", Ok(b"a\tb\0c\\"));
        check("\\x00\\xFF\\x7f", Ok(b"\x00\xff\x7f"));
        check("real\r\n", Ok(b"real\r\n"));
        check("é", Ok("é".as_bytes()));
        check("\\q", Err(EscapeError::UnknownEscape { found: 'q', at: 0 }));
        check("ab\\x1", Err(EscapeError::BadHexEscape { at: 2 }));
        check("ab\\xzz", Err(EscapeError::BadHexEscape { at: 2 }));
        check("ab\\", Err(EscapeError::TrailingBackslash));
    }

    #[test]
    fn hex_cases() {
        assert_eq!(from_hex("2b50 4f").unwrap(), b"+PO");
        assert_eq!(from_hex("").unwrap(), b"");
        assert!(from_hex("abc").is_err());
        assert!(from_hex("zz").is_err());
        assert_eq!(to_hex(b"\x00\xab"), "00ab");
    }

    #[test]
    fn excerpt_round_trips_through_unescape() {
        let bytes = b"+PONG\r\n\x00\xff\\ end";
        let shown = escape_excerpt(bytes, 100);
        assert_eq!(shown, "+PONG\\r\\n\\x00\\xff\\\\ end");
        assert_eq!(unescape(&shown).unwrap(), bytes);
        assert_eq!(escape_excerpt(b"abcdef", 3), "abc...");
    }
}
