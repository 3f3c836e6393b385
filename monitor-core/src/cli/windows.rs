//! The maintenance windows of a monitors binary on its command line: `validate` checks
//! them against the declared monitors, `export` puts them into the bundle and `list`
//! shows them, one short line each.
#![allow(clippy::print_stderr)]

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

/// The declared windows for a bundle of `exported`, checked against every declared
/// monitor (not only those a filter kept), sorted by id: all of them when `exported` is
/// every declared monitor, else those covering one of `exported` (a filtered export
/// carries the windows of what it holds).
pub(super) fn for_bundle(exported: &[TcpMonitor]) -> Result<Vec<MaintenanceWindow>, CliError> {
    let windows = registry::maintenance()?;
    if windows.is_empty() {
        return Ok(Vec::new());
    }
    let monitors: Vec<TcpMonitor> = registry::monitors()?
        .into_iter()
        .map(|d| d.monitor)
        .collect();
    registry::check_windows(&windows, &monitors)?;
    let every = exported.len() == monitors.len();
    Ok(windows
        .into_iter()
        .map(|d| d.window)
        .filter(|w| every || exported.iter().any(|m| w.covers(&m.id, &m.tags)))
        .collect())
}

/// The lines `list` prints under the monitors: a header and one line per window, or
/// nothing when there is none.
pub(super) fn listed() -> Result<Vec<String>, CliError> {
    let windows = registry::maintenance()?;
    if windows.is_empty() {
        return Ok(Vec::new());
    }
    let mut lines = vec![String::new(), "MAINTENANCE".to_owned()];
    lines.extend(windows.iter().map(line));
    Ok(lines)
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
