//! `#[tcp_monitor]`, `monitor_defaults!` and `maintenance!`: monitors and maintenance
//! windows declared in Rust, checked at compile time, and registered for
//! `monitor_core::registry`.
//!
//! Use them through `monitor_core` (`use monitor_core::prelude::*;`), which re-exports
//! both and the registry they submit to. The attribute parses into a typed config with one
//! setter per key, builds the `monitor_spec::TcpMonitor` it declares, runs the spec's own
//! validation on it, and reports every problem at once at the token that set its field.
//! On error the item is kept as written beside the errors, so editors keep working.

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::quote;
use syn::parse::Parser;

mod build;
mod calls;
mod config;
mod expand;
mod item;
mod parse;
mod paths;
mod tokens;
mod value;
mod window;
mod wire;

use config::{Config, Macro};
use parse::Errors;

/// Declares a TCP monitor on a function that refines it.
///
/// ```rust,standalone_crate
/// use monitor_core::prelude::*;
///
/// /// Redis cache answers PING.
/// #[tcp_monitor(host = "cache.internal", port = 6379, frequency = "30s",
///               send = "PING\r\n", expect = "+PONG",
///               degraded = "200ms", max = "1s", tags = ["cache", "prod"])]
/// fn redis_cache(m: TcpMonitor) -> TcpMonitor {
///     m.assert(response_time().less_than(ms(100)))
/// }
///
/// fn main() {
///     let declared = monitor_core::registry::monitors().expect("one monitor");
///     let m = &declared[0].monitor;
///     assert_eq!((m.id.as_str(), m.name.as_str()), ("redis_cache", "Redis cache answers PING"));
///     assert_eq!((m.degraded_response_time_ms, m.max_response_time_ms), (200, 1000));
///     assert_eq!(m.assertions.len(), 1);
/// }
/// ```
///
/// The function must be `fn NAME(m: TcpMonitor) -> TcpMonitor`: not `async`, `const`,
/// `unsafe`, `extern` or generic, with exactly one argument. The attribute registers the
/// monitor it declares; `monitor_core::registry::monitors()` builds it, applies the
/// project defaults of [`monitor_defaults!`] to the keys it leaves unsaid, then runs the
/// function on it.
///
/// # Grammar
///
/// `#[tcp_monitor(key = value, ...)]`, each key at most once, in any order. Values are
/// literals; lists are `[...]` of string literals; `dialog`, `recipe` and `retry` take
/// calls.
///
/// ```text
/// identity   id          = "str"    logical id (letters, digits, - _ . : /); default:
///                                   the module path below the crate root and the
///                                   function name, as registry::derived_id makes it
///            name        = "str"    default: the first sentence of the doc comment,
///                                   without its final period; else the id
///            description = "str"    default: the whole doc comment
///            tags        = ["str", ...]   at most 64, each 1 to 64 ascii letters,
///                                   digits, spaces and - _ . : / = @ +
///            group       = "str"    (name, group, description: no control or
///                                   format characters such as U+202E)
/// target     host        = "str"    required: DNS name, IPv4 or IPv6 literal (no brackets)
///            port        = int      required: 1 to 65535
///            ip_family   = "any" | "ipv4" | "ipv6"   must not clash with a literal host
///            proxy_protocol = "v1" | "v2"   send a PROXY protocol header first
/// dialog     recipe      = postgres(user = "str", database = "str") | mysql() | mongodb()
///                        | smtp(helo = "host") | imap() | pop3()
///                        | redis(password_env = "VAR", username = "str") | memcached()
///                        | ssh() | ftp()
///                                   the protocol's first words, spoken before the steps;
///                                   every argument is optional, and a name alone
///                                   (`recipe = redis`) is the call without arguments
///            send        = "text"   shorthand: a send step, then
///            expect      = "text"   an expect (contains) step, then
///            expect_regex = "re"    an expect (regex) step
///            dialog      = [step, ...]   the full form; conflicts with the shorthand
///                 step:  send("text") | send_hex("2b50") | expect("text")
///                        | expect_regex("re") | expect_exact("text") | expect_hex("2b50")
///                        | read_until("text") | read_bytes(int) | read_close() | read_any()
/// limits     connect_timeout = "duration"   default 5s
///            read_timeout    = "duration"   default 5s, per step
///            timeout         = "duration"   default 10s, the whole check
///            max_response_bytes = int       default 65536
/// thresholds degraded    = "duration"   default 4s
///            max         = "duration"   default 5s
///            should_fail = bool
/// schedule   frequency   = "10s" | "20s" | "30s" | "1m" | "2m" | "5m" | "10m" | "15m"
///                          | "30m" | "1h" | "2h" | "3h" | "6h" | "12h" | "24h"
///            locations | private_locations | alert_channels = ["str", ...]
///                                   at most 64 (channels: 32), each 1 to 64 ascii
///                                   letters, digits, . _ -
///            activated | muted | run_parallel | test_only = bool
///            retry = none()
///                  | single_retry(backoff = "duration", same_region = bool)
///                  | fixed(backoff = "duration", max_retries = int,
///                          max_duration = "duration", same_region = bool)
///                  | linear(...) | exponential(...)       same arguments as fixed
/// tls        tls         = "none" | "direct"
///                        | "starttls"       STARTTLS in the recipe's protocol
///            starttls    = "smtp" | "imap" | "pop3" | "ftp" | "postgres" | "mysql" | "ldap"
///            server_name = "host"
///            ca_file     = "path"  | ca_pem = "PEM text"
///            client_cert_file = "path", client_key_file = "path"
///            min_tls     = "1.2" | "1.3"
///            alpn        = ["str", ...]
///            allow_invalid = bool
///            expiry_warn_days = int, expiry_fail_days = int
///            legacy_probe = "off" | "degrade" | "fail"
///            ocsp        = "off" | "report" | "require_staple" | "query"
///            tls_policy  = "off" | "report" | "degrade" | "fail"
/// ```
///
/// - Durations are a whole number and a unit: `"250ms"`, `"5s"`, `"2m"`, `"1h"`.
/// - Text of `send`, `expect`, `read_until` and `expect_exact` keeps its escapes (`\r`,
///   `\n`, `\t`, `\0`, `\\`, `\xNN`); Rust's own escapes work too, so `"PING\r\n"` and
///   `r"PING\r\n"` send the same bytes.
/// - `retry`: `backoff` is required for every strategy but `none`, and `max_retries` for
///   `fixed`, `linear` and `exponential`; `backoff` and `max_duration` are whole
///   seconds. `max_duration` and `same_region` take the spec's defaults (600 s, `true`).
/// - `recipe`: the arguments are the recipe's fields in the spec, and the spec's
///   defaults fill those not given (`postgres` names `user = "monitor"`, `smtp` sends
///   `helo = "monitor.invalid"`); `password_env` names the environment variable holding
///   the Redis password, read where the check runs.
/// - Thresholds: `max` without `degraded` sets both thresholds to `max`. A `timeout`
///   below the default max response time (5 s) lowers `max` (and so `degraded`),
///   `connect_timeout` and `read_timeout` to it unless they are given.
/// - TLS: `tls` sets the mode; `starttls` names the protocol, and turns STARTTLS on when
///   `tls` is not given. `tls = "starttls"` alone upgrades in the recipe's protocol.
///   `ca_file` conflicts with `ca_pem`; `client_cert_file` and `client_key_file` go
///   together.
///
/// Every other rule is `monitor_spec`'s: the macro builds the `TcpMonitor` the keys
/// declare (with the function's name as its id unless `id` is given, and the name and
/// description from its doc comment) and runs `TcpMonitor::validate` on it, which
/// compiles regular expressions and decodes escapes, checks hosts, ranges, list
/// entries, thresholds against timeouts, TLS options without TLS and recipes against
/// TLS. Every problem is reported at once: unknown, repeated or conflicting keys at the
/// key; a value of the wrong type or one that does not parse at the value; and each
/// problem of the spec at the token of the key that set its field, with its spec path,
/// as in `` `degraded` (degraded_response_time_ms): is 6000 but must not be above
/// max_response_time_ms (5000) ``. What only the function body decides is checked at run
/// time by `registry::validate_all()`.
#[proc_macro_attribute]
pub fn tcp_monitor(attr: TokenStream, item: TokenStream) -> TokenStream {
    monitor(attr.into(), item.into()).into()
}

/// Declares project-wide defaults for every `#[tcp_monitor]` that leaves a key unsaid.
///
/// ```rust,standalone_crate
/// use monitor_core::prelude::*;
///
/// monitor_defaults! {
///     frequency = "5m",
///     locations = ["eu-west-1", "us-east-1"],
///     private_locations = ["office"],
///     tags = ["prod"],
///     retry = fixed(backoff = "30s", max_retries = 2),
///     alert_channels = ["ops"],
///     expiry_warn_days = 30,
///     expiry_fail_days = 7,
/// }
/// # fn main() {}
/// ```
///
/// The keys are those of [`tcp_monitor`] that `registry::Defaults` holds, with the same
/// values; they are applied to a placeholder monitor and judged by the same validation: `frequency`, `locations`, `private_locations`, `tags` (used when a
/// monitor has none), `retry`, `alert_channels`, `expiry_warn_days` and
/// `expiry_fail_days`. A binary declares its defaults once.
#[proc_macro]
pub fn monitor_defaults(input: TokenStream) -> TokenStream {
    defaults(input.into()).into()
}

/// Declares a maintenance window: the monitors it covers (by tag or id) and when it is
/// open, every week or once.
///
/// ```rust,standalone_crate
/// monitor_core::maintenance! {
///     id = "db-vacuum", name = "Weekly database vacuum",
///     tags = ["db"], monitors = ["pg-primary"],
///     days = [sunday], start = "03:00", end = "04:00",
/// }
///
/// monitor_core::maintenance! {
///     id = "xmas-freeze", tags = ["db"],
///     start = "2026-12-24T22:00:00Z", end = "2026-12-25T02:00:00Z",
/// }
///
/// fn main() {
///     let windows = monitor_core::registry::maintenance().expect("two windows");
///     let ids: Vec<&str> = windows.iter().map(|w| w.window.id.as_str()).collect();
///     assert_eq!(ids, ["db-vacuum", "xmas-freeze"]);
/// }
/// ```
///
/// # Grammar
///
/// `maintenance! { key = value, ... }`, each key at most once, in any order:
///
/// ```text
/// id       = "str"            required: 1 to 128 letters, digits and - _ . : /
/// name     = "str"            shown on the status pages; default: the id
/// tags     = ["str", ...]     monitors with any of these tags are covered (at most 64)
/// monitors = ["id", ...]      monitors with these ids are covered (at most 256)
/// days     = [monday, ...]    a weekly window: the days it opens on (1 to 7)
/// start    = "HH:MM" | "RFC 3339"   required: a UTC time of day with `days`, else an
/// end      = "HH:MM" | "RFC 3339"   instant; a weekly `end` before `start` runs past
///                                   midnight, a one-off window lasts at most 7 days
/// ```
///
/// At least one tag or monitor id is required. Every rule is `monitor_spec`'s: the macro
/// builds the `MaintenanceWindow` and runs its `problems()`, reporting each at the token
/// that set it; unknown and repeated keys are errors at the key. A binary may declare
/// several windows; `monitor_core::registry::maintenance()` lists them by id and reports
/// two windows with one id, and `validate` checks the ids they name against the monitors.
#[proc_macro]
pub fn maintenance(input: TokenStream) -> TokenStream {
    window::maintenance(input.into()).into()
}

/// `#[tcp_monitor]` on proc-macro2 tokens.
fn monitor(attr: TokenStream2, item: TokenStream2) -> TokenStream2 {
    let mut errors = Errors::default();
    let config = match Parser::parse2(parse::entries, attr) {
        Ok(entries) => {
            let config = Config::read(&entries, Macro::Monitor, &mut errors);
            config.check_keys(Span::call_site(), &mut errors);
            Some(config)
        }
        Err(e) => {
            errors.push(e);
            None
        }
    };
    let function = item::function(&item, &mut errors);
    let built = config.as_ref().map(|config| {
        let built = build::build(config, function.as_ref());
        built
            .paths
            .report(&built.monitor, Span::call_site(), &mut errors);
        built.monitor
    });
    match (errors.finish(), config, function, built) {
        (Ok(()), Some(config), Some(function), Some(built)) => {
            expand::monitor(&item, &function, &config, &built)
        }
        (result, ..) => {
            let errors = result
                .err()
                .unwrap_or_else(|| {
                    syn::Error::new(
                        Span::call_site(),
                        "`#[tcp_monitor]` could not read its arguments or its function",
                    )
                })
                .into_compile_error();
            quote!(#item #errors)
        }
    }
}

/// `monitor_defaults!` on proc-macro2 tokens: the defaults are applied to a placeholder
/// monitor and judged by the same validation.
fn defaults(input: TokenStream2) -> TokenStream2 {
    let mut errors = Errors::default();
    let expanded = Parser::parse2(parse::entries, input).and_then(|entries| {
        let config = Config::read(&entries, Macro::Defaults, &mut errors);
        let built = build::build(&config, None);
        built
            .paths
            .report(&built.monitor, Span::call_site(), &mut errors);
        std::mem::take(&mut errors)
            .finish()
            .map(|()| expand::defaults(&config, &built.monitor))
    });
    expanded.unwrap_or_else(syn::Error::into_compile_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The expansion as text, without spaces, for `contains` checks.
    fn squeeze(tokens: &TokenStream2) -> String {
        tokens.to_string().replace(' ', "")
    }

    #[test]
    fn monitor_expands_to_item_declaration_and_registration() {
        let out = squeeze(&monitor(
            quote!(host = "db", port = 5432, timeout = "3s", tags = ["a"]),
            quote!(
                /// Database answers.
                fn db(m: TcpMonitor) -> TcpMonitor {
                    m
                }
            ),
        ));
        for expected in [
            "fndb(m:TcpMonitor)->TcpMonitor{m}",
            "fn__tcp_monitor_declare_db()->::monitor_core::__private::spec::TcpMonitor",
            "::monitor_core::__private::spec::TcpMonitor::new(::monitor_core::__private::derived_id(::core::module_path!(),\"db\"),::std::string::String::from(\"db\"),5432u16)",
            "m.name=::std::string::String::from(\"Databaseanswers\");",
            "m.timeouts.total_ms=3000u32;",
            "m.max_response_time_ms=3000u32;",
            "m.timeouts.connect_ms=3000u32;",
            "explicit:&[\"host\",\"port\",\"timeout\",\"tags\"]",
            "declare:__tcp_monitor_declare_db,refine:db,",
            "::monitor_core::__private::inventory::submit!",
        ] {
            assert!(out.contains(expected), "{expected} not in {out}");
        }
        assert!(!out.contains("compile_error"), "{out}");
    }

    #[test]
    fn recipes_and_proxy_protocol_expand_to_the_spec() {
        let function = quote!(
            fn db(m: TcpMonitor) -> TcpMonitor {
                m
            }
        );
        let out = squeeze(&monitor(
            quote!(
                host = "db",
                port = 5432,
                recipe = postgres(database = "app"),
                tls = "starttls",
                proxy_protocol = "v2"
            ),
            function.clone(),
        ));
        for expected in [
            "m.proxy_protocol=::core::option::Option::Some(::monitor_core::__private::spec::ProxyProtocol::V2);",
            "m.recipe=::core::option::Option::Some(::monitor_core::__private::spec::Recipe::Postgres{user:::std::string::String::from(\"monitor\"),database:::core::option::Option::Some(::std::string::String::from(\"app\")),login:::core::option::Option::None});",
            "m.tls.mode=::monitor_core::__private::spec::TlsMode::Starttls;m.tls.starttls=::core::option::Option::Some(::monitor_core::__private::spec::StartTls::Postgres);",
        ] {
            assert!(out.contains(expected), "{expected} not in {out}");
        }
        let out = squeeze(&monitor(
            quote!(
                host = "cache",
                port = 6379,
                recipe = redis(password_env = "PW")
            ),
            function.clone(),
        ));
        let expected = "m.recipe=::core::option::Option::Some(::monitor_core::__private::spec::Recipe::Redis{password_env:::core::option::Option::Some(::std::string::String::from(\"PW\")),username:::core::option::Option::None,role:false});";
        assert!(out.contains(expected), "{expected} not in {out}");
        assert!(!out.contains("tls.mode"), "{out}");
        let out = squeeze(&monitor(
            quote!(host = "git", port = 22, recipe = ssh),
            function,
        ));
        assert!(
            out.contains("m.recipe=::core::option::Option::Some(::monitor_core::__private::spec::Recipe::Ssh);"),
            "{out}"
        );
    }

    #[test]
    fn errors_keep_the_item_and_register_nothing() {
        let out = squeeze(&monitor(
            quote!(host = "db", port = 0, bogus = 1),
            quote!(
                async fn db(m: TcpMonitor) -> TcpMonitor {
                    m
                }
            ),
        ));
        assert!(
            out.starts_with("asyncfndb(m:TcpMonitor)->TcpMonitor{m}"),
            "{out}"
        );
        assert_eq!(out.matches("compile_error!").count(), 3, "{out}");
        assert!(!out.contains("submit"), "{out}");

        let out = squeeze(&monitor(
            quote!(host = ),
            quote!(
                struct S;
            ),
        ));
        assert!(out.starts_with("structS;"), "{out}");
        assert_eq!(out.matches("compile_error!").count(), 2, "{out}");
    }

    #[test]
    fn odd_input_is_an_error_never_a_panic() {
        let function = quote!(
            fn f(m: TcpMonitor) -> TcpMonitor {
                m
            }
        );
        for attr in [
            "host =",
            "= 1",
            "host = \"a\" port = 1",
            "host = [[\"a\"]], port = 1e5",
            "host = \"a\", port = 1, retry = fixed(1, 2)",
            "host = \"a\", port = 1, retry = a::b()",
            "host = \"a\", port = 1, retry = none",
            "host = \"a\", port = 1, dialog = [send(\"a\", \"b\"), a::b(), (x)(), read_bytes(-1)]",
            "host = \"a\", port = 1, frequency = b\"5m\", tags = [r#\"x\"#, 'c']",
            "host = \"a\", port = 18446744073709551616, timeout = \"99999999999999999999ms\"",
            "host = \"a\", port = 1, degraded = \"4294967295ms\", max = \"4294967296ms\"",
            "hôst = \"a\", port = 1",
            "host = \"a\", port = 1, send = \"\\\\xé1\", expect_regex = \"\\\\p{Nope}\"",
            "host = \"a\", port = 1, name = concat!(\"a\"), id = \"\"",
            "host = \"a\", port = 1, recipe = redis(password_env), proxy_protocol = v2",
            "host = \"a\", port = 1, recipe = [redis()], tls = \"starttls\"",
            "host = \"a\", port = 1, recipe = redis::x, starttls = \"smtp\"",
        ] {
            let attr: TokenStream2 = attr.parse().unwrap_or_default();
            let out = monitor(attr, function.clone()).to_string();
            assert!(out.contains("compile_error"), "{out}");
        }
        for item in [
            "",
            "fn",
            "impl X {}",
            "fn f(self) -> TcpMonitor { self }",
            "fn café(m: TcpMonitor) -> TcpMonitor { m }",
        ] {
            let item: TokenStream2 = item.parse().unwrap_or_default();
            let out = monitor(quote!(host = "a", port = 1), item).to_string();
            assert!(out.contains("compile_error"), "{out}");
        }
        for input in [
            "frequency",
            "retry = fixed(backoff = \"1s\", max_retries = 0)",
            "tags = [\"a\",,]",
            "recipe = redis()",
            "proxy_protocol = \"v1\"",
        ] {
            let input: TokenStream2 = input.parse().unwrap_or_default();
            assert!(defaults(input).to_string().contains("compile_error"));
        }
    }

    #[test]
    fn the_function_gives_the_id_name_and_description() {
        let item: TokenStream2 = "fn café(m: TcpMonitor) -> TcpMonitor { m }"
            .parse()
            .unwrap_or_default();
        let out = monitor(quote!(host = "a", port = 1), item).to_string();
        assert!(
            out.contains("the id derived from the function name (id): `café` contains `é`"),
            "{out}"
        );
        let long = "x".repeat(600);
        let item: TokenStream2 =
            format!("#[doc = \"{long}\"] fn f(m: TcpMonitor) -> TcpMonitor {{ m }}")
                .parse()
                .unwrap_or_default();
        let out = monitor(quote!(host = "a", port = 1), item).to_string();
        for expected in [
            "the name from the doc comment (name): is longer than 255 characters",
            "the doc comment (description): is 600 characters long; at most 500 are allowed",
        ] {
            assert!(out.contains(expected), "{expected} not in {out}");
        }
    }

    #[test]
    fn defaults_expand_to_a_registration() {
        let out = squeeze(&defaults(quote!(frequency = "5m", expiry_warn_days = 20)));
        for expected in [
            "defaults.frequency=::core::option::Option::Some(::monitor_core::__private::spec::Frequency::M5);",
            "defaults.expiry_warn_days=::core::option::Option::Some(20u32);",
            "build:__monitor_defaults",
        ] {
            assert!(out.contains(expected), "{expected} not in {out}");
        }
        let out = defaults(quote!(expiry_warn_days = 1, expiry_fail_days = 2)).to_string();
        assert!(
            out.contains("`expiry_fail_days` (tls.expiry_fail_days): is 2 but must not be above tls.expiry_warn_days (1)"),
            "{out}"
        );
        let out = squeeze(&defaults(quote!(host = "x", frequency = "7m")));
        assert_eq!(out.matches("compile_error!").count(), 2, "{out}");
        assert!(!out.contains("submit"), "{out}");
    }
}
