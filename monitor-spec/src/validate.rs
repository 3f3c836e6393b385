//! Validation of a [`TcpMonitor`]: every rule checked at once, each problem with its field
//! path, and the dialog compiled into a [`ValidMonitor`] the engine can run.

use std::any::Any;
use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use regex::bytes::{Regex, RegexBuilder};
use thiserror::Error;

use crate::escape::{from_hex, unescape};
use crate::limits;
use crate::rules::{
    MAX_CHANNEL_CHARS, MAX_RETRY_SECONDS, MAX_TAG_CHARS, check_channel, check_place, check_tag,
    check_text,
};
pub use crate::rules::{check_host, check_id};
use crate::spec::{
    Assertion, Comparison, Expect, IpFamily, LegacyProbe, OcspMode, Payload, PemSource, ReadUntil,
    RetryStrategy, SCHEMA_VERSION, Source, Step, TcpMonitor, TlsMode, TlsPolicy, TlsVersion,
    wire_name,
};

/// The longest total timeout a monitor may set, in milliseconds.
pub const MAX_TOTAL_TIMEOUT_MS: u32 = 300_000;
/// The largest response size cap a monitor may set, in bytes (16 MiB).
pub const MAX_RESPONSE_BYTES_LIMIT: u32 = 16 * 1024 * 1024;
/// The most dialog steps one monitor may have.
pub const MAX_STEPS: usize = 100;
/// The most assertions one monitor may have.
pub const MAX_ASSERTIONS: usize = 100;
/// The longest description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 500;
/// The longest name or group, in characters.
pub const MAX_NAME_CHARS: usize = 255;

/// One problem found in a spec.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{path}: {message}")]
pub struct ValidationError {
    /// Where the problem is, as a JSON path such as `target.port` or `steps[1].expect.regex`.
    pub path: String,
    /// What is wrong and what is allowed.
    pub message: String,
}

/// Every problem found in a spec, in field order.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub struct ValidationErrors(pub Vec<ValidationError>);

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.as_slice() {
            [one] => write!(f, "invalid monitor: {one}"),
            all => {
                write!(f, "invalid monitor, {} problems:", all.len())?;
                for e in all {
                    write!(f, "\n  {e}")?;
                }
                Ok(())
            }
        }
    }
}

/// A monitor that passed validation, with its dialog compiled. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ValidMonitor(Arc<Compiled>);

impl ValidMonitor {
    /// The spec this monitor was validated from.
    pub fn spec(&self) -> &TcpMonitor {
        &self.0.spec
    }

    /// The dialog, assertions and timeouts compiled from the spec, as the engine runs them.
    pub fn compiled(&self) -> &Compiled {
        &self.0
    }
}

/// What validation compiles from a spec: decoded bytes, compiled regexes, parsed
/// assertion targets and timeouts. Pure data; the engine runs it.
pub struct Compiled {
    /// The validated spec.
    pub spec: TcpMonitor,
    /// The dialog: the spec's steps with escapes decoded and regexes compiled.
    pub ops: Vec<Op>,
    /// The assertions with their targets parsed.
    pub assertions: Vec<Check>,
    /// `timeouts.connect_ms`.
    pub connect_timeout: Duration,
    /// `timeouts.read_ms`.
    pub read_timeout: Duration,
    /// `timeouts.total_ms`.
    pub total_timeout: Duration,
    /// Where the engine keeps what it builds from this monitor on first use (its TLS
    /// settings), so that a monitor checked again does not build it again. The spec never
    /// reads it.
    pub engine_cache: OnceLock<Arc<dyn Any + Send + Sync>>,
    /// The texts of [`Compiled::texts`], made on first use.
    texts: OnceLock<Texts>,
}

/// The texts every result of a monitor carries, made once per validated monitor and
/// shared by its results (a reference count each, no copy).
#[derive(Debug, Clone)]
pub struct Texts {
    /// The spec's id.
    pub id: Arc<str>,
    /// The spec's name.
    pub name: Arc<str>,
    /// The target as declared, `host:port` (`[v6]:port`).
    pub target: Arc<str>,
}

impl Compiled {
    /// The monitor's id, name and target as shared texts, made on first use.
    pub fn texts(&self) -> &Texts {
        self.texts.get_or_init(|| Texts {
            id: self.spec.id.as_str().into(),
            name: self.spec.name.as_str().into(),
            target: self.spec.target.to_string().into(),
        })
    }
}

impl fmt::Debug for Compiled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Compiled")
            .field("spec", &self.spec.id)
            .field("ops", &self.ops)
            .field("assertions", &self.assertions)
            .finish_non_exhaustive()
    }
}

/// A dialog step with its bytes decoded and its regex compiled.
#[derive(Debug)]
pub enum Op {
    /// Send these bytes.
    Send(Vec<u8>),
    /// Read until the response contains these bytes.
    Contains(Vec<u8>),
    /// Read until the response matches.
    Regex(Regex),
    /// Read until the response is exactly these bytes.
    Exact(Vec<u8>),
    /// Read until this delimiter.
    Delimiter(Vec<u8>),
    /// Read this many bytes.
    Bytes(usize),
    /// Read until the server closes.
    Close,
    /// Read whatever arrives first.
    Any,
}

/// An assertion with its target parsed for its comparison.
#[derive(Debug)]
pub struct Check {
    /// The assertion as declared.
    pub spec: Assertion,
    /// Its target, parsed for its comparison.
    pub target: Expected,
}

/// The target of an assertion, parsed for its comparison.
#[derive(Debug)]
pub enum Expected {
    /// No target (`is_empty`, `not_empty`).
    None,
    /// Text to compare with, as bytes.
    Text(Vec<u8>),
    /// A number to compare with.
    Number(f64),
    /// A compiled regex.
    Regex(Regex),
}

impl TcpMonitor {
    /// Checks every rule and returns the runnable monitor, or every problem at once.
    pub fn validate(&self) -> Result<ValidMonitor, ValidationErrors> {
        self.clone().into_valid()
    }

    /// [`TcpMonitor::validate`], keeping the spec itself in the runnable monitor instead
    /// of a copy (loading 100,000 monitors, the copies would double the memory).
    pub fn into_valid(mut self) -> Result<ValidMonitor, ValidationErrors> {
        let mut v = Validator::default();
        v.identity(&self);
        v.target(&self);
        let ops = v.steps(&self);
        let assertions = v.assertions(&self);
        v.limits(&self);
        v.tls(&self);
        v.recipe(&self);
        v.scheduling(&self);
        if !v.errors.is_empty() {
            return Err(ValidationErrors(v.errors));
        }
        let mut ops = ops;
        // A response assertion with nothing that reads: read whatever arrives first.
        let reads = ops.iter().any(|op| !matches!(op, Op::Send(_)));
        let needs_data = self.assertions.iter().any(|a| {
            matches!(
                a.source,
                crate::spec::Source::ResponseData | crate::spec::Source::FirstByteTime
            )
        });
        if needs_data && !reads && self.recipe.is_none() {
            ops.push(Op::Any);
        }
        if let (TlsMode::Starttls, None, Some(recipe)) =
            (self.tls.mode, self.tls.starttls, &self.recipe)
        {
            self.tls.starttls = recipe.starttls();
        }
        // Parsed vectors keep the capacity they grew to (4 for one tag): a million
        // monitors kept for their life would carry the slack.
        self.tags.shrink_to_fit();
        self.steps.shrink_to_fit();
        self.assertions.shrink_to_fit();
        self.locations.shrink_to_fit();
        self.private_locations.shrink_to_fit();
        self.alert_channels.shrink_to_fit();
        self.tls.alpn.shrink_to_fit();
        ops.shrink_to_fit();
        let mut assertions = assertions;
        assertions.shrink_to_fit();
        Ok(ValidMonitor(Arc::new(Compiled {
            connect_timeout: ms(self.timeouts.connect_ms),
            read_timeout: ms(self.timeouts.read_ms),
            total_timeout: ms(self.timeouts.total_ms),
            spec: self,
            ops,
            assertions,
            engine_cache: OnceLock::new(),
            texts: OnceLock::new(),
        })))
    }
}

fn ms(n: u32) -> Duration {
    Duration::from_millis(u64::from(n))
}

#[derive(Default)]
pub(crate) struct Validator {
    errors: Vec<ValidationError>,
}

impl Validator {
    pub(crate) fn err(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.errors.push(ValidationError {
            path: path.into(),
            message: message.into(),
        });
    }

    fn identity(&mut self, m: &TcpMonitor) {
        if m.schema_version != SCHEMA_VERSION {
            self.err(
                "schema_version",
                format!(
                    "unsupported schema version {}; this build reads version {SCHEMA_VERSION}",
                    m.schema_version
                ),
            );
        }
        if let Err(why) = check_id(&m.id) {
            self.err("id", why);
        }
        if self.name("name", &m.name, MAX_NAME_CHARS) {
            self.readable("name", &m.name, false);
        }
        if let Some(d) = &m.description {
            let n = d.chars().count();
            if n > MAX_DESCRIPTION_CHARS {
                self.err(
                    "description",
                    format!("is {n} characters long; at most {MAX_DESCRIPTION_CHARS} are allowed"),
                );
            } else {
                self.readable("description", d, true);
            }
        }
        self.names("tags", &m.tags, limits::MAX_TAGS, MAX_TAG_CHARS, check_tag);
        if let Some(g) = &m.group
            && self.name("group", g, MAX_NAME_CHARS)
        {
            self.readable("group", g, false);
        }
    }

    /// Checks that `value` is not blank, not padded and at most `max` characters; whether
    /// it is.
    fn name(&mut self, path: &str, value: &str, max: usize) -> bool {
        let problem = if value.trim().is_empty() {
            "must not be empty or blank".to_owned()
        } else if value.trim() != value {
            "must not start or end with white space".to_owned()
        } else if value.chars().nth(max).is_some() {
            format!("is longer than {max} characters")
        } else {
            return true;
        };
        self.err(path, problem);
        false
    }

    /// Refuses control and format characters in text shown to people.
    fn readable(&mut self, path: &str, value: &str, lines: bool) {
        if let Err(why) = check_text(value, lines) {
            self.err(path, why);
        }
    }

    /// A list of names: at most `max_count` of them (a longer list is one problem, its
    /// entries not looked at), each a name of at most `max` characters that `rule`
    /// accepts, none twice. Linear in the length of the list.
    fn names(
        &mut self,
        path: &str,
        values: &[String],
        max_count: usize,
        max: usize,
        rule: fn(&str) -> Result<(), String>,
    ) {
        if !self.count(path, values.len(), max_count) {
            return;
        }
        let mut first = HashMap::with_capacity(values.len());
        for (i, v) in values.iter().enumerate() {
            let here = format!("{path}[{i}]");
            if self.name(&here, v, max)
                && let Err(why) = rule(v)
            {
                self.err(&here, why);
            }
            if let Some(j) = first.get(v.as_str()) {
                // Only a short name is quoted; a long one was reported above.
                let shown: String = v.chars().take(max).collect();
                self.err(
                    here,
                    format!("duplicate of {path}[{j}] (`{}`)", shown.escape_default()),
                );
            } else {
                first.insert(v.as_str(), i);
            }
        }
    }

    /// Checks that a list of `len` entries has at most `max`; whether it has.
    fn count(&mut self, path: &str, len: usize, max: usize) -> bool {
        if len > max {
            self.err(
                path,
                format!("has {len} entries; at most {max} are allowed"),
            );
            return false;
        }
        true
    }

    fn target(&mut self, m: &TcpMonitor) {
        let t = &m.target;
        if t.port == 0 {
            self.err("target.port", "must be between 1 and 65535, got 0");
        }
        match check_host(&t.host) {
            Err(why) => self.err("target.host", why),
            Ok(Some(ip)) => {
                let clash = match (t.ip_family, ip) {
                    (IpFamily::Ipv4, IpAddr::V6(_)) => Some("ipv4"),
                    (IpFamily::Ipv6, IpAddr::V4(_)) => Some("ipv6"),
                    _ => None,
                };
                if let Some(family) = clash {
                    self.err(
                        "target.ip_family",
                        format!(
                            "is `{family}` but the host `{}` is an address of the other family; \
                             use `any` or a matching address",
                            t.host
                        ),
                    );
                }
            }
            Ok(None) => {}
        }
    }

    fn steps(&mut self, m: &TcpMonitor) -> Vec<Op> {
        if !self.count("steps", m.steps.len(), MAX_STEPS) {
            return Vec::new();
        }
        let mut ops = Vec::with_capacity(m.steps.len());
        for (i, step) in m.steps.iter().enumerate() {
            let op = match step {
                Step::Send(p) => self.payload(&format!("steps[{i}].send"), p).map(Op::Send),
                Step::Expect(Expect::Contains(text)) => self
                    .text(&format!("steps[{i}].expect.contains"), text)
                    .map(Op::Contains),
                Step::Expect(Expect::Regex(pattern)) => self
                    .regex(&format!("steps[{i}].expect.regex"), pattern)
                    .map(Op::Regex),
                Step::Expect(Expect::Exact(p)) => self
                    .payload(&format!("steps[{i}].expect.exact"), p)
                    .map(Op::Exact),
                Step::Read(ReadUntil::Delimiter(text)) => self
                    .text(&format!("steps[{i}].read.delimiter"), text)
                    .map(Op::Delimiter),
                Step::Read(ReadUntil::Bytes(n)) => {
                    if *n == 0 || *n > m.max_response_bytes {
                        self.err(
                            format!("steps[{i}].read.bytes"),
                            format!(
                                "must be between 1 and max_response_bytes ({}), got {n}",
                                m.max_response_bytes
                            ),
                        );
                        None
                    } else {
                        Some(Op::Bytes(*n as usize))
                    }
                }
                Step::Read(ReadUntil::Close) => Some(Op::Close),
                Step::Read(ReadUntil::Any) => Some(Op::Any),
            };
            ops.extend(op);
        }
        ops
    }

    fn payload(&mut self, path: &str, p: &Payload) -> Option<Vec<u8>> {
        match p {
            Payload::Text(t) => self.text(&format!("{path}.text"), t),
            Payload::Hex(h) => match from_hex(h) {
                Err(e) => {
                    self.err(format!("{path}.hex"), e.to_string());
                    None
                }
                Ok(b) if b.is_empty() => {
                    self.err(format!("{path}.hex"), "must not be empty");
                    None
                }
                Ok(b) => Some(b),
            },
        }
    }

    fn text(&mut self, path: &str, text: &str) -> Option<Vec<u8>> {
        match unescape(text) {
            Err(e) => {
                self.err(path, e.to_string());
                None
            }
            Ok(b) if b.is_empty() => {
                self.err(path, "must not be empty");
                None
            }
            Ok(b) => Some(b),
        }
    }

    fn regex(&mut self, path: &str, pattern: &str) -> Option<Regex> {
        if pattern.is_empty() {
            self.err(path, "must not be empty");
            return None;
        }
        match compile_regex(pattern) {
            Ok(re) => Some(re),
            Err(e) => {
                self.err(path, format!("is not a valid regular expression: {e}"));
                None
            }
        }
    }

    fn assertions(&mut self, m: &TcpMonitor) -> Vec<Check> {
        if !self.count("assertions", m.assertions.len(), MAX_ASSERTIONS) {
            return Vec::new();
        }
        let mut checks = Vec::with_capacity(m.assertions.len());
        for (i, a) in m.assertions.iter().enumerate() {
            let path = format!("assertions[{i}]");
            if !m
                .recipe
                .as_ref()
                .map_or(a.source.fact().is_none(), |r| r.reports(a.source))
            {
                self.err(
                    format!("{path}.source"),
                    format!(
                        "`{}` is a fact of a login, and {}; it is reported by {}",
                        wire_name(&a.source),
                        match &m.recipe {
                            None => "the monitor has no recipe".to_owned(),
                            Some(r) =>
                                format!("recipe `{}` as configured does not report it", r.name()),
                        },
                        a.source.reported_by()
                    ),
                );
                continue;
            }
            let allowed = Comparison::allowed_for(a.source);
            if !allowed.contains(&a.comparison) {
                let names: Vec<String> = allowed.iter().map(wire_name).collect();
                self.err(
                    format!("{path}.comparison"),
                    format!(
                        "`{}` does not apply to `{}`; use one of {}",
                        wire_name(&a.comparison),
                        wire_name(&a.source),
                        names.join(", ")
                    ),
                );
                continue;
            }
            let target_path = format!("{path}.target");
            let target = if !a.comparison.needs_target() {
                if !a.target.is_empty() {
                    self.err(
                        target_path,
                        format!("`{}` takes no target; remove it", wire_name(&a.comparison)),
                    );
                    continue;
                }
                Expected::None
            } else if a.source.is_numeric()
                || matches!(a.comparison, Comparison::LessThan | Comparison::GreaterThan)
            {
                // Days left go negative once a certificate expired; times never do.
                let min = if a.source == Source::TlsDaysLeft {
                    f64::MIN
                } else {
                    0.0
                };
                match a.target.trim().parse::<f64>() {
                    Ok(n) if n.is_finite() && n >= min => Expected::Number(n),
                    _ => {
                        let what = match a.source.unit() {
                            Some("days") => "a number of days".to_owned(),
                            Some(unit) => format!("a non-negative number of {unit}"),
                            None => "a non-negative number".to_owned(),
                        };
                        self.err(target_path, format!("must be {what}, got `{}`", a.target));
                        continue;
                    }
                }
            } else if a.comparison == Comparison::MatchesRegex {
                match self.regex(&target_path, &a.target) {
                    Some(re) => Expected::Regex(re),
                    None => continue,
                }
            } else if a.target.is_empty() {
                self.err(
                    target_path,
                    "must not be empty; to check for an empty response use is_empty or not_empty",
                );
                continue;
            } else {
                match unescape(&a.target) {
                    Ok(b) => Expected::Text(b),
                    Err(e) => {
                        self.err(target_path, e.to_string());
                        continue;
                    }
                }
            };
            checks.push(Check {
                spec: a.clone(),
                target,
            });
        }
        checks
    }

    fn limits(&mut self, m: &TcpMonitor) {
        let t = &m.timeouts;
        if t.total_ms == 0 || t.total_ms > MAX_TOTAL_TIMEOUT_MS {
            self.err(
                "timeouts.total_ms",
                format!(
                    "must be between 1 and {MAX_TOTAL_TIMEOUT_MS}, got {}",
                    t.total_ms
                ),
            );
        }
        for (name, value) in [("connect_ms", t.connect_ms), ("read_ms", t.read_ms)] {
            if value == 0 || value > t.total_ms {
                self.err(
                    format!("timeouts.{name}"),
                    format!(
                        "must be between 1 and timeouts.total_ms ({}), got {value}",
                        t.total_ms
                    ),
                );
            }
        }
        if m.max_response_bytes == 0 || m.max_response_bytes > MAX_RESPONSE_BYTES_LIMIT {
            self.err(
                "max_response_bytes",
                format!(
                    "must be between 1 and {MAX_RESPONSE_BYTES_LIMIT}, got {}",
                    m.max_response_bytes
                ),
            );
        }
        if m.degraded_response_time_ms > m.max_response_time_ms {
            self.err(
                "degraded_response_time_ms",
                format!(
                    "is {} but must not be above max_response_time_ms ({})",
                    m.degraded_response_time_ms, m.max_response_time_ms
                ),
            );
        }
        if m.max_response_time_ms > t.total_ms {
            self.err(
                "max_response_time_ms",
                format!(
                    "is {} but must not be above timeouts.total_ms ({}); raise the timeout or lower the threshold",
                    m.max_response_time_ms, t.total_ms
                ),
            );
        }
    }

    fn tls(&mut self, m: &TcpMonitor) {
        let t = &m.tls;
        let protocols = "smtp, imap, pop3, ftp, postgres, mysql, ldap";
        match (t.mode, t.starttls) {
            // With a recipe, its own rule says whether STARTTLS is possible (see `recipe`).
            (TlsMode::Starttls, None) if m.recipe.is_none() => self.err(
                "tls.starttls",
                format!("is required with tls.mode `starttls`; use one of {protocols}"),
            ),
            (mode @ (TlsMode::None | TlsMode::Direct), Some(p)) => self.err(
                "tls.starttls",
                format!(
                    "`{}` conflicts with tls.mode `{}`; set tls.mode to `starttls` or remove tls.starttls",
                    wire_name(&p),
                    wire_name(&mode)
                ),
            ),
            _ => {}
        }
        if t.mode == TlsMode::None {
            let set = [
                ("tls.server_name", t.server_name.is_some()),
                ("tls.ca", t.ca.is_some()),
                ("tls.client_cert", t.client_cert.is_some()),
                ("tls.alpn", !t.alpn.is_empty()),
                ("tls.allow_invalid", t.allow_invalid),
                ("tls.legacy_probe", t.legacy_probe != LegacyProbe::Off),
                ("tls.policy", t.policy != TlsPolicy::Off),
                ("tls.ocsp", t.ocsp != OcspMode::default()),
                ("tls.min_version", t.min_version != TlsVersion::default()),
            ];
            for (path, _) in set.iter().filter(|(_, on)| *on) {
                self.err(
                    *path,
                    "has no effect without TLS; set tls.mode to `direct` or `starttls`",
                );
            }
            // An over-long list was reported once already.
            let assertions = m.assertions.get(..MAX_ASSERTIONS).unwrap_or(&m.assertions);
            for (i, a) in assertions.iter().enumerate() {
                if a.source.needs_tls() {
                    self.err(
                        format!("assertions[{i}].source"),
                        format!(
                            "`{}` needs TLS; set tls.mode to `direct` or `starttls`",
                            wire_name(&a.source)
                        ),
                    );
                }
            }
        }
        if let Some(Err(why)) = t.server_name.as_deref().map(check_host) {
            self.err("tls.server_name", why);
        }
        if let Some(ca) = &t.ca {
            self.pem("tls.ca", ca, false);
        }
        if let Some(cc) = &t.client_cert {
            self.pem("tls.client_cert.cert", &cc.cert, false);
            self.pem("tls.client_cert.key", &cc.key, true);
        }
        if t.expiry_warn_days > 3650 {
            self.err(
                "tls.expiry_warn_days",
                format!("must be between 0 and 3650, got {}", t.expiry_warn_days),
            );
        }
        if t.expiry_fail_days > t.expiry_warn_days {
            self.err(
                "tls.expiry_fail_days",
                format!(
                    "is {} but must not be above tls.expiry_warn_days ({})",
                    t.expiry_fail_days, t.expiry_warn_days
                ),
            );
        }
        if !self.count("tls.alpn", t.alpn.len(), limits::MAX_ALPN) {
            return;
        }
        for (i, p) in t.alpn.iter().enumerate() {
            if p.is_empty() || p.len() > 255 {
                self.err(
                    format!("tls.alpn[{i}]"),
                    "must be 1 to 255 bytes, such as `h2` or `postgresql`",
                );
            }
        }
    }

    /// Checks inline PEM now; a path is read when the check runs, on the machine that
    /// runs it.
    fn pem(&mut self, path: &str, source: &PemSource, key: bool) {
        match source {
            PemSource::Path(p) if p.trim().is_empty() => {
                self.err(format!("{path}.path"), "must not be empty");
            }
            PemSource::Path(_) => {}
            PemSource::Pem(text) => {
                let parsed = if key {
                    crate::pem::parse_key(text).map(drop)
                } else {
                    crate::pem::parse_certs(text).map(drop)
                };
                if let Err(why) = parsed {
                    self.err(format!("{path}.pem"), why);
                }
            }
        }
    }

    fn scheduling(&mut self, m: &TcpMonitor) {
        for (path, places) in [
            ("locations", &m.locations),
            ("private_locations", &m.private_locations),
        ] {
            self.names(path, places, limits::MAX_LOCATIONS, 64, check_place);
        }
        self.names(
            "alert_channels",
            &m.alert_channels,
            limits::MAX_ALERT_CHANNELS,
            MAX_CHANNEL_CHARS,
            check_channel,
        );
        match &m.retry {
            RetryStrategy::None => {}
            RetryStrategy::SingleRetry {
                base_backoff_seconds,
                ..
            } => {
                if *base_backoff_seconds > MAX_RETRY_SECONDS {
                    self.err(
                        "retry.base_backoff_seconds",
                        format!(
                            "must be between 0 and {MAX_RETRY_SECONDS}, got {base_backoff_seconds}"
                        ),
                    );
                }
            }
            RetryStrategy::Fixed(b) | RetryStrategy::Linear(b) | RetryStrategy::Exponential(b) => {
                if !(1..=10).contains(&b.max_retries) {
                    self.err(
                        "retry.max_retries",
                        format!("must be between 1 and 10, got {}", b.max_retries),
                    );
                }
                if b.max_duration_seconds > MAX_RETRY_SECONDS {
                    self.err(
                        "retry.max_duration_seconds",
                        format!(
                            "must be between 0 and {MAX_RETRY_SECONDS}, got {}",
                            b.max_duration_seconds
                        ),
                    );
                }
                if b.max_duration_seconds <= MAX_RETRY_SECONDS
                    && b.base_backoff_seconds > b.max_duration_seconds
                {
                    self.err(
                        "retry.base_backoff_seconds",
                        format!(
                            "is {} but must not be above retry.max_duration_seconds ({})",
                            b.base_backoff_seconds, b.max_duration_seconds
                        ),
                    );
                }
            }
        }
    }
}

/// Compiles a regex in bytes mode with a size limit, as dialogs and assertions use it.
pub(crate) fn compile_regex(pattern: &str) -> Result<Regex, regex::Error> {
    RegexBuilder::new(pattern)
        .size_limit(1 << 20)
        .dfa_size_limit(1 << 20)
        .build()
}
