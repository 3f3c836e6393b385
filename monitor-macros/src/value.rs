//! Readers of literal values: strings, integers, booleans, durations, fixed choices,
//! lists of strings, dialog text, hex and regular expressions. Each reader judges a value
//! by the shared rules and reports a problem at the offending token.

use std::net::IpAddr;

use proc_macro2::Span;
use syn::{Expr, Lit, LitStr, UnOp};

use crate::parse::{Errors, did_you_mean};
use crate::{escape, rules};

/// The expression inside invisible groups (from `macro_rules!`) and parentheses.
pub(crate) fn peel(mut e: &Expr) -> &Expr {
    loop {
        match e {
            Expr::Group(g) => e = &g.expr,
            Expr::Paren(p) => e = &p.expr,
            _ => return e,
        }
    }
}

/// What an expression is, for "found ..." in messages.
fn found(e: &Expr) -> &'static str {
    match peel(e) {
        Expr::Lit(l) => match &l.lit {
            Lit::Str(_) => "a string",
            Lit::ByteStr(_) | Lit::CStr(_) => "a byte string",
            Lit::Byte(_) => "a byte",
            Lit::Char(_) => "a character",
            Lit::Int(_) => "an integer",
            Lit::Float(_) => "a float",
            Lit::Bool(_) => "a boolean",
            _ => "a literal",
        },
        Expr::Unary(_) => "a negative number",
        Expr::Array(_) => "a list",
        Expr::Call(_) => "a call",
        Expr::Path(_) => "a name",
        Expr::Macro(_) => "a macro call (values are literals)",
        _ => "an expression",
    }
}

/// `expected {what} for `{key}`, found ...` at the value.
pub(crate) fn expected(e: &Expr, what: &str, key: &str) -> syn::Error {
    syn::Error::new_spanned(
        e,
        format!("expected {what} for `{key}`, found {}", found(e)),
    )
}

/// [`expected`] followed by `; {hint}`.
pub(crate) fn expected_hint(e: &Expr, what: &str, key: &str, hint: &str) -> syn::Error {
    syn::Error::new_spanned(
        e,
        format!("expected {what} for `{key}`, found {}; {hint}", found(e)),
    )
}

/// A string literal.
pub(crate) fn lit_str(e: &Expr, key: &str) -> syn::Result<LitStr> {
    match peel(e) {
        Expr::Lit(syn::ExprLit {
            lit: Lit::Str(s), ..
        }) => Ok(s.clone()),
        _ => Err(expected(e, "a string", key)),
    }
}

/// Any string, empty included.
pub(crate) fn string(e: &Expr, key: &str) -> syn::Result<String> {
    lit_str(e, key).map(|s| s.value())
}

/// Why a name (a tag, a group, a location...) is not acceptable, if it is not.
fn name_problem(value: &str) -> Option<&'static str> {
    if value.trim().is_empty() {
        Some("must not be empty")
    } else if value.trim() != value {
        Some("must not start or end with white space")
    } else {
        None
    }
}

/// A non-empty string without white space at either end.
pub(crate) fn text(e: &Expr, key: &str) -> syn::Result<String> {
    let s = lit_str(e, key)?;
    let value = s.value();
    match name_problem(&value) {
        Some(why) => Err(syn::Error::new(s.span(), format!("`{key}` {why}"))),
        None => Ok(value),
    }
}

/// A logical id, checked by [`rules::check_id`].
pub(crate) fn id(e: &Expr, key: &str) -> syn::Result<String> {
    let s = lit_str(e, key)?;
    let value = s.value();
    rules::check_id(&value)
        .map(|()| value)
        .map_err(|why| syn::Error::new(s.span(), format!("invalid `{key}`: {why}")))
}

/// A host, checked by [`rules::check_host`], with its address when it is a literal.
pub(crate) fn host(e: &Expr, key: &str) -> syn::Result<(String, Option<IpAddr>)> {
    let s = lit_str(e, key)?;
    let value = s.value();
    match rules::check_host(&value) {
        Ok(ip) => Ok((value, ip)),
        Err(why) => Err(syn::Error::new(s.span(), format!("invalid `{key}`: {why}"))),
    }
}

/// A host name for TLS, checked by [`rules::check_host`].
pub(crate) fn host_name(e: &Expr, key: &str) -> syn::Result<String> {
    host(e, key).map(|(name, _)| name)
}

/// PEM text: not blank.
pub(crate) fn pem(e: &Expr, key: &str) -> syn::Result<String> {
    let s = lit_str(e, key)?;
    let value = s.value();
    if value.trim().is_empty() {
        return Err(empty(s.span(), key));
    }
    Ok(value)
}

/// A whole number from `min` to `max`.
pub(crate) fn integer(e: &Expr, key: &str, min: u64, max: u64) -> syn::Result<u64> {
    let out_of_range = |shown: &str| format!("`{key}` must be {min} to {max}, got {shown}");
    match peel(e) {
        Expr::Lit(syn::ExprLit {
            lit: Lit::Int(i), ..
        }) => match i.base10_parse::<u64>() {
            Ok(n) if (min..=max).contains(&n) => Ok(n),
            _ => Err(syn::Error::new(i.span(), out_of_range(i.base10_digits()))),
        },
        Expr::Unary(u) if matches!(u.op, UnOp::Neg(_)) => match peel(&u.expr) {
            Expr::Lit(syn::ExprLit {
                lit: Lit::Int(i), ..
            }) => Err(syn::Error::new_spanned(
                e,
                out_of_range(&format!("-{}", i.base10_digits())),
            )),
            _ => Err(expected(e, "an integer", key)),
        },
        _ => Err(expected(e, "an integer", key)),
    }
}

/// An integer that fits a `u32`, from `min` up.
pub(crate) fn integer_u32(e: &Expr, key: &str, min: u32, max: u32) -> syn::Result<u32> {
    let n = integer(e, key, u64::from(min), u64::from(max))?;
    u32::try_from(n).map_err(|_| syn::Error::new_spanned(e, format!("`{key}` is too large")))
}

/// `true` or `false`.
pub(crate) fn boolean(e: &Expr, key: &str) -> syn::Result<bool> {
    match peel(e) {
        Expr::Lit(syn::ExprLit {
            lit: Lit::Bool(b), ..
        }) => Ok(b.value),
        _ => Err(expected(e, "`true` or `false`", key)),
    }
}

/// A duration such as `"250ms"`, `"5s"` or `"2m"`, in milliseconds.
pub(crate) fn duration_ms(e: &Expr, key: &str) -> syn::Result<u32> {
    let s = lit_str(e, key).map_err(|_| {
        expected_hint(
            e,
            "a duration",
            key,
            "write a string such as \"250ms\", \"5s\" or \"2m\"",
        )
    })?;
    let value = s.value();
    let ms = rules::parse_duration_ms(&value)
        .map_err(|why| syn::Error::new(s.span(), format!("invalid `{key}`: {why}")))?;
    u32::try_from(ms).map_err(|_| {
        syn::Error::new(
            s.span(),
            format!("`{value}` is too long a duration for `{key}`"),
        )
    })
}

/// A duration in whole seconds, such as `"30s"` or `"10m"`.
pub(crate) fn duration_secs(e: &Expr, key: &str) -> syn::Result<u32> {
    let ms = duration_ms(e, key)?;
    if ms % 1000 != 0 {
        return Err(syn::Error::new_spanned(
            e,
            format!("`{key}` must be whole seconds, such as \"30s\" or \"2m\"; got {ms}ms"),
        ));
    }
    Ok(ms / 1000)
}

/// One allowed value of a string key, and the variant of the `monitor_core` enum it
/// stands for.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Choice {
    /// The value as written.
    pub text: &'static str,
    /// The enum variant.
    pub variant: &'static str,
}

/// Shorthand for a table of [`Choice`]s.
macro_rules! choices {
    ($($text:literal => $variant:ident),* $(,)?) => {
        &[$(Choice { text: $text, variant: stringify!($variant) }),*]
    };
}

/// `ip_family`: `IpFamily`.
pub(crate) const IP_FAMILIES: &[Choice] = choices!["any" => Any, "ipv4" => Ipv4, "ipv6" => Ipv6];
/// `proxy_protocol`: `ProxyProtocol`.
pub(crate) const PROXY_PROTOCOLS: &[Choice] = choices!["v1" => V1, "v2" => V2];
/// `tls`: `TlsMode`. `"starttls"` takes its protocol from the recipe; the `starttls` key
/// names one and turns STARTTLS on by itself.
pub(crate) const TLS_MODES: &[Choice] =
    choices!["none" => None, "direct" => Direct, "starttls" => Starttls];
/// `starttls`: `StartTls`.
pub(crate) const STARTTLS: &[Choice] = choices![
    "smtp" => Smtp, "imap" => Imap, "pop3" => Pop3, "ftp" => Ftp,
    "postgres" => Postgres, "mysql" => Mysql, "ldap" => Ldap,
];
/// `min_tls`: `TlsVersion`.
pub(crate) const TLS_VERSIONS: &[Choice] = choices!["1.2" => Tls12, "1.3" => Tls13];
/// `legacy_probe`: `LegacyProbe`.
pub(crate) const LEGACY_PROBES: &[Choice] =
    choices!["off" => Off, "degrade" => Degrade, "fail" => Fail];

/// One of `allowed`, by its text.
pub(crate) fn choice(
    e: &Expr,
    key: &str,
    allowed: &'static [Choice],
) -> syn::Result<&'static Choice> {
    let list = allowed
        .iter()
        .map(|c| format!("\"{}\"", c.text))
        .collect::<Vec<_>>()
        .join(", ");
    let s = lit_str(e, key)
        .map_err(|_| expected_hint(e, "a string", key, &format!("use one of {list}")))?;
    let value = s.value();
    allowed.iter().find(|c| c.text == value).ok_or_else(|| {
        syn::Error::new(
            s.span(),
            format!(
                "`{value}` is not a valid `{key}`; {}use one of {list}",
                did_you_mean(&value, allowed.iter().map(|c| c.text))
            ),
        )
    })
}

/// A frequency of [`rules::FREQUENCIES`]: its text.
pub(crate) fn frequency(e: &Expr, key: &str) -> syn::Result<&'static str> {
    let allowed = rules::FREQUENCIES.join(", ");
    let s = lit_str(e, key)
        .map_err(|_| expected_hint(e, "a string", key, &format!("use one of {allowed}")))?;
    let value = s.value();
    rules::FREQUENCIES
        .iter()
        .find(|f| **f == value)
        .copied()
        .ok_or_else(|| {
            syn::Error::new(
                s.span(),
                format!("frequency `{value}` is not allowed; use one of {allowed}"),
            )
        })
}

/// A list of strings: `["a", "b"]`, each non-empty, without white space at either end,
/// and without repeats.
pub(crate) fn list(e: &Expr, key: &str) -> syn::Result<Vec<String>> {
    let Expr::Array(array) = peel(e) else {
        return Err(expected_hint(
            e,
            "a list of strings",
            key,
            &format!("write `{key} = [\"a\", \"b\"]`"),
        ));
    };
    let mut errors = Errors::default();
    let mut values: Vec<String> = Vec::with_capacity(array.elems.len());
    for element in &array.elems {
        let Some(s) = errors.ok(lit_str(element, key)) else {
            continue;
        };
        let value = s.value();
        if let Some(why) = name_problem(&value) {
            let message = if why == "must not be empty" {
                format!("`{key}` must not hold an empty string")
            } else {
                format!("`{value}` in `{key}` {why}")
            };
            errors.at(s.span(), message);
        } else if values.contains(&value) {
            errors.at(s.span(), format!("`{value}` appears twice in `{key}`"));
        } else {
            values.push(value);
        }
    }
    errors.finish().map(|()| values)
}

/// Dialog text with escapes (`\r`, `\n`, `\t`, `\0`, `\\`, `\xNN`), checked by
/// [`escape::unescape`] and kept as written.
pub(crate) fn escaped(e: &Expr, key: &str) -> syn::Result<String> {
    let s = lit_str(e, key)?;
    let value = s.value();
    match escape::unescape(&value) {
        Ok(bytes) if bytes.is_empty() => Err(empty(s.span(), key)),
        Ok(_) => Ok(value),
        Err(why) => Err(syn::Error::new(
            s.span(),
            format!("invalid escape in `{key}`: {why}"),
        )),
    }
}

/// Hex digits in pairs, checked by [`escape::from_hex`].
pub(crate) fn hex(e: &Expr, key: &str) -> syn::Result<String> {
    let s = lit_str(e, key)?;
    let value = s.value();
    match escape::from_hex(&value) {
        Ok(bytes) if bytes.is_empty() => Err(empty(s.span(), key)),
        Ok(_) => Ok(value),
        Err(why) => Err(syn::Error::new(s.span(), format!("invalid `{key}`: {why}"))),
    }
}

/// A regular expression in bytes mode, compiled now with the limits the engine uses.
pub(crate) fn regex(e: &Expr, key: &str) -> syn::Result<String> {
    let s = lit_str(e, key)?;
    let value = s.value();
    if value.is_empty() {
        return Err(empty(s.span(), key));
    }
    regex::bytes::RegexBuilder::new(&value)
        .size_limit(1 << 20)
        .dfa_size_limit(1 << 20)
        .build()
        .map(|_| value)
        .map_err(|why| {
            syn::Error::new(
                s.span(),
                format!("invalid regular expression in `{key}`: {why}"),
            )
        })
}

fn empty(span: Span, key: &str) -> syn::Error {
    syn::Error::new(span, format!("`{key}` must not be empty"))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Reads `input` as an expression with `read` and compares the result or the error
    /// messages with `expected`.
    pub(crate) fn check<T: std::fmt::Debug + PartialEq>(
        read: impl Fn(&Expr, &str) -> syn::Result<T>,
        input: &str,
        expected: Result<T, &[&str]>,
    ) {
        let e: Expr = match syn::parse_str(input) {
            Ok(e) => e,
            Err(why) => panic!("{input}: {why}"),
        };
        let got =
            read(&e, "key").map_err(|e| e.into_iter().map(|e| e.to_string()).collect::<Vec<_>>());
        let expected = expected.map_err(|m| m.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(got, expected, "{input}");
    }

    #[test]
    fn integers() {
        let port = |e: &Expr, k: &str| integer(e, k, 1, 65535);
        check(port, "6379", Ok(6379));
        check(port, "(6379)", Ok(6379));
        check(port, "0", Err(&["`key` must be 1 to 65535, got 0"]));
        check(port, "70000", Err(&["`key` must be 1 to 65535, got 70000"]));
        check(port, "-1", Err(&["`key` must be 1 to 65535, got -1"]));
        check(
            port,
            "99999999999999999999999",
            Err(&["`key` must be 1 to 65535, got 99999999999999999999999"]),
        );
        check(
            port,
            "\"80\"",
            Err(&["expected an integer for `key`, found a string"]),
        );
        check(
            port,
            "1.5",
            Err(&["expected an integer for `key`, found a float"]),
        );
    }

    #[test]
    fn durations() {
        check(duration_ms, "\"250ms\"", Ok(250));
        check(duration_ms, "\"2m\"", Ok(120_000));
        check(
            duration_ms,
            "\"5 s\"",
            Err(&[
                "invalid `key`: `5 s` is not a duration; write a whole number followed by ms, s, m or h, such as 250ms, 5s or 2m",
            ]),
        );
        check(
            duration_ms,
            "\"9999999h\"",
            Err(&["`9999999h` is too long a duration for `key`"]),
        );
        check(
            duration_ms,
            "5",
            Err(&[
                "expected a duration for `key`, found an integer; write a string such as \"250ms\", \"5s\" or \"2m\"",
            ]),
        );
        check(duration_secs, "\"10m\"", Ok(600));
        check(
            duration_secs,
            "\"1500ms\"",
            Err(&["`key` must be whole seconds, such as \"30s\" or \"2m\"; got 1500ms"]),
        );
    }

    #[test]
    fn strings_and_lists() {
        check(text, "\"Redis\"", Ok("Redis".to_owned()));
        check(text, "\"\"", Err(&["`key` must not be empty"]));
        check(
            text,
            "\" x\"",
            Err(&["`key` must not start or end with white space"]),
        );
        check(
            list,
            "[\"a\", \"b\"]",
            Ok(vec!["a".to_owned(), "b".to_owned()]),
        );
        check(list, "[]", Ok(vec![]));
        check(
            list,
            "[\"\", \"a\", \"a\", 3]",
            Err(&[
                "`key` must not hold an empty string",
                "`a` appears twice in `key`",
                "expected a string for `key`, found an integer",
            ]),
        );
        check(
            list,
            "\"a\"",
            Err(&[
                "expected a list of strings for `key`, found a string; write `key = [\"a\", \"b\"]`",
            ]),
        );
    }

    #[test]
    fn choices_and_frequencies() {
        let family = |e: &Expr, k: &str| choice(e, k, IP_FAMILIES).map(|c| c.variant);
        check(family, "\"ipv4\"", Ok("Ipv4"));
        check(
            family,
            "\"ip4\"",
            Err(&[
                "`ip4` is not a valid `key`; did you mean `ipv4`? use one of \"any\", \"ipv4\", \"ipv6\"",
            ]),
        );
        check(frequency, "\"30s\"", Ok("30s"));
        check(
            frequency,
            "\"7m\"",
            Err(&[
                "frequency `7m` is not allowed; use one of 10s, 20s, 30s, 1m, 2m, 5m, 10m, 15m, 30m, 1h, 2h, 3h, 6h, 12h, 24h",
            ]),
        );
    }

    #[test]
    fn dialog_text() {
        check(escaped, r#""PING\r\n""#, Ok("PING\r\n".to_owned()));
        check(escaped, r#""PING\\r\\n""#, Ok("PING\\r\\n".to_owned()));
        check(
            escaped,
            r#""a\\q""#,
            Err(&[
                "invalid escape in `key`: unknown escape `\\q` at character 1; allowed escapes are \\r \\n \\t \\0 \\\\ and \\xNN",
            ]),
        );
        check(escaped, "\"\"", Err(&["`key` must not be empty"]));
        check(hex, "\"2b50\"", Ok("2b50".to_owned()));
        check(
            hex,
            "\"2b5\"",
            Err(&[
                "invalid `key`: hex must be pairs of digits 0-9 a-f (spaces allowed between pairs); found an odd number of digits",
            ]),
        );
        check(regex, r#""^\\+PONG""#, Ok("^\\+PONG".to_owned()));
        assert!(regex(&syn::parse_quote!("(unclosed"), "key").is_err());
    }
}
