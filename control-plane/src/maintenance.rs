//! Maintenance windows applied (issue 21): which stored results fall in a window (marked
//! at ingestion from the current version's declared windows and the project's ad-hoc
//! ones), which window is open now for a monitor, the list the API answers, and the
//! helpers both stores use for ad-hoc windows (their end, ending them early, ordering).

use monitor_spec::maintenance::{ListedWindow, MaintenanceWindow, WindowList, WindowSchedule};
use time::OffsetDateTime;

use crate::deployed::Deployed;
use crate::status::unix_us;
use crate::store::NewResult;

/// The most ad-hoc windows a project may have open or upcoming at once.
pub const MAX_OPEN_AD_HOC: usize = 64;

/// The prefix of a generated ad-hoc window id.
pub const AD_HOC_PREFIX: &str = "adhoc-";

/// A new ad-hoc window id: [`AD_HOC_PREFIX`] and 16 random hex digits.
pub fn new_id() -> String {
    format!("{AD_HOC_PREFIX}{}", crate::agents::triggers::new_id())
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
