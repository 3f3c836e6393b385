//! Bytes written as text: the escapes of `send`/`expect` text, hex payloads, and the
//! escaped excerpts shown in results.

use std::borrow::Cow;

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

/// `s` with every character written as `rule` says (`None` keeps it as it is): the one
/// loop behind the escapers of XML, HTML, Markdown and Prometheus label values.
pub fn escape_chars(s: &str, rule: impl Fn(char) -> Option<Cow<'static, str>>) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match rule(c) {
            Some(written) => out.push_str(&written),
            None => out.push(c),
        }
    }
    out
}

/// A control character as Rust writes it escaped (`\u{7}`), for escapers that show
/// controls rather than drop them.
pub fn shown(c: char) -> Cow<'static, str> {
    Cow::Owned(c.escape_default().collect())
}

/// Whether `c` changes how text shows without being seen itself: a control character (C0,
/// DEL, C1), a Unicode format character (category Cf: the bidi controls U+202A to U+202E
/// and U+2066 to U+2069, zero-width spaces and joiners U+200B to U+200F, the byte order
/// mark U+FEFF, the soft hyphen, tag characters, ...) or a line or paragraph separator
/// (U+2028, U+2029). Names refuse them; [`printable`] escapes them.
pub fn is_hidden(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{ad}'
                | '\u{600}'..='\u{605}'
                | '\u{61c}'
                | '\u{6dd}'
                | '\u{70f}'
                | '\u{890}'..='\u{891}'
                | '\u{8e2}'
                | '\u{180e}'
                | '\u{200b}'..='\u{200f}'
                | '\u{2028}'..='\u{202e}'
                | '\u{2060}'..='\u{2064}'
                | '\u{2066}'..='\u{206f}'
                | '\u{feff}'
                | '\u{fff9}'..='\u{fffb}'
                | '\u{110bd}'
                | '\u{110cd}'
                | '\u{13430}'..='\u{1343f}'
                | '\u{1bca0}'..='\u{1bca3}'
                | '\u{1d173}'..='\u{1d17a}'
                | '\u{e0001}'
                | '\u{e0020}'..='\u{e007f}'
        )
}

/// `text` made safe to show a person, on one line: every hidden character
/// ([`is_hidden`], line breaks included) written as its escape (`\u{1b}`), and at most
/// `max` bytes kept, a cut text ending with `… (N more bytes)`. Only the kept part of
/// `text` is read, so a 200 MB text costs no more than a short one. For what a server,
/// a result or a file says, before it reaches a terminal or a log.
pub fn printable(text: &str, max: usize) -> String {
    shown_within(text, max, false)
}

/// [`printable`], keeping line breaks (`\n`): for a message of several lines.
pub fn printable_lines(text: &str, max: usize) -> String {
    shown_within(text, max, true)
}

fn shown_within(text: &str, max: usize, keep_lines: bool) -> String {
    let mut out = String::with_capacity(text.len().min(max) + 32);
    for (at, c) in text.char_indices() {
        let start = out.len();
        if is_hidden(c) && !(keep_lines && c == '\n') {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
        if out.len() > max {
            out.truncate(start);
            let more = text.len() - at;
            let unit = if more == 1 { "byte" } else { "bytes" };
            out.push_str(&format!("… ({more} more {unit})"));
            break;
        }
    }
    out
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

    #[test]
    fn printable_escapes_hidden_characters_and_cuts() {
        let check = |input: &str, max: usize, expected: &str| {
            assert_eq!(printable(input, max), expected, "{input:?}");
        };
        check("plain é text", 100, "plain é text");
        check("\x1b[31mred\x1b[0m", 100, "\\u{1b}[31mred\\u{1b}[0m");
        check("abc\u{202e}fed", 100, "abc\\u{202e}fed");
        check(
            "a\u{200b}b\u{feff}c\u{7f}\u{85}",
            100,
            "a\\u{200b}b\\u{feff}c\\u{7f}\\u{85}",
        );
        check("two\nlines\r", 100, "two\\u{a}lines\\u{d}");
        check("abcdef", 3, "abc… (3 more bytes)");
        check("ab\u{1b}", 4, "ab… (1 more byte)");
        check("éé", 3, "é… (2 more bytes)");
        assert_eq!(printable_lines("one\ntwo\x07", 100), "one\ntwo\\u{7}");
        let huge = "x".repeat(10_000_000);
        assert_eq!(
            printable(&huge, 4).len(),
            "xxxx… (9999996 more bytes)".len()
        );
        for c in [
            '\u{202a}',
            '\u{2066}',
            '\u{2069}',
            '\u{200d}',
            '\u{2028}',
            '\u{e0041}',
        ] {
            assert!(is_hidden(c), "{c:?}");
        }
        for c in ['a', 'é', ' ', '\u{1f600}', '\u{3000}'] {
            assert!(!is_hidden(c), "{c:?}");
        }
    }
}
