//! The registry: stable ordering, duplicate ids naming both places, defaults applied only
//! where a monitor is silent, and validation pointing at the declaring file and line.

use monitor_core::prelude::*;
use monitor_core::registry::{
    Defaults, DefaultsRegistration, Registration, RegistryError, collect, derived_id, validate,
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
