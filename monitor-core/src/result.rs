//! The result of one check, in the JSON form reporters and the control plane rely on:
//! verdict, classified error with hints, per-phase timings, attempts and assertion outcomes.

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
#[non_exhaustive]
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
pub struct Timings {
    /// Name resolution.
    pub dns_ms: Option<f64>,
    /// From the first connection attempt to the connection being established.
    pub connect_ms: Option<f64>,
    /// From the connection being established to the first byte received.
    pub first_byte_ms: Option<f64>,
    /// The whole check.
    pub total_ms: f64,
}

/// The outcome of one assertion, with what was expected and what was seen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
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
pub struct Attempt {
    /// Verdict of this attempt.
    pub status: Status,
    /// Why it did not pass.
    pub error: Option<ProbeError>,
    /// Timings of this attempt.
    pub timings: Timings,
    /// The address that answered, as `ip:port`.
    pub address: Option<String>,
    /// When the attempt started (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "String")]
    pub started_at: OffsetDateTime,
}

/// The result of one check: the last attempt's verdict and facts, plus every attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CheckResult {
    /// Logical id of the monitor.
    pub id: String,
    /// Name of the monitor.
    pub name: String,
    /// `host:port` as declared.
    pub target: String,
    /// The verdict.
    pub status: Status,
    /// Why it did not pass (`null` when passed).
    pub error: Option<ProbeError>,
    /// Per-phase timings of the last attempt.
    pub timings: Timings,
    /// The address that answered, as `ip:port` (`[ip6]:port` for IPv6).
    pub address: Option<String>,
    /// Every attempt, first to last.
    pub attempts: Vec<Attempt>,
    /// Every assertion's outcome in the last attempt.
    pub assertions: Vec<AssertionOutcome>,
    /// The start of the response, non-printable bytes escaped.
    pub response_excerpt: String,
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
