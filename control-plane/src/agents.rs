//! Agents and what they run: the in-memory registry of the live agents of each project
//! (location, when last heard of, open long polls) with a change signal for long polls,
//! and the assignment of the deployed monitors to agents: the locations a monitor runs in,
//! round robin over them unless it runs in parallel, and rendezvous hashing within a
//! location.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use monitor_spec::api::{AssignedMonitor, Assignment as AssignmentBody};
use serde_json::value::RawValue;
use tokio::sync::watch;

use crate::deployed::Deployed;
use crate::hash::sha256_hex;

/// FNV-1a 64 of `bytes`: stable across builds and platforms.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Checks an agent or location name: 1 to 64 characters of ASCII letters, digits, `.`, `_`
/// and `-` (the rule monitors' locations follow too).
pub fn check_name(what: &str, name: &str) -> Result<(), String> {
    monitor_spec::rules::check_place(name).map_err(|why| format!("invalid {what}: {why}"))
}

/// An agent heard of within the timeout.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct LiveAgent {
    /// Its id.
    pub id: String,
    /// Where it runs.
    pub location: String,
}

#[derive(Debug)]
struct AgentState {
    location: String,
    last_seen: Instant,
    /// Long polls open: an agent waiting on one is being heard from.
    polls: usize,
}

#[derive(Debug)]
struct ProjectAgents {
    agents: BTreeMap<String, AgentState>,
    /// Bumped whenever the agents or the deployed monitors change.
    changed: watch::Sender<u64>,
}

impl Default for ProjectAgents {
    fn default() -> Self {
        ProjectAgents {
            agents: BTreeMap::new(),
            changed: watch::Sender::new(0),
        }
    }
}

impl ProjectAgents {
    fn bump(&self) {
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Drops the agents not heard of for `timeout`; whether any was.
    fn expire(&mut self, project: &str, timeout: Duration, now: Instant) -> bool {
        let before = self.agents.len();
        self.agents.retain(|id, a| {
            let live = a.polls > 0 || now.saturating_duration_since(a.last_seen) < timeout;
            if !live {
                tracing::info!(%project, agent = %id, location = %a.location, "agent gone");
            }
            live
        });
        let changed = self.agents.len() != before;
        if changed {
            self.bump();
        }
        changed
    }
}

/// The live agents of every project, in memory: agents come back with their next call
/// after a restart.
#[derive(Debug)]
pub struct Registry {
    timeout: Duration,
    projects: Mutex<HashMap<String, ProjectAgents>>,
}

impl Registry {
    /// A registry where an agent not heard of for `timeout` is gone.
    pub fn new(timeout: Duration) -> Registry {
        Registry {
            timeout,
            projects: Mutex::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, ProjectAgents>> {
        self.projects.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a call of an agent; signals a change when it is new or moved.
    pub fn heard(&self, project: &str, agent: &str, location: &str, now: Instant) {
        let mut projects = self.lock();
        let p = projects.entry(project.to_owned()).or_default();
        p.expire(project, self.timeout, now);
        match p.agents.get_mut(agent) {
            Some(a) if a.location == location => a.last_seen = now,
            Some(a) => {
                tracing::info!(%project, %agent, from = %a.location, to = %location, "agent moved");
                a.location = location.to_owned();
                a.last_seen = now;
                p.bump();
            }
            None => {
                tracing::info!(%project, %agent, %location, "agent joined");
                p.agents.insert(
                    agent.to_owned(),
                    AgentState {
                        location: location.to_owned(),
                        last_seen: now,
                        polls: 0,
                    },
                );
                p.bump();
            }
        }
    }

    /// A receiver of the project's change signal: it sees every change after this call.
    pub fn subscribe(&self, project: &str) -> watch::Receiver<u64> {
        self.lock()
            .entry(project.to_owned())
            .or_default()
            .changed
            .subscribe()
    }

    /// Signals that the project's deployed monitors changed.
    pub fn notify(&self, project: &str) {
        if let Some(p) = self.lock().get(project) {
            p.bump();
        }
    }

    /// Drops the project's agents not heard of for the timeout, signalling a change if any
    /// was; whether any was.
    pub fn expire(&self, project: &str, now: Instant) -> bool {
        self.lock()
            .get_mut(project)
            .is_some_and(|p| p.expire(project, self.timeout, now))
    }

    /// The project's live agents, sorted by id.
    pub fn live(&self, project: &str, now: Instant) -> Vec<LiveAgent> {
        let mut projects = self.lock();
        let Some(p) = projects.get_mut(project) else {
            return Vec::new();
        };
        p.expire(project, self.timeout, now);
        p.agents
            .iter()
            .map(|(id, a)| LiveAgent {
                id: id.clone(),
                location: a.location.clone(),
            })
            .collect()
    }

    /// How many live agents each project has in each location, sorted.
    pub fn counts(&self, now: Instant) -> Vec<(String, String, usize)> {
        let mut projects = self.lock();
        let mut out = BTreeMap::new();
        for (name, p) in projects.iter_mut() {
            p.expire(name, self.timeout, now);
            for a in p.agents.values() {
                *out.entry((name.clone(), a.location.clone())).or_insert(0) += 1;
            }
        }
        out.into_iter().map(|((p, l), n)| (p, l, n)).collect()
    }

    /// Marks a long poll of an agent as open until the guard drops; the agent counts as
    /// heard from meanwhile, and as last heard of when it closes.
    pub fn poll(self: &Arc<Self>, project: &str, agent: &str) -> PollGuard {
        if let Some(a) = self
            .lock()
            .get_mut(project)
            .and_then(|p| p.agents.get_mut(agent))
        {
            a.polls += 1;
        }
        PollGuard {
            registry: Arc::clone(self),
            project: project.to_owned(),
            agent: agent.to_owned(),
        }
    }
}

/// An open long poll; see [`Registry::poll`].
#[derive(Debug)]
pub struct PollGuard {
    registry: Arc<Registry>,
    project: String,
    agent: String,
}

impl Drop for PollGuard {
    fn drop(&mut self) {
        let now = Instant::now();
        if let Some(a) = self
            .registry
            .lock()
            .get_mut(&self.project)
            .and_then(|p| p.agents.get_mut(&self.agent))
        {
            a.polls = a.polls.saturating_sub(1);
            a.last_seen = now;
        }
    }
}

/// A monitor assigned to an agent, with its schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct Assigned<'a> {
    /// The monitor.
    pub monitor: &'a Deployed,
    /// Run at every `every`-th tick ...
    pub every: u64,
    /// ... those with `k % every == index`.
    pub index: u64,
    /// The offset of the ticks in the interval, in milliseconds.
    pub phase_ms: u64,
}

/// What one agent runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Assignment<'a> {
    /// The agent.
    pub agent: String,
    /// Its location.
    pub location: String,
    /// Live agents in that location, the agent included.
    pub agents_in_location: usize,
    /// Its monitors, sorted by id.
    pub monitors: Vec<Assigned<'a>>,
    /// Changes exactly when the monitors, their specs or their schedules do.
    pub etag: String,
}

/// The monitors of `deployed` (sorted by id) that `agent` in `location` runs, given the
/// live agents (which include it).
pub fn assign<'a>(
    deployed: &'a [Deployed],
    live: &[LiveAgent],
    agent: &str,
    location: &str,
) -> Assignment<'a> {
    let locations: BTreeSet<&str> = live.iter().map(|a| a.location.as_str()).collect();
    let here: Vec<&str> = live
        .iter()
        .filter(|a| a.location == location)
        .map(|a| a.id.as_str())
        .collect();
    let mut monitors = Vec::new();
    for m in deployed {
        let spec = &m.spec;
        if !spec.activated || spec.test_only {
            continue;
        }
        let wanted: BTreeSet<&str> = spec
            .locations
            .iter()
            .chain(&spec.private_locations)
            .map(String::as_str)
            .collect();
        let runs_in: Vec<&str> = locations
            .iter()
            .copied()
            .filter(|l| wanted.is_empty() || wanted.contains(l))
            .collect();
        let Some(position) = runs_in.iter().position(|l| *l == location) else {
            continue;
        };
        if owner(&here, m.id()) != Some(agent) {
            continue;
        }
        let (every, index) = if spec.run_parallel {
            (1, 0)
        } else {
            (runs_in.len() as u64, position as u64)
        };
        let interval_ms = spec.frequency.as_secs().saturating_mul(1000).max(1);
        monitors.push(Assigned {
            monitor: m,
            every,
            index,
            phase_ms: fnv1a64(m.id().as_bytes()) % interval_ms,
        });
    }
    let etag = etag(&monitors);
    Assignment {
        agent: agent.to_owned(),
        location: location.to_owned(),
        agents_in_location: here.len(),
        monitors,
        etag,
    }
}

/// The agent of `agents` a monitor goes to: the highest score
/// [`fmix64`]`(`[`fnv1a64`]`(agent + "\n" + monitor))`, the smaller id on a tie.
pub fn owner<'a>(agents: &[&'a str], monitor: &str) -> Option<&'a str> {
    agents
        .iter()
        .copied()
        .max_by_key(|a| (rendezvous_score(a, monitor), Reverse(*a)))
}

/// The rendezvous score of an agent for a monitor. FNV-1a alone is no good here: the
/// high bits of its hash of a short key hardly depend on the last bytes, so comparing the
/// raw hashes would hand nearly every monitor to the same agent; the finalizer mixes them.
pub fn rendezvous_score(agent: &str, monitor: &str) -> u64 {
    fmix64(fnv1a64(format!("{agent}\n{monitor}").as_bytes()))
}

/// The 64-bit finalizer of MurmurHash3: every input bit affects every output bit.
pub fn fmix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^ (k >> 33)
}

/// Hex SHA-256 over each monitor's id, spec hash, `every` and `index`.
fn etag(monitors: &[Assigned<'_>]) -> String {
    let mut text = String::new();
    for m in monitors {
        text.push_str(m.monitor.id());
        text.push('\n');
        text.push_str(&m.monitor.hash);
        text.push('\n');
        text.push_str(&m.every.to_string());
        text.push('\n');
        text.push_str(&m.index.to_string());
        text.push('\n');
    }
    sha256_hex(text.as_bytes())
}

/// The JSON of an assignment, each monitor in its canonical JSON.
pub fn assignment_json(a: &Assignment<'_>) -> String {
    let body = AssignmentBody::<&RawValue> {
        agent: a.agent.clone(),
        location: a.location.clone(),
        etag: a.etag.clone(),
        agents_in_location: a.agents_in_location as u64,
        monitors: a
            .monitors
            .iter()
            .map(|m| AssignedMonitor {
                monitor: &*m.monitor.json,
                every: m.every,
                index: m.index,
                phase_ms: m.phase_ms,
            })
            .collect(),
    };
    // Strings, numbers and raw values: writing them to a string cannot fail.
    serde_json::to_string(&body).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor_set::MonitorSet;
    use monitor_spec::TcpMonitor;
    use monitor_spec::bundle::Bundle;

    fn deployed(monitors: Vec<TcpMonitor>) -> Vec<Deployed> {
        crate::deployed::parse(&MonitorSet::from_bundle(&Bundle::new(monitors)).unwrap()).unwrap()
    }

    fn live(agents: &[(&str, &str)]) -> Vec<LiveAgent> {
        agents
            .iter()
            .map(|(id, location)| LiveAgent {
                id: (*id).to_owned(),
                location: (*location).to_owned(),
            })
            .collect()
    }

    /// Every (agent, monitor, every, index) the agents are assigned.
    fn all(monitors: &[Deployed], agents: &[LiveAgent]) -> Vec<(String, String, u64, u64)> {
        let mut out = Vec::new();
        for a in agents {
            for m in assign(monitors, agents, &a.id, &a.location).monitors {
                out.push((a.id.clone(), m.monitor.id().to_owned(), m.every, m.index));
            }
        }
        out.sort();
        out
    }

    fn check(
        monitors: Vec<TcpMonitor>,
        agents: &[(&str, &str)],
        expected: &[(&str, &str, u64, u64)],
    ) {
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
        let a = assign(&monitors, &agents, "x", "eu");
        assert_eq!(a.monitors[0].phase_ms, fnv1a64(b"fast") % 10_000);
        assert_eq!(a.agents_in_location, 1);
        let json: serde_json::Value = serde_json::from_str(&assignment_json(&a)).unwrap();
        assert_eq!(json["etag"], a.etag);
        assert_eq!(json["monitors"][0]["monitor"]["id"], "fast");
        assert_eq!(json["monitors"][0]["every"], 1);
        // The same monitors make the same etag; a changed spec or schedule another.
        let again = assign(&monitors, &agents, "x", "eu");
        assert_eq!(again.etag, a.etag);
        let two = live(&[("x", "eu"), ("y", "us")]);
        assert_ne!(assign(&monitors, &two, "x", "eu").etag, a.etag);
        let changed = deployed(vec![fast.name("renamed")]);
        assert_ne!(assign(&changed, &agents, "x", "eu").etag, a.etag);
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
}
