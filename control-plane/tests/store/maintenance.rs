//! Maintenance windows in the store (issue 21): results marked `in_maintenance` are kept
//! and shown but left out of uptime, rollups and the run of failures; ad-hoc windows are
//! opened within a bound, listed by end, ended early and pruned a week after they end;
//! declared windows travel with the version that deployed them.

use std::time::Duration;

use control_plane::store::{
    AD_HOC_KEPT_US, DeployInput, NewResult, ResultFacts, ResultQuery, Retention, RollupQuery, Step,
};
use control_plane::{MonitorSet, Store};
use monitor_spec::bundle::Bundle;
use monitor_spec::maintenance::{MaintenanceWindow, WindowSchedule};
use monitor_spec::{ErrorKind, Status, TcpMonitor};
use time::OffsetDateTime;

/// 2026-01-01T00:00:00Z, unix microseconds.
const T0: i64 = 1_767_225_600_000_000;
const MINUTE: i64 = 60_000_000;
const HOUR: i64 = 60 * MINUTE;

fn result(tick: i64, status: Status, in_maintenance: bool) -> NewResult {
    let started_us = T0 + tick * MINUTE;
    NewResult {
        id: format!("a/eu/{tick}"),
        monitor: "a".to_owned(),
        location: "eu".to_owned(),
        agent: "agent-1".to_owned(),
        tick,
        status,
        started_us,
        received_us: started_us + 2_000,
        facts: ResultFacts {
            error: (status == Status::Failed).then_some(ErrorKind::Refused),
            total_us: 1_000 * (tick + 1),
            ..ResultFacts::default()
        },
        json: format!("{{\"tick\":{tick}}}"),
        in_maintenance,
    }
}

/// The latest result's run of failures and mark.
fn latest(store: &dyn Store) -> (u64, bool) {
    let all = store.latest_results("p").unwrap();
    assert_eq!(all.len(), 1);
    (all[0].consecutive_failures, all[0].in_maintenance)
}

fn marked_results_stay_out_of_uptime_rollups_and_failure_runs(store: &dyn Store) {
    use Status::{Failed, Passed};
    // One failure outside, then two failures and a pass in a window, then a failure.
    let check = |store: &dyn Store, batch: &[NewResult], expected: (u64, bool)| {
        store.insert_results("p", batch).unwrap();
        assert_eq!(latest(store), expected, "after {:?}", batch[0].id);
    };
    check(store, &[result(1, Failed, false)], (1, false));
    check(store, &[result(2, Failed, true)], (1, true));
    check(store, &[result(3, Failed, true)], (1, true));
    check(store, &[result(4, Failed, false)], (2, false));
    check(store, &[result(5, Passed, true)], (0, true));
    check(store, &[result(6, Failed, true)], (0, true));
    // A late failure out of any window is counted again from the results, without the
    // marked ones.
    check(store, &[result(0, Failed, false)], (0, true));
    check(store, &[result(7, Failed, false)], (1, false));

    // Stored and shown, marked.
    let history = store
        .results(
            "p",
            &ResultQuery {
                monitor: "a".to_owned(),
                location: None,
                from_us: None,
                to_us: None,
                limit: 100,
            },
        )
        .unwrap();
    let marks: Vec<(i64, bool)> = history.iter().map(|r| (r.tick, r.in_maintenance)).collect();
    assert_eq!(
        marks,
        [
            (0, false),
            (1, false),
            (2, true),
            (3, true),
            (4, false),
            (5, true),
            (6, true),
            (7, false)
        ]
    );
    let recent = store.recent_results("p", 3).unwrap();
    let marks: Vec<bool> = recent.iter().map(|r| r.in_maintenance).collect();
    assert_eq!(marks, [true, true, false]);

    // Uptime counts the four results out of windows (all failed), live and rolled up.
    let now = T0 + 30 * MINUTE;
    let uptime = |store: &dyn Store, now: i64| {
        let u = &store.uptime("p", now).unwrap()[0];
        (u.checks[0], u.failures[0])
    };
    assert_eq!(uptime(store, now), (4, 4));
    let keep = Retention {
        raw: Duration::from_secs(30 * 86_400),
        ..Retention::default()
    };
    while store.maintain(T0 + 2 * HOUR, &keep).unwrap().more {}
    assert_eq!(uptime(store, T0 + 2 * HOUR), (4, 4));
    let hours = store
        .rollups(
            "p",
            &RollupQuery {
                monitor: "a".to_owned(),
                location: None,
                step: Step::Hour,
                from_us: T0,
                to_us: T0 + HOUR,
                limit: 10,
            },
        )
        .unwrap();
    assert_eq!(hours.len(), 1);
    // Ticks 0, 1, 4 and 7: the longest took 8 ms.
    assert_eq!((hours[0].checks, hours[0].failures), (4, 4));
    assert_eq!(hours[0].max_us, 8_000);
    // A late marked result in a rolled-up hour changes nothing of it.
    store
        .insert_results("p", &[result(8, Failed, true)])
        .unwrap();
    while store.maintain(T0 + 2 * HOUR, &keep).unwrap().more {}
    assert_eq!(uptime(store, T0 + 2 * HOUR), (4, 4));
}

fn at(us: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1000).unwrap()
}

fn once(id: &str, start_us: i64, end_us: i64) -> MaintenanceWindow {
    MaintenanceWindow {
        id: id.to_owned(),
        name: None,
        tags: vec!["db".to_owned()],
        monitors: Vec::new(),
        schedule: WindowSchedule::Once {
            start: at(start_us),
            end: at(end_us),
        },
    }
}

fn ids(windows: &[MaintenanceWindow]) -> Vec<&str> {
    windows.iter().map(|w| w.id.as_str()).collect()
}

fn ad_hoc_windows_open_list_end_and_prune(store: &dyn Store) {
    assert!(store.ad_hoc_windows("p", T0).unwrap().is_empty());
    assert!(
        store
            .open_window("p", &once("w1", T0, T0 + HOUR), T0, 2)
            .unwrap()
    );
    assert!(
        store
            .open_window("p", &once("w2", T0 + MINUTE, T0 + 2 * HOUR), T0, 2)
            .unwrap()
    );
    // Two open already: a third is refused, nothing written.
    assert!(
        !store
            .open_window("p", &once("w3", T0, T0 + HOUR), T0, 2)
            .unwrap()
    );
    assert_eq!(ids(&store.ad_hoc_windows("p", T0).unwrap()), ["w1", "w2"]);
    // Another project's windows are its own.
    assert!(store.ad_hoc_windows("q", T0).unwrap().is_empty());
    // Those ending after the instant asked for.
    assert_eq!(ids(&store.ad_hoc_windows("p", T0 + HOUR).unwrap()), ["w2"]);

    // Ending one early moves its end to now; once ended, it stays as it is.
    let ended = store
        .end_window("p", "w1", T0 + 10 * MINUTE)
        .unwrap()
        .unwrap();
    assert_eq!(ended.schedule, once("w1", T0, T0 + 10 * MINUTE).schedule);
    let again = store
        .end_window("p", "w1", T0 + 20 * MINUTE)
        .unwrap()
        .unwrap();
    assert_eq!(again, ended);
    assert!(store.end_window("p", "nope", T0).unwrap().is_none());
    assert_eq!(
        ids(&store.ad_hoc_windows("p", T0 + 15 * MINUTE).unwrap()),
        ["w2"]
    );
    // With w1 ended, a third fits.
    assert!(
        store
            .open_window(
                "p",
                &once("w3", T0 + 15 * MINUTE, T0 + 30 * MINUTE),
                T0 + 15 * MINUTE,
                2
            )
            .unwrap()
    );
    // Ended windows are kept a week (for late results), then pruned by upkeep.
    assert_eq!(
        ids(&store.ad_hoc_windows("p", T0).unwrap()),
        ["w1", "w2", "w3"]
    );
    store
        .maintain(T0 + HOUR + AD_HOC_KEPT_US, &Retention::default())
        .unwrap();
    assert_eq!(ids(&store.ad_hoc_windows("p", T0).unwrap()), ["w2"]);
    store
        .maintain(T0 + 3 * HOUR + AD_HOC_KEPT_US, &Retention::default())
        .unwrap();
    assert!(store.ad_hoc_windows("p", T0).unwrap().is_empty());
}

fn set(windows: &[MaintenanceWindow]) -> MonitorSet {
    let mut bundle = Bundle::new(vec![TcpMonitor::new("db", "db.internal", 5432).tag("db")]);
    bundle.maintenance = windows.to_vec();
    MonitorSet::from_bundle(&bundle).unwrap()
}

fn deploy(store: &dyn Store, monitors: MonitorSet) -> Option<u64> {
    let outcome = store
        .deploy(
            "p",
            DeployInput {
                monitors,
                prune: true,
                ..DeployInput::default()
            },
        )
        .unwrap();
    outcome.version
}

fn declared(store: &dyn Store) -> Vec<MaintenanceWindow> {
    store.current_set("p").unwrap().1.maintenance().unwrap()
}

fn declared_windows_travel_with_versions(store: &dyn Store) {
    let window = once("upgrade", T0, T0 + HOUR);
    assert_eq!(deploy(store, set(std::slice::from_ref(&window))), Some(1));
    assert_eq!(declared(store), std::slice::from_ref(&window));
    let v1 = store.version("p", 1).unwrap().unwrap();
    assert!(
        v1.bundle_json.starts_with("{\"maintenance\":[{"),
        "{}",
        v1.bundle_json
    );
    // The same monitors without the window: a new version, without it.
    assert_eq!(deploy(store, set(&[])), Some(2));
    assert!(declared(store).is_empty());
    assert!(
        !store
            .monitors("p")
            .unwrap()
            .bundle_json()
            .contains("maintenance")
    );
    // The same again changes nothing.
    assert_eq!(deploy(store, set(&[])), Some(2));
    // A rollback brings version 1's window back.
    let back = store.rollback("p", 1).unwrap();
    assert_eq!(back.version, Some(3));
    assert_eq!(declared(store), [window]);
    // A destroyed project has none.
    store.destroy("p").unwrap();
    assert!(declared(store).is_empty());
}

crate::store_cases!(
    marked_results_stay_out_of_uptime_rollups_and_failure_runs,
    ad_hoc_windows_open_list_end_and_prune,
    declared_windows_travel_with_versions,
);
