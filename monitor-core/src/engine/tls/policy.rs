//! The opt-in TLS compliance scan behind `tls.policy`: which protocol versions the server
//! accepts offered alone, which weak cipher suites it accepts, and what the presented chain
//! says about the leaf's key, SHA-1/MD5 signatures and the chain's order.
//!
//! Versions and suites are asked with hand-built ClientHellos ([`super::super::legacy`]),
//! one fresh connection each, strictly one after another, at most [`MAX_CONNECTIONS`] per
//! scan and all before the caller's deadline; a probe that cannot tell (no connection, a
//! timeout, an answer that is not TLS) leaves its answer `None` rather than making a
//! finding.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use rustls::pki_types::CertificateDer;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::{Instant, timeout_at};
use x509_parser::prelude::{FromDer, ParsedExtension, X509Certificate};

use crate::engine::legacy::{self, LegacyAnswer};
use crate::engine::{chain, classify, secure};
use monitor_spec::limits::MAX_POLICY_ITEMS;
use monitor_spec::result::{
    CertInfo, ErrorKind, PolicyFinding, PolicyReport, ProbeError, Status, TlsReport, VersionSupport,
};
use monitor_spec::spec::{TcpMonitor, TlsPolicy};

/// The most connections one scan opens: four version probes, then one per weak suite
/// found plus the one the server refuses.
pub const MAX_CONNECTIONS: usize = 40;

/// The weak cipher suites the scan offers, by code and IANA name: RSA key exchange (no
/// forward secrecy), CBC with SHA-1, 3DES and DES, RC4, export grade, NULL encryption and
/// anonymous key exchange.
pub const WEAK_SUITES: [(u16, &str); 46] = [
    (0x0001, "TLS_RSA_WITH_NULL_MD5"),
    (0x0002, "TLS_RSA_WITH_NULL_SHA"),
    (0x003b, "TLS_RSA_WITH_NULL_SHA256"),
    (0x0003, "TLS_RSA_EXPORT_WITH_RC4_40_MD5"),
    (0x0004, "TLS_RSA_WITH_RC4_128_MD5"),
    (0x0005, "TLS_RSA_WITH_RC4_128_SHA"),
    (0x0006, "TLS_RSA_EXPORT_WITH_RC2_CBC_40_MD5"),
    (0x0008, "TLS_RSA_EXPORT_WITH_DES40_CBC_SHA"),
    (0x0009, "TLS_RSA_WITH_DES_CBC_SHA"),
    (0x000a, "TLS_RSA_WITH_3DES_EDE_CBC_SHA"),
    (0x002f, "TLS_RSA_WITH_AES_128_CBC_SHA"),
    (0x0035, "TLS_RSA_WITH_AES_256_CBC_SHA"),
    (0x003c, "TLS_RSA_WITH_AES_128_CBC_SHA256"),
    (0x003d, "TLS_RSA_WITH_AES_256_CBC_SHA256"),
    (0x009c, "TLS_RSA_WITH_AES_128_GCM_SHA256"),
    (0x009d, "TLS_RSA_WITH_AES_256_GCM_SHA384"),
    (0x0041, "TLS_RSA_WITH_CAMELLIA_128_CBC_SHA"),
    (0x0084, "TLS_RSA_WITH_CAMELLIA_256_CBC_SHA"),
    (0x0096, "TLS_RSA_WITH_SEED_CBC_SHA"),
    (0x0014, "TLS_DHE_RSA_EXPORT_WITH_DES40_CBC_SHA"),
    (0x0015, "TLS_DHE_RSA_WITH_DES_CBC_SHA"),
    (0x0016, "TLS_DHE_RSA_WITH_3DES_EDE_CBC_SHA"),
    (0x0033, "TLS_DHE_RSA_WITH_AES_128_CBC_SHA"),
    (0x0039, "TLS_DHE_RSA_WITH_AES_256_CBC_SHA"),
    (0x0045, "TLS_DHE_RSA_WITH_CAMELLIA_128_CBC_SHA"),
    (0x0088, "TLS_DHE_RSA_WITH_CAMELLIA_256_CBC_SHA"),
    (0xc007, "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA"),
    (0xc008, "TLS_ECDHE_ECDSA_WITH_3DES_EDE_CBC_SHA"),
    (0xc009, "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA"),
    (0xc00a, "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA"),
    (0xc010, "TLS_ECDHE_RSA_WITH_NULL_SHA"),
    (0xc011, "TLS_ECDHE_RSA_WITH_RC4_128_SHA"),
    (0xc012, "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA"),
    (0xc013, "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"),
    (0xc014, "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA"),
    (0x0018, "TLS_DH_anon_WITH_RC4_128_MD5"),
    (0x001b, "TLS_DH_anon_WITH_3DES_EDE_CBC_SHA"),
    (0x0034, "TLS_DH_anon_WITH_AES_128_CBC_SHA"),
    (0x003a, "TLS_DH_anon_WITH_AES_256_CBC_SHA"),
    (0x006c, "TLS_DH_anon_WITH_AES_128_CBC_SHA256"),
    (0x006d, "TLS_DH_anon_WITH_AES_256_CBC_SHA256"),
    (0x00a6, "TLS_DH_anon_WITH_AES_128_GCM_SHA256"),
    (0x00a7, "TLS_DH_anon_WITH_AES_256_GCM_SHA384"),
    (0xc015, "TLS_ECDH_anon_WITH_NULL_SHA"),
    (0xc017, "TLS_ECDH_anon_WITH_3DES_EDE_CBC_SHA"),
    (0xc018, "TLS_ECDH_anon_WITH_AES_128_CBC_SHA"),
];

/// Suites with forward secrecy and AEAD, offered beside the weak ones when asking whether
/// a version is accepted at all, so that a modern server is not refused for its suites.
const STRONG_SUITES: [u16; 14] = [
    0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0x009e, 0x009f, 0xc023, 0xc027, 0xc024, 0xc028,
    0x0067, 0x006b,
];

/// The TLS 1.3 suites offered by the TLS 1.3 probe.
const TLS13_SUITES: [u16; 5] = [0x1301, 0x1302, 0x1303, 0x1304, 0x1305];

/// The versions asked, oldest first: wire version and name.
pub const VERSIONS: [(u16, &str); 4] = [
    (0x0301, "TLS 1.0"),
    (0x0302, "TLS 1.1"),
    (0x0303, "TLS 1.2"),
    (0x0304, "TLS 1.3"),
];

/// The IANA name of a weak suite the scan knows.
pub fn weak_suite_name(code: u16) -> Option<&'static str> {
    WEAK_SUITES
        .iter()
        .find(|(c, _)| *c == code)
        .map(|(_, name)| *name)
}

/// What the network part of the scan found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scan {
    /// Each version offered alone: accepted, refused, or `None` (could not tell).
    pub versions: VersionSupport,
    /// The weak suites the server accepted, in the order it picked them.
    pub weak: Vec<u16>,
    /// The version the weak suites were offered in (the newest accepted of 1.2, 1.1, 1.0).
    pub weak_version: Option<u16>,
    /// Whether the enumeration ended with a refusal (rather than the connection bound, the
    /// deadline or an answer that could not be read).
    pub complete: bool,
    /// Connections opened.
    pub connections: usize,
    /// The certificates (DER, leaf first) of the first Certificate message a TLS 1.2 or
    /// older probe read in clear; empty when none was read.
    pub chain: Vec<CertificateDer<'static>>,
}

/// One probe's outcome: the suite the server picked, a refusal, or could not tell.
enum Outcome {
    Accepted(u16, Vec<Vec<u8>>),
    Refused,
    Unknown,
}

/// Asks the versions and then the weak suites. `connect` opens one ready connection (TCP,
/// and the STARTTLS dialog when the monitor has one); each probe gets at most `step` and
/// nothing runs past `deadline`.
pub async fn scan<S, F, Fut>(
    connect: F,
    server_name: Option<&str>,
    step: Duration,
    deadline: Instant,
) -> Scan
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: Fn() -> Fut,
    Fut: Future<Output = Option<S>>,
{
    let mut scan = Scan::default();
    let everything: Vec<u16> = STRONG_SUITES
        .iter()
        .copied()
        .chain(WEAK_SUITES.iter().map(|(c, _)| *c))
        .collect();
    for (wire, _) in VERSIONS {
        let suites: &[u16] = if wire >= 0x0304 {
            &TLS13_SUITES
        } else {
            &everything
        };
        scan.connections += 1;
        let answer = match ask(&connect, wire, server_name, suites, step, deadline).await {
            Outcome::Accepted(_, chain) => {
                scan.keep(chain);
                Some(true)
            }
            Outcome::Refused => Some(false),
            Outcome::Unknown => None,
        };
        let slot = match wire {
            0x0301 => &mut scan.versions.tls1_0,
            0x0302 => &mut scan.versions.tls1_1,
            0x0303 => &mut scan.versions.tls1_2,
            _ => &mut scan.versions.tls1_3,
        };
        *slot = answer;
    }
    let v = scan.versions;
    let weak_version = [(v.tls1_2, 0x0303), (v.tls1_1, 0x0302), (v.tls1_0, 0x0301)]
        .into_iter()
        .find(|(accepted, _)| *accepted == Some(true))
        .map(|(_, wire)| wire);
    scan.weak_version = weak_version;
    let Some(wire) = weak_version else {
        // No version a weak suite exists in: nothing to enumerate.
        scan.complete = v.tls1_0.is_some() && v.tls1_1.is_some() && v.tls1_2.is_some();
        return scan;
    };
    let mut offered: Vec<u16> = WEAK_SUITES.iter().map(|(c, _)| *c).collect();
    let limit = MAX_POLICY_ITEMS.min(WEAK_SUITES.len());
    while scan.connections < MAX_CONNECTIONS && scan.weak.len() < limit {
        scan.connections += 1;
        match ask(&connect, wire, server_name, &offered, step, deadline).await {
            Outcome::Accepted(suite, chain) => {
                scan.keep(chain);
                let Some(at) = offered.iter().position(|&c| c == suite) else {
                    // A suite that was not offered: the answers cannot be trusted further.
                    break;
                };
                offered.remove(at);
                scan.weak.push(suite);
                if offered.is_empty() {
                    scan.complete = true;
                    break;
                }
            }
            Outcome::Refused => {
                scan.complete = true;
                break;
            }
            Outcome::Unknown => break,
        }
    }
    scan
}

impl Scan {
    /// Keeps the first chain read.
    fn keep(&mut self, chain: Vec<Vec<u8>>) {
        if self.chain.is_empty() {
            self.chain = chain
                .into_iter()
                .take(MAX_CHAIN)
                .map(CertificateDer::from)
                .collect();
        }
    }
}

/// The most certificates of a chain the scan keeps.
pub const MAX_CHAIN: usize = 16;

/// One probe on a fresh connection.
async fn ask<S, F, Fut>(
    connect: &F,
    wire: u16,
    server_name: Option<&str>,
    suites: &[u16],
    step: Duration,
    deadline: Instant,
) -> Outcome
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: Fn() -> Fut,
    Fut: Future<Output = Option<S>>,
{
    let until = (Instant::now() + step).min(deadline);
    let probe = async {
        let mut stream = connect().await?;
        legacy::probe_offer(&mut stream, wire, server_name, suites)
            .await
            .ok()
    };
    match timeout_at(until, probe).await {
        Ok(Some(LegacyAnswer::Accepted {
            cipher_suite,
            chain,
        })) => Outcome::Accepted(cipher_suite, chain),
        Ok(Some(LegacyAnswer::Rejected { .. })) => Outcome::Refused,
        _ => Outcome::Unknown,
    }
}

/// Whether a certificate's key is weak: RSA or DSA under 2048 bits, EC under 224.
pub fn weak_key(info: &CertInfo) -> bool {
    match (info.key_type.as_str(), info.key_bits) {
        ("RSA" | "DSA", Some(bits)) => bits < 2048,
        ("EC", Some(bits)) => bits < 224,
        _ => false,
    }
}

/// Whether a signature algorithm (as [`CertInfo::signature_algorithm`] names it) uses
/// SHA-1 or MD5 (or MD2).
pub fn weak_signature(algorithm: &str) -> bool {
    let lower = algorithm.to_ascii_lowercase();
    lower.contains("sha1")
        || lower.contains("md5")
        || lower.contains("md2")
        || matches!(
            algorithm,
            "1.2.840.113549.1.1.2"
                | "1.2.840.113549.1.1.4"
                | "1.2.840.10045.4.1"
                | "1.2.840.10040.4.3"
                | "1.3.14.3.2.29"
        )
}

/// Whether each certificate of `chain` (leaf first, DER) is followed by its issuer: the
/// next one's subject equals this one's issuer (as DER) and, when both carry them, its
/// subject key identifier equals this one's authority key identifier. `None` for a chain
/// of one or none, or a certificate that does not parse.
pub fn chain_in_order(chain: &[CertificateDer<'_>]) -> Option<bool> {
    if chain.len() < 2 {
        return None;
    }
    let mut parsed = Vec::with_capacity(chain.len());
    for der in chain {
        let (_, cert) = X509Certificate::from_der(der.as_ref()).ok()?;
        parsed.push(cert);
    }
    Some(parsed.windows(2).all(|pair| match pair {
        [cert, issuer] => {
            cert.issuer().as_raw() == issuer.subject().as_raw()
                && match (authority_key_id(cert), subject_key_id(issuer)) {
                    (Some(aki), Some(ski)) => aki == ski,
                    _ => true,
                }
        }
        _ => true,
    }))
}

fn authority_key_id<'a>(cert: &'a X509Certificate<'_>) -> Option<&'a [u8]> {
    cert.extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::AuthorityKeyIdentifier(aki) => aki.key_identifier.as_ref(),
            _ => None,
        })
        .map(|id| id.0)
}

fn subject_key_id<'a>(cert: &'a X509Certificate<'_>) -> Option<&'a [u8]> {
    cert.extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(id) => Some(id.0),
            _ => None,
        })
}

/// The report of a scan over the presented chain (`chain`, DER, leaf first), with every
/// finding in words, most serious first: legacy versions, the leaf's
/// key, SHA-1/MD5 signatures (self-issued certificates, the roots, aside), weak suites,
/// the chain's order.
pub fn report(scan: &Scan, chain: &[CertificateDer<'_>]) -> PolicyReport {
    let now = time::OffsetDateTime::now_utc();
    // Certificates that do not parse are left out; the leaf only counts when it parses.
    let infos: Vec<Option<CertInfo>> = chain.iter().map(|der| chain::cert_info(der, now)).collect();
    let leaf = infos.first().and_then(Option::as_ref);
    let mut findings = Vec::new();
    let mut find = |code: &str, message: String| {
        findings.push(PolicyFinding {
            code: code.to_owned(),
            message,
        });
    };
    for (accepted, name) in [
        (scan.versions.tls1_0, "TLS 1.0"),
        (scan.versions.tls1_1, "TLS 1.1"),
    ] {
        if accepted == Some(true) {
            find(
                "legacy_version",
                format!("the server accepts {name}, deprecated by RFC 8996"),
            );
        }
    }
    let leaf_weak = leaf.is_some_and(weak_key);
    if let Some(leaf) = leaf.filter(|_| leaf_weak) {
        find(
            "weak_key",
            format!(
                "the server's certificate ({}) has a {} key of {} bits",
                leaf.subject,
                leaf.key_type,
                leaf.key_bits.unwrap_or_default()
            ),
        );
    }
    let mut signature_weak = false;
    for info in infos.iter().flatten().filter(|i| !i.self_issued) {
        if weak_signature(&info.signature_algorithm) {
            signature_weak = true;
            find(
                "weak_signature",
                format!(
                    "the certificate {} is signed with {}",
                    info.subject, info.signature_algorithm
                ),
            );
        }
    }
    let weak_ciphers: Vec<String> = scan
        .weak
        .iter()
        .map(|&c| weak_suite_name(c).map_or_else(|| format!("0x{c:04x}"), str::to_owned))
        .take(MAX_POLICY_ITEMS)
        .collect();
    let version = scan
        .weak_version
        .and_then(|w| VERSIONS.iter().find(|(v, _)| *v == w))
        .map_or("TLS", |(_, name)| name);
    for name in &weak_ciphers {
        find(
            "weak_cipher",
            format!("the server accepts the weak cipher suite {name} in {version}"),
        );
    }
    let in_order = chain_in_order(chain);
    if in_order == Some(false) {
        find(
            "chain_order",
            "the server sends its chain out of order: a certificate is not followed by its issuer"
                .to_owned(),
        );
    }
    findings.truncate(MAX_POLICY_ITEMS);
    PolicyReport {
        versions: scan.versions,
        weak_ciphers,
        weak_key: leaf_weak,
        weak_signature: signature_weak,
        chain_in_order: in_order,
        findings,
    }
}

/// Runs the scan for a monitor whose handshake succeeded and records it in `tls`; with
/// `tls.policy` `degrade` or `fail` and at least one finding, also the finding that sets
/// the verdict. Nothing when `tls.policy` is off.
pub(crate) async fn run(
    spec: &TcpMonitor,
    addr: SocketAddr,
    chain: &[CertificateDer<'static>],
    tls: &mut TlsReport,
    step: Duration,
    deadline: Instant,
) -> Option<(Status, ProbeError)> {
    let status = match spec.tls.policy {
        TlsPolicy::Off => return None,
        TlsPolicy::Report => None,
        TlsPolicy::Degrade => Some(Status::Degraded),
        TlsPolicy::Fail => Some(Status::Failed),
    };
    let name = super::verified_name(spec);
    let connect = || async move { secure::probe_stream(spec, addr).await.map(|(s, _)| s) };
    let scan = scan(connect, Some(name), step, deadline).await;
    let report = report(&scan, chain);
    let finding = status
        .filter(|_| !report.findings.is_empty())
        .map(|status| {
            let listed: Vec<&str> = report.findings.iter().map(|f| f.message.as_str()).collect();
            let error = ProbeError {
                kind: ErrorKind::TlsPolicyViolation,
                message: format!(
                    "{} breaks the TLS policy ({} finding{}): {}",
                    spec.target,
                    listed.len(),
                    if listed.len() == 1 { "" } else { "s" },
                    listed.join("; ")
                ),
                hints: classify::policy_hints(spec, &report),
            };
            (status, error)
        });
    tls.policy = Some(report);
    finding
}
