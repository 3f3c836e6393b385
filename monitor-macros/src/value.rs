//! Readers of literal values: strings, integers, booleans, durations, choices of the
//! spec's enums and lists of strings. Each reader only reads: it rejects a literal of the
//! wrong kind or a value that does not fit its field, at the offending token; whether the
//! value is allowed is for `monitor_spec`'s validation to say.

use proc_macro2::Span;
use serde::de::DeserializeOwned;
use syn::spanned::Spanned;
use syn::{Expr, Lit, LitStr, UnOp};

use monitor_spec::{Frequency, rules};

use crate::parse::{Errors, did_you_mean};
use crate::wire;

/// A value read, with the spans of its parts: `[1]` of a list, `.password_env` of a
/// recipe, each relative to the spec path of its key.
pub(crate) struct Read<T> {
    /// The value; a placeholder stands for an argument that was rejected.
    pub value: T,
    /// Where each part was written.
    pub parts: Vec<Part>,
}

/// A part of a value: its path below the key's, its span, and whether it was accepted.
pub(crate) struct Part {
    /// Such as `[1]` or `.max_retries`.
    pub path: String,
    /// Where it is written.
    pub span: Span,
    /// `false` when it was rejected and the value holds a placeholder in its stead.
    pub ok: bool,
}

impl<T> Read<T> {
    /// A value without parts.
    pub fn whole(value: T) -> Read<T> {
        Read {
            value,
            parts: Vec::new(),
        }
    }
}

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

/// Any string; the spec judges it.
pub(crate) fn string(e: &Expr, key: &str) -> syn::Result<String> {
    lit_str(e, key).map(|s| s.value())
}

/// A whole number from 0 to `max`, the largest its field holds.
pub(crate) fn integer(e: &Expr, key: &str, max: u64) -> syn::Result<u64> {
    let out_of_range = |shown: &str| format!("`{key}` must be 0 to {max}, got {shown}");
    match peel(e) {
        Expr::Lit(syn::ExprLit {
            lit: Lit::Int(i), ..
        }) => match i.base10_parse::<u64>() {
            Ok(n) if n <= max => Ok(n),
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

/// A whole number that fits a `u16`.
pub(crate) fn integer_u16(e: &Expr, key: &str) -> syn::Result<u16> {
    integer(e, key, u64::from(u16::MAX)).map(|n| u16::try_from(n).unwrap_or(u16::MAX))
}

/// A whole number that fits a `u32`.
pub(crate) fn integer_u32(e: &Expr, key: &str) -> syn::Result<u32> {
    integer(e, key, u64::from(u32::MAX)).map(|n| u32::try_from(n).unwrap_or(u32::MAX))
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

/// A duration such as `"250ms"`, `"5s"` or `"2m"`, read by [`rules::parse_duration_ms`],
/// in milliseconds.
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

/// How the macro spells the values of a spec enum: as its JSON form does, or otherwise
/// (`min_tls = "1.3"` for `tls1_3`).
pub(crate) struct Spelling {
    /// The JSON name of a value as written.
    pub to_wire: fn(&str) -> String,
    /// A JSON name as the macro writes it.
    pub from_wire: fn(&str) -> String,
}

/// Values written as their JSON names.
pub(crate) const AS_JSON: Spelling = Spelling {
    to_wire: str::to_owned,
    from_wire: str::to_owned,
};

/// TLS versions written as `"1.2"` and `"1.3"`.
pub(crate) const TLS_VERSION: Spelling = Spelling {
    to_wire: |text| format!("tls{}", text.replace('.', "_")),
    from_wire: |name| name.trim_start_matches("tls").replace('_', "."),
};

/// A unit variant of the spec enum `T`, by its name in `spelling`.
pub(crate) fn choice<T: DeserializeOwned>(
    e: &Expr,
    key: &str,
    spelling: &Spelling,
) -> syn::Result<T> {
    let names = || -> Vec<String> {
        wire::choices::<T>()
            .iter()
            .map(|n| (spelling.from_wire)(n))
            .collect()
    };
    let list = |names: &[String]| {
        names
            .iter()
            .map(|n| format!("\"{n}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let s = lit_str(e, key).map_err(|_| {
        expected_hint(
            e,
            "a string",
            key,
            &format!("use one of {}", list(&names())),
        )
    })?;
    let value = s.value();
    wire::choice::<T>(&(spelling.to_wire)(&value)).map_err(|_| {
        let names = names();
        syn::Error::new(
            s.span(),
            format!(
                "`{value}` is not a valid `{key}`; {}use one of {}",
                did_you_mean(&value, names.iter().map(String::as_str)),
                list(&names)
            ),
        )
    })
}

/// A frequency, read by the spec's [`Frequency`].
pub(crate) fn frequency(e: &Expr, key: &str) -> syn::Result<Frequency> {
    let allowed = Frequency::allowed();
    let s = lit_str(e, key)
        .map_err(|_| expected_hint(e, "a string", key, &format!("use one of {allowed}")))?;
    s.value()
        .parse()
        .map_err(|why| syn::Error::new(s.span(), why))
}

/// A list of strings: `["a", "b"]`, each element a part `[i]`.
pub(crate) fn list(e: &Expr, key: &str, errors: &mut Errors) -> Option<Read<Vec<String>>> {
    let Expr::Array(array) = peel(e) else {
        errors.push(expected_hint(
            e,
            "a list of strings",
            key,
            &format!("write `{key} = [\"a\", \"b\"]`"),
        ));
        return None;
    };
    let mut read = Read::whole(Vec::with_capacity(array.elems.len()));
    for element in &array.elems {
        if let Some(s) = errors.ok(lit_str(element, key)) {
            read.parts.push(Part {
                path: format!("[{}]", read.value.len()),
                span: element.span(),
                ok: true,
            });
            read.value.push(s.value());
        }
    }
    Some(read)
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
        check(integer_u16, "6379", Ok(6379));
        check(integer_u16, "(6379)", Ok(6379));
        check(integer_u16, "0", Ok(0));
        check(
            integer_u16,
            "70000",
            Err(&["`key` must be 0 to 65535, got 70000"]),
        );
        check(
            integer_u16,
            "-1",
            Err(&["`key` must be 0 to 65535, got -1"]),
        );
        check(
            integer_u32,
            "99999999999999999999999",
            Err(&["`key` must be 0 to 4294967295, got 99999999999999999999999"]),
        );
        check(
            integer_u16,
            "\"80\"",
            Err(&["expected an integer for `key`, found a string"]),
        );
        check(
            integer_u16,
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
    fn lists() {
        let list = |e: &Expr, k: &str| {
            let mut errors = Errors::default();
            let read = list(e, k, &mut errors);
            errors.finish().map(|()| read.map(|r| r.value))
        };
        check(
            list,
            "[\"a\", \" b\"]",
            Ok(Some(vec!["a".to_owned(), " b".to_owned()])),
        );
        check(list, "[]", Ok(Some(vec![])));
        check(
            list,
            "[\"a\", 3]",
            Err(&["expected a string for `key`, found an integer"]),
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
        use monitor_spec::{IpFamily, TlsVersion};
        check(
            |e, k| choice(e, k, &AS_JSON),
            "\"ipv4\"",
            Ok(IpFamily::Ipv4),
        );
        check(
            |e, k| choice::<IpFamily>(e, k, &AS_JSON),
            "\"ip4\"",
            Err(&[
                "`ip4` is not a valid `key`; did you mean `ipv4`? use one of \"any\", \"ipv4\", \"ipv6\"",
            ]),
        );
        check(
            |e, k| choice(e, k, &TLS_VERSION),
            "\"1.3\"",
            Ok(TlsVersion::Tls13),
        );
        check(
            |e, k| choice::<TlsVersion>(e, k, &TLS_VERSION),
            "1.3",
            Err(&["expected a string for `key`, found a float; use one of \"1.2\", \"1.3\""]),
        );
        check(frequency, "\"30s\"", Ok(Frequency::S30));
        check(
            frequency,
            "\"7m\"",
            Err(&[
                "frequency `7m` is not allowed; use one of 10s, 20s, 30s, 1m, 2m, 5m, 10m, 15m, 30m, 1h, 2h, 3h, 6h, 12h, 24h",
            ]),
        );
    }
}
