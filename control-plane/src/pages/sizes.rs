//! The page size budget of issue 17: each page under 100 KB as sent (gzip) for 500
//! monitors. Renders the overview and the certificates page for 500 monitors and prints
//! both sizes (`cargo test -p control-plane --lib pages::sizes -- --nocapture`).

// The sizes are the figures a reviewer reads: printed on stderr.
#![allow(clippy::print_stderr)]

use std::collections::BTreeMap;
use std::io::Write as _;

use flate2::Compression;
use flate2::write::GzEncoder;
use monitor_spec::Status;
use serde_json::json;

use super::certificates::{self, MonitorInfo};
use super::overview::tests::{NOW, at, monitor, now, recent};
use super::overview::{self, Filter, Overview};
use crate::store::{LatestResult, ResultFacts};

/// The most bytes a page may take as sent.
const BUDGET: usize = 100 * 1024;

const MONITORS: usize = 500;

fn gzip(text: &str) -> usize {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(text.as_bytes()).unwrap();
    encoder.finish().unwrap().len()
}

#[test]
fn the_overview_of_500_monitors_is_under_100_kb_gzipped() {
    let mut monitors = Vec::new();
    let mut results = Vec::new();
    for i in 0..MONITORS {
        let id = format!("service-{i:03}");
        // Every 50th monitor fails in us, now and in a few runs before.
        let failing = i % 50 == 7;
        let us = if failing {
            Status::Failed
        } else {
            Status::Passed
        };
        let group = format!("team {}", i % 12);
        let mut m = monitor(
            &id,
            &format!("Service {i} answers on its port"),
            Some(&group),
            &["prod", if i % 2 == 0 { "eu-core" } else { "edge" }],
            vec![
                at("eu", Status::Passed, 10.0 + (i % 17) as f64),
                at("us", us, 80.5),
            ],
        );
        m.locations[0].days_left = Some(30 + (i % 60) as i64);
        monitors.push(m);
        // Monitors start at different seconds, as their ticks spread them.
        let jitter = (i * 7 % 30) as i64;
        for (location, offset) in [("eu", jitter), ("us", 15 + jitter)] {
            for k in 0..90 {
                let failed = failing && location == "us" && (k % 20 < 3 || k < 2);
                let status = if failed {
                    Status::Failed
                } else {
                    Status::Passed
                };
                results.push(recent(&id, location, k * 30 + offset, status));
            }
        }
    }
    results.sort_by(|a, b| {
        (&a.monitor, &a.location, a.started_us).cmp(&(&b.monitor, &b.location, b.started_us))
    });
    let status = monitor_spec::api::ProjectStatus {
        project: "shop".to_owned(),
        generated_at: "2025-12-05T16:00:00Z".to_owned(),
        monitors,
        agents: Vec::new(),
    };
    for public in [false, true] {
        let page = overview::render(&Overview {
            status: &status,
            recent: &results,
            warn_days: &BTreeMap::new(),
            filter: &Filter::default(),
            public,
            now: now(),
            windows: &[],
        });
        assert_eq!(page.matches("<tr data-monitor=").count(), MONITORS);
        assert_eq!(page.matches("data-results=\"90\"").count(), MONITORS);
        let sent = gzip(&page);
        eprintln!(
            "overview of {MONITORS} monitors (public: {public}): {} B plain, {sent} B gzip",
            page.len()
        );
        assert!(sent < BUDGET, "{sent} B gzip");
    }
}

#[test]
fn the_certificates_of_500_tls_monitors_are_under_100_kb_gzipped() {
    let cert = |subject: &str, issuer: &str, days: i64, sha: String| {
        json!({
            "subject": subject, "issuer": issuer, "sans": [], "serial": "01",
            "not_before": "2025-01-01T00:00:00Z",
            "not_after": crate::status::rfc3339_us((NOW + days * 86_400) * 1_000_000),
            "days_left": days, "sha256": sha, "key_type": "EC", "key_bits": 256,
            "signature_algorithm": "ecdsa-with-SHA256", "self_issued": false,
        })
    };
    let fingerprint = |n: usize| {
        let digest = crate::hash::sha256_hex(n.to_string().as_bytes()).to_ascii_uppercase();
        digest
            .as_bytes()
            .chunks(2)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect::<Vec<_>>()
            .join(":")
    };
    let mut latest = Vec::new();
    let mut monitors = BTreeMap::new();
    for i in 0..MONITORS {
        let id = format!("site-{i:03}");
        monitors.insert(
            id.clone(),
            MonitorInfo {
                name: format!("Site {i} serves TLS"),
                warn_days: 21,
            },
        );
        let chain = json!([
            cert(
                &format!("CN=site-{i}.example.com"),
                "CN=Example Issuing CA 2,O=Example",
                (i % 90) as i64 - 3,
                fingerprint(i)
            ),
            cert(
                "CN=Example Issuing CA 2,O=Example",
                "CN=Example Root CA,O=Example",
                900,
                fingerprint(100_000)
            ),
        ]);
        for location in ["eu", "us"] {
            latest.push(LatestResult {
                monitor: id.clone(),
                location: location.to_owned(),
                agent: format!("{location}-1"),
                consecutive_failures: 0,
                status: Status::Passed,
                started_us: NOW * 1_000_000,
                facts: ResultFacts::default(),
                json: Some(json!({"status": "passed", "tls": {"chain": chain}}).to_string()),
                in_maintenance: false,
            });
        }
    }
    let page = certificates::render("shop", &latest, &monitors, now());
    assert_eq!(page.matches("<tr").count(), MONITORS + 2);
    let sent = gzip(&page);
    eprintln!(
        "certificates of {MONITORS} TLS monitors: {} B plain, {sent} B gzip",
        page.len()
    );
    assert!(sent < BUDGET, "{sent} B gzip");
}
