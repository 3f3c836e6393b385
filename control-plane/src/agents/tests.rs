//! Unit tests of the registry and the assignment: rules, rendezvous, phases, etags,
//! expiry and the agents that hold work without posting results.

use super::*;
use crate::monitor_set::MonitorSet;
use monitor_spec::TcpMonitor;
use monitor_spec::bundle::Bundle;

/// The least grace of the assignment tests.
const GRACE: Duration = Duration::from_secs(30);

fn deployed(monitors: Vec<TcpMonitor>) -> Vec<Deployed> {
    crate::deployed::parse(&MonitorSet::from_bundle(&Bundle::new(monitors)).unwrap()).unwrap()
}

fn live(agents: &[(&str, &str)]) -> Vec<LiveAgent> {
    agents
        .iter()
        .map(|(id, location)| LiveAgent {
            id: (*id).to_owned(),
            location: (*location).to_owned(),
            owed_since: None,
        })
        .collect()
}

/// Every (agent, monitor, every, index) the agents are assigned.
fn all(monitors: &[Deployed], agents: &[LiveAgent]) -> Vec<(String, String, u64, u64)> {
    let mut out = Vec::new();
    for a in agents {
        for m in assign(monitors, agents, &a.id, &a.location, Instant::now(), GRACE).monitors {
            out.push((a.id.clone(), m.monitor.id().to_owned(), m.every, m.index));
        }
    }
    out.sort();
    out
}

fn check(monitors: Vec<TcpMonitor>, agents: &[(&str, &str)], expected: &[(&str, &str, u64, u64)]) {
    let got = all(&deployed(monitors), &live(agents));
    let mut expected: Vec<(String, String, u64, u64)> = expected
        .iter()
        .map(|(a, m, e, i)| ((*a).to_owned(), (*m).to_owned(), *e, *i))
        .collect();
    expected.sort();
    assert_eq!(got, expected, "agents {agents:?}");
}

fn m(id: &str) -> TcpMonitor {
    TcpMonitor::new(id, "h.internal", 1)
}

#[test]
fn fnv_matches_the_reference_values() {
    assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
    assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
    assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    assert_eq!(fmix64(0), 0);
    assert_eq!(fmix64(1), 0xb456_bcfc_34c2_cb2c);
}

#[test]
fn assignment_rules() {
    // Everywhere, round robin: each location takes every other tick.
    check(
        vec![m("a")],
        &[("x", "eu"), ("y", "us")],
        &[("x", "a", 2, 0), ("y", "a", 2, 1)],
    );
    // In parallel: every tick in each location.
    let mut p = m("a");
    p.run_parallel = true;
    check(
        vec![p],
        &[("x", "eu"), ("y", "us")],
        &[("x", "a", 1, 0), ("y", "a", 1, 0)],
    );
    // Only the locations asked for, private ones included; others get nothing.
    let mut only = m("a");
    only.locations = vec!["us".into()];
    only.private_locations = vec!["dc1".into()];
    check(
        vec![only],
        &[("x", "eu"), ("y", "us"), ("z", "dc1")],
        &[("z", "a", 2, 0), ("y", "a", 2, 1)],
    );
    // A location asked for without a live agent takes no part.
    let mut gone = m("a");
    gone.locations = vec!["us".into(), "ap".into()];
    check(vec![gone], &[("y", "us")], &[("y", "a", 1, 0)]);
    // Deactivated and test-only monitors run nowhere; muted ones run.
    let mut off = m("off");
    off.activated = false;
    let mut test = m("test");
    test.test_only = true;
    let mut muted = m("muted");
    muted.muted = true;
    check(
        vec![off, test, muted],
        &[("x", "eu")],
        &[("x", "muted", 1, 0)],
    );
    // No agents, nothing.
    check(vec![m("a")], &[], &[]);
}

#[test]
fn one_agent_per_monitor_in_a_location_and_few_move() {
    let monitors = deployed((0..200).map(|i| m(&format!("m{i}"))).collect());
    let three = live(&[("a1", "eu"), ("a2", "eu"), ("a3", "eu")]);
    let got = all(&monitors, &three);
    assert_eq!(got.len(), 200);
    let ids: BTreeSet<&str> = got.iter().map(|g| g.1.as_str()).collect();
    assert_eq!(ids.len(), 200);
    for a in ["a1", "a2", "a3"] {
        let n = got.iter().filter(|g| g.0 == a).count();
        assert!((45..90).contains(&n), "{a} has {n}");
    }
    // A fourth agent takes monitors only from the others, none move between them.
    let four = live(&[("a1", "eu"), ("a2", "eu"), ("a3", "eu"), ("a4", "eu")]);
    let after = all(&monitors, &four);
    for g in &after {
        if g.0 != "a4" {
            assert!(got.iter().any(|h| h.0 == g.0 && h.1 == g.1), "{g:?} moved");
        }
    }
    assert_eq!(owner(&[], "m"), None);
}

#[test]
fn phase_and_etag() {
    let mut fast = m("fast");
    fast.frequency = monitor_spec::Frequency::S10;
    let monitors = deployed(vec![fast.clone()]);
    let agents = live(&[("x", "eu")]);
    let a = assign(&monitors, &agents, "x", "eu", Instant::now(), GRACE);
    assert_eq!(a.monitors[0].phase_ms, fnv1a64(b"fast") % 10_000);
    assert_eq!(a.agents_in_location, 1);
    let json: serde_json::Value = serde_json::from_str(&assignment_json(&a)).unwrap();
    assert_eq!(json["etag"], a.etag);
    assert_eq!(json["monitors"][0]["monitor"]["id"], "fast");
    assert_eq!(json["monitors"][0]["every"], 1);
    // The same monitors make the same etag; a changed spec or schedule another.
    let again = assign(&monitors, &agents, "x", "eu", Instant::now(), GRACE);
    assert_eq!(again.etag, a.etag);
    let two = live(&[("x", "eu"), ("y", "us")]);
    assert_ne!(
        assign(&monitors, &two, "x", "eu", Instant::now(), GRACE).etag,
        a.etag
    );
    let changed = deployed(vec![fast.name("renamed")]);
    assert_ne!(
        assign(&changed, &agents, "x", "eu", Instant::now(), GRACE).etag,
        a.etag
    );
}

#[test]
fn registry_expires_agents_unless_polling() {
    let registry = Arc::new(Registry::new(Duration::from_secs(10)));
    let t0 = Instant::now();
    let mut rx = registry.subscribe("p");
    registry.heard("p", "a", "eu", t0);
    registry.heard("p", "b", "eu", t0);
    assert!(rx.has_changed().unwrap());
    rx.borrow_and_update();
    // Heard again in the same place: no change.
    registry.heard("p", "a", "eu", t0 + Duration::from_secs(5));
    assert!(!rx.has_changed().unwrap());
    let guard = registry.poll("p", "b");
    let later = t0 + Duration::from_secs(12);
    assert_eq!(registry.live("p", later), live(&[("a", "eu"), ("b", "eu")]));
    assert!(!rx.has_changed().unwrap());
    let much_later = t0 + Duration::from_secs(16);
    assert!(registry.expire("p", much_later));
    assert!(rx.has_changed().unwrap());
    assert_eq!(registry.live("p", much_later), live(&[("b", "eu")]));
    drop(guard);
    assert_eq!(
        registry.counts(Instant::now()),
        [("p".into(), "eu".into(), 1)]
    );
    registry.heard("p", "b", "us", Instant::now());
    assert_eq!(
        registry.counts(Instant::now()),
        [("p".into(), "us".into(), 1)]
    );
    assert!(registry.live("other", Instant::now()).is_empty());
}

#[test]
fn names() {
    for good in ["a", "eu-west-1", "agent_7.local", &"x".repeat(64)] {
        assert!(check_name("agent", good).is_ok(), "{good}");
    }
    for bad in ["", "a b", "a/b", "é", &"x".repeat(65)] {
        assert!(check_name("agent", bad).is_err(), "{bad}");
    }
}

/// Ten-second monitors with a one-second timeout: a result within 11 s, a grace of 22 s.
fn fast(n: usize) -> Vec<Deployed> {
    deployed(
        (0..n)
            .map(|i| {
                m(&format!("f{i:02}"))
                    .frequency(monitor_spec::Frequency::S10)
                    .timeouts(500, 500, 1000)
            })
            .collect(),
    )
}

/// Hears every live agent at `now` and computes its assignment as the routes do, recording
/// it; returns the number of monitors of each and whether it was left out, by id.
fn round(
    registry: &Registry,
    monitors: &[Deployed],
    now: Instant,
) -> BTreeMap<String, (usize, bool)> {
    for a in registry.live("p", now) {
        registry.heard("p", &a.id, &a.location, now);
    }
    let live = registry.live("p", now);
    live.iter()
        .map(|a| {
            let got = assign(
                monitors,
                &live,
                &a.id,
                &a.location,
                now,
                registry.min_grace(),
            );
            registry.assigned("p", &got, now);
            (a.id.clone(), (got.monitors.len(), got.excluded))
        })
        .collect()
}

#[test]
fn grace_is_twice_the_longest_result_span_and_at_least_the_minimum() {
    let check = |monitors: &[Deployed], agents: &[(&str, &str)], timeout: u64, expected: u64| {
        let got = assign(
            monitors,
            &live(agents),
            "x",
            "eu",
            Instant::now(),
            Duration::from_secs(timeout),
        );
        assert_eq!(
            got.grace,
            Duration::from_secs(expected),
            "{agents:?} {timeout}"
        );
    };
    let monitors = fast(1);
    check(&monitors, &[("x", "eu")], 4, 22);
    // Round robin over two locations: one tick in two here, 2 * (20 s + 1 s).
    check(&monitors, &[("x", "eu"), ("y", "us")], 4, 42);
    // The agent timeout's double when it is longer.
    check(&monitors, &[("x", "eu")], 60, 60);
    // Retries count: two more attempts of 1 s and backoffs of 5 s and 5 s.
    let retried = deployed(vec![
        m("r")
            .frequency(monitor_spec::Frequency::S10)
            .timeouts(500, 500, 1000)
            .retry(monitor_spec::RetryStrategy::Fixed(monitor_spec::Backoff {
                base_backoff_seconds: 5,
                max_retries: 2,
                max_duration_seconds: 600,
                same_region: true,
            })),
    ]);
    check(&retried, &[("x", "eu")], 0, 2 * (10 + 3 + 10));
}

#[test]
fn agents_holding_monitors_without_results_lose_them_to_agents_that_work() {
    // A timeout of 10 s: the grace is the monitors' 22 s.
    let registry = Registry::new(Duration::from_secs(10));
    let monitors = fast(30);
    let t0 = Instant::now();
    for id in ["real", "fake1", "fake2", "fake3"] {
        registry.heard("p", id, "lab", t0);
    }
    // New agents all get work: scaling up works.
    let first = round(&registry, &monitors, t0);
    assert!(
        first.values().all(|(n, excluded)| *n > 0 && !excluded),
        "{first:?}"
    );
    assert_eq!(first.values().map(|(n, _)| n).sum::<usize>(), 30);
    // Within the grace nothing moves; the real agent posts results.
    let mut rx = registry.subscribe("p");
    rx.borrow_and_update();
    for s in [5, 10, 15, 20] {
        registry.posted("p", "real", t0 + Duration::from_secs(s));
        assert!(!registry.expire("p", t0 + Duration::from_secs(s)));
        assert_eq!(
            round(&registry, &monitors, t0 + Duration::from_secs(s)),
            first
        );
    }
    assert!(!rx.has_changed().unwrap());
    // Past the grace (22 s), the agents that never posted are left out, with a signal.
    let t1 = t0 + Duration::from_secs(23);
    assert!(registry.expire("p", t1));
    assert!(rx.has_changed().unwrap());
    assert!(!registry.expire("p", t1), "signalled once");
    let after = round(&registry, &monitors, t1);
    assert_eq!(after["real"], (30, false));
    for fake in ["fake1", "fake2", "fake3"] {
        assert_eq!(after[fake], (0, true), "{fake}");
    }
    // Left out, they stay out: an empty assignment does not restart their grace.
    registry.posted("p", "real", t1);
    assert_eq!(
        round(&registry, &monitors, t1 + Duration::from_secs(1)),
        after
    );
    // A new agent still gets its share at once.
    registry.heard("p", "new", "lab", t1);
    let with_new = round(&registry, &monitors, t1 + Duration::from_secs(1));
    assert!(
        with_new["new"].0 > 0 && with_new["real"].0 < 30,
        "{with_new:?}"
    );
    // An agent that posts results works again.
    registry.posted("p", "fake1", t1 + Duration::from_secs(2));
    let back = round(&registry, &monitors, t1 + Duration::from_secs(2));
    assert!(back["fake1"].0 > 0, "{back:?}");
}

#[test]
fn without_an_agent_that_works_the_others_keep_the_monitors() {
    let registry = Registry::new(Duration::from_secs(10));
    let monitors = fast(10);
    let t0 = Instant::now();
    registry.heard("p", "a", "lab", t0);
    registry.heard("p", "b", "lab", t0);
    round(&registry, &monitors, t0);
    let late = t0 + Duration::from_secs(60);
    for s in [9, 18, 27, 36, 45, 54] {
        round(&registry, &monitors, t0 + Duration::from_secs(s));
    }
    registry.expire("p", late);
    let got = round(&registry, &monitors, late);
    assert_eq!(got.values().map(|(n, _)| n).sum::<usize>(), 10, "{got:?}");
    assert!(got.values().all(|(_, excluded)| !excluded), "{got:?}");
}
