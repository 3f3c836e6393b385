//! The engine's view of time: the [`Clock`] it takes from outside (so tests can retry
//! without waiting), the boxed future its traits return, and durations in milliseconds.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use time::OffsetDateTime;

/// A boxed future, as the [`Resolve`] and [`Clock`] traits return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The engine's view of time: a monotonic clock for timings, the wall clock for
/// `started_at`, and sleeping between retries.
pub trait Clock: Send + Sync + 'static {
    /// Monotonic now.
    fn now(&self) -> Instant;
    /// Wall-clock now, in UTC.
    fn wall(&self) -> OffsetDateTime;
    /// Waits before a retry.
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()>;
}

/// The real clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
    fn wall(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        Box::pin(tokio::time::sleep(duration))
    }
}

/// A duration in milliseconds, rounded to microseconds.
pub(crate) fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 1_000_000.0).round() / 1_000.0
}
