//! Unit tests of the overview: grouping, filters, bars, rows, escaping and the public view;
//! the sample data is shared with the page size tests.

use monitor_spec::api::{LocationStatus, Uptime};
use monitor_spec::{ErrorKind, ProbeError, Timings};

use super::*;

pub(crate) const NOW: i64 = 1_764_950_400; // 2025-12-05 16:00:00 UTC

pub(crate) fn now() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(NOW).unwrap()
}

/// A location's latest result; a failed one with an error naming an address.
pub(crate) fn at(location: &str, status: Status, total_ms: f64) -> LocationStatus {
    let error = (status != Status::Passed).then(|| ProbeError {
        kind: ErrorKind::Refused,
        message: format!("10.0.0.9:5432 refused <b>{location}</b>"),
        hints: vec!["is it running?".to_owned()],
    });
    LocationStatus {
        location: location.to_owned(),
        agent: format!("agent-{location}-7"),
        status,
        started_at: now() - time::Duration::seconds(20),
        error,
        timings: Timings {
            total_ms,
            ..Timings::default()
        },
        days_left: None,
        consecutive_failures: u64::from(status == Status::Failed) * 3,
        cert_expiry: None,
        uptime: Uptime::default(),
        in_maintenance: false,
    }
}

pub(crate) fn monitor(
    id: &str,
    name: &str,
    group: Option<&str>,
    tags: &[&str],
    locations: Vec<LocationStatus>,
) -> MonitorStatus {
    MonitorStatus {
        id: id.to_owned(),
        name: name.to_owned(),
        muted: false,
        activated: true,
        run_parallel: false,
        frequency: "30s".to_owned(),
        alert_channels: Vec::new(),
        group: group.map(str::to_owned),
        tags: tags.iter().map(|t| (*t).to_owned()).collect(),
        locations,
        uptime: Uptime {
            h24: Some(99.999),
            d7: Some(99.5),
            d30: None,
            d90: Some(100.0),
        },
        maintenance: None,
    }
}

/// A recent result `seconds` before now.
pub(crate) fn recent(monitor: &str, location: &str, seconds: i64, status: Status) -> RecentResult {
    let json = (status != Status::Passed).then(|| {
        serde_json::json!({
            "status": layout::verdict(status),
            "address": "10.0.0.9:5432",
            "error": {"kind": "refused", "message": format!("10.0.0.9:5432 refused <b>{location}</b>"), "hints": ["nc -vz 10.0.0.9 5432"]},
        })
        .to_string()
    });
    RecentResult {
        monitor: monitor.to_owned(),
        location: location.to_owned(),
        started_us: (NOW - seconds) * 1_000_000,
        status,
        total_us: 1500,
        error: (status != Status::Passed).then_some(ErrorKind::Refused),
        json,
        in_maintenance: false,
    }
}

fn project(monitors: Vec<MonitorStatus>) -> ProjectStatus {
    ProjectStatus {
        project: "shop".to_owned(),
        generated_at: "2025-12-05T16:00:00Z".to_owned(),
        monitors,
        agents: Vec::new(),
    }
}

fn sample() -> (ProjectStatus, Vec<RecentResult>) {
    let mut muted = monitor(
        "mq",
        "Queue",
        Some("backend"),
        &["prod"],
        vec![at("eu", Status::Passed, 3.0)],
    );
    muted.muted = true;
    let status = project(vec![
        monitor(
            "db",
            "Database",
            Some("backend"),
            &["prod", "db"],
            vec![
                at("eu", Status::Passed, 12.75),
                at("us", Status::Failed, 40.0),
            ],
        ),
        muted,
        monitor(
            "cdn",
            "Assets",
            Some("frontend"),
            &["web"],
            vec![at("us", Status::Degraded, 250.0)],
        ),
        monitor("zz", "Alpha", None, &[], vec![]),
        monitor(
            "api",
            "Api",
            Some("backend"),
            &["prod"],
            vec![at("eu", Status::Passed, 1.0)],
        ),
    ]);
    let mut recent = Vec::new();
    for i in 0..60 {
        recent.push(recent_of("db", "eu", i * 60, Status::Passed));
        let s = if (10..13).contains(&i) {
            Status::Failed
        } else {
            Status::Passed
        };
        recent.push(recent_of("db", "us", i * 60 + 30, s));
    }
    recent.sort_by(|a, b| {
        (&a.monitor, &a.location, a.started_us).cmp(&(&b.monitor, &b.location, b.started_us))
    });
    (status, recent)
}

fn recent_of(monitor: &str, location: &str, seconds: i64, status: Status) -> RecentResult {
    recent(monitor, location, seconds, status)
}

fn page(status: &ProjectStatus, recent: &[RecentResult], filter: &Filter, public: bool) -> String {
    render(&Overview {
        status,
        recent,
        warn_days: &BTreeMap::from([("db".to_owned(), 30)]),
        filter,
        public,
        now: now(),
        windows: &[],
    })
}

/// The rows' monitor ids in page order, with their group.
fn order(page: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut group = String::new();
    for piece in page.split('<').skip(1) {
        if let Some(rest) = piece.strip_prefix("tbody data-group=\"") {
            group = rest.split('"').next().unwrap().to_owned();
        } else if let Some(rest) = piece.strip_prefix("tr data-monitor=\"") {
            out.push(format!("{group}/{}", rest.split('"').next().unwrap()));
        }
    }
    out
}

fn check(filter: Filter, expected: &[&str]) {
    let (status, recent) = sample();
    assert_eq!(
        order(&page(&status, &recent, &filter, false)),
        expected,
        "{filter:?}"
    );
}

#[test]
fn monitors_are_grouped_by_name_with_no_group_last_and_filtered() {
    check(
        Filter::default(),
        &[
            "backend/api",
            "backend/db",
            "backend/mq",
            "frontend/cdn",
            "Other/zz",
        ],
    );
    let tag = |t: &str| Filter {
        tag: Some(t.to_owned()),
        ..Filter::default()
    };
    check(tag("prod"), &["backend/api", "backend/db", "backend/mq"]);
    check(tag("db"), &["backend/db"]);
    check(tag("none"), &[]);
    let location = |l: &str| Filter {
        location: Some(l.to_owned()),
        ..Filter::default()
    };
    check(location("us"), &["backend/db", "frontend/cdn"]);
    let status = |s: Status| Filter {
        status: Some(s),
        ..Filter::default()
    };
    check(status(Status::Failed), &["backend/db"]);
    check(
        status(Status::Passed),
        &["backend/api", "backend/db", "backend/mq"],
    );
    check(status(Status::Degraded), &["frontend/cdn"]);
    // With a location, the verdict is the one there.
    check(
        Filter {
            location: Some("eu".into()),
            status: Some(Status::Failed),
            tag: None,
        },
        &[],
    );
    check(
        Filter {
            location: Some("us".into()),
            status: Some(Status::Failed),
            tag: None,
        },
        &["backend/db"],
    );
}

#[test]
fn bad_filter_values_name_their_parameter() {
    let s = |v: &str| Some(v.to_owned());
    assert_eq!(Filter::new(s(""), s(""), s("")).unwrap(), Filter::default());
    assert_eq!(
        Filter::new(s("prod"), s("eu"), s("failed")).unwrap(),
        Filter {
            tag: s("prod"),
            location: s("eu"),
            status: Some(Status::Failed)
        }
    );
    for (tag, location, status, needle) in [
        (
            None,
            None,
            s("red"),
            "bad query: status `red` is not passed, degraded or failed",
        ),
        (
            None,
            s("e u"),
            None,
            "bad query: location: invalid location",
        ),
        (
            s("a\u{1}b"),
            None,
            None,
            "bad query: tag `a\\u{1}b` is not a tag",
        ),
        (s(&"x".repeat(101)), None, None, "bad query: tag"),
    ] {
        let err = Filter::new(tag, location, status).unwrap_err();
        assert!(err.starts_with(needle), "{err}");
    }
}

#[test]
fn the_bar_merges_locations_keeps_the_last_90_and_joins_runs() {
    let (_, recent) = sample();
    assert_eq!(last_results(&recent, "db", Some("eu")).len(), 60);
    let us = last_results(&recent, "db", Some("us"));
    assert!(us.iter().all(|r| r.location == "us") && us.len() == 60);
    let last = last_results(&recent, "db", None);
    assert_eq!(last.len(), BAR_RESULTS);
    assert!(last.windows(2).all(|w| w[0].started_us <= w[1].started_us));
    // The 120 results of two locations interleave; the oldest 30 fall off.
    assert_eq!(last[0].started_us, (NOW - 44 * 60 - 30) * 1_000_000);
    let runs: Vec<(Status, usize)> = runs(&last).into_iter().map(|(s, r)| (s, r.len())).collect();
    // us failed at minutes 10, 11, 12 (30 s after eu passed): three runs of one each,
    // between passing eu results.
    assert_eq!(
        runs,
        [
            (Status::Passed, 64),
            (Status::Failed, 1),
            (Status::Passed, 1),
            (Status::Failed, 1),
            (Status::Passed, 1),
            (Status::Failed, 1),
            (Status::Passed, 21),
        ]
    );
    let (status, recent) = sample();
    let page = page(&status, &recent, &Filter::default(), false);
    let bar = page
        .split("data-results=\"90\">")
        .nth(1)
        .unwrap()
        .split("</div>")
        .next()
        .unwrap();
    assert_eq!(bar.matches("<i ").count(), 7, "{bar}");
    assert!(bar.starts_with("<i class=\"p\" style=\"flex:64\" title=\"2025-12-05 15:15:30 – 15:47:00 UTC: passed ×64\">"), "{bar}");
    assert!(bar.contains("title=\"2025-12-05 15:47:30 UTC: failed ×1&#10;us: refused: 10.0.0.9:5432 refused &lt;b&gt;us&lt;/b&gt;\""), "{bar}");
    // A monitor without results has an empty bar.
    assert!(page.contains("<div class=\"bar\" data-results=\"0\"></div>"));
}

#[test]
fn rows_show_verdicts_uptime_total_and_days() {
    let (mut status, recent) = sample();
    status.monitors[0].locations[1].days_left = Some(20);
    status.monitors[0].locations[0].days_left = Some(50);
    let page = page(&status, &recent, &Filter::default(), false);
    let row = page
        .split("<tr data-monitor=\"db\"")
        .nth(1)
        .unwrap()
        .split("</tr>")
        .next()
        .unwrap();
    assert!(
        row.contains("<a href=\"/monitors/db?project=shop\">Database</a>"),
        "{row}"
    );
    assert!(row.contains("<td class=\"p\" data-monitor=\"db\" data-location=\"eu\" data-status=\"passed\">passed</td>"), "{row}");
    assert!(row.contains("data-location=\"us\" data-status=\"failed\" title=\"refused: 10.0.0.9:5432 refused &lt;b&gt;us&lt;/b&gt;\">failed ×3</td>"), "{row}");
    // 99.999 rounds down.
    assert!(row.contains("data-uptime-24h=\"99.99\">99.99%"), "{row}");
    assert!(row.contains("data-uptime-7d=\"99.50\">99.50%"), "{row}");
    assert!(row.contains("data-uptime-30d=\"\">–</td>"), "{row}");
    // The largest total over the locations; the fewest days, under db's 30 warn days.
    assert!(row.contains("data-total-ms=\"40.0\">40.0 ms"), "{row}");
    assert!(
        row.contains("<td class=\"n cd w\" data-days-left=\"20\">20 d</td>"),
        "{row}"
    );
    let mq = page
        .split("<tr data-monitor=\"mq\"")
        .nth(1)
        .unwrap()
        .split("</tr>")
        .next()
        .unwrap();
    assert!(mq.starts_with(" class=\"m\" data-muted=\"true\">"), "{mq}");
    assert!(mq.contains("<span class=\"t\">muted</span>"), "{mq}");
    assert!(page.contains("data-count-passed=\"2\""));
    assert!(page.contains("data-count-degraded=\"1\""));
    assert!(page.contains("data-count-failed=\"1\""));
    assert!(page.contains("data-count-none=\"1\""));
    assert!(page.contains("<meta http-equiv=\"refresh\" content=\"30\">"));
    assert!(page.contains("generated <time data-generated>2025-12-05 16:00:00 UTC</time>"));
}

#[test]
fn html_in_names_groups_tags_and_errors_is_escaped() {
    let evil = "<script>alert(1)</script>";
    let mut bad = at("eu", Status::Failed, 1.0);
    bad.error.as_mut().unwrap().message = evil.to_owned();
    let status = project(vec![monitor("x", evil, Some(evil), &[evil], vec![bad])]);
    let mut r = recent("x", "eu", 10, Status::Failed);
    r.json = Some(serde_json::json!({"error": {"kind": "refused", "message": evil}}).to_string());
    let filter = Filter {
        tag: Some(evil.to_owned()),
        ..Filter::default()
    };
    for public in [false, true] {
        let page = page(&status, std::slice::from_ref(&r), &filter, public);
        assert!(!page.contains("<script"), "{page}");
        assert!(
            page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{page}"
        );
        assert_eq!(order(&page), ["&lt;script&gt;alert(1)&lt;/script&gt;/x"]);
    }
}

#[test]
fn the_public_view_has_no_error_address_hint_agent_or_link() {
    let (status, recent) = sample();
    let private = page(&status, &recent, &Filter::default(), false);
    // The private view shows them, so the test below can fail.
    for needle in ["refused", "10.0.0.9", "/monitors/", "/certificates"] {
        assert!(private.contains(needle), "{needle}");
    }
    let public = page(&status, &recent, &Filter::default(), true);
    for needle in [
        "refused",
        "10.0.0.9",
        "nc -vz",
        "is it running",
        "agent-",
        "/monitors/",
        "/certificates",
        "logout",
    ] {
        assert!(!public.contains(needle), "{needle} in the public page");
    }
    assert!(public.contains("data-status=\"failed\">failed ×3</td>"));
    assert!(public.contains("title=\"2025-12-05 15:48:30 UTC: failed ×1\""));
    assert!(public.contains("data-uptime-24h=\"99.99\""));
}

#[test]
fn an_empty_project_and_an_empty_filter_say_so() {
    let empty = project(Vec::new());
    assert!(page(&empty, &[], &Filter::default(), false).contains("no monitors deployed"));
    let (status, recent) = sample();
    let filter = Filter {
        tag: Some("none".into()),
        ..Filter::default()
    };
    let page = page(&status, &recent, &filter, false);
    assert!(page.contains("no monitor matches the filter"));
    assert!(page.contains("showing 0 of 5"));
    assert!(page.contains("<option selected>none</option>"));
    assert!(page.contains("<a href=\"/?project=shop\">clear</a>"));
}

#[test]
fn pieces_make_the_whole_page() {
    let (status, recent) = sample();
    let filter = Filter::default();
    let warn_days = BTreeMap::new();
    let o = Overview {
        status: &status,
        recent: &recent,
        warn_days: &warn_days,
        filter: &filter,
        public: false,
        now: now(),
        windows: &[],
    };
    let expected = render(&o);
    assert!(expected.ends_with("</table></div></main></body></html>"));
    for min in [1, 100, 4096] {
        let mut text = OverviewText::new(&o);
        let (mut joined, mut pieces) = (String::new(), 0);
        loop {
            let mut piece = String::new();
            let more = text.fill(&mut piece, &o, min);
            pieces += usize::from(!piece.is_empty());
            joined.push_str(&piece);
            if !more {
                break;
            }
        }
        assert_eq!(joined, expected, "pieces of {min} bytes");
        assert!(pieces > 1, "{pieces} pieces of {min} bytes");
    }
}

#[test]
fn long_error_messages_are_clipped_in_titles() {
    let mut failed = at("eu", Status::Failed, 1.0);
    failed.error.as_mut().unwrap().message = "x".repeat(4000);
    let status = project(vec![monitor("x", "X", None, &[], vec![failed])]);
    let mut r = recent("x", "eu", 10, Status::Failed);
    r.json = Some(
        serde_json::json!({"error": {"kind": "refused", "message": "y".repeat(4000)}}).to_string(),
    );
    let page = page(&status, std::slice::from_ref(&r), &Filter::default(), false);
    assert!(
        page.contains(&format!("title=\"refused: {}…\"", "x".repeat(200))),
        "{page}"
    );
    assert!(
        page.contains(&format!("eu: refused: {}…\"", "y".repeat(200))),
        "{page}"
    );
    assert!(!page.contains(&"x".repeat(201)) && !page.contains(&"y".repeat(201)));
}

#[test]
fn monitors_and_results_in_maintenance_show_as_such() {
    use monitor_spec::maintenance::{MaintenanceWindow, WindowSchedule};
    let (mut status, mut recent) = sample();
    let hour = time::Duration::hours(1);
    let window = |id: &str, name: &str, start: OffsetDateTime| MaintenanceWindow {
        id: id.to_owned(),
        name: Some(name.to_owned()),
        tags: vec!["db".to_owned()],
        monitors: Vec::new(),
        schedule: WindowSchedule::Once {
            start,
            end: start + 2 * hour,
        },
    };
    let windows: Vec<ListedWindow> = [
        window("upgrade", "Upgrade <db>", now() - hour),
        window("backup", "Backup", now() + 2 * hour),
    ]
    .iter()
    .map(|w| ListedWindow::at(w, false, now()).unwrap())
    .collect();
    let db = status.monitors.iter_mut().find(|m| m.id == "db").unwrap();
    db.maintenance = Some(monitor_spec::api::OpenWindow {
        id: "upgrade".to_owned(),
        name: "Upgrade <db>".to_owned(),
        ad_hoc: false,
        end: now() + hour,
    });
    db.locations[1].in_maintenance = true;
    for r in recent
        .iter_mut()
        .filter(|r| r.monitor == "db" && r.status == Status::Failed)
    {
        r.in_maintenance = true;
    }
    let (filter, warn_days) = (Filter::default(), BTreeMap::new());
    let html = render(&Overview {
        status: &status,
        recent: &recent,
        warn_days: &warn_days,
        filter: &filter,
        public: false,
        now: now(),
        windows: &windows,
    });
    // Counted apart from the failed ones; the windows listed with their times, escaped.
    assert!(html.contains("data-count-failed=\"0\""), "{html}");
    assert!(html.contains("data-count-maintenance=\"1\">1 in maintenance</span>"));
    assert!(html.contains(
        "<span data-window=\"upgrade\" data-active=\"true\">Upgrade &lt;db&gt; until 2025-12-05 17:00:00 UTC (1 monitor)</span>"
    ), "{html}");
    assert!(html.contains(
        "<span data-window=\"backup\" data-active=\"false\">Backup from 2025-12-05 18:00:00 UTC to 2025-12-05 20:00:00 UTC</span>"
    ), "{html}");
    assert!(html.contains("<span class=\"t mt\" data-maintenance=\"upgrade\""));
    // The location's latest result shows as maintenance, its verdict kept as data.
    assert!(html.contains(
        "<td class=\"mt\" data-monitor=\"db\" data-location=\"us\" data-status=\"failed\" data-in-maintenance=\"true\""
    ));
    // The bar's failed runs are maintenance runs.
    assert!(html.contains("<i class=\"mt\""), "{html}");
    assert!(html.contains(" (maintenance)"), "{html}");
    // Without windows, none of it.
    let (status, recent) = sample();
    let html = page(&status, &recent, &Filter::default(), false);
    assert!(!html.contains("data-maintenance"), "{html}");
    assert!(!html.contains("data-windows"), "{html}");
    assert!(!html.contains("(maintenance)"), "{html}");
    assert!(!html.contains("in maintenance"), "{html}");
}
