//! Scheduling keys and every retry strategy.
#![deny(warnings)]
#![forbid(unsafe_code)]

use monitor_core::prelude::*;
use monitor_core::registry::validate_all;
use monitor_core::{Backoff, Frequency};

#[tcp_monitor(
    host = "db.internal",
    port = 5432,
    frequency = "30s",
    locations = ["eu-west-1", "us-east-1"],
    private_locations = ["office"],
    alert_channels = ["ops", "oncall"],
    activated = false,
    muted = true,
    run_parallel = true,
    test_only = true,
    retry = none(),
)]
fn scheduled(m: TcpMonitor) -> TcpMonitor {
    m
}

#[tcp_monitor(host = "db.internal", port = 5432, frequency = "24h", retry = single_retry(backoff = "30s", same_region = false))]
fn single(m: TcpMonitor) -> TcpMonitor {
    m
}

#[tcp_monitor(host = "db.internal", port = 5432, retry = fixed(backoff = "30s", max_retries = 3, max_duration = "10m", same_region = true))]
fn fixed(m: TcpMonitor) -> TcpMonitor {
    m
}

#[tcp_monitor(host = "db.internal", port = 5432, retry = linear(backoff = "10s", max_retries = 2))]
fn linear(m: TcpMonitor) -> TcpMonitor {
    m
}

#[tcp_monitor(host = "db.internal", port = 5432, retry = exponential(max_retries = 3, backoff = "5s", max_duration = "5m", same_region = false))]
fn exponential(m: TcpMonitor) -> TcpMonitor {
    m
}

fn main() {
    let valid = validate_all().expect("all valid");
    let get = |id: &str| {
        valid
            .iter()
            .find(|(d, _)| d.monitor.id == id)
            .unwrap_or_else(|| panic!("{id}"))
            .0
            .monitor
            .clone()
    };
    let m = get("scheduled");
    assert_eq!(m.frequency, Frequency::S30);
    assert_eq!(m.locations, ["eu-west-1", "us-east-1"]);
    assert_eq!(m.private_locations, ["office"]);
    assert_eq!(m.alert_channels, ["ops", "oncall"]);
    assert_eq!(
        (m.activated, m.muted, m.run_parallel, m.test_only),
        (false, true, true, true)
    );
    assert_eq!(m.retry, RetryStrategy::None);

    let m = get("single");
    assert_eq!(m.frequency, Frequency::H24);
    assert_eq!(
        m.retry,
        RetryStrategy::SingleRetry {
            base_backoff_seconds: 30,
            same_region: false
        }
    );
    assert_eq!(get("fixed").frequency, Frequency::default());
    assert_eq!(
        get("fixed").retry,
        RetryStrategy::Fixed(Backoff {
            base_backoff_seconds: 30,
            max_retries: 3,
            max_duration_seconds: 600,
            same_region: true
        })
    );
    assert_eq!(
        get("linear").retry,
        RetryStrategy::Linear(Backoff {
            base_backoff_seconds: 10,
            max_retries: 2,
            max_duration_seconds: 600,
            same_region: true
        })
    );
    assert_eq!(
        get("exponential").retry,
        RetryStrategy::Exponential(Backoff {
            base_backoff_seconds: 5,
            max_retries: 3,
            max_duration_seconds: 300,
            same_region: false
        })
    );
}
