//! Helpers shared by the engine tests: running one spec, engines with a fixed name table
//! and a clock that records retry waits instead of sleeping.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use monitor_core::Clock;
use monitor_core::engine::BoxFuture;
use monitor_core::prelude::*;
use monitor_testing::StaticResolver;
use time::OffsetDateTime;

/// Validates and checks a spec with the given engine.
pub async fn run_with(engine: &Engine, spec: TcpMonitor) -> CheckResult {
    let monitor = spec
        .validate()
        .unwrap_or_else(|e| panic!("test spec invalid: {e}"));
    engine.check(&monitor).await
}

/// Validates and checks a spec with the system resolver and clock.
pub async fn run(spec: TcpMonitor) -> CheckResult {
    run_with(&Engine::new(), spec).await
}

/// An engine whose resolver knows only `names`.
pub fn engine_with_names(names: &[(&str, &[IpAddr])]) -> Engine {
    let resolver = names
        .iter()
        .fold(StaticResolver::new(), |r, (name, ips)| r.with(name, ips));
    Engine::new().with_resolver(resolver)
}

/// A clock that measures real time but records retry waits instead of sleeping.
#[derive(Clone, Default)]
pub struct RecordingClock {
    pub waits: Arc<Mutex<Vec<Duration>>>,
}

impl Clock for RecordingClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
    fn wall(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        self.waits.lock().unwrap().push(duration);
        Box::pin(std::future::ready(()))
    }
}

/// The error kind of a result, or `None` when it has no error.
pub fn kind(r: &CheckResult) -> Option<ErrorKind> {
    r.error.as_ref().map(|e| e.kind)
}
