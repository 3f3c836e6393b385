//! One slow monitor must not starve the rest (issue 14, finding 7): checks that may run
//! long hold at most half of an agent's permits, a new assignment cancels the checks in
//! flight of the monitors it removes, and the checks in flight share a memory budget.
//! Asserted by counts of connections and results, never by wall-clock speed.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use monitor_core::prelude::*;
use monitor_testing::{Script, ScriptedServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::agent::{Fake, Lines, assignment, monitor, options, phase_in, start, temp_dir, until};

/// Counts of a gauge server's connections.
#[derive(Default)]
struct Counts {
    accepted: AtomicUsize,
    open: AtomicUsize,
    max_open: AtomicUsize,
    closed: AtomicUsize,
}

/// A loopback server that counts its connections: silent ones hold each until the client
/// goes; replying ones wait, send a line and close.
struct Gauge {
    port: u16,
    counts: Arc<Counts>,
    task: tokio::task::JoinHandle<()>,
}

impl Gauge {
    async fn start(reply_after: Option<Duration>) -> Gauge {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let counts = Arc::new(Counts::default());
        let shared = counts.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let c = shared.clone();
                c.accepted.fetch_add(1, Ordering::SeqCst);
                let open = c.open.fetch_add(1, Ordering::SeqCst) + 1;
                c.max_open.fetch_max(open, Ordering::SeqCst);
                tokio::spawn(async move {
                    match reply_after {
                        Some(wait) => {
                            tokio::time::sleep(wait).await;
                            // Counted closed before the client can see the line.
                            c.open.fetch_sub(1, Ordering::SeqCst);
                            let _ = stream.write_all(b"ready\r\n").await;
                            let _ = stream.shutdown().await;
                            c.closed.fetch_add(1, Ordering::SeqCst);
                            return;
                        }
                        None => {
                            // Never answer; notice when the client goes.
                            let mut buf = [0_u8; 1024];
                            while matches!(stream.read(&mut buf).await, Ok(n) if n > 0) {}
                        }
                    }
                    c.open.fetch_sub(1, Ordering::SeqCst);
                    c.closed.fetch_add(1, Ordering::SeqCst);
                });
            }
        });
        Gauge { port, counts, task }
    }

    fn get(&self, which: fn(&Counts) -> &AtomicUsize) -> usize {
        which(&self.counts).load(Ordering::SeqCst)
    }
}

impl Drop for Gauge {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A monitor of the silent server that may wait nearly 5 minutes for an answer.
fn slow(i: usize, port: u16) -> TcpMonitor {
    TcpMonitor::new(format!("slow-{i}"), "127.0.0.1", port)
        .frequency(Frequency::S10)
        .timeouts(5_000, 290_000, 290_000)
        .expect("never sent")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_monitors_hold_half_the_permits_and_removed_ones_are_cancelled() {
    let silent = Gauge::start(None).await;
    let live = ScriptedServer::start(Script::new()).await.unwrap();
    let phase = phase_in(Duration::from_millis(1500));
    // The slow monitors come first, so without a share they would take every permit.
    let mut all: Vec<(TcpMonitor, u64, u64, u64)> = (0..4)
        .map(|i| (slow(i, silent.port), 1, 0, phase))
        .collect();
    let fast: Vec<(TcpMonitor, u64, u64, u64)> = (0..4)
        .map(|i| (monitor(&format!("fast-{i}"), &live), 1, 0, phase))
        .collect();
    all.extend(fast.iter().cloned());
    let fake = Fake::start(assignment("e1", &all)).await;
    let dir = temp_dir("starve");
    let lines = Lines::default();
    let mut o = options(&fake.url(), &dir, lines.logger("starve"));
    o.concurrency = 4;
    o.drain_timeout = Duration::from_secs(2);
    let agent = start(o);
    let checked = |n: usize| (0..4).all(|i| fake.stored_of(&format!("fast-{i}")).len() >= n);
    until(
        Duration::from_secs(30),
        "every fast monitor is checked",
        || checked(1),
    )
    .await;
    until(Duration::from_secs(10), "two slow checks wait", || {
        silent.get(|c| &c.accepted) == 2
    })
    .await;
    // Four slow monitors, a share of 2 of the 4 permits: two wait on the server, two for
    // the share.
    assert_eq!(silent.get(|c| &c.max_open), 2);
    assert_eq!(silent.get(|c| &c.closed), 0);

    // A deploy removes the slow monitors: their checks stop at once.
    fake.set(assignment("e2", &fast));
    until(
        Duration::from_secs(20),
        "the slow checks are cancelled",
        || silent.get(|c| &c.closed) == 2,
    )
    .await;
    assert!(
        lines.any("cancelled 4 checks in flight of monitors removed or changed"),
        "{:?}",
        lines.all()
    );
    // The fast monitors keep being checked, and the removed ones never report.
    until(
        Duration::from_secs(30),
        "the fast monitors' next round",
        || checked(2),
    )
    .await;
    agent.stop().await;
    assert_eq!(
        silent.get(|c| &c.accepted),
        2,
        "a removed monitor ran again"
    );
    for i in 0..4 {
        assert!(fake.stored_of(&format!("slow-{i}")).is_empty());
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn checks_share_the_memory_budget() {
    const MIB: u32 = 1024 * 1024;
    let server = Gauge::start(Some(Duration::from_millis(200))).await;
    let engine = Engine::new().with_memory_budget(u64::from(MIB));
    // Four monitors that each need the whole budget run one at a time, whatever the
    // concurrency.
    let whole: Vec<ValidMonitor> = (0..4)
        .map(|i| {
            TcpMonitor::new(format!("m{i}"), "127.0.0.1", server.port)
                .max_response_bytes(MIB)
                .expect("ready")
                .validate()
                .unwrap()
        })
        .collect();
    let results = monitor_core::run_all(&engine, &whole, 4).await;
    for r in &results {
        assert_eq!(r.status, Status::Passed, "{:?}", r.error);
    }
    assert_eq!(server.get(|c| &c.accepted), 4);
    assert_eq!(server.get(|c| &c.max_open), 1);
    // One whose cap alone is over the budget is refused without connecting.
    let over = TcpMonitor::new("over", "127.0.0.1", server.port)
        .max_response_bytes(2 * MIB)
        .validate()
        .unwrap();
    let r = engine.check(&over).await;
    let e = r.error.as_ref().expect("an error");
    assert_eq!(e.kind, ErrorKind::Config);
    assert!(
        e.message.contains("max_response_bytes") && e.message.contains("--memory-budget"),
        "{}",
        e.message
    );
    assert_eq!(server.get(|c| &c.accepted), 4);
}
