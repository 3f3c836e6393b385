//! The spec a macro declares: the typed config applied to a real `monitor_spec`
//! `TcpMonitor`, key by key, with the spec path and span of every key recorded, so that
//! `monitor_spec`'s validation judges it and its problems land on the right tokens.

use std::convert::identity;

use syn::ext::IdentExt;

use monitor_spec::{ClientCert, PemSource, TcpMonitor, TlsMode};

use crate::calls;
use crate::config::{self, Config, Given};
use crate::item::{Function, name_from_doc};
use crate::paths::Paths;

/// The id of the placeholder monitor that `monitor_defaults!` applies its defaults to,
/// and of a monitor whose function could not be read.
const PLACEHOLDER_ID: &str = "monitor";
/// The host and port of a monitor that does not give them (an error of its own).
const PLACEHOLDER_TARGET: (&str, u16) = ("localhost", 1);

/// The spec of a macro, and where each of its fields was written.
pub(crate) struct Built {
    /// The monitor: as `#[tcp_monitor]` declares it, with its function's name for the
    /// id it derives at run time; or the placeholder with the project defaults applied.
    pub monitor: TcpMonitor,
    /// Where each field was written.
    pub paths: Paths,
}

/// Records that `key` set its path (and the paths of its parts) with `given`.
fn record<T>(paths: &mut Paths, key: &'static str, given: &Given<T>) {
    let Some(path) = config::key(key).map(|k| k.path) else {
        return;
    };
    paths.set(path, given.span, key);
    for part in &given.parts {
        let full = format!("{path}{}", part.path);
        if part.ok {
            paths.set(full, part.span, key);
        } else {
            paths.reject(full);
        }
    }
}

/// Sets fields of `$m` from keys of `$config` (`key => field`), recording each; `$wrap`
/// wraps the value (`Some` for optional fields, else `identity`).
macro_rules! apply {
    ($config:ident, $m:ident, $paths:expr, $wrap:path; $($key:ident => $($field:ident).+),* $(,)?) => {
        $(if let Some(given) = &$config.$key {
            record($paths, stringify!($key), given);
            $m.$($field).+ = $wrap(given.value.clone());
        })*
    };
}

/// Builds the monitor of `config`: for `#[tcp_monitor]` on `function`, or the defaults of
/// `monitor_defaults!` on a placeholder (`function` is `None` then, or when the item is
/// not a monitor function).
pub(crate) fn build(config: &Config, function: Option<&Function>) -> Built {
    let mut paths = Paths::default();
    for rejected in &config.rejected {
        paths.reject(*rejected);
    }
    let id = match (&config.id, function) {
        (Some(id), _) => id.value.clone(),
        (None, Some(f)) => {
            // The derived id ends with the function's name, which must suit an id.
            paths.set(
                "id",
                f.ident.span(),
                "the id derived from the function name",
            );
            f.ident.unraw().to_string()
        }
        (None, None) => PLACEHOLDER_ID.to_owned(),
    };
    let (host, port) = PLACEHOLDER_TARGET;
    let host = config.host.as_ref().map_or(host, |h| h.value.as_str());
    let port = config.port.as_ref().map_or(port, |p| p.value);
    let mut m = TcpMonitor::new(id, host, port);
    if let Some(f) = function {
        if let Some(name) = f.doc.as_deref().and_then(name_from_doc) {
            paths.set("name", f.ident.span(), "the name from the doc comment");
            m.name = name;
        }
        if let Some(doc) = &f.doc {
            paths.set("description", f.ident.span(), "the doc comment");
            m.description = Some(doc.clone());
        }
    }
    apply! { config, m, &mut paths, Some;
        description => description,
        group => group,
        proxy_protocol => proxy_protocol,
        recipe => recipe,
        server_name => tls.server_name,
    }
    apply! { config, m, &mut paths, identity;
        id => id,
        host => target.host,
        port => target.port,
        name => name,
        tags => tags,
        ip_family => target.ip_family,
        max_response_bytes => max_response_bytes,
        should_fail => should_fail,
        frequency => frequency,
        locations => locations,
        private_locations => private_locations,
        alert_channels => alert_channels,
        activated => activated,
        muted => muted,
        run_parallel => run_parallel,
        test_only => test_only,
        retry => retry,
        min_tls => tls.min_version,
        alpn => tls.alpn,
        allow_invalid => tls.allow_invalid,
        expiry_warn_days => tls.expiry_warn_days,
        expiry_fail_days => tls.expiry_fail_days,
        legacy_probe => tls.legacy_probe,
        ocsp => tls.ocsp,
        tls_policy => tls.policy,
    }
    steps(config, &mut m, &mut paths);
    limits(config, &mut m, &mut paths);
    tls(config, &mut m, &mut paths);
    Built { monitor: m, paths }
}

/// The dialog: `dialog`, or the shorthand keys `send`, `expect` and `expect_regex` in
/// that order.
fn steps(config: &Config, m: &mut TcpMonitor, paths: &mut Paths) {
    if let Some(dialog) = &config.dialog {
        record(paths, "dialog", dialog);
        m.steps.clone_from(&dialog.value);
        return;
    }
    for (key, given) in [
        ("send", &config.send),
        ("expect", &config.expect),
        ("expect_regex", &config.expect_regex),
    ] {
        if let Some(given) = given
            && let Some(step) = calls::shorthand(key, given.value.clone())
        {
            let key = config::key(key).map_or("steps", |k| k.name);
            paths.set(format!("steps[{}]", m.steps.len()), given.span, key);
            m.steps.push(step);
        }
    }
}

/// Timeouts and thresholds, with the values one derives from another: `max` without
/// `degraded` sets both thresholds, and a `timeout` shorter than the spec's default max
/// response time (or phase timeouts) lowers those it does not set.
fn limits(config: &Config, m: &mut TcpMonitor, paths: &mut Paths) {
    let short = config
        .timeout
        .as_ref()
        .is_some_and(|t| t.value < m.max_response_time_ms);
    if let Some(given) = &config.timeout {
        record(paths, "timeout", given);
        let total = given.value;
        m.timeouts.total_ms = total;
        for (default, path) in [
            (&mut m.max_response_time_ms, "max_response_time_ms"),
            (&mut m.timeouts.connect_ms, "timeouts.connect_ms"),
            (&mut m.timeouts.read_ms, "timeouts.read_ms"),
        ] {
            if total < *default {
                *default = total;
                paths.set(path, given.span, "timeout");
            }
        }
    }
    if let Some(given) = &config.max {
        record(paths, "max", given);
        m.max_response_time_ms = given.value;
    }
    let lowers_degraded = match (&config.degraded, &config.max, &config.timeout) {
        (None, Some(max), _) => Some((max, "max")),
        (None, None, Some(timeout)) if short => Some((timeout, "timeout")),
        _ => None,
    };
    if let Some((given, key)) = lowers_degraded {
        m.degraded_response_time_ms = m.max_response_time_ms;
        paths.set("degraded_response_time_ms", given.span, key);
    }
    apply! { config, m, paths, identity;
        degraded => degraded_response_time_ms,
        connect_timeout => timeouts.connect_ms,
        read_timeout => timeouts.read_ms,
    }
}

/// TLS: `tls` sets the mode, `starttls` the protocol (and the mode when `tls` is not
/// given); `tls = "starttls"` takes the recipe's protocol. The CA and the client
/// certificate are files or inline PEM as the keys say.
fn tls(config: &Config, m: &mut TcpMonitor, paths: &mut Paths) {
    if let Some(given) = &config.tls {
        record(paths, "tls", given);
        m.tls.mode = given.value;
    }
    if let Some(given) = &config.starttls {
        record(paths, "starttls", given);
        m.tls.starttls = Some(given.value);
        if config.tls.is_none() {
            m.tls.mode = TlsMode::Starttls;
            paths.set("tls.mode", given.span, "starttls");
        }
    } else if let Some(given) = config.tls.as_ref().filter(|t| t.value == TlsMode::Starttls) {
        m.tls.starttls = m.recipe.as_ref().and_then(|r| r.starttls());
        paths.set("tls.starttls", given.span, "tls");
        if config.recipe.is_none() && config.rejected.contains(&"recipe") {
            // The protocol would have been the rejected recipe's.
            paths.reject("tls.starttls");
        }
    }
    let pem = |key: &'static str, given: &Given<String>| match key {
        "ca_pem" => PemSource::Pem(given.value.clone()),
        _ => PemSource::Path(given.value.clone()),
    };
    for (key, given) in [("ca_pem", &config.ca_pem), ("ca_file", &config.ca_file)] {
        if let Some(given) = given {
            record(paths, key, given);
            m.tls.ca = Some(pem(key, given));
        }
    }
    if let (Some(cert), Some(key)) = (&config.client_cert_file, &config.client_key_file) {
        record(paths, "client_cert_file", cert);
        record(paths, "client_key_file", key);
        m.tls.client_cert = Some(ClientCert {
            cert: pem("client_cert_file", cert),
            key: pem("client_key_file", key),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Macro;
    use crate::parse::Errors;

    /// The monitor `#[tcp_monitor(input)]` builds, and the messages of every problem.
    fn built(input: &str) -> (TcpMonitor, Vec<String>) {
        let entries = match syn::parse::Parser::parse_str(crate::parse::entries, input) {
            Ok(entries) => entries,
            Err(why) => panic!("{input}: {why}"),
        };
        let mut errors = Errors::default();
        let config = Config::read(&entries, Macro::Monitor, &mut errors);
        config.check_keys(proc_macro2::Span::call_site(), &mut errors);
        let built = build(&config, None);
        built
            .paths
            .report(&built.monitor, proc_macro2::Span::call_site(), &mut errors);
        let messages = errors
            .finish()
            .err()
            .map(|e| e.into_iter().map(|e| e.to_string()).collect())
            .unwrap_or_default();
        (built.monitor, messages)
    }

    const TARGET: &str = r#"host = "cache.internal", port = 6379"#;

    #[test]
    fn thresholds_derive_from_one_another() {
        let limits = |input: &str| {
            let (m, messages) = built(&format!("{TARGET}, {input}"));
            assert_eq!(messages, Vec::<String>::new(), "{input}");
            (
                m.degraded_response_time_ms,
                m.max_response_time_ms,
                m.timeouts.total_ms,
                m.timeouts.connect_ms,
                m.timeouts.read_ms,
            )
        };
        assert_eq!(limits(""), (4000, 5000, 10000, 5000, 5000));
        assert_eq!(limits(r#"max = "1s""#), (1000, 1000, 10000, 5000, 5000));
        assert_eq!(limits(r#"max = "8s""#), (8000, 8000, 10000, 5000, 5000));
        assert_eq!(
            limits(r#"degraded = "200ms", max = "1s""#),
            (200, 1000, 10000, 5000, 5000)
        );
        assert_eq!(
            limits(r#"degraded = "200ms""#),
            (200, 5000, 10000, 5000, 5000)
        );
        assert_eq!(limits(r#"timeout = "3s""#), (3000, 3000, 3000, 3000, 3000));
        assert_eq!(
            limits(r#"timeout = "3s", degraded = "1s""#),
            (1000, 3000, 3000, 3000, 3000)
        );
        assert_eq!(
            limits(r#"timeout = "3s", max = "2s""#),
            (2000, 2000, 3000, 3000, 3000)
        );
        assert_eq!(
            limits(r#"timeout = "20s", connect_timeout = "1s""#),
            (4000, 5000, 20000, 1000, 5000)
        );
    }

    #[test]
    fn problems_name_the_key_that_set_their_field() {
        for (input, expected) in [
            (
                r#"degraded = "6s""#,
                "`degraded` (degraded_response_time_ms): is 6000 but must not be above max_response_time_ms (5000)",
            ),
            (
                r#"degraded = "4s", timeout = "3s""#,
                "`degraded` (degraded_response_time_ms): is 4000 but must not be above max_response_time_ms (3000)",
            ),
            (
                r#"max = "11s""#,
                "`max` (max_response_time_ms): is 11000 but must not be above timeouts.total_ms (10000); raise the timeout or lower the threshold",
            ),
            (
                r#"read_timeout = "6s", timeout = "5s""#,
                "`read_timeout` (timeouts.read_ms): must be between 1 and timeouts.total_ms (5000), got 6000",
            ),
            (
                r#"max_response_bytes = 10, dialog = [read_bytes(11)]"#,
                "`dialog` (steps[0].read.bytes): must be between 1 and max_response_bytes (10), got 11",
            ),
            (
                r#"tls = "direct", starttls = "smtp""#,
                "`starttls` (tls.starttls): `smtp` conflicts with tls.mode `direct`; set tls.mode to `starttls` or remove tls.starttls",
            ),
            (
                r#"alpn = ["h2"]"#,
                "`alpn` (tls.alpn): has no effect without TLS; set tls.mode to `direct` or `starttls`",
            ),
            (
                r#"tls = "direct", expiry_warn_days = 5, expiry_fail_days = 6"#,
                "`expiry_fail_days` (tls.expiry_fail_days): is 6 but must not be above tls.expiry_warn_days (5)",
            ),
            (
                r#"recipe = smtp(), starttls = "imap""#,
                "`starttls` (tls.starttls): `imap` does not match recipe `smtp`; use `smtp` or remove tls.starttls",
            ),
            (
                r#"recipe = ssh(), tls = "direct""#,
                "`tls` (tls.mode): `direct` is not possible with recipe `ssh`: the protocol never runs over TLS; use tls.mode `none`",
            ),
            (
                r#"recipe = redis(password_env = "A-B")"#,
                "`recipe` (recipe.password_env): `A-B` is not an environment variable name: use letters, digits and `_`, not starting with a digit",
            ),
            (
                r#"retry = fixed(backoff = "5m", max_retries = 2, max_duration = "1m")"#,
                "`retry` (retry.base_backoff_seconds): is 300 but must not be above retry.max_duration_seconds (60)",
            ),
            (
                r#"tags = ["a", "a"]"#,
                "`tags` (tags[1]): duplicate of tags[0] (`a`)",
            ),
            (
                r#"alert_channels = ["team,oncall"]"#,
                "`alert_channels` (alert_channels[0]): `team,oncall` is not an alert channel name: use 1 to 64 ascii letters, digits, `.`, `_` or `-`",
            ),
            (
                r#"tags = ["x\u{202e}"]"#,
                "`tags` (tags[0]): `x\\u{202e}` contains `\\u{202e}`; a tag is 1 to 64 ascii letters, digits, spaces and `-_.:/=@+`",
            ),
            (
                r#"alpn = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "n", "o", "p", "q"], tls = "direct""#,
                "`alpn` (tls.alpn): has 17 entries; at most 16 are allowed",
            ),
            (
                r#"send = "x", dialog = [read_any()]"#,
                "`send` conflicts with `dialog`; write it as the step `send(\"...\")` inside `dialog = [...]`, or drop `dialog`",
            ),
            (
                r#"tls = "direct", ca_pem = "x", ca_file = "y""#,
                "`ca_file` conflicts with `ca_pem`; give the CA certificates one way",
            ),
            (
                r#"tls = "direct", client_key_file = "k""#,
                "`client_key_file` needs `client_cert_file` too; give both or neither",
            ),
        ] {
            let (_, messages) = built(&format!("{TARGET}, {input}"));
            assert_eq!(messages, [expected], "{input}");
        }
        for input in [
            r#"degraded = "5s""#,
            r#"max = "10s""#,
            r#"timeout = "2s", degraded = "2s""#,
            r#"starttls = "smtp", alpn = ["smtp"], expiry_warn_days = 5, expiry_fail_days = 5"#,
            r#"tls = "direct", client_cert_file = "c", client_key_file = "k""#,
            r#"send = "PING\r\n", expect = "+PONG", expect_regex = "^\\+""#,
            r#"recipe = smtp(), tls = "starttls", alpn = ["smtp"]"#,
            r#"recipe = postgres(user = "probe"), starttls = "postgres""#,
            r#"recipe = redis, tls = "direct", proxy_protocol = "v2""#,
            r#"recipe = ssh(), tls = "none", proxy_protocol = "v1""#,
        ] {
            let (_, messages) = built(&format!("{TARGET}, {input}"));
            assert_eq!(messages, Vec::<String>::new(), "{input}");
        }
    }

    #[test]
    fn a_rejected_value_is_reported_once() {
        for input in [
            r#"max = "soon", degraded = "6s""#,
            r#"recipe = reddis(), tls = "starttls""#,
            r#"recipie = smtp(), tls = "starttls""#,
            r#"tls = "drect", alpn = ["h2"]"#,
            r#"retry = fixed(backof = "30s", max_retries = 2)"#,
            r#"max_response_bytes = "10", dialog = [read_bytes(11)]"#,
        ] {
            let (_, messages) = built(&format!("{TARGET}, {input}"));
            assert_eq!(messages.len(), 1, "{input}: {messages:?}");
        }
        let (_, messages) = built("hots = \"a\", port = 0");
        assert_eq!(messages.len(), 2, "{messages:?}");
        // The protocol of `tls = "starttls"` is the recipe's.
        let (m, _) = built(&format!(r#"{TARGET}, recipe = pop3(), tls = "starttls""#));
        assert_eq!(m.tls.starttls, Some(monitor_spec::StartTls::Pop3));
    }
}
