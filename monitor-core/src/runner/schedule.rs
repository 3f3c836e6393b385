//! The schedule `watch` and `agent` share: one task keeps the next start of every monitor
//! in a heap and spawns each check at its time, with the cadences the two differ by.
//!
//! Checks take a permit of the runner's concurrency before they run. A slow check (one
//! that may run longer than [`SLOW_CHECK`], see [`is_slow`]) first takes a permit of a
//! smaller pool, half the concurrency (at least 1), so slow monitors never hold more than
//! half the permits and the others keep being checked. A new set of monitors cancels the
//! checks in flight of the monitors it removes or whose spec it changes, giving their
//! permits back at once.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc, watch as signal};
use tokio::time::{Instant, sleep_until};

use crate::Engine;
pub use crate::runner::process_metrics::Load;
use monitor_spec::result::CheckResult;
use monitor_spec::validate::ValidMonitor;

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

/// The permits checks take: `all` bounds the checks in flight; slow checks take one of
/// `slow` (half as many, at least 1) first.
#[derive(Debug, Clone)]
pub(crate) struct Permits {
    all: Arc<Semaphore>,
    slow: Arc<Semaphore>,
    concurrency: usize,
}

impl Permits {
    /// Permits for `concurrency` checks at once (at least 1).
    pub(crate) fn new(concurrency: usize) -> Permits {
        let concurrency = concurrency.clamp(1, Semaphore::MAX_PERMITS);
        Permits {
            all: Arc::new(Semaphore::new(concurrency)),
            slow: Arc::new(Semaphore::new((concurrency / 2).max(1))),
            concurrency,
        }
    }

    /// The permits a check runs with: a share of the slow pool first when it is slow.
    async fn acquire(
        &self,
        slow: bool,
    ) -> Option<(Option<OwnedSemaphorePermit>, OwnedSemaphorePermit)> {
        let share = if slow {
            Some(self.slow.clone().acquire_owned().await.ok()?)
        } else {
            None
        };
        Some((share, self.all.clone().acquire_owned().await.ok()?))
    }

    /// Waits up to `limit` until every check in flight has given its permit back;
    /// whether they all did.
    pub(crate) async fn drain(&self, limit: Duration) -> bool {
        let all = u32::try_from(self.concurrency).unwrap_or(u32::MAX);
        tokio::time::timeout(limit, self.all.acquire_many(all))
            .await
            .is_ok()
    }
}

/// Stops a check in flight: the flag is set for every check a new set cancels before any
/// is woken, so one woken by a permit a cancelled neighbour gave back does not start.
/// (A signal rather than the task's handle, which would keep each finished check's
/// memory.)
#[derive(Debug, Default)]
struct Cancel {
    flag: AtomicBool,
    notify: Notify,
}

/// Marks a monitor idle when its check task ends, finished or cancelled.
struct Idle(Arc<AtomicBool>);

impl Drop for Idle {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
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
    pub(crate) monitor: ValidMonitor,
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

/// The interval of a monitor.
fn interval(m: &ValidMonitor) -> Duration {
    Duration::from_secs(m.spec().frequency.as_secs())
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
    fn first(self, monitor: &ValidMonitor, start: Instant, now: Instant) -> (Instant, u64) {
        match self {
            Cadence::Spread => {
                let offset = start_offset(&monitor.spec().id, interval(monitor));
                let at = start + offset;
                (if at >= now { at } else { now + offset }, 0)
            }
            Cadence::WallClock { .. } => self.wall_clock(monitor, 0, now),
        }
    }

    /// The due time after the tick `tick` that was due at `at`, processed at `now`; missed
    /// ticks (after a stall longer than an interval) are skipped.
    fn next(self, monitor: &ValidMonitor, at: Instant, tick: u64, now: Instant) -> (Instant, u64) {
        match self {
            Cadence::Spread => {
                let every = interval(monitor);
                let mut later = at + every;
                // After a stall longer than an interval, skip the missed ticks.
                if later < now {
                    later = now + start_offset(&monitor.spec().id, every).min(every / 10);
                }
                (later, tick.wrapping_add(1))
            }
            Cadence::WallClock { .. } => self.wall_clock(monitor, tick.saturating_add(1), now),
        }
    }

    /// The next wall-clock tick from `from` on, as an instant of the monotonic clock.
    fn wall_clock(self, monitor: &ValidMonitor, from: u64, now: Instant) -> (Instant, u64) {
        let Cadence::WallClock {
            every,
            index,
            phase_ms,
        } = self
        else {
            return (now, from);
        };
        let interval_ms = monitor.spec().frequency.as_secs() * 1000;
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
    /// Its check is running or waiting for a slot.
    busy: Arc<AtomicBool>,
    /// Stops its check in flight when the monitor leaves or changes.
    cancel: Arc<Cancel>,
    /// Tells this schedule from an earlier one of the same slot in the heap.
    generation: u64,
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
            busy: Arc::new(AtomicBool::new(false)),
            cancel: Arc::default(),
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
            .filter_map(|(i, s)| Some((s.as_ref()?.job.monitor.spec().id.clone(), i)))
            .collect();
        let mut keep: HashMap<String, ()> = HashMap::with_capacity(jobs.len());
        for job in jobs {
            let id = job.monitor.spec().id.clone();
            if keep.insert(id.clone(), ()).is_some() {
                continue;
            }
            match by_id
                .get(&id)
                .and_then(|&i| Some((i, self.slots[i].as_mut()?)))
            {
                Some((i, slot)) => {
                    if slot.job.cadence == job.cadence
                        && slot.job.monitor.spec() == job.monitor.spec()
                    {
                        continue;
                    }
                    // Rescheduled; the busy flag stays until the task of the old spec is
                    // gone, so the new spec never overlaps it.
                    if slot.job.monitor.spec() != job.monitor.spec() {
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

/// Marks the check in flight of a slot, if any, cancelled and returns its signal, to wake
/// once every cancelled check is marked: its future is then dropped with its connection
/// and permits. The slot gets a new signal, so a later check never sees this one.
fn cancel(slot: &mut Slot) -> Option<Arc<Cancel>> {
    if !slot.busy.load(Ordering::Acquire) {
        return None;
    }
    slot.cancel.flag.store(true, Ordering::Release);
    Some(std::mem::take(&mut slot.cancel))
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
/// tick or other monitors, and 100,000 monitors cost no task or timer each; slow checks
/// hold at most half the permits ([`Permits`]). A monitor whose previous check is still
/// running or waiting for a slot skips a tick rather than overlap itself. A new set from
/// `updates` replaces the schedule, cancelling the checks in flight of the monitors it
/// removes or changes; the others keep running. Shared by `watch` ([`Cadence::Spread`],
/// results printed) and `agent` ([`Cadence::WallClock`], results buffered for upload).
pub(crate) async fn schedule(
    jobs: Vec<Job>,
    mut updates: Option<mpsc::UnboundedReceiver<Vec<Job>>>,
    engine: Engine,
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
    loop {
        let next = due.peek().map(|&Reverse((at, ..))| at);
        tokio::select! {
            _ = async {
                match next {
                    Some(at) => sleep_until(at).await,
                    None => std::future::pending().await,
                }
            } => {}
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
            outlet.late(now.saturating_duration_since(at).as_secs_f64());
            if !slot.busy.swap(true, Ordering::AcqRel) {
                let (engine, this, outlet, permits, idle) = (
                    engine.clone(),
                    slot.job.monitor.clone(),
                    outlet.clone(),
                    permits.clone(),
                    Idle(slot.busy.clone()),
                );
                let slow = is_slow(&this);
                let handoff = slot.job.retry_elsewhere;
                let mut stop = stop.clone();
                let cancel = slot.cancel.clone();
                tokio::spawn(async move {
                    let _idle = idle;
                    let check = async {
                        let permit = tokio::select! {
                            permit = permits.acquire(slow) => permit,
                            _ = stop.changed() => None,
                        };
                        // A check cancelled while it waited never starts, even when a
                        // cancelled neighbour's permit reached it first.
                        if let Some(permit) =
                            permit.filter(|_| !cancel.flag.load(Ordering::Acquire))
                        {
                            let mut first = Some(permit);
                            let result = engine
                                .check_admitted(&this, |retry| {
                                    let permit = first.take();
                                    async move {
                                        if retry > 0 && handoff {
                                            return None;
                                        }
                                        permit
                                    }
                                })
                                .await;
                            if let Some(result) = result {
                                let retries_left = this.spec().retry.max_retries() > 0;
                                if handoff
                                    && retries_left
                                    && result.status == monitor_spec::result::Status::Failed
                                {
                                    outlet.handoff(tick, &this, result);
                                } else {
                                    outlet.result(tick, result);
                                }
                            }
                        }
                    };
                    tokio::select! {
                        () = check => {}
                        () = cancel.notify.notified() => {}
                    }
                });
            }
            let (later, tick) = slot.job.cadence.next(&slot.job.monitor, at, tick, now);
            due.push(Reverse((later, i, generation, tick)));
        }
    }
}
