//! The typed configuration both macros parse into: one field and one setter per key,
//! each value read into its `monitor_spec` type, unknown and duplicate keys rejected, and
//! the spec path each key sets.

use proc_macro2::Span;
use syn::Ident;
use syn::ext::IdentExt;
use syn::spanned::Spanned;

use monitor_spec::rules::DEFAULT_KEYS;
use monitor_spec::{
    Frequency, IpFamily, LegacyProbe, OcspMode, ProxyProtocol, Recipe, RetryStrategy, StartTls,
    Step, TlsMode, TlsPolicy, TlsVersion,
};

use crate::calls;
use crate::parse::{Entry, Errors, closest, unknown_key};
use crate::value::{self, AS_JSON, Part, Read, TLS_VERSION};

/// A value given for a key, with the span of the value and of its parts.
pub(crate) struct Given<T> {
    /// The value, read.
    pub value: T,
    /// The value's span.
    pub span: Span,
    /// Where its parts are written, relative to the key's path.
    pub parts: Vec<Part>,
}

/// Everything the attribute or `monitor_defaults!` says, one field per key.
#[derive(Default)]
pub(crate) struct Config {
    pub id: Option<Given<String>>,
    pub name: Option<Given<String>>,
    pub description: Option<Given<String>>,
    pub tags: Option<Given<Vec<String>>>,
    pub group: Option<Given<String>>,
    pub host: Option<Given<String>>,
    pub port: Option<Given<u16>>,
    pub ip_family: Option<Given<IpFamily>>,
    pub proxy_protocol: Option<Given<ProxyProtocol>>,
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
    pub frequency: Option<Given<Frequency>>,
    pub locations: Option<Given<Vec<String>>>,
    pub private_locations: Option<Given<Vec<String>>>,
    pub alert_channels: Option<Given<Vec<String>>>,
    pub activated: Option<Given<bool>>,
    pub muted: Option<Given<bool>>,
    pub run_parallel: Option<Given<bool>>,
    pub test_only: Option<Given<bool>>,
    pub retry: Option<Given<RetryStrategy>>,
    pub tls: Option<Given<TlsMode>>,
    pub starttls: Option<Given<StartTls>>,
    pub server_name: Option<Given<String>>,
    pub ca_file: Option<Given<String>>,
    pub ca_pem: Option<Given<String>>,
    pub client_cert_file: Option<Given<String>>,
    pub client_key_file: Option<Given<String>>,
    pub min_tls: Option<Given<TlsVersion>>,
    pub alpn: Option<Given<Vec<String>>>,
    pub allow_invalid: Option<Given<bool>>,
    pub expiry_warn_days: Option<Given<u32>>,
    pub expiry_fail_days: Option<Given<u32>>,
    pub legacy_probe: Option<Given<LegacyProbe>>,
    pub ocsp: Option<Given<OcspMode>>,
    pub tls_policy: Option<Given<TlsPolicy>>,
    /// Every key given, in order, with the key as written: for `explicit` and for
    /// errors about keys.
    pub given: Vec<(&'static str, Ident)>,
    /// The spec paths of the keys whose value was rejected, and of those an unknown key
    /// looks like a misspelling of: the spec holds a placeholder there.
    pub rejected: Vec<&'static str>,
}

/// One key: its name, the spec path it sets, and its setter, which reads the value and
/// stores it (`false` when it was rejected).
pub(crate) struct Key {
    pub name: &'static str,
    pub path: &'static str,
    set: fn(&mut Config, &Entry, &mut Errors) -> bool,
}

/// The key table: each field of [`Config`] with the spec path it sets and the reader of
/// its value, `plain` (a `syn::Result`) or `parts` (a [`Read`] with its parts).
macro_rules! keys {
    ($($field:ident @ $path:literal: $kind:ident $read:expr),* $(,)?) => {
        &[$(Key {
            name: stringify!($field),
            path: $path,
            set: |config, entry, errors| {
                let read = keys!(@$kind $read, entry, stringify!($field), errors);
                let span = entry.value.span();
                read.map(|Read { value, parts }| {
                    config.$field = Some(Given { value, span, parts });
                })
                .is_some()
            },
        }),*]
    };
    (@plain $read:expr, $entry:ident, $key:expr, $errors:ident) => {
        $errors.ok(($read)(&$entry.value, $key)).map(Read::whole)
    };
    (@parts $read:expr, $entry:ident, $key:expr, $errors:ident) => {
        ($read)(&$entry.value, $key, $errors)
    };
}

/// Every key of `#[tcp_monitor]`, in the order the documentation gives them.
pub(crate) const KEYS: &[Key] = keys! {
    id @ "id": plain value::string,
    name @ "name": plain value::string,
    description @ "description": plain value::string,
    tags @ "tags": parts value::list,
    group @ "group": plain value::string,
    host @ "target.host": plain value::string,
    port @ "target.port": plain value::integer_u16,
    ip_family @ "target.ip_family": plain |e, k| value::choice(e, k, &AS_JSON),
    proxy_protocol @ "proxy_protocol": plain |e, k| value::choice(e, k, &AS_JSON),
    recipe @ "recipe": parts calls::recipe,
    send @ "steps": plain value::string,
    expect @ "steps": plain value::string,
    expect_regex @ "steps": plain value::string,
    dialog @ "steps": parts calls::dialog,
    connect_timeout @ "timeouts.connect_ms": plain value::duration_ms,
    read_timeout @ "timeouts.read_ms": plain value::duration_ms,
    timeout @ "timeouts.total_ms": plain value::duration_ms,
    max_response_bytes @ "max_response_bytes": plain value::integer_u32,
    degraded @ "degraded_response_time_ms": plain value::duration_ms,
    max @ "max_response_time_ms": plain value::duration_ms,
    should_fail @ "should_fail": plain value::boolean,
    frequency @ "frequency": plain value::frequency,
    locations @ "locations": parts value::list,
    private_locations @ "private_locations": parts value::list,
    alert_channels @ "alert_channels": parts value::list,
    activated @ "activated": plain value::boolean,
    muted @ "muted": plain value::boolean,
    run_parallel @ "run_parallel": plain value::boolean,
    test_only @ "test_only": plain value::boolean,
    retry @ "retry": parts calls::retry,
    tls @ "tls.mode": plain |e, k| value::choice(e, k, &AS_JSON),
    starttls @ "tls.starttls": plain |e, k| value::choice(e, k, &AS_JSON),
    server_name @ "tls.server_name": plain value::string,
    ca_file @ "tls.ca": plain value::string,
    ca_pem @ "tls.ca": plain value::string,
    client_cert_file @ "tls.client_cert.cert": plain value::string,
    client_key_file @ "tls.client_cert.key": plain value::string,
    min_tls @ "tls.min_version": plain |e, k| value::choice(e, k, &TLS_VERSION),
    alpn @ "tls.alpn": parts value::list,
    allow_invalid @ "tls.allow_invalid": plain value::boolean,
    expiry_warn_days @ "tls.expiry_warn_days": plain value::integer_u32,
    expiry_fail_days @ "tls.expiry_fail_days": plain value::integer_u32,
    legacy_probe @ "tls.legacy_probe": plain |e, k| value::choice(e, k, &AS_JSON),
    ocsp @ "tls.ocsp": plain |e, k| value::choice(e, k, &AS_JSON),
    tls_policy @ "tls.policy": plain |e, k| value::choice(e, k, &AS_JSON),
};

/// The entry of `KEYS` for a key name.
pub(crate) fn key(name: &str) -> Option<&'static Key> {
    KEYS.iter().find(|k| k.name == name)
}

/// Which macro the keys are for.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Macro {
    /// `#[tcp_monitor(...)]`: every key.
    Monitor,
    /// `monitor_defaults! { ... }`: the keys of [`DEFAULT_KEYS`].
    Defaults,
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
            match key(&name) {
                Some(key) if valid.contains(&key.name) => {
                    if config.has(key.name) {
                        errors.at(
                            entry.key.span(),
                            format!("duplicate key `{name}`; each key may be given once"),
                        );
                        continue;
                    }
                    config.given.push((key.name, entry.key.clone()));
                    if !(key.set)(&mut config, entry, errors) {
                        config.rejected.push(key.path);
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
                    let near = closest(&name, valid.iter().copied());
                    config.rejected.extend(near.and_then(key).map(|k| k.path));
                    errors.at(entry.key.span(), unknown_key(&name, &valid));
                }
            }
        }
        config
    }

    /// The key as written, if given (even with a value that was rejected).
    pub fn key(&self, name: &str) -> Option<&Ident> {
        self.given.iter().find(|(n, _)| *n == name).map(|(_, k)| k)
    }

    /// Whether the key was given.
    pub fn has(&self, name: &str) -> bool {
        self.key(name).is_some()
    }

    /// Whether the key was given, or an unknown key looks like a misspelling of it.
    fn meant(&self, name: &str) -> bool {
        self.has(name) || key(name).is_some_and(|k| self.rejected.contains(&k.path))
    }

    /// Of two given keys, the one given last.
    fn later(&self, a: &str, b: &str) -> Option<&Ident> {
        self.given
            .iter()
            .rev()
            .find(|(n, _)| *n == a || *n == b)
            .map(|(_, k)| k)
    }

    /// The rules of the keys themselves, not of the monitor they declare: `host` and
    /// `port` are required, two keys may not set one field, and a client certificate
    /// comes with its key. `attribute` is where to report a missing key.
    pub fn check_keys(&self, attribute: Span, errors: &mut Errors) {
        for (key, example) in [("host", "host = \"db.internal\""), ("port", "port = 5432")] {
            if !self.meant(key) {
                errors.at(attribute, format!("missing `{key}`; add `{example}`"));
            }
        }
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
            if let (Some(key), false) = (self.key(given), self.meant(needed)) {
                errors.at(
                    key.span(),
                    format!("`{given}` needs `{needed}` too; give both or neither"),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The keys given, or the messages of every problem with the keys.
    fn keys(input: &str, for_macro: Macro) -> Result<Vec<&'static str>, Vec<String>> {
        let entries = match syn::parse::Parser::parse_str(crate::parse::entries, input) {
            Ok(entries) => entries,
            Err(why) => panic!("{input}: {why}"),
        };
        let mut errors = Errors::default();
        let config = Config::read(&entries, for_macro, &mut errors);
        if for_macro == Macro::Monitor {
            config.check_keys(Span::call_site(), &mut errors);
        }
        errors
            .finish()
            .map(|()| config.given.iter().map(|(n, _)| *n).collect())
            .map_err(|e| e.into_iter().map(|e| e.to_string()).collect())
    }

    const VALID: &str = "valid keys: id, name, description, tags, group, host, port, ip_family, proxy_protocol, recipe, send, expect, expect_regex, dialog, connect_timeout, read_timeout, timeout, max_response_bytes, degraded, max, should_fail, frequency, locations, private_locations, alert_channels, activated, muted, run_parallel, test_only, retry, tls, starttls, server_name, ca_file, ca_pem, client_cert_file, client_key_file, min_tls, alpn, allow_invalid, expiry_warn_days, expiry_fail_days, legacy_probe, ocsp, tls_policy";

    #[test]
    fn unknown_repeated_and_missing_keys() {
        assert_eq!(
            keys(r#"r#host = "a", port = 1"#, Macro::Monitor),
            Ok(vec!["host", "port"])
        );
        assert_eq!(
            keys(
                r#"host = "a", hots = "b", port = 1, port = 2, type = 3"#,
                Macro::Monitor
            ),
            Err(vec![
                format!("unknown key `hots`; did you mean `host`? {VALID}"),
                "duplicate key `port`; each key may be given once".to_owned(),
                format!("unknown key `type`; {VALID}"),
            ])
        );
        assert_eq!(
            keys("", Macro::Monitor),
            Err(vec![
                "missing `host`; add `host = \"db.internal\"`".to_owned(),
                "missing `port`; add `port = 5432`".to_owned(),
            ])
        );
        // A misspelled key is reported once: unknown, not also missing.
        assert_eq!(
            keys(r#"hots = "a", port = 1"#, Macro::Monitor),
            Err(vec![format!(
                "unknown key `hots`; did you mean `host`? {VALID}"
            )])
        );
        // A key whose value is wrong is not also missing.
        assert_eq!(
            keys(r#"host = 1, port = "1""#, Macro::Monitor),
            Err(vec![
                "expected a string for `host`, found an integer".to_owned(),
                "expected an integer for `port`, found a string".to_owned(),
            ])
        );
    }

    #[test]
    fn defaults_take_only_their_keys() {
        let valid = "valid keys: frequency, locations, private_locations, tags, retry, alert_channels, expiry_warn_days, expiry_fail_days";
        assert_eq!(
            keys(
                r#"frequency = "5m", host = "a", frequncy = "1m""#,
                Macro::Defaults
            ),
            Err(vec![
                format!("`host` cannot be a project default; {valid}"),
                format!("unknown key `frequncy`; did you mean `frequency`? {valid}"),
            ])
        );
    }
}
