//! Maintenance windows applied (issue 21): which stored results fall in a window (marked
//! at ingestion from the current version's declared windows and the project's ad-hoc
//! ones), which window is open now for a monitor, the list the API answers, and the
//! helpers both stores use for ad-hoc windows (their end, ending them early, ordering).

use monitor_spec::maintenance::{ListedWindow, MaintenanceWindow, WindowList, WindowSchedule};
use time::OffsetDateTime;

use crate::deployed::Deployed;
use crate::store::{NewResult, StoreError};

/// The most ad-hoc windows a project may have open or upcoming at once.
pub const MAX_OPEN_AD_HOC: usize = 64;

/// The prefix of a generated ad-hoc window id.
pub const AD_HOC_PREFIX: &str = "adhoc-";

/// A new ad-hoc window id: [`AD_HOC_PREFIX`] and 16 random hex digits.
pub fn new_id() -> String {
    format!("{AD_HOC_PREFIX}{}", crate::agents::triggers::new_id())
}

/// Unix microseconds of an instant (as `status::unix_us`, which imports this module).
fn unix_us(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos().div_euclid(1000)).unwrap_or(i64::MAX)
}

/// The instant of unix microseconds (the epoch when out of range).
pub fn instant_of(us: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// Marks the results that started in one of the `declared` or `ad_hoc` windows covering
/// their monitor (its tags read from `deployed`, sorted by id; a monitor no longer
/// deployed is matched by id). Costs one pass over the windows per result, and nothing
/// without windows.
pub fn mark(
    rows: &mut [NewResult],
    deployed: &[Deployed],
    declared: &[MaintenanceWindow],
    ad_hoc: &[MaintenanceWindow],
) {
    if declared.is_empty() && ad_hoc.is_empty() {
        return;
    }
    for r in rows {
        let tags: &[String] = deployed
            .binary_search_by(|d| d.id().cmp(&r.monitor))
            .map_or(&[], |i| &deployed[i].spec.tags);
        let at = instant_of(r.started_us);
        r.in_maintenance = declared
            .iter()
            .chain(ad_hoc)
            .any(|w| w.active(&r.monitor, tags, at));
    }
}

/// The window open at `now` for a monitor with this id and tags (the one closing last,
/// when several are), with its end.
pub fn open_for<'a>(
    windows: impl IntoIterator<Item = &'a MaintenanceWindow>,
    id: &str,
    tags: &[String],
    now: OffsetDateTime,
) -> Option<(&'a MaintenanceWindow, OffsetDateTime)> {
    windows
        .into_iter()
        .filter(|w| w.covers(id, tags))
        .filter_map(|w| w.open_until(now).map(|end| (w, end)))
        .max_by_key(|(_, end)| *end)
}

/// The windows `GET /v1/projects/{project}/maintenance` lists at `now`: the declared and
/// ad-hoc ones that are open or will open again, open ones first, then by start and id.
pub fn list(
    declared: &[MaintenanceWindow],
    ad_hoc: &[MaintenanceWindow],
    now: OffsetDateTime,
) -> WindowList {
    let mut windows: Vec<ListedWindow> = declared
        .iter()
        .filter_map(|w| ListedWindow::at(w, false, now))
        .chain(ad_hoc.iter().filter_map(|w| ListedWindow::at(w, true, now)))
        .collect();
    windows.sort_by(|a, b| {
        (!a.active, a.start, &a.window.id).cmp(&(!b.active, b.start, &b.window.id))
    });
    WindowList { windows }
}

/// An ad-hoc window as both stores keep it: its JSON.
pub(crate) fn to_json(window: &MaintenanceWindow) -> Result<String, StoreError> {
    serde_json::to_string(window).map_err(|e| StoreError::Corrupt(format!("window json: {e}")))
}

/// A stored ad-hoc window from its JSON; `id` names it in the error.
pub(crate) fn of_json(id: &str, text: &str) -> Result<MaintenanceWindow, StoreError> {
    serde_json::from_str(text)
        .map_err(|e| StoreError::Corrupt(format!("maintenance window `{id}`: {e}")))
}

/// The end of a one-off window, unix microseconds (`i64::MAX` for a weekly one, which an
/// ad-hoc window never is).
pub fn end_us(window: &MaintenanceWindow) -> i64 {
    match &window.schedule {
        WindowSchedule::Once { end, .. } => unix_us(*end),
        WindowSchedule::Weekly { .. } => i64::MAX,
    }
}

/// Sorts windows by start, then id.
pub fn sort(windows: &mut [MaintenanceWindow]) {
    windows.sort_by(|a, b| {
        let start = |w: &MaintenanceWindow| match &w.schedule {
            WindowSchedule::Once { start, .. } => unix_us(*start),
            WindowSchedule::Weekly { .. } => i64::MIN,
        };
        (start(a), &a.id).cmp(&(start(b), &b.id))
    });
}

/// Moves a one-off window's end to `now_us` (to its start when it has not opened yet)
/// when it ends later; whether it changed.
pub fn ended(window: &mut MaintenanceWindow, now_us: i64) -> bool {
    let WindowSchedule::Once { start, end } = &mut window.schedule else {
        return false;
    };
    if unix_us(*end) <= now_us {
        return false;
    }
    let now = instant_of(now_us).max(*start);
    *end = now;
    true
}

#[cfg(test)]
mod tests {
    use monitor_spec::TcpMonitor;
    use monitor_spec::bundle::Bundle;
    use monitor_spec::maintenance::Weekday;

    use super::*;
    use crate::monitor_set::MonitorSet;
    use crate::store::ResultFacts;

    /// 2026-01-05T00:00:00Z, a Monday, unix microseconds.
    const T: i64 = 1_767_571_200_000_000;
    const HOUR: i64 = 3_600_000_000;

    fn once(id: &str, tags: &[&str], monitors: &[&str], from: i64, to: i64) -> MaintenanceWindow {
        MaintenanceWindow {
            id: id.to_owned(),
            name: None,
            tags: tags.iter().map(|t| (*t).to_owned()).collect(),
            monitors: monitors.iter().map(|m| (*m).to_owned()).collect(),
            schedule: WindowSchedule::Once {
                start: instant_of(from),
                end: instant_of(to),
            },
        }
    }

    fn row(monitor: &str, started_us: i64) -> NewResult {
        NewResult {
            id: format!("{monitor}/eu/1"),
            monitor: monitor.to_owned(),
            location: "eu".to_owned(),
            agent: "a".to_owned(),
            tick: 1,
            status: monitor_spec::Status::Failed,
            started_us,
            received_us: started_us,
            facts: ResultFacts::default(),
            json: String::new(),
            in_maintenance: false,
        }
    }

    #[test]
    fn results_are_marked_by_tag_id_and_start() {
        let deployed = crate::deployed::parse(
            &MonitorSet::from_bundle(&Bundle::new(vec![
                TcpMonitor::new("db", "db.internal", 5432).tag("db"),
                TcpMonitor::new("cache", "cache.internal", 6379),
            ]))
            .unwrap(),
        )
        .unwrap();
        let declared = [once("backup", &["db"], &[], T, T + HOUR)];
        let ad_hoc = [once(
            "adhoc-1",
            &[],
            &["cache", "gone"],
            T + 2 * HOUR,
            T + 3 * HOUR,
        )];
        let check = |monitor: &str, at: i64, expected: bool| {
            let mut rows = [row(monitor, at)];
            mark(&mut rows, &deployed, &declared, &ad_hoc);
            assert_eq!(rows[0].in_maintenance, expected, "{monitor} at {at}");
        };
        check("db", T - 1, false);
        check("db", T, true);
        check("db", T + HOUR - 1, true);
        check("db", T + HOUR, false);
        check("cache", T, false);
        check("cache", T + 2 * HOUR, true);
        // No longer deployed: matched by id only.
        check("gone", T + 2 * HOUR, true);
        check("db", T + 2 * HOUR, false);
        // Without windows nothing is marked.
        let mut rows = [row("db", T)];
        mark(&mut rows, &deployed, &[], &[]);
        assert!(!rows[0].in_maintenance);
    }

    #[test]
    fn the_list_has_open_windows_first_then_by_start() {
        let now = instant_of(T + HOUR / 2);
        let weekly = MaintenanceWindow {
            id: "weekly".to_owned(),
            name: None,
            tags: vec!["db".to_owned()],
            monitors: Vec::new(),
            schedule: WindowSchedule::Weekly {
                days: vec![Weekday::Tuesday],
                start: "02:00".to_owned(),
                end: "03:00".to_owned(),
            },
        };
        let declared = [
            weekly,
            once("past", &["db"], &[], T - 2 * HOUR, T - HOUR),
            once("open", &["db"], &[], T, T + HOUR),
        ];
        let ad_hoc = [once("adhoc-soon", &[], &["x"], T + HOUR, T + 2 * HOUR)];
        let list = list(&declared, &ad_hoc, now);
        let got: Vec<(&str, bool, bool)> = list
            .windows
            .iter()
            .map(|w| (w.window.id.as_str(), w.ad_hoc, w.active))
            .collect();
        assert_eq!(
            got,
            [
                ("open", false, true),
                ("adhoc-soon", true, false),
                ("weekly", false, false)
            ]
        );
        assert_eq!(list.windows[2].start, instant_of(T + 26 * HOUR));
        let (w, end) = open_for(&declared, "db", &["db".to_owned()], now).unwrap();
        assert_eq!((w.id.as_str(), end), ("open", instant_of(T + HOUR)));
        assert!(open_for(&declared, "x", &[], now).is_none());
    }

    #[test]
    fn ending_a_window_moves_its_end_to_now_or_its_start() {
        let check = |now: i64, expected: Option<(i64, i64)>| {
            let mut w = once("w", &["db"], &[], T, T + HOUR);
            let changed = ended(&mut w, now);
            let after = match w.schedule {
                WindowSchedule::Once { start, end } => (unix_us(start), unix_us(end)),
                WindowSchedule::Weekly { .. } => unreachable!(),
            };
            assert_eq!(changed.then_some(after), expected, "at {now}");
            assert_eq!(end_us(&w), after.1);
        };
        check(T + HOUR / 2, Some((T, T + HOUR / 2)));
        check(T - HOUR, Some((T, T)));
        check(T + HOUR, None);
        check(T + 2 * HOUR, None);
    }
}
