//! Assertions: what a check measures (a [`Source`]), how it compares (a [`Comparison`]),
//! and the builder functions that read as sentences: `response_time().less_than(ms(100))`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One assertion: a source, a comparison, and (for most comparisons) a target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Assertion {
    /// What is measured.
    pub source: Source,
    /// How it is compared.
    pub comparison: Comparison,
    /// The value compared against; milliseconds for time sources; omitted for
    /// `is_empty` and `not_empty`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub target: String,
}

/// What an assertion looks at. Later kinds of check add sources here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// Every byte received during the dialog (up to the size cap).
    ResponseData,
    /// Total time of the check in milliseconds.
    ResponseTime,
    /// Time to establish the TCP connection in milliseconds.
    ConnectTime,
    /// Time from the connection being ready to the first byte received.
    FirstByteTime,
    /// Negotiated TLS version, such as `TLSv1.3`.
    TlsVersion,
    /// Negotiated TLS cipher suite, such as `TLS13_AES_256_GCM_SHA384`.
    TlsCipher,
    /// Whole days until the earliest expiry in the presented chain.
    TlsDaysLeft,
    /// Subject of the leaf certificate.
    TlsSubject,
    /// Issuer of the leaf certificate.
    TlsIssuer,
    /// Subject alternative names of the leaf certificate, comma separated.
    TlsSan,
    /// The first value of the login's query (fact `query_first_value`; `NULL` for NULL).
    QueryValue,
    /// The server's role after login (fact `role`): `primary`, `replica`, or what else
    /// the service names (`arbiter`, `sentinel`, `standalone`).
    Role,
    /// Whether the server refuses writes (fact `read_only`: `yes` or `no`); a failed
    /// assertion on it is `service_unavailable`.
    ReadOnly,
    /// How many entries the login found (fact `entry_count`): LDAP entries, messages
    /// in an IMAP mailbox or a POP3 maildrop.
    EntryCount,
    /// How far a replica is behind its primary, in milliseconds (fact
    /// `replication_lag_ms`; 0 on a primary).
    ReplicationLag,
}

impl Source {
    /// The fact of the result a login source reads, `None` for the measured sources.
    pub fn fact(self) -> Option<&'static str> {
        match self {
            Source::QueryValue => Some("query_first_value"),
            Source::Role => Some("role"),
            Source::ReadOnly => Some("read_only"),
            Source::EntryCount => Some("entry_count"),
            Source::ReplicationLag => Some("replication_lag_ms"),
            _ => None,
        }
    }

    /// Which recipes report the fact a login source reads, in words.
    pub fn reported_by(self) -> &'static str {
        match self {
            Source::QueryValue => "postgres and mysql with login(...)",
            Source::Role => "postgres with login(...), mongodb, redis(role = true)",
            Source::ReadOnly => "postgres, mysql and mongodb with login(...), redis(role = true)",
            Source::EntryCount => "ldap, imap and pop3 with login(...)",
            Source::ReplicationLag => "postgres with login(...), redis(role = true)",
            _ => "every recipe",
        }
    }

    /// Whether the source is a number (compared numerically).
    pub fn is_numeric(self) -> bool {
        self.unit().is_some()
    }

    /// The unit of a numeric source: `milliseconds` or `days`.
    pub fn unit(self) -> Option<&'static str> {
        match self {
            Source::ResponseTime | Source::ConnectTime | Source::FirstByteTime => {
                Some("milliseconds")
            }
            Source::TlsDaysLeft => Some("days"),
            Source::ReplicationLag => Some("milliseconds"),
            Source::EntryCount => Some("entries"),
            _ => None,
        }
    }

    /// Whether the source needs a TLS handshake.
    pub fn needs_tls(self) -> bool {
        matches!(
            self,
            Source::TlsVersion
                | Source::TlsCipher
                | Source::TlsDaysLeft
                | Source::TlsSubject
                | Source::TlsIssuer
                | Source::TlsSan
        )
    }
}

/// How an assertion compares its source with its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Comparison {
    /// Equal to the target (as text, or as numbers for time sources).
    Equals,
    /// Not equal to the target.
    NotEquals,
    /// The target text occurs in the source.
    Contains,
    /// The target text does not occur in the source.
    NotContains,
    /// The source is empty.
    IsEmpty,
    /// The source is not empty.
    NotEmpty,
    /// The source, as a number, is less than the target.
    LessThan,
    /// The source, as a number, is greater than the target.
    GreaterThan,
    /// The source matches the target regular expression.
    MatchesRegex,
}

impl Comparison {
    /// Whether the comparison needs a target.
    pub fn needs_target(self) -> bool {
        !matches!(self, Comparison::IsEmpty | Comparison::NotEmpty)
    }

    /// The comparisons that make sense for a source.
    pub fn allowed_for(source: Source) -> &'static [Comparison] {
        use Comparison::*;
        if source.is_numeric() {
            &[Equals, NotEquals, LessThan, GreaterThan]
        } else if !matches!(source, Source::ResponseData | Source::QueryValue) {
            &[
                Equals,
                NotEquals,
                Contains,
                NotContains,
                IsEmpty,
                NotEmpty,
                MatchesRegex,
            ]
        } else {
            &[
                Equals,
                NotEquals,
                Contains,
                NotContains,
                IsEmpty,
                NotEmpty,
                LessThan,
                GreaterThan,
                MatchesRegex,
            ]
        }
    }
}

/// Starts an assertion on the bytes received.
pub fn response_data() -> AssertionSource {
    AssertionSource(Source::ResponseData)
}
/// Starts an assertion on the total time of the check.
pub fn response_time() -> AssertionSource {
    AssertionSource(Source::ResponseTime)
}
/// Starts an assertion on the connect time.
pub fn connect_time() -> AssertionSource {
    AssertionSource(Source::ConnectTime)
}
/// Starts an assertion on the first-byte time.
pub fn first_byte_time() -> AssertionSource {
    AssertionSource(Source::FirstByteTime)
}
/// Starts an assertion on the negotiated TLS version (`TLSv1.2`, `TLSv1.3`).
pub fn tls_version() -> AssertionSource {
    AssertionSource(Source::TlsVersion)
}
/// Starts an assertion on the negotiated cipher suite.
pub fn tls_cipher() -> AssertionSource {
    AssertionSource(Source::TlsCipher)
}
/// Starts an assertion on the days until the earliest certificate expiry.
pub fn tls_days_left() -> AssertionSource {
    AssertionSource(Source::TlsDaysLeft)
}
/// Starts an assertion on the leaf certificate's subject.
pub fn tls_subject() -> AssertionSource {
    AssertionSource(Source::TlsSubject)
}
/// Starts an assertion on the leaf certificate's issuer.
pub fn tls_issuer() -> AssertionSource {
    AssertionSource(Source::TlsIssuer)
}
/// Starts an assertion on the leaf certificate's subject alternative names.
pub fn tls_san() -> AssertionSource {
    AssertionSource(Source::TlsSan)
}

/// Starts an assertion on the first value of the login's query.
pub fn query_value() -> AssertionSource {
    AssertionSource(Source::QueryValue)
}
/// Starts an assertion on the server's role (`primary`, `replica`, ...).
pub fn role() -> AssertionSource {
    AssertionSource(Source::Role)
}
/// Starts an assertion on whether the server is read-only (`yes` or `no`).
pub fn read_only() -> AssertionSource {
    AssertionSource(Source::ReadOnly)
}
/// Asserts the server accepts writes: `read_only().equals("no")`, failing as
/// `service_unavailable` when it does not.
pub fn writable() -> Assertion {
    read_only().equals("no")
}
/// Starts an assertion on the number of entries the login found.
pub fn entry_count() -> AssertionSource {
    AssertionSource(Source::EntryCount)
}
/// Starts an assertion on a replica's lag behind its primary, in milliseconds.
pub fn replication_lag() -> AssertionSource {
    AssertionSource(Source::ReplicationLag)
}

/// An assertion source waiting for its comparison; see [`response_data`].
#[derive(Debug, Clone, Copy)]
pub struct AssertionSource(pub Source);

impl AssertionSource {
    fn with(self, comparison: Comparison, target: impl ToString) -> Assertion {
        Assertion {
            source: self.0,
            comparison,
            target: target.to_string(),
        }
    }
    /// `equals`.
    pub fn equals(self, target: impl ToString) -> Assertion {
        self.with(Comparison::Equals, target)
    }
    /// `not_equals`.
    pub fn not_equals(self, target: impl ToString) -> Assertion {
        self.with(Comparison::NotEquals, target)
    }
    /// `contains`.
    pub fn contains(self, target: impl ToString) -> Assertion {
        self.with(Comparison::Contains, target)
    }
    /// `not_contains`.
    pub fn not_contains(self, target: impl ToString) -> Assertion {
        self.with(Comparison::NotContains, target)
    }
    /// `is_empty`.
    pub fn is_empty(self) -> Assertion {
        self.with(Comparison::IsEmpty, "")
    }
    /// `not_empty`.
    pub fn not_empty(self) -> Assertion {
        self.with(Comparison::NotEmpty, "")
    }
    /// `less_than`.
    pub fn less_than(self, target: impl ToString) -> Assertion {
        self.with(Comparison::LessThan, target)
    }
    /// `greater_than`.
    pub fn greater_than(self, target: impl ToString) -> Assertion {
        self.with(Comparison::GreaterThan, target)
    }
    /// `matches_regex`.
    pub fn matches_regex(self, pattern: impl ToString) -> Assertion {
        self.with(Comparison::MatchesRegex, pattern)
    }
}

/// Milliseconds, for assertion targets: `response_time().less_than(ms(100))`.
pub fn ms(n: u32) -> u32 {
    n
}

/// Seconds as milliseconds, for assertion targets:
/// `replication_lag().less_than(seconds(10))`.
pub fn seconds(n: u32) -> u32 {
    n.saturating_mul(1000)
}
