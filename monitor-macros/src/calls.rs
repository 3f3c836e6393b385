//! Values written as calls: the steps of `dialog = [...]` and the `retry` strategies,
//! each argument judged by the readers of literal values.

use proc_macro2::Span;
use syn::spanned::Spanned;
use syn::{Expr, ExprCall, Ident};

use crate::parse::{Errors, closest, did_you_mean};
use crate::value::{self, Choice, expected_hint, peel};

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

/// A protocol recipe, its arguments read and checked (defaults filled in).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Recipe {
    /// `postgres(user = "monitor", database = "app")`.
    Postgres {
        /// The user of the startup message.
        user: String,
        /// The database of the startup message.
        database: Option<String>,
    },
    /// `mysql()`.
    Mysql,
    /// `mongodb()`.
    Mongodb,
    /// `smtp(helo = "probe.example.com")`.
    Smtp {
        /// The name sent with EHLO.
        helo: String,
    },
    /// `imap()`.
    Imap,
    /// `pop3()`.
    Pop3,
    /// `redis(password_env = "REDIS_PASSWORD", username = "monitor")`.
    Redis {
        /// The environment variable holding the password.
        password_env: Option<String>,
        /// The ACL user.
        username: Option<String>,
    },
    /// `memcached()`.
    Memcached,
    /// `ssh()`.
    Ssh,
    /// `ftp()`.
    Ftp,
}

/// The recipe names `recipe` accepts, as `monitor_core::recipes::RECIPES` spells them.
pub(crate) const RECIPES: [&str; 10] = [
    "postgres",
    "mysql",
    "mongodb",
    "smtp",
    "imap",
    "pop3",
    "redis",
    "memcached",
    "ssh",
    "ftp",
];

/// The user `postgres()` names when `user` is not given, as `Recipe::postgres()`.
pub(crate) const DEFAULT_PG_USER: &str = "monitor";

/// The EHLO name of `smtp()` when `helo` is not given, as `Recipe::smtp()`.
pub(crate) const DEFAULT_HELO: &str = "monitor.invalid";

impl Recipe {
    /// The recipe's name, as in [`RECIPES`].
    pub fn name(&self) -> &'static str {
        match self {
            Recipe::Postgres { .. } => "postgres",
            Recipe::Mysql => "mysql",
            Recipe::Mongodb => "mongodb",
            Recipe::Smtp { .. } => "smtp",
            Recipe::Imap => "imap",
            Recipe::Pop3 => "pop3",
            Recipe::Redis { .. } => "redis",
            Recipe::Memcached => "memcached",
            Recipe::Ssh => "ssh",
            Recipe::Ftp => "ftp",
        }
    }

    /// The STARTTLS protocol of the service (a `starttls` choice), when it has one.
    pub fn starttls(&self) -> Option<&'static Choice> {
        let text = match self {
            Recipe::Postgres { .. } => "postgres",
            Recipe::Mysql => "mysql",
            Recipe::Smtp { .. } => "smtp",
            Recipe::Imap => "imap",
            Recipe::Pop3 => "pop3",
            Recipe::Ftp => "ftp",
            Recipe::Mongodb | Recipe::Redis { .. } | Recipe::Memcached | Recipe::Ssh => {
                return None;
            }
        };
        value::STARTTLS.iter().find(|c| c.text == text)
    }

    /// Whether the service can be spoken to over direct TLS.
    pub fn allows_direct_tls(&self) -> bool {
        !matches!(self, Recipe::Ssh)
    }
}

/// The arguments each recipe takes.
fn recipe_params(name: &str) -> Option<&'static [&'static str]> {
    Some(match name {
        "postgres" => &["user", "database"],
        "smtp" => &["helo"],
        "redis" => &["password_env", "username"],
        "mysql" | "mongodb" | "imap" | "pop3" | "memcached" | "ssh" | "ftp" => &[],
        _ => return None,
    })
}

/// Whether `s` is an environment variable name: `[A-Za-z_][A-Za-z0-9_]*`.
fn env_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A word of a protocol message (a user, a database): 1 to 63 bytes without NUL or line
/// breaks, and without spaces when `spaces` is false.
fn word(e: &Expr, key: &str, spaces: bool) -> syn::Result<String> {
    let s = value::lit_str(e, key)?;
    let text = s.value();
    let ok = !text.is_empty()
        && text.len() <= 63
        && !text.contains(['\0', '\r', '\n'])
        && (spaces || !text.contains(' '));
    if ok {
        return Ok(text);
    }
    let without = if spaces {
        "without NUL or line breaks"
    } else {
        "without spaces or line breaks"
    };
    Err(syn::Error::new(
        s.span(),
        format!(
            "invalid `{key}`: `{}` must be 1 to 63 characters {without}",
            text.escape_debug()
        ),
    ))
}

/// `recipe = redis()`, `redis(password_env = "...", username = "...")`,
/// `postgres(user = "...", database = "...")`, `smtp(helo = "...")`, `mysql()`, ...;
/// a name alone (`recipe = redis`) stands for the call without arguments.
pub(crate) fn recipe(e: &Expr, key: &str) -> syn::Result<Recipe> {
    let recipes = RECIPES.join(", ");
    let (name, args): (Ident, Vec<&Expr>) = match peel(e) {
        Expr::Call(call) => (
            call_name(call, "a recipe", &format!("recipes: {recipes}"))?,
            call.args.iter().collect(),
        ),
        Expr::Path(p) if p.qself.is_none() && p.path.get_ident().is_some() => {
            (p.path.segments[0].ident.clone(), Vec::new())
        }
        _ => {
            return Err(expected_hint(
                e,
                "a recipe",
                key,
                &format!(
                    "write a call such as `redis()` or `postgres(user = \"monitor\")`; recipes: {recipes}"
                ),
            ));
        }
    };
    let recipe = name.to_string();
    let unknown = || {
        syn::Error::new(
            name.span(),
            format!(
                "unknown recipe `{recipe}`; {}recipes: {recipes}",
                did_you_mean(&recipe, RECIPES)
            ),
        )
    };
    let Some(params) = recipe_params(&recipe) else {
        return Err(unknown());
    };

    let mut errors = Errors::default();
    // Each argument read (`None` when its value was rejected), with its name's span.
    let mut given: Vec<(&str, Span, Option<String>)> = Vec::new();
    // Parameters an unknown one looks like a misspelling of: not also reported missing.
    let mut misspelled: Vec<&str> = Vec::new();
    for arg in args {
        let Some((param, value)) = named_arg(arg) else {
            let message = match params.first() {
                None => format!("`{recipe}` takes no arguments; write `{recipe}()`"),
                Some(first) => format!(
                    "expected `name = value`, such as `{first} = \"...\"`, in `{recipe}(...)`"
                ),
            };
            errors.push(syn::Error::new_spanned(arg, message));
            continue;
        };
        let param_name = param.to_string();
        let Some(param_name) = params.iter().copied().find(|p| *p == param_name) else {
            misspelled.extend(closest(&param_name, params.iter().copied()));
            let valid = if params.is_empty() {
                format!("`{recipe}` takes no arguments")
            } else {
                format!("`{recipe}` takes {}", params.join(", "))
            };
            errors.at(
                param.span(),
                format!(
                    "unknown argument `{param_name}`; {}{valid}",
                    did_you_mean(&param_name, params.iter().copied())
                ),
            );
            continue;
        };
        if given.iter().any(|(seen, _, _)| *seen == param_name) {
            errors.at(
                param.span(),
                format!("duplicate argument `{param_name}` in `{recipe}(...)`"),
            );
            continue;
        }
        let read = match param_name {
            "user" | "database" => word(value, param_name, true),
            "username" => word(value, param_name, false),
            "helo" => value::host_name(value, param_name),
            _ => value::lit_str(value, param_name).and_then(|s| {
                let var = s.value();
                if env_name(&var) {
                    Ok(var)
                } else {
                    Err(syn::Error::new(
                        s.span(),
                        format!(
                            "`{}` is not an environment variable name: use letters, digits and `_`, not starting with a digit",
                            var.escape_debug()
                        ),
                    ))
                }
            }),
        };
        given.push((param_name, param.span(), errors.ok(read)));
    }
    let arg = |param: &str| {
        given
            .iter()
            .find(|(p, _, _)| *p == param)
            .and_then(|(_, _, v)| v.clone())
    };
    if let Some((_, span, _)) = given.iter().find(|(p, _, _)| *p == "username")
        && !given.iter().any(|(p, _, _)| *p == "password_env")
        && !misspelled.contains(&"password_env")
    {
        errors.at(
            *span,
            "`username` needs `password_env`: Redis AUTH takes a user with a password, as in `redis(password_env = \"REDIS_PASSWORD\", username = \"monitor\")`",
        );
    }
    errors.finish()?;

    Ok(match recipe.as_str() {
        "postgres" => Recipe::Postgres {
            user: arg("user").unwrap_or_else(|| DEFAULT_PG_USER.to_owned()),
            database: arg("database"),
        },
        "mysql" => Recipe::Mysql,
        "mongodb" => Recipe::Mongodb,
        "smtp" => Recipe::Smtp {
            helo: arg("helo").unwrap_or_else(|| DEFAULT_HELO.to_owned()),
        },
        "imap" => Recipe::Imap,
        "pop3" => Recipe::Pop3,
        "redis" => Recipe::Redis {
            password_env: arg("password_env"),
            username: arg("username"),
        },
        "memcached" => Recipe::Memcached,
        "ssh" => Recipe::Ssh,
        "ftp" => Recipe::Ftp,
        _ => return Err(unknown()),
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
    fn recipes() {
        let redis = |password_env: Option<&str>, username: Option<&str>| Recipe::Redis {
            password_env: password_env.map(str::to_owned),
            username: username.map(str::to_owned),
        };
        check(recipe, "redis()", Ok(redis(None, None)));
        check(recipe, "redis", Ok(redis(None, None)));
        check(
            recipe,
            r#"redis(password_env = "REDIS_PASSWORD", username = "monitor")"#,
            Ok(redis(Some("REDIS_PASSWORD"), Some("monitor"))),
        );
        check(
            recipe,
            "postgres",
            Ok(Recipe::Postgres {
                user: "monitor".into(),
                database: None,
            }),
        );
        check(
            recipe,
            r#"postgres(database = "app", user = "probe")"#,
            Ok(Recipe::Postgres {
                user: "probe".into(),
                database: Some("app".into()),
            }),
        );
        check(
            recipe,
            "smtp()",
            Ok(Recipe::Smtp {
                helo: "monitor.invalid".into(),
            }),
        );
        check(
            recipe,
            r#"smtp(helo = "probe.example.com")"#,
            Ok(Recipe::Smtp {
                helo: "probe.example.com".into(),
            }),
        );
        for (text, expected) in [
            ("mysql()", Recipe::Mysql),
            ("mongodb", Recipe::Mongodb),
            ("imap()", Recipe::Imap),
            ("pop3()", Recipe::Pop3),
            ("memcached()", Recipe::Memcached),
            ("ssh", Recipe::Ssh),
            ("(ftp())", Recipe::Ftp),
        ] {
            check(recipe, text, Ok(expected));
        }
        check(
            recipe,
            "reddis()",
            Err(&[
                "unknown recipe `reddis`; did you mean `redis`? recipes: postgres, mysql, mongodb, smtp, imap, pop3, redis, memcached, ssh, ftp",
            ]),
        );
        check(
            recipe,
            "telnet",
            Err(&[
                "unknown recipe `telnet`; recipes: postgres, mysql, mongodb, smtp, imap, pop3, redis, memcached, ssh, ftp",
            ]),
        );
        check(
            recipe,
            r#"redis(pasword_env = "X", username = "a b", password_env = "1X")"#,
            Err(&[
                "unknown argument `pasword_env`; did you mean `password_env`? `redis` takes password_env, username",
                "invalid `username`: `a b` must be 1 to 63 characters without spaces or line breaks",
                "`1X` is not an environment variable name: use letters, digits and `_`, not starting with a digit",
            ]),
        );
        check(
            recipe,
            r#"redis(username = "monitor")"#,
            Err(&[
                "`username` needs `password_env`: Redis AUTH takes a user with a password, as in `redis(password_env = \"REDIS_PASSWORD\", username = \"monitor\")`",
            ]),
        );
        check(
            recipe,
            r#"redis(password_env = "A-B", password_env = "C")"#,
            Err(&[
                "`A-B` is not an environment variable name: use letters, digits and `_`, not starting with a digit",
                "duplicate argument `password_env` in `redis(...)`",
            ]),
        );
        check(
            recipe,
            r#"postgres(user = "", database = "a
b", db = "x", "y")"#,
            Err(&[
                "invalid `user`: `` must be 1 to 63 characters without NUL or line breaks",
                "invalid `database`: `a\\nb` must be 1 to 63 characters without NUL or line breaks",
                "unknown argument `db`; `postgres` takes user, database",
                "expected `name = value`, such as `user = \"...\"`, in `postgres(...)`",
            ]),
        );
        check(
            recipe,
            r#"smtp(helo = "bad host!")"#,
            Err(&[
                "invalid `helo`: `bad host!` is not a valid host: it contains ` `; use a DNS name (letters, digits, `-`, `_`, dots), an IPv4 address or an IPv6 address without brackets",
            ]),
        );
        check(
            recipe,
            r#"mysql(user = "root")"#,
            Err(&["unknown argument `user`; `mysql` takes no arguments"]),
        );
        check(
            recipe,
            "ssh(22)",
            Err(&["`ssh` takes no arguments; write `ssh()`"]),
        );
        check(
            recipe,
            "\"redis\"",
            Err(&[
                "expected a recipe for `key`, found a string; write a call such as `redis()` or `postgres(user = \"monitor\")`; recipes: postgres, mysql, mongodb, smtp, imap, pop3, redis, memcached, ssh, ftp",
            ]),
        );
        check(
            recipe,
            "a::redis()",
            Err(&[
                "expected a recipe name; recipes: postgres, mysql, mongodb, smtp, imap, pop3, redis, memcached, ssh, ftp",
            ]),
        );
    }

    /// The recipes, their defaults, STARTTLS protocols and direct TLS are those of
    /// `monitor_core`.
    #[test]
    fn recipes_match_monitor_core() {
        use monitor_core::Recipe as Core;
        let core = [
            Core::postgres(),
            Core::Mysql,
            Core::Mongodb,
            Core::smtp(),
            Core::Imap,
            Core::Pop3,
            Core::redis(),
            Core::Memcached,
            Core::Ssh,
            Core::Ftp,
        ];
        assert_eq!(RECIPES, monitor_core::recipes::RECIPES);
        for (name, core) in RECIPES.iter().zip(&core) {
            // An exhaustive match: a new variant in `monitor_core` must be added here.
            let ours = match core {
                Core::Postgres { user, database } => Recipe::Postgres {
                    user: user.clone(),
                    database: database.clone(),
                },
                Core::Mysql => Recipe::Mysql,
                Core::Mongodb => Recipe::Mongodb,
                Core::Smtp { helo } => Recipe::Smtp { helo: helo.clone() },
                Core::Imap => Recipe::Imap,
                Core::Pop3 => Recipe::Pop3,
                Core::Redis {
                    password_env,
                    username,
                } => Recipe::Redis {
                    password_env: password_env.clone(),
                    username: username.clone(),
                },
                Core::Memcached => Recipe::Memcached,
                Core::Ssh => Recipe::Ssh,
                Core::Ftp => Recipe::Ftp,
            };
            let input = format!("{name}()");
            let e: Expr = syn::parse_str(&input).unwrap_or_else(|why| panic!("{why}"));
            assert_eq!(recipe(&e, "recipe").ok().as_ref(), Some(&ours), "{name}");
            assert_eq!(ours.name(), core.name());
            assert_eq!(
                ours.starttls().map(|c| c.text),
                core.starttls().map(|p| p.openssl_name()),
                "{name}"
            );
            assert_eq!(ours.allows_direct_tls(), core.allows_direct_tls(), "{name}");
        }
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
