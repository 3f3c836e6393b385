//! Agents and what they run: the in-memory registry of the live agents of each project
//! (location, when last heard of, open long polls, when they got work and last posted
//! results) with a change signal for long polls, and the assignment of the deployed
//! monitors to agents: the locations a monitor runs in, round robin over them unless it
//! runs in parallel, and rendezvous hashing within a location among the agents that work.
//!
//! On a store shared by several control-plane replicas (PostgreSQL, [`Store::shared`]),
//! the registry's view of a project is what the store says: each replica writes the leases
//! of the agents it serves and reads everyone's, and changes are announced to every
//! replica ([`leases`]). On SQLite one process owns the file, and the registry is its
//! memory alone.
//!
//! An agent *works* unless it has held monitors for longer than its grace without posting
//! a result: twice the longest time a result of a monitor of its location may take
//! ([`result_span`]), and at least twice the agent timeout. While an agent of its location
//! works, one that does not gets no monitors; a new agent gets work at once (its grace
//! starts then), so scaling up works, and an agent that posts results works again.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, MutexGuard};
use std::time::{Duration, Instant};

use monitor_spec::TcpMonitor;
use monitor_spec::api::{AgentLoad, AgentStatus, AssignedMonitor, Assignment as AssignmentBody};
use serde_json::value::RawValue;
use tokio::sync::watch;

use crate::deployed::Deployed;
use crate::hash::sha256_hex;
use crate::store::Store;

mod leases;
pub mod retries;
mod takers;
pub mod triggers;

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
    /// Since when it has held monitors without posting a result: `None` while it holds
    /// none.
    pub owed_since: Option<Instant>,
}

#[derive(Debug)]
struct AgentState {
    location: String,
    last_seen: Instant,
    /// Long polls open: an agent waiting on one is being heard from.
    polls: usize,
    /// When it was handed monitors, since it last held none.
    work_since: Option<Instant>,
    /// When it last posted results.
    last_result: Option<Instant>,
    /// Its grace, as its last assignment found it.
    grace: Option<Duration>,
    /// Whether its grace running out was signalled.
    overdue: bool,
    /// Its scheduler's load, as it last reported it (kept in this process only).
    load: Option<AgentLoad>,
}

impl AgentState {
    fn new(location: &str, now: Instant) -> AgentState {
        AgentState {
            location: location.to_owned(),
            last_seen: now,
            polls: 0,
            work_since: None,
            last_result: None,
            grace: None,
            overdue: false,
            load: None,
        }
    }

    fn owed_since(&self) -> Option<Instant> {
        self.work_since
            .map(|w| self.last_result.map_or(w, |r| r.max(w)))
    }
}

#[derive(Debug)]
struct ProjectAgents {
    /// The agents this process serves.
    agents: BTreeMap<String, AgentState>,
    /// Bumped whenever the agents or the deployed monitors change.
    changed: watch::Sender<u64>,
    /// On a shared store: what the store says of the project's agents.
    view: Option<leases::View>,
    /// Whether a change of the agents served here waits to be announced to the replicas.
    announce: bool,
}

impl ProjectAgents {
    fn new(shared: bool) -> ProjectAgents {
        ProjectAgents {
            agents: BTreeMap::new(),
            changed: watch::Sender::new(0),
            view: shared.then(leases::View::default),
            announce: false,
        }
    }

    fn bump(&self) {
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// The live agents: those served here, and on a shared store those the store holds.
    fn live(&self, now: Instant, timeout: Duration, clock: leases::Clock) -> Vec<LiveAgent> {
        match &self.view {
            Some(view) => leases::merged(self, view, now, timeout, clock),
            None => self
                .agents
                .iter()
                .map(|(id, a)| LiveAgent {
                    id: id.clone(),
                    location: a.location.clone(),
                    owed_since: a.owed_since(),
                })
                .collect(),
        }
    }

    /// Drops the agents not heard of for `timeout`, and notes those whose grace ran out
    /// since the last look (and on a shared store, whether the live set changed);
    /// whether any was, which it signals.
    fn expire(
        &mut self,
        project: &str,
        timeout: Duration,
        now: Instant,
        clock: leases::Clock,
    ) -> bool {
        let before = self.agents.len();
        self.agents.retain(|id, a| {
            let live = a.polls > 0 || now.saturating_duration_since(a.last_seen) < timeout;
            if !live {
                tracing::info!(%project, agent = %id, location = %a.location, "agent gone");
            }
            live
        });
        let mut changed = self.agents.len() != before;
        for (id, a) in &mut self.agents {
            if let (false, Some(since), Some(grace)) = (a.overdue, a.owed_since(), a.grace)
                && now.saturating_duration_since(since) > grace
            {
                a.overdue = true;
                changed = true;
                tracing::warn!(
                    %project,
                    agent = %id,
                    location = %a.location,
                    grace_s = grace.as_secs(),
                    "agent held monitors for its grace without posting a result; they move to agents that work"
                );
            }
        }
        if changed {
            self.announce = true;
        }
        if let Some(view) = &self.view {
            let signature = leases::signature(self, view, now, timeout, clock);
            if let Some(view) = self.view.as_mut()
                && view.signature != signature
            {
                view.signature = signature;
                changed = true;
            }
        }
        if changed {
            self.bump();
        }
        changed
    }
}

/// The live agents of every project: in memory, where agents come back with their next
/// call after a restart; on a shared store, also in the store (see [`leases`]).
#[derive(Debug)]
pub struct Registry {
    timeout: Duration,
    projects: Arc<leases::Projects>,
    clock: leases::Clock,
    /// The shared store, if the store is shared.
    link: Option<Arc<leases::Link>>,
}

impl Drop for Registry {
    fn drop(&mut self) {
        if let Some(link) = &self.link {
            link.stop();
        }
    }
}

impl Registry {
    /// A registry in memory, where an agent not heard of for `timeout` is gone.
    pub fn new(timeout: Duration) -> Registry {
        Registry {
            timeout,
            projects: Arc::default(),
            clock: leases::Clock::now(),
            link: None,
        }
    }

    /// A registry for `store`: in memory ([`Registry::new`]) unless the store is shared
    /// ([`Store::shared`]), then sharing the agents' leases through it. Its lease task
    /// starts at the first call within a tokio runtime and stops when it is dropped.
    pub fn for_store(timeout: Duration, store: &Arc<dyn Store>) -> Registry {
        let mut registry = Registry::new(timeout);
        if store.shared() {
            registry.link = Some(Arc::new(leases::Link::new(Arc::clone(store))));
        }
        registry
    }

    /// The project's entry, created if needed.
    fn entry<'m>(
        &self,
        projects: &'m mut HashMap<String, ProjectAgents>,
        project: &str,
    ) -> &'m mut ProjectAgents {
        let shared = self.link.is_some();
        projects
            .entry(project.to_owned())
            .or_insert_with(|| ProjectAgents::new(shared))
    }

    /// On a shared store: starts the lease task if needed, and has it announce the
    /// project's change if one is waiting.
    fn settle(&self, project: &str, p: Option<&mut ProjectAgents>) {
        let Some(link) = &self.link else {
            return;
        };
        link.start(&self.projects, self.timeout, self.clock);
        if let Some(p) = p
            && std::mem::take(&mut p.announce)
        {
            link.announce(project);
        }
    }

    /// The least grace of an agent: twice the timeout.
    pub fn min_grace(&self) -> Duration {
        self.timeout.saturating_mul(2)
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, ProjectAgents>> {
        self.projects.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a call of an agent; signals a change when it is new or moved.
    pub fn heard(&self, project: &str, agent: &str, location: &str, now: Instant) {
        let mut projects = self.lock();
        let p = self.entry(&mut projects, project);
        p.expire(project, self.timeout, now, self.clock);
        match p.agents.get_mut(agent) {
            Some(a) if a.location == location => a.last_seen = now,
            Some(a) => {
                tracing::info!(%project, %agent, from = %a.location, to = %location, "agent moved");
                let polls = a.polls;
                *a = AgentState::new(location, now);
                a.polls = polls;
                p.announce = true;
                p.bump();
            }
            None => {
                tracing::info!(%project, %agent, %location, "agent joined");
                p.agents
                    .insert(agent.to_owned(), AgentState::new(location, now));
                p.announce = true;
                p.bump();
            }
        }
        self.settle(project, Some(p));
    }

    /// Records the load an agent reported (see [`monitor_spec::api::LOAD_HEADER`]).
    pub fn reported(&self, project: &str, agent: &str, load: AgentLoad) {
        if let Some(a) = self
            .lock()
            .get_mut(project)
            .and_then(|p| p.agents.get_mut(agent))
        {
            if load.overloaded && a.load.is_none_or(|l| !l.overloaded) {
                tracing::warn!(
                    %project,
                    %agent,
                    location = %a.location,
                    deficit_checks_per_second = load.deficit_per_second,
                    waiting = load.waiting,
                    "agent overloaded: its checks are due faster than they finish"
                );
            }
            a.load = Some(load);
        }
    }

    /// The project's live agents, sorted by id, with the load of those served here.
    pub fn agents(&self, project: &str, now: Instant) -> Vec<AgentStatus> {
        let mut projects = self.lock();
        let Some(p) = projects.get_mut(project) else {
            return Vec::new();
        };
        p.expire(project, self.timeout, now, self.clock);
        let live = p.live(now, self.timeout, self.clock);
        let agents = live
            .into_iter()
            .map(|a| {
                let load = p.agents.get(&a.id).and_then(|s| s.load);
                AgentStatus {
                    note: load.and_then(|l| l.note()),
                    agent: a.id,
                    location: a.location,
                    load,
                }
            })
            .collect();
        self.settle(project, Some(p));
        agents
    }

    /// Records that an agent posted results: it works.
    pub fn posted(&self, project: &str, agent: &str, now: Instant) {
        if let Some(a) = self
            .lock()
            .get_mut(project)
            .and_then(|p| p.agents.get_mut(agent))
        {
            a.last_result = Some(now);
            a.overdue = false;
        }
    }

    /// Records an assignment computed for its agent: when it started holding monitors
    /// (unless it was left out for not working), and its grace.
    ///
    /// On a shared store, an agent assigned here for the first time keeps holding
    /// monitors since when the store says it did (it came from another replica).
    pub fn assigned(&self, project: &str, assignment: &Assignment<'_>, now: Instant) {
        let mut projects = self.lock();
        let Some(p) = projects.get_mut(project) else {
            return;
        };
        let held = p.view.as_ref().and_then(|view| {
            let i = view
                .leases
                .binary_search_by(|l| l.agent.as_str().cmp(&assignment.agent))
                .ok()?;
            view.leases[i].work_since_us
        });
        let Some(a) = p.agents.get_mut(&assignment.agent) else {
            return;
        };
        let first = a.grace.is_none();
        a.grace = Some(assignment.grace);
        if assignment.excluded {
            return;
        }
        if assignment.monitors.is_empty() {
            a.work_since = None;
            a.overdue = false;
        } else if a.work_since.is_none() {
            let since = match held {
                Some(us) if first => self.clock.to_instant(us).min(now),
                _ => now,
            };
            a.work_since = Some(since);
            a.overdue = false;
        }
    }

    /// A receiver of the project's change signal: it sees every change after this call.
    pub fn subscribe(&self, project: &str) -> watch::Receiver<u64> {
        let mut projects = self.lock();
        let p = self.entry(&mut projects, project);
        let receiver = p.changed.subscribe();
        self.settle(project, Some(p));
        receiver
    }

    /// Signals that the project's deployed monitors changed; on a shared store, to every
    /// replica.
    pub fn notify(&self, project: &str) {
        let mut projects = self.lock();
        let p = projects.get_mut(project);
        if let Some(p) = &p {
            p.bump();
        }
        if let Some(link) = &self.link {
            link.start(&self.projects, self.timeout, self.clock);
            link.announce(project);
        }
    }

    /// Drops the project's agents not heard of for the timeout, signalling a change if any
    /// was (on a shared store, also if the live set the store holds changed); whether any
    /// was.
    pub fn expire(&self, project: &str, now: Instant) -> bool {
        let mut projects = self.lock();
        let p = projects.get_mut(project);
        p.is_some_and(|p| {
            let changed = p.expire(project, self.timeout, now, self.clock);
            self.settle(project, Some(p));
            changed
        })
    }

    /// The project's live agents, sorted by id.
    pub fn live(&self, project: &str, now: Instant) -> Vec<LiveAgent> {
        let mut projects = self.lock();
        let Some(p) = projects.get_mut(project) else {
            return Vec::new();
        };
        p.expire(project, self.timeout, now, self.clock);
        let live = p.live(now, self.timeout, self.clock);
        self.settle(project, Some(p));
        live
    }

    /// How many live agents each project has in each location, sorted.
    pub fn counts(&self, now: Instant) -> Vec<(String, String, usize)> {
        let mut projects = self.lock();
        let mut out = BTreeMap::new();
        for (name, p) in projects.iter_mut() {
            p.expire(name, self.timeout, now, self.clock);
            for a in p.live(now, self.timeout, self.clock) {
                *out.entry((name.clone(), a.location)).or_insert(0) += 1;
            }
            self.settle(name, Some(p));
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
    /// Whether a failed first attempt is retried in another location
    /// ([`retries::retries_elsewhere`]); it follows from the spec and `every`, so the
    /// ETag covers it.
    pub retry_elsewhere: bool,
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
    /// How long an agent of the location may hold monitors without posting a result.
    pub grace: Duration,
    /// Whether the agent was left out for not working while others of its location work.
    pub excluded: bool,
}

/// The longest a result of `spec` may take to come when its agent runs one tick in
/// `every`: the interval times `every`, plus the total timeout of every attempt and the
/// backoffs between them (the latter two capped by the retry's time budget, if any).
pub fn result_span(spec: &TcpMonitor, every: u64) -> Duration {
    let interval = Duration::from_secs(spec.frequency.as_secs().saturating_mul(every));
    let retries = spec.retry.max_retries();
    let attempts = u64::from(retries).saturating_add(1);
    let timeouts =
        Duration::from_millis(u64::from(spec.timeouts.total_ms).saturating_mul(attempts));
    let backoffs = (1..=retries)
        .map(|r| spec.retry.backoff_seconds(r))
        .fold(0u64, u64::saturating_add);
    let mut checks = timeouts.saturating_add(Duration::from_secs(backoffs));
    if let Some(budget) = spec.retry.max_duration_seconds() {
        let budget = Duration::from_secs(budget)
            .saturating_add(Duration::from_millis(u64::from(spec.timeouts.total_ms)));
        checks = checks.min(budget);
    }
    interval.saturating_add(checks)
}

/// The monitors of `deployed` (sorted by id) that `agent` in `location` runs, given the
/// live agents (which include it), at `now`. An agent of the location whose
/// [`LiveAgent::owed_since`] is older than the grace (twice the longest [`result_span`]
/// of the location's monitors, at least `min_grace`) gets none while another one works.
pub fn assign<'a>(
    deployed: &'a [Deployed],
    live: &[LiveAgent],
    agent: &str,
    location: &str,
    now: Instant,
    min_grace: Duration,
) -> Assignment<'a> {
    let locations: BTreeSet<&str> = live.iter().map(|a| a.location.as_str()).collect();
    // The monitors that run in the location, with their rotation.
    let mut candidates = Vec::new();
    let mut longest = Duration::ZERO;
    for m in deployed {
        let spec = &m.spec;
        if !spec.activated || spec.test_only {
            continue;
        }
        let runs_in = runs_in(spec, &locations);
        let Some(position) = runs_in.iter().position(|l| *l == location) else {
            continue;
        };
        let (every, index) = if spec.run_parallel {
            (1, 0)
        } else {
            (runs_in.len() as u64, position as u64)
        };
        longest = longest.max(result_span(spec, every));
        let elsewhere = retries::retries_elsewhere(spec, runs_in.len());
        candidates.push((m, every, index, elsewhere));
    }
    let grace = longest.saturating_mul(2).max(min_grace);
    let in_location: Vec<&LiveAgent> = live.iter().filter(|a| a.location == location).collect();
    let working: Vec<&str> = in_location
        .iter()
        .filter(|a| {
            a.owed_since
                .is_none_or(|since| now.saturating_duration_since(since) <= grace)
        })
        .map(|a| a.id.as_str())
        .collect();
    let here: Vec<&str> = if working.is_empty() {
        in_location.iter().map(|a| a.id.as_str()).collect()
    } else {
        working
    };
    let excluded = !here.contains(&agent);
    let monitors: Vec<Assigned<'a>> = candidates
        .into_iter()
        .filter(|(m, ..)| owner(&here, m.id()) == Some(agent))
        .map(|(m, every, index, retry_elsewhere)| {
            let interval_ms = m.spec.frequency.as_secs().saturating_mul(1000).max(1);
            Assigned {
                monitor: m,
                every,
                index,
                phase_ms: fnv1a64(m.id().as_bytes()) % interval_ms,
                retry_elsewhere,
            }
        })
        .collect();
    let etag = etag(&monitors);
    Assignment {
        agent: agent.to_owned(),
        location: location.to_owned(),
        agents_in_location: in_location.len(),
        monitors,
        etag,
        grace,
        excluded,
    }
}

/// The locations of `live` (sorted) that run `spec`: all of them when it names none, else
/// those it names (`locations` and `private_locations`).
pub fn runs_in<'a>(spec: &TcpMonitor, live: &BTreeSet<&'a str>) -> Vec<&'a str> {
    let wanted: BTreeSet<&str> = spec
        .locations
        .iter()
        .chain(&spec.private_locations)
        .map(String::as_str)
        .collect();
    live.iter()
        .copied()
        .filter(|l| wanted.is_empty() || wanted.contains(l))
        .collect()
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
                retry_elsewhere: m.retry_elsewhere,
            })
            .collect(),
    };
    // Strings, numbers and raw values: writing them to a string cannot fail.
    serde_json::to_string(&body).unwrap_or_default()
}

#[cfg(test)]
mod tests;
