//! Identity and target keys: the doc comment gives the name and description, explicit
//! keys override it, and the id is derived from the module path unless given.
#![deny(warnings)]
#![forbid(unsafe_code)]

use monitor_core::prelude::*;
use monitor_core::registry::{monitors, validate_all};

/// Redis cache answers PING. Checked from every region.
///
/// Owned by the platform team.
#[tcp_monitor(host = "cache.internal", port = 6379)]
fn redis_cache(m: TcpMonitor) -> TcpMonitor {
    m
}

/// This doc comment is neither the name nor the description.
#[tcp_monitor(
    id = "db-primary",
    name = "Primary database",
    description = "Accepts **connections**.",
    tags = ["db", "prod"],
    group = "databases",
    host = "10.0.0.5",
    port = 5432,
    ip_family = "ipv4",
    should_fail = false,
)]
pub fn database(m: TcpMonitor) -> TcpMonitor {
    m
}

mod legacy {
    use monitor_core::prelude::*;

    #[tcp_monitor(host = "::1", port = 23, ip_family = "ipv6", should_fail = true)]
    pub(crate) fn telnet(m: TcpMonitor) -> TcpMonitor {
        m.tag("legacy")
    }
}

fn main() {
    let declared = monitors().expect("no registry errors");
    let ids: Vec<&str> = declared.iter().map(|d| d.monitor.id.as_str()).collect();
    assert_eq!(ids, ["db-primary", "legacy::telnet", "redis_cache"]);

    let db = &declared[0].monitor;
    assert_eq!(db.name, "Primary database");
    assert_eq!(db.description.as_deref(), Some("Accepts **connections**."));
    assert_eq!(db.tags, ["db", "prod"]);
    assert_eq!(db.group.as_deref(), Some("databases"));
    assert_eq!(
        (db.target.host.as_str(), db.target.port, db.target.ip_family),
        ("10.0.0.5", 5432, IpFamily::Ipv4)
    );
    assert!(!db.should_fail);

    let telnet = &declared[1];
    assert_eq!(
        telnet.monitor.name, "legacy::telnet",
        "no doc, no name: the id"
    );
    assert_eq!(telnet.monitor.description, None);
    assert_eq!(telnet.monitor.target.ip_family, IpFamily::Ipv6);
    assert!(telnet.monitor.should_fail);
    assert_eq!(
        telnet.monitor.tags,
        ["legacy"],
        "the function refines the monitor"
    );
    assert!(
        telnet.function.ends_with("::legacy::telnet"),
        "{}",
        telnet.function
    );

    let redis = &declared[2];
    assert_eq!(redis.monitor.name, "Redis cache answers PING");
    assert_eq!(
        redis.monitor.description.as_deref(),
        Some("Redis cache answers PING. Checked from every region.\n\nOwned by the platform team.")
    );
    assert_eq!(redis.monitor.group, None);
    assert_eq!(redis.monitor.target.ip_family, IpFamily::Any);
    assert!(redis.location.file.ends_with("identity_and_target.rs"));
    assert_eq!(redis.location.line, 12, "the line of the attribute");

    assert_eq!(validate_all().expect("all valid").len(), 3);
}
