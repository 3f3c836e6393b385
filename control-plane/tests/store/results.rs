//! Results in the store: storing batches (duplicates ignored), the latest result per
//! monitor and location, history, rollups, uptime and retention.

use std::time::Duration;

use control_plane::Store;
use control_plane::store::{
    Maintenance, NewResult, ResultFacts, ResultQuery, Retention, Rollup, RollupQuery, Step,
};
use monitor_spec::{ErrorKind, Status};

/// 2026-01-01T00:00:00Z, unix microseconds: a day boundary.
const T0: i64 = 1_767_225_600_000_000;
const MINUTE: i64 = 60_000_000;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;

/// A result of `monitor` in `location` for `tick`, started `tick` minutes after [`T0`].
fn result(monitor: &str, location: &str, tick: i64, status: Status) -> NewResult {
    at(monitor, location, tick, status, T0 + tick * MINUTE, 1_000)
}

/// A result started at `started_us` with a total time of `total_us`.
fn at(
    monitor: &str,
    location: &str,
    tick: i64,
    status: Status,
    started_us: i64,
    total_us: i64,
) -> NewResult {
    NewResult {
        id: format!("{monitor}/{location}/{tick}"),
        monitor: monitor.to_owned(),
        location: location.to_owned(),
        agent: "agent-1".to_owned(),
        tick,
        status,
        started_us,
        received_us: started_us + 2_000,
        facts: ResultFacts {
            error: (status != Status::Passed).then_some(ErrorKind::Refused),
            total_us,
            ..ResultFacts::default()
        },
        json: format!("{{\"tick\":{tick}}}"),
        in_maintenance: false,
    }
}

fn retention() -> Retention {
    Retention::default()
}

/// Calls maintain until it has nothing left to do; the sum of what it did and the number
/// of calls.
fn maintain_all(store: &dyn Store, now_us: i64, retention: &Retention) -> (Maintenance, u64) {
    let mut sum = Maintenance::default();
    for calls in 1..100_000 {
        let step = store.maintain(now_us, retention).unwrap();
        sum.hours_rolled += step.hours_rolled;
        sum.days_rolled += step.days_rolled;
        sum.raw_pruned += step.raw_pruned;
        sum.rollups_pruned += step.rollups_pruned;
        if !step.more {
            return (sum, calls);
        }
    }
    panic!("maintain never finished")
}

fn latest(store: &dyn Store) -> Vec<String> {
    store
        .latest_results("p")
        .unwrap()
        .into_iter()
        .map(|l| {
            format!(
                "{} {} {} {}",
                l.monitor,
                l.location,
                l.consecutive_failures,
                l.json.as_deref().unwrap_or("-")
            )
        })
        .collect()
}

fn query(monitor: &str) -> ResultQuery {
    ResultQuery {
        monitor: monitor.to_owned(),
        location: None,
        from_us: None,
        to_us: None,
        limit: 1000,
    }
}

fn history(store: &dyn Store, q: &ResultQuery) -> Vec<String> {
    store
        .results("p", q)
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect()
}

fn rollups(store: &dyn Store, step: Step, from_us: i64, to_us: i64) -> Vec<Rollup> {
    store
        .rollups(
            "p",
            &RollupQuery {
                monitor: "a".to_owned(),
                location: None,
                step,
                from_us,
                to_us,
                limit: 1000,
            },
        )
        .unwrap()
}

fn projects_start_empty(store: &dyn Store) {
    assert!(store.latest_results("p").unwrap().is_empty());
    assert!(store.uptime("p", T0).unwrap().is_empty());
    assert!(history(store, &query("a")).is_empty());
    assert!(rollups(store, Step::Hour, 0, i64::MAX).is_empty());
}

fn duplicates_are_ignored_and_failure_runs_counted(store: &dyn Store) {
    use Status::{Degraded, Failed, Passed};
    let batch = [
        result("a", "eu", 1, Passed),
        result("a", "eu", 2, Failed),
        result("a", "us", 1, Degraded),
        result("a", "eu", 3, Failed),
        result("a", "eu", 3, Failed),
    ];
    let first = store.insert_results("p", &batch).unwrap();
    assert_eq!((first.accepted, first.duplicates), (4, 1));
    let again = store.insert_results("p", &batch).unwrap();
    assert_eq!((again.accepted, again.duplicates), (0, 5));
    // The same tick in another project is another result.
    let other = store.insert_results("q", &batch[..1]).unwrap();
    assert_eq!((other.accepted, other.duplicates), (1, 0));
    assert_eq!(
        latest(store),
        ["a eu 2 {\"tick\":3}", "a us 0 {\"tick\":1}"]
    );
    // A newer failure counts on; a late one inside the run is counted again.
    store
        .insert_results("p", &[result("a", "eu", 5, Failed)])
        .unwrap();
    assert_eq!(latest(store)[0], "a eu 3 {\"tick\":5}");
    store
        .insert_results("p", &[result("a", "eu", 4, Passed)])
        .unwrap();
    assert_eq!(latest(store)[0], "a eu 1 {\"tick\":5}");
    store
        .insert_results("p", &[result("a", "eu", 6, Passed)])
        .unwrap();
    // A passed latest result is read by its facts; its JSON is kept for the history.
    assert_eq!(latest(store)[0], "a eu 0 -");
    let now = &store.latest_results("p").unwrap()[0];
    assert_eq!(
        (now.status, now.started_us, now.facts.total_us),
        (Passed, T0 + 6 * MINUTE, 1_000)
    );
    let kept = store.results("p", &query("a")).unwrap();
    let six = kept.iter().find(|r| r.id == "a/eu/6").unwrap();
    assert_eq!(six.json.as_deref(), Some("{\"tick\":6}"));
}

fn passed_results_are_stored_without_their_json(store: &dyn Store) {
    use Status::{Degraded, Failed, Passed};
    let mut tls = result("a", "eu", 1, Passed);
    tls.facts = ResultFacts {
        error: None,
        dns_us: Some(11),
        connect_us: Some(22),
        tls_us: Some(33),
        first_byte_us: Some(44),
        total_us: 123_456,
        address: Some("[2001:db8::1]:443".to_owned()),
        tls_version: Some("TLSv1.3".to_owned()),
        cert_expiry_s: Some(1_800_000_000),
    };
    let batch = [
        tls.clone(),
        result("a", "eu", 2, Failed),
        result("a", "eu", 3, Degraded),
        result("a", "eu", 4, Passed),
    ];
    store.insert_results("p", &batch).unwrap();
    let rows = store.results("p", &query("a")).unwrap();
    let json: Vec<Option<&str>> = rows.iter().map(|r| r.json.as_deref()).collect();
    // Passed: no JSON, except the latest; failed and degraded keep theirs.
    assert_eq!(
        json,
        [
            None,
            Some("{\"tick\":2}"),
            Some("{\"tick\":3}"),
            Some("{\"tick\":4}")
        ]
    );
    let first = &rows[0];
    assert_eq!(first.id, "a/eu/1");
    assert_eq!(
        (first.agent.as_str(), first.tick, first.status),
        ("agent-1", 1, Passed)
    );
    assert_eq!(
        (first.started_us, first.received_us),
        (tls.started_us, tls.received_us)
    );
    assert_eq!(first.facts, tls.facts);
    assert_eq!(rows[1].facts.error, Some(ErrorKind::Refused));
    assert_eq!(rows[1].status, Failed);
}

fn history_reads_ranges_locations_and_limits(store: &dyn Store) {
    use Status::Passed;
    let batch: Vec<NewResult> = (1..=6)
        .flat_map(|t| [result("a", "eu", t, Passed), result("a", "us", t, Passed)])
        .chain([result("b", "eu", 1, Passed)])
        .collect();
    store.insert_results("p", &batch).unwrap();
    assert_eq!(history(store, &query("a")).len(), 12);
    assert_eq!(history(store, &query("b")), ["b/eu/1"]);
    // `from` is exclusive, `to` inclusive; the oldest come first within the limit.
    let q = ResultQuery {
        location: Some("eu".to_owned()),
        from_us: Some(T0 + 2 * MINUTE),
        to_us: Some(T0 + 5 * MINUTE),
        ..query("a")
    };
    assert_eq!(history(store, &q), ["a/eu/3", "a/eu/4", "a/eu/5"]);
    assert_eq!(
        history(
            store,
            &ResultQuery {
                limit: 2,
                ..q.clone()
            }
        ),
        ["a/eu/3", "a/eu/4"]
    );
    let both = ResultQuery {
        location: None,
        ..q.clone()
    };
    assert_eq!(
        history(store, &both)[..2],
        ["a/eu/3".to_owned(), "a/us/3".to_owned()]
    );
    let nowhere = ResultQuery {
        location: Some("ap".to_owned()),
        ..q
    };
    assert!(history(store, &nowhere).is_empty());
}

fn hourly_rollups_are_exact(store: &dyn Store) {
    use Status::{Degraded, Failed, Passed};
    // Hour 0: 20 results with totals 1..=20 ms, two failed, one degraded, TLS on some.
    let mut batch = Vec::new();
    for i in 0..20 {
        let status = match i {
            3 | 7 => Failed,
            9 => Degraded,
            _ => Passed,
        };
        let mut r = at("a", "eu", i, status, T0 + i * MINUTE, (i + 1) * 1000);
        if i % 5 == 0 {
            // Expires 30 days and a bit after the check: 30 days left; the last one 29.
            r.facts.cert_expiry_s = Some((T0 + 30 * DAY + HOUR) / 1_000_000 - i * 1_000);
        }
        batch.push(r);
    }
    // Hour 1: one result in another location; hour 2 is not over at `now`.
    batch.push(at("a", "us", 100, Passed, T0 + HOUR + MINUTE, 5_000));
    batch.push(at("a", "eu", 200, Passed, T0 + 2 * HOUR + MINUTE, 5_000));
    store.insert_results("p", &batch).unwrap();

    let now = T0 + 2 * HOUR + 30 * MINUTE;
    let (done, _) = maintain_all(store, now, &retention());
    assert_eq!(done.hours_rolled, 2);
    let got = rollups(store, Step::Hour, T0, now);
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(
        got[0],
        Rollup {
            location: "eu".to_owned(),
            start_us: T0,
            checks: 20,
            failures: 2,
            degraded: 1,
            p50_us: 10_000,
            p95_us: 19_000,
            max_us: 20_000,
            min_days_left: Some(29),
        }
    );
    assert_eq!(
        (got[1].location.as_str(), got[1].start_us, got[1].checks),
        ("us", T0 + HOUR, 1)
    );
    assert_eq!(got[1].min_days_left, None);
    // The range is [from, to) on the bucket start.
    assert_eq!(rollups(store, Step::Hour, T0 + 1, now).len(), 1);
    assert_eq!(rollups(store, Step::Hour, T0, T0 + HOUR).len(), 1);
    // Nothing is rolled up twice.
    assert_eq!(store.maintain(now, &retention()).unwrap().hours_rolled, 0);
}

fn a_late_result_rolls_its_hour_again(store: &dyn Store) {
    use Status::{Failed, Passed};
    store
        .insert_results("p", &[at("a", "eu", 1, Passed, T0 + MINUTE, 1_000)])
        .unwrap();
    let now = T0 + 3 * HOUR;
    maintain_all(store, now, &retention());
    assert_eq!(rollups(store, Step::Hour, T0, now)[0].checks, 1);
    let late = at("a", "eu", 2, Failed, T0 + 2 * MINUTE, 9_000);
    store.insert_results("p", &[late]).unwrap();
    let (done, _) = maintain_all(store, now, &retention());
    assert_eq!(done.hours_rolled, 1);
    let hour = &rollups(store, Step::Hour, T0, now)[0];
    assert_eq!(
        (hour.checks, hour.failures, hour.max_us, hour.p50_us),
        (2, 1, 9_000, 1_000)
    );
    // The day it falls in, once rolled up, is rolled up again too.
    let later = T0 + DAY + 2 * HOUR;
    maintain_all(store, later, &retention());
    assert_eq!(rollups(store, Step::Day, T0, later)[0].checks, 2);
    let late = at("a", "eu", 3, Passed, T0 + 3 * MINUTE, 2_000);
    store.insert_results("p", &[late]).unwrap();
    let (done, _) = maintain_all(store, later, &retention());
    assert_eq!((done.hours_rolled, done.days_rolled), (1, 1));
    assert_eq!(rollups(store, Step::Day, T0, later)[0].checks, 3);
}

fn days_roll_up_from_hours(store: &dyn Store) {
    use Status::{Degraded, Failed, Passed};
    // Hour 0: ten results of 1 ms; hour 5: one of 50 ms, failed; hour 23: one degraded
    // with a certificate of 10 days left. The next day: one result.
    let mut batch: Vec<NewResult> = (0..10)
        .map(|i| at("a", "eu", i, Passed, T0 + i * MINUTE, 1_000))
        .collect();
    batch.push(at("a", "eu", 50, Failed, T0 + 5 * HOUR, 50_000));
    let mut tls = at("a", "eu", 60, Degraded, T0 + 23 * HOUR, 2_000);
    tls.facts.cert_expiry_s = Some((T0 + 23 * HOUR + 10 * DAY + HOUR) / 1_000_000);
    batch.push(tls);
    batch.push(at("a", "eu", 70, Passed, T0 + DAY + HOUR, 3_000));
    store.insert_results("p", &batch).unwrap();
    // The first day is over but not the second.
    let now = T0 + DAY + 2 * HOUR + MINUTE;
    maintain_all(store, now, &retention());
    let days = rollups(store, Step::Day, T0 - DAY, now);
    assert_eq!(days.len(), 1, "{days:?}");
    assert_eq!(
        days[0],
        Rollup {
            location: "eu".to_owned(),
            start_us: T0,
            checks: 12,
            failures: 1,
            degraded: 1,
            // Weighted by checks: the ten checks at 1 ms carry the median; the 95th
            // percentile (rank 12 of 12) lands in the slow hour.
            p50_us: 1_000,
            p95_us: 50_000,
            max_us: 50_000,
            min_days_left: Some(10),
        }
    );
    assert_eq!(rollups(store, Step::Hour, T0, now).len(), 4);
}

fn uptime_counts_rolled_up_hours_and_raw_results(store: &dyn Store) {
    use Status::{Degraded, Failed, Passed};
    let now = T0 + 100 * DAY + 30 * MINUTE;
    let batch = [
        // 80 days ago: only in the 90-day window.
        at("a", "eu", 1, Failed, now - 80 * DAY, 1_000),
        // 10 days ago: 30 and 90 days.
        at("a", "eu", 2, Passed, now - 10 * DAY, 1_000),
        // 2 days ago: 7, 30 and 90 days.
        at("a", "eu", 3, Failed, now - 2 * DAY, 1_000),
        // Within the hour: every window; degraded counts as up.
        at("a", "eu", 4, Degraded, now - 10 * MINUTE, 1_000),
        // 120 days ago: no window.
        at("a", "eu", 5, Failed, now - 120 * DAY, 1_000),
        at("a", "us", 1, Passed, now - 20 * MINUTE, 1_000),
    ];
    store.insert_results("p", &batch).unwrap();
    let expected = |store: &dyn Store, when: &str| {
        let got = store.uptime("p", now).unwrap();
        let got: Vec<_> = got
            .iter()
            .map(|u| {
                (
                    u.monitor.as_str(),
                    u.location.as_str(),
                    u.checks,
                    u.failures,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("a", "eu", [1, 2, 3, 4], [0, 1, 1, 2]),
                ("a", "us", [1, 1, 1, 1], [0, 0, 0, 0])
            ],
            "{when}"
        );
    };
    // From raw results only, then from rollups (hours and days) and raw results; the
    // retention keeps everything here.
    expected(store, "raw");
    let keep = Retention {
        raw: Duration::from_secs(200 * 86_400),
        hourly: Duration::from_secs(200 * 86_400),
        daily: Duration::from_secs(200 * 86_400),
    };
    maintain_all(store, now, &keep);
    expected(store, "rolled up");
    // Once the raw results are gone, the rollups still count them.
    let short = Retention {
        raw: Duration::from_secs(2 * 3600),
        ..keep
    };
    let (done, _) = maintain_all(store, now + HOUR, &short);
    assert_eq!(done.raw_pruned, 4);
    expected(store, "pruned");
    assert_eq!(history(store, &query("a")), ["a/us/1", "a/eu/4"]);
    // A new result counts at once, beside the rolled-up ones (which a store may cache);
    // maintenance went on to the hour after `now`.
    store
        .insert_results("p", &[at("a", "us", 2, Failed, now + HOUR - MINUTE, 1_000)])
        .unwrap();
    let us = &store.uptime("p", now + HOUR).unwrap()[1];
    assert_eq!((us.checks, us.failures), ([2; 4], [1; 4]));
    store
        .insert_results("p", &[at("b", "us", 1, Passed, now + HOUR - MINUTE, 1_000)])
        .unwrap();
    let all = store.uptime("p", now + HOUR).unwrap();
    assert_eq!((all.len(), all[2].checks), (3, [1; 4]));
}

fn retention_prunes_in_bounded_steps(store: &dyn Store) {
    use Status::Passed;
    // 300 series, one result each 3 days ago and one 100 days ago.
    let now = T0 + 200 * DAY;
    let batch: Vec<NewResult> = (0..300)
        .flat_map(|i| {
            let m = format!("m{i:03}");
            [
                at(&m, "eu", 1, Passed, now - 3 * DAY, 1_000),
                at(&m, "eu", 2, Passed, now - 100 * DAY, 1_000),
            ]
        })
        .collect();
    store.insert_results("p", &batch).unwrap();
    let retention = Retention {
        raw: Duration::from_secs(2 * 86_400),
        hourly: Duration::from_secs(90 * 86_400),
        daily: Duration::from_secs(730 * 86_400),
    };
    // One step does a bounded part of the work, and says there is more.
    let first = store.maintain(now, &retention).unwrap();
    assert!(first.more);
    assert!(first.hours_rolled < 300, "{first:?}");
    let (done, calls) = maintain_all(store, now, &retention);
    assert!(calls > 2, "{calls}");
    assert_eq!(done.raw_pruned + first.raw_pruned, 600);
    assert_eq!(done.hours_rolled + first.hours_rolled, 600);
    assert_eq!(done.days_rolled + first.days_rolled, 600);
    // The hours of 100 days ago are past the hourly retention; their day is kept.
    assert_eq!(done.rollups_pruned + first.rollups_pruned, 300);
    let q = |m: &str, step| {
        store
            .rollups(
                "p",
                &RollupQuery {
                    monitor: m.to_owned(),
                    location: None,
                    step,
                    from_us: 0,
                    to_us: now,
                    limit: 10,
                },
            )
            .unwrap()
            .iter()
            .map(|r| r.start_us)
            .collect::<Vec<_>>()
    };
    assert_eq!(q("m123", Step::Hour), [results_hour(now - 3 * DAY)]);
    assert_eq!(
        q("m123", Step::Day),
        [results_day(now - 100 * DAY), results_day(now - 3 * DAY)]
    );
    assert!(history(store, &query("m123")).is_empty());
    assert!(store.latest_results("p").unwrap().is_empty());
    // Past the daily retention, the days go too.
    let far = now + 800 * DAY;
    let (done, _) = maintain_all(store, far, &retention);
    assert_eq!(done.rollups_pruned, 900);
    assert!(q("m123", Step::Day).is_empty());
}

fn results_hour(us: i64) -> i64 {
    us - us.rem_euclid(HOUR)
}

fn results_day(us: i64) -> i64 {
    us - us.rem_euclid(DAY)
}

fn a_result_later_than_the_raw_retention_is_added_to_its_hour(store: &dyn Store) {
    use Status::{Failed, Passed};
    let short = Retention {
        raw: Duration::from_secs(3600),
        ..retention()
    };
    store
        .insert_results("p", &[at("a", "eu", 1, Passed, T0 + MINUTE, 1_000)])
        .unwrap();
    // Two days later, so that PostgreSQL, which drops raw results a whole day at a time,
    // has dropped that day too.
    let now = T0 + 2 * DAY + 5 * HOUR;
    let (done, _) = maintain_all(store, now, &short);
    assert_eq!(done.raw_pruned, 1);
    // Its hour's results are gone: the late one is added to the rollup, then pruned.
    let late = at("a", "eu", 2, Failed, T0 + 2 * MINUTE, 3_000);
    store.insert_results("p", &[late]).unwrap();
    let (done, _) = maintain_all(store, now, &short);
    assert_eq!((done.hours_rolled, done.raw_pruned), (1, 1));
    let hour = &rollups(store, Step::Hour, T0, now)[0];
    assert_eq!((hour.checks, hour.failures, hour.max_us), (2, 1, 3_000));
    assert!(history(store, &query("a")).is_empty());
    // Once more: nothing is counted twice.
    let late = at("a", "eu", 3, Passed, T0 + 3 * MINUTE, 2_000);
    store.insert_results("p", &[late]).unwrap();
    maintain_all(store, now, &short);
    assert_eq!(rollups(store, Step::Hour, T0, now)[0].checks, 3);
}

/// The pages' reads: the last results of each series (the overview's bars), and the latest
/// result of each with its JSON even when it passed (certificate chains).
fn pages_read_recent_results_and_full_latest_results(store: &dyn Store) {
    use Status::{Failed, Passed};
    let mut batch: Vec<NewResult> = (1..=5)
        .map(|t| result("a", "eu", t, if t == 4 { Failed } else { Passed }))
        .collect();
    batch.push(result("a", "us", 1, Failed));
    batch.push(result("b", "eu", 1, Passed));
    store.insert_results("p", &batch).unwrap();
    store
        .insert_results("q", &[result("a", "eu", 9, Passed)])
        .unwrap();
    let recent: Vec<String> = store
        .recent_results("p", 3)
        .unwrap()
        .into_iter()
        .map(|r| {
            format!(
                "{} {} {} {:?} {} {}",
                r.monitor,
                r.location,
                (r.started_us - T0) / MINUTE,
                r.status,
                r.error.map_or("-", |e| e.as_str()),
                r.json.as_deref().unwrap_or("-")
            )
        })
        .collect();
    assert_eq!(
        recent,
        [
            "a eu 3 Passed - -",
            "a eu 4 Failed refused {\"tick\":4}",
            "a eu 5 Passed - -",
            "a us 1 Failed refused {\"tick\":1}",
            "b eu 1 Passed - -",
        ]
    );
    assert!(store.recent_results("empty", 90).unwrap().is_empty());
    // The latest of each series, with its JSON: passed ones too, unlike latest_results.
    let full: Vec<(String, String, Option<String>)> = store
        .latest_results_full("p")
        .unwrap()
        .into_iter()
        .map(|l| (l.monitor, l.location, l.json))
        .collect();
    let json = |t: i64| Some(format!("{{\"tick\":{t}}}"));
    assert_eq!(
        full,
        [
            ("a".to_owned(), "eu".to_owned(), json(5)),
            ("a".to_owned(), "us".to_owned(), json(1)),
            ("b".to_owned(), "eu".to_owned(), json(1)),
        ]
    );
    let plain = store.latest_results("p").unwrap();
    assert_eq!(
        plain[0].json, None,
        "a passed latest result keeps no JSON there"
    );
}

crate::store_cases!(
    pages_read_recent_results_and_full_latest_results,
    projects_start_empty,
    duplicates_are_ignored_and_failure_runs_counted,
    passed_results_are_stored_without_their_json,
    history_reads_ranges_locations_and_limits,
    hourly_rollups_are_exact,
    a_late_result_rolls_its_hour_again,
    days_roll_up_from_hours,
    uptime_counts_rolled_up_hours_and_raw_results,
    retention_prunes_in_bounded_steps,
    a_result_later_than_the_raw_retention_is_added_to_its_hour,
);
