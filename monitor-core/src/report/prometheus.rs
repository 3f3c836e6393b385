//! The `prometheus` reporter and `watch`'s `/metrics`: the Prometheus text exposition of
//! the latest results with blackbox_exporter's tcp prober names, rendered a piece at a
//! time so that a server holds one piece per client.

use std::collections::HashMap;
use std::fmt::Write as _;

use monitor_spec::prometheus::{labels, number, seconds};
use monitor_spec::result::{CheckResult, ErrorKind, Status, TcpSample};

use super::latest::{Latest, Needs, PolicyLatest};
use super::{Counter, STATUSES, status_str};

/// Prometheus text exposition (format 0.0.4) of the latest results, using
/// blackbox_exporter's metric names where they exist, and `monitor_checks_total` from
/// `counters` when given (`watch`'s `/metrics`; `run` passes none).
///
/// Every series carries `monitor="ID"`; when several results share an id, the last one
/// wins. Families:
///
/// - `probe_success`: 1 when passed or degraded, 0 when failed.
/// - `probe_duration_seconds`: the last attempt's total time.
/// - `probe_dns_lookup_time_seconds`: name resolution (0 when it was not reached, as in
///   blackbox_exporter).
/// - `probe_ip_protocol`: 4 or 6 from the address that answered, 0 without one.
/// - `probe_ip_addr_hash`: FNV-1a (32 bits) of that address's bytes (4 for IPv4, 16 for
///   IPv6), as blackbox_exporter hashes its `net.IP`; 0 without one.
/// - `probe_ssl_earliest_cert_expiry`: unix seconds of the earliest `not_after` in the
///   presented chain, only for results with a TLS chain.
/// - `probe_ssl_last_chain_expiry_timestamp_seconds`: the earliest `not_after` of the
///   chain that verified, only when it verified (blackbox's verified chain also holds the
///   trust anchor; ours counts the certificates the server presented).
/// - `probe_ssl_last_chain_info{fingerprint_sha256,issuer,subject,subjectalternative}`: 1,
///   for the server's certificate (the first presented) when it is known: its SHA-256 in
///   lower-case hex, issuer and subject as Go's `pkix.Name.String()` writes them, and its
///   DNS names joined by `,` (IP addresses left out, as blackbox's `DNSNames`).
/// - `probe_tls_version_info{version="TLS 1.3"}`: 1, only when a version was negotiated.
/// - `probe_failed_due_to_regex`: 1 when the server answered but not with what the
///   monitor waited for or asserted (`closed_early`, `unexpected_response`,
///   `assertion_failed`), else 0; a timeout or an overlong answer is 0, as in blackbox.
/// - `monitor_status{status}`: 1 for the current status, 0 for the two others.
/// - `monitor_phase_duration_seconds{phase}`: `dns`, `connect`, `tls`, `first_byte` and
///   `total`, for the phases reached.
/// - `monitor_ssl_seconds_left`: seconds from the check's start to the earliest expiry,
///   when known (`monitor_ssl_days_left` before promtool's lint asked for base units).
/// - `monitor_ssl_ocsp_status{status}`: 1 for what OCSP said of the server's certificate
///   (`good`, `revoked`, `unknown`, `not_stapled`, `invalid`, `unavailable`), 0 for the
///   others, only when `tls.ocsp` is not `off` (blackbox_exporter has no OCSP family, so
///   the name is ours and not `probe_`).
/// - `monitor_ssl_ocsp_next_update_timestamp_seconds`: the answer's nextUpdate in unix
///   seconds, when an answer gave one.
/// - `monitor_consecutive_failures`: failed checks in a row up to the latest, when the
///   exposition keeps them (`watch`).
/// - `monitor_checks_total{status}`: a counter per monitor and status, from `counters`.
///
/// The TLS compliance scan (only for results with `tls.policy`, see [`policy_families`]):
///
/// - `monitor_tls_policy_version_accepted{version}`: 1 or 0 for `TLS 1.0` to `TLS 1.3`,
///   each version the scan could tell.
/// - `monitor_tls_policy_weak_ciphers`: how many weak cipher suites the server accepted.
/// - `monitor_tls_policy_findings`: how many findings the scan made.
/// - `monitor_tls_policy_weak_key`: 1 when the leaf's key is weak, else 0.
/// - `monitor_tls_policy_weak_signature`: 1 when a certificate is signed with SHA-1 or MD5.
/// - `monitor_tls_policy_chain_in_order`: 1 or 0, when the chain has two certificates or
///   more.
///
/// The kernel's view of the connection (`TCP_INFO`, Linux), from the reading at close,
/// else the one after connect; only for results that connected:
///
/// - `monitor_tcp_rtt_seconds`: the smoothed round-trip time (`tcpi_rtt`).
/// - `monitor_tcp_rtt_variance_seconds`: its variance (`tcpi_rttvar`).
/// - `monitor_tcp_retransmitted_segments`: segments the prober retransmitted
///   (`tcpi_total_retrans`).
/// - `monitor_tcp_lost_packets`: segments the kernel still counted as lost (`tcpi_lost`).
/// - `monitor_scheduling_delay_seconds`: how late the runner polled the check after its
///   events (`timings.scheduling_delay_ms`), only when reported.
pub fn prometheus(results: &[&CheckResult], counters: &[Counter]) -> String {
    let latest = latest_per_id(results);
    let exposed = Listed {
        latest: latest.iter().map(|r| (&*r.id, Latest::of(r))).collect(),
        counters,
    };
    let mut out = String::new();
    PrometheusText::default().fill(&mut out, &exposed, usize::MAX);
    out
}

/// What [`PrometheusText`] renders: the monitors' latest results (one per id, in the
/// order shown) and their check counters, each read by index so that a server can render
/// a large exposition a piece at a time.
pub trait Exposition {
    /// How many monitors there are.
    fn results(&self) -> usize;
    /// The `i`th monitor's id and what its latest result shows, `None` before its first.
    fn result(&self, i: usize) -> Option<(&str, &Latest)>;
    /// How many monitors have counters.
    fn counted(&self) -> usize;
    /// The `i`th monitor with counters: its id and its counts per status, in order.
    fn counters(&self, i: usize) -> (&str, Vec<(Status, u64)>);
    /// How many checks in a row, up to the `i`th result, failed, when known (`watch`
    /// keeps it; a single run does not).
    fn consecutive_failures(&self, i: usize) -> Option<u64> {
        let _ = i;
        None
    }
}

/// The arguments of [`prometheus`] as an [`Exposition`].
struct Listed<'a> {
    latest: Vec<(&'a str, Latest)>,
    counters: &'a [Counter],
}

impl Exposition for Listed<'_> {
    fn results(&self) -> usize {
        self.latest.len()
    }
    fn result(&self, i: usize) -> Option<(&str, &Latest)> {
        self.latest.get(i).map(|(id, l)| (*id, l))
    }
    fn counted(&self) -> usize {
        self.counters.len()
    }
    fn counters(&self, i: usize) -> (&str, Vec<(Status, u64)>) {
        let c = &self.counters[i];
        (&c.monitor, vec![(c.status, c.count)])
    }
}

/// A family's samples (labels, value) for one result.
type Samples = Vec<(String, String)>;

/// Where a family's samples come from.
enum Rows {
    /// One call per result: the monitor's id and what its latest result shows.
    Results(fn(&str, &Latest) -> Samples),
    /// The counters.
    Counters,
    /// One per result, from [`Exposition::consecutive_failures`].
    Streaks,
}

/// A family: name, type, help and its samples.
struct Family {
    name: &'static str,
    kind: &'static str,
    help: &'static str,
    rows: Rows,
}

fn one(id: &str, value: String) -> Samples {
    vec![(labels(&[("monitor", id)]), value)]
}

/// `monitor_ssl_ocsp_status`: one sample per OCSP status, 1 for the reported one.
fn ocsp_status(id: &str, r: &Latest) -> Samples {
    use monitor_spec::result::OcspStatus as S;
    let Some((status, _)) = r.tls.as_ref().and_then(|t| t.ocsp) else {
        return Vec::new();
    };
    [
        (S::Good, "good"),
        (S::Revoked, "revoked"),
        (S::Unknown, "unknown"),
        (S::NotStapled, "not_stapled"),
        (S::Invalid, "invalid"),
        (S::Unavailable, "unavailable"),
    ]
    .into_iter()
    .map(|(s, name)| {
        let l = labels(&[("monitor", id), ("status", name)]);
        (l, u8::from(status == s).to_string())
    })
    .collect()
}

/// The earliest not-after of the chain in unix seconds, when there is one (and, when
/// `verified` is asked, the chain verified).
fn first_expiry(id: &str, r: &Latest, verified: bool) -> Samples {
    let tls = r.tls.as_ref().filter(|t| t.verified || !verified);
    let expiry = tls.and_then(|t| t.first_expiry);
    expiry.map_or_else(Vec::new, |e| one(id, e.to_string()))
}

/// The families of [`prometheus`], in order.
const FAMILIES: [Family; 23] = [
    Family {
        name: "probe_success",
        kind: "gauge",
        help: "Whether the check succeeded (1) or failed (0); degraded counts as success.",
        rows: Rows::Results(|id, r| one(id, u8::from(r.status != Status::Failed).to_string())),
    },
    Family {
        name: "probe_duration_seconds",
        kind: "gauge",
        help: "How long the check (its last attempt) took in seconds.",
        rows: Rows::Results(|id, r| one(id, number(seconds(r.total_ms)))),
    },
    Family {
        name: "probe_dns_lookup_time_seconds",
        kind: "gauge",
        help: "How long name resolution took in seconds (0 when not reached).",
        rows: Rows::Results(|id, r| one(id, number(seconds(r.phases[0].unwrap_or(0.0))))),
    },
    Family {
        name: "probe_ip_protocol",
        kind: "gauge",
        help: "IP protocol of the address that answered (4 or 6; 0 when none answered).",
        rows: Rows::Results(|id, r| one(id, r.ip_protocol.to_string())),
    },
    Family {
        name: "probe_ip_addr_hash",
        kind: "gauge",
        help: "FNV-1a hash of the IP address that answered, to see it change (0 when none answered).",
        rows: Rows::Results(|id, r| one(id, r.ip_hash.to_string())),
    },
    Family {
        name: "probe_ssl_earliest_cert_expiry",
        kind: "gauge",
        help: "Earliest not-after of the presented certificate chain in unix seconds.",
        rows: Rows::Results(|id, r| first_expiry(id, r, false)),
    },
    Family {
        name: "probe_ssl_last_chain_expiry_timestamp_seconds",
        kind: "gauge",
        help: "Earliest not-after of the verified certificate chain in unix seconds.",
        rows: Rows::Results(|id, r| first_expiry(id, r, true)),
    },
    Family {
        name: "probe_ssl_last_chain_info",
        kind: "gauge",
        help: "The server certificate: SHA-256 fingerprint, subject, issuer and DNS names.",
        rows: Rows::Results(|id, r| {
            let leaf = r.tls.as_ref().and_then(|t| t.leaf.as_ref());
            leaf.map_or_else(Vec::new, |[fingerprint, issuer, subject, dns_names]| {
                let l = labels(&[
                    ("monitor", id),
                    ("fingerprint_sha256", fingerprint),
                    ("issuer", issuer),
                    ("subject", subject),
                    ("subjectalternative", dns_names),
                ]);
                vec![(l, "1".into())]
            })
        }),
    },
    Family {
        name: "probe_tls_version_info",
        kind: "gauge",
        help: "The negotiated TLS version.",
        rows: Rows::Results(|id, r| {
            let version = r.tls.as_ref().and_then(|t| t.version.as_deref());
            version.map_or_else(Vec::new, |v| {
                vec![(labels(&[("monitor", id), ("version", v)]), "1".into())]
            })
        }),
    },
    Family {
        name: "probe_failed_due_to_regex",
        kind: "gauge",
        help: "Whether the check failed because the response did not match what was expected or asserted.",
        rows: Rows::Results(|id, r| {
            one(
                id,
                u8::from(r.error.is_some_and(failed_on_response)).to_string(),
            )
        }),
    },
    Family {
        name: "monitor_status",
        kind: "gauge",
        help: "The check's status: 1 for the current one, 0 for the others.",
        rows: Rows::Results(|id, r| {
            STATUSES
                .iter()
                .map(|&s| {
                    let l = labels(&[("monitor", id), ("status", status_str(s))]);
                    (l, u8::from(r.status == s).to_string())
                })
                .collect()
        }),
    },
    Family {
        name: "monitor_phase_duration_seconds",
        kind: "gauge",
        help: "Duration of each phase the check reached in seconds.",
        rows: Rows::Results(|id, r| {
            let reached = ["dns", "connect", "tls", "first_byte"]
                .into_iter()
                .zip(r.phases)
                .filter_map(|(phase, ms)| Some((phase, ms?)));
            reached
                .chain([("total", r.total_ms)])
                .map(|(phase, ms)| {
                    let l = labels(&[("monitor", id), ("phase", phase)]);
                    (l, number(seconds(ms)))
                })
                .collect()
        }),
    },
    Family {
        name: "monitor_ssl_seconds_left",
        kind: "gauge",
        help: "Seconds from the check to the earliest certificate expiry (negative once expired).",
        rows: Rows::Results(|id, r| {
            let left = r.tls.as_ref().and_then(|t| t.seconds_left);
            left.map_or_else(Vec::new, |s| one(id, s.to_string()))
        }),
    },
    Family {
        name: "monitor_ssl_ocsp_status",
        kind: "gauge",
        help: "What OCSP said of the server's certificate: 1 for the current status, 0 for the others.",
        rows: Rows::Results(ocsp_status),
    },
    Family {
        name: "monitor_ssl_ocsp_next_update_timestamp_seconds",
        kind: "gauge",
        help: "When the OCSP answer about the server's certificate stops being current, in unix seconds.",
        rows: Rows::Results(|id, r| {
            let next = r.tls.as_ref().and_then(|t| t.ocsp?.1);
            next.map_or_else(Vec::new, |n| one(id, n.to_string()))
        }),
    },
    Family {
        name: "monitor_consecutive_failures",
        kind: "gauge",
        help: "How many checks in a row, up to the latest, failed.",
        rows: Rows::Streaks,
    },
    policy_families::VERSIONS,
    policy_families::WEAK_CIPHERS,
    policy_families::FINDINGS,
    policy_families::WEAK_KEY,
    policy_families::WEAK_SIGNATURE,
    policy_families::CHAIN_IN_ORDER,
    Family {
        name: "monitor_checks_total",
        kind: "counter",
        help: "Checks run so far per monitor and status.",
        rows: Rows::Counters,
    },
];

/// `value` of the result's latest `TCP_INFO` reading, when there is one.
fn tcp(id: &str, r: &Latest, value: fn(TcpSample) -> String) -> Samples {
    r.tcp.map_or_else(Vec::new, |s| one(id, value(s)))
}

/// The families of the kernel's view, after [`FAMILIES`].
const TCP_FAMILIES: [Family; 5] = [
    Family {
        name: "monitor_tcp_rtt_seconds",
        kind: "gauge",
        help: "The kernel's smoothed round-trip time of the check's connection in seconds.",
        rows: Rows::Results(|id, r| tcp(id, r, |s| number(seconds(s.rtt_ms)))),
    },
    Family {
        name: "monitor_tcp_rtt_variance_seconds",
        kind: "gauge",
        help: "The kernel's round-trip time variance of the check's connection in seconds.",
        rows: Rows::Results(|id, r| tcp(id, r, |s| number(seconds(s.rtt_var_ms)))),
    },
    Family {
        name: "monitor_tcp_retransmitted_segments",
        kind: "gauge",
        help: "Segments the prober retransmitted on the check's connection.",
        rows: Rows::Results(|id, r| tcp(id, r, |s| s.retransmits.to_string())),
    },
    Family {
        name: "monitor_tcp_lost_packets",
        kind: "gauge",
        help: "Segments the kernel counted as lost on the check's connection when it closed.",
        rows: Rows::Results(|id, r| tcp(id, r, |s| s.lost.to_string())),
    },
    Family {
        name: "monitor_scheduling_delay_seconds",
        kind: "gauge",
        help: "How late the runner polled the check after its events in seconds, left out of its phases.",
        rows: Rows::Results(|id, r| {
            let delay = r.scheduling_delay_ms;
            delay.map_or_else(Vec::new, |ms| one(id, number(seconds(ms))))
        }),
    },
];

/// The `i`th family: [`FAMILIES`], then [`TCP_FAMILIES`].
fn family(i: usize) -> Option<&'static Family> {
    FAMILIES
        .get(i)
        .or_else(|| TCP_FAMILIES.get(i.checked_sub(FAMILIES.len())?))
}

/// How many families the exposition has: [`PrometheusText::next_family`] moves through
/// them.
pub const FAMILY_COUNT: usize = FAMILIES.len() + TCP_FAMILIES.len();

/// Renders the exposition of [`prometheus`] a piece at a time: each [`fill`] appends the
/// next lines, so that a server holds one piece per client rather than the whole text.
/// A server whose monitors do not fit one [`Exposition`] renders each family over pieces
/// of its monitors in turn with [`family_rows`] and [`next_family`].
///
/// [`fill`]: PrometheusText::fill
/// [`family_rows`]: PrometheusText::family_rows
/// [`next_family`]: PrometheusText::next_family
#[derive(Debug, Default, Clone)]
pub struct PrometheusText {
    family: usize,
    row: usize,
    /// Whether the current family's HELP and TYPE lines are written (only before its
    /// first sample: a family without samples writes nothing).
    header: bool,
}

impl PrometheusText {
    /// Appends the next lines of `exposed` to `out` until `out` holds at least `min` bytes
    /// or the text is complete; false once it is complete.
    pub fn fill(&mut self, out: &mut String, exposed: &dyn Exposition, min: usize) -> bool {
        while out.len() < min {
            let Some(family) = family(self.family) else {
                return false;
            };
            if self.row >= rows_of(family, exposed) {
                self.next_family();
                continue;
            }
            self.write_row(out, family, exposed, self.row);
            self.row += 1;
        }
        family(self.family).is_some()
    }

    /// What a result needs to have for the current family to show it.
    pub fn needs(&self) -> Needs {
        match family(self.family).map(|f| f.name) {
            Some(n) if n.contains("_ssl_") || n.contains("_tls_") => Needs::Tls,
            Some(n) if n.starts_with("monitor_tcp_") => Needs::Tcp,
            Some("monitor_scheduling_delay_seconds") => Needs::SchedulingDelay,
            _ => Needs::Nothing,
        }
    }

    /// Whether every family is written.
    pub fn done(&self) -> bool {
        family(self.family).is_none()
    }

    /// Appends the current family's lines for every row of `exposed` (a piece of the
    /// monitors, following the pieces given before for this family).
    pub fn family_rows(&mut self, out: &mut String, exposed: &dyn Exposition) {
        let Some(family) = family(self.family) else {
            return;
        };
        for i in 0..rows_of(family, exposed) {
            self.write_row(out, family, exposed, i);
        }
    }

    /// Moves to the next family; false once every family is written.
    pub fn next_family(&mut self) -> bool {
        *self = PrometheusText {
            family: self.family + 1,
            ..PrometheusText::default()
        };
        !self.done()
    }

    /// Appends the lines of `family` for row `i` of `exposed`, after the family's header
    /// when they are its first.
    fn write_row(&mut self, out: &mut String, family: &Family, exposed: &dyn Exposition, i: usize) {
        let samples = match family.rows {
            Rows::Results(f) => exposed.result(i).map_or_else(Vec::new, |(id, r)| f(id, r)),
            Rows::Streaks => match (exposed.result(i), exposed.consecutive_failures(i)) {
                (Some((id, _)), Some(n)) => one(id, n.to_string()),
                _ => Vec::new(),
            },
            Rows::Counters => {
                let (monitor, counts) = exposed.counters(i);
                counts
                    .into_iter()
                    .map(|(status, count)| {
                        let l = labels(&[("monitor", monitor), ("status", status_str(status))]);
                        (l, count.to_string())
                    })
                    .collect()
            }
        };
        if samples.is_empty() {
            return;
        }
        if !self.header {
            self.header = true;
            let _ = writeln!(out, "# HELP {} {}", family.name, family.help);
            let _ = writeln!(out, "# TYPE {} {}", family.name, family.kind);
        }
        for (labels, value) in samples {
            let _ = writeln!(out, "{}{labels} {value}", family.name);
        }
    }
}

/// How many rows `family` reads of `exposed`.
fn rows_of(family: &Family, exposed: &dyn Exposition) -> usize {
    match family.rows {
        Rows::Results(_) | Rows::Streaks => exposed.results(),
        Rows::Counters => exposed.counted(),
    }
}

/// The results with one per id, the last of each, in the order ids first appear.
fn latest_per_id<'a>(results: &[&'a CheckResult]) -> Vec<&'a CheckResult> {
    let mut at: HashMap<&str, usize> = HashMap::new();
    let mut out: Vec<&'a CheckResult> = Vec::with_capacity(results.len());
    for &r in results {
        match at.get(&*r.id) {
            Some(&i) => {
                if let Some(slot) = out.get_mut(i) {
                    *slot = r;
                }
            }
            None => {
                at.insert(&r.id, out.len());
                out.push(r);
            }
        }
    }
    out
}

/// The kinds that mean the server answered but not with what the monitor waited for or
/// asserted: our stand-in for blackbox_exporter's `probe_failed_due_to_regex`.
fn failed_on_response(kind: ErrorKind) -> bool {
    matches!(
        kind,
        ErrorKind::ClosedEarly | ErrorKind::UnexpectedResponse | ErrorKind::AssertionFailed
    )
}

/// The families of the TLS compliance scan, from `tls.policy` of each result's TLS report.
mod policy_families {
    use super::{Family, Latest, PolicyLatest, Rows, Samples, labels, one};

    fn policy(r: &Latest) -> Option<&PolicyLatest> {
        r.tls.as_ref().and_then(|t| t.policy.as_ref())
    }

    fn value(id: &str, r: &Latest, f: fn(&PolicyLatest) -> Option<String>) -> Samples {
        policy(r).and_then(f).map_or_else(Vec::new, |v| one(id, v))
    }

    pub(super) const VERSIONS: Family = Family {
        name: "monitor_tls_policy_version_accepted",
        kind: "gauge",
        help: "Whether the server accepted the TLS version offered alone (1) or refused it (0).",
        rows: Rows::Results(|id, r| {
            let Some(p) = policy(r) else {
                return Vec::new();
            };
            ["TLS 1.0", "TLS 1.1", "TLS 1.2", "TLS 1.3"]
                .into_iter()
                .zip(p.versions)
                .filter_map(|(version, accepted)| {
                    let l = labels(&[("monitor", id), ("version", version)]);
                    accepted.map(|a| (l, u8::from(a).to_string()))
                })
                .collect()
        }),
    };
    pub(super) const WEAK_CIPHERS: Family = Family {
        name: "monitor_tls_policy_weak_ciphers",
        kind: "gauge",
        help: "How many weak cipher suites the server accepted.",
        rows: Rows::Results(|id, r| value(id, r, |p| Some(p.weak_ciphers.to_string()))),
    };
    pub(super) const FINDINGS: Family = Family {
        name: "monitor_tls_policy_findings",
        kind: "gauge",
        help: "How many findings the TLS compliance scan made.",
        rows: Rows::Results(|id, r| value(id, r, |p| Some(p.findings.to_string()))),
    };
    pub(super) const WEAK_KEY: Family = Family {
        name: "monitor_tls_policy_weak_key",
        kind: "gauge",
        help: "Whether the server certificate's key is weak (RSA or DSA under 2048 bits, EC under 224).",
        rows: Rows::Results(|id, r| value(id, r, |p| Some(u8::from(p.weak_key).to_string()))),
    };
    pub(super) const WEAK_SIGNATURE: Family = Family {
        name: "monitor_tls_policy_weak_signature",
        kind: "gauge",
        help: "Whether a certificate of the chain (roots aside) is signed with SHA-1 or MD5.",
        rows: Rows::Results(|id, r| value(id, r, |p| Some(u8::from(p.weak_signature).to_string()))),
    };
    pub(super) const CHAIN_IN_ORDER: Family = Family {
        name: "monitor_tls_policy_chain_in_order",
        kind: "gauge",
        help: "Whether each certificate of the presented chain is followed by its issuer.",
        rows: Rows::Results(|id, r| {
            value(id, r, |p| p.chain_in_order.map(|o| u8::from(o).to_string()))
        }),
    };
}
