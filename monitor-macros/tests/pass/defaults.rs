//! `monitor_defaults!` fills what a monitor leaves unsaid, and only that.
#![deny(warnings)]
#![forbid(unsafe_code)]

use monitor_core::prelude::*;
use monitor_core::registry::validate_all;
use monitor_core::{Backoff, Frequency};

monitor_defaults! {
    frequency = "5m",
    locations = ["eu-west-1"],
    private_locations = ["office"],
    tags = ["prod"],
    retry = fixed(backoff = "30s", max_retries = 2),
    alert_channels = ["ops"],
    expiry_warn_days = 40,
    expiry_fail_days = 10,
}

#[tcp_monitor(host = "web.internal", port = 443, tls = "direct")]
fn silent(m: TcpMonitor) -> TcpMonitor {
    m
}

#[tcp_monitor(
    host = "web.internal",
    port = 443,
    tls = "direct",
    frequency = "1m",
    locations = [],
    tags = ["web"],
    retry = none(),
    alert_channels = ["pager"],
    expiry_warn_days = 14,
    expiry_fail_days = 3,
)]
fn chatty(m: TcpMonitor) -> TcpMonitor {
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
    let silent = get("silent");
    assert_eq!(silent.frequency, Frequency::M5);
    assert_eq!(silent.locations, ["eu-west-1"]);
    assert_eq!(silent.private_locations, ["office"]);
    assert_eq!(silent.tags, ["prod"]);
    assert_eq!(
        silent.retry,
        RetryStrategy::Fixed(Backoff {
            base_backoff_seconds: 30,
            max_retries: 2,
            max_duration_seconds: 600,
            same_region: true
        })
    );
    assert_eq!(silent.alert_channels, ["ops"]);
    assert_eq!(
        (silent.tls.expiry_warn_days, silent.tls.expiry_fail_days),
        (40, 10)
    );

    let chatty = get("chatty");
    assert_eq!(chatty.frequency, Frequency::M1);
    assert!(
        chatty.locations.is_empty(),
        "an explicit empty list stays empty"
    );
    assert_eq!(chatty.private_locations, ["office"], "not set: the default");
    assert_eq!(chatty.tags, ["web"]);
    assert_eq!(chatty.retry, RetryStrategy::None);
    assert_eq!(chatty.alert_channels, ["pager"]);
    assert_eq!(
        (chatty.tls.expiry_warn_days, chatty.tls.expiry_fail_days),
        (14, 3)
    );
}
