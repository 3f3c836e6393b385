//! What the store reports of its own size: the rows and bytes of each table, grouped by
//! what they hold (the bench's bytes per result come from it).

use control_plane::Store;
use control_plane::store::{Holds, NewResult, ResultFacts, Retention, TableUsage};
use monitor_spec::Status;

/// 2026-01-01T00:00:00Z, unix microseconds.
const T0: i64 = 1_767_225_600_000_000;
const MINUTE: i64 = 60_000_000;

fn of(usage: &[TableUsage], holds: Holds) -> (u64, u64) {
    usage
        .iter()
        .filter(|t| t.holds == holds)
        .fold((0, 0), |(r, b), t| (r + t.rows, b + t.bytes))
}

fn usage_counts_rows_and_bytes_by_what_tables_hold(store: &dyn Store) {
    let empty = store.usage().unwrap();
    assert_eq!(of(&empty, Holds::RawResults).0, 0);
    assert!(
        empty.iter().any(|t| t.holds == Holds::Other && t.bytes > 0),
        "{empty:?}"
    );
    let batch: Vec<NewResult> = (0..120)
        .map(|tick| NewResult {
            id: format!("a/eu/{tick}"),
            monitor: "a".to_owned(),
            location: "eu".to_owned(),
            agent: "agent-1".to_owned(),
            tick,
            status: Status::Passed,
            started_us: T0 + tick * MINUTE,
            received_us: T0 + tick * MINUTE + 1_000,
            facts: ResultFacts {
                total_us: 1_500,
                ..ResultFacts::default()
            },
            json: "{}".to_owned(),
            in_maintenance: false,
        })
        .collect();
    store.insert_results("p", &batch).unwrap();
    let (rows, bytes) = of(&store.usage().unwrap(), Holds::RawResults);
    assert_eq!(rows, 120);
    assert!(bytes > 0);
    // Two closed hours roll up into two hourly rows, and their day into one daily row.
    let keep = Retention::default();
    for _ in 0..100 {
        if !store.maintain(T0 + 2 * 86_400_000_000, &keep).unwrap().more {
            break;
        }
    }
    let usage = store.usage().unwrap();
    assert_eq!(of(&usage, Holds::HourlyRollups).0, 2);
    assert_eq!(of(&usage, Holds::DailyRollups).0, 1);
    assert!(
        usage.windows(2).all(|w| w[0].table < w[1].table),
        "{usage:?}"
    );
}

crate::store_cases!(usage_counts_rows_and_bytes_by_what_tables_hold);
