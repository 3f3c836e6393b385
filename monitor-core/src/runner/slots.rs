//! `watch`'s state for `/metrics`: one compact slot per monitor (where its id is in one
//! text of all ids, what its latest result shows, its checks per status and failures in a
//! row) in a vector sorted by id, updated in place as results arrive, and the exposition
//! rendered from it a piece of monitors at a time: each piece is copied out under the
//! lock, which is then released, and rendered outside it, so that recording a result
//! never waits for a scrape.

use std::ops::Range;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, TryLockError};

use monitor_spec::result::{CheckResult, Status};
use monitor_spec::schedule::Frequency;
use monitor_spec::validate::ValidMonitor;

use super::process_metrics::ProcessMetrics;
use crate::report::{self, Latest, Needs, PrometheusText};

/// The statuses in the order `/metrics` counts them.
const STATUSES: [Status; 3] = [Status::Passed, Status::Degraded, Status::Failed];

/// The most results kept [`State::waiting`]; a worker recording one more waits for the
/// slots' lock instead (about 250 bytes each, so about 16 MB).
pub const MAX_WAITING: usize = 65_536;

/// A result as the slots keep it: its monitor, its status, what `/metrics` shows of it.
#[derive(Debug)]
struct Recorded {
    id: std::sync::Arc<str>,
    status: Status,
    latest: Latest,
}

/// How many monitors' slots one copy under the lock takes (about 200 bytes each, so
/// 1,000 of them hold the lock for some microseconds).
pub const SLOTS_PER_COPY: usize = 1_000;

/// The latest result and the check counts of every monitor, and the process's families.
#[derive(Debug, Default)]
pub struct State {
    slots: Mutex<Slots>,
    /// Results recorded while `slots` was taken (by a scrape's copy, on a thread at nice
    /// 19 that the kernel may preempt while it holds the lock): the runtime's workers
    /// leave them here instead of waiting, and whoever takes `slots` next applies them
    /// first, in the order they came. At most [`MAX_WAITING`].
    waiting: Mutex<Vec<Recorded>>,
    /// What is scheduled and how late checks started against their schedule.
    pub(super) process: ProcessMetrics,
}

/// The monitors' slots, sorted by id (found by a binary search: an index by id would
/// cost a million monitors some 50 MB); at most one per monitor loaded or reported.
/// Their ids are in one text, those loaded in id order: a search and a scrape read it
/// front to back instead of chasing a pointer per monitor to wherever the allocator put
/// it, and a copy takes no reference count.
#[derive(Debug, Default)]
struct Slots {
    slots: Vec<Slot>,
    /// Every slot's id, one after another.
    ids: String,
    /// How many slots have what [`NEEDS`] names, in its order.
    with: [usize; 3],
}

/// What some families need of a result: the slots count the results that have each.
const NEEDS: [Needs; 3] = [Needs::Tls, Needs::Tcp, Needs::SchedulingDelay];

/// What `/metrics` shows of one monitor.
#[derive(Debug, Clone)]
struct Slot {
    /// Where its id is in the ids' text.
    id: IdAt,
    /// What its latest result shows; `None` before its first.
    latest: Option<Latest>,
    /// Checks per status, in the order of [`STATUSES`].
    counts: [u64; 3],
    /// Failed checks in a row up to the latest.
    failing: u64,
}

/// Where an id is in a text of ids.
#[derive(Debug, Clone, Copy)]
struct IdAt {
    start: usize,
    len: usize,
}

impl IdAt {
    /// `id` added at the end of `text`.
    fn push(text: &mut String, id: &str) -> IdAt {
        let start = text.len();
        text.push_str(id);
        IdAt {
            start,
            len: id.len(),
        }
    }

    fn range(self) -> Range<usize> {
        self.start..self.start.saturating_add(self.len)
    }

    /// The id in `text`.
    fn of(self, text: &str) -> &str {
        text.get(self.range()).unwrap_or_default()
    }
}

impl Slot {
    fn new(id: IdAt) -> Slot {
        Slot {
            id,
            latest: None,
            counts: [0; 3],
            failing: 0,
        }
    }
}

impl Slots {
    /// The slot of `id`, made (in id order) when it has none yet.
    fn slot(&mut self, id: &str) -> &mut Slot {
        let ids = &self.ids;
        let i = match self.slots.binary_search_by(|s| s.id.of(ids).cmp(id)) {
            Ok(i) => i,
            Err(i) => {
                let at = IdAt::push(&mut self.ids, id);
                self.slots.insert(i, Slot::new(at));
                i
            }
        };
        &mut self.slots[i]
    }
}

impl Slots {
    /// Keeps `recorded` in its monitor's slot.
    fn apply(&mut self, recorded: Recorded) {
        let Recorded { id, status, latest } = recorded;
        let counted = STATUSES.iter().position(|s| *s == status);
        let slot = self.slot(&id);
        if let Some(counted) = counted {
            slot.counts[counted] += 1;
        }
        slot.failing = match status {
            Status::Failed => slot.failing.saturating_add(1),
            _ => 0,
        };
        let had = NEEDS.map(|n| slot.latest.as_ref().is_some_and(|l| l.has(n)));
        let has = NEEDS.map(|n| latest.has(n));
        slot.latest = Some(latest);
        for ((with, had), has) in self.with.iter_mut().zip(had).zip(has) {
            *with = (*with + usize::from(has)).saturating_sub(usize::from(had));
        }
    }
}

impl State {
    /// The slots, with the results that waited applied.
    fn slots(&self) -> MutexGuard<'_, Slots> {
        let slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        self.caught_up(slots)
    }

    /// `slots` with the results that waited applied; the waiting list is only swapped
    /// out under its own lock, so a recorder never waits for the applying.
    fn caught_up<'s>(&self, mut slots: MutexGuard<'s, Slots>) -> MutexGuard<'s, Slots> {
        let waited = std::mem::take(&mut *self.waiting());
        for recorded in waited {
            slots.apply(recorded);
        }
        slots
    }

    fn waiting(&self) -> MutexGuard<'_, Vec<Recorded>> {
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records a result, keeping only what `/metrics` shows of it ([`Latest`]): with a
    /// million monitors the full results (attempts, excerpts, chains, hints) would cost
    /// gigabytes. Never waits for a scrape: when the slots are taken, the result waits
    /// for whoever takes them next (at most [`MAX_WAITING`] results).
    pub fn record(&self, result: CheckResult) {
        let recorded = Recorded {
            latest: Latest::of(&result),
            status: result.status,
            id: result.id,
        };
        let slots = match self.slots.try_lock() {
            Ok(slots) => slots,
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(TryLockError::WouldBlock) => {
                let mut waiting = self.waiting();
                if waiting.len() < MAX_WAITING {
                    waiting.push(recorded);
                    return;
                }
                drop(waiting);
                self.slots.lock().unwrap_or_else(PoisonError::into_inner)
            }
        };
        self.caught_up(slots).apply(recorded);
    }

    /// Whether some result has what `needs` names.
    fn any(&self, needs: Needs) -> bool {
        match NEEDS.iter().position(|n| *n == needs) {
            Some(i) => self.slots().with[i] > 0,
            None => true,
        }
    }

    /// Records how late a check started.
    pub fn late(&self, seconds: f64) {
        self.process.late(seconds);
    }

    /// Counts a tick `monitor` skipped because its previous check was still running.
    pub fn overrun(&self, monitor: &str) {
        self.process.overrun(monitor);
    }

    /// Records the scheduler's load over its last window.
    pub fn load(&self, load: &super::schedule::Load) {
        self.process.set_load(load);
    }

    /// Records the monitors scheduled: a slot for each (shown once it has a result), and
    /// how many there are and how many checks are due per second.
    pub fn loaded(&self, monitors: &[ValidMonitor]) {
        self.loaded_each(monitors.iter().map(|m| (&*m.spec().id, m.spec().frequency)));
    }

    /// [`State::loaded`] from each monitor's id and frequency (of monitors held shelved).
    pub(crate) fn loaded_each<'a>(&self, monitors: impl Iterator<Item = (&'a str, Frequency)>) {
        let mut ids: Vec<&str> = Vec::with_capacity(monitors.size_hint().0);
        let mut due = 0.0;
        for (id, frequency) in monitors {
            due += 1.0 / frequency.as_secs().max(1) as f64;
            ids.push(id);
        }
        self.process.set_loaded(ids.len(), due);
        ids.sort_unstable();
        ids.dedup();
        let mut slots = self.slots();
        if slots.slots.is_empty() {
            let mut text = String::with_capacity(ids.iter().map(|id| id.len()).sum());
            slots.slots = ids
                .into_iter()
                .map(|id| Slot::new(IdAt::push(&mut text, id)))
                .collect();
            slots.ids = text;
        } else {
            for id in ids {
                slots.slot(id);
            }
        }
    }

    /// Lateness quantiles (0.5, 0.99, 1.0) in seconds over the kept samples.
    pub fn lateness_quantiles(&self) -> Option<[f64; 3]> {
        self.process.lateness_quantiles()
    }

    /// Copies the slots from `from` on, at most [`SLOTS_PER_COPY`], into `piece`
    /// (cleared first).
    fn copy(&self, from: usize, piece: &mut Piece) {
        piece.slots.clear();
        piece.ids.clear();
        let slots = self.slots();
        let to = slots.slots.len().min(from.saturating_add(SLOTS_PER_COPY));
        if let Some(copied) = slots.slots.get(from..to) {
            piece.slots.extend(copied.iter().map(|slot| Slot {
                id: IdAt::push(&mut piece.ids, slot.id.of(&slots.ids)),
                ..slot.clone()
            }));
        }
    }

    /// The Prometheus exposition of the latest results and the counters, whole.
    pub fn metrics(self: &Arc<Self>) -> String {
        let mut pieces = MetricsPieces::new(Arc::clone(self));
        let mut text = String::new();
        while let Some(piece) = pieces.next_piece(usize::MAX) {
            text.push_str(&piece);
        }
        text
    }
}

/// A copy of some monitors' slots, in id order, with their ids, as the exposition reads
/// them.
#[derive(Debug, Default)]
struct Piece {
    slots: Vec<Slot>,
    ids: String,
}

impl report::Exposition for Piece {
    fn results(&self) -> usize {
        self.slots.len()
    }
    fn result(&self, i: usize) -> Option<(&str, &Latest)> {
        let slot = self.slots.get(i)?;
        Some((slot.id.of(&self.ids), slot.latest.as_ref()?))
    }
    fn counted(&self) -> usize {
        self.slots.len()
    }
    fn counters(&self, i: usize) -> (&str, Vec<(Status, u64)>) {
        let Some(slot) = self.slots.get(i) else {
            return ("", Vec::new());
        };
        let counts = STATUSES
            .into_iter()
            .zip(slot.counts)
            .filter(|(_, n)| *n > 0)
            .collect();
        (slot.id.of(&self.ids), counts)
    }
    fn consecutive_failures(&self, i: usize) -> Option<u64> {
        Some(self.slots.get(i)?.failing)
    }
}

/// `/metrics` of a [`State`] rendered a piece at a time: the process's families, then
/// each monitor family over the slots in id order, [`SLOTS_PER_COPY`] slots copied at a
/// time. It holds one copy of slots (about 200 KB) and the piece it renders.
#[derive(Debug)]
pub struct MetricsPieces {
    state: Arc<State>,
    text: PrometheusText,
    /// The first slot of the next copy, in the current family.
    next: usize,
    /// Whether the process's families, the first, are written.
    started: bool,
    piece: Piece,
}

impl MetricsPieces {
    /// The text of `state` from its start.
    pub fn new(state: Arc<State>) -> MetricsPieces {
        MetricsPieces {
            state,
            text: PrometheusText::default(),
            next: 0,
            started: false,
            piece: Piece::default(),
        }
    }

    /// The next piece of at least `min` bytes (less for the last), or `None` at the end.
    pub fn next_piece(&mut self, min: usize) -> Option<String> {
        let mut out = String::new();
        if !self.started {
            self.started = true;
            out.push_str(&self.state.process.render());
        }
        while out.len() < min && !self.text.done() {
            if self.next == 0 && !self.state.any(self.text.needs()) {
                self.text.next_family();
                continue;
            }
            self.state.copy(self.next, &mut self.piece);
            if self.piece.slots.is_empty() {
                self.text.next_family();
                self.next = 0;
                continue;
            }
            self.next += self.piece.slots.len();
            self.text.family_rows(&mut out, &self.piece);
        }
        self.piece.slots.clear();
        self.piece.ids.clear();
        (!out.is_empty()).then_some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::runner::result_of as result;

    /// The checks per status `/metrics` shows of `id`.
    fn counts(state: &Arc<State>, id: &str) -> Vec<String> {
        let needle = format!("monitor=\"{id}\"");
        state
            .metrics()
            .lines()
            .filter(|l| l.starts_with("monitor_checks_total") && l.contains(&needle))
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn a_result_recorded_while_the_slots_are_taken_waits_and_is_shown_next() {
        let state = Arc::new(State::default());
        state.record(result("b", Status::Passed));
        // A scrape's copy holds the slots (here on this very thread: a recorder that
        // waited for the lock would never return).
        let held = state.slots();
        state.record(result("a", Status::Failed));
        state.record(result("b", Status::Failed));
        assert_eq!(state.waiting().len(), 2);
        drop(held);
        assert_eq!(
            counts(&state, "a"),
            ["monitor_checks_total{monitor=\"a\",status=\"failed\"} 1"]
        );
        assert_eq!(
            counts(&state, "b"),
            [
                "monitor_checks_total{monitor=\"b\",status=\"passed\"} 1",
                "monitor_checks_total{monitor=\"b\",status=\"failed\"} 1"
            ]
        );
        assert!(state.waiting().is_empty());
    }

    #[test]
    fn ids_keep_their_order_whatever_order_they_come_in() {
        let state = Arc::new(State::default());
        let loaded = [("m-2", Frequency::M1), ("m-10", Frequency::M1)];
        state.loaded_each(loaded.into_iter());
        for id in ["z", "m-10", "a", "m-2"] {
            state.record(result(id, Status::Passed));
        }
        let slots = state.slots();
        let ids: Vec<&str> = slots.slots.iter().map(|s| s.id.of(&slots.ids)).collect();
        assert_eq!(ids, ["a", "m-10", "m-2", "z"]);
    }
}
