//! Scheduling delay: how late the check's task was polled after something it waited for
//! woke it (a ready socket, a due timer), measured by a waker of its own, and a clock
//! that leaves that delay out so every phase timed on it excludes it.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use time::OffsetDateTime;

use super::clock::{BoxFuture, Clock};

/// Below this, a check's scheduling delay is not reported (`scheduling_delay_ms` absent):
/// a poll always comes some microseconds after its wake.
pub(crate) const REPORTED_FROM: Duration = Duration::from_micros(50);

/// What the waker and the polls share. Times are nanoseconds since `base`, in atomics so
/// that a poll and the discounted clock take no lock; the parent waker has one, taken by
/// each wake and by a poll only when the task polling the check changes.
struct Shared {
    clock: Arc<dyn Clock>,
    base: Instant,
    /// One more than when the task was first woken since its last poll; 0: not woken.
    woken: AtomicU64,
    /// When the last poll of the check's future ended: a wake during a poll counts from
    /// its end, so the discounted clock never runs backwards.
    polled: AtomicU64,
    /// Scheduling delay so far.
    total: AtomicU64,
    /// The waker of the task that polls the check.
    parent: Mutex<Option<Waker>>,
}

impl Shared {
    /// `t` in nanoseconds since `base`.
    fn since(&self, t: Instant) -> u64 {
        u64::try_from(t.saturating_duration_since(self.base).as_nanos()).unwrap_or(u64::MAX)
    }

    fn parent(&self) -> std::sync::MutexGuard<'_, Option<Waker>> {
        self.parent.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn total(&self) -> Duration {
        Duration::from_nanos(self.total.load(Ordering::Acquire))
    }
}

impl Wake for Shared {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        // Only the first wake since the last poll counts (and reads the clock).
        if self.woken.load(Ordering::Acquire) == 0 {
            let now = self.since(self.clock.now()).saturating_add(1);
            let _ = self
                .woken
                .compare_exchange(0, now, Ordering::AcqRel, Ordering::Acquire);
        }
        if let Some(parent) = &*self.parent() {
            parent.wake_by_ref();
        }
    }
}

/// The scheduling delay of one attempt: wrap its future with [`Lateness::observe`] and time
/// its phases on [`Lateness::clock`].
#[derive(Clone)]
pub(crate) struct Lateness {
    shared: Arc<Shared>,
}

impl Lateness {
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        let base = clock.now();
        Lateness {
            shared: Arc::new(Shared {
                clock,
                base,
                woken: AtomicU64::new(0),
                polled: AtomicU64::new(0),
                total: AtomicU64::new(0),
                parent: Mutex::new(None),
            }),
        }
    }

    /// The scheduling delay so far.
    pub fn total(&self) -> Duration {
        self.shared.total()
    }

    /// The delay to report: `None` under [`REPORTED_FROM`].
    pub fn reported(&self) -> Option<Duration> {
        Some(self.total()).filter(|d| *d >= REPORTED_FROM)
    }

    /// A clock whose `now` is the underlying clock's less the delay so far.
    pub fn clock(&self) -> Discounted {
        Discounted {
            shared: self.shared.clone(),
        }
    }

    /// `future`, polled through this lateness's waker: every poll after a wake adds the
    /// time from the wake (or the end of the previous poll, if later) to the delay.
    pub fn observe<F: Future>(&self, future: F) -> Observed<F> {
        Observed {
            future,
            waker: Waker::from(self.shared.clone()),
            shared: self.shared.clone(),
            parent: None,
        }
    }
}

pin_project_lite::pin_project! {
    /// A future whose polls measure how late they come after its wakes.
    pub(crate) struct Observed<F> {
        #[pin]
        future: F,
        waker: Waker,
        shared: Arc<Shared>,
        // The parent waker last handed to `shared`: a poll by the same task (the usual
        // case) compares with it and takes no lock.
        parent: Option<Waker>,
    }
}

impl<F: Future> Future for Observed<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let shared = &**this.shared;
        // The clock is read only for a poll that follows a wake: one read per wake here
        // and one in the wake.
        let woken = shared.woken.swap(0, Ordering::AcqRel);
        if woken != 0 {
            let start = shared.since(shared.clock.now());
            let from = (woken - 1).max(shared.polled.load(Ordering::Acquire));
            let late = start.saturating_sub(from);
            shared.total.fetch_add(late, Ordering::AcqRel);
        }
        if !this
            .parent
            .as_ref()
            .is_some_and(|p| p.will_wake(cx.waker()))
        {
            let waker = cx.waker().clone();
            *shared.parent() = Some(waker.clone());
            *this.parent = Some(waker);
        }
        let polled = this.future.poll(&mut Context::from_waker(this.waker));
        // A wake during this poll counts from its end, which only such a wake needs: a
        // later wake comes after the end anyway.
        if shared.woken.load(Ordering::Acquire) != 0 {
            let end = shared.since(shared.clock.now());
            shared.polled.store(end, Ordering::Release);
        }
        polled
    }
}

/// The underlying clock less the scheduling delay so far; sleeps and the wall clock as
/// the underlying clock's.
pub(crate) struct Discounted {
    shared: Arc<Shared>,
}

impl Clock for Discounted {
    fn now(&self) -> Instant {
        let now = self.shared.clock.now();
        now.checked_sub(self.shared.total()).unwrap_or(now)
    }
    fn wall(&self) -> OffsetDateTime {
        self.shared.clock.wall()
    }
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        self.shared.clock.sleep(duration)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;

    /// A clock the test moves by hand.
    struct Manual(Mutex<Instant>);

    impl Manual {
        fn advance(&self, d: Duration) {
            *self.0.lock().unwrap_or_else(PoisonError::into_inner) += d;
        }
    }

    impl Clock for Arc<Manual> {
        fn now(&self) -> Instant {
            *self.0.lock().unwrap_or_else(PoisonError::into_inner)
        }
        fn wall(&self) -> OffsetDateTime {
            OffsetDateTime::UNIX_EPOCH
        }
        fn sleep(&self, _: Duration) -> BoxFuture<'static, ()> {
            Box::pin(async {})
        }
    }

    /// Pending until `ready`, handing its waker out.
    struct Gate {
        ready: Arc<AtomicBool>,
        waker: Arc<Mutex<Option<Waker>>>,
    }

    impl Future for Gate {
        type Output = ();
        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            if self.ready.load(Ordering::SeqCst) {
                return Poll::Ready(());
            }
            *self.waker.lock().unwrap_or_else(PoisonError::into_inner) = Some(cx.waker().clone());
            Poll::Pending
        }
    }

    /// Polls a gate once, opens it `event` later, polls again `poll` after that: the
    /// delay counted, the one reported, and the time the discounted clock saw pass.
    fn check(event: Duration, poll: Duration, expected: (Duration, Option<Duration>, Duration)) {
        let manual = Arc::new(Manual(Mutex::new(Instant::now())));
        let late = Lateness::new(Arc::new(manual.clone()));
        let clock = late.clock();
        let start = clock.now();
        let ready = Arc::new(AtomicBool::new(false));
        let waker = Arc::new(Mutex::new(None));
        let gate = Gate {
            ready: ready.clone(),
            waker: waker.clone(),
        };
        let mut observed = std::pin::pin!(late.observe(gate));
        let mut cx = Context::from_waker(Waker::noop());
        assert!(observed.as_mut().poll(&mut cx).is_pending());
        manual.advance(event);
        ready.store(true, Ordering::SeqCst);
        let inner = waker.lock().unwrap_or_else(PoisonError::into_inner).take();
        inner.expect("the gate kept a waker").wake();
        manual.advance(poll);
        assert!(observed.as_mut().poll(&mut cx).is_ready());
        assert_eq!(
            (late.total(), late.reported(), clock.now() - start),
            expected
        );
    }

    #[test]
    fn a_poll_late_after_its_wake_is_counted_and_discounted() {
        // The event comes 7 ms later, the poll 40 ms after that.
        let (ms7, ms40) = (Duration::from_millis(7), Duration::from_millis(40));
        check(ms7, ms40, (ms40, Some(ms40), ms7));
    }

    #[test]
    fn a_prompt_poll_reports_nothing() {
        let (ms5, us10) = (Duration::from_millis(5), Duration::from_micros(10));
        check(ms5, us10, (us10, None, ms5));
    }
}
