//! Values written as calls: the steps of `dialog = [...]`, the `retry` strategy and the
//! protocol `recipe`, read into `monitor_spec`'s own `Step`, `RetryStrategy` and
//! `Recipe`. Names, argument names and defaults come from the spec (its serde form and
//! [`RECIPES`]); only the call syntax and the step names are the macro's.

use proc_macro2::Span;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use syn::spanned::Spanned;
use syn::{Expr, ExprCall, Ident, Lit};

use monitor_spec::{Expect, Payload, RECIPES, ReadUntil, Recipe, RetryStrategy, Step};

use crate::parse::{Errors, closest, did_you_mean};
use crate::value::{self, Part, Read, expected_hint, peel};
use crate::wire::{self, Problem};

/// What a dialog step takes, and how it becomes a spec step.
#[derive(Clone, Copy)]
enum StepForm {
    /// One string: text with escapes, hex digits or a regular expression.
    Text(fn(String) -> Step),
    /// One byte count.
    Count(fn(u32) -> Step),
    /// Nothing.
    Bare(fn() -> Step),
}

/// The steps `dialog` accepts: the macro's names for the spec's steps.
const STEPS: [(&str, StepForm); 10] = [
    ("send", StepForm::Text(|t| Step::Send(Payload::Text(t)))),
    ("send_hex", StepForm::Text(|h| Step::Send(Payload::Hex(h)))),
    (
        "expect",
        StepForm::Text(|t| Step::Expect(Expect::Contains(t))),
    ),
    (
        "expect_regex",
        StepForm::Text(|r| Step::Expect(Expect::Regex(r))),
    ),
    (
        "expect_exact",
        StepForm::Text(|t| Step::Expect(Expect::Exact(Payload::Text(t)))),
    ),
    (
        "expect_hex",
        StepForm::Text(|h| Step::Expect(Expect::Exact(Payload::Hex(h)))),
    ),
    (
        "read_until",
        StepForm::Text(|d| Step::Read(ReadUntil::Delimiter(d))),
    ),
    (
        "read_bytes",
        StepForm::Count(|n| Step::Read(ReadUntil::Bytes(n))),
    ),
    (
        "read_close",
        StepForm::Bare(|| Step::Read(ReadUntil::Close)),
    ),
    ("read_any", StepForm::Bare(|| Step::Read(ReadUntil::Any))),
];

/// The spec step of a shorthand key (`send`, `expect`, `expect_regex`) with its text.
pub(crate) fn shorthand(key: &str, text: String) -> Option<Step> {
    match STEPS.iter().find(|(name, _)| *name == key) {
        Some((_, StepForm::Text(make))) => Some(make(text)),
        _ => None,
    }
}

/// The function name of a call such as `send("...")`.
fn call_name(call: &ExprCall, what: &str, names: &str) -> syn::Result<Ident> {
    match peel(&call.func) {
        Expr::Path(p) if p.qself.is_none() => p.path.get_ident().cloned(),
        _ => None,
    }
    .ok_or_else(|| syn::Error::new_spanned(&call.func, format!("expected {what} name; {names}")))
}

/// `dialog = [send("..."), expect("..."), ...]`, each step a part `[i]` at its argument.
pub(crate) fn dialog(e: &Expr, key: &str, errors: &mut Errors) -> Option<Read<Vec<Step>>> {
    let Expr::Array(array) = peel(e) else {
        errors.push(expected_hint(
            e,
            "a list of steps",
            key,
            &format!("write `{key} = [send(\"PING\\r\\n\"), expect(\"+PONG\")]`"),
        ));
        return None;
    };
    let mut read = Read::whole(Vec::with_capacity(array.elems.len()));
    for element in &array.elems {
        if let Some((step, span)) = errors.ok(step(element)) {
            read.parts.push(Part {
                path: format!("[{}]", read.value.len()),
                span,
                ok: true,
            });
            read.value.push(step);
        }
    }
    Some(read)
}

/// One element of `dialog`, with the span of its argument (or of the call).
fn step(e: &Expr) -> syn::Result<(Step, Span)> {
    let names = STEPS.map(|(name, _)| name).join(", ");
    let Expr::Call(call) = peel(e) else {
        return Err(syn::Error::new_spanned(
            e,
            format!("expected a step such as `send(\"...\")` or `expect(\"...\")`; steps: {names}"),
        ));
    };
    let name = call_name(call, "a step", &format!("steps: {names}"))?;
    let step = name.to_string();
    let Some((_, form)) = STEPS.iter().find(|(n, _)| *n == step) else {
        return Err(syn::Error::new(
            name.span(),
            format!(
                "unknown step `{step}`; {}steps: {names}",
                did_you_mean(&step, STEPS.map(|(name, _)| name))
            ),
        ));
    };
    let args: Vec<&Expr> = call.args.iter().collect();
    let one = |what: &str| match args.as_slice() {
        [arg] => Ok(*arg),
        _ => Err(syn::Error::new_spanned(
            call,
            format!("`{step}` takes one argument: {what}, as in `{step}(...)`"),
        )),
    };
    Ok(match *form {
        StepForm::Text(make) => {
            let arg = one("a string")?;
            (make(value::string(arg, &step)?), arg.span())
        }
        StepForm::Count(make) => {
            let arg = one("a byte count")?;
            (make(value::integer_u32(arg, &step)?), arg.span())
        }
        StepForm::Bare(make) if args.is_empty() => (make(), call.span()),
        StepForm::Bare(_) => {
            return Err(syn::Error::new_spanned(
                &call.args,
                format!("`{step}` takes no arguments; write `{step}()`"),
            ));
        }
    })
}

/// The macro's names for the retry fields named otherwise in the spec, whose values are
/// durations in whole seconds.
const RETRY_DURATIONS: [(&str, &str); 2] = [
    ("backoff", "base_backoff_seconds"),
    ("max_duration", "max_duration_seconds"),
];

/// `name` renamed by [`RETRY_DURATIONS`]: a JSON field to the macro's argument
/// (`to_arg`), or an argument to its JSON field.
fn retry_rename(name: &str, to_arg: bool) -> String {
    RETRY_DURATIONS
        .iter()
        .find_map(|&(arg, wire)| {
            let (from, to) = if to_arg { (wire, arg) } else { (arg, wire) };
            (from == name).then_some(to)
        })
        .unwrap_or(name)
        .to_owned()
}

/// `retry = none()`, `single_retry(...)`, `fixed(...)`, `linear(...)` or
/// `exponential(...)`: the spec's strategies, with `backoff` and `max_duration` as
/// durations.
pub(crate) fn retry(e: &Expr, key: &str, errors: &mut Errors) -> Option<Read<RetryStrategy>> {
    let strategies = wire::tagged_variants::<RetryStrategy>("strategy");
    let listed = strategies.join(", ");
    let Expr::Call(call) = peel(e) else {
        errors.push(expected_hint(
            e,
            "a retry strategy",
            key,
            &format!(
                "write a call such as `none()` or `fixed(backoff = \"30s\", max_retries = 3)`; strategies: {listed}"
            ),
        ));
        return None;
    };
    let name = errors.ok(call_name(
        call,
        "a strategy",
        &format!("strategies: {listed}"),
    ))?;
    let strategy = name.to_string();
    if !strategies.contains(&strategy) {
        errors.at(
            name.span(),
            format!(
                "unknown retry strategy `{strategy}`; {}strategies: {listed}",
                did_you_mean(&strategy, strategies.iter().map(String::as_str))
            ),
        );
        return None;
    }
    let read_arg = |arg: &str, value: &Expr| {
        if RETRY_DURATIONS.iter().any(|(name, _)| *name == arg) {
            value::duration_secs(value, arg).map(Value::from)
        } else {
            literal(value, arg)
        }
    };
    let call = Call {
        name: &name,
        tag: ("strategy", &strategy),
        arg_name: |field| retry_rename(field, true),
        field_name: |arg| retry_rename(arg, false),
    };
    call.read(&args(call_args(e), &strategy, errors), read_arg, errors)
}

/// `recipe = redis()`, `redis(password_env = "...", username = "...")`,
/// `postgres(user = "...", database = "...")`, ...: one of the spec's [`RECIPES`], its
/// arguments the recipe's fields; a name alone (`recipe = redis`) is the call without
/// arguments.
pub(crate) fn recipe(e: &Expr, key: &str, errors: &mut Errors) -> Option<Read<Recipe>> {
    let recipes = RECIPES.join(", ");
    let name = match peel(e) {
        Expr::Call(call) => {
            errors.ok(call_name(call, "a recipe", &format!("recipes: {recipes}")))?
        }
        Expr::Path(p) if p.qself.is_none() && p.path.get_ident().is_some() => {
            p.path.segments[0].ident.clone()
        }
        _ => {
            errors.push(expected_hint(
                e,
                "a recipe",
                key,
                &format!(
                    "write a call such as `redis()` or `postgres(user = \"monitor\")`; recipes: {recipes}"
                ),
            ));
            return None;
        }
    };
    let recipe = name.to_string();
    if !RECIPES.contains(&recipe.as_str()) {
        errors.at(
            name.span(),
            format!(
                "unknown recipe `{recipe}`; {}recipes: {recipes}",
                did_you_mean(&recipe, RECIPES)
            ),
        );
        return None;
    }
    let call = Call {
        name: &name,
        tag: ("protocol", &recipe),
        arg_name: str::to_owned,
        field_name: str::to_owned,
    };
    let read_arg = |arg: &str, value: &Expr| match arg {
        "login" => login(value),
        _ => literal(value, arg),
    };
    call.read(&args(call_args(e), &recipe, errors), read_arg, errors)
}

/// A recipe's `login = login(password_env = "...", query = "...")` as its JSON object
/// (`login()` for a trusted user); the spec's serde form judges the fields.
fn login(e: &Expr) -> syn::Result<Value> {
    let hint = "write `login(password_env = \"MONITORS_SECRET_PG\")`, \
                `login(password_file = \"pg.pass\")` or `login()`";
    let call = match peel(e) {
        Expr::Call(call) => call,
        _ => return Err(expected_hint(e, "a login", "login", hint)),
    };
    let name = call_name(call, "a login", hint)?;
    if name != "login" {
        return Err(syn::Error::new(
            name.span(),
            format!("expected `login(...)`, found `{name}(...)`; {hint}"),
        ));
    }
    let mut fields = Map::new();
    for arg in &call.args {
        let (param, value) = named_arg(arg).ok_or_else(|| {
            syn::Error::new_spanned(arg, "expected `name = value` in `login(...)`")
        })?;
        let name = param.to_string();
        const LOGIN_ARGS: [&str; 6] = [
            "user",
            "password_env",
            "password_file",
            "query",
            "database",
            "allow_plaintext",
        ];
        if !LOGIN_ARGS.contains(&name.as_str()) {
            return Err(syn::Error::new(
                param.span(),
                format!(
                    "unknown argument `{name}`; {}`login` takes {} (a password is never written in a monitor: name where it is read)",
                    did_you_mean(&name, LOGIN_ARGS),
                    LOGIN_ARGS.join(", ")
                ),
            ));
        }
        let param = name;
        if fields.contains_key(&param) {
            return Err(syn::Error::new_spanned(
                arg,
                format!("duplicate argument `{param}` in `login(...)`"),
            ));
        }
        let value = literal(value, &param)?;
        fields.insert(param, value);
    }
    Ok(Value::Object(fields))
}

/// The arguments of a call, none for a name alone.
fn call_args(e: &Expr) -> Vec<&Expr> {
    match peel(e) {
        Expr::Call(call) => call.args.iter().collect(),
        _ => Vec::new(),
    }
}

/// The `name = value` arguments of the call `what(...)`, each name once.
fn args<'a>(args: Vec<&'a Expr>, what: &str, errors: &mut Errors) -> Vec<(Ident, &'a Expr)> {
    let mut named: Vec<(Ident, &Expr)> = Vec::new();
    for arg in args {
        let Some((param, value)) = named_arg(arg) else {
            errors.push(syn::Error::new_spanned(
                arg,
                format!("expected `name = value` in `{what}(...)`"),
            ));
            continue;
        };
        if named.iter().any(|(seen, _)| seen == param) {
            errors.at(
                param.span(),
                format!("duplicate argument `{param}` in `{what}(...)`"),
            );
            continue;
        }
        named.push((param.clone(), value));
    }
    named
}

/// A literal as JSON: a string, a whole number or a boolean.
fn literal(e: &Expr, key: &str) -> syn::Result<Value> {
    match peel(e) {
        Expr::Lit(l) => match &l.lit {
            Lit::Str(s) => Ok(s.value().into()),
            Lit::Bool(b) => Ok(b.value.into()),
            Lit::Int(_) => value::integer(e, key, u64::MAX).map(Value::from),
            _ => Err(value::expected(e, "a string, an integer or a boolean", key)),
        },
        _ => Err(value::expected(e, "a string, an integer or a boolean", key)),
    }
}

/// A call read into the spec value whose JSON form is its tag and its arguments.
struct Call<'a> {
    /// The called name, for errors about the whole call.
    name: &'a Ident,
    /// The JSON tag field and its value: `("protocol", "redis")`.
    tag: (&'a str, &'a str),
    /// The macro's name of a JSON field.
    arg_name: fn(&str) -> String,
    /// The JSON field of an argument.
    field_name: fn(&str) -> String,
}

impl Call<'_> {
    /// The spec value of the call: each argument read by `read_arg` into its JSON field,
    /// then the whole by the spec's serde form. Unknown arguments are reported with the
    /// fields the spec has; a missing field is reported unless its argument was
    /// rejected, and a placeholder stands in its stead.
    fn read<T: DeserializeOwned + Serialize>(
        &self,
        args: &[(Ident, &Expr)],
        read_arg: impl Fn(&str, &Expr) -> syn::Result<Value>,
        errors: &mut Errors,
    ) -> Option<Read<T>> {
        let (tag, what) = self.tag;
        let mut fields = Map::new();
        fields.insert(tag.to_owned(), what.into());
        let mut parts = Vec::new();
        // The field of each argument given, with the span of its name.
        let mut given: Vec<(String, Span)> = Vec::new();
        for (param, value) in args {
            let field = (self.field_name)(&param.to_string());
            let ok = match read_arg(&param.to_string(), value) {
                Ok(json) => {
                    fields.insert(field.clone(), json);
                    given.push((field.clone(), param.span()));
                    true
                }
                Err(e) => {
                    errors.push(e);
                    false
                }
            };
            parts.push(Part {
                path: format!(".{field}"),
                span: value.span(),
                ok,
            });
        }
        for _ in 0..=2 * fields.len() + 2 {
            let problem = match wire::build::<T>(Value::Object(fields.clone())) {
                Ok(built) => match self.unused(&built, &given) {
                    None => {
                        return Some(Read {
                            value: built,
                            parts,
                        });
                    }
                    Some(field) => Problem::UnknownField {
                        field,
                        expected: Vec::new(),
                    },
                },
                Err(problem) => problem,
            };
            match problem {
                Problem::UnknownField { field, expected } => {
                    self.unknown(&field, &expected, &given, &mut parts, errors);
                    fields.remove(&field);
                    given.retain(|(f, _)| *f != field);
                }
                Problem::MissingField(field) => {
                    let path = format!(".{field}");
                    if !parts.iter().any(|p| p.path == path && !p.ok) {
                        errors.at(
                            self.name.span(),
                            format!("`{what}` needs `{}`", (self.arg_name)(&field)),
                        );
                        parts.push(Part {
                            path,
                            span: self.name.span(),
                            ok: false,
                        });
                    }
                    fields.insert(field, 0.into());
                }
                Problem::UnknownVariant { variant, .. } => {
                    errors.at(self.name.span(), format!("unknown `{variant}`"));
                    return None;
                }
                Problem::Other(why) => {
                    errors.at(self.name.span(), format!("invalid `{what}(...)`: {why}"));
                    return None;
                }
            }
        }
        None
    }

    /// A field given that the built value does not hold: serde let it pass unread.
    fn unused<T: Serialize>(&self, built: &T, given: &[(String, Span)]) -> Option<String> {
        let json = serde_json::to_value(built).ok()?;
        given
            .iter()
            .find(|(field, _)| json.get(field).is_none())
            .map(|(field, _)| field.clone())
    }

    /// Reports the unknown argument of `field`; the field it looks like a misspelling of
    /// is rejected, so that it is not also reported missing.
    fn unknown(
        &self,
        field: &str,
        expected: &[String],
        given: &[(String, Span)],
        parts: &mut Vec<Part>,
        errors: &mut Errors,
    ) {
        let what = self.tag.1;
        let arg = (self.arg_name)(field);
        let valid: Vec<String> = expected.iter().map(|f| (self.arg_name)(f)).collect();
        let takes = if valid.is_empty() {
            format!("`{what}` takes no arguments")
        } else {
            format!("`{what}` takes {}", valid.join(", "))
        };
        let span = given
            .iter()
            .find(|(f, _)| f == field)
            .map_or(self.name.span(), |(_, span)| *span);
        errors.at(
            span,
            format!(
                "unknown argument `{arg}`; {}{takes}",
                did_you_mean(&arg, valid.iter().map(String::as_str))
            ),
        );
        parts.retain(|p| p.path != format!(".{field}"));
        if let Some(near) = closest(&arg, valid.iter().map(String::as_str))
            && let Some(wire) = expected.iter().find(|f| (self.arg_name)(f) == near)
        {
            parts.push(Part {
                path: format!(".{wire}"),
                span,
                ok: false,
            });
        }
    }
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

    /// `read` as a reader of `check`: the value, or every error it reported.
    fn all<T>(
        read: fn(&Expr, &str, &mut Errors) -> Option<Read<T>>,
    ) -> impl Fn(&Expr, &str) -> syn::Result<Option<T>> {
        move |e, key| {
            let mut errors = Errors::default();
            let read = read(e, key, &mut errors);
            errors.finish().map(|()| read.map(|r| r.value))
        }
    }

    #[test]
    fn dialogs() {
        check(
            all(dialog),
            r#"[send("PING\r\n"), send_hex("2b50"), expect("+PONG"), expect_regex("^\\+"), expect_exact("OK"), expect_hex("0d0a"), read_until("\r\n"), read_bytes(4), read_close(), read_any()]"#,
            Ok(Some(vec![
                Step::Send(Payload::Text("PING\r\n".into())),
                Step::Send(Payload::Hex("2b50".into())),
                Step::Expect(Expect::Contains("+PONG".into())),
                Step::Expect(Expect::Regex("^\\+".into())),
                Step::Expect(Expect::Exact(Payload::Text("OK".into()))),
                Step::Expect(Expect::Exact(Payload::Hex("0d0a".into()))),
                Step::Read(ReadUntil::Delimiter("\r\n".into())),
                Step::Read(ReadUntil::Bytes(4)),
                Step::Read(ReadUntil::Close),
                Step::Read(ReadUntil::Any),
            ])),
        );
        check(
            all(dialog),
            r#"[sned("x"), send(), read_close(1), "PING", read_bytes(-1)]"#,
            Err(&[
                "unknown step `sned`; did you mean `send`? steps: send, send_hex, expect, expect_regex, expect_exact, expect_hex, read_until, read_bytes, read_close, read_any",
                "`send` takes one argument: a string, as in `send(...)`",
                "`read_close` takes no arguments; write `read_close()`",
                "expected a step such as `send(\"...\")` or `expect(\"...\")`; steps: send, send_hex, expect, expect_regex, expect_exact, expect_hex, read_until, read_bytes, read_close, read_any",
                "`read_bytes` must be 0 to 4294967295, got -1",
            ]),
        );
        assert_eq!(
            shorthand("expect_regex", "x".into()),
            Some(Step::Expect(Expect::Regex("x".into())))
        );
    }

    #[test]
    fn recipes() {
        let redis = |password_env: Option<&str>, username: Option<&str>| Recipe::Redis {
            password_env: password_env.map(str::to_owned),
            username: username.map(str::to_owned),
            role: false,
        };
        check(all(recipe), "redis()", Ok(Some(redis(None, None))));
        check(all(recipe), "redis", Ok(Some(redis(None, None))));
        check(
            all(recipe),
            r#"redis(password_env = "REDIS_PASSWORD", username = "monitor")"#,
            Ok(Some(redis(Some("REDIS_PASSWORD"), Some("monitor")))),
        );
        // The spec's defaults fill what is not given.
        check(all(recipe), "postgres", Ok(Some(Recipe::postgres())));
        check(
            all(recipe),
            r#"postgres(database = "app", user = "probe")"#,
            Ok(Some(Recipe::Postgres {
                user: "probe".into(),
                database: Some("app".into()),
                login: None,
            })),
        );
        check(
            all(recipe),
            r#"postgres(user = "probe", login = login(password_env = "PG_PW", query = "SELECT 2"))"#,
            Ok(Some(Recipe::postgres_login(
                "probe",
                None,
                monitor_spec::login::Login::password_env("PG_PW").query("SELECT 2"),
            ))),
        );
        check(
            all(recipe),
            "postgres(login = login())",
            Ok(Some(Recipe::postgres_login(
                "monitor",
                None,
                monitor_spec::login::Login::trust(),
            ))),
        );
        check(all(recipe), "smtp()", Ok(Some(Recipe::smtp())));
        for (text, expected) in [
            ("mysql()", Recipe::mysql()),
            ("mongodb", Recipe::mongodb()),
            ("imap()", Recipe::imap()),
            ("pop3()", Recipe::pop3()),
            ("memcached()", Recipe::memcached()),
            ("ssh", Recipe::Ssh),
            ("(ftp())", Recipe::ftp()),
            ("ldap()", Recipe::ldap()),
            (
                r#"redis(role = true)"#,
                Recipe::Redis {
                    password_env: None,
                    username: None,
                    role: true,
                },
            ),
            (
                r#"memcached(key = "monitor:probe")"#,
                Recipe::Memcached {
                    key: Some("monitor:probe".into()),
                },
            ),
            (
                r#"mysql(login = login(user = "probe", password_env = "MY_PW", database = "app", query = "SELECT 2"))"#,
                Recipe::mysql().with_login(
                    monitor_spec::login::Login::password_env("MY_PW")
                        .user("probe")
                        .database("app")
                        .query("SELECT 2"),
                ),
            ),
            (
                r#"imap(login = login(user = "probe", password_file = "imap.pass", allow_plaintext = true))"#,
                Recipe::imap().with_login(
                    monitor_spec::login::Login::password_file("imap.pass")
                        .user("probe")
                        .allow_plaintext(),
                ),
            ),
        ] {
            check(all(recipe), text, Ok(Some(expected)));
        }
        check(
            all(recipe),
            "reddis()",
            Err(&[
                "unknown recipe `reddis`; did you mean `redis`? recipes: postgres, mysql, mongodb, smtp, imap, pop3, redis, memcached, ssh, ftp, ldap",
            ]),
        );
        check(
            all(recipe),
            r#"redis(pasword_env = "X", username = "a", username = "b")"#,
            Err(&[
                "duplicate argument `username` in `redis(...)`",
                "unknown argument `pasword_env`; did you mean `password_env`? `redis` takes password_env, username, role",
            ]),
        );
        check(
            all(recipe),
            r#"postgres(db = "x", "y", user = 1)"#,
            Err(&[
                "expected `name = value` in `postgres(...)`",
                "unknown argument `db`; `postgres` takes user, database, login",
                "invalid `postgres(...)`: invalid type: integer `1`, expected a string",
            ]),
        );
        check(
            all(recipe),
            r#"mysql(user = "root")"#,
            Err(&["unknown argument `user`; `mysql` takes login"]),
        );
        check(
            all(recipe),
            "\"redis\"",
            Err(&[
                "expected a recipe for `key`, found a string; write a call such as `redis()` or `postgres(user = \"monitor\")`; recipes: postgres, mysql, mongodb, smtp, imap, pop3, redis, memcached, ssh, ftp, ldap",
            ]),
        );
        check(
            all(recipe),
            "a::redis()",
            Err(&[
                "expected a recipe name; recipes: postgres, mysql, mongodb, smtp, imap, pop3, redis, memcached, ssh, ftp, ldap",
            ]),
        );
    }

    #[test]
    fn retries() {
        use monitor_spec::Backoff;
        check(all(retry), "none()", Ok(Some(RetryStrategy::None)));
        check(
            all(retry),
            r#"single_retry(backoff = "30s")"#,
            Ok(Some(RetryStrategy::SingleRetry {
                base_backoff_seconds: 30,
                same_region: true,
            })),
        );
        check(
            all(retry),
            r#"linear(backoff = "10s", max_retries = 3, max_duration = "2m", same_region = false)"#,
            Ok(Some(RetryStrategy::Linear(Backoff {
                base_backoff_seconds: 10,
                max_retries: 3,
                max_duration_seconds: 120,
                same_region: false,
            }))),
        );
        // The spec's defaults fill `max_duration` and `same_region`; its validation
        // judges the values.
        check(
            all(retry),
            r#"fixed(backoff = "30s", max_retries = 11)"#,
            Ok(Some(RetryStrategy::Fixed(Backoff {
                base_backoff_seconds: 30,
                max_retries: 11,
                max_duration_seconds: 600,
                same_region: true,
            }))),
        );
        check(
            all(retry),
            r#"fixed(backof = "30s", max_retries = 2, max_retries = 3)"#,
            Err(&[
                "duplicate argument `max_retries` in `fixed(...)`",
                "unknown argument `backof`; did you mean `backoff`? `fixed` takes backoff, max_retries, max_duration, same_region",
            ]),
        );
        check(
            all(retry),
            r#"linear(max_retries = 2)"#,
            Err(&["`linear` needs `backoff`"]),
        );
        check(
            all(retry),
            r#"fixed(backoff = "1500ms", max_retries = 2)"#,
            Err(&["`backoff` must be whole seconds, such as \"30s\" or \"2m\"; got 1500ms"]),
        );
        check(
            all(retry),
            r#"exponental(backoff = "5s")"#,
            Err(&[
                "unknown retry strategy `exponental`; did you mean `exponential`? strategies: none, single_retry, fixed, linear, exponential",
            ]),
        );
        check(
            all(retry),
            r#"none(backoff = "5s")"#,
            Err(&["unknown argument `backoff`; `none` takes no arguments"]),
        );
    }
}
