//! The result of one check, in the JSON form reporters and the control plane rely on:
//! verdict, classified error with hints, per-phase timings, attempts and assertion outcomes.
//! Unknown fields are refused in every object, as in specs: the control plane reads
//! results from agents, and [`crate::limits`] bounds what they may carry.

use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::spec::{Comparison, Source};

/// The verdict of a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Everything held.
    Passed,
    /// It worked but slower than the degraded threshold.
    Degraded,
    /// It did not work, or was slower than the max threshold.
    Failed,
}

/// Why a check did not pass: a closed set, so alerts and dashboards can rely on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The host name did not resolve (or resolved to no address of the wanted family).
    DnsFailure,
    /// Every address refused the connection: nothing listens on the port.
    Refused,
    /// No address completed the TCP handshake within the connect timeout.
    ConnectTimeout,
    /// The network or host is unreachable from here.
    Unreachable,
    /// The server reset the connection.
    Reset,
    /// The server closed the connection before the expected response arrived.
    ClosedEarly,
    /// The server did not send the expected response within the read timeout.
    ReadTimeout,
    /// The server sent more than `max_response_bytes`.
    ResponseTooLarge,
    /// The server sent bytes other than the exact bytes expected.
    UnexpectedResponse,
    /// One or more assertions did not hold.
    AssertionFailed,
    /// The check took longer than `degraded_response_time_ms` (status degraded).
    DegradedResponseTime,
    /// The check took longer than `max_response_time_ms`.
    MaxResponseTime,
    /// The server did not offer STARTTLS (capability missing or command unknown).
    StarttlsNotOffered,
    /// The server offered STARTTLS but refused the upgrade, or its plaintext dialog was
    /// not the protocol's.
    StarttlsFailed,
    /// The server answered the TLS handshake in plaintext.
    PlaintextResponse,
    /// The TLS handshake failed (alert, no common cipher, broken message).
    HandshakeFailure,
    /// The server and the monitor share no TLS protocol version.
    NoCommonProtocol,
    /// The server speaks only TLS 1.0 or 1.1, which are deprecated and insecure.
    LegacyProtocol,
    /// The legacy probe found the server still accepting TLS 1.0 or 1.1.
    LegacyTlsAccepted,
    /// The server requires a client certificate and none (or an unacceptable one) was sent.
    ClientCertificateRequired,
    /// A certificate in the presented chain has expired.
    CertificateExpired,
    /// A certificate in the presented chain is not valid yet.
    CertificateNotYetValid,
    /// The earliest expiry in the chain is inside the warn or fail window.
    CertificateExpiring,
    /// The certificate is not valid for the name asked for.
    HostnameMismatch,
    /// The server presented a self-signed certificate that is not trusted.
    SelfSigned,
    /// The chain does not lead to a trusted root.
    UnknownIssuer,
    /// The server sent its certificate without the intermediate that links it to a root.
    IncompleteChain,
    /// Another certificate problem (bad signature, wrong key usage), or an OCSP answer
    /// that cannot be trusted or is missing where required.
    InvalidCertificate,
    /// The certificate's issuer says, through OCSP, that it is revoked.
    CertificateRevoked,
    /// The TLS compliance scan found what the monitor's `tls.policy` forbids (an old
    /// protocol version, a weak cipher suite, a weak key or signature, a chain out of order).
    TlsPolicyViolation,
    /// The monitor's TLS settings could not be loaded (CA file, client certificate).
    TlsConfig,
    /// The server answered, but not in the protocol of the monitor's recipe.
    ProtocolMismatch,
    /// The server speaks the protocol but says it is not serving (starting up, shutting
    /// down, too many connections, loading data).
    ServiceUnavailable,
    /// The server asked for credentials, or refused the ones configured.
    AuthenticationFailed,
    /// The server accepted the credentials but refused what the login asked for (no such
    /// database, no privilege).
    AccessDenied,
    /// The login's query failed (the server's error code in the message).
    QueryFailed,
    /// A setting the monitor needs is missing on this machine (an environment variable).
    Config,
    /// Another I/O error.
    Io,
}

impl ErrorKind {
    /// The snake_case name used in JSON and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::DnsFailure => "dns_failure",
            ErrorKind::Refused => "refused",
            ErrorKind::ConnectTimeout => "connect_timeout",
            ErrorKind::Unreachable => "unreachable",
            ErrorKind::Reset => "reset",
            ErrorKind::ClosedEarly => "closed_early",
            ErrorKind::ReadTimeout => "read_timeout",
            ErrorKind::ResponseTooLarge => "response_too_large",
            ErrorKind::UnexpectedResponse => "unexpected_response",
            ErrorKind::AssertionFailed => "assertion_failed",
            ErrorKind::DegradedResponseTime => "degraded_response_time",
            ErrorKind::MaxResponseTime => "max_response_time",
            ErrorKind::StarttlsNotOffered => "starttls_not_offered",
            ErrorKind::StarttlsFailed => "starttls_failed",
            ErrorKind::PlaintextResponse => "plaintext_response",
            ErrorKind::HandshakeFailure => "handshake_failure",
            ErrorKind::NoCommonProtocol => "no_common_protocol",
            ErrorKind::LegacyProtocol => "legacy_protocol",
            ErrorKind::LegacyTlsAccepted => "legacy_tls_accepted",
            ErrorKind::ClientCertificateRequired => "client_certificate_required",
            ErrorKind::CertificateExpired => "certificate_expired",
            ErrorKind::CertificateNotYetValid => "certificate_not_yet_valid",
            ErrorKind::CertificateExpiring => "certificate_expiring",
            ErrorKind::HostnameMismatch => "hostname_mismatch",
            ErrorKind::SelfSigned => "self_signed",
            ErrorKind::UnknownIssuer => "unknown_issuer",
            ErrorKind::IncompleteChain => "incomplete_chain",
            ErrorKind::InvalidCertificate => "invalid_certificate",
            ErrorKind::CertificateRevoked => "certificate_revoked",
            ErrorKind::TlsPolicyViolation => "tls_policy_violation",
            ErrorKind::TlsConfig => "tls_config",
            ErrorKind::ProtocolMismatch => "protocol_mismatch",
            ErrorKind::ServiceUnavailable => "service_unavailable",
            ErrorKind::AuthenticationFailed => "authentication_failed",
            ErrorKind::AccessDenied => "access_denied",
            ErrorKind::QueryFailed => "query_failed",
            ErrorKind::Config => "config",
            ErrorKind::Io => "io",
        }
    }

    /// Whether the kind means the connection itself could not be made, which
    /// `should_fail` turns into a pass.
    pub fn is_connection_failure(self) -> bool {
        matches!(
            self,
            ErrorKind::Refused | ErrorKind::ConnectTimeout | ErrorKind::Unreachable
        )
    }
}

/// A classified failure with what to try.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProbeError {
    /// The class of failure.
    pub kind: ErrorKind,
    /// One line naming host, port and address.
    pub message: String,
    /// What an on-call engineer can check, most likely first; the last is a command to
    /// reproduce by hand.
    pub hints: Vec<String>,
}

/// Per-phase timings in fractional milliseconds, measured with a monotonic clock.
/// A phase that was not reached is `null`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Timings {
    /// Name resolution.
    pub dns_ms: Option<f64>,
    /// From the first connection attempt to the connection being established, less the
    /// scheduling delay during it, and never less than the kernel's first round-trip
    /// sample (the SYN's, `tcp.after_connect.rtt_ms`) where `TCP_INFO` is read.
    pub connect_ms: Option<f64>,
    /// The TLS handshake (after STARTTLS, when that is used).
    pub tls_ms: Option<f64>,
    /// From the connection being ready (TLS included) to the first byte received; after a
    /// client-certificate wait in which the server sent nothing, from the end of that wait.
    pub first_byte_ms: Option<f64>,
    /// The whole check, less `client_cert_wait_ms` and less `scheduling_delay_ms`: the
    /// time the service and the path took, which the response time thresholds judge.
    pub total_ms: f64,
    /// How long the check waited after the handshake for a server that asked for a client
    /// certificate to reject it, when the server sent nothing meanwhile: the probe's own
    /// time, counted in neither `first_byte_ms` nor `total_ms`. Absent when there was no
    /// such wait, or when the server's first bytes ended it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_cert_wait_ms: Option<f64>,
    /// How late the check's task was to observe an event it was waiting for (a ready
    /// socket, a due time), summed over the check: time the runtime spent elsewhere,
    /// counted in no phase (each phase and `total_ms` leave it out). Measured from the
    /// runtime's wake to the poll that follows it; a runtime too busy to look for events
    /// at all wakes late, and that part stays in the phases. Absent under 0.05 ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduling_delay_ms: Option<f64>,
}

/// The outcome of one assertion, with what was expected and what was seen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AssertionOutcome {
    /// What was measured.
    pub source: Source,
    /// How it was compared.
    pub comparison: Comparison,
    /// The expected value as written.
    pub target: String,
    /// The value seen (escaped and bounded for response data).
    pub actual: String,
    /// Whether the assertion held.
    pub passed: bool,
}

/// One attempt of a check; retries add more.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Attempt {
    /// Verdict of this attempt.
    pub status: Status,
    /// Why it did not pass.
    pub error: Option<ProbeError>,
    /// Timings of this attempt.
    pub timings: Timings,
    /// The address that answered, as `ip:port`.
    // One text with the result's own `address`.
    pub address: Option<Arc<str>>,
    /// When the attempt started (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "String")]
    pub started_at: OffsetDateTime,
    /// The location of the agent that ran it, set by agents (absent from results of
    /// `check` and `watch`, and of older agents): with `same_region = false` a failed
    /// first attempt is retried in another location, so the attempts of one result may
    /// name two locations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
}

/// The result of one check: the last attempt's verdict and facts, plus every attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckResult {
    // The id, name and target are the validated monitor's own texts
    // (`Compiled::texts`): a result holds a reference to them, not a copy.
    /// Logical id of the monitor.
    pub id: Arc<str>,
    /// Name of the monitor.
    pub name: Arc<str>,
    /// `host:port` as declared.
    pub target: Arc<str>,
    /// The verdict.
    pub status: Status,
    /// Why it did not pass (`null` when passed).
    pub error: Option<ProbeError>,
    /// Per-phase timings of the last attempt.
    pub timings: Timings,
    /// The address that answered, as `ip:port` (`[ip6]:port` for IPv6).
    pub address: Option<Arc<str>>,
    /// Every attempt, first to last.
    pub attempts: Vec<Attempt>,
    /// Every assertion's outcome in the last attempt.
    pub assertions: Vec<AssertionOutcome>,
    /// The start of the response, non-printable bytes escaped.
    pub response_excerpt: String,
    /// What the TLS handshake showed (`null` without TLS or before the handshake).
    pub tls: Option<Box<TlsReport>>,
    /// What the monitor's recipe learned about the service, by name (`server_version`,
    /// `software`, `capabilities`, ...); empty without a recipe.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub facts: std::collections::BTreeMap<String, String>,
    /// The kernel's own view of the connection (`TCP_INFO`), where the platform has it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp: Option<TcpReport>,
    /// When the check started (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "String")]
    pub started_at: OffsetDateTime,
}

impl CheckResult {
    /// The result as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

/// `YYYY-MM-DD?HH:MM:SS` in UTC with `separator` between date and time: the JUnit
/// timestamp (`T`) and the status page's clock (a space).
pub fn utc_seconds(t: OffsetDateTime, separator: char) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}{separator}{:02}:{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Whole days from `now` until `not_after`, rounded toward zero: days left before the
/// expiry, and once expired, minus the whole days since (expired 5 days and some minutes
/// ago gives -5; less than a day ago gives 0). The one rule for "days left" in results,
/// reporters, metrics and the status page.
pub fn days_until(not_after: OffsetDateTime, now: OffsetDateTime) -> i64 {
    // Integer division truncates toward zero, both sides of the expiry.
    (not_after - now).whole_seconds() / 86_400
}

/// How long ago an expired certificate expired, from its [`days_until`] (0 or less):
/// "today" (less than a day ago), "1 day ago", "5 days ago".
pub fn expired_ago(days_left: i64) -> String {
    match days_left.saturating_neg() {
        ago if ago <= 0 => "today".to_owned(),
        1 => "1 day ago".to_owned(),
        ago => format!("{ago} days ago"),
    }
}

/// The certificate of a chain that expires first.
pub fn earliest_expiring(chain: &[CertInfo]) -> Option<&CertInfo> {
    chain.iter().min_by_key(|c| c.not_after)
}

/// When the first certificate of a presented chain expires: the `recorded` earliest
/// expiry, else the earliest of the chain's `not_after`s; `None` without a chain.
pub fn first_expiry(
    recorded: Option<OffsetDateTime>,
    not_afters: impl IntoIterator<Item = OffsetDateTime>,
) -> Option<OffsetDateTime> {
    let mut not_afters = not_afters.into_iter().peekable();
    not_afters.peek()?;
    recorded.or_else(|| not_afters.min())
}

impl TlsReport {
    /// [`first_expiry`] of this report's chain.
    pub fn first_expiry(&self) -> Option<OffsetDateTime> {
        first_expiry(self.earliest_expiry, self.chain.iter().map(|c| c.not_after))
    }
}

/// What a TLS handshake showed: protocol, cipher, the presented chain and its problems.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TlsReport {
    /// Negotiated protocol version, such as `TLSv1.3`.
    pub version: Option<String>,
    /// Negotiated cipher suite, such as `TLS13_AES_256_GCM_SHA384`.
    pub cipher: Option<String>,
    /// Protocol agreed through ALPN.
    pub alpn: Option<String>,
    /// The name the certificate was verified against.
    pub server_name: String,
    /// Whether the chain verified for that name against the trust store.
    pub verified: bool,
    /// Every problem seen, most serious first.
    pub problems: Vec<ErrorKind>,
    /// The certificates the server presented, leaf first.
    pub chain: Vec<CertInfo>,
    /// The earliest `not_after` in the presented chain (RFC 3339).
    #[serde(with = "time::serde::rfc3339::option")]
    #[schemars(with = "Option<String>")]
    pub earliest_expiry: Option<OffsetDateTime>,
    /// Whole days until the earliest expiry (negative once expired).
    pub days_left: Option<i64>,
    /// Subject of the certificate that expires first.
    pub earliest_expiry_subject: Option<String>,
    /// What the legacy probe found, when it ran.
    pub legacy: Option<LegacyReport>,
    /// What OCSP said about the leaf (`null` with `tls.ocsp` off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ocsp: Option<OcspReport>,
    /// What the compliance scan found (`null` with `tls.policy` off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<PolicyReport>,
}

/// The kernel's `TCP_INFO` for the check's connection, read right after connect and at
/// close.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TcpReport {
    /// Read once the connection was established.
    pub after_connect: Option<TcpSample>,
    /// Read just before the connection was closed.
    pub at_close: Option<TcpSample>,
}

/// One reading of `TCP_INFO`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TcpSample {
    /// Smoothed round-trip time (`tcpi_rtt`), in milliseconds.
    pub rtt_ms: f64,
    /// Round-trip time variance (`tcpi_rttvar`), in milliseconds.
    pub rtt_var_ms: f64,
    /// Segments retransmitted over the connection's life (`tcpi_total_retrans`).
    pub retransmits: u32,
    /// Segments the kernel currently counts as lost (`tcpi_lost`).
    pub lost: u32,
}

/// What OCSP said about the leaf certificate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OcspReport {
    /// The answer, or why there is none.
    pub status: OcspStatus,
    /// Where the answer came from (`null` when there is none).
    pub source: Option<OcspSource>,
    /// The responder asked, in `query` mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub responder: Option<String>,
    /// When the responder produced the answer (RFC 3339).
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schemars(with = "Option<String>")]
    pub this_update: Option<OffsetDateTime>,
    /// When the answer stops being current (RFC 3339).
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schemars(with = "Option<String>")]
    pub next_update: Option<OffsetDateTime>,
    /// When the certificate was revoked (RFC 3339), for `revoked`.
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schemars(with = "Option<String>")]
    pub revoked_at: Option<OffsetDateTime>,
    /// The revocation reason as RFC 5280 names it (`keyCompromise`, ...), when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Why the answer could not be trusted or fetched, in words, for `invalid` and
    /// `unavailable`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// The status OCSP gave the leaf certificate, or why there is none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OcspStatus {
    /// Not revoked, in a current answer signed by the issuer or its delegated responder.
    Good,
    /// Revoked.
    Revoked,
    /// The responder does not know the certificate.
    Unknown,
    /// The server stapled no answer (and none was asked for).
    NotStapled,
    /// An answer came but cannot be trusted: wrong signer, another certificate, expired or
    /// not yet valid, malformed.
    Invalid,
    /// The responder could not be asked or did not answer (`query` mode).
    Unavailable,
}

/// Where an OCSP answer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OcspSource {
    /// Stapled by the server in the handshake.
    Stapled,
    /// Asked of the responder over HTTP.
    Queried,
}

/// What the TLS compliance scan found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyReport {
    /// Whether the server accepted each protocol version offered alone (`null`: could not
    /// tell).
    pub versions: VersionSupport,
    /// The weak cipher suites the server accepted, by IANA name (RSA key exchange, CBC
    /// with SHA-1, 3DES, RC4, export); at most [`crate::limits::MAX_POLICY_ITEMS`].
    pub weak_ciphers: Vec<String>,
    /// The leaf's public key is weak (RSA or DSA under 2048 bits, EC under 224).
    pub weak_key: bool,
    /// A certificate of the chain (roots aside) is signed with SHA-1 or MD5.
    pub weak_signature: bool,
    /// Whether each certificate of the chain is followed by its issuer (`null` for a
    /// chain of one).
    pub chain_in_order: Option<bool>,
    /// Every finding in words, most serious first; at most
    /// [`crate::limits::MAX_POLICY_ITEMS`].
    pub findings: Vec<PolicyFinding>,
}

/// Whether the server accepted each protocol version.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VersionSupport {
    /// TLS 1.0.
    pub tls1_0: Option<bool>,
    /// TLS 1.1.
    pub tls1_1: Option<bool>,
    /// TLS 1.2.
    pub tls1_2: Option<bool>,
    /// TLS 1.3.
    pub tls1_3: Option<bool>,
}

/// One finding of the compliance scan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyFinding {
    /// What kind of finding: `legacy_version`, `weak_cipher`, `weak_key`,
    /// `weak_signature`, `chain_order`.
    pub code: String,
    /// The finding in words, naming the version, suite, key or certificate.
    pub message: String,
}

/// Whether the server accepted TLS 1.0 and TLS 1.1 when offered them alone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LegacyReport {
    /// TLS 1.0 accepted (`null` when the probe could not tell).
    pub tls1_0: Option<bool>,
    /// TLS 1.1 accepted (`null` when the probe could not tell).
    pub tls1_1: Option<bool>,
}

/// Facts about one certificate of the presented chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CertInfo {
    /// Subject distinguished name.
    pub subject: String,
    /// Issuer distinguished name.
    pub issuer: String,
    /// Subject alternative names (DNS names and IP addresses).
    pub sans: Vec<String>,
    /// Serial number as colon-separated hex.
    pub serial: String,
    /// Start of validity (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "String")]
    pub not_before: OffsetDateTime,
    /// End of validity (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "String")]
    pub not_after: OffsetDateTime,
    /// Whole days until `not_after` (negative once expired).
    pub days_left: i64,
    /// SHA-256 of the DER, as `openssl x509 -fingerprint -sha256` prints it.
    pub sha256: String,
    /// Public key type: `RSA`, `EC`, `Ed25519`, ...
    pub key_type: String,
    /// Public key size in bits.
    pub key_bits: Option<u32>,
    /// Signature algorithm, such as `ecdsa-with-SHA256`.
    pub signature_algorithm: String,
    /// Whether subject and issuer are the same.
    pub self_issued: bool,
    /// Subject as Go's `pkix.Name.String()` writes it (`CN=a,O=b`, roughly RFC 2253):
    /// the form of blackbox_exporter's `probe_ssl_last_chain_info` labels. Empty in
    /// results recorded before it existed.
    #[serde(default)]
    pub subject_rfc2253: String,
    /// Issuer in the form of [`CertInfo::subject_rfc2253`].
    #[serde(default)]
    pub issuer_rfc2253: String,
}

#[cfg(test)]
mod tests {
    use super::{days_until, expired_ago};
    use time::{Duration, OffsetDateTime};

    /// `days_until` of a `not_after` that lies `offset` from now.
    fn check(offset: Duration, expected: i64) {
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        assert_eq!(days_until(now + offset, now), expected, "{offset}");
    }

    #[test]
    fn days_round_toward_zero_both_sides_of_the_expiry() {
        // `days` days and `minutes` minutes from now.
        let at = |days: i64, minutes: i64| Duration::days(days) + Duration::minutes(minutes);
        for (offset, expected) in [
            (at(0, 0), 0),
            // Future: whole days left, rounded down.
            (at(0, 1), 0),
            (at(1, -1), 0),
            (at(1, 0), 1),
            (at(1, 1), 1),
            (at(30, 0), 30),
            (at(30, -1), 29),
            (at(90, 23 * 60), 90),
            // Past: whole days since, not one more.
            (at(0, -1), 0),
            (at(-1, 1), 0),
            (at(-1, 0), -1),
            (at(-1, -1), -1),
            (at(-5, 0), -5),
            (at(-5, -17), -5),
            (at(-6, 1), -5),
            (at(-6, 0), -6),
            (at(-30, 0), -30),
            (at(-30, -5 * 60), -30),
        ] {
            check(offset, expected);
        }
    }

    #[test]
    fn expired_ago_names_today_and_whole_days() {
        for (days_left, expected) in [
            (0, "today"),
            (-1, "1 day ago"),
            (-5, "5 days ago"),
            (i64::MIN, "9223372036854775807 days ago"),
        ] {
            assert_eq!(expired_ago(days_left), expected, "{days_left}");
        }
    }
}
