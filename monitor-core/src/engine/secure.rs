//! The TLS side of a check around the handshake: STARTTLS upgrades, the legacy probe,
//! and turning TLS problems into errors and findings by the monitor's policy.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::CertificateDer;
use time::OffsetDateTime;
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout_at};

use super::chain;
use super::classify;
use super::legacy::{self, LegacyAnswer, LegacyVersion};
use super::starttls;
use super::tls::{self, Capture, Problem, Setup};
use monitor_spec::result::{ErrorKind, LegacyReport, ProbeError, Status, TlsReport};
use monitor_spec::spec::{LegacyProbe, StartTls, TcpMonitor, TlsMode};

/// The name a monitor introduces itself with in EHLO and the like.
pub(crate) const CLIENT_NAME: &str = "monitor.invalid";

pub(crate) fn problem_error(p: Problem) -> ProbeError {
    ProbeError {
        kind: p.kind,
        message: p.message,
        hints: p.hints,
    }
}

/// Runs the protocol's STARTTLS dialog before the handshake.
pub(crate) async fn upgrade(
    spec: &TcpMonitor,
    stream: &mut TcpStream,
    protocol: StartTls,
    until: Instant,
) -> Result<starttls::Negotiated, ProbeError> {
    let target = spec.target.to_string();
    let look = tls::s_client(spec, tls::verified_name(spec));
    match timeout_at(until, starttls::negotiate(stream, protocol, CLIENT_NAME)).await {
        Ok(Ok(negotiated)) => Ok(negotiated),
        Ok(Err(e)) => {
            let kind = starttls_kind(&e);
            let mut hints = match kind {
                ErrorKind::StarttlsNotOffered => vec![
                    format!("enable STARTTLS in the {} server's configuration", protocol.openssl_name()),
                    "or the service serves TLS directly: set tls.mode to direct (often on another port)".to_owned(),
                    look,
                ],
                ErrorKind::ClosedEarly => vec![
                    "the service may refuse this client before the upgrade (connection limit, access list)".to_owned(),
                    look,
                ],
                ErrorKind::ServiceUnavailable => vec![
                    "the server turned the session away before any TLS: check its connection limits (per address too), load and logs".to_owned(),
                    look,
                ],
                _ => vec![
                    format!("check that port {} serves {}", spec.target.port, protocol.openssl_name()),
                    "the service may already expect TLS on this port: set tls.mode to direct".to_owned(),
                    look,
                ],
            };
            if matches!(kind, ErrorKind::ClosedEarly | ErrorKind::Reset) {
                classify::proxy_hint(spec, e.before_any_byte(), &mut hints);
            }
            Err(ProbeError {
                kind,
                message: format!("STARTTLS with {target} failed: {e}"),
                hints,
            })
        }
        Err(_) => Err(ProbeError {
            kind: ErrorKind::ReadTimeout,
            message: format!(
                "STARTTLS with {target} did not finish within the read timeout of {} ms",
                spec.timeouts.read_ms
            ),
            hints: vec![
                format!(
                    "the service may not speak {} on this port",
                    protocol.openssl_name()
                ),
                "the service may be slow or overloaded".to_owned(),
                look,
            ],
        }),
    }
}

fn starttls_kind(e: &starttls::StartTlsError) -> ErrorKind {
    use starttls::StartTlsFailure as F;
    match e.kind() {
        F::NotOffered => ErrorKind::StarttlsNotOffered,
        F::Refused | F::UnexpectedReply => ErrorKind::StarttlsFailed,
        F::TurnedAway => ErrorKind::ServiceUnavailable,
        F::Closed => ErrorKind::ClosedEarly,
        F::TooLarge => ErrorKind::ResponseTooLarge,
        F::Io => match e {
            starttls::StartTlsError::Io { error, .. }
                if matches!(
                    error.kind(),
                    std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted
                ) =>
            {
                ErrorKind::Reset
            }
            _ => ErrorKind::Io,
        },
    }
}

pub(crate) fn config_error(spec: &TcpMonitor, why: &str) -> ProbeError {
    ProbeError {
        kind: ErrorKind::TlsConfig,
        message: format!("the TLS settings of {} cannot be loaded: {why}", spec.id),
        hints: vec![
            "check that the CA and client certificate files exist on this machine and hold PEM"
                .to_owned(),
        ],
    }
}

pub(crate) fn handshake_timeout(spec: &TcpMonitor, setup: &Setup, limit: Duration) -> ProbeError {
    ProbeError {
        kind: ErrorKind::HandshakeFailure,
        message: format!(
            "the TLS handshake with {} did not finish within {} ms",
            spec.target,
            limit.as_millis()
        ),
        hints: vec![
            "the port may not serve TLS and waits for plaintext input".to_owned(),
            "the service may be overloaded".to_owned(),
            tls::s_client(spec, &setup.name),
        ],
    }
}

/// A report from whatever a failed handshake captured, when the server sent a chain.
pub(crate) fn partial_report(
    spec: &TcpMonitor,
    setup: &Setup,
    capture: &Arc<Capture>,
    now: OffsetDateTime,
) -> Option<TlsReport> {
    let chain = capture.chain();
    if chain.is_empty() {
        return None;
    }
    let negotiated = tls::Negotiated {
        version: None,
        cipher: None,
        alpn: None,
    };
    Some(chain::judge_chain(spec, setup, &chain, &negotiated, now).0)
}

/// A report for a handshake that captured no certificate.
pub(crate) fn empty_report(setup: &Setup) -> TlsReport {
    TlsReport {
        version: None,
        cipher: None,
        alpn: None,
        server_name: setup.name.clone(),
        verified: false,
        problems: Vec::new(),
        chain: Vec::new(),
        earliest_expiry: None,
        days_left: None,
        earliest_expiry_subject: None,
        legacy: None,
        ocsp: None,
        policy: None,
    }
}

/// The problem that stops the check before the dialog: an expired certificate always,
/// any other validity problem unless `allow_invalid`. A certificate inside the expiry
/// windows does not stop the dialog.
pub(crate) fn blocking(spec: &TcpMonitor, problems: &[Problem]) -> Option<ProbeError> {
    let stops = |p: &&Problem| {
        p.kind == ErrorKind::CertificateExpired
            || (!spec.tls.allow_invalid && p.kind != ErrorKind::CertificateExpiring)
    };
    let first = problems.iter().find(stops)?;
    let mut error = problem_error(first.clone());
    let others: Vec<&str> = problems
        .iter()
        .filter(|p| p.kind != first.kind)
        .map(|p| p.kind.as_str())
        .collect();
    if !others.is_empty() {
        error.message = format!("{} (also: {})", error.message, others.join(", "));
    }
    Some(error)
}

/// Problems that do not stop the dialog but set the verdict: the expiry windows.
pub(crate) fn findings(
    spec: &TcpMonitor,
    problems: &[Problem],
    days_left: Option<i64>,
) -> Vec<(Status, ProbeError)> {
    let fail = days_left.is_some_and(|d| d < i64::from(spec.tls.expiry_fail_days));
    problems
        .iter()
        .filter(|p| p.kind == ErrorKind::CertificateExpiring)
        .map(|p| {
            let status = if fail {
                Status::Failed
            } else {
                Status::Degraded
            };
            (status, problem_error(p.clone()))
        })
        .collect()
}

/// Asks, on fresh connections, whether the server accepts TLS 1.0 and TLS 1.1.
pub(crate) async fn legacy_report(
    spec: &TcpMonitor,
    addr: SocketAddr,
    deadline: Instant,
) -> LegacyReport {
    legacy_survey(spec, addr, deadline).await.report
}

/// What the legacy probes found: which versions the server accepts and, from the first
/// accepted handshake, its version, cipher suite and certificate chain.
pub(crate) struct LegacySurvey {
    pub report: LegacyReport,
    pub version_name: Option<&'static str>,
    pub cipher_suite: Option<u16>,
    pub chain: Vec<CertificateDer<'static>>,
}

/// Asks, on fresh connections, whether the server accepts TLS 1.0 and TLS 1.1, keeping
/// the chain of the first handshake it accepted.
pub(crate) async fn legacy_survey(
    spec: &TcpMonitor,
    addr: SocketAddr,
    deadline: Instant,
) -> LegacySurvey {
    let mut survey = LegacySurvey {
        report: LegacyReport {
            tls1_0: None,
            tls1_1: None,
        },
        version_name: None,
        cipher_suite: None,
        chain: Vec::new(),
    };
    for version in [LegacyVersion::Tls1_0, LegacyVersion::Tls1_1] {
        let answer = timeout_at(deadline, legacy_once(spec, addr, version)).await;
        let accepted = match answer {
            Ok(Some(LegacyAnswer::Accepted {
                cipher_suite,
                chain,
            })) => {
                if survey.version_name.is_none() {
                    survey.version_name = Some(version.as_str());
                    survey.cipher_suite = Some(cipher_suite);
                    survey.chain = chain.into_iter().map(CertificateDer::from).collect();
                }
                Some(true)
            }
            Ok(Some(LegacyAnswer::Rejected { .. })) => Some(false),
            _ => None,
        };
        match version {
            LegacyVersion::Tls1_0 => survey.report.tls1_0 = accepted,
            LegacyVersion::Tls1_1 => survey.report.tls1_1 = accepted,
        }
    }
    survey
}

/// After a handshake that failed on the version: asks the legacy versions and, when the
/// server speaks only those, turns `problem` into `legacy_protocol`. The report (made
/// when there is none) carries the legacy answers and, when the legacy handshake showed
/// a chain, that chain judged like any other; its problems list the legacy problem first.
///
/// The engine calls this where it called `legacy_report` and `legacy_only` after a
/// version mismatch.
pub(crate) async fn legacy_fallback(
    spec: &TcpMonitor,
    setup: &Setup,
    addr: SocketAddr,
    deadline: Instant,
    now: OffsetDateTime,
    report: &mut Option<TlsReport>,
    problem: Problem,
) -> Problem {
    let mut survey = legacy_survey(spec, addr, deadline).await;
    if survey.chain.is_empty() && report.as_ref().is_none_or(|r| r.chain.is_empty()) {
        // No legacy version either: a TLS 1.2 server rustls cannot talk to (CBC suites
        // only, say) still shows its chain to a hand-built TLS 1.2 hello.
        if let Ok(Some(LegacyAnswer::Accepted {
            cipher_suite,
            chain,
        })) = timeout_at(deadline, tls12_once(spec, addr)).await
        {
            survey.version_name = Some("TLSv1.2");
            survey.cipher_suite = Some(cipher_suite);
            survey.chain = chain.into_iter().map(CertificateDer::from).collect();
        }
    }
    let problem = legacy_only(spec, &survey.report).unwrap_or(problem);
    let mut chain_problems = Vec::new();
    if report.as_ref().is_none_or(|r| r.chain.is_empty()) && !survey.chain.is_empty() {
        let negotiated = tls::Negotiated {
            version: survey.version_name.map(str::to_owned),
            cipher: survey
                .cipher_suite
                .map(|c| format!("{:?}", rustls::CipherSuite::from(c))),
            alpn: None,
        };
        let (judged, problems) = chain::judge_chain(spec, setup, &survey.chain, &negotiated, now);
        chain_problems = problems.iter().map(|p| p.kind).collect();
        *report = Some(judged);
    }
    let judged = report.get_or_insert_with(|| empty_report(setup));
    judged.legacy = Some(survey.report);
    judged.problems = std::iter::once(problem.kind)
        .chain(chain_problems.into_iter().filter(|k| *k != problem.kind))
        .collect();
    problem
}

/// A connection (upgraded for STARTTLS) and its server name for a hand-built hello.
pub(crate) async fn probe_stream(spec: &TcpMonitor, addr: SocketAddr) -> Option<(TcpStream, &str)> {
    let mut stream = TcpStream::connect(addr).await.ok()?;
    if let (TlsMode::Starttls, Some(protocol)) = (spec.tls.mode, spec.tls.starttls) {
        starttls::negotiate(&mut stream, protocol, CLIENT_NAME)
            .await
            .ok()?;
    }
    let name = tls::verified_name(spec);
    Some((stream, name))
}

async fn tls12_once(spec: &TcpMonitor, addr: SocketAddr) -> Option<LegacyAnswer> {
    let (mut stream, name) = probe_stream(spec, addr).await?;
    legacy::probe_tls12(&mut stream, Some(name)).await.ok()
}

async fn legacy_once(
    spec: &TcpMonitor,
    addr: SocketAddr,
    version: LegacyVersion,
) -> Option<LegacyAnswer> {
    let (mut stream, name) = probe_stream(spec, addr).await?;
    legacy::probe(&mut stream, version, Some(name)).await.ok()
}

fn accepted_versions(report: &LegacyReport) -> Vec<&'static str> {
    [(report.tls1_0, "TLS 1.0"), (report.tls1_1, "TLS 1.1")]
        .into_iter()
        .filter(|(accepted, _)| *accepted == Some(true))
        .map(|(_, name)| name)
        .collect()
}

/// After a version mismatch: the server speaks only legacy versions.
pub(crate) fn legacy_only(spec: &TcpMonitor, report: &LegacyReport) -> Option<Problem> {
    let versions = accepted_versions(report);
    if versions.is_empty() {
        return None;
    }
    let target = spec.target.to_string();
    Some(Problem {
        kind: ErrorKind::LegacyProtocol,
        message: format!(
            "{target} speaks only {}, which {} deprecated and insecure (RFC 8996); the monitor requires TLS 1.2 or newer",
            versions.join(" and "),
            if versions.len() == 1 { "is" } else { "are" }
        ),
        hints: vec![
            "enable TLS 1.2 and 1.3 in the service's configuration and disable TLS 1.0 and 1.1"
                .to_owned(),
            "an old OpenSSL or Java runtime may be the cause: upgrade it".to_owned(),
            format!(
                "look by hand: openssl s_client -connect {target} -tls1 -cipher 'DEFAULT:@SECLEVEL=0'"
            ),
        ],
    })
}

/// The opt-in finding: the server still accepts a legacy version beside modern ones.
pub(crate) fn legacy_finding(
    spec: &TcpMonitor,
    report: &LegacyReport,
) -> Option<(Status, ProbeError)> {
    let versions = accepted_versions(report);
    if versions.is_empty() {
        return None;
    }
    let status = match spec.tls.legacy_probe {
        LegacyProbe::Off => return None,
        LegacyProbe::Degrade => Status::Degraded,
        LegacyProbe::Fail => Status::Failed,
    };
    let target = spec.target.to_string();
    Some((
        status,
        ProbeError {
            kind: ErrorKind::LegacyTlsAccepted,
            message: format!(
                "{target} still accepts {}, which {} deprecated and insecure (RFC 8996)",
                versions.join(" and "),
                if versions.len() == 1 { "is" } else { "are" }
            ),
            hints: vec![
                "disable TLS 1.0 and 1.1 in the service's configuration (for example ssl_protocols TLSv1.2 TLSv1.3)".to_owned(),
                format!("look by hand: openssl s_client -connect {target} -tls1 -cipher 'DEFAULT:@SECLEVEL=0'"),
            ],
        },
    ))
}
