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
    // Expired from its `not_after` on, even while less than a whole day ago (0 days).
    let gone = |s: &Seen| s.cert.not_after < now;
    let expired = seen.iter().filter(|s| gone(s)).count();
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
        let class = if gone(s) {
            " class=\"b\""
        } else if left < warn {
            " class=\"w\""
        } else {
            ""
        };
        let date = monitor_spec::result::utc_seconds(s.cert.not_after, ' ');
        let left_text = if gone(s) {
            format!("expired {}", monitor_spec::result::expired_ago(left))
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

#[cfg(test)]
mod tests {
    use monitor_spec::Status;
    use serde_json::json;

    use super::*;
    use crate::pages::overview::tests::{NOW, now};
    use crate::store::ResultFacts;

    fn cert(subject: &str, days: i64, sha: &str) -> serde_json::Value {
        json!({
            "subject": subject, "issuer": "CN=<b>CA</b>", "not_before": "2025-01-01T00:00:00Z",
            // An hour past the whole days, away from now: days round toward zero.
            "not_after": crate::status::rfc3339_us((NOW + days * 86_400 + if days < 0 { -3600 } else { 3600 }) * 1_000_000),
            "sha256": sha, "key_type": "EC", "key_bits": 256,
        })
    }

    fn result(monitor: &str, location: &str, chain: serde_json::Value) -> LatestResult {
        LatestResult {
            monitor: monitor.to_owned(),
            location: location.to_owned(),
            agent: "a1".to_owned(),
            consecutive_failures: 0,
            status: Status::Passed,
            started_us: NOW * 1_000_000,
            facts: ResultFacts::default(),
            json: Some(json!({"status": "passed", "tls": {"chain": chain}}).to_string()),
            in_maintenance: false,
        }
    }

    fn info(name: &str, warn_days: u32) -> MonitorInfo {
        MonitorInfo {
            name: name.to_owned(),
            warn_days,
        }
    }

    /// `(sha256, days left, class, seen by)` of each row, in page order.
    fn rows(page: &str) -> Vec<(String, String, String, Vec<String>)> {
        page.split("<tr")
            .skip(2)
            .map(|row| {
                let attr = |name: &str| {
                    row.split(&format!("{name}=\""))
                        .nth(1)
                        .map(|r| r.split('"').next().unwrap().to_owned())
                        .unwrap_or_default()
                };
                let by = row
                    .split("<li data-monitor=\"")
                    .skip(1)
                    .map(|li| {
                        let id = li.split('"').next().unwrap();
                        let locations = li
                            .split("<small>")
                            .nth(1)
                            .unwrap()
                            .split('<')
                            .next()
                            .unwrap();
                        format!("{id} {locations}")
                    })
                    .collect();
                let class = if row.starts_with(" class=") {
                    attr("class")
                } else {
                    String::new()
                };
                (attr("data-sha256"), attr("data-days-left"), class, by)
            })
            .collect()
    }

    #[test]
    fn certificates_are_deduplicated_sorted_by_expiry_and_highlighted() {
        let root = cert("CN=root", 900, "RR");
        let latest = vec![
            result("api", "eu", json!([cert("CN=api", 40, "AA"), root.clone()])),
            result("api", "us", json!([cert("CN=api", 40, "AA"), root.clone()])),
            result(
                "mail",
                "eu",
                json!([cert("CN=mail", 10, "MM"), root.clone()]),
            ),
            result("old", "eu", json!([cert("CN=old", -2, "OO")])),
            // Not deployed any more: left out.
            result("gone", "eu", json!([cert("CN=gone", 1, "GG")])),
            // No TLS.
            LatestResult {
                json: Some(json!({"status": "passed"}).to_string()),
                ..result("tcp", "eu", json!([]))
            },
        ];
        let monitors = BTreeMap::from([
            ("api".to_owned(), info("API <script>", 21)),
            ("mail".to_owned(), info("Mail", 7)),
            ("old".to_owned(), info("Old", 21)),
            ("tcp".to_owned(), info("TCP", 21)),
        ]);
        let page = render("shop", &latest, &monitors, now());
        let s = |v: &str| v.to_owned();
        assert_eq!(
            rows(&page),
            [
                (s("OO"), s("-2"), s("b"), vec![s("old eu")]),
                (s("MM"), s("10"), s(""), vec![s("mail eu")]),
                (s("AA"), s("40"), s(""), vec![s("api eu, us")]),
                (
                    s("RR"),
                    s("900"),
                    s(""),
                    vec![s("api eu, us"), s("mail eu")]
                ),
            ]
        );
        assert!(page.contains("expired 2 days ago"));
        assert!(page.contains("data-expired=\"1\""));
        assert!(page.contains("<a href=\"/monitors/api?project=shop\">API &lt;script&gt;</a>"));
        assert!(page.contains("<td>CN=&lt;b&gt;CA&lt;/b&gt;</td>"));
        assert!(!page.contains("<script") && !page.contains("<b>"));
        // Under a monitor's warn days it is highlighted.
        let monitors = BTreeMap::from([("mail".to_owned(), info("Mail", 21))]);
        let page = render("shop", &latest[2..3], &monitors, now());
        assert_eq!(rows(&page)[0].2, "w");
    }

    #[test]
    fn a_project_without_tls_results_says_so() {
        let page = render("shop", &[], &BTreeMap::new(), now());
        assert!(page.contains("no TLS results yet"));
    }
}
