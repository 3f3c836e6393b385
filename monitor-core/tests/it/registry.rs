//! The registry: stable ordering, duplicate ids naming both places, defaults applied only
//! where a monitor is silent, and validation pointing at the declaring file and line; the
//! same for maintenance windows, checked against the declared monitors.

use monitor_core::model::maintenance::{MaintenanceWindow, Weekday, WindowSchedule};
use monitor_core::prelude::*;
use monitor_core::registry::{
    Defaults, DefaultsRegistration, Registration, RegistryError, WindowRegistration, check_windows,
    collect, collect_windows, derived_id, validate,
};

fn declare_b() -> TcpMonitor {
    TcpMonitor::new("b", "127.0.0.1", 2).tag("own")
}
fn declare_a() -> TcpMonitor {
    TcpMonitor::new("a", "127.0.0.1", 1).frequency(Frequency::S30)
}
fn declare_bad() -> TcpMonitor {
    TcpMonitor::new("bad", "127.0.0.1", 3)
}
fn same(m: TcpMonitor) -> TcpMonitor {
    m
}
fn zero_port(mut m: TcpMonitor) -> TcpMonitor {
    m.target.port = 0;
    m
}
fn defaults() -> Defaults {
    Defaults {
        frequency: Some(Frequency::M5),
        tags: Some(vec!["prod".into()]),
        alert_channels: Some(vec!["ops".into()]),
        expiry_warn_days: Some(21),
        ..Defaults::default()
    }
}

fn reg(
    function: &'static str,
    line: u32,
    explicit: &'static [&'static str],
    declare: fn() -> TcpMonitor,
    refine: fn(TcpMonitor) -> TcpMonitor,
) -> Registration {
    Registration {
        function,
        module_path: "monitors::cache",
        file: "monitors/src/cache.rs",
        line,
        explicit,
        declare,
        refine,
    }
}

#[test]
fn monitors_come_sorted_by_id_with_defaults_where_silent() {
    let b = reg("b", 10, &["host", "port", "tags"], declare_b, same);
    let a = reg("a", 20, &["host", "port", "frequency"], declare_a, same);
    let d = DefaultsRegistration {
        file: "monitors/src/main.rs",
        line: 5,
        build: defaults,
    };
    let declared = collect(&[&b, &a], &[&d]).unwrap();
    let ids: Vec<&str> = declared.iter().map(|d| d.monitor.id.as_str()).collect();
    assert_eq!(ids, ["a", "b"]);
    let (a, b) = (&declared[0].monitor, &declared[1].monitor);
    // `a` set its frequency, `b` did not; `b` set its tags, `a` did not.
    assert_eq!(a.frequency, Frequency::S30);
    assert_eq!(b.frequency, Frequency::M5);
    assert_eq!(a.tags, ["prod"]);
    assert_eq!(b.tags, ["own"]);
    assert_eq!(a.alert_channels, ["ops"]);
    assert_eq!(a.tls.expiry_warn_days, 21);
    assert_eq!(declared[0].location.to_string(), "monitors/src/cache.rs:20");
    assert_eq!(declared[1].function, "monitors::cache::b");
    // The same registrations in another order give the same list.
    let again = collect(&[&a_reg(), &b_reg()], &[&d]).unwrap();
    let again_ids: Vec<&str> = again.iter().map(|d| d.monitor.id.as_str()).collect();
    assert_eq!(again_ids, ids);
}

fn a_reg() -> Registration {
    reg("a", 20, &["host", "port", "frequency"], declare_a, same)
}
fn b_reg() -> Registration {
    reg("b", 10, &["host", "port", "tags"], declare_b, same)
}

#[test]
fn duplicate_ids_name_both_places() {
    let first = reg("a", 20, &[], declare_a, same);
    let mut second = reg("a_again", 44, &[], declare_a, same);
    second.file = "monitors/src/other.rs";
    let err = collect(&[&second, &first], &[]).unwrap_err();
    assert_eq!(err.0.len(), 1);
    let text = err.to_string();
    assert!(
        text.contains("duplicate monitor id `a`: declared at monitors/src/cache.rs:20 and at monitors/src/other.rs:44"),
        "{text}"
    );
}

#[test]
fn defaults_declared_twice_is_an_error() {
    let one = DefaultsRegistration {
        file: "a.rs",
        line: 1,
        build: defaults,
    };
    let two = DefaultsRegistration {
        file: "b.rs",
        line: 2,
        build: defaults,
    };
    let err = collect(&[], &[&two, &one]).unwrap_err();
    assert!(matches!(err.0[0], RegistryError::DuplicateDefaults { .. }));
    assert!(err.to_string().contains("at a.rs:1 and at b.rs:2"), "{err}");
}

#[test]
fn validation_of_what_the_body_decides_points_at_the_declaration() {
    let bad = reg("bad", 33, &[], declare_bad, zero_port);
    let good = reg("a", 20, &[], declare_a, same);
    let err = validate(collect(&[&bad, &good], &[]).unwrap()).unwrap_err();
    assert_eq!(err.0.len(), 1);
    let text = err.to_string();
    assert!(
        text.contains("monitor `bad` declared at monitors/src/cache.rs:33 is invalid"),
        "{text}"
    );
    assert!(text.contains("target.port"), "{text}");
}

#[test]
fn derived_ids_drop_the_crate_name() {
    assert_eq!(derived_id("monitors", "redis"), "redis");
    assert_eq!(derived_id("monitors::cache", "redis"), "cache::redis");
    assert_eq!(derived_id("monitors::a::b", "c"), "a::b::c");
}

/// The variable set case runs in the monitors crate's CLI tests, on a child process's
/// environment (this process's environment is not changed by tests).
#[test]
fn target_from_env_keeps_the_declared_target_when_unset() {
    let var = "MONITOR_CORE_REGISTRY_TEST_TARGET_NEVER_SET";
    let unset = TcpMonitor::new("x", "db.internal", 5432).target_from_env(var);
    assert_eq!(
        (unset.target.host.as_str(), unset.target.port),
        ("db.internal", 5432)
    );
}

fn window(id: &str, tags: &[&str], monitors: &[&str]) -> MaintenanceWindow {
    MaintenanceWindow {
        id: id.to_owned(),
        name: None,
        tags: tags.iter().map(|t| (*t).to_owned()).collect(),
        monitors: monitors.iter().map(|m| (*m).to_owned()).collect(),
        schedule: WindowSchedule::Weekly {
            days: vec![Weekday::Sunday],
            start: "03:00".to_owned(),
            end: "04:00".to_owned(),
        },
    }
}
fn vacuum() -> MaintenanceWindow {
    window("vacuum", &["own"], &["a"])
}
fn typo() -> MaintenanceWindow {
    window("typo", &["own", "nobody"], &["b", "bb", "zzz"])
}
fn blank() -> MaintenanceWindow {
    window("blank", &[], &[])
}
fn win(file: &'static str, line: u32, declare: fn() -> MaintenanceWindow) -> WindowRegistration {
    WindowRegistration {
        file,
        line,
        declare,
    }
}

#[test]
fn windows_come_sorted_by_id_and_duplicates_name_both_places() {
    let (v, t) = (win("m/db.rs", 9, vacuum), win("m/main.rs", 3, typo));
    let ids = |regs: &[&WindowRegistration]| -> Vec<String> {
        collect_windows(regs)
            .unwrap()
            .into_iter()
            .map(|w| format!("{} {}", w.window.id, w.location))
            .collect()
    };
    assert_eq!(ids(&[&v, &t]), ["typo m/main.rs:3", "vacuum m/db.rs:9"]);
    assert_eq!(ids(&[&t, &v]), ids(&[&v, &t]));
    assert_eq!(ids(&[]), Vec::<String>::new());
    let again = win("m/cache.rs", 40, vacuum);
    let err = collect_windows(&[&v, &t, &again]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "duplicate maintenance window id `vacuum`: declared at m/cache.rs:40 and at m/db.rs:9; rename one of them"
    );
}

#[test]
fn windows_naming_unknown_monitors_are_errors_and_unknown_tags_warnings() {
    let monitors = collect(&[&a_reg(), &b_reg()], &[])
        .unwrap()
        .into_iter()
        .map(|d| d.monitor)
        .collect::<Vec<_>>();
    let (v, t, x) = (
        win("m/db.rs", 9, vacuum),
        win("m/main.rs", 3, typo),
        win("m/x.rs", 1, blank),
    );
    let fine = collect_windows(&[&v]).unwrap();
    assert_eq!(check_windows(&fine, &monitors), Ok(Vec::new()));
    let all = collect_windows(&[&v, &t, &x]).unwrap();
    let err = check_windows(&all, &monitors).unwrap_err();
    let lines: Vec<String> = err.0.iter().map(ToString::to_string).collect();
    assert_eq!(
        lines,
        [
            "maintenance window `blank` declared at m/x.rs:1 is invalid: tags: a window selects at least one tag or monitor id",
            "maintenance window `typo` declared at m/main.rs:3 names monitor `bb`, which no monitor has; did you mean `b`?",
            "maintenance window `typo` declared at m/main.rs:3 names monitor `zzz`, which no monitor has",
        ]
    );
    assert!(matches!(
        err.0[1],
        RegistryError::UnknownWindowMonitor { .. }
    ));
    let typo_only = collect_windows(&[&win("m/main.rs", 3, || {
        window("t", &["own", "nobody"], &["b"])
    })])
    .unwrap();
    let warnings = check_windows(&typo_only, &monitors).unwrap();
    let warnings: Vec<String> = warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        warnings,
        [
            "maintenance window `t` declared at m/main.rs:3 selects tag `nobody`, which no monitor has"
        ]
    );
}
