//! The typed TCP monitor spec: everything one monitor declares, in the stable JSON form
//! that `export` writes and the control plane receives.
//!
//! A [`TcpMonitor`] is plain data. It becomes runnable only through
//! [`TcpMonitor::validate`](crate::validate), which checks every rule at once and compiles
//! the dialog into a [`ValidMonitor`](crate::ValidMonitor).

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use crate::assertion::{
    Assertion, AssertionSource, Comparison, Source, connect_time, entry_count, first_byte_time, ms,
    query_value, read_only, replication_lag, response_data, response_time, role, seconds,
    tls_cipher, tls_days_left, tls_issuer, tls_san, tls_subject, tls_version, writable,
};
pub use crate::recipe::{ProxyProtocol, Recipe, StartTls};
pub use crate::schedule::{Backoff, Frequency, RetryStrategy, UnknownFrequency};

/// The version of the JSON form this crate reads and writes.
pub const SCHEMA_VERSION: u32 = 1;

pub use crate::rules::{
    DEFAULT_CONNECT_TIMEOUT_MS, DEFAULT_DEGRADED_RESPONSE_TIME_MS, DEFAULT_MAX_RESPONSE_TIME_MS,
    DEFAULT_READ_TIMEOUT_MS, DEFAULT_TOTAL_TIMEOUT_MS,
};

/// Default response size cap in bytes (64 KiB).
pub const DEFAULT_MAX_RESPONSE_BYTES: u32 = 64 * 1024;

/// One TCP monitor: identity, target, dialog, assertions, thresholds and scheduling.
///
/// Fields missing from JSON take the defaults of [`TcpMonitor::new`]; unknown fields are
/// rejected so that a typo never silently changes what a monitor does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TcpMonitor {
    /// Version of this JSON form; must be [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Stable logical id: the key deploys use to tell create from update.
    pub id: String,
    /// Human name shown in reports.
    pub name: String,
    /// Markdown description, at most 500 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Tags used for filtering: at most 64, each 1 to 64 ASCII letters, digits, spaces
    /// and `-_.:/=@+`, without a space at either end.
    #[serde(default)]
    #[schemars(length(max = 64))]
    pub tags: Vec<String>,
    /// Optional group name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Where to connect.
    pub target: Target,
    /// The dialog, run in order after the connection is established (at most 100 steps).
    #[serde(default)]
    #[schemars(length(max = 100))]
    pub steps: Vec<Step>,
    /// A protocol recipe spoken before `steps`, proving the service serves and reporting
    /// what it learned (see [`crate::recipe`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipe: Option<Recipe>,
    /// A PROXY protocol header sent right after connecting, before TLS and the dialog, for
    /// a service behind a load balancer that expects one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_protocol: Option<ProxyProtocol>,
    /// TLS: none, direct, or STARTTLS, with trust, expiry and protocol policy.
    #[serde(default)]
    pub tls: Tls,
    /// Checks on the result, all of which must hold (at most 100).
    #[serde(default)]
    #[schemars(length(max = 100))]
    pub assertions: Vec<Assertion>,
    /// Per-phase timeouts.
    #[serde(default)]
    pub timeouts: Timeouts,
    /// Cap on the bytes read from the server over the whole dialog.
    #[serde(default = "default_max_response_bytes")]
    pub max_response_bytes: u32,
    /// Response time above which the result is degraded, in milliseconds.
    #[serde(default = "default_degraded")]
    pub degraded_response_time_ms: u32,
    /// Response time above which the result is failed, in milliseconds.
    #[serde(default = "default_max")]
    pub max_response_time_ms: u32,
    /// Checkly's meaning: a refused or timed-out connection counts as passed; a failing
    /// assertion still fails.
    #[serde(default)]
    pub should_fail: bool,
    /// How often the monitor runs.
    #[serde(default)]
    pub frequency: Frequency,
    /// Public locations the monitor runs from (empty: every location): at most 64, each
    /// 1 to 64 ASCII letters, digits, `.`, `_` and `-`.
    #[serde(default)]
    #[schemars(length(max = 64))]
    pub locations: Vec<String>,
    /// Private locations the monitor runs from, named as `locations` are; at most 64.
    #[serde(default)]
    #[schemars(length(max = 64))]
    pub private_locations: Vec<String>,
    /// Whether the monitor runs at all.
    #[serde(default = "crate::schedule::yes")]
    pub activated: bool,
    /// Whether alerts are silenced (the monitor still runs).
    #[serde(default)]
    pub muted: bool,
    /// Run once in every location per interval instead of once in one location.
    #[serde(default)]
    pub run_parallel: bool,
    /// Only run on demand (`run`), never on a schedule.
    #[serde(default)]
    pub test_only: bool,
    /// Names of the alert channels to notify: at most 32, each 1 to 64 ASCII letters,
    /// digits, `.`, `_` and `-`.
    #[serde(default)]
    #[schemars(length(max = 32))]
    pub alert_channels: Vec<String>,
    /// What to do after a failed attempt.
    #[serde(default)]
    pub retry: RetryStrategy,
}

/// The address a monitor connects to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// DNS name, IPv4 literal or IPv6 literal (without brackets).
    pub host: String,
    /// TCP port, 1 to 65535.
    #[schemars(range(min = 1, max = 65535))]
    pub port: u16,
    /// Which address families to try.
    #[serde(default)]
    pub ip_family: IpFamily,
}

impl fmt::Display for Target {
    /// `host:port`, with an IPv6 literal in brackets: `[::1]:5432`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// Which address families a check may connect over.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum IpFamily {
    /// Every resolved address, IPv6 and IPv4 interleaved (RFC 8305 happy eyeballs).
    #[default]
    Any,
    /// IPv4 addresses only.
    Ipv4,
    /// IPv6 addresses only.
    Ipv6,
}

/// One step of the dialog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// Send bytes exactly as given; no newline is ever added.
    Send(Payload),
    /// Read until the unread response satisfies the expectation.
    Expect(Expect),
    /// Read until a delimiter, a byte count, the server closing, or any data at all.
    Read(ReadUntil),
}

/// Bytes written in a spec: text with escapes, or hex.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Payload {
    /// Text; `\r`, `\n`, `\t`, `\0`, `\\` and `\xNN` are escapes.
    Text(String),
    /// Raw bytes as hex digits (whitespace between pairs allowed).
    Hex(String),
}

/// What an expect step waits for in the response not yet consumed by earlier steps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Expect {
    /// The text (with escapes) appears anywhere.
    Contains(String),
    /// The regular expression (bytes mode) matches.
    Regex(String),
    /// The next bytes are exactly these.
    Exact(Payload),
}

/// How far a read step reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReadUntil {
    /// Until this text (with escapes) has been received.
    Delimiter(String),
    /// Until this many more bytes have been received.
    Bytes(u32),
    /// Until the server closes the connection.
    Close,
    /// Until at least one byte is available.
    Any,
}

/// Default days before the earliest expiry at which a check is degraded.
pub const DEFAULT_EXPIRY_WARN_DAYS: u32 = 30;
/// Default days before the earliest expiry at which a check fails.
pub const DEFAULT_EXPIRY_FAIL_DAYS: u32 = 7;

/// TLS settings of a monitor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    /// Whether and how TLS is started.
    #[serde(default)]
    pub mode: TlsMode,
    /// The protocol whose STARTTLS dialog upgrades the connection; required with mode
    /// `starttls`, forbidden otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starttls: Option<StartTls>,
    /// The name sent as SNI and verified against the certificate (default: the host; an
    /// IP literal host sends no SNI and is verified as an IP address).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
    /// CA certificates to trust instead of the system store (which honours `SSL_CERT_FILE`).
    /// A certificate here that the server presents as its own (self-signed, CA:TRUE or
    /// not) is trusted as it is, pinned; its name and dates are still checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<PemSource>,
    /// Client certificate chain and key for mutual TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_cert: Option<ClientCert>,
    /// The oldest protocol version accepted.
    #[serde(default)]
    pub min_version: TlsVersion,
    /// Protocols offered through ALPN, for example `h2` or `postgresql`; at most 16.
    #[serde(default)]
    #[schemars(length(max = 16))]
    pub alpn: Vec<String>,
    /// Report every certificate problem but do not fail on it.
    #[serde(default)]
    pub allow_invalid: bool,
    /// Degrade when the earliest expiry in the chain is fewer days away than this.
    #[serde(default = "default_warn_days")]
    pub expiry_warn_days: u32,
    /// Fail when the earliest expiry in the chain is fewer days away than this.
    #[serde(default = "default_fail_days")]
    pub expiry_fail_days: u32,
    /// Also ask whether the server still accepts TLS 1.0 or 1.1, and what to do if it does.
    #[serde(default)]
    pub legacy_probe: LegacyProbe,
    /// Whether the OCSP answer about the server's certificate is read and checked (stapled
    /// in the handshake, or asked of the responder the certificate names).
    #[serde(default, skip_serializing_if = "is_default")]
    pub ocsp: OcspMode,
    /// The opt-in compliance scan: protocol versions accepted, weak cipher suites, the
    /// leaf's key and signature, the chain's order; and what a finding does to the verdict.
    #[serde(default, skip_serializing_if = "is_default")]
    pub policy: TlsPolicy,
}

fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

impl Default for Tls {
    fn default() -> Self {
        Tls {
            mode: TlsMode::None,
            starttls: None,
            server_name: None,
            ca: None,
            client_cert: None,
            min_version: TlsVersion::Tls12,
            alpn: Vec::new(),
            allow_invalid: false,
            expiry_warn_days: DEFAULT_EXPIRY_WARN_DAYS,
            expiry_fail_days: DEFAULT_EXPIRY_FAIL_DAYS,
            legacy_probe: LegacyProbe::Off,
            ocsp: OcspMode::Report,
            policy: TlsPolicy::Off,
        }
    }
}

/// Whether and how TLS is started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TlsMode {
    /// Plain TCP.
    #[default]
    None,
    /// TLS from the first byte.
    Direct,
    /// Plain text first, upgraded by the protocol's STARTTLS dialog.
    Starttls,
}

/// A TLS protocol version rustls speaks.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    JsonSchema,
)]
pub enum TlsVersion {
    /// TLS 1.2.
    #[default]
    #[serde(rename = "tls1_2")]
    Tls12,
    /// TLS 1.3.
    #[serde(rename = "tls1_3")]
    Tls13,
}

/// PEM text given inline or as a file path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PemSource {
    /// A file holding PEM blocks, read when the check runs.
    Path(String),
    /// PEM blocks inline.
    Pem(String),
}

/// A client certificate chain and its private key, for mutual TLS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientCert {
    /// The certificate chain, leaf first.
    pub cert: PemSource,
    /// The private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PemSource,
}

/// The opt-in probe for TLS 1.0 and 1.1.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LegacyProbe {
    /// Do not probe.
    #[default]
    Off,
    /// Probe; a server accepting TLS 1.0 or 1.1 degrades the check.
    Degrade,
    /// Probe; a server accepting TLS 1.0 or 1.1 fails the check.
    Fail,
}

/// Whether the OCSP answer about the server's certificate is read, and what it takes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OcspMode {
    /// Ignore OCSP.
    Off,
    /// Check a stapled answer when the server sends one: revoked fails, an answer that
    /// cannot be trusted (signer, serial, dates) fails; none stapled is reported only.
    #[default]
    Report,
    /// As `report`, and a server that staples no answer fails.
    RequireStaple,
    /// As `report`, and when nothing is stapled ask the responder named in the
    /// certificate's Authority Information Access over HTTP.
    Query,
}

/// The opt-in TLS compliance scan, and what its findings do to the verdict.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TlsPolicy {
    /// Do not scan.
    #[default]
    Off,
    /// Scan and report the findings as facts and metrics; the verdict is unchanged.
    Report,
    /// Scan; a finding degrades the check.
    Degrade,
    /// Scan; a finding fails the check.
    Fail,
}

fn default_warn_days() -> u32 {
    DEFAULT_EXPIRY_WARN_DAYS
}
fn default_fail_days() -> u32 {
    DEFAULT_EXPIRY_FAIL_DAYS
}

/// Per-phase timeouts in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Timeouts {
    /// Time allowed to establish the connection (all addresses together).
    #[serde(default = "default_connect")]
    pub connect_ms: u32,
    /// Time allowed for each expect or read step, and for each send.
    #[serde(default = "default_read")]
    pub read_ms: u32,
    /// Time allowed for the whole check: DNS, connect and dialog.
    #[serde(default = "default_total")]
    pub total_ms: u32,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect_ms: DEFAULT_CONNECT_TIMEOUT_MS,
            read_ms: DEFAULT_READ_TIMEOUT_MS,
            total_ms: DEFAULT_TOTAL_TIMEOUT_MS,
        }
    }
}

fn default_max_response_bytes() -> u32 {
    DEFAULT_MAX_RESPONSE_BYTES
}
fn default_degraded() -> u32 {
    DEFAULT_DEGRADED_RESPONSE_TIME_MS
}
fn default_max() -> u32 {
    DEFAULT_MAX_RESPONSE_TIME_MS
}
fn default_connect() -> u32 {
    DEFAULT_CONNECT_TIMEOUT_MS
}
fn default_read() -> u32 {
    DEFAULT_READ_TIMEOUT_MS
}
fn default_total() -> u32 {
    DEFAULT_TOTAL_TIMEOUT_MS
}

impl TcpMonitor {
    /// A monitor with every default applied: connect only, no dialog, no assertions.
    pub fn new(id: impl Into<String>, host: impl Into<String>, port: u16) -> Self {
        let id = id.into();
        TcpMonitor {
            schema_version: SCHEMA_VERSION,
            name: id.clone(),
            id,
            description: None,
            tags: Vec::new(),
            group: None,
            target: Target {
                host: host.into(),
                port,
                ip_family: IpFamily::Any,
            },
            steps: Vec::new(),
            recipe: None,
            proxy_protocol: None,
            tls: Tls::default(),
            assertions: Vec::new(),
            timeouts: Timeouts::default(),
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            degraded_response_time_ms: DEFAULT_DEGRADED_RESPONSE_TIME_MS,
            max_response_time_ms: DEFAULT_MAX_RESPONSE_TIME_MS,
            should_fail: false,
            frequency: Frequency::default(),
            locations: Vec::new(),
            private_locations: Vec::new(),
            activated: true,
            muted: false,
            run_parallel: false,
            test_only: false,
            alert_channels: Vec::new(),
            retry: RetryStrategy::None,
        }
    }

    /// Speaks `recipe` before the steps (see [`crate::recipe`]).
    pub fn recipe(mut self, recipe: Recipe) -> Self {
        self.recipe = Some(recipe);
        self
    }

    /// Sends a PROXY protocol header right after connecting.
    pub fn proxy_protocol(mut self, version: ProxyProtocol) -> Self {
        self.proxy_protocol = Some(version);
        self
    }

    /// Sets the name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Sets the Markdown description.
    pub fn description(mut self, text: impl Into<String>) -> Self {
        self.description = Some(text.into());
        self
    }

    /// Adds a tag.
    pub fn tag(mut self, tag: impl Into<String>) -> Self {
        self.tags.push(tag.into());
        self
    }

    /// Sets the group.
    pub fn group(mut self, group: impl Into<String>) -> Self {
        self.group = Some(group.into());
        self
    }

    /// Restricts the address families tried.
    pub fn ip_family(mut self, family: IpFamily) -> Self {
        self.target.ip_family = family;
        self
    }

    /// Appends a step.
    pub fn step(mut self, step: Step) -> Self {
        self.steps.push(step);
        self
    }

    /// Appends a send step with text (escapes such as `\r\n` and `\xNN` allowed; real
    /// control characters are sent as they are).
    pub fn send(self, text: impl Into<String>) -> Self {
        self.step(Step::Send(Payload::Text(text.into())))
    }

    /// Appends a send step with raw bytes.
    pub fn send_bytes(self, bytes: &[u8]) -> Self {
        self.step(Step::Send(Payload::Hex(crate::escape::to_hex(bytes))))
    }

    /// Appends an expect step waiting for the text anywhere in the unread response.
    pub fn expect(self, text: impl Into<String>) -> Self {
        self.step(Step::Expect(Expect::Contains(text.into())))
    }

    /// Appends an expect step waiting for the regular expression to match.
    pub fn expect_regex(self, pattern: impl Into<String>) -> Self {
        self.step(Step::Expect(Expect::Regex(pattern.into())))
    }

    /// Appends an expect step requiring exactly these next bytes.
    pub fn expect_bytes(self, bytes: &[u8]) -> Self {
        self.step(Step::Expect(Expect::Exact(Payload::Hex(
            crate::escape::to_hex(bytes),
        ))))
    }

    /// Appends a read step.
    pub fn read(self, until: ReadUntil) -> Self {
        self.step(Step::Read(until))
    }

    /// Appends an assertion.
    pub fn assert(mut self, assertion: Assertion) -> Self {
        self.assertions.push(assertion);
        self
    }

    /// Sets the connect, read and total timeouts in milliseconds.
    pub fn timeouts(mut self, connect_ms: u32, read_ms: u32, total_ms: u32) -> Self {
        self.timeouts = Timeouts {
            connect_ms,
            read_ms,
            total_ms,
        };
        self
    }

    /// Sets the degraded and max response times in milliseconds.
    pub fn thresholds(mut self, degraded_ms: u32, max_ms: u32) -> Self {
        self.degraded_response_time_ms = degraded_ms;
        self.max_response_time_ms = max_ms;
        self
    }

    /// Sets the response size cap.
    pub fn max_response_bytes(mut self, bytes: u32) -> Self {
        self.max_response_bytes = bytes;
        self
    }

    /// Inverts the connection verdict (see [`TcpMonitor::should_fail`]).
    pub fn should_fail(mut self, yes: bool) -> Self {
        self.should_fail = yes;
        self
    }

    /// Sets the frequency.
    pub fn frequency(mut self, frequency: Frequency) -> Self {
        self.frequency = frequency;
        self
    }

    /// Sets the retry strategy.
    pub fn retry(mut self, retry: RetryStrategy) -> Self {
        self.retry = retry;
        self
    }

    /// Points the monitor at `HOST:PORT` (or `[V6]:PORT`) read from the environment
    /// variable `var` when it is set, as deployments that differ per stage do. A value
    /// that does not parse leaves a port of 0, which validation reports.
    pub fn target_from_env(mut self, var: &str) -> Self {
        if let Ok(value) = std::env::var(var) {
            let (host, port) = match value.rsplit_once(':') {
                Some((h, p)) => (
                    h.trim_start_matches('[').trim_end_matches(']'),
                    p.parse().unwrap_or(0),
                ),
                None => (value.as_str(), 0),
            };
            self.target.host = host.to_owned();
            self.target.port = port;
        }
        self
    }

    /// Points the monitor at `addr` (a test server) instead of its target; with TLS the
    /// declared host stays the name verified, unless `tls.server_name` is set.
    pub fn pointed_at(mut self, addr: std::net::SocketAddr) -> Self {
        if self.tls.mode != TlsMode::None && self.tls.server_name.is_none() {
            self.tls.server_name = Some(self.target.host.clone());
        }
        self.target.host = addr.ip().to_string();
        self.target.port = addr.port();
        self.target.ip_family = IpFamily::Any;
        self
    }

    /// Uses TLS from the first byte.
    pub fn tls_direct(mut self) -> Self {
        self.tls.mode = TlsMode::Direct;
        self.tls.starttls = None;
        self
    }

    /// Uses TLS after the protocol's STARTTLS dialog.
    pub fn starttls(mut self, protocol: StartTls) -> Self {
        self.tls.mode = TlsMode::Starttls;
        self.tls.starttls = Some(protocol);
        self
    }

    /// Changes the TLS settings in place: `.tls_with(|t| t.allow_invalid = true)`.
    pub fn tls_with(mut self, change: impl FnOnce(&mut Tls)) -> Self {
        change(&mut self.tls);
        self
    }
}

/// The snake_case name serde gives a unit enum value, as JSON and messages show it.
pub fn wire_name<T: Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}
