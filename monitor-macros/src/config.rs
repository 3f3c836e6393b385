//! The typed configuration both macros parse into: one field and one setter per key,
//! unknown and duplicate keys rejected, and the rules that span several keys.

use std::net::IpAddr;

use proc_macro2::Span;
use syn::Expr;
use syn::Ident;
use syn::ext::IdentExt;
use syn::spanned::Spanned;

use crate::calls::{self, Recipe, Retry, Step};
use crate::parse::{Entry, Errors, closest, did_you_mean};
use crate::value::{self, Choice};

use crate::rules::{
    DEFAULT_CONNECT_TIMEOUT_MS, DEFAULT_DEGRADED_RESPONSE_TIME_MS as DEFAULT_DEGRADED_MS,
    DEFAULT_KEYS, DEFAULT_MAX_RESPONSE_TIME_MS as DEFAULT_MAX_MS,
    DEFAULT_TOTAL_TIMEOUT_MS as DEFAULT_TIMEOUT_MS,
};

/// Default connect and read timeouts in milliseconds (equal in the spec's defaults).
const DEFAULT_PHASE_TIMEOUT_MS: u32 = DEFAULT_CONNECT_TIMEOUT_MS;

/// The keys that configure TLS and mean nothing without it.
const TLS_OPTIONS: [&str; 11] = [
    "server_name",
    "ca_file",
    "ca_pem",
    "client_cert_file",
    "client_key_file",
    "min_tls",
    "alpn",
    "allow_invalid",
    "expiry_warn_days",
    "expiry_fail_days",
    "legacy_probe",
];

/// A value given for a key, with the span of the value (for errors across keys).
pub(crate) struct Given<T> {
    /// The value, read.
    pub value: T,
    /// The value's span.
    pub span: Span,
}

/// Everything the attribute or `monitor_defaults!` says, one field per key.
#[derive(Default)]
pub(crate) struct Config {
    pub id: Option<Given<String>>,
    pub name: Option<Given<String>>,
    pub description: Option<Given<String>>,
    pub tags: Option<Given<Vec<String>>>,
    pub group: Option<Given<String>>,
    pub host: Option<Given<(String, Option<IpAddr>)>>,
    pub port: Option<Given<u16>>,
    pub ip_family: Option<Given<&'static Choice>>,
    pub proxy_protocol: Option<Given<&'static Choice>>,
    pub recipe: Option<Given<Recipe>>,
    pub send: Option<Given<String>>,
    pub expect: Option<Given<String>>,
    pub expect_regex: Option<Given<String>>,
    pub dialog: Option<Given<Vec<Step>>>,
    pub connect_timeout: Option<Given<u32>>,
    pub read_timeout: Option<Given<u32>>,
    pub timeout: Option<Given<u32>>,
    pub max_response_bytes: Option<Given<u32>>,
    pub degraded: Option<Given<u32>>,
    pub max: Option<Given<u32>>,
    pub should_fail: Option<Given<bool>>,
    pub frequency: Option<Given<&'static str>>,
    pub locations: Option<Given<Vec<String>>>,
    pub private_locations: Option<Given<Vec<String>>>,
    pub alert_channels: Option<Given<Vec<String>>>,
    pub activated: Option<Given<bool>>,
    pub muted: Option<Given<bool>>,
    pub run_parallel: Option<Given<bool>>,
    pub test_only: Option<Given<bool>>,
    pub retry: Option<Given<Retry>>,
    pub tls: Option<Given<&'static Choice>>,
    pub starttls: Option<Given<&'static Choice>>,
    pub server_name: Option<Given<String>>,
    pub ca_file: Option<Given<String>>,
    pub ca_pem: Option<Given<String>>,
    pub client_cert_file: Option<Given<String>>,
    pub client_key_file: Option<Given<String>>,
    pub min_tls: Option<Given<&'static Choice>>,
    pub alpn: Option<Given<Vec<String>>>,
    pub allow_invalid: Option<Given<bool>>,
    pub expiry_warn_days: Option<Given<u32>>,
    pub expiry_fail_days: Option<Given<u32>>,
    pub legacy_probe: Option<Given<&'static Choice>>,
    /// Every key given, in order, with the key as written: for `explicit` and for
    /// errors about keys whose value was itself wrong.
    pub given: Vec<(&'static str, Ident)>,
    /// The keys whose value was rejected: rules involving them are not checked, so that
    /// one mistake is not reported twice.
    rejected: Vec<&'static str>,
    /// The keys an unknown key looks like a misspelling of: not also reported missing.
    misspelled: Vec<&'static str>,
}

/// One key: its name and its setter, which reads the value and stores it.
struct Key {
    name: &'static str,
    set: fn(&mut Config, &Entry) -> syn::Result<()>,
}

/// The key table: each field of [`Config`] with the reader of its value.
macro_rules! keys {
    ($($field:ident: $read:expr),* $(,)?) => {
        &[$(Key {
            name: stringify!($field),
            set: |config, entry| {
                let value = ($read)(&entry.value, stringify!($field))?;
                config.$field = Some(Given { value, span: entry.value.span() });
                Ok(())
            },
        }),*]
    };
}

/// Every key of `#[tcp_monitor]`, in the order the documentation gives them.
const KEYS: &[Key] = keys! {
    id: value::id,
    name: value::text,
    description: value::string,
    tags: value::list,
    group: value::text,
    host: value::host,
    port: port,
    ip_family: |e, k| value::choice(e, k, value::IP_FAMILIES),
    proxy_protocol: |e, k| value::choice(e, k, value::PROXY_PROTOCOLS),
    recipe: calls::recipe,
    send: value::escaped,
    expect: value::escaped,
    expect_regex: value::regex,
    dialog: calls::dialog,
    connect_timeout: positive_duration,
    read_timeout: positive_duration,
    timeout: positive_duration,
    max_response_bytes: |e, k| value::integer_u32(e, k, 1, u32::MAX),
    degraded: value::duration_ms,
    max: value::duration_ms,
    should_fail: value::boolean,
    frequency: value::frequency,
    locations: value::list,
    private_locations: value::list,
    alert_channels: value::list,
    activated: value::boolean,
    muted: value::boolean,
    run_parallel: value::boolean,
    test_only: value::boolean,
    retry: calls::retry,
    tls: |e, k| value::choice(e, k, value::TLS_MODES),
    starttls: |e, k| value::choice(e, k, value::STARTTLS),
    server_name: value::host_name,
    ca_file: value::text,
    ca_pem: value::pem,
    client_cert_file: value::text,
    client_key_file: value::text,
    min_tls: |e, k| value::choice(e, k, value::TLS_VERSIONS),
    alpn: value::list,
    allow_invalid: value::boolean,
    expiry_warn_days: |e, k| value::integer_u32(e, k, 0, u32::MAX),
    expiry_fail_days: |e, k| value::integer_u32(e, k, 0, u32::MAX),
    legacy_probe: |e, k| value::choice(e, k, value::LEGACY_PROBES),
};

/// A TCP port, 1 to 65535.
fn port(e: &Expr, key: &str) -> syn::Result<u16> {
    let n = value::integer(e, key, 1, 65_535)?;
    u16::try_from(n).map_err(|_| syn::Error::new_spanned(e, format!("`{key}` must be 1 to 65535")))
}

/// A timeout: a duration of at least 1 ms.
fn positive_duration(e: &Expr, key: &str) -> syn::Result<u32> {
    match value::duration_ms(e, key)? {
        0 => Err(syn::Error::new_spanned(
            e,
            format!("`{key}` must be at least 1ms"),
        )),
        ms => Ok(ms),
    }
}

/// Which macro the keys are for.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Macro {
    /// `#[tcp_monitor(...)]`: every key.
    Monitor,
    /// `monitor_defaults! { ... }`: the keys of [`DEFAULT_KEYS`].
    Defaults,
}

/// The effective response time thresholds and timeouts, in milliseconds, after the
/// defaults and the rules that derive one from another.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Effective {
    pub degraded: u32,
    pub max: u32,
    pub timeout: u32,
    pub connect: u32,
    pub read: u32,
}

impl Config {
    /// Reads every entry with its key's setter. Unknown keys, keys the macro does not
    /// take and repeated keys are errors; so is every value a setter rejects.
    pub fn read(entries: &[Entry], for_macro: Macro, errors: &mut Errors) -> Config {
        let valid: Vec<&'static str> = match for_macro {
            Macro::Monitor => KEYS.iter().map(|k| k.name).collect(),
            Macro::Defaults => DEFAULT_KEYS.to_vec(),
        };
        let mut config = Config::default();
        for entry in entries {
            let name = entry.key.unraw().to_string();
            let key = KEYS.iter().find(|k| k.name == name);
            match key {
                Some(key) if valid.contains(&key.name) => {
                    if config.given.iter().any(|(seen, _)| *seen == key.name) {
                        errors.at(
                            entry.key.span(),
                            format!("duplicate key `{name}`; each key may be given once"),
                        );
                        continue;
                    }
                    config.given.push((key.name, entry.key.clone()));
                    if errors.ok((key.set)(&mut config, entry)).is_none() {
                        config.rejected.push(key.name);
                    }
                }
                Some(_) => errors.at(
                    entry.key.span(),
                    format!(
                        "`{name}` cannot be a project default; valid keys: {}",
                        valid.join(", ")
                    ),
                ),
                None => {
                    config
                        .misspelled
                        .extend(closest(&name, valid.iter().copied()));
                    errors.at(
                        entry.key.span(),
                        format!(
                            "unknown key `{name}`; {}valid keys: {}",
                            did_you_mean(&name, valid.iter().copied()),
                            valid.join(", ")
                        ),
                    );
                }
            }
        }
        config
    }

    /// The key as written, if given (even with a value that was rejected).
    fn key(&self, name: &str) -> Option<&Ident> {
        self.given.iter().find(|(n, _)| *n == name).map(|(_, k)| k)
    }

    /// Whether the key was given.
    pub fn has(&self, name: &str) -> bool {
        self.key(name).is_some()
    }

    /// Whether any of the keys was given with a value that was rejected.
    fn rejected(&self, names: &[&str]) -> bool {
        self.rejected.iter().any(|r| names.contains(r))
    }

    /// Of two given keys, the one given last.
    fn later(&self, a: &str, b: &str) -> Option<&Ident> {
        self.given
            .iter()
            .rev()
            .find(|(n, _)| *n == a || *n == b)
            .map(|(_, k)| k)
    }

    /// The thresholds and timeouts the monitor gets. Without `degraded`, a given (or
    /// derived) `max` is also the degraded threshold; a `timeout` below the default
    /// max response time (and phase timeouts) lowers those it does not set.
    pub fn effective(&self) -> Effective {
        let timeout = self.timeout.as_ref().map(|g| g.value);
        let short = timeout.filter(|t| *t < DEFAULT_MAX_MS);
        let max = self.max.as_ref().map(|g| g.value).or(short);
        let degraded = self.degraded.as_ref().map(|g| g.value).or(max);
        let short_phase = timeout.filter(|t| *t < DEFAULT_PHASE_TIMEOUT_MS);
        Effective {
            degraded: degraded.unwrap_or(DEFAULT_DEGRADED_MS),
            max: max.unwrap_or(DEFAULT_MAX_MS),
            timeout: timeout.unwrap_or(DEFAULT_TIMEOUT_MS),
            connect: self
                .connect_timeout
                .as_ref()
                .map(|g| g.value)
                .or(short_phase)
                .unwrap_or(DEFAULT_PHASE_TIMEOUT_MS),
            read: self
                .read_timeout
                .as_ref()
                .map(|g| g.value)
                .or(short_phase)
                .unwrap_or(DEFAULT_PHASE_TIMEOUT_MS),
        }
    }

    /// Whether TLS is on: `tls = "direct"`, `tls = "starttls"` or `starttls`.
    pub fn tls_on(&self) -> bool {
        self.has("starttls")
            || self
                .tls
                .as_ref()
                .is_some_and(|t| matches!(t.value.text, "direct" | "starttls"))
    }

    /// `tls`, when it is `"starttls"`.
    fn tls_starttls(&self) -> Option<&Given<&'static Choice>> {
        self.tls.as_ref().filter(|t| t.value.text == "starttls")
    }

    /// The STARTTLS protocol: the `starttls` key's, else the recipe's with
    /// `tls = "starttls"`.
    pub fn starttls_protocol(&self) -> Option<&'static Choice> {
        match (&self.starttls, self.tls_starttls(), &self.recipe) {
            (Some(protocol), _, _) => Some(protocol.value),
            (None, Some(_), Some(recipe)) => recipe.value.starttls(),
            _ => None,
        }
    }

    /// The rules of `#[tcp_monitor]` that span several keys; `attribute` is where to
    /// report a missing key.
    pub fn check_monitor(&self, attribute: Span, errors: &mut Errors) {
        for (key, example) in [("host", "host = \"db.internal\""), ("port", "port = 5432")] {
            if !self.has(key) && !self.misspelled.contains(&key) {
                errors.at(attribute, format!("missing `{key}`; add `{example}`"));
            }
        }
        self.check_target(errors);
        self.check_dialog(errors);
        self.check_limits(errors);
        self.check_tls(errors);
        self.check_recipe(errors);
        self.check_expiry(errors);
    }

    /// The rules of `monitor_defaults!` that span several keys.
    pub fn check_defaults(&self, errors: &mut Errors) {
        self.check_expiry(errors);
    }

    fn check_target(&self, errors: &mut Errors) {
        let (Some(family), Some(host)) = (&self.ip_family, &self.host) else {
            return;
        };
        let (host, ip) = &host.value;
        let clash = match (family.value.text, ip) {
            ("ipv4", Some(IpAddr::V6(_))) => Some("an IPv6"),
            ("ipv6", Some(IpAddr::V4(_))) => Some("an IPv4"),
            _ => None,
        };
        if let Some(other) = clash {
            errors.at(
                family.span,
                format!(
                    "`ip_family = \"{}\"` clashes with `host = \"{host}\"`, {other} address; use \"any\" or an address of that family",
                    family.value.text
                ),
            );
        }
    }

    fn check_dialog(&self, errors: &mut Errors) {
        if self.has("dialog") {
            for shorthand in ["send", "expect", "expect_regex"] {
                if let Some(key) = self.key(shorthand) {
                    errors.at(
                        key.span(),
                        format!(
                            "`{shorthand}` conflicts with `dialog`; write it as the step `{shorthand}(\"...\")` inside `dialog = [...]`, or drop `dialog`"
                        ),
                    );
                }
            }
        }
        let (Some(dialog), Some(cap)) = (&self.dialog, &self.max_response_bytes) else {
            // Also when either was rejected: nothing to compare.
            return;
        };
        for step in &dialog.value {
            if let Step::ReadBytes(n, site) = step
                && *n > cap.value
            {
                errors.at(
                    site.0,
                    format!(
                        "`read_bytes({n})` reads more than `max_response_bytes` ({})",
                        cap.value
                    ),
                );
            }
        }
    }

    fn check_limits(&self, errors: &mut Errors) {
        if self.rejected(&[
            "degraded",
            "max",
            "timeout",
            "connect_timeout",
            "read_timeout",
        ]) {
            return;
        }
        let effective = self.effective();
        let timeout = match &self.timeout {
            Some(t) => format!("`timeout` ({}ms)", t.value),
            None => format!("`timeout` ({DEFAULT_TIMEOUT_MS}ms by default)"),
        };
        if let Some(degraded) = &self.degraded
            && degraded.value > effective.max
        {
            let max = match (&self.max, &self.timeout) {
                (Some(m), _) => format!("`max` ({}ms)", m.value),
                (None, Some(_)) if effective.max != DEFAULT_MAX_MS => {
                    format!("`max` ({}ms, from `timeout`)", effective.max)
                }
                _ => format!("`max` ({DEFAULT_MAX_MS}ms by default)"),
            };
            errors.at(
                degraded.span,
                format!(
                    "`degraded` is {}ms but must not be above {max}; lower `degraded` or raise `max`",
                    degraded.value
                ),
            );
        }
        if let Some(max) = &self.max
            && max.value > effective.timeout
        {
            errors.at(
                max.span,
                format!(
                    "`max` is {}ms but must not be above {timeout}; lower `max` or raise `timeout`",
                    max.value
                ),
            );
        }
        for (key, phase) in [
            ("connect_timeout", &self.connect_timeout),
            ("read_timeout", &self.read_timeout),
        ] {
            if let Some(phase) = phase
                && phase.value > effective.timeout
            {
                errors.at(
                    phase.span,
                    format!(
                        "`{key}` is {}ms but must not be above {timeout}, the time for the whole check",
                        phase.value
                    ),
                );
            }
        }
    }

    fn check_tls(&self, errors: &mut Errors) {
        if let (Some(tls), Some(starttls)) = (&self.tls, &self.starttls)
            && let Some(key) = self.later("tls", "starttls")
        {
            errors.at(
                key.span(),
                format!(
                    "`tls = \"{}\"` conflicts with `starttls = \"{}\"`; `starttls` alone turns TLS on after the plain-text upgrade, so drop `tls`",
                    tls.value.text, starttls.value.text
                ),
            );
        }
        if let Some(tls) = self.tls_starttls()
            && !self.has("starttls")
            && !self.has("recipe")
            && !self.misspelled.contains(&"recipe")
        {
            errors.at(
                tls.span,
                format!(
                    "`tls = \"starttls\"` takes its protocol from `recipe`, and there is none; name the protocol with `starttls = \"...\"` instead (one of {}), or add a recipe such as `recipe = smtp()`",
                    value::STARTTLS
                        .iter()
                        .map(|c| c.text)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
        }
        if self.has("ca_file")
            && self.has("ca_pem")
            && let Some(key) = self.later("ca_file", "ca_pem")
        {
            errors.at(
                key.span(),
                "`ca_file` conflicts with `ca_pem`; give the CA certificates one way",
            );
        }
        for (given, needed) in [
            ("client_cert_file", "client_key_file"),
            ("client_key_file", "client_cert_file"),
        ] {
            if let (Some(key), false) = (self.key(given), self.has(needed)) {
                errors.at(
                    key.span(),
                    format!("`{given}` needs `{needed}` too; give both or neither"),
                );
            }
        }
        if !self.tls_on() && !self.rejected(&["tls", "starttls"]) {
            for option in TLS_OPTIONS {
                if let Some(key) = self.key(option) {
                    errors.at(
                        key.span(),
                        format!(
                            "`{option}` has no effect without TLS; add `tls = \"direct\"` or `starttls = \"...\"`"
                        ),
                    );
                }
            }
        }
    }

    /// The recipe against the TLS keys: STARTTLS only in the recipe's own protocol, and
    /// direct TLS only for a protocol that runs over TLS.
    fn check_recipe(&self, errors: &mut Errors) {
        let Some(recipe) = &self.recipe else {
            return;
        };
        let recipe = &recipe.value;
        let name = recipe.name();
        match (recipe.starttls(), self.tls_starttls(), &self.starttls) {
            (None, Some(tls), _) => {
                let instead = if recipe.allows_direct_tls() {
                    "use `tls = \"direct\"` or drop `tls`"
                } else {
                    "drop `tls`"
                };
                errors.at(
                    tls.span,
                    format!(
                        "`tls = \"starttls\"` is not possible with recipe `{name}`: the protocol has no STARTTLS; {instead}"
                    ),
                );
            }
            (None, None, Some(protocol)) => {
                let instead = if recipe.allows_direct_tls() {
                    "use `tls = \"direct\"` instead, or drop `starttls`"
                } else {
                    "drop `starttls`"
                };
                errors.at(
                    protocol.span,
                    format!(
                        "`starttls = \"{}\"` is not possible with recipe `{name}`: the protocol has no STARTTLS; {instead}",
                        protocol.value.text
                    ),
                );
            }
            (Some(own), _, Some(protocol)) if protocol.value != own => errors.at(
                protocol.span,
                format!(
                    "`starttls = \"{}\"` does not match recipe `{name}`; use `starttls = \"{}\"`, or `tls = \"starttls\"` for the recipe's own",
                    protocol.value.text, own.text
                ),
            ),
            _ => {}
        }
        if let Some(tls) = &self.tls
            && tls.value.text == "direct"
            && !recipe.allows_direct_tls()
        {
            errors.at(
                tls.span,
                format!(
                    "`tls = \"direct\"` is not possible with recipe `{name}`: the protocol never runs over TLS; use `tls = \"none\"` or drop `tls`"
                ),
            );
        }
    }

    fn check_expiry(&self, errors: &mut Errors) {
        if let (Some(warn), Some(fail)) = (&self.expiry_warn_days, &self.expiry_fail_days)
            && fail.value > warn.value
        {
            errors.at(
                fail.span,
                format!(
                    "`expiry_fail_days` is {} but must not be above `expiry_warn_days` ({})",
                    fail.value, warn.value
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads `input` as the arguments of `#[tcp_monitor]`, checks them, and compares
    /// what `summary` makes of the config, or the error messages, with `expected`.
    fn check<T: std::fmt::Debug + PartialEq>(
        input: &str,
        summary: impl Fn(&Config) -> T,
        expected: Result<T, &[&str]>,
    ) {
        let entries = match syn::parse::Parser::parse_str(crate::parse::entries, input) {
            Ok(entries) => entries,
            Err(why) => panic!("{input}: {why}"),
        };
        let mut errors = Errors::default();
        let config = Config::read(&entries, Macro::Monitor, &mut errors);
        config.check_monitor(Span::call_site(), &mut errors);
        let got = errors
            .finish()
            .map(|()| summary(&config))
            .map_err(|e| e.into_iter().map(|e| e.to_string()).collect::<Vec<_>>());
        let expected = expected.map_err(|m| m.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(got, expected, "{input}");
    }

    const TARGET: &str = r#"host = "cache.internal", port = 6379"#;

    fn effective(input: &str, expected: Effective) {
        check(
            &format!("{TARGET}, {input}"),
            Config::effective,
            Ok(expected),
        );
    }

    #[test]
    fn effective_thresholds() {
        let e = |degraded, max, timeout, connect, read| Effective {
            degraded,
            max,
            timeout,
            connect,
            read,
        };
        effective("", e(4000, 5000, 10000, 5000, 5000));
        effective(r#"max = "1s""#, e(1000, 1000, 10000, 5000, 5000));
        effective(r#"max = "8s""#, e(8000, 8000, 10000, 5000, 5000));
        effective(
            r#"degraded = "200ms", max = "1s""#,
            e(200, 1000, 10000, 5000, 5000),
        );
        effective(r#"degraded = "200ms""#, e(200, 5000, 10000, 5000, 5000));
        effective(r#"timeout = "3s""#, e(3000, 3000, 3000, 3000, 3000));
        effective(
            r#"timeout = "3s", degraded = "1s""#,
            e(1000, 3000, 3000, 3000, 3000),
        );
        effective(
            r#"timeout = "3s", max = "2s""#,
            e(2000, 2000, 3000, 3000, 3000),
        );
        effective(
            r#"timeout = "20s", connect_timeout = "1s""#,
            e(4000, 5000, 20000, 1000, 5000),
        );
    }

    #[test]
    fn keys() {
        let given = |c: &Config| c.given.iter().map(|(n, _)| *n).collect::<Vec<_>>();
        check(TARGET, given, Ok(vec!["host", "port"]));
        check(r#"r#host = "a", port = 1"#, given, Ok(vec!["host", "port"]));
        check(
            r#"host = "a", hots = "b", port = 1, port = 2, type = 3"#,
            given,
            Err(&[
                "unknown key `hots`; did you mean `host`? valid keys: id, name, description, tags, group, host, port, ip_family, proxy_protocol, recipe, send, expect, expect_regex, dialog, connect_timeout, read_timeout, timeout, max_response_bytes, degraded, max, should_fail, frequency, locations, private_locations, alert_channels, activated, muted, run_parallel, test_only, retry, tls, starttls, server_name, ca_file, ca_pem, client_cert_file, client_key_file, min_tls, alpn, allow_invalid, expiry_warn_days, expiry_fail_days, legacy_probe",
                "duplicate key `port`; each key may be given once",
                "unknown key `type`; valid keys: id, name, description, tags, group, host, port, ip_family, proxy_protocol, recipe, send, expect, expect_regex, dialog, connect_timeout, read_timeout, timeout, max_response_bytes, degraded, max, should_fail, frequency, locations, private_locations, alert_channels, activated, muted, run_parallel, test_only, retry, tls, starttls, server_name, ca_file, ca_pem, client_cert_file, client_key_file, min_tls, alpn, allow_invalid, expiry_warn_days, expiry_fail_days, legacy_probe",
            ]),
        );
        check(
            "",
            given,
            Err(&[
                "missing `host`; add `host = \"db.internal\"`",
                "missing `port`; add `port = 5432`",
            ]),
        );
        // A misspelled key is reported once: unknown, not also missing.
        check(
            r#"hots = "a", port = 1"#,
            given,
            Err(&[
                "unknown key `hots`; did you mean `host`? valid keys: id, name, description, tags, group, host, port, ip_family, proxy_protocol, recipe, send, expect, expect_regex, dialog, connect_timeout, read_timeout, timeout, max_response_bytes, degraded, max, should_fail, frequency, locations, private_locations, alert_channels, activated, muted, run_parallel, test_only, retry, tls, starttls, server_name, ca_file, ca_pem, client_cert_file, client_key_file, min_tls, alpn, allow_invalid, expiry_warn_days, expiry_fail_days, legacy_probe",
            ]),
        );
        // A rejected value does not feed the rules across keys.
        check(
            r#"host = "a", port = 1, max = "soon", degraded = "6s""#,
            given,
            Err(&[
                "invalid `max`: `soon` is not a duration; write a whole number followed by ms, s, m or h, such as 250ms, 5s or 2m",
            ]),
        );
        // A key whose value is wrong is not also missing.
        check(
            r#"host = "", port = 0"#,
            given,
            Err(&[
                "invalid `host`: must not be empty; use a DNS name (letters, digits, `-`, `_`, dots), an IPv4 address or an IPv6 address without brackets",
                "`port` must be 1 to 65535, got 0",
            ]),
        );
    }

    #[test]
    fn cross_key_rules() {
        let ok = |_: &Config| ();
        for (input, expected) in [
            (
                r#"degraded = "6s""#,
                "`degraded` is 6000ms but must not be above `max` (5000ms by default); lower `degraded` or raise `max`",
            ),
            (
                r#"degraded = "2s", max = "1s""#,
                "`degraded` is 2000ms but must not be above `max` (1000ms); lower `degraded` or raise `max`",
            ),
            (
                r#"degraded = "4s", timeout = "3s""#,
                "`degraded` is 4000ms but must not be above `max` (3000ms, from `timeout`); lower `degraded` or raise `max`",
            ),
            (
                r#"max = "11s""#,
                "`max` is 11000ms but must not be above `timeout` (10000ms by default); lower `max` or raise `timeout`",
            ),
            (
                r#"max = "6s", timeout = "5s""#,
                "`max` is 6000ms but must not be above `timeout` (5000ms); lower `max` or raise `timeout`",
            ),
            (
                r#"read_timeout = "6s", timeout = "5s""#,
                "`read_timeout` is 6000ms but must not be above `timeout` (5000ms), the time for the whole check",
            ),
            (r#"host = "::1", ip_family = "ipv4""#, ""),
            (
                r#"send = "x", dialog = [read_any()]"#,
                "`send` conflicts with `dialog`; write it as the step `send(\"...\")` inside `dialog = [...]`, or drop `dialog`",
            ),
            (
                r#"max_response_bytes = 10, dialog = [read_bytes(11)]"#,
                "`read_bytes(11)` reads more than `max_response_bytes` (10)",
            ),
            (
                r#"tls = "direct", starttls = "smtp""#,
                "`tls = \"direct\"` conflicts with `starttls = \"smtp\"`; `starttls` alone turns TLS on after the plain-text upgrade, so drop `tls`",
            ),
            (
                r#"tls = "direct", ca_pem = "x", ca_file = "y""#,
                "`ca_file` conflicts with `ca_pem`; give the CA certificates one way",
            ),
            (
                r#"tls = "direct", client_key_file = "k""#,
                "`client_key_file` needs `client_cert_file` too; give both or neither",
            ),
            (
                r#"alpn = ["h2"]"#,
                "`alpn` has no effect without TLS; add `tls = \"direct\"` or `starttls = \"...\"`",
            ),
            (
                r#"tls = "none", min_tls = "1.3""#,
                "`min_tls` has no effect without TLS; add `tls = \"direct\"` or `starttls = \"...\"`",
            ),
            (
                r#"tls = "direct", expiry_warn_days = 5, expiry_fail_days = 6"#,
                "`expiry_fail_days` is 6 but must not be above `expiry_warn_days` (5)",
            ),
            (
                r#"tls = "starttls""#,
                "`tls = \"starttls\"` takes its protocol from `recipe`, and there is none; name the protocol with `starttls = \"...\"` instead (one of smtp, imap, pop3, ftp, postgres, mysql, ldap), or add a recipe such as `recipe = smtp()`",
            ),
            (
                r#"recipe = redis(), tls = "starttls""#,
                "`tls = \"starttls\"` is not possible with recipe `redis`: the protocol has no STARTTLS; use `tls = \"direct\"` or drop `tls`",
            ),
            (
                r#"recipe = ssh, tls = "starttls""#,
                "`tls = \"starttls\"` is not possible with recipe `ssh`: the protocol has no STARTTLS; drop `tls`",
            ),
            (
                r#"starttls = "smtp", recipe = memcached"#,
                "`starttls = \"smtp\"` is not possible with recipe `memcached`: the protocol has no STARTTLS; use `tls = \"direct\"` instead, or drop `starttls`",
            ),
            (
                r#"recipe = smtp(), starttls = "imap""#,
                "`starttls = \"imap\"` does not match recipe `smtp`; use `starttls = \"smtp\"`, or `tls = \"starttls\"` for the recipe's own",
            ),
            (
                r#"recipe = ssh(), tls = "direct""#,
                "`tls = \"direct\"` is not possible with recipe `ssh`: the protocol never runs over TLS; use `tls = \"none\"` or drop `tls`",
            ),
            (
                r#"recipe = smtp(), tls = "starttls", starttls = "smtp""#,
                "`tls = \"starttls\"` conflicts with `starttls = \"smtp\"`; `starttls` alone turns TLS on after the plain-text upgrade, so drop `tls`",
            ),
        ] {
            if input.starts_with("host") {
                check(
                    &format!("{input}, port = 1"),
                    ok,
                    Err(&[
                        "`ip_family = \"ipv4\"` clashes with `host = \"::1\"`, an IPv6 address; use \"any\" or an address of that family",
                    ]),
                );
            } else {
                check(&format!("{TARGET}, {input}"), ok, Err(&[expected]));
            }
        }
        for input in [
            r#"degraded = "5s""#,
            r#"max = "10s""#,
            r#"timeout = "2s", degraded = "2s""#,
            r#"starttls = "smtp", alpn = ["smtp"], expiry_warn_days = 5, expiry_fail_days = 5"#,
            r#"tls = "direct", client_cert_file = "c", client_key_file = "k", ca_pem = "x""#,
            r#"send = "PING\r\n", expect = "+PONG", expect_regex = "^\\+""#,
            r#"recipe = smtp(), tls = "starttls", alpn = ["smtp"]"#,
            r#"recipe = postgres(user = "probe"), starttls = "postgres""#,
            r#"recipe = redis, tls = "direct", proxy_protocol = "v2""#,
            r#"recipe = ssh(), tls = "none", proxy_protocol = "v1""#,
        ] {
            check(&format!("{TARGET}, {input}"), ok, Ok(()));
        }
        // A rejected recipe or a misspelled `recipe` key is not also missing.
        for input in [
            r#"recipe = reddis(), tls = "starttls""#,
            r#"recipie = smtp(), tls = "starttls""#,
        ] {
            let entries =
                syn::parse::Parser::parse_str(crate::parse::entries, &format!("{TARGET}, {input}"));
            let Ok(entries) = entries else {
                panic!("{input}");
            };
            let mut errors = Errors::default();
            let config = Config::read(&entries, Macro::Monitor, &mut errors);
            config.check_monitor(Span::call_site(), &mut errors);
            let count = errors.finish().err().map_or(0, |e| e.into_iter().count());
            assert_eq!(count, 1, "{input}");
        }
        // The protocol of `tls = "starttls"` is the recipe's.
        check(
            &format!(r#"{TARGET}, recipe = pop3(), tls = "starttls""#),
            |c| c.starttls_protocol().map(|p| p.variant),
            Ok(Some("Pop3")),
        );
    }

    #[test]
    fn defaults_take_only_their_keys() {
        let entries = syn::parse::Parser::parse_str(
            crate::parse::entries,
            r#"frequency = "5m", host = "a", frequncy = "1m", expiry_warn_days = 1, expiry_fail_days = 2"#,
        );
        let Ok(entries) = entries else {
            panic!("syntax");
        };
        let mut errors = Errors::default();
        let config = Config::read(&entries, Macro::Defaults, &mut errors);
        config.check_defaults(&mut errors);
        let messages: Vec<String> = errors
            .finish()
            .err()
            .map(|e| e.into_iter().map(|e| e.to_string()).collect())
            .unwrap_or_default();
        let keys = "valid keys: frequency, locations, private_locations, tags, retry, alert_channels, expiry_warn_days, expiry_fail_days";
        assert_eq!(
            messages,
            [
                format!("`host` cannot be a project default; {keys}"),
                format!("unknown key `frequncy`; did you mean `frequency`? {keys}"),
                "`expiry_fail_days` is 2 but must not be above `expiry_warn_days` (1)".to_owned(),
            ]
        );
    }
}
