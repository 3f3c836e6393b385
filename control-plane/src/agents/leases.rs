//! The registry over a shared store (PostgreSQL, several control-plane replicas): each
//! replica writes the leases of the agents it serves and reads everyone's, so that
//! [`super::assign`] sees the same live agents on every replica, and wakes the long polls
//! of a project when the store announces a change of it (`LISTEN/NOTIFY`).
//!
//! One task per registry does the store's I/O, off the async workers: every tick (a
//! quarter of the agent timeout, between 100 ms and 1 s) it renews the leases of the
//! agents this replica serves (an open long poll counts as heard) and re-reads the leases
//! and the current version of every project with agents or long polls here; at once when
//! this replica announces a change (an agent joined, moved, went silent or overran its
//! grace; a deploy, rollback or destroy) or the store brings a notice. A project's change
//! signal is bumped when a notice names it, its current version changed, or its live set
//! (ids and locations) did. Without notices (the listening connection down) the tick
//! alone keeps every replica within a tick of the others.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::Notify;
use tokio::sync::broadcast::{self, error::RecvError, error::TryRecvError};
use tokio::task::JoinHandle;

use super::{LiveAgent, ProjectAgents};
use crate::store::{AgentLease, MAX_LEASES, Store, StoreError};

/// The fastest tick of the lease task.
const MIN_TICK: Duration = Duration::from_millis(100);
/// The slowest tick of the lease task: leases are renewed about once a second.
const MAX_TICK: Duration = Duration::from_secs(1);

/// The registry's projects, as the lease task reaches them.
pub(super) type Projects = Mutex<HashMap<String, ProjectAgents>>;

/// `Instant`s and the wall clock's unix microseconds, one in terms of the other: leases
/// cross the store in wall-clock time, the registry keeps `Instant`s.
#[derive(Debug, Clone, Copy)]
pub(super) struct Clock {
    instant: Instant,
    unix_us: i64,
}

impl Clock {
    /// Now on both clocks.
    pub(super) fn now() -> Clock {
        let unix_us = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX));
        Clock {
            instant: Instant::now(),
            unix_us,
        }
    }

    /// `t` in unix microseconds.
    pub(super) fn to_us(self, t: Instant) -> i64 {
        let micros = |d: Duration| i64::try_from(d.as_micros()).unwrap_or(i64::MAX);
        match t.checked_duration_since(self.instant) {
            Some(after) => self.unix_us.saturating_add(micros(after)),
            None => self
                .unix_us
                .saturating_sub(micros(self.instant.saturating_duration_since(t))),
        }
    }

    /// Unix microseconds `us` as an `Instant`; one before what `Instant` can hold (before
    /// this machine booted) becomes the earliest it can.
    pub(super) fn to_instant(self, us: i64) -> Instant {
        let diff = us.saturating_sub(self.unix_us);
        if diff >= 0 {
            return self.instant + Duration::from_micros(diff.unsigned_abs());
        }
        let mut back = Duration::from_micros(diff.unsigned_abs());
        loop {
            if let Some(t) = self.instant.checked_sub(back) {
                return t;
            }
            if back.is_zero() {
                return self.instant;
            }
            back /= 2;
        }
    }
}

/// What the store says of a project's agents, on a shared store.
#[derive(Debug, Default)]
pub(super) struct View {
    /// The leases as last read, sorted by agent.
    pub(super) leases: Vec<AgentLease>,
    /// A hash of the live set (ids and locations) last signalled.
    pub(super) signature: u64,
    /// The current version as last read, `None` before the first read.
    version: Option<Option<u64>>,
}

/// A hash of the live agents' ids and locations (FNV-1a 64 over them), as [`merged`]
/// would list them, computed without listing them.
pub(super) fn signature(
    p: &ProjectAgents,
    view: &View,
    now: Instant,
    timeout: Duration,
    clock: Clock,
) -> u64 {
    let mut hash = super::fnv1a64(b"");
    let mut add = |bytes: &[u8]| {
        for b in bytes.iter().chain(b"\n") {
            hash = (hash ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
    };
    for (id, m) in merge(p, view, now, timeout, clock) {
        add(id.as_bytes());
        add(m.location.as_bytes());
    }
    hash
}

/// One agent as the local state and the store together see it.
struct Merged<'a> {
    seen_us: i64,
    location: &'a str,
    work_since: Option<Instant>,
    last_result: Option<Instant>,
}

/// The live agents of a project: those this replica serves (already expired) and those
/// the store holds seen within `timeout`; of two states of one agent, the one seen later
/// gives the location and since when it holds work, and the later result counts.
pub(super) fn merged(
    p: &ProjectAgents,
    view: &View,
    now: Instant,
    timeout: Duration,
    clock: Clock,
) -> Vec<LiveAgent> {
    merge(p, view, now, timeout, clock)
        .into_iter()
        .map(|(id, m)| LiveAgent {
            id: id.to_owned(),
            location: m.location.to_owned(),
            owed_since: m.work_since.map(|w| m.last_result.map_or(w, |r| r.max(w))),
        })
        .collect()
}

/// [`merged`], by agent id, borrowing.
fn merge<'a>(
    p: &'a ProjectAgents,
    view: &'a View,
    now: Instant,
    timeout: Duration,
    clock: Clock,
) -> BTreeMap<&'a str, Merged<'a>> {
    let now_us = clock.to_us(now);
    let timeout_us = i64::try_from(timeout.as_micros()).unwrap_or(i64::MAX);
    let mut all: BTreeMap<&str, Merged> = BTreeMap::new();
    for (id, a) in &p.agents {
        let seen_us = if a.polls > 0 {
            now_us
        } else {
            clock.to_us(a.last_seen)
        };
        all.insert(
            id,
            Merged {
                seen_us,
                location: &a.location,
                work_since: a.work_since,
                last_result: a.last_result,
            },
        );
    }
    for lease in &view.leases {
        if now_us.saturating_sub(lease.seen_us) >= timeout_us {
            continue;
        }
        let work_since = lease.work_since_us.map(|us| clock.to_instant(us));
        let last_result = lease.last_result_us.map(|us| clock.to_instant(us));
        match all.get_mut(lease.agent.as_str()) {
            Some(m) => {
                if lease.seen_us > m.seen_us {
                    m.seen_us = lease.seen_us;
                    m.location = &lease.location;
                    m.work_since = work_since;
                }
                m.last_result = m.last_result.max(last_result);
            }
            None => {
                all.insert(
                    &lease.agent,
                    Merged {
                        seen_us: lease.seen_us,
                        location: &lease.location,
                        work_since,
                        last_result,
                    },
                );
            }
        }
    }
    all
}

/// The leases of the agents this replica serves: those with a long poll open (seen now)
/// or heard of within `timeout`, sorted by agent.
fn local_leases(
    p: &ProjectAgents,
    now: Instant,
    timeout: Duration,
    clock: Clock,
) -> Vec<AgentLease> {
    p.agents
        .iter()
        .filter(|(_, a)| a.polls > 0 || now.saturating_duration_since(a.last_seen) < timeout)
        .map(|(id, a)| AgentLease {
            agent: id.clone(),
            location: a.location.clone(),
            seen_us: clock.to_us(if a.polls > 0 { now } else { a.last_seen }),
            work_since_us: a.work_since.map(|t| clock.to_us(t)),
            last_result_us: a.last_result.map(|t| clock.to_us(t)),
        })
        .collect()
}

/// The registry's link to a shared store: the projects to announce and the lease task.
pub(super) struct Link {
    store: Arc<dyn Store>,
    pending: Mutex<BTreeSet<String>>,
    wake: Notify,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link").finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Link {
    pub(super) fn new(store: Arc<dyn Store>) -> Link {
        Link {
            store,
            pending: Mutex::default(),
            wake: Notify::new(),
            task: Mutex::default(),
        }
    }

    /// Has the lease task renew `project`'s leases and announce a change of it to every
    /// replica, at once.
    pub(super) fn announce(&self, project: &str) {
        lock(&self.pending).insert(project.to_owned());
        self.wake.notify_one();
    }

    /// Starts the lease task unless it runs, when called within a tokio runtime (it is
    /// tried again at the next call otherwise).
    pub(super) fn start(
        self: &Arc<Self>,
        projects: &Arc<Projects>,
        timeout: Duration,
        clock: Clock,
    ) {
        let mut task = lock(&self.task);
        if task.is_some() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        *task = Some(runtime.spawn(run(
            Arc::downgrade(projects),
            Arc::clone(self),
            timeout,
            clock,
        )));
    }

    /// Stops the lease task.
    pub(super) fn stop(&self) {
        if let Some(task) = lock(&self.task).take() {
            task.abort();
        }
    }
}

/// The store's work for one project in one round of the task.
struct Job {
    project: String,
    /// Leases to renew (none: nothing to write).
    leases: Vec<AgentLease>,
    /// Announce a change of the project.
    announce: bool,
    /// Read its leases and current version back.
    read: bool,
}

/// What a job read: the leases and the current version.
type Read = Option<(Vec<AgentLease>, Option<u64>)>;

impl Job {
    fn run(self, store: &dyn Store, since_us: i64) -> (String, Result<Read, StoreError>) {
        let outcome = (|| {
            for chunk in self.leases.chunks(MAX_LEASES) {
                store.renew_leases(&self.project, chunk)?;
            }
            if self.announce {
                store.notify(&self.project)?;
            }
            if !self.read {
                return Ok(None);
            }
            let leases = store.leases(&self.project, since_us)?;
            let version = store.current_version(&self.project)?;
            Ok(Some((leases, version)))
        })();
        (self.project, outcome)
    }
}

/// The next notice, or never when there are none.
async fn notice(notices: &mut Option<broadcast::Receiver<String>>) -> Result<String, RecvError> {
    match notices {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// Which projects to re-read after a wake-up: every one, or those named.
#[derive(Default)]
struct Wanted {
    all: bool,
    named: BTreeSet<String>,
}

impl Wanted {
    fn add(
        &mut self,
        notice: Result<String, RecvError>,
        notices: &mut Option<broadcast::Receiver<String>>,
    ) {
        match notice {
            Ok(project) if !project.is_empty() => {
                self.named.insert(project);
            }
            Ok(_) | Err(RecvError::Lagged(_)) => self.all = true,
            Err(RecvError::Closed) => *notices = None,
        }
    }
}

/// The lease task: see the module documentation. Ends when the registry is dropped.
async fn run(projects: Weak<Projects>, link: Arc<Link>, timeout: Duration, clock: Clock) {
    let mut notices = link.store.subscribe();
    let tick = (timeout / 4).clamp(MIN_TICK, MAX_TICK);
    let timeout_us = i64::try_from(timeout.as_micros()).unwrap_or(i64::MAX);
    let mut next = tokio::time::Instant::now();
    let mut failing: Option<String> = None;
    loop {
        let mut wanted = Wanted::default();
        tokio::select! {
            n = notice(&mut notices) => wanted.add(n, &mut notices),
            () = link.wake.notified() => {}
            () = tokio::time::sleep_until(next) => wanted.all = true,
        }
        while let Some(rx) = &mut notices {
            match rx.try_recv() {
                Ok(p) => wanted.add(Ok(p), &mut notices),
                Err(TryRecvError::Lagged(n)) => wanted.add(Err(RecvError::Lagged(n)), &mut notices),
                Err(TryRecvError::Closed) => wanted.add(Err(RecvError::Closed), &mut notices),
                Err(TryRecvError::Empty) => break,
            }
        }
        if wanted.all {
            next = tokio::time::Instant::now() + tick;
        }
        let announced = std::mem::take(&mut *lock(&link.pending));
        let Some(map) = projects.upgrade() else {
            return;
        };
        let now = Instant::now();
        let since_us = clock.to_us(now).saturating_sub(timeout_us);
        let jobs: Vec<Job> = {
            let map = lock(&map);
            let mut jobs = Vec::new();
            for (name, p) in map.iter() {
                let active = !p.agents.is_empty() || p.changed.receiver_count() > 0;
                let announce = announced.contains(name);
                let read = active && (wanted.all || announce || wanted.named.contains(name));
                if !read && !announce {
                    continue;
                }
                let leases = if wanted.all || announce {
                    local_leases(p, now, timeout, clock)
                } else {
                    Vec::new()
                };
                jobs.push(Job {
                    project: name.clone(),
                    leases,
                    announce,
                    read,
                });
            }
            for name in announced.iter().filter(|n| !map.contains_key(*n)) {
                jobs.push(Job {
                    project: name.clone(),
                    leases: Vec::new(),
                    announce: true,
                    read: false,
                });
            }
            jobs
        };
        drop(map);
        if jobs.is_empty() {
            continue;
        }
        let store = Arc::clone(&link.store);
        let Ok(outcomes) = tokio::task::spawn_blocking(move || {
            jobs.into_iter()
                .map(|job| job.run(&*store, since_us))
                .collect::<Vec<_>>()
        })
        .await
        else {
            continue;
        };
        let Some(map) = projects.upgrade() else {
            return;
        };
        let mut map = lock(&map);
        let mut failed = None;
        for (project, outcome) in outcomes {
            match outcome {
                Ok(Some((leases, version))) => {
                    if let Some(p) = map.get_mut(&project) {
                        let noticed = wanted.named.contains(&project);
                        refresh(&project, p, leases, version, noticed, timeout, clock);
                    }
                }
                Ok(None) => {}
                Err(e) => failed = Some(e.to_string()),
            }
        }
        match (failed, &failing) {
            (Some(e), Some(before)) if *before == e => {}
            (Some(e), _) => {
                tracing::warn!(error = %e, "cannot share the agents' leases through the store; retrying");
                failing = Some(e);
            }
            (None, Some(_)) => {
                tracing::info!("sharing the agents' leases through the store again");
                failing = None;
            }
            (None, None) => {}
        }
    }
}

/// Takes in what the store said of a project; bumps its signal when it was named by a
/// notice, its version changed, or its live set did.
fn refresh(
    project: &str,
    p: &mut ProjectAgents,
    leases: Vec<AgentLease>,
    version: Option<u64>,
    noticed: bool,
    timeout: Duration,
    clock: Clock,
) {
    let Some(view) = p.view.as_mut() else {
        return;
    };
    // Results the agents served here posted to other replicas count here too.
    for lease in &leases {
        if let (Some(a), Some(us)) = (p.agents.get_mut(&lease.agent), lease.last_result_us) {
            let posted = clock.to_instant(us);
            if a.last_result.is_none_or(|r| r < posted) {
                a.last_result = Some(posted);
                a.overdue = false;
            }
        }
    }
    view.leases = leases;
    let moved = view.version.is_some_and(|v| v != version);
    view.version = Some(version);
    // Signals a change itself when the live set changed.
    let changed = p.expire(project, timeout, Instant::now(), clock);
    if (noticed || moved) && !changed {
        p.bump();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(agent: &str, location: &str, seen_us: i64) -> AgentLease {
        AgentLease {
            agent: agent.to_owned(),
            location: location.to_owned(),
            seen_us,
            work_since_us: None,
            last_result_us: None,
        }
    }

    #[test]
    fn instants_and_wall_clock_microseconds_convert_both_ways() {
        let clock = Clock::now();
        let later = clock.instant + Duration::from_millis(1500);
        assert_eq!(clock.to_us(later), clock.unix_us + 1_500_000);
        assert_eq!(clock.to_instant(clock.unix_us + 1_500_000), later);
        if let Some(earlier) = clock.instant.checked_sub(Duration::from_millis(250)) {
            assert_eq!(clock.to_us(earlier), clock.unix_us - 250_000);
            assert_eq!(clock.to_instant(clock.unix_us - 250_000), earlier);
        }
        // Before this machine booted: the earliest instant there is, never a panic.
        assert!(clock.to_instant(i64::MIN) <= clock.instant);
    }

    #[test]
    fn the_live_set_merges_the_agents_served_here_with_the_stores() {
        let clock = Clock::now();
        let now = clock.instant + Duration::from_secs(100);
        let now_us = clock.to_us(now);
        let timeout = Duration::from_secs(10);
        let mut here = ProjectAgents::new(true);
        // Served here, heard of 1 s ago, holding work for 5 s.
        let mut a = super::super::AgentState::new("eu", now - Duration::from_secs(1));
        a.work_since = Some(now - Duration::from_secs(5));
        here.agents.insert("a".to_owned(), a);
        let view = View {
            leases: vec![
                // The same agent as another replica saw it earlier, in another place,
                // with a later result: the place stays, the result counts.
                AgentLease {
                    last_result_us: Some(now_us - 2_000_000),
                    ..lease("a", "us", now_us - 3_000_000)
                },
                // Another replica's agent, seen 2 s ago.
                lease("b", "eu", now_us - 2_000_000),
                // Gone: not seen for the timeout.
                lease("c", "eu", now_us - 10_000_000),
            ],
            ..View::default()
        };
        let live = merged(&here, &view, now, timeout, clock);
        assert_eq!(
            live,
            vec![
                LiveAgent {
                    id: "a".to_owned(),
                    location: "eu".to_owned(),
                    owed_since: Some(clock.to_instant(now_us - 2_000_000)),
                },
                LiveAgent {
                    id: "b".to_owned(),
                    location: "eu".to_owned(),
                    owed_since: None,
                },
            ]
        );
        // Seen later elsewhere: that replica's place and work win.
        let moved = View {
            leases: vec![AgentLease {
                work_since_us: Some(now_us - 1_000_000),
                ..lease("a", "us", now_us)
            }],
            ..View::default()
        };
        let live = merged(&here, &moved, now, timeout, clock);
        assert_eq!(live[0].location, "us");
        assert_eq!(live[0].owed_since, Some(now - Duration::from_secs(1)));
        assert_ne!(
            signature(&here, &view, now, timeout, clock),
            signature(&here, &moved, now, timeout, clock)
        );
    }
}
