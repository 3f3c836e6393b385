use monitor_core::prelude::*;

monitor_defaults! {
    frequency = "5m",
    host = "cache.internal",
    alert_channel = ["ops"],
}

fn main() {}
