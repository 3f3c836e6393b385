//! Triggered runs (`POST /v1/projects/{project}/trigger`, issue 21): one immediate run of
//! some deployed monitors in each of their live locations, outside the schedule. The
//! runs wait per location until an agent of it takes them through the retries long poll
//! (`GET /v1/agent/retries?triggers=1`); their results are kept here, beside the trigger,
//! until `GET /v1/projects/{project}/triggers/{id}` reads them.
//!
//! Kept in this process's memory, never in the results table: a triggered result changes
//! neither the schedule's ticks nor the status and uptime. So the replica that queued a
//! trigger is the one whose agents take its runs, that receives their results, and that
//! answers for it; a restart forgets it. At most [`MAX_TRIGGERS`] triggers per project
//! are kept, each for [`KEPT`], the oldest forgotten first.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use monitor_spec::api::{Problem, ResultIn, TriggerRun, TriggeredResult};
use monitor_spec::result::CheckResult;
use serde_json::value::RawValue;
use tokio::sync::watch;

use super::takers::Takers;

/// The most triggers kept per project.
pub const MAX_TRIGGERS: usize = 100;

/// The most runs one trigger queues.
pub const MAX_RUNS: usize = 1_000;

/// How long a trigger, its waiting runs and its results are kept.
pub const KEPT: Duration = Duration::from_secs(600);

/// A run waiting for an agent of its location.
#[derive(Debug, Clone)]
pub struct Queued {
    /// The monitor's canonical JSON, as deployed.
    pub monitor: Box<RawValue>,
    /// The trigger's id.
    pub trigger: String,
}

#[derive(Debug)]
struct Trigger {
    created: Instant,
    /// The runs still without a result.
    missing: BTreeSet<TriggerRun>,
    /// The results, in the order they came.
    results: Vec<TriggeredResult>,
}

#[derive(Debug)]
struct ProjectTriggers {
    triggers: BTreeMap<String, Trigger>,
    /// The ids of `triggers`, oldest first.
    order: VecDeque<String>,
    /// The runs waiting, by location.
    queues: BTreeMap<String, VecDeque<Queued>>,
    /// The agents taking triggered runs, by location: until when each counts.
    takers: Takers,
    /// Bumped when runs are queued or a result comes.
    changed: watch::Sender<u64>,
}

impl Default for ProjectTriggers {
    fn default() -> Self {
        ProjectTriggers {
            triggers: BTreeMap::new(),
            order: VecDeque::new(),
            queues: BTreeMap::new(),
            takers: Takers::default(),
            changed: watch::Sender::new(0),
        }
    }
}

impl ProjectTriggers {
    fn forget_old(&mut self, now: Instant) {
        while let Some(id) = self.order.front() {
            let old = self
                .triggers
                .get(id)
                .is_none_or(|t| now.saturating_duration_since(t.created) > KEPT);
            if !old && self.order.len() < MAX_TRIGGERS {
                break;
            }
            let id = self.order.pop_front().unwrap_or_default();
            self.triggers.remove(&id);
            for queue in self.queues.values_mut() {
                queue.retain(|q| q.trigger != id);
            }
        }
        self.queues.retain(|_, q| !q.is_empty());
        self.takers.forget_gone(now);
    }
}

/// What became of a triggered result handed in.
#[derive(Debug, PartialEq, Eq)]
pub enum Received {
    /// Kept: the trigger waited for it.
    Kept,
    /// The trigger has this run's result already.
    Duplicate,
    /// No such trigger here (forgotten, or queued by another replica), or it has no such
    /// run.
    Unknown,
}

/// The triggers of each project; see the module docs.
#[derive(Debug, Default)]
pub struct Triggers {
    projects: Mutex<HashMap<String, ProjectTriggers>>,
}

/// A new trigger id: 16 hex digits, random.
pub fn new_id() -> String {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 8];
    if ring::rand::SystemRandom::new().fill(&mut bytes).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        bytes = (nanos as u64).to_be_bytes();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Triggers {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, ProjectTriggers>> {
        self.projects.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Notes that `agent` of `location` takes triggered runs until `until`.
    pub fn polling(&self, project: &str, agent: &str, location: &str, until: Instant) {
        let mut projects = self.lock();
        let p = projects.entry(project.to_owned()).or_default();
        p.takers.polling(agent, location, until);
    }

    /// The locations with an agent taking triggered runs now.
    pub fn taking(&self, project: &str, now: Instant) -> BTreeSet<String> {
        let projects = self.lock();
        projects
            .get(project)
            .map_or_else(BTreeSet::new, |p| p.takers.locations(now))
    }

    /// Queues `runs` (each monitor's JSON with its run) under the trigger `id`.
    pub fn queue(
        &self,
        project: &str,
        id: &str,
        runs: Vec<(Box<RawValue>, TriggerRun)>,
        now: Instant,
    ) {
        let mut projects = self.lock();
        let p = projects.entry(project.to_owned()).or_default();
        p.forget_old(now);
        let mut missing = BTreeSet::new();
        for (monitor, run) in runs {
            p.queues
                .entry(run.location.clone())
                .or_default()
                .push_back(Queued {
                    monitor,
                    trigger: id.to_owned(),
                });
            missing.insert(run);
        }
        p.triggers.insert(
            id.to_owned(),
            Trigger {
                created: now,
                missing,
                results: Vec::new(),
            },
        );
        p.order.push_back(id.to_owned());
        p.changed.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Takes at most `max` runs waiting for `location`, oldest first.
    pub fn take(&self, project: &str, location: &str, max: usize) -> Vec<Queued> {
        let mut projects = self.lock();
        let Some(queue) = projects
            .get_mut(project)
            .and_then(|p| p.queues.get_mut(location))
        else {
            return Vec::new();
        };
        let n = queue.len().min(max);
        queue.drain(..n).collect()
    }

    /// Keeps the result of a run of trigger `id`.
    pub fn received(
        &self,
        project: &str,
        id: &str,
        agent: &str,
        location: &str,
        result: CheckResult,
    ) -> Received {
        let mut projects = self.lock();
        let Some(p) = projects.get_mut(project) else {
            return Received::Unknown;
        };
        let Some(t) = p.triggers.get_mut(id) else {
            return Received::Unknown;
        };
        let run = TriggerRun {
            monitor: result.id.to_string(),
            location: location.to_owned(),
        };
        if !t.missing.remove(&run) {
            let seen = t
                .results
                .iter()
                .any(|r| r.monitor == run.monitor && r.location == run.location);
            return if seen {
                Received::Duplicate
            } else {
                Received::Unknown
            };
        }
        t.results.push(TriggeredResult {
            monitor: run.monitor,
            location: run.location,
            agent: agent.to_owned(),
            result,
        });
        p.changed.send_modify(|n| *n = n.wrapping_add(1));
        Received::Kept
    }

    /// The results of trigger `id` so far and its runs still missing; `None` when it is
    /// unknown here.
    pub fn status(
        &self,
        project: &str,
        id: &str,
    ) -> Option<(Vec<TriggeredResult>, Vec<TriggerRun>)> {
        let projects = self.lock();
        let t = projects.get(project)?.triggers.get(id)?;
        Some((t.results.clone(), t.missing.iter().cloned().collect()))
    }

    /// A receiver of the project's signal of runs queued and results received.
    pub fn subscribe(&self, project: &str) -> watch::Receiver<u64> {
        self.lock()
            .entry(project.to_owned())
            .or_default()
            .changed
            .subscribe()
    }
}

/// The problems of the triggered results of a batch from `location` (id
/// `{monitor}/{location}/trigger/{trigger}`, tick 0), each with its path.
pub fn triggered_problems(results: &[ResultIn], location: &str) -> Vec<Problem> {
    let mut problems = Vec::new();
    for (i, r) in results.iter().enumerate() {
        let Some(trigger) = &r.trigger else { continue };
        let expected = format!("{}/{location}/trigger/{trigger}", r.monitor);
        if r.id != expected {
            problems.push(Problem {
                path: format!("results[{i}].id"),
                message: format!(
                    "is `{}`; a triggered result's id is `{{monitor}}/{{location}}/trigger/{{trigger}}`, here `{}`",
                    r.id.escape_default(),
                    expected.escape_default()
                ),
            });
        }
        if r.tick != 0 {
            problems.push(Problem {
                path: format!("results[{i}].tick"),
                message: format!("is {}; a triggered result's tick is 0", r.tick),
            });
        }
        if *r.result.id != *r.monitor {
            problems.push(Problem {
                path: format!("results[{i}].result.id"),
                message: format!(
                    "is `{}` but the result is for monitor `{}`",
                    r.result.id.escape_default(),
                    r.monitor.escape_default()
                ),
            });
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(id: &str) -> CheckResult {
        serde_json::from_value(serde_json::json!({
            "id": id, "name": id, "target": "127.0.0.1:1", "status": "passed",
            "error": null, "timings": {"total_ms": 1.0}, "address": null, "attempts": [],
            "assertions": [], "response_excerpt": "", "started_at": "2026-01-01T00:00:00Z"
        }))
        .unwrap_or_else(|e| panic!("{e}"))
    }

    fn run(monitor: &str, location: &str) -> (Box<RawValue>, TriggerRun) {
        (
            serde_json::value::to_raw_value(&serde_json::json!({"id": monitor})).unwrap(),
            TriggerRun {
                monitor: monitor.to_owned(),
                location: location.to_owned(),
            },
        )
    }

    #[test]
    fn runs_wait_per_location_and_results_are_kept_once() {
        let triggers = Triggers::default();
        let now = Instant::now();
        triggers.polling("p", "a", "eu", now + Duration::from_secs(60));
        assert_eq!(
            triggers.taking("p", now).into_iter().collect::<Vec<_>>(),
            ["eu"]
        );
        let signal = triggers.subscribe("p");
        triggers.queue("p", "t1", vec![run("m", "eu"), run("m", "us")], now);
        assert!(signal.has_changed().unwrap());
        assert_eq!(triggers.take("p", "eu", 10).len(), 1);
        assert!(triggers.take("p", "eu", 10).is_empty());
        assert_eq!(
            triggers.received("p", "t1", "a", "eu", result("m")),
            Received::Kept
        );
        assert_eq!(
            triggers.received("p", "t1", "a", "eu", result("m")),
            Received::Duplicate
        );
        assert_eq!(
            triggers.received("p", "t1", "a", "ap", result("m")),
            Received::Unknown
        );
        assert_eq!(
            triggers.received("p", "t2", "a", "eu", result("m")),
            Received::Unknown
        );
        let (results, missing) = triggers.status("p", "t1").unwrap();
        assert_eq!(results.len(), 1);
        assert_eq!(missing, [run("m", "us").1]);
        assert!(triggers.status("q", "t1").is_none());
    }

    #[test]
    fn a_project_keeps_a_bounded_number_of_triggers() {
        let triggers = Triggers::default();
        let now = Instant::now();
        for i in 0..=MAX_TRIGGERS {
            triggers.queue("p", &format!("t{i}"), vec![run("m", "eu")], now);
        }
        assert!(triggers.status("p", "t0").is_none());
        assert!(triggers.status("p", &format!("t{MAX_TRIGGERS}")).is_some());
        assert_eq!(triggers.take("p", "eu", usize::MAX).len(), MAX_TRIGGERS);
        // Past KEPT, a new trigger forgets the old ones.
        triggers.queue("p", "late", vec![], now + KEPT + Duration::from_secs(1));
        assert!(triggers.status("p", "t1").is_none());
        assert_eq!(new_id().len(), 16);
    }
}
