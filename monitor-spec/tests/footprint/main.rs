//! The memory a monitor holds, validated and shelved: heap bytes per monitor of a bundle
//! read with `Bundle::read_valid`, as the C allocator counts them, so that a million
//! monitors stay within what `watch` may hold.

#![allow(clippy::print_stderr)]

use monitor_spec::bundle::Bundle;
use monitor_spec::shelf::Shelf;
use monitor_spec::spec::{Frequency, TcpMonitor};

/// The C allocator's bytes in use, chunk headers included.
fn held() -> isize {
    monitor_sys::heap_in_use().map_or(0, |n| n as isize)
}

/// The bundle of `count` PING monitors the bench's `gen-bundle` writes.
fn bench_bundle(count: usize) -> String {
    let monitors: Vec<TcpMonitor> = (0..count)
        .map(|i| {
            TcpMonitor::new(format!("sched-{i:06}"), "127.0.0.1", 6379)
                .name(format!("scheduled PING {i}"))
                .tag("bench")
                .send("PING\\r\\n")
                .expect("+PONG")
                .frequency(Frequency::M1)
        })
        .collect();
    Bundle::new(monitors).to_json()
}

#[test]
fn a_shelved_monitor_holds_a_fifth_of_a_validated_one() {
    const COUNT: usize = 20_000;
    let text = bench_bundle(COUNT);
    let before = held();
    let valid = Bundle::read_valid(&text).expect("the bundle is valid");
    let validated = (held() - before) as f64 / COUNT as f64;
    let before = held();
    let mut shelf = Shelf::new();
    for m in &valid {
        assert!(Shelf::worth_shelving(m));
        shelf.push(m.spec()).expect("shelved");
    }
    shelf.shrink_to_fit();
    let shelved = (held() - before) as f64 / COUNT as f64;
    eprintln!(
        "heap bytes per monitor: {validated:.0} validated ({} inline in its spec), {shelved:.0} shelved",
        std::mem::size_of::<TcpMonitor>()
    );
    assert!(shelved * 4.0 < validated, "{shelved} against {validated}");
    assert_eq!(shelf.len(), COUNT);
    // What a check pays to rebuild its monitor (printed, not asserted).
    let t0 = std::time::Instant::now();
    for i in 0..COUNT {
        assert!(shelf.get(i).is_ok());
    }
    eprintln!(
        "rebuilding a shelved monitor: {:.2} µs",
        t0.elapsed().as_secs_f64() * 1e6 / COUNT as f64
    );
    let back = shelf.get(COUNT - 1).expect("rebuilt");
    assert_eq!(back.spec(), valid[COUNT - 1].spec());
}
