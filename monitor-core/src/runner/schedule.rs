//! The schedule `watch` and `agent` share: one task keeps the next start of every monitor
//! in a heap and spawns each check at its time, with the cadences the two differ by.
//!
//! Each attempt of a check takes a permit of the runner's concurrency while it runs
//! ([`Permits`]): permits go to the waiting attempt due first, and the backoff between a
//! failed attempt and its retry holds none, so monitors failing and retrying never delay
//! the others. A slow check (one that may run longer than [`SLOW_CHECK`], see [`is_slow`])
//! first takes a permit of a smaller pool, half the concurrency (at least 1), so slow
//! monitors never hold more than half the permits. A check's lateness is measured when
//! its first attempt holds its permit; a tick that comes while the monitor's previous
//! check still waits or runs is skipped and counted ([`Outlet::overrun`]); every
//! [`LOAD_WINDOW`] the scheduler reports whether checks start as fast as they fall due
//! ([`Load`]), with a warning line when they do not. A new set of monitors cancels the
//! checks in flight of the monitors it removes or whose spec it changes, giving their
//! permits back at once.

mod held;
mod permits;
#[cfg(test)]
mod tests;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{Notify, mpsc, watch as signal};
use tokio::time::{Instant, sleep_until};

use crate::Engine;
pub use crate::runner::process_metrics::Load;
pub(crate) use held::Held;
#[cfg(any(feature = "watch", feature = "agent"))]
pub(crate) use held::Shelving;
use monitor_spec::result::{CheckResult, Status};
use monitor_spec::validate::ValidMonitor;
pub(crate) use permits::{Permit, Permits};

/// Where in its interval a monitor starts: spread by a hash of its id, so monitors of one
/// frequency do not fire together and keep their place across restarts.
pub fn start_offset(id: &str, interval: Duration) -> Duration {
    // FNV-1a, stable across builds.
    let hash = id.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    let nanos = interval.as_nanos().max(1);
    Duration::from_nanos(u64::try_from(u128::from(hash) % nanos).unwrap_or(0))
}

/// Waits for Ctrl-C or SIGTERM.
pub(crate) async fn stopped() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// How often the scheduler reports its [`Load`] (and logs a line when overloaded).
pub const LOAD_WINDOW: Duration = Duration::from_secs(60);

/// A check that may run longer than this is slow: it takes its permit from the slow pool.
pub const SLOW_CHECK: Duration = Duration::from_secs(30);

/// Whether checks of `monitor` are slow: their worst case, `timeouts.total_ms` for each
/// attempt (`1 + retry.max_retries`), is over [`SLOW_CHECK`].
pub fn is_slow(monitor: &ValidMonitor) -> bool {
    let spec = monitor.spec();
    let attempts = 1 + spec.retry.max_retries();
    Duration::from_millis(u64::from(spec.timeouts.total_ms)) * attempts > SLOW_CHECK
}

/// What runs a check: the engine, or a script in tests. `admit(retry)` is awaited before
/// each attempt (0 for the first) and what it gives is held while the attempt runs;
/// `None` ends the check (`None` before the first attempt: no result).
pub(crate) trait Checker: Clone + Send + Sync + 'static {
    /// Checks `monitor`, admitting each attempt through `admit`.
    fn check<P, F, Fut>(
        &self,
        monitor: &ValidMonitor,
        admit: F,
    ) -> impl Future<Output = Option<CheckResult>> + Send
    where
        P: Send,
        F: FnMut(u32) -> Fut + Send,
        Fut: Future<Output = Option<P>> + Send;
}

impl Checker for Engine {
    fn check<P, F, Fut>(
        &self,
        monitor: &ValidMonitor,
        admit: F,
    ) -> impl Future<Output = Option<CheckResult>> + Send
    where
        P: Send,
        F: FnMut(u32) -> Fut + Send,
        Fut: Future<Output = Option<P>> + Send,
    {
        self.check_admitted(monitor, admit)
    }
}

/// A check of one monitor from its tick on: waiting for its first permit, running
/// (attempts and the backoffs between them), or done; and the signal that stops it. One
/// per check, shared by its task and the monitor's slot until the next check.
#[derive(Debug, Default)]
struct Flight {
    /// 0 while it waits for its first permit, then [`RUNNING`], then [`DONE`].
    state: AtomicU8,
    cancelled: AtomicBool,
    notify: Notify,
}

const RUNNING: u8 = 1;
const DONE: u8 = 2;

impl Flight {
    fn state(&self) -> u8 {
        self.state.load(Ordering::Acquire)
    }
    fn cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Acquire)
    }
}

/// Marks a check done when its task ends, finished or cancelled.
struct Done(Arc<Flight>);

impl Drop for Done {
    fn drop(&mut self) {
        self.0.state.store(DONE, Ordering::Release);
    }
}

/// When a monitor's checks are due: the one thing `watch` and `agent` schedule
/// differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(all(feature = "watch", feature = "agent")), allow(dead_code))]
pub(crate) enum Cadence {
    /// `watch`: from the scheduler's start, offset by a hash of the id
    /// ([`start_offset`]), then every interval.
    Spread,
    /// `agent`: at the wall-clock instants `k * interval_ms + phase_ms` (unix epoch
    /// milliseconds) for which `k % every == index`; the tick is `k`.
    WallClock {
        /// Run one tick in this many.
        every: u64,
        /// Which one (below `every`).
        index: u64,
        /// Offset of the ticks in the interval, in milliseconds.
        phase_ms: u64,
    },
}

/// A monitor to schedule and when.
#[derive(Debug, Clone)]
pub(crate) struct Job {
    pub(crate) monitor: Held,
    pub(crate) cadence: Cadence,
    /// Its retries run in another location (an agent's monitor with `same_region =
    /// false` that runs in more than one): a failed first attempt ends the check here and
    /// goes to [`Outlet::handoff`] instead of being retried.
    pub(crate) retry_elsewhere: bool,
}

/// Where the checks' results go.
pub(crate) trait Outlet: Send + Sync + 'static {
    /// How late a check started against its schedule: measured when it holds its permit
    /// and is about to connect.
    fn late(&self, _seconds: f64) {}
    /// A tick of `monitor` skipped because its previous check was still waiting for a
    /// permit or running.
    fn overrun(&self, _monitor: &str) {}
    /// The scheduler's load over its last window (every [`LOAD_WINDOW`]).
    fn load(&self, _load: &Load) {}
    /// A finished check of the tick `tick` (for [`Cadence::WallClock`] the `k` of its
    /// instant; for [`Cadence::Spread`] the count of ticks since the start).
    fn result(&self, tick: u64, result: CheckResult);
    /// A check of a [`Job::retry_elsewhere`] monitor whose first attempt failed with
    /// retries left: `result` holds that one attempt, for another location to retry.
    /// By default it is an ordinary result.
    fn handoff(&self, tick: u64, _monitor: &ValidMonitor, result: CheckResult) {
        self.result(tick, result);
    }
}

/// Nanoseconds since the unix epoch, now.
fn wall_nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// The first tick `k >= from` with `k % every == index` whose instant
/// `k * interval_ms + phase_ms` is not before `now_ms`; returns `k` and its instant in
/// unix epoch milliseconds.
pub(crate) fn wall_clock_tick(
    interval_ms: u64,
    every: u64,
    index: u64,
    phase_ms: u64,
    from: u64,
    now_ms: u128,
) -> (u64, u128) {
    let interval = u128::from(interval_ms.max(1));
    let every = u128::from(every.max(1));
    let index = u128::from(index) % every;
    let phase = u128::from(phase_ms);
    // The first k whose instant is not before now.
    let first = now_ms.saturating_sub(phase).div_ceil(interval);
    let mut k = first.max(u128::from(from));
    k += (index + every - k % every) % every;
    let k = u64::try_from(k).unwrap_or(u64::MAX);
    (k, u128::from(k) * interval + phase)
}

impl Cadence {
    /// The first due time of a monitor scheduled at `now` by a scheduler started at
    /// `start`, and its tick.
    fn first(self, monitor: &Held, start: Instant, now: Instant) -> (Instant, u64) {
        match self {
            Cadence::Spread => {
                let offset = start_offset(monitor.id(), monitor.interval());
                let at = start + offset;
                (if at >= now { at } else { now + offset }, 0)
            }
            Cadence::WallClock { .. } => self.wall_clock(monitor, 0, now),
        }
    }

    /// The due time after the tick `tick` that was due at `at`, processed at `now`; missed
    /// ticks (after a stall longer than an interval) are skipped.
    fn next(self, monitor: &Held, at: Instant, tick: u64, now: Instant) -> (Instant, u64) {
        match self {
            Cadence::Spread => {
                let every = monitor.interval();
                let mut later = at + every;
                // After a stall longer than an interval, skip the missed ticks.
                if later < now {
                    later = now + start_offset(monitor.id(), every).min(every / 10);
                }
                (later, tick.wrapping_add(1))
            }
            Cadence::WallClock { .. } => self.wall_clock(monitor, tick.saturating_add(1), now),
        }
    }

    /// The next wall-clock tick from `from` on, as an instant of the monotonic clock.
    fn wall_clock(self, monitor: &Held, from: u64, now: Instant) -> (Instant, u64) {
        let Cadence::WallClock {
            every,
            index,
            phase_ms,
        } = self
        else {
            return (now, from);
        };
        let interval_ms = monitor.frequency().as_secs() * 1000;
        let wall = wall_nanos();
        let (k, at_ms) = wall_clock_tick(
            interval_ms,
            every,
            index,
            phase_ms,
            from,
            wall.div_ceil(1_000_000),
        );
        let ahead = (at_ms * 1_000_000).saturating_sub(wall);
        let ahead = Duration::from_nanos(u64::try_from(ahead).unwrap_or(u64::MAX));
        (now + ahead, k)
    }
}

/// One scheduled monitor.
struct Slot {
    job: Job,
    /// Its latest check, until the next one: the monitor is busy while it waits or runs.
    /// Nothing is allocated for a monitor between checks beyond this pointer.
    flight: Option<Arc<Flight>>,
    /// Tells this schedule from an earlier one of the same slot in the heap.
    generation: u64,
}

impl Slot {
    /// Its check still waiting for its permit or running.
    fn busy(&self) -> Option<&Arc<Flight>> {
        self.flight.as_ref().filter(|f| f.state() != DONE)
    }
}

/// The scheduled monitors, by position. No index by id is kept: `watch` never replaces
/// its set, and with 100,000 monitors such an index costs megabytes; an agent's rare new
/// assignment builds one for the moment.
struct Slots {
    slots: Vec<Option<Slot>>,
    free: Vec<usize>,
    generation: u64,
}

/// A due time in the heap: when, which slot, which schedule of it, and the tick.
type Due = Reverse<(Instant, usize, u64, u64)>;

impl Slots {
    fn new() -> Self {
        Slots {
            slots: Vec::new(),
            free: Vec::new(),
            generation: 0,
        }
    }

    /// Adds a monitor and queues its first due time.
    fn add(&mut self, job: Job, start: Instant, now: Instant, due: &mut BinaryHeap<Due>) {
        self.generation += 1;
        let (at, tick) = job.cadence.first(&job.monitor, start, now);
        let slot = Slot {
            job,
            flight: None,
            generation: self.generation,
        };
        let i = match self.free.pop() {
            Some(i) => {
                self.slots[i] = Some(slot);
                i
            }
            None => {
                self.slots.push(Some(slot));
                self.slots.len() - 1
            }
        };
        due.push(Reverse((at, i, self.generation, tick)));
    }

    /// Replaces the set: monitors that stay unchanged keep their schedule (and a check in
    /// flight keeps running), changed ones are rescheduled, new ones added, the others
    /// dropped. The checks in flight of dropped monitors and of those whose spec changed
    /// are cancelled (a new cadence alone keeps its check); returns how many.
    fn replace(&mut self, jobs: Vec<Job>, start: Instant, due: &mut BinaryHeap<Due>) -> usize {
        let mut cancelled = Vec::new();
        let now = Instant::now();
        let by_id: HashMap<String, usize> = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| Some((s.as_ref()?.job.monitor.id().to_owned(), i)))
            .collect();
        let mut keep: HashMap<String, ()> = HashMap::with_capacity(jobs.len());
        for job in jobs {
            let id = job.monitor.id().to_owned();
            if keep.insert(id.clone(), ()).is_some() {
                continue;
            }
            match by_id
                .get(&id)
                .and_then(|&i| Some((i, self.slots[i].as_mut()?)))
            {
                Some((i, slot)) => {
                    let same = slot.job.monitor.same_spec(&job.monitor);
                    if slot.job.cadence == job.cadence && same {
                        // The check keeps its schedule. It takes the new set's flag, and a
                        // shelved monitor its place on the new shelf, so that the old
                        // shelf goes once no slot holds it (a validated one is kept: its
                        // TLS setup, built on first use, with it).
                        slot.job.retry_elsewhere = job.retry_elsewhere;
                        if matches!(job.monitor, Held::Shelved { .. }) {
                            slot.job.monitor = job.monitor;
                        }
                        continue;
                    }
                    // Rescheduled; the busy flag stays until the task of the old spec is
                    // gone, so the new spec never overlaps it.
                    if !same {
                        cancelled.extend(cancel(slot));
                    }
                    self.generation += 1;
                    let (at, tick) = job.cadence.first(&job.monitor, start, now);
                    slot.job = job;
                    slot.generation = self.generation;
                    due.push(Reverse((at, i, self.generation, tick)));
                }
                None => self.add(job, start, now, due),
            }
        }
        for (id, i) in by_id {
            if !keep.contains_key(&id) {
                if let Some(mut slot) = self.slots[i].take() {
                    cancelled.extend(cancel(&mut slot));
                }
                self.free.push(i);
            }
        }
        for c in &cancelled {
            c.notify.notify_one();
        }
        cancelled.len()
    }
}

/// Marks the check in flight of a slot, if any, cancelled and returns it, to wake once
/// every cancelled check is marked: its future is then dropped with its connection and
/// permits. The slot stays busy until that task is gone, so a check of a new spec never
/// overlaps it; a later check has a signal of its own.
fn cancel(slot: &mut Slot) -> Option<Arc<Flight>> {
    let flight = slot.busy()?;
    flight.cancelled.store(true, Ordering::Release);
    Some(flight.clone())
}

/// Waits for the next set of monitors, or forever without a source of them.
async fn next_update(updates: &mut Option<mpsc::UnboundedReceiver<Vec<Job>>>) -> Option<Vec<Job>> {
    match updates {
        Some(rx) => {
            let mut latest = rx.recv().await?;
            // Only the newest of several queued sets matters.
            while let Ok(newer) = rx.try_recv() {
                latest = newer;
            }
            Some(latest)
        }
        None => std::future::pending().await,
    }
}

/// The schedule of every monitor: one task keeps the next start of each in a heap and
/// spawns each check as its own task at its time, so a slow check never delays the next
/// tick or other monitors, and 100,000 monitors cost no task or timer each. Attempts take
/// their permits in order of due time and give them back between attempts ([`Permits`]).
/// A monitor whose previous check is still waiting or running skips a tick rather than
/// overlap itself, and the outlet hears of it. A new set from `updates` replaces the
/// schedule, cancelling the checks in flight of the monitors it removes or changes; the
/// others keep running. Shared by `watch` ([`Cadence::Spread`], results printed) and
/// `agent` ([`Cadence::WallClock`], results buffered for upload).
pub(crate) async fn schedule<C: Checker>(
    jobs: Vec<Job>,
    mut updates: Option<mpsc::UnboundedReceiver<Vec<Job>>>,
    checker: C,
    permits: Permits,
    outlet: Arc<dyn Outlet>,
    mut stop: signal::Receiver<bool>,
) {
    let start = Instant::now();
    let mut slots = Slots::new();
    let mut due: BinaryHeap<Due> = BinaryHeap::with_capacity(jobs.len());
    slots.slots.reserve(jobs.len());
    for job in jobs {
        slots.add(job, start, start, &mut due);
    }
    let counts = Arc::new(Counts::default());
    let mut window = Window::new(start);
    loop {
        let next = due.peek().map(|&Reverse((at, ..))| at);
        let wake = next.map_or(window.end, |at| at.min(window.end));
        tokio::select! {
            () = sleep_until(wake) => {}
            update = next_update(&mut updates) => {
                match update {
                    Some(jobs) => {
                        let cancelled = slots.replace(jobs, start, &mut due);
                        if cancelled > 0 {
                            tracing::info!(
                                "cancelled {cancelled} checks in flight of monitors removed or changed"
                            );
                        }
                    }
                    None => updates = None,
                }
                continue;
            }
            _ = stop.changed() => return,
        }
        let now = Instant::now();
        if now >= window.end {
            let load = window.close(now, &counts, &permits);
            outlet.load(&load);
            window = Window::new(now);
        }
        while let Some(&Reverse((at, i, generation, tick))) = due.peek() {
            if at > now {
                break;
            }
            due.pop();
            let Some(slot) = slots.slots[i]
                .as_mut()
                .filter(|s| s.generation == generation)
            else {
                // A monitor that left or was rescheduled.
                continue;
            };
            window.due += 1;
            if slot.busy().is_some() {
                outlet.overrun(slot.job.monitor.id());
            } else {
                let flight = Arc::new(Flight::default());
                slot.flight = Some(flight.clone());
                let start = Start {
                    at,
                    tick,
                    handoff: slot.job.retry_elsewhere,
                    slow: slot.job.monitor.slow(),
                };
                tokio::spawn(run_check(
                    checker.clone(),
                    slot.job.monitor.clone(),
                    start,
                    Shared {
                        permits: permits.clone(),
                        outlet: outlet.clone(),
                        counts: counts.clone(),
                        stop: stop.clone(),
                    },
                    flight,
                ));
            }
            let (later, tick) = slot.job.cadence.next(&slot.job.monitor, at, tick, now);
            due.push(Reverse((later, i, generation, tick)));
        }
    }
}

/// One check's place in the schedule.
#[derive(Debug, Clone, Copy)]
struct Start {
    /// When it was due.
    at: Instant,
    tick: u64,
    /// Its retries go to another location ([`Job::retry_elsewhere`]).
    handoff: bool,
    /// It takes a share of the slow pool ([`is_slow`]).
    slow: bool,
}

/// What every check task of a schedule shares.
#[derive(Clone)]
struct Shared {
    permits: Permits,
    outlet: Arc<dyn Outlet>,
    /// What the current [`Window`] counts.
    counts: Arc<Counts>,
    stop: signal::Receiver<bool>,
}

/// One check as its own task: each attempt admitted by a permit (the first one's wait
/// counted in its lateness), the result to the outlet; stopped early by a stop or by
/// its flight's cancellation.
async fn run_check<C: Checker>(
    checker: C,
    held: Held,
    start: Start,
    shared: Shared,
    flight: Arc<Flight>,
) {
    let _task = shared.permits.task();
    let _done = Done(flight.clone());
    let check = async {
        // The first permit before anything else: a check waiting for it holds neither its
        // monitor (rebuilt from the shelf only now) nor the engine's state, which is
        // boxed, so that checks piling up behind a busy machine cost little each.
        let Some(first) = admit(0, start, shared.clone(), &flight).await else {
            return;
        };
        let monitor = match held.monitor() {
            Ok(monitor) => monitor,
            Err(why) => {
                tracing::error!(monitor = held.id(), "cannot check: {why}");
                return;
            }
        };
        let mut first = Some(first);
        let admit = |retry: u32| {
            let taken = if retry == 0 { first.take() } else { None };
            let (shared, flight) = (shared.clone(), flight.clone());
            async move {
                match taken {
                    Some(permit) => Some(permit),
                    None => admit(retry, start, shared, &flight).await,
                }
            }
        };
        let Some(result) = Box::pin(checker.check(&monitor, admit)).await else {
            return;
        };
        let retries_left = monitor.spec().retry.max_retries() > 0;
        if start.handoff && retries_left && result.status == Status::Failed {
            shared.outlet.handoff(start.tick, &monitor, result);
        } else {
            shared.outlet.result(start.tick, result);
        }
    };
    tokio::select! {
        () = check => {}
        () = flight.notify.notified() => {}
    }
}

/// The permit of attempt `retry` of a check: none for a retry that goes elsewhere, or
/// when stopping; a check cancelled while it waited never starts, even when a cancelled
/// neighbour's permit reached it first. The first attempt's wait counts in its lateness.
async fn admit(retry: u32, start: Start, mut shared: Shared, flight: &Flight) -> Option<Permit> {
    if retry > 0 && start.handoff {
        return None;
    }
    // A retry is due when its backoff ends: now.
    let due = if retry == 0 { start.at } else { Instant::now() };
    let permit = tokio::select! {
        permit = shared.permits.acquire(due, start.slow) => permit,
        _ = shared.stop.changed() => None,
    };
    let permit = permit.filter(|_| !flight.cancelled())?;
    let waited = Instant::now().saturating_duration_since(due);
    shared.counts.waited(waited);
    if retry == 0 {
        flight.state.store(RUNNING, Ordering::Release);
        shared.counts.started.fetch_add(1, Ordering::Relaxed);
        shared.outlet.late(waited.as_secs_f64());
    }
    Some(permit)
}

/// What the check tasks count for the current [`Window`].
#[derive(Debug, Default)]
struct Counts {
    /// Checks started.
    started: AtomicU64,
    /// The longest an attempt waited for its permit, in microseconds.
    longest_wait_us: AtomicU64,
}

impl Counts {
    fn waited(&self, wait: Duration) {
        let us = u64::try_from(wait.as_micros()).unwrap_or(u64::MAX);
        self.longest_wait_us.fetch_max(us, Ordering::Relaxed);
    }
}

/// An attempt that waited longer than this for its permit shows the permits were short.
const STARVED: Duration = Duration::from_secs(1);

/// The scheduler's counts over one [`LOAD_WINDOW`].
struct Window {
    start: Instant,
    end: Instant,
    /// Ticks due, skipped ones included.
    due: u64,
}

impl Window {
    fn new(start: Instant) -> Window {
        Window {
            start,
            end: start + LOAD_WINDOW,
            due: 0,
        }
    }

    /// The window's [`Load`] from the check tasks' `counts` (taken and reset), logged
    /// when overloaded. The deficit is the ticks due that did not start (skipped, or still
    /// waiting); it is the machine's (overloaded) when an attempt also waited over
    /// [`STARVED`] for a permit: a monitor that only outlasts its own interval is counted
    /// by its overruns, not here.
    fn close(&self, now: Instant, counts: &Counts, permits: &Permits) -> Load {
        let secs = now
            .saturating_duration_since(self.start)
            .as_secs_f64()
            .max(1e-3);
        let started = counts.started.swap(0, Ordering::Relaxed);
        let longest = Duration::from_micros(counts.longest_wait_us.swap(0, Ordering::Relaxed));
        let waiting = permits.waiting() as u64;
        let stuck = permits
            .oldest_due()
            .is_some_and(|due| now.saturating_duration_since(due) > STARVED);
        let short = self.due.saturating_sub(started);
        let load = Load {
            due_per_second: self.due as f64 / secs,
            started_per_second: started as f64 / secs,
            deficit_per_second: short as f64 / secs,
            waiting,
            overloaded: short > 0 && (longest > STARVED || stuck),
        };
        if load.overloaded {
            tracing::warn!(
                "cannot keep up: {:.1} checks/s due, {:.1}/s started, short by {:.1} checks/s, \
                 {waiting} waiting for a permit (raise --concurrency, add agents or lower \
                 frequencies)",
                load.due_per_second,
                load.started_per_second,
                load.deficit_per_second,
            );
        }
        load
    }
}
