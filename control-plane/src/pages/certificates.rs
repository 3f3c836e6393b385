//! `/certificates`: every certificate the latest TLS results of a project's monitors saw,
//! once each (by SHA-256 fingerprint), earliest expiry first, with the monitors and
//! locations that see it; the view an operator opens before a renewal.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use serde::Deserialize;
use time::OffsetDateTime;

use super::layout::{self, escape, query_value};
use crate::store::LatestResult;

/// The style of the certificates page, after [`layout::STYLE`].
const STYLE: &str = "
.cs{width:100%}.cs td{overflow-wrap:anywhere}.cs code{font-size:11px}
tr.b td:first-child{color:var(--bad);font-weight:600}tr.w td:first-child{color:var(--warn);font-weight:600}
.cs ul{margin:0;padding-left:1rem}
@media (max-width:40rem){.cs thead{display:none}.cs tr{display:block;border-bottom:1px solid var(--line);padding:.3rem 0}
.cs td{display:block;border:0;padding:.1rem 0}}
";

/// What a deployed monitor contributes to the page: its name and `tls.expiry_warn_days`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonitorInfo {
    /// Its name.
    pub name: String,
    /// Days before expiry at which its checks degrade.
    pub warn_days: u32,
}

/// A certificate of a stored result's chain, read leniently so that results stored by
/// another version still read.
#[derive(Debug, Clone, Deserialize)]
struct CertView {
    #[serde(default)]
    subject: String,
    #[serde(default)]
    issuer: String,
    #[serde(with = "time::serde::rfc3339")]
    not_after: OffsetDateTime,
    #[serde(default)]
    sha256: String,
    #[serde(default)]
    key_type: String,
    #[serde(default)]
    key_bits: Option<u32>,
}

#[derive(Debug, Deserialize)]
struct ResultView {
    #[serde(default)]
    tls: Option<TlsView>,
}

#[derive(Debug, Deserialize)]
struct TlsView {
    #[serde(default)]
    chain: Vec<CertView>,
}

/// A certificate with who sees it.
#[derive(Debug, Clone)]
struct Seen {
    cert: CertView,
    /// Monitor id → its locations.
    by: BTreeMap<String, BTreeSet<String>>,
}

/// Every certificate of `latest` (results of monitors not in `monitors` are left out),
/// once per fingerprint, earliest expiry first (then by fingerprint).
fn collect(latest: &[LatestResult], monitors: &BTreeMap<String, MonitorInfo>) -> Vec<Seen> {
    let mut by_key: BTreeMap<String, Seen> = BTreeMap::new();
    for r in latest {
        if !monitors.contains_key(&r.monitor) {
            continue;
        }
        let Some(json) = &r.json else { continue };
        let chain = match serde_json::from_str::<ResultView>(json) {
            Ok(view) => view.tls.map(|t| t.chain).unwrap_or_default(),
            Err(e) => {
                tracing::warn!(monitor = %r.monitor, location = %r.location, error = %e, "unreadable stored result");
                continue;
            }
        };
        for cert in chain {
            let key = if cert.sha256.is_empty() {
                format!("{}\n{}", cert.subject, cert.not_after)
            } else {
                cert.sha256.to_ascii_uppercase()
            };
            by_key
                .entry(key)
                .or_insert_with(|| Seen {
                    cert,
                    by: BTreeMap::new(),
                })
                .by
                .entry(r.monitor.clone())
                .or_default()
                .insert(r.location.clone());
        }
    }
    let mut seen: Vec<Seen> = by_key.into_values().collect();
    seen.sort_by(|a, b| {
        (a.cert.not_after, &a.cert.sha256).cmp(&(b.cert.not_after, &b.cert.sha256))
    });
    seen
}

/// The certificates page of `project` from the latest results with their full JSON
/// (`Store::latest_results_full`) and the deployed monitors by id, at `now`.
pub fn render(
    project: &str,
    latest: &[LatestResult],
    monitors: &BTreeMap<String, MonitorInfo>,
    now: OffsetDateTime,
) -> String {
    let seen = collect(latest, monitors);
    let mut out = String::with_capacity(64 * 1024);
    layout::start(
        &mut out,
        &format!("{project} · certificates"),
        Some(project),
        false,
        STYLE,
        None,
    );
    let days = |s: &Seen| monitor_spec::result::days_until(s.cert.not_after, now);
    let expired = seen.iter().filter(|s| days(s) < 0).count();
    let _ = write!(
        out,
        "<h1>Certificates</h1><p>{} certificates, <span class=\"failed\" data-expired=\"{expired}\">{expired} expired</span> · \
         <span class=\"muted\">generated {}</span></p>",
        seen.len(),
        escape(&layout::clock(now))
    );
    if seen.is_empty() {
        out.push_str("<p class=\"muted\">no TLS results yet</p>");
        layout::end(&mut out);
        return out;
    }
    out.push_str(
        "<table class=\"cs\"><thead><tr><th>expires</th><th>subject</th><th>issuer</th>\
         <th>key</th><th>SHA-256</th><th>seen by</th></tr></thead><tbody>",
    );
    let q = query_value(project);
    for s in &seen {
        let left = days(s);
        // The most days any monitor seeing it warns at.
        let warn =
            s.by.keys()
                .filter_map(|id| monitors.get(id))
                .map(|m| i64::from(m.warn_days))
                .max()
                .unwrap_or(0);
        let class = if left < 0 {
            " class=\"b\""
        } else if left < warn {
            " class=\"w\""
        } else {
            ""
        };
        let date = monitor_spec::result::utc_seconds(s.cert.not_after, ' ');
        let left_text = if left < 0 {
            format!("expired {} days ago", -left)
        } else {
            format!("{left} days left")
        };
        let key = match s.cert.key_bits {
            Some(bits) => format!("{} {bits}", s.cert.key_type),
            None => s.cert.key_type.clone(),
        };
        let _ = write!(
            out,
            "<tr{class} data-sha256=\"{}\" data-days-left=\"{left}\"><td>{} UTC<br>{left_text}</td>\
             <td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td><td><ul>",
            escape(&s.cert.sha256),
            escape(&date),
            escape(&s.cert.subject),
            escape(&s.cert.issuer),
            escape(&key),
            escape(&s.cert.sha256),
        );
        for (id, locations) in &s.by {
            let name = monitors.get(id).map_or(id.as_str(), |m| m.name.as_str());
            let _ = write!(
                out,
                "<li data-monitor=\"{}\"><a href=\"/monitors/{}?project={q}\">{}</a> <small>{}</small></li>",
                escape(id),
                query_value(id),
                escape(name),
                escape(
                    &locations
                        .iter()
                        .map(String::as_str)
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            );
        }
        out.push_str("</ul></td></tr>");
    }
    out.push_str("</tbody></table>");
    layout::end(&mut out);
    out
}
