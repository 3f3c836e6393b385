//! Values written as calls: the steps of `dialog = [...]` and the `retry` strategies,
//! each argument judged by the readers of literal values.

use proc_macro2::Span;
use syn::spanned::Spanned;
use syn::{Expr, ExprCall, Ident};

use crate::parse::{Errors, closest, did_you_mean};
use crate::value::{self, expected_hint, peel};

/// One dialog step, its text kept as written.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// `send("text")`: text with escapes.
    Send(String),
    /// `send_hex("2b50")`.
    SendHex(String),
    /// `expect("text")`: the text anywhere in the unread response.
    Expect(String),
    /// `expect_regex("pattern")`.
    ExpectRegex(String),
    /// `expect_exact("text")`: exactly these next bytes, as text with escapes.
    ExpectExact(String),
    /// `expect_hex("2b50")`: exactly these next bytes, as hex.
    ExpectHex(String),
    /// `read_until("\r\n")`.
    ReadUntil(String),
    /// `read_bytes(16)`, with where the count is written.
    ReadBytes(u32, Site),
    /// `read_close()`.
    ReadClose,
    /// `read_any()`.
    ReadAny,
}

/// Where a value is written; equal to every other, so that values compare by content.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Site(pub Span);

impl PartialEq for Site {
    fn eq(&self, _: &Site) -> bool {
        true
    }
}

impl Eq for Site {}

/// The step names `dialog` accepts.
pub(crate) const STEPS: [&str; 10] = [
    "send",
    "send_hex",
    "expect",
    "expect_regex",
    "expect_exact",
    "expect_hex",
    "read_until",
    "read_bytes",
    "read_close",
    "read_any",
];

/// The function name of a call such as `send("...")`.
fn call_name(call: &ExprCall, what: &str, names: &str) -> syn::Result<Ident> {
    match peel(&call.func) {
        Expr::Path(p) if p.qself.is_none() => p.path.get_ident().cloned(),
        _ => None,
    }
    .ok_or_else(|| syn::Error::new_spanned(&call.func, format!("expected {what} name; {names}")))
}

/// `dialog = [send("..."), expect("..."), ...]`.
pub(crate) fn dialog(e: &Expr, key: &str) -> syn::Result<Vec<Step>> {
    let Expr::Array(array) = peel(e) else {
        return Err(expected_hint(
            e,
            "a list of steps",
            key,
            &format!("write `{key} = [send(\"PING\\r\\n\"), expect(\"+PONG\")]`"),
        ));
    };
    if array.elems.is_empty() {
        return Err(syn::Error::new_spanned(
            e,
            format!(
                "`{key}` must hold at least one step; remove it for a check that only connects"
            ),
        ));
    }
    let mut errors = Errors::default();
    let steps: Vec<Step> = array
        .elems
        .iter()
        .filter_map(|element| errors.ok(step(element)))
        .collect();
    errors.finish().map(|()| steps)
}

/// One element of `dialog`.
fn step(e: &Expr) -> syn::Result<Step> {
    let names = STEPS.join(", ");
    let Expr::Call(call) = peel(e) else {
        return Err(syn::Error::new_spanned(
            e,
            format!("expected a step such as `send(\"...\")` or `expect(\"...\")`; steps: {names}"),
        ));
    };
    let name = call_name(call, "a step", &format!("steps: {names}"))?;
    let step = name.to_string();
    let args: Vec<&Expr> = call.args.iter().collect();
    let one = |what: &str| match args.as_slice() {
        [arg] => Ok(*arg),
        _ => Err(syn::Error::new_spanned(
            call,
            format!("`{step}` takes one argument: {what}, as in `{step}(...)`"),
        )),
    };
    let none = || {
        if args.is_empty() {
            Ok(())
        } else {
            Err(syn::Error::new_spanned(
                &call.args,
                format!("`{step}` takes no arguments; write `{step}()`"),
            ))
        }
    };
    Ok(match step.as_str() {
        "send" => Step::Send(value::escaped(one("a string")?, &step)?),
        "send_hex" => Step::SendHex(value::hex(one("a string of hex digits")?, &step)?),
        "expect" => Step::Expect(value::escaped(one("a string")?, &step)?),
        "expect_regex" => Step::ExpectRegex(value::regex(one("a regular expression")?, &step)?),
        "expect_exact" => Step::ExpectExact(value::escaped(one("a string")?, &step)?),
        "expect_hex" => Step::ExpectHex(value::hex(one("a string of hex digits")?, &step)?),
        "read_until" => Step::ReadUntil(value::escaped(one("a delimiter string")?, &step)?),
        "read_bytes" => {
            let arg = one("a byte count")?;
            Step::ReadBytes(
                value::integer_u32(arg, &step, 1, u32::MAX)?,
                Site(arg.span()),
            )
        }
        "read_close" => none().map(|()| Step::ReadClose)?,
        "read_any" => none().map(|()| Step::ReadAny)?,
        _ => {
            return Err(syn::Error::new(
                name.span(),
                format!(
                    "unknown step `{step}`; {}steps: {names}",
                    did_you_mean(&step, STEPS)
                ),
            ));
        }
    })
}

/// A retry strategy.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Retry {
    /// `none()`.
    None,
    /// `single_retry(backoff = "30s", same_region = true)`.
    Single {
        /// Seconds before the retry.
        backoff: u32,
        /// Retry in the same region.
        same_region: bool,
    },
    /// `fixed(...)`, `linear(...)` or `exponential(...)`.
    Backoff {
        /// The `RetryStrategy` variant: `Fixed`, `Linear` or `Exponential`.
        variant: &'static str,
        /// Seconds before the first retry.
        backoff: u32,
        /// Retries at most.
        max_retries: u32,
        /// Seconds for all attempts together.
        max_duration: u32,
        /// Retry in the same region.
        same_region: bool,
    },
}

/// The strategy names `retry` accepts.
const STRATEGIES: [&str; 5] = ["none", "single_retry", "fixed", "linear", "exponential"];

/// The longest retry budget and backoff, in seconds.
use crate::rules::MAX_RETRY_SECONDS;

/// The arguments of a strategy call, each read once.
#[derive(Default)]
struct RetryArgs {
    backoff: Option<(u32, Span)>,
    max_retries: Option<u32>,
    max_duration: Option<u32>,
    same_region: Option<bool>,
}

/// `retry = none()`, `single_retry(...)`, `fixed(...)`, `linear(...)` or
/// `exponential(...)`.
pub(crate) fn retry(e: &Expr, key: &str) -> syn::Result<Retry> {
    let strategies = STRATEGIES.join(", ");
    let Expr::Call(call) = peel(e) else {
        return Err(expected_hint(
            e,
            "a retry strategy",
            key,
            &format!(
                "write a call such as `none()` or `fixed(backoff = \"30s\", max_retries = 3)`; strategies: {strategies}"
            ),
        ));
    };
    let name = call_name(call, "a strategy", &format!("strategies: {strategies}"))?;
    let strategy = name.to_string();
    let (variant, params): (Option<&'static str>, &[&str]) = match strategy.as_str() {
        "none" => (None, &[]),
        "single_retry" => (None, &["backoff", "same_region"]),
        "fixed" => (
            Some("Fixed"),
            &["backoff", "max_retries", "max_duration", "same_region"],
        ),
        "linear" => (
            Some("Linear"),
            &["backoff", "max_retries", "max_duration", "same_region"],
        ),
        "exponential" => (
            Some("Exponential"),
            &["backoff", "max_retries", "max_duration", "same_region"],
        ),
        _ => {
            return Err(syn::Error::new(
                name.span(),
                format!(
                    "unknown retry strategy `{strategy}`; {}strategies: {strategies}",
                    did_you_mean(&strategy, STRATEGIES)
                ),
            ));
        }
    };

    let mut errors = Errors::default();
    let mut args = RetryArgs::default();
    let mut seen: Vec<String> = Vec::new();
    // Parameters an unknown one looks like a misspelling of: not also reported missing.
    let mut misspelled: Vec<&str> = Vec::new();
    for arg in &call.args {
        let Some((param, value)) = named_arg(arg) else {
            errors.push(syn::Error::new_spanned(
                arg,
                format!(
                    "expected `name = value`, such as `backoff = \"30s\"`, in `{strategy}(...)`"
                ),
            ));
            continue;
        };
        let param_name = param.to_string();
        if !params.contains(&param_name.as_str()) {
            misspelled.extend(closest(&param_name, params.iter().copied()));
            let valid = if params.is_empty() {
                format!("`{strategy}` takes no arguments")
            } else {
                format!("`{strategy}` takes {}", params.join(", "))
            };
            errors.at(
                param.span(),
                format!(
                    "unknown argument `{param_name}`; {}{valid}",
                    did_you_mean(&param_name, params.iter().copied())
                ),
            );
            continue;
        }
        if seen.contains(&param_name) {
            errors.at(
                param.span(),
                format!("duplicate argument `{param_name}` in `{strategy}(...)`"),
            );
            continue;
        }
        seen.push(param_name.clone());
        match param_name.as_str() {
            "backoff" => {
                args.backoff = errors
                    .ok(value::duration_secs(value, "backoff"))
                    .map(|s| (s, value.span()));
            }
            "max_retries" => {
                args.max_retries = errors.ok(value::integer_u32(value, "max_retries", 1, 10));
            }
            "max_duration" => {
                args.max_duration = errors.ok(value::duration_secs(value, "max_duration")
                    .and_then(|s| {
                        if s > MAX_RETRY_SECONDS {
                            Err(syn::Error::new_spanned(
                                value,
                                format!("`max_duration` must be at most 600s (10m), got {s}s"),
                            ))
                        } else {
                            Ok(s)
                        }
                    }));
            }
            _ => args.same_region = errors.ok(value::boolean(value, "same_region")),
        }
    }

    let mut missing = |param: &str, example: &str| {
        if !seen.iter().any(|s| s == param) && !misspelled.contains(&param) {
            errors.at(
                name.span(),
                format!("`{strategy}` needs `{param}`, as in `{strategy}({example})`"),
            );
        }
    };
    if !params.is_empty() {
        missing("backoff", "backoff = \"30s\"");
    }
    if variant.is_some() {
        missing("max_retries", "backoff = \"30s\", max_retries = 3");
    }
    let same_region = args.same_region.unwrap_or(true);
    let max_duration = args.max_duration.unwrap_or(MAX_RETRY_SECONDS);
    match (variant, args.backoff) {
        (None, Some((backoff, span))) if backoff > MAX_RETRY_SECONDS => errors.at(
            span,
            format!("`backoff` must be at most 600s (10m), got {backoff}s"),
        ),
        (Some(_), Some((backoff, span))) if backoff > max_duration => errors.at(
            span,
            format!(
                "`backoff` is {backoff}s but must not be above `max_duration` ({max_duration}s)"
            ),
        ),
        _ => {}
    }
    errors.finish()?;

    Ok(match (variant, args.backoff, args.max_retries) {
        (None, None, _) => Retry::None,
        (None, Some((backoff, _)), _) => Retry::Single {
            backoff,
            same_region,
        },
        (Some(variant), Some((backoff, _)), Some(max_retries)) => Retry::Backoff {
            variant,
            backoff,
            max_retries,
            max_duration,
            same_region,
        },
        // Reported above as missing.
        (Some(_), _, _) => {
            return Err(syn::Error::new(
                name.span(),
                format!("`{strategy}` is incomplete"),
            ));
        }
    })
}

/// `name = value` inside a call.
fn named_arg(arg: &Expr) -> Option<(&Ident, &Expr)> {
    match peel(arg) {
        Expr::Assign(assign) => match peel(&assign.left) {
            Expr::Path(p) if p.qself.is_none() => {
                p.path.get_ident().map(|ident| (ident, &*assign.right))
            }
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::tests::check;

    #[test]
    fn dialogs() {
        check(
            dialog,
            r#"[send("PING\r\n"), send_hex("2b50"), expect("+PONG"), expect_regex("^\\+"), expect_exact("OK"), expect_hex("0d0a"), read_until("\r\n"), read_close(), read_any()]"#,
            Ok(vec![
                Step::Send("PING\r\n".into()),
                Step::SendHex("2b50".into()),
                Step::Expect("+PONG".into()),
                Step::ExpectRegex("^\\+".into()),
                Step::ExpectExact("OK".into()),
                Step::ExpectHex("0d0a".into()),
                Step::ReadUntil("\r\n".into()),
                Step::ReadClose,
                Step::ReadAny,
            ]),
        );
        check(
            dialog,
            r#"[sned("x"), send(), read_close(1), expect_hex("zz"), "PING", read_bytes(0)]"#,
            Err(&[
                "unknown step `sned`; did you mean `send`? steps: send, send_hex, expect, expect_regex, expect_exact, expect_hex, read_until, read_bytes, read_close, read_any",
                "`send` takes one argument: a string, as in `send(...)`",
                "`read_close` takes no arguments; write `read_close()`",
                "invalid `expect_hex`: hex must be pairs of digits 0-9 a-f (spaces allowed between pairs); found a character that is not a hex digit",
                "expected a step such as `send(\"...\")` or `expect(\"...\")`; steps: send, send_hex, expect, expect_regex, expect_exact, expect_hex, read_until, read_bytes, read_close, read_any",
                "`read_bytes` must be 1 to 4294967295, got 0",
            ]),
        );
        check(
            dialog,
            "[]",
            Err(&["`key` must hold at least one step; remove it for a check that only connects"]),
        );
    }

    #[test]
    fn retries() {
        check(retry, "none()", Ok(Retry::None));
        check(
            retry,
            r#"single_retry(backoff = "30s")"#,
            Ok(Retry::Single {
                backoff: 30,
                same_region: true,
            }),
        );
        check(
            retry,
            r#"linear(backoff = "10s", max_retries = 3, max_duration = "2m", same_region = false)"#,
            Ok(Retry::Backoff {
                variant: "Linear",
                backoff: 10,
                max_retries: 3,
                max_duration: 120,
                same_region: false,
            }),
        );
        check(
            retry,
            r#"fixed(backoff = "30s", max_retries = 3)"#,
            Ok(Retry::Backoff {
                variant: "Fixed",
                backoff: 30,
                max_retries: 3,
                max_duration: 600,
                same_region: true,
            }),
        );
        check(
            retry,
            r#"fixed(backof = "30s", max_retries = 11, max_duration = "11m", max_retries = 2)"#,
            Err(&[
                "unknown argument `backof`; did you mean `backoff`? `fixed` takes backoff, max_retries, max_duration, same_region",
                "`max_retries` must be 1 to 10, got 11",
                "`max_duration` must be at most 600s (10m), got 660s",
                "duplicate argument `max_retries` in `fixed(...)`",
            ]),
        );
        check(
            retry,
            r#"linear(max_retries = 2)"#,
            Err(&["`linear` needs `backoff`, as in `linear(backoff = \"30s\")`"]),
        );
        check(
            retry,
            r#"fixed(backoff = "5m", max_retries = 2, max_duration = "1m")"#,
            Err(&["`backoff` is 300s but must not be above `max_duration` (60s)"]),
        );
        check(
            retry,
            r#"exponental(backoff = "5s")"#,
            Err(&[
                "unknown retry strategy `exponental`; did you mean `exponential`? strategies: none, single_retry, fixed, linear, exponential",
            ]),
        );
        check(
            retry,
            r#"none(backoff = "5s")"#,
            Err(&["unknown argument `backoff`; `none` takes no arguments"]),
        );
        check(
            retry,
            "\"none\"",
            Err(&[
                "expected a retry strategy for `key`, found a string; write a call such as `none()` or `fixed(backoff = \"30s\", max_retries = 3)`; strategies: none, single_retry, fixed, linear, exponential",
            ]),
        );
    }
}
