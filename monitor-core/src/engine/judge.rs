//! The verdict of one attempt: assertions evaluated against what was measured, then
//! `should_fail` and the response time thresholds.

use std::net::SocketAddr;

use memchr::memmem;
use time::OffsetDateTime;

use super::classify::reproduce;
use super::place::{address_text, place};
use super::speak::Learned;
use monitor_spec::escape::escape_excerpt;
use monitor_spec::result::{
    AssertionOutcome, Attempt, ErrorKind, ProbeError, Status, TcpReport, Timings, TlsReport,
};
use monitor_spec::spec::{Comparison, Source, TlsMode, wire_name};
use monitor_spec::validate::{Check, Compiled, Expected};

/// What one attempt observed besides its timings.
#[derive(Debug, Default)]
pub(crate) struct Facts {
    pub address: Option<SocketAddr>,
    pub first_byte: Option<f64>,
    /// How long the check waited for a server that asked for a client certificate and sent
    /// nothing meanwhile (not server time).
    pub client_cert_wait: Option<std::time::Duration>,
    /// From the first byte to the end of the dialog.
    pub after_first_byte: Option<f64>,
    pub response: Vec<u8>,
    pub tls: Option<TlsReport>,
    /// The chain a successful handshake presented (DER, leaf first), kept only for the
    /// compliance scan (`tls.policy` not off).
    pub chain: Vec<rustls::pki_types::CertificateDer<'static>>,
    /// TLS findings that set the verdict without stopping the dialog (expiry windows,
    /// legacy versions accepted, TLS policy).
    pub findings: Vec<(Status, ProbeError)>,
    /// What the recipe learned.
    pub learned: Learned,
    /// The kernel's view of the connection (`TCP_INFO`).
    pub tcp: Option<TcpReport>,
}

/// One attempt's verdict and the details a result carries.
#[derive(Debug)]
pub(crate) struct AttemptOutcome {
    pub attempt: Attempt,
    pub assertions: Vec<AssertionOutcome>,
    pub excerpt: String,
    pub tls: Option<Box<TlsReport>>,
    pub facts: Learned,
    pub tcp: Option<TcpReport>,
}

pub(crate) fn judge(
    plan: &Compiled,
    error: Option<ProbeError>,
    timings: Timings,
    facts: Facts,
    started_at: OffsetDateTime,
    excerpt: String,
) -> AttemptOutcome {
    let spec = &plan.spec;
    let (status, error, assertions) = match error {
        Some(e) if !(spec.should_fail && e.kind.is_connection_failure()) => {
            (Status::Failed, Some(e), Vec::new())
        }
        connection_failed => {
            let outcomes: Vec<AssertionOutcome> = plan
                .assertions
                .iter()
                .map(|c| evaluate(c, &timings, &facts))
                .collect();
            let failed: Vec<&AssertionOutcome> = outcomes.iter().filter(|o| !o.passed).collect();
            let verdict = if !failed.is_empty() {
                (
                    Status::Failed,
                    Some(assertion_error(plan, &facts, &failed, outcomes.len())),
                )
            } else if connection_failed.is_some() {
                // should_fail: the connection failing is what the monitor expects.
                (Status::Passed, None)
            } else {
                worst(&facts.findings, thresholds(plan, &timings, &facts))
            };
            (verdict.0, verdict.1, outcomes)
        }
    };
    AttemptOutcome {
        attempt: Attempt {
            status,
            error,
            timings,
            address: facts.address.map(address_text),
            started_at,
            location: None,
        },
        assertions,
        excerpt,
        tls: facts.tls.map(Box::new),
        facts: facts.learned,
        tcp: facts.tcp,
    }
}

/// The worst of the TLS findings and the threshold verdict; findings come first among
/// equals, as they name the more specific cause.
fn worst(
    findings: &[(Status, ProbeError)],
    thresholds: (Status, Option<ProbeError>),
) -> (Status, Option<ProbeError>) {
    let rank = |s: Status| match s {
        Status::Failed => 2,
        Status::Degraded => 1,
        Status::Passed => 0,
    };
    let mut best = thresholds;
    for (status, error) in findings.iter().rev() {
        if rank(*status) >= rank(best.0) {
            best = (*status, Some(error.clone()));
        }
    }
    best
}

fn thresholds(plan: &Compiled, t: &Timings, facts: &Facts) -> (Status, Option<ProbeError>) {
    let spec = &plan.spec;
    let total = t.total_ms;
    let (status, kind, limit, name) = if total > f64::from(spec.max_response_time_ms) {
        (
            Status::Failed,
            ErrorKind::MaxResponseTime,
            spec.max_response_time_ms,
            "max_response_time_ms",
        )
    } else if total > f64::from(spec.degraded_response_time_ms) {
        (
            Status::Degraded,
            ErrorKind::DegradedResponseTime,
            spec.degraded_response_time_ms,
            "degraded_response_time_ms",
        )
    } else {
        return (Status::Passed, None);
    };
    let error =
        ProbeError {
            kind,
            message: format!(
                "{} took {total:.1} ms, above {name} ({limit} ms)",
                place(spec, None)
            ),
            hints: vec![
            slowest_phase(t, facts.after_first_byte, spec.tls.mode == TlsMode::Starttls),
            "the service or the network path may be loaded; compare with its own latency metrics"
                .to_owned(),
            format!("if this latency is normal for the service, raise {name}"),
            reproduce(spec),
        ],
        };
    (status, Some(error))
}

/// The hint naming where a slow check's time went: the slowest of the measured phases,
/// reading the response after its first byte, and what the total leaves (the STARTTLS
/// exchange, the dialog when no byte came).
pub(crate) fn slowest_phase(t: &Timings, after_first_byte: Option<f64>, starttls: bool) -> String {
    const READING: &str = "reading the response after its first byte";
    let measured = [
        ("name resolution", t.dns_ms),
        ("connecting", t.connect_ms),
        ("the TLS handshake", t.tls_ms),
        ("waiting for the first byte", t.first_byte_ms),
        (READING, after_first_byte),
    ];
    let before: f64 = measured.iter().filter_map(|(_, v)| *v).sum();
    let rest = match (starttls, t.first_byte_ms) {
        (true, _) => "the STARTTLS exchange",
        (false, Some(_)) => "the rest of the check",
        (false, None) => "the dialog",
    };
    let rest = (rest, Some((t.total_ms - before).max(0.0)));
    let (slowest, ms) = measured
        .iter()
        .chain([&rest])
        .filter_map(|(n, v)| v.map(|v| (*n, v)))
        .fold(
            ("the dialog", 0.0),
            |best, cur| {
                if cur.1 > best.1 { cur } else { best }
            },
        );
    if slowest == READING {
        format!("{slowest} took {ms:.0} ms")
    } else {
        format!("the slowest phase was {slowest} ({ms:.1} ms)")
    }
}

fn assertion_error(
    plan: &Compiled,
    facts: &Facts,
    failed: &[&AssertionOutcome],
    total: usize,
) -> ProbeError {
    let spec = &plan.spec;
    let each: Vec<String> = failed
        .iter()
        .map(|o| {
            let target = if o.target.is_empty() {
                String::new()
            } else {
                format!(" `{}`", o.target)
            };
            format!(
                "{} {}{target} (got `{}`)",
                wire_name(&o.source),
                wire_name(&o.comparison),
                o.actual
            )
        })
        .collect();
    // A server that refuses writes where the monitor asserts it takes them is not serving
    // what its clients need: the pager reads that, not "an assertion failed".
    if let Some(read_only) = failed
        .iter()
        .find(|o| o.source == Source::ReadOnly && o.actual == "yes")
    {
        return ProbeError {
            kind: ErrorKind::ServiceUnavailable,
            message: format!(
                "{} is read-only (read_only {} `{}` failed): it cannot take writes",
                place(spec, facts.address),
                wire_name(&read_only.comparison),
                read_only.target
            ),
            hints: vec![
                "a standby or replica answers here: check whether a failover moved the primary, and where the service's clients write".to_owned(),
                "the server may have been set read-only on purpose (maintenance, a full disk, default_transaction_read_only, super_read_only)".to_owned(),
                reproduce(spec),
            ],
        };
    }
    ProbeError {
        kind: ErrorKind::AssertionFailed,
        message: format!(
            "{} of {total} assertions failed on {}: {}",
            failed.len(),
            place(spec, facts.address),
            each.join("; ")
        ),
        hints: vec![
            "compare the expected values with what the service returned (response_excerpt)".to_owned(),
            "the service may have changed its version or protocol; update the assertion if the change is intended".to_owned(),
            reproduce(spec),
        ],
    }
}

/// Evaluates one assertion on what the attempt measured.
fn evaluate(check: &Check, t: &Timings, facts: &Facts) -> AssertionOutcome {
    let a = &check.spec;
    let tls = facts.tls.as_ref();
    let leaf = tls.and_then(|r| r.chain.first());
    let text = |v: Option<String>| match v {
        Some(v) => (compare_data(a.comparison, &check.target, v.as_bytes()), v),
        None => (false, "not measured".to_owned()),
    };
    let number = |v: Option<f64>| match (v, &check.target) {
        (Some(v), Expected::Number(n)) => (compare_numbers(a.comparison, v, *n), format!("{v}")),
        _ => (false, "not measured".to_owned()),
    };
    let (passed, actual) = match a.source {
        Source::ResponseData => (
            compare_data(a.comparison, &check.target, &facts.response),
            escape_excerpt(&facts.response, 120),
        ),
        Source::ResponseTime => number(Some(t.total_ms)),
        Source::ConnectTime => number(t.connect_ms),
        Source::FirstByteTime => number(t.first_byte_ms),
        Source::TlsDaysLeft => number(tls.and_then(|r| r.days_left).map(|d| d as f64)),
        Source::TlsVersion => text(tls.and_then(|r| r.version.clone())),
        Source::TlsCipher => text(tls.and_then(|r| r.cipher.clone())),
        Source::TlsSubject => text(leaf.map(|c| c.subject.clone())),
        Source::TlsIssuer => text(leaf.map(|c| c.issuer.clone())),
        Source::TlsSan => text(leaf.map(|c| c.sans.join(", "))),
        Source::QueryValue | Source::Role | Source::ReadOnly => {
            text(a.source.fact().and_then(|f| facts.learned.get(f)).cloned())
        }
        Source::EntryCount | Source::ReplicationLag => number(
            a.source
                .fact()
                .and_then(|f| facts.learned.get(f))
                .and_then(|v| v.parse::<f64>().ok()),
        ),
    };
    AssertionOutcome {
        source: a.source,
        comparison: a.comparison,
        target: a.target.clone(),
        actual,
        passed,
    }
}

fn compare_numbers(c: Comparison, v: f64, n: f64) -> bool {
    match c {
        // Times are fractional; equal means equal to the millisecond.
        Comparison::Equals => (v - n).abs() < 0.5,
        Comparison::NotEquals => (v - n).abs() >= 0.5,
        Comparison::LessThan => v < n,
        Comparison::GreaterThan => v > n,
        _ => false,
    }
}

fn compare_data(c: Comparison, target: &Expected, data: &[u8]) -> bool {
    match (c, target) {
        (Comparison::IsEmpty, _) => data.is_empty(),
        (Comparison::NotEmpty, _) => !data.is_empty(),
        (Comparison::Equals, Expected::Text(t)) => data == t.as_slice(),
        (Comparison::NotEquals, Expected::Text(t)) => data != t.as_slice(),
        (Comparison::Contains, Expected::Text(t)) => memmem::find(data, t).is_some(),
        (Comparison::NotContains, Expected::Text(t)) => memmem::find(data, t).is_none(),
        (Comparison::MatchesRegex, Expected::Regex(re)) => re.is_match(data),
        (Comparison::LessThan | Comparison::GreaterThan, Expected::Number(n)) => {
            match std::str::from_utf8(data)
                .ok()
                .and_then(|s| s.trim().parse::<f64>().ok())
            {
                Some(v) => compare_numbers(c, v, *n),
                None => false,
            }
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::slowest_phase;
    use monitor_spec::result::Timings;

    /// Timings of dns, connect, tls and first byte, the read after it, whether STARTTLS
    /// ran, and the total.
    fn check(phases: [Option<f64>; 5], starttls: bool, total_ms: f64, expected: &str) {
        let [dns_ms, connect_ms, tls_ms, first_byte_ms, after] = phases;
        let t = Timings {
            scheduling_delay_ms: None,
            dns_ms,
            connect_ms,
            tls_ms,
            first_byte_ms,
            total_ms,
            client_cert_wait_ms: None,
        };
        assert_eq!(slowest_phase(&t, after, starttls), expected, "{phases:?}");
    }

    #[test]
    fn the_slowest_phase_counts_every_part_of_the_total() {
        let n = None;
        check(
            [Some(0.1), Some(0.2), n, Some(0.5), Some(950.0)],
            false,
            951.0,
            "reading the response after its first byte took 950 ms",
        );
        check(
            [Some(0.1), Some(0.2), n, Some(700.0), Some(1.0)],
            false,
            702.0,
            "the slowest phase was waiting for the first byte (700.0 ms)",
        );
        check(
            [Some(0.1), Some(0.2), Some(600.0), Some(3.0), Some(1.0)],
            false,
            605.0,
            "the slowest phase was the TLS handshake (600.0 ms)",
        );
        check(
            [Some(400.0), Some(0.2), n, Some(3.0), Some(1.0)],
            false,
            405.0,
            "the slowest phase was name resolution (400.0 ms)",
        );
        // STARTTLS is timed by what the other phases leave.
        check(
            [Some(0.1), Some(0.2), Some(5.0), Some(1.0), Some(1.0)],
            true,
            807.3,
            "the slowest phase was the STARTTLS exchange (800.0 ms)",
        );
        // No byte came: the dialog took the rest (a bare connect, sends only).
        check(
            [Some(0.1), Some(0.2), n, n, n],
            false,
            500.3,
            "the slowest phase was the dialog (500.0 ms)",
        );
    }
}
