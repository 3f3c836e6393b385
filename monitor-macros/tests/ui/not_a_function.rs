use monitor_core::prelude::*;

#[tcp_monitor(host = "cache.internal", port = 6379)]
struct Redis;

#[tcp_monitor(host = "cache.internal", port = 6379)]
const REDIS: u32 = 1;

fn main() {}
