//! Maintenance windows: which monitors (by tag or id) are under maintenance, and when
//! (once, between two instants, or every week on some days between two UTC times of
//! day). Carried in the [`crate::Bundle`] beside the monitors; the intent (issue 21) is
//! that checks in a window still run and are stored but are marked `in_maintenance` and
//! left out of uptime, which the control plane does not do yet (it refuses bundles with
//! windows). Pure: [`MaintenanceWindow::active`] takes the instant to look at.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use crate::rules::{check_id, check_tag, check_text};
use crate::validate::ValidationError;

/// The most maintenance windows one bundle may declare.
pub const MAX_WINDOWS: usize = 256;
/// The most tags one window may select.
pub const MAX_WINDOW_TAGS: usize = 64;
/// The most monitor ids one window may select.
pub const MAX_WINDOW_MONITORS: usize = 256;
/// The longest a one-off window may last: 7 days.
pub const MAX_ONCE_SPAN: Duration = Duration::days(7);
/// The most characters of a window's name.
pub const MAX_WINDOW_NAME_CHARS: usize = 200;

/// One maintenance window: a selector (tags and monitor ids, at least one entry in all)
/// and a schedule. A monitor is covered when its id is listed or it has a listed tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MaintenanceWindow {
    /// Stable id, unique in the bundle: 1 to 128 letters, digits and `-_.:/`.
    pub id: String,
    /// Name shown on the status pages; the id when absent. At most 200 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Monitors with any of these tags are covered (at most 64).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub tags: Vec<String>,
    /// Monitors with these ids are covered (at most 256).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256))]
    pub monitors: Vec<String>,
    /// When the window is open.
    pub schedule: WindowSchedule,
}

/// When a window is open.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum WindowSchedule {
    /// Once, from `start` (included) to `end` (excluded), at most 7 days.
    Once {
        /// Start, RFC 3339.
        #[serde(with = "time::serde::rfc3339")]
        #[schemars(with = "String")]
        start: OffsetDateTime,
        /// End, RFC 3339, after `start`.
        #[serde(with = "time::serde::rfc3339")]
        #[schemars(with = "String")]
        end: OffsetDateTime,
    },
    /// Every week on `days`, from `start` to `end` (UTC times of day `HH:MM`); an `end`
    /// before `start` runs past midnight into the next day, so a window lasts less than
    /// 24 hours.
    Weekly {
        /// The days the window opens on (1 to 7, none twice).
        #[schemars(length(min = 1, max = 7))]
        days: Vec<Weekday>,
        /// Opening time of day, UTC, `HH:MM`.
        start: String,
        /// Closing time of day, UTC, `HH:MM`, not equal to `start`.
        end: String,
    },
}

/// A day of the week.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
#[allow(missing_docs)]
pub enum Weekday {
    Monday,
    Tuesday,
    Wednesday,
    Thursday,
    Friday,
    Saturday,
    Sunday,
}

impl Weekday {
    /// Days since Monday.
    fn index(self) -> i64 {
        self as i64
    }
}

const WEEK: i64 = 7 * 86_400;

/// Seconds since midnight of an `HH:MM` time of day.
fn time_of_day(text: &str) -> Result<i64, String> {
    let bad = || {
        format!(
            "`{}` is not a time of day `HH:MM` (00:00 to 23:59)",
            text.escape_default()
        )
    };
    let (h, m) = text.split_once(':').ok_or_else(bad)?;
    if h.len() != 2 || m.len() != 2 || !(h.bytes().chain(m.bytes())).all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let (h, m): (i64, i64) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if h > 23 || m > 59 {
        return Err(bad());
    }
    Ok(h * 3600 + m * 60)
}

impl MaintenanceWindow {
    /// The name to show: `name`, or the id.
    pub fn display_name(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.id)
    }

    /// Whether the window covers a monitor with this id and these tags.
    pub fn covers(&self, id: &str, tags: &[String]) -> bool {
        self.monitors.iter().any(|m| m == id) || self.tags.iter().any(|t| tags.contains(t))
    }

    /// Whether the window is open at `at` for a monitor with this id and these tags.
    pub fn active(&self, id: &str, tags: &[String], at: OffsetDateTime) -> bool {
        self.covers(id, tags) && self.open_until(at).is_some()
    }

    /// When the window opened at `at` closes, or `None` when it is not open at `at`.
    /// An invalid weekly window is never open.
    pub fn open_until(&self, at: OffsetDateTime) -> Option<OffsetDateTime> {
        match &self.schedule {
            WindowSchedule::Once { start, end } => (*start <= at && at < *end).then_some(*end),
            WindowSchedule::Weekly { days, start, end } => {
                let (start, end) = (time_of_day(start).ok()?, time_of_day(end).ok()?);
                let span = (end - start).rem_euclid(86_400);
                if span == 0 {
                    return None;
                }
                let at = at.to_offset(time::UtcOffset::UTC);
                let since_monday = i64::from(at.weekday().number_days_from_monday()) * 86_400
                    + i64::from(at.hour()) * 3600
                    + i64::from(at.minute()) * 60
                    + i64::from(at.second());
                days.iter()
                    .map(|d| (since_monday - d.index() * 86_400 - start).rem_euclid(WEEK))
                    .filter(|into| *into < span)
                    .min()
                    .map(|into| {
                        at.replace_nanosecond(0).unwrap_or(at) + Duration::seconds(span - into)
                    })
            }
        }
    }

    /// The window's current opening at `at`, or else its next one, as (start, end); `None`
    /// when it will not open again (or is an invalid weekly window).
    pub fn next_opening(&self, at: OffsetDateTime) -> Option<(OffsetDateTime, OffsetDateTime)> {
        match &self.schedule {
            WindowSchedule::Once { start, end } => (at < *end).then_some((*start, *end)),
            WindowSchedule::Weekly { days, start, end } => {
                let (start, end) = (time_of_day(start).ok()?, time_of_day(end).ok()?);
                let span = (end - start).rem_euclid(86_400);
                if let Some(close) = self.open_until(at) {
                    return Some((close - Duration::seconds(span), close));
                }
                let at = at
                    .to_offset(time::UtcOffset::UTC)
                    .replace_nanosecond(0)
                    .ok()?;
                let since_monday = i64::from(at.weekday().number_days_from_monday()) * 86_400
                    + i64::from(at.hour()) * 3600
                    + i64::from(at.minute()) * 60
                    + i64::from(at.second());
                let wait = days
                    .iter()
                    .map(|d| (d.index() * 86_400 + start - since_monday).rem_euclid(WEEK))
                    .min()?;
                let open = at + Duration::seconds(wait);
                Some((open, open + Duration::seconds(span)))
            }
        }
    }

    /// Every problem of this window, paths relative to it (`schedule.once.end`).
    pub fn problems(&self) -> Vec<ValidationError> {
        let mut out = Vec::new();
        let mut err = |path: &str, message: String| {
            out.push(ValidationError {
                path: path.to_owned(),
                message,
            })
        };
        if let Err(why) = check_id(&self.id) {
            err("id", why);
        }
        if let Some(name) = &self.name {
            if name.trim().is_empty() || name.trim() != name {
                err(
                    "name",
                    "must not be blank or start or end with white space".to_owned(),
                );
            } else if name.chars().nth(MAX_WINDOW_NAME_CHARS).is_some() {
                err(
                    "name",
                    format!("is longer than {MAX_WINDOW_NAME_CHARS} characters"),
                );
            } else if let Err(why) = check_text(name, false) {
                err("name", why);
            }
        }
        if self.tags.is_empty() && self.monitors.is_empty() {
            err(
                "tags",
                "a window selects at least one tag or monitor id".to_owned(),
            );
        }
        for (path, list, max, rule) in [
            (
                "tags",
                &self.tags,
                MAX_WINDOW_TAGS,
                check_tag as fn(&str) -> Result<(), String>,
            ),
            ("monitors", &self.monitors, MAX_WINDOW_MONITORS, check_id),
        ] {
            if list.len() > max {
                err(
                    path,
                    format!("has {} entries; at most {max} are allowed", list.len()),
                );
                continue;
            }
            for (i, v) in list.iter().enumerate() {
                if let Err(why) = rule(v) {
                    err(&format!("{path}[{i}]"), why);
                } else if let Some(j) = list[..i].iter().position(|w| w == v) {
                    err(&format!("{path}[{i}]"), format!("duplicate of {path}[{j}]"));
                }
            }
        }
        match &self.schedule {
            WindowSchedule::Once { start, end } => {
                if end <= start {
                    err("schedule.once.end", "must be after start".to_owned());
                } else if *end - *start > MAX_ONCE_SPAN {
                    err(
                        "schedule.once.end",
                        "is more than 7 days after start; a window lasts at most 7 days".to_owned(),
                    );
                }
            }
            WindowSchedule::Weekly { days, start, end } => {
                if days.is_empty() || days.len() > 7 {
                    err("schedule.weekly.days", "must name 1 to 7 days".to_owned());
                }
                for (i, d) in days.iter().enumerate() {
                    if days[..i].contains(d) {
                        err(
                            &format!("schedule.weekly.days[{i}]"),
                            "duplicate day".to_owned(),
                        );
                    }
                }
                let s = time_of_day(start).map_err(|why| err("schedule.weekly.start", why));
                let e = time_of_day(end).map_err(|why| err("schedule.weekly.end", why));
                if let (Ok(s), Ok(e)) = (s, e)
                    && s == e
                {
                    err("schedule.weekly.end", "must differ from start".to_owned());
                }
            }
        }
        out
    }
}

/// Every problem of a bundle's windows, with paths such as `maintenance[2].schedule`:
/// at most [`MAX_WINDOWS`], each valid, no id twice.
pub fn check_windows(windows: &[MaintenanceWindow]) -> Vec<ValidationError> {
    if windows.len() > MAX_WINDOWS {
        return vec![ValidationError {
            path: "maintenance".to_owned(),
            message: format!(
                "has {} entries; at most {MAX_WINDOWS} are allowed",
                windows.len()
            ),
        }];
    }
    let mut out = Vec::new();
    for (i, w) in windows.iter().enumerate() {
        out.extend(w.problems().into_iter().map(|e| ValidationError {
            path: format!("maintenance[{i}].{}", e.path),
            message: e.message,
        }));
        if let Some(j) = windows[..i].iter().position(|v| v.id == w.id) {
            out.push(ValidationError {
                path: format!("maintenance[{i}].id"),
                message: format!("duplicate id `{}`, also used by maintenance[{j}]", w.id),
            });
        }
    }
    out
}

/// The first of `windows` open at `at` for a monitor with this id and these tags.
pub fn active_window<'a>(
    windows: &'a [MaintenanceWindow],
    id: &str,
    tags: &[String],
    at: OffsetDateTime,
) -> Option<&'a MaintenanceWindow> {
    windows.iter().find(|w| w.active(id, tags, at))
}

/// The longest ad-hoc window: 7 days, in minutes.
pub const MAX_AD_HOC_MINUTES: u32 = 7 * 24 * 60;

/// The body of `POST /v1/projects/{project}/maintenance`: an ad-hoc window opening now
/// for `minutes` (1 to [`MAX_AD_HOC_MINUTES`]) over the monitors with these tags or ids
/// (at least one entry in all; at most 64 tags and 256 ids).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AdHocRequest {
    /// Name shown on the status pages (at most 200 characters); the generated id when
    /// absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Monitors with any of these tags are covered.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub tags: Vec<String>,
    /// Monitors with these ids are covered.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256))]
    pub monitors: Vec<String>,
    /// How long the window lasts, in minutes.
    #[schemars(range(min = 1, max = 10080))]
    pub minutes: u32,
}

impl AdHocRequest {
    /// The window this request opens at `now`, with this id; or every problem of the
    /// request, by path.
    pub fn window(
        &self,
        id: &str,
        now: OffsetDateTime,
    ) -> Result<MaintenanceWindow, Vec<ValidationError>> {
        let now = now
            .to_offset(time::UtcOffset::UTC)
            .replace_nanosecond(0)
            .unwrap_or(now);
        let window = MaintenanceWindow {
            id: id.to_owned(),
            name: self.name.clone(),
            tags: self.tags.clone(),
            monitors: self.monitors.clone(),
            schedule: WindowSchedule::Once {
                start: now,
                end: now + Duration::minutes(i64::from(self.minutes)),
            },
        };
        let mut problems: Vec<ValidationError> = window
            .problems()
            .into_iter()
            .filter(|p| !p.path.starts_with("schedule"))
            .collect();
        if self.minutes == 0 || self.minutes > MAX_AD_HOC_MINUTES {
            problems.push(ValidationError {
                path: "minutes".to_owned(),
                message: format!("must be 1 to {MAX_AD_HOC_MINUTES} (7 days)"),
            });
        }
        if problems.is_empty() {
            Ok(window)
        } else {
            Err(problems)
        }
    }
}

/// Parses how long an ad-hoc window lasts, such as `30m`, `2h` or `1d`, into minutes
/// (1 to [`MAX_AD_HOC_MINUTES`]).
pub fn parse_minutes(text: &str) -> Result<u32, String> {
    let ms =
        crate::rules::parse_duration_in(text, &crate::rules::TIME_UNITS[2..], "30m, 2h or 1d")?;
    let minutes = ms / 60_000;
    if ms % 60_000 != 0 || minutes == 0 || minutes > u64::from(MAX_AD_HOC_MINUTES) {
        return Err(format!(
            "`{text}` must be a whole number of minutes from 1m to 7d"
        ));
    }
    Ok(minutes as u32)
}

/// One window as `GET /v1/projects/{project}/maintenance` lists it and
/// `POST /v1/projects/{project}/maintenance` answers it: its current or next opening.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListedWindow {
    /// The window.
    pub window: MaintenanceWindow,
    /// Whether it was opened ad hoc rather than deployed.
    pub ad_hoc: bool,
    /// Whether it is open now.
    pub active: bool,
    /// When its current or next opening starts (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "String")]
    pub start: OffsetDateTime,
    /// When its current or next opening ends (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "String")]
    pub end: OffsetDateTime,
}

impl ListedWindow {
    /// `window` as listed at `now`, or `None` when it will not open again.
    pub fn at(window: &MaintenanceWindow, ad_hoc: bool, now: OffsetDateTime) -> Option<Self> {
        let (start, end) = window.next_opening(now)?;
        Some(ListedWindow {
            window: window.clone(),
            ad_hoc,
            active: start <= now && now < end,
            start,
            end,
        })
    }
}

/// The answer of `GET /v1/projects/{project}/maintenance`: the deployed and ad-hoc windows
/// that are open now or will open again, open ones first, then by start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WindowList {
    /// The windows.
    pub windows: Vec<ListedWindow>,
}
