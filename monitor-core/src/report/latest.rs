//! What the Prometheus exposition shows of one result, kept compact: the verdict, the
//! error kind, the phase timings, the address's protocol and hash, the kernel's reading
//! and, behind one pointer, the TLS figures. `watch` keeps one per monitor instead of the
//! whole result (about 150 bytes against 1.5 KB), and the reporter renders from it too,
//! so both write the same text.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use monitor_spec::result::{
    CheckResult, ErrorKind, OcspStatus, PolicyReport, Status, TcpSample, TlsReport,
};

/// What a result needs to have for a family to show it: a server that knows none of its
/// results has it skips the family without reading them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    /// Every result is shown.
    Nothing,
    /// A TLS report.
    Tls,
    /// A reading of the kernel's `TCP_INFO`.
    Tcp,
    /// A scheduling delay.
    SchedulingDelay,
}

/// What the exposition shows of a result.
#[derive(Debug, Clone, PartialEq)]
pub struct Latest {
    /// The verdict.
    pub(super) status: Status,
    /// Why the check did not pass, when it did not.
    pub(super) error: Option<ErrorKind>,
    /// 4 or 6 from the address that answered, 0 without one.
    pub(super) ip_protocol: u8,
    /// FNV-1a (32 bits) of that address's bytes, 0 without one.
    pub(super) ip_hash: u32,
    /// `timings.total_ms`.
    pub(super) total_ms: f64,
    /// `timings.dns_ms`, `connect_ms`, `tls_ms` and `first_byte_ms`, when reached.
    pub(super) phases: [Option<f64>; 4],
    /// `timings.scheduling_delay_ms`, when reported.
    pub(super) scheduling_delay_ms: Option<f64>,
    /// The kernel's reading at close, else after connect.
    pub(super) tcp: Option<TcpSample>,
    /// The TLS figures, for results with a TLS report (shared: a copy of the slot is a
    /// pointer's).
    pub(super) tls: Option<Arc<TlsLatest>>,
}

/// What the exposition shows of a TLS report.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct TlsLatest {
    /// The earliest not-after of the presented chain, in unix seconds.
    pub(super) first_expiry: Option<i64>,
    /// Seconds from the check's start to that expiry.
    pub(super) seconds_left: Option<i64>,
    /// Whether the chain verified.
    pub(super) verified: bool,
    /// The server's certificate: fingerprint (lower-case hex), issuer, subject and DNS
    /// names joined by `,`.
    pub(super) leaf: Option<[String; 4]>,
    /// The negotiated version as blackbox_exporter writes it (`TLS 1.3`).
    pub(super) version: Option<String>,
    /// What OCSP said, and its next update in unix seconds.
    pub(super) ocsp: Option<(OcspStatus, Option<i64>)>,
    /// The compliance scan.
    pub(super) policy: Option<PolicyLatest>,
}

/// What the exposition shows of a compliance scan.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct PolicyLatest {
    /// TLS 1.0 to 1.3: accepted, refused or not told.
    pub(super) versions: [Option<bool>; 4],
    /// Weak cipher suites accepted.
    pub(super) weak_ciphers: usize,
    /// Findings made.
    pub(super) findings: usize,
    /// Whether the leaf's key is weak.
    pub(super) weak_key: bool,
    /// Whether a certificate is signed with SHA-1 or MD5.
    pub(super) weak_signature: bool,
    /// Whether each certificate is followed by its issuer.
    pub(super) chain_in_order: Option<bool>,
}

impl Latest {
    /// What the exposition shows of `r`.
    pub fn of(r: &CheckResult) -> Latest {
        let t = &r.timings;
        let address = r
            .address
            .as_deref()
            .and_then(|a| a.parse::<SocketAddr>().ok());
        Latest {
            status: r.status,
            error: r.error.as_ref().map(|e| e.kind),
            ip_protocol: match address {
                Some(SocketAddr::V4(_)) => 4,
                Some(SocketAddr::V6(_)) => 6,
                None => 0,
            },
            ip_hash: address.map_or(0, |a| ip_addr_hash(a.ip())),
            total_ms: t.total_ms,
            phases: [t.dns_ms, t.connect_ms, t.tls_ms, t.first_byte_ms],
            scheduling_delay_ms: t.scheduling_delay_ms,
            tcp: r.tcp.and_then(|t| t.at_close.or(t.after_connect)),
            tls: r.tls.as_ref().map(|tls| Arc::new(TlsLatest::of(r, tls))),
        }
    }

    /// The verdict.
    pub fn status(&self) -> Status {
        self.status
    }

    /// Whether this result has what a family `needs` (see [`Needs`]).
    pub fn has(&self, needs: Needs) -> bool {
        match needs {
            Needs::Nothing => true,
            Needs::Tls => self.tls.is_some(),
            Needs::Tcp => self.tcp.is_some(),
            Needs::SchedulingDelay => self.scheduling_delay_ms.is_some(),
        }
    }
}

impl TlsLatest {
    fn of(r: &CheckResult, tls: &TlsReport) -> TlsLatest {
        let expiry = tls.first_expiry();
        let leaf = tls.chain.first().map(|c| {
            let dns_names: Vec<&str> = c
                .sans
                .iter()
                .map(String::as_str)
                .filter(|n| n.parse::<IpAddr>().is_err())
                .collect();
            [
                c.sha256.replace(':', "").to_ascii_lowercase(),
                c.issuer_rfc2253.clone(),
                c.subject_rfc2253.clone(),
                dns_names.join(","),
            ]
        });
        TlsLatest {
            first_expiry: expiry.map(|e| e.unix_timestamp()),
            seconds_left: expiry.map(|e| (e - r.started_at).whole_seconds()),
            verified: tls.verified,
            leaf,
            version: tls.version.as_deref().map(blackbox_tls_version),
            ocsp: tls
                .ocsp
                .as_ref()
                .map(|o| (o.status, o.next_update.map(|n| n.unix_timestamp()))),
            policy: tls.policy.as_ref().map(PolicyLatest::of),
        }
    }
}

impl PolicyLatest {
    fn of(p: &PolicyReport) -> PolicyLatest {
        let v = p.versions;
        PolicyLatest {
            versions: [v.tls1_0, v.tls1_1, v.tls1_2, v.tls1_3],
            weak_ciphers: p.weak_ciphers.len(),
            findings: p.findings.len(),
            weak_key: p.weak_key,
            weak_signature: p.weak_signature,
            chain_in_order: p.chain_in_order,
        }
    }
}

/// blackbox_exporter's `probe_ip_addr_hash`: 32-bit FNV-1a of the address's bytes.
fn ip_addr_hash(ip: IpAddr) -> u32 {
    let bytes = match ip {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    };
    bytes.iter().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(*b)).wrapping_mul(0x0100_0193)
    })
}

/// `TLSv1.3` as blackbox_exporter writes it: `TLS 1.3`.
fn blackbox_tls_version(version: &str) -> String {
    match version.strip_prefix("TLSv") {
        Some(rest) => format!("TLS {rest}"),
        None => version.to_owned(),
    }
}
