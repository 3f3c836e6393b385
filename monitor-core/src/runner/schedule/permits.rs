//! The concurrency permits of a schedule, handed out in order of due time rather than of
//! asking, with a smaller pool that slow checks take a share of first, and a count of the
//! check tasks alive so that a stop can wait for the ones sleeping between attempts.

use std::cmp::Ordering as Order;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, oneshot};
use tokio::time::Instant;

/// The permits checks take: `concurrency` of them bound the attempts running at once and
/// go to the waiting check due first (the earlier ask on a tie); slow checks take one of
/// half as many (at least 1) first, so they never hold more than half.
#[derive(Debug, Clone)]
pub(crate) struct Permits {
    inner: Arc<Inner>,
}

/// One attempt's right to run; given back when dropped.
#[derive(Debug)]
pub(crate) struct Permit {
    /// `None` once given back (or never handed out).
    inner: Option<Arc<Inner>>,
    /// The slow pool's share, for a slow check.
    _share: Option<OwnedSemaphorePermit>,
}

/// A check task alive: counted until dropped ([`Permits::task`]).
#[derive(Debug)]
pub(crate) struct Task(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    concurrency: usize,
    queue: Mutex<Queue>,
    slow: Arc<Semaphore>,
    /// Checks waiting for a permit.
    waiting: AtomicUsize,
    /// Check tasks alive.
    tasks: AtomicUsize,
    /// Woken when a permit returns to the pool or a task ends.
    settled: Notify,
}

#[derive(Debug)]
struct Queue {
    free: usize,
    asked: u64,
    waiters: BinaryHeap<Waiter>,
}

/// A check waiting for a permit. The heap pops the earliest due first.
#[derive(Debug)]
struct Waiter {
    due: Instant,
    asked: u64,
    tx: oneshot::Sender<Permit>,
}

impl PartialEq for Waiter {
    fn eq(&self, other: &Self) -> bool {
        (self.due, self.asked) == (other.due, other.asked)
    }
}
impl Eq for Waiter {}
impl PartialOrd for Waiter {
    fn partial_cmp(&self, other: &Self) -> Option<Order> {
        Some(self.cmp(other))
    }
}
impl Ord for Waiter {
    fn cmp(&self, other: &Self) -> Order {
        (other.due, other.asked).cmp(&(self.due, self.asked))
    }
}

/// Counts a check waiting until dropped.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Permits {
    /// Permits for `concurrency` attempts at once (at least 1).
    pub(crate) fn new(concurrency: usize) -> Permits {
        let concurrency = concurrency.clamp(1, Semaphore::MAX_PERMITS);
        Permits {
            inner: Arc::new(Inner {
                concurrency,
                queue: Mutex::new(Queue {
                    free: concurrency,
                    asked: 0,
                    waiters: BinaryHeap::new(),
                }),
                slow: Arc::new(Semaphore::new((concurrency / 2).max(1))),
                waiting: AtomicUsize::new(0),
                tasks: AtomicUsize::new(0),
                settled: Notify::new(),
            }),
        }
    }

    /// A permit for an attempt due at `due`: at once when one is free and no check
    /// waits, else when every waiting check due earlier has had one. `None` only if the
    /// slow pool is closed (never, in practice).
    pub(crate) async fn acquire(&self, due: Instant, slow: bool) -> Option<Permit> {
        let _waiting = {
            self.inner.waiting.fetch_add(1, Ordering::Relaxed);
            Waiting(&self.inner.waiting)
        };
        let share = if slow {
            Some(self.inner.slow.clone().acquire_owned().await.ok()?)
        } else {
            None
        };
        let rx = {
            let mut q = self.inner.queue();
            if q.free > 0 {
                q.free -= 1;
                return Some(Permit {
                    inner: Some(self.inner.clone()),
                    _share: share,
                });
            }
            let (tx, rx) = oneshot::channel();
            q.asked += 1;
            let asked = q.asked;
            q.waiters.push(Waiter { due, asked, tx });
            rx
        };
        let mut permit = rx.await.ok()?;
        permit._share = share;
        Some(permit)
    }

    /// Counts a check task alive until the returned guard is dropped.
    pub(crate) fn task(&self) -> Task {
        self.inner.tasks.fetch_add(1, Ordering::AcqRel);
        Task(self.inner.clone())
    }

    /// Checks waiting for a permit now.
    pub(crate) fn waiting(&self) -> usize {
        self.inner.waiting.load(Ordering::Relaxed)
    }

    /// When the earliest check still waiting was due.
    pub(crate) fn oldest_due(&self) -> Option<Instant> {
        self.inner.queue().waiters.peek().map(|w| w.due)
    }

    /// Waits up to `limit` until every check task has ended and every permit is back;
    /// whether they all did.
    pub(crate) async fn drain(&self, limit: Duration) -> bool {
        let inner = &self.inner;
        tokio::time::timeout(limit, async {
            loop {
                let settled = inner.settled.notified();
                tokio::pin!(settled);
                settled.as_mut().enable();
                if inner.tasks.load(Ordering::Acquire) == 0
                    && inner.queue().free == inner.concurrency
                {
                    return;
                }
                settled.await;
            }
        })
        .await
        .is_ok()
    }
}

impl Inner {
    fn queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Gives a permit back: to the waiting check due first whose wait is still on, else
    /// to the pool.
    fn release(self: &Arc<Self>) {
        loop {
            let waiter = {
                let mut q = self.queue();
                match q.waiters.pop() {
                    Some(w) => w,
                    None => {
                        q.free += 1;
                        break;
                    }
                }
            };
            let permit = Permit {
                inner: Some(self.clone()),
                _share: None,
            };
            match waiter.tx.send(permit) {
                Ok(()) => return,
                // That check stopped waiting: the permit goes to the next, not back
                // through this function.
                Err(mut unsent) => unsent.inner = None,
            }
        }
        self.settled.notify_waiters();
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if let Some(inner) = self.inner.take() {
            inner.release();
        }
    }
}

impl Drop for Task {
    fn drop(&mut self) {
        self.0.tasks.fetch_sub(1, Ordering::AcqRel);
        self.0.settled.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Asks for permits due at the given seconds (in that order) while the only permit
    /// is held, then gives it back: the order the waiters got theirs in.
    async fn order(dues: &[u64], give_up: Option<u64>) -> Vec<u64> {
        let permits = Permits::new(1);
        let start = Instant::now();
        let held = permits.acquire(start, false).await;
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let mut tasks = Vec::new();
        for &due in dues {
            let (permits, tx) = (permits.clone(), tx.clone());
            tasks.push(tokio::spawn(async move {
                let permit = permits
                    .acquire(start + Duration::from_secs(due), false)
                    .await;
                let _ = tx.send(due);
                drop(permit);
            }));
            // Each asks before the next.
            tokio::task::yield_now().await;
        }
        assert_eq!(permits.waiting(), dues.len());
        if let Some(quitter) = give_up.and_then(|d| dues.iter().position(|x| *x == d)) {
            tasks[quitter].abort();
            tokio::task::yield_now().await;
        }
        drop(held);
        drop(tx);
        let mut got = Vec::new();
        while let Some(due) = rx.recv().await {
            got.push(due);
        }
        assert!(
            permits.drain(Duration::from_secs(1)).await,
            "a permit was lost"
        );
        got
    }

    #[tokio::test]
    async fn waiting_checks_get_permits_in_order_of_due_time() {
        assert_eq!(order(&[30, 10, 20], None).await, [10, 20, 30]);
        assert_eq!(order(&[5, 5, 1], None).await, [1, 5, 5]);
        // A check that stopped waiting is passed over, and its turn is not lost.
        assert_eq!(order(&[30, 10, 20], Some(10)).await, [20, 30]);
    }

    #[tokio::test]
    async fn slow_checks_hold_at_most_half() {
        let permits = Permits::new(4);
        let now = Instant::now();
        let a = permits.acquire(now, true).await;
        let b = permits.acquire(now, true).await;
        assert!(a.is_some() && b.is_some());
        let third = tokio::time::timeout(Duration::from_millis(50), permits.acquire(now, true));
        assert!(
            third.await.is_err(),
            "a third slow check got a permit of four"
        );
        assert!(permits.acquire(now, false).await.is_some());
    }

    #[tokio::test]
    async fn drain_waits_for_tasks_between_attempts() {
        let permits = Permits::new(2);
        let task = permits.task();
        assert!(!permits.drain(Duration::from_millis(20)).await);
        drop(task);
        assert!(permits.drain(Duration::from_millis(20)).await);
    }
}
