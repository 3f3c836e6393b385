//! Retries handed to another location (`retry.same_region = false`): an agent whose
//! first attempt failed posts it (`POST /v1/agent/retries`); the control plane picks the
//! next location of the monitor's rotation that has an agent taking retries here, and
//! keeps the check until an agent of that location takes it (`GET /v1/agent/retries`).
//!
//! Kept in this process's memory: a replica hands a retry only to a location with an
//! agent polling its retries on this replica (else the agent that posted it retries it
//! itself), and a restart loses the checks waiting (then their first attempts are not
//! stored). At most [`MAX_PENDING`] checks wait per project. A check no agent took within
//! its deadline is given back ([`Retries::expired`]) to be stored as the first location's
//! result, so no check is lost while the server runs.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use monitor_spec::result::CheckResult;
use serde_json::value::RawValue;
use thiserror::Error;
use tokio::sync::watch;

use super::takers::Takers;

/// The most checks waiting for another location's retry, per project.
pub const MAX_PENDING: usize = 10_000;

/// A check waiting for another location's agent.
#[derive(Debug, Clone)]
pub struct Pending {
    /// The monitor's canonical JSON, as deployed.
    pub monitor: Box<RawValue>,
    /// The monitor's id.
    pub id: String,
    /// The tick.
    pub tick: u64,
    /// Where the first attempt ran, and which agent ran it.
    pub from: String,
    /// The agent that ran the first attempt.
    pub from_agent: String,
    /// Not to retry before this instant, unix epoch milliseconds.
    pub not_before_ms: u64,
    /// The check so far.
    pub result: CheckResult,
    /// When it is given back if no agent took it.
    pub deadline: Instant,
}

/// Why a check cannot be handed to another location.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum HandError {
    /// No other location of the monitor has an agent taking retries here.
    #[error(
        "no other location of monitor `{0}` has an agent taking retries on this control plane; retry it where it ran"
    )]
    NoLocation(String),
    /// The project has [`MAX_PENDING`] checks waiting already.
    #[error(
        "{0} retries are waiting for other locations already, the most allowed; retry it where it ran"
    )]
    Full(usize),
}

#[derive(Debug)]
struct ProjectRetries {
    /// The waiting checks of each location, oldest first.
    queues: BTreeMap<String, VecDeque<Pending>>,
    /// How many checks wait in all.
    len: usize,
    /// The agents polling retries, by location: until when each counts as taking them.
    takers: Takers,
    /// Bumped when a check is handed in.
    changed: watch::Sender<u64>,
}

impl Default for ProjectRetries {
    fn default() -> Self {
        ProjectRetries {
            queues: BTreeMap::new(),
            len: 0,
            takers: Takers::default(),
            changed: watch::Sender::new(0),
        }
    }
}

impl ProjectRetries {
    fn takes(&self, location: &str, now: Instant) -> bool {
        self.takers.takes(location, now)
    }
}

/// The checks waiting for another location, per project; see the module docs.
#[derive(Debug)]
pub struct Retries {
    projects: Mutex<HashMap<String, ProjectRetries>>,
    max: usize,
}

impl Default for Retries {
    fn default() -> Self {
        Retries::new(MAX_PENDING)
    }
}

/// The location after `from` in `runs_in` (sorted; `from` need not be in it), around
/// the list, that `takes` retries; never `from` itself.
pub fn next_location<'a>(
    runs_in: &[&'a str],
    from: &str,
    takes: impl Fn(&str) -> bool,
) -> Option<&'a str> {
    let start = runs_in.partition_point(|l| *l <= from);
    runs_in[start..]
        .iter()
        .chain(&runs_in[..start])
        .copied()
        .find(|l| *l != from && takes(l))
}

impl Retries {
    /// At most `max` checks waiting per project.
    pub fn new(max: usize) -> Retries {
        Retries {
            projects: Mutex::new(HashMap::new()),
            max,
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, ProjectRetries>> {
        self.projects.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Notes that `agent` of `location` polls retries: it counts as taking them until
    /// `until`.
    pub fn polling(&self, project: &str, agent: &str, location: &str, until: Instant) {
        let mut projects = self.lock();
        let p = projects.entry(project.to_owned()).or_default();
        p.takers.polling(agent, location, until);
    }

    /// Hands `pending` (from `pending.from`) to the next location of `runs_in` (the live
    /// locations that run the monitor, sorted) with an agent taking retries; that
    /// location.
    pub fn hand(
        &self,
        project: &str,
        runs_in: &[&str],
        pending: Pending,
        now: Instant,
    ) -> Result<String, HandError> {
        let mut projects = self.lock();
        let p = projects.entry(project.to_owned()).or_default();
        if p.len >= self.max {
            return Err(HandError::Full(self.max));
        }
        let Some(to) = next_location(runs_in, &pending.from, |l| p.takes(l, now)) else {
            return Err(HandError::NoLocation(pending.id));
        };
        p.queues
            .entry(to.to_owned())
            .or_default()
            .push_back(pending);
        p.len += 1;
        p.changed.send_modify(|n| *n = n.wrapping_add(1));
        Ok(to.to_owned())
    }

    /// Takes at most `max` checks waiting for `location`, oldest first.
    pub fn take(&self, project: &str, location: &str, max: usize) -> Vec<Pending> {
        let mut projects = self.lock();
        let Some(p) = projects.get_mut(project) else {
            return Vec::new();
        };
        let Some(queue) = p.queues.get_mut(location) else {
            return Vec::new();
        };
        let n = queue.len().min(max);
        let taken: Vec<Pending> = queue.drain(..n).collect();
        if queue.is_empty() {
            p.queues.remove(location);
        }
        p.len -= taken.len();
        taken
    }

    /// Removes and gives back the checks past their deadline, and forgets the agents no
    /// longer taking retries.
    pub fn expired(&self, project: &str, now: Instant) -> Vec<Pending> {
        let mut projects = self.lock();
        let Some(p) = projects.get_mut(project) else {
            return Vec::new();
        };
        p.takers.forget_gone(now);
        let mut gone = Vec::new();
        for queue in p.queues.values_mut() {
            let (keep, late): (VecDeque<Pending>, VecDeque<Pending>) =
                queue.drain(..).partition(|r| r.deadline > now);
            *queue = keep;
            gone.extend(late);
        }
        p.queues.retain(|_, q| !q.is_empty());
        p.len -= gone.len();
        gone
    }

    /// A receiver of the project's signal of checks handed in.
    pub fn subscribe(&self, project: &str) -> watch::Receiver<u64> {
        self.lock()
            .entry(project.to_owned())
            .or_default()
            .changed
            .subscribe()
    }

    /// How many checks wait in the project.
    pub fn waiting(&self, project: &str) -> usize {
        self.lock().get(project).map_or(0, |p| p.len)
    }
}

/// Whether the checks of a monitor that runs in `locations` live locations retry in
/// another one: it has retries, `same_region = false`, and does not run in parallel.
pub fn retries_elsewhere(spec: &monitor_spec::TcpMonitor, locations: usize) -> bool {
    use monitor_spec::schedule::RetryStrategy;
    let same_region = match spec.retry {
        RetryStrategy::None => true,
        RetryStrategy::SingleRetry { same_region, .. } => same_region,
        RetryStrategy::Fixed(b) | RetryStrategy::Linear(b) | RetryStrategy::Exponential(b) => {
            b.same_region
        }
    };
    spec.retry.max_retries() > 0 && !same_region && !spec.run_parallel && locations >= 2
}

/// How long a handed check waits for an agent before it is given back: past its
/// `not_before`, twice the agent timeout.
pub fn deadline(now: Instant, wait_ms: u64, timeout: Duration) -> Instant {
    now + Duration::from_millis(wait_ms) + timeout.saturating_mul(2)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(from: &str, tick: u64, deadline: Instant) -> Pending {
        let spec = monitor_spec::TcpMonitor::new("m", "127.0.0.1", 1);
        let result: CheckResult = serde_json::from_value(serde_json::json!({
            "id": "m", "name": "m", "target": "127.0.0.1:1", "status": "failed",
            "error": null, "timings": {"total_ms": 1.0}, "address": null, "attempts": [],
            "assertions": [], "response_excerpt": "", "started_at": "2026-01-01T00:00:00Z"
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        Pending {
            monitor: serde_json::value::to_raw_value(&spec).unwrap(),
            id: "m".to_owned(),
            tick,
            from: from.to_owned(),
            from_agent: format!("agent-{from}"),
            not_before_ms: 0,
            result,
            deadline,
        }
    }

    #[test]
    fn the_next_location_follows_the_rotation_and_skips_those_not_taking_retries() {
        let all = ["ap", "eu", "us"];
        let every = |_: &str| true;
        assert_eq!(next_location(&all, "eu", every), Some("us"));
        assert_eq!(next_location(&all, "us", every), Some("ap"));
        assert_eq!(next_location(&all, "ap", every), Some("eu"));
        assert_eq!(next_location(&all, "eu", |l| l != "us"), Some("ap"));
        // A location that left the rotation hands to the one after its place.
        assert_eq!(next_location(&all, "fr", every), Some("us"));
        assert_eq!(next_location(&all, "eu", |l| l == "eu"), None);
        assert_eq!(next_location(&["eu"], "eu", every), None);
        assert_eq!(next_location(&[], "eu", every), None);
    }

    #[test]
    fn checks_go_to_a_location_with_a_taker_and_are_taken_once() {
        let retries = Retries::new(3);
        let now = Instant::now();
        let later = now + Duration::from_secs(60);
        let runs_in = ["eu", "us"];
        // Nobody polls retries: nowhere to go.
        assert_eq!(
            retries.hand("p", &runs_in, pending("eu", 1, later), now),
            Err(HandError::NoLocation("m".to_owned()))
        );
        retries.polling("p", "b", "us", later);
        let mut signal = retries.subscribe("p");
        assert_eq!(
            retries.hand("p", &runs_in, pending("eu", 1, later), now),
            Ok("us".to_owned())
        );
        assert!(signal.has_changed().unwrap());
        signal.borrow_and_update();
        // The only taker is in the location of the first attempt: nowhere else.
        assert!(
            retries
                .hand("p", &runs_in, pending("us", 2, later), now)
                .is_err()
        );
        assert_eq!(retries.take("p", "eu", 10).len(), 0);
        let taken = retries.take("p", "us", 10);
        assert_eq!(taken.iter().map(|r| r.tick).collect::<Vec<_>>(), [1]);
        assert!(retries.take("p", "us", 10).is_empty());
        assert_eq!(retries.waiting("p"), 0);
        // Another project sees none of it.
        assert!(
            retries
                .hand("q", &runs_in, pending("eu", 1, later), now)
                .is_err()
        );
    }

    #[test]
    fn a_project_holds_a_bounded_number_of_checks_and_gives_back_the_late_ones() {
        let retries = Retries::new(2);
        let now = Instant::now();
        let soon = now + Duration::from_secs(1);
        let later = now + Duration::from_secs(60);
        retries.polling("p", "b", "us", later);
        let runs_in = ["eu", "us"];
        retries
            .hand("p", &runs_in, pending("eu", 1, soon), now)
            .unwrap();
        retries
            .hand("p", &runs_in, pending("eu", 2, later), now)
            .unwrap();
        assert_eq!(
            retries.hand("p", &runs_in, pending("eu", 3, later), now),
            Err(HandError::Full(2))
        );
        assert_eq!(retries.take("p", "us", 1).len(), 1);
        retries
            .hand("p", &runs_in, pending("eu", 3, soon), now)
            .unwrap();
        let gone = retries.expired("p", now + Duration::from_secs(2));
        assert_eq!(gone.iter().map(|r| r.tick).collect::<Vec<_>>(), [3]);
        assert_eq!(retries.waiting("p"), 1);
        // The taker's time ran out too: nothing more goes to its location.
        retries.expired("p", now + Duration::from_secs(61));
        assert!(
            retries
                .hand(
                    "p",
                    &runs_in,
                    pending("eu", 4, later),
                    now + Duration::from_secs(61)
                )
                .is_err()
        );
    }

    #[test]
    fn only_monitors_with_retries_elsewhere_and_two_locations_qualify() {
        use monitor_spec::schedule::RetryStrategy;
        let mut spec = monitor_spec::TcpMonitor::new("m", "127.0.0.1", 1);
        assert!(!retries_elsewhere(&spec, 3));
        spec.retry = RetryStrategy::SingleRetry {
            base_backoff_seconds: 1,
            same_region: true,
        };
        assert!(!retries_elsewhere(&spec, 3));
        spec.retry = RetryStrategy::SingleRetry {
            base_backoff_seconds: 1,
            same_region: false,
        };
        assert!(retries_elsewhere(&spec, 2));
        assert!(!retries_elsewhere(&spec, 1));
        spec.run_parallel = true;
        assert!(!retries_elsewhere(&spec, 2));
    }
}
