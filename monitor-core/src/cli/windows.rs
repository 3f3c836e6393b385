//! The maintenance windows of a monitors binary on its command line: `validate` checks
//! them against the declared monitors, `export` puts them into the bundle and `list`
//! shows them, one short line each.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use monitor_spec::maintenance::{MaintenanceWindow, WindowSchedule};
use monitor_spec::spec::TcpMonitor;

use super::error::{CliError, EXIT_OK};
use crate::registry::{self, DeclaredWindow, RegistryError, RegistryErrors};

/// `validate`: every monitor and every window, all problems at once; warnings about
/// windows (a tag no monitor has) on standard error.
pub(super) fn validate() -> Result<u8, CliError> {
    let monitors = registry::monitors().map_err(CliError::Validate)?;
    let windows = registry::maintenance();
    let specs: Vec<TcpMonitor> = monitors.iter().map(|d| d.monitor.clone()).collect();
    let valid = registry::validate(monitors);
    let checked = windows.and_then(|w| {
        let warnings = registry::check_windows(&w, &specs)?;
        Ok((w.len(), warnings))
    });
    let mut errors: Vec<RegistryError> = Vec::new();
    if let Err(RegistryErrors(e)) = &valid {
        errors.extend(e.iter().cloned());
    }
    if let Err(RegistryErrors(e)) = &checked {
        errors.extend(e.iter().cloned());
    }
    match (valid, checked) {
        (Ok(valid), Ok((count, warnings))) => {
            for w in warnings {
                eprintln!("warning: {w}");
            }
            println!("{} monitors valid", valid.len());
            if count > 0 {
                println!("{count} maintenance window{} valid", plural(count));
            }
            Ok(EXIT_OK)
        }
        _ => Err(CliError::Validate(RegistryErrors(errors))),
    }
}

/// The declared windows for a bundle of `exported` (see [`windows_for`]).
pub(super) fn for_bundle(exported: &[TcpMonitor]) -> Result<Vec<MaintenanceWindow>, CliError> {
    let windows = registry::maintenance()?;
    if windows.is_empty() {
        return Ok(Vec::new());
    }
    let monitors: Vec<TcpMonitor> = registry::monitors()?
        .into_iter()
        .map(|d| d.monitor)
        .collect();
    Ok(windows_for(windows, &monitors, exported)?)
}

/// The windows a bundle of `exported` carries, checked against every declared monitor
/// (`all`, not only those a filter kept), sorted by id: all of them when `exported` is
/// every declared monitor, else those covering one of `exported` (a filtered export
/// carries the windows of what it holds).
pub(crate) fn windows_for(
    windows: Vec<DeclaredWindow>,
    all: &[TcpMonitor],
    exported: &[TcpMonitor],
) -> Result<Vec<MaintenanceWindow>, RegistryErrors> {
    registry::check_windows(&windows, all)?;
    let every = exported.len() == all.len();
    Ok(windows
        .into_iter()
        .map(|d| d.window)
        .filter(|w| kept(w, every, exported))
        .collect())
}

/// The lines `list` prints under the monitors `listed`: a header and one line per window
/// (those covering one of `listed` when a filter kept only some), or nothing when there
/// is none.
pub(super) fn listed(listed: &[TcpMonitor]) -> Result<Vec<String>, CliError> {
    let windows = registry::maintenance()?;
    if windows.is_empty() {
        return Ok(Vec::new());
    }
    let every = listed.len() == registry::monitors()?.len();
    let lines: Vec<String> = windows
        .iter()
        .filter(|d| kept(&d.window, every, listed))
        .map(line)
        .collect();
    if lines.is_empty() {
        return Ok(Vec::new());
    }
    Ok([String::new(), "MAINTENANCE".to_owned()]
        .into_iter()
        .chain(lines)
        .collect())
}

/// Whether a window goes with `shown`, which is every declared monitor or not.
fn kept(window: &MaintenanceWindow, every: bool, shown: &[TcpMonitor]) -> bool {
    every || shown.iter().any(|m| window.covers(&m.id, &m.tags))
}

/// One window on one line: id, name, when, what it covers.
pub(crate) fn line(declared: &DeclaredWindow) -> String {
    let w = &declared.window;
    let mut out = w.id.clone();
    if let Some(name) = &w.name {
        out.push_str(&format!("  {name}"));
    }
    out.push_str(&format!("  {}  covers {}", when(w), covers(w)));
    out
}

/// `weekly sunday 03:00–04:00 UTC` or `once 2026-12-24T22:00:00Z → 2026-12-25T02:00:00Z`.
pub(crate) fn when(w: &MaintenanceWindow) -> String {
    match &w.schedule {
        WindowSchedule::Weekly { days, start, end } => {
            let days: Vec<String> = days
                .iter()
                .map(|d| format!("{d:?}").to_lowercase())
                .collect();
            format!("weekly {} {start}–{end} UTC", days.join(","))
        }
        WindowSchedule::Once { start, end } => {
            let at = |t: &time::OffsetDateTime| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_else(|_| t.to_string())
            };
            format!("once {} → {}", at(start), at(end))
        }
    }
}

/// `tags db, cache; monitors pg-primary`.
pub(crate) fn covers(w: &MaintenanceWindow) -> String {
    let mut parts = Vec::new();
    if !w.tags.is_empty() {
        parts.push(format!("tags {}", w.tags.join(", ")));
    }
    if !w.monitors.is_empty() {
        parts.push(format!("monitors {}", w.monitors.join(", ")));
    }
    parts.join("; ")
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Bundle;
    use crate::registry::Location;
    use monitor_spec::maintenance::Weekday;

    fn declared(id: &str, tags: &[&str], monitors: &[&str]) -> DeclaredWindow {
        DeclaredWindow {
            window: MaintenanceWindow {
                id: id.to_owned(),
                name: Some("Vacuum".to_owned()),
                tags: tags.iter().map(|t| (*t).to_owned()).collect(),
                monitors: monitors.iter().map(|m| (*m).to_owned()).collect(),
                schedule: WindowSchedule::Weekly {
                    days: vec![Weekday::Saturday, Weekday::Sunday],
                    start: "03:00".to_owned(),
                    end: "04:00".to_owned(),
                },
            },
            location: Location {
                file: "m/db.rs",
                line: 7,
            },
        }
    }

    fn monitor(id: &str, tag: &str) -> TcpMonitor {
        TcpMonitor::new(id, "db.internal", 5432).tag(tag)
    }

    /// The ids of the windows a bundle of `exported` (of `all`) carries, or the errors.
    fn check(exported: &[&str], expected: Result<&[&str], &str>) {
        let all = [monitor("pg", "db"), monitor("redis", "cache")];
        let exported: Vec<TcpMonitor> = all
            .iter()
            .filter(|m| exported.contains(&m.id.as_str()))
            .cloned()
            .collect();
        let windows = vec![
            declared("db", &["db"], &[]),
            declared("redis", &[], &["redis"]),
            declared("later", &["future"], &[]),
        ];
        let got = windows_for(windows, &all, &exported)
            .map(|w| w.into_iter().map(|w| w.id).collect::<Vec<_>>())
            .map_err(|e| e.to_string());
        let expected = expected
            .map(|ids| ids.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
            .map_err(str::to_owned);
        assert_eq!(got, expected, "{exported:?}");
    }

    #[test]
    fn a_bundle_carries_the_windows_of_what_it_holds() {
        check(&["pg", "redis"], Ok(&["db", "redis", "later"]));
        check(&["pg"], Ok(&["db"]));
        check(&[], Ok(&[]));
        let err = windows_for(
            vec![declared("typo", &[], &["pgg"])],
            &[monitor("pg", "db")],
            &[],
        )
        .map_err(|e| e.to_string());
        assert_eq!(
            err,
            Err("maintenance window `typo` declared at m/db.rs:7 names monitor `pgg`, which no monitor has; did you mean `pg`?".to_owned())
        );
    }

    #[test]
    fn a_bundle_without_windows_is_unchanged_and_one_with_them_carries_them() {
        let mut bundle = Bundle::new(vec![monitor("pg", "db")]);
        let without = bundle.to_json();
        assert!(!without.contains("maintenance"), "{without}");
        assert!(without.ends_with("  ]\n}\n"), "{without}");
        bundle.maintenance = vec![declared("db", &["db"], &[]).window];
        let with = bundle.to_json();
        assert!(
            with.starts_with(without.trim_end().trim_end_matches('}').trim_end()),
            "{with}"
        );
        assert!(
            with.ends_with(
                "  \"maintenance\": [\n    {\n      \"id\": \"db\",\n      \"name\": \"Vacuum\",\n      \"tags\": [\n        \"db\"\n      ],\n      \"schedule\": {\n        \"weekly\": {\n          \"days\": [\n            \"saturday\",\n            \"sunday\"\n          ],\n          \"start\": \"03:00\",\n          \"end\": \"04:00\"\n        }\n      }\n    }\n  ]\n}\n"
            ),
            "{with}"
        );
    }

    #[test]
    fn a_window_is_one_short_line() {
        assert_eq!(
            line(&declared("db", &["db", "pg"], &["redis"])),
            "db  Vacuum  weekly saturday,sunday 03:00–04:00 UTC  covers tags db, pg; monitors redis"
        );
        let mut once = declared("xmas", &["db"], &[]);
        once.window.name = None;
        once.window.schedule = WindowSchedule::Once {
            start: registry::instant(1_798_149_600_000_000_000),
            end: registry::instant(1_798_164_000_000_000_000),
        };
        assert_eq!(
            line(&once),
            "xmas  once 2026-12-24T22:00:00Z → 2026-12-25T02:00:00Z  covers tags db"
        );
    }
}
