//! `maintenance!` declares weekly and one-off windows, several in a binary, listed by id
//! with the file and line of each.
#![deny(warnings)]
#![forbid(unsafe_code)]

use monitor_core::model::maintenance::{Weekday, WindowSchedule};
use monitor_core::prelude::*;
use monitor_core::registry::{check_windows, maintenance};

#[tcp_monitor(host = "db.internal", port = 5432, id = "pg-primary", tags = ["db"])]
fn primary(m: TcpMonitor) -> TcpMonitor {
    m
}

maintenance! {
    id = "xmas-freeze",
    tags = ["db"],
    start = "2026-12-24T23:00:00+01:00",
    end = "2026-12-25T02:00:00Z",
}

monitor_core::maintenance! {
    id = "db-vacuum", name = "Weekly database vacuum",
    tags = ["db"], monitors = ["pg-primary"],
    days = [saturday, sunday], start = "23:30", end = "00:30",
}

fn main() {
    let windows = maintenance().expect("no duplicate window");
    let ids: Vec<&str> = windows.iter().map(|w| w.window.id.as_str()).collect();
    assert_eq!(ids, ["db-vacuum", "xmas-freeze"]);
    let vacuum = &windows[0].window;
    assert_eq!(vacuum.display_name(), "Weekly database vacuum");
    assert_eq!(vacuum.monitors, ["pg-primary"]);
    assert_eq!(
        vacuum.schedule,
        WindowSchedule::Weekly {
            days: vec![Weekday::Saturday, Weekday::Sunday],
            start: "23:30".to_owned(),
            end: "00:30".to_owned(),
        }
    );
    assert!(windows[0].location.to_string().ends_with("maintenance.rs:22"));
    let WindowSchedule::Once { start, end } = &windows[1].window.schedule else {
        panic!("a one-off window");
    };
    assert_eq!((start.unix_timestamp(), end.unix_timestamp()), (1798149600, 1798164000));
    assert_eq!(windows[1].window.name, None);
    let monitors: Vec<TcpMonitor> = monitor_core::registry::monitors()
        .expect("one monitor")
        .into_iter()
        .map(|d| d.monitor)
        .collect();
    assert_eq!(check_windows(&windows, &monitors), Ok(Vec::new()));
}
