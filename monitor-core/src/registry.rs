//! The registry of monitors declared with `#[tcp_monitor]` and of maintenance windows
//! declared with `maintenance!`: every declaration in the binary, monitors built with the
//! project's defaults applied, in a stable order, with duplicate ids, invalid monitors and
//! windows naming unknown monitors reported at the file and line that declared them.

use std::fmt;

use thiserror::Error;

use monitor_spec::maintenance::{MAX_WINDOWS, MaintenanceWindow};
use monitor_spec::spec::{Frequency, RetryStrategy, TcpMonitor};
use monitor_spec::validate::{ValidMonitor, ValidationErrors};
use time::OffsetDateTime;

/// One `#[tcp_monitor]` declaration, as the macro registers it.
#[derive(Debug)]
pub struct Registration {
    /// The declaring function's name.
    pub function: &'static str,
    /// `module_path!()` where it was declared.
    pub module_path: &'static str,
    /// `file!()` where it was declared.
    pub file: &'static str,
    /// `line!()` where it was declared.
    pub line: u32,
    /// The attribute's keys, for defaults to fill only what the monitor leaves unsaid.
    pub explicit: &'static [&'static str],
    /// The monitor as the attribute declares it.
    pub declare: fn() -> TcpMonitor,
    /// The declaring function: refines the monitor at run time.
    pub refine: fn(TcpMonitor) -> TcpMonitor,
}

/// The project-wide defaults, as `monitor_defaults!` registers them.
#[derive(Debug)]
pub struct DefaultsRegistration {
    /// `file!()` where they were declared.
    pub file: &'static str,
    /// `line!()` where they were declared.
    pub line: u32,
    /// The defaults.
    pub build: fn() -> Defaults,
}

/// One `maintenance!` declaration, as the macro registers it.
#[derive(Debug)]
pub struct WindowRegistration {
    /// `file!()` where it was declared.
    pub file: &'static str,
    /// `line!()` where it was declared.
    pub line: u32,
    /// The window as the macro declares it.
    pub declare: fn() -> MaintenanceWindow,
}

inventory::collect!(Registration);
inventory::collect!(DefaultsRegistration);
inventory::collect!(WindowRegistration);

/// The instant `unix_nanos` nanoseconds after the Unix epoch, in UTC: how the code
/// `maintenance!` generates writes a one-off window's bounds. The macro passes only
/// instants it read; one out of range would be the epoch.
pub fn instant(unix_nanos: i128) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(unix_nanos).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// Settings that apply to every monitor that does not set them itself, as Checkly's
/// project defaults do.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Defaults {
    /// Frequency.
    pub frequency: Option<Frequency>,
    /// Locations.
    pub locations: Option<Vec<String>>,
    /// Private locations.
    pub private_locations: Option<Vec<String>>,
    /// Tags (used when a monitor has none).
    pub tags: Option<Vec<String>>,
    /// Retry strategy.
    pub retry: Option<RetryStrategy>,
    /// Alert channels.
    pub alert_channels: Option<Vec<String>>,
    /// Days before expiry that degrade a TLS check.
    pub expiry_warn_days: Option<u32>,
    /// Days before expiry that fail a TLS check.
    pub expiry_fail_days: Option<u32>,
}

impl Defaults {
    /// The attribute keys each default stands for.
    pub const KEYS: [&'static str; 8] = monitor_spec::rules::DEFAULT_KEYS;

    /// Fills what `monitor` leaves unsaid: keys absent from `explicit`.
    pub fn apply(&self, monitor: &mut TcpMonitor, explicit: &[&str]) {
        let unset = |key: &str| !explicit.contains(&key);
        if let (Some(v), true) = (self.frequency, unset("frequency")) {
            monitor.frequency = v;
        }
        if let (Some(v), true) = (&self.locations, unset("locations")) {
            monitor.locations.clone_from(v);
        }
        if let (Some(v), true) = (&self.private_locations, unset("private_locations")) {
            monitor.private_locations.clone_from(v);
        }
        if let (Some(v), true) = (&self.tags, unset("tags")) {
            monitor.tags.clone_from(v);
        }
        if let (Some(v), true) = (self.retry, unset("retry")) {
            monitor.retry = v;
        }
        if let (Some(v), true) = (&self.alert_channels, unset("alert_channels")) {
            monitor.alert_channels.clone_from(v);
        }
        if let (Some(v), true) = (self.expiry_warn_days, unset("expiry_warn_days")) {
            monitor.tls.expiry_warn_days = v;
        }
        if let (Some(v), true) = (self.expiry_fail_days, unset("expiry_fail_days")) {
            monitor.tls.expiry_fail_days = v;
        }
    }
}

/// Where a monitor or the defaults were declared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    /// Source file.
    pub file: &'static str,
    /// Line in it.
    pub line: u32,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// A monitor of the registry: the spec with defaults applied and the body run, and where
/// it was declared.
#[derive(Debug, Clone)]
pub struct Declared {
    /// The monitor.
    pub monitor: TcpMonitor,
    /// Where its `#[tcp_monitor]` stands.
    pub location: Location,
    /// The declaring function's path, such as `monitors::cache::redis`.
    pub function: String,
}

/// A maintenance window of the registry and where it was declared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeclaredWindow {
    /// The window.
    pub window: MaintenanceWindow,
    /// Where its `maintenance!` stands.
    pub location: Location,
}

/// Something odd about a window that is not an error: a tag it selects that no declared
/// monitor has (it may be meant for monitors declared later).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error(
    "maintenance window `{window}` declared at {location} selects tag `{tag}`, which no monitor has"
)]
pub struct WindowWarning {
    /// The window's id.
    pub window: String,
    /// Where it was declared.
    pub location: Location,
    /// The tag.
    pub tag: String,
}

/// What is wrong with the registry as a whole.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RegistryError {
    /// Two monitors share a logical id.
    #[error(
        "duplicate monitor id `{id}`: declared at {first} and at {second}; give one of them `id = \"...\"`"
    )]
    DuplicateId {
        /// The id.
        id: String,
        /// The first declaration.
        first: Location,
        /// The second declaration.
        second: Location,
    },
    /// `monitor_defaults!` appears twice.
    #[error("project defaults declared twice: at {first} and at {second}; keep one")]
    DuplicateDefaults {
        /// The first declaration.
        first: Location,
        /// The second declaration.
        second: Location,
    },
    /// A monitor fails validation (what only the function body decides).
    #[error("monitor `{id}` declared at {location} is invalid: {errors}")]
    Invalid {
        /// The monitor's id.
        id: String,
        /// Where it was declared.
        location: Location,
        /// Every problem.
        errors: ValidationErrors,
    },
    /// Two maintenance windows share an id.
    #[error(
        "duplicate maintenance window id `{id}`: declared at {first} and at {second}; rename one of them"
    )]
    DuplicateWindow {
        /// The id.
        id: String,
        /// The first declaration.
        first: Location,
        /// The second declaration.
        second: Location,
    },
    /// More windows than a bundle may hold.
    #[error("{count} maintenance windows are declared; a bundle holds at most {MAX_WINDOWS}")]
    TooManyWindows {
        /// How many are declared.
        count: usize,
    },
    /// A window fails the spec's rules (one registered by hand; the macro checks its own).
    #[error("maintenance window `{id}` declared at {location} is invalid: {}", problems(.errors))]
    InvalidWindow {
        /// The window's id.
        id: String,
        /// Where it was declared.
        location: Location,
        /// Every problem.
        errors: ValidationErrors,
    },
    /// A window names a monitor id no declared monitor has: a typo, or a removed monitor.
    #[error(
        "maintenance window `{window}` declared at {location} names monitor `{monitor}`, which no monitor has{}",
        hint(.near)
    )]
    UnknownWindowMonitor {
        /// The window's id.
        window: String,
        /// Where it was declared.
        location: Location,
        /// The monitor id it names.
        monitor: String,
        /// The declared monitor id nearest to it, if one is close.
        near: Option<String>,
    },
}

/// `; did you mean `x`?` or nothing.
fn hint(near: &Option<String>) -> String {
    near.as_ref()
        .map(|n| format!("; did you mean `{n}`?"))
        .unwrap_or_default()
}

/// The problems of a window on one line: `path: message; path: message`.
fn problems(errors: &ValidationErrors) -> String {
    errors
        .0
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Every problem of the registry.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub struct RegistryErrors(pub Vec<RegistryError>);

impl fmt::Display for RegistryErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// The id a declaration gets when it names none: its module path below the crate root
/// and its function, joined by `::`.
pub fn derived_id(module_path: &str, function: &str) -> String {
    match module_path.split_once("::") {
        Some((_crate, rest)) => format!("{rest}::{function}"),
        None => function.to_owned(),
    }
}

/// Every monitor registered in this binary, with defaults applied, sorted by id.
pub fn monitors() -> Result<Vec<Declared>, RegistryErrors> {
    let registrations: Vec<&Registration> = inventory::iter::<Registration>.into_iter().collect();
    let defaults: Vec<&DefaultsRegistration> = inventory::iter::<DefaultsRegistration>
        .into_iter()
        .collect();
    collect(&registrations, &defaults)
}

/// Every registered monitor, validated; every problem names the declaring file and line.
pub fn validate_all() -> Result<Vec<(Declared, ValidMonitor)>, RegistryErrors> {
    validate(monitors()?)
}

/// Builds the monitors of `registrations` with `defaults` applied, sorted by id; duplicate
/// ids and duplicate defaults are errors naming both places.
pub fn collect(
    registrations: &[&Registration],
    defaults: &[&DefaultsRegistration],
) -> Result<Vec<Declared>, RegistryErrors> {
    let mut errors = Vec::new();
    let mut sorted_defaults: Vec<&&DefaultsRegistration> = defaults.iter().collect();
    sorted_defaults.sort_by_key(|d| (d.file, d.line));
    if let [first, second, ..] = sorted_defaults.as_slice() {
        errors.push(RegistryError::DuplicateDefaults {
            first: Location {
                file: first.file,
                line: first.line,
            },
            second: Location {
                file: second.file,
                line: second.line,
            },
        });
    }
    let defaults = sorted_defaults
        .first()
        .map(|d| (d.build)())
        .unwrap_or_default();
    let mut declared: Vec<Declared> = registrations
        .iter()
        .map(|r| {
            let mut monitor = (r.declare)();
            defaults.apply(&mut monitor, r.explicit);
            Declared {
                monitor: (r.refine)(monitor),
                location: Location {
                    file: r.file,
                    line: r.line,
                },
                function: format!("{}::{}", r.module_path, r.function),
            }
        })
        .collect();
    declared.sort_by(|a, b| {
        (a.monitor.id.as_str(), a.location.file, a.location.line).cmp(&(
            b.monitor.id.as_str(),
            b.location.file,
            b.location.line,
        ))
    });
    for pair in declared.windows(2) {
        if pair[0].monitor.id == pair[1].monitor.id {
            errors.push(RegistryError::DuplicateId {
                id: pair[0].monitor.id.clone(),
                first: pair[0].location,
                second: pair[1].location,
            });
        }
    }
    if errors.is_empty() {
        Ok(declared)
    } else {
        Err(RegistryErrors(errors))
    }
}

/// Validates declared monitors, reporting every invalid one with its location.
pub fn validate(declared: Vec<Declared>) -> Result<Vec<(Declared, ValidMonitor)>, RegistryErrors> {
    let mut errors = Vec::new();
    let mut valid = Vec::with_capacity(declared.len());
    for d in declared {
        match d.monitor.validate() {
            Ok(m) => valid.push((d, m)),
            Err(e) => errors.push(RegistryError::Invalid {
                id: d.monitor.id.clone(),
                location: d.location,
                errors: e,
            }),
        }
    }
    if errors.is_empty() {
        Ok(valid)
    } else {
        Err(RegistryErrors(errors))
    }
}

/// Every maintenance window registered in this binary, sorted by id.
pub fn maintenance() -> Result<Vec<DeclaredWindow>, RegistryErrors> {
    let registrations: Vec<&WindowRegistration> =
        inventory::iter::<WindowRegistration>.into_iter().collect();
    collect_windows(&registrations)
}

/// Builds the windows of `registrations`, sorted by id (then file and line); two windows
/// with one id are an error naming both places.
pub fn collect_windows(
    registrations: &[&WindowRegistration],
) -> Result<Vec<DeclaredWindow>, RegistryErrors> {
    let mut declared: Vec<DeclaredWindow> = registrations
        .iter()
        .map(|r| DeclaredWindow {
            window: (r.declare)(),
            location: Location {
                file: r.file,
                line: r.line,
            },
        })
        .collect();
    declared.sort_by(|a, b| {
        (a.window.id.as_str(), a.location.file, a.location.line).cmp(&(
            b.window.id.as_str(),
            b.location.file,
            b.location.line,
        ))
    });
    let errors: Vec<RegistryError> = declared
        .windows(2)
        .filter(|pair| pair[0].window.id == pair[1].window.id)
        .map(|pair| RegistryError::DuplicateWindow {
            id: pair[0].window.id.clone(),
            first: pair[0].location,
            second: pair[1].location,
        })
        .collect();
    if errors.is_empty() {
        Ok(declared)
    } else {
        Err(RegistryErrors(errors))
    }
}

/// Checks the windows against the spec's rules and the declared monitors: a window naming
/// a monitor id no monitor has is an error (a typo), a tag no monitor has a warning. At
/// most [`MAX_WINDOWS`] windows. Returns the warnings when there is no error.
pub fn check_windows(
    windows: &[DeclaredWindow],
    monitors: &[TcpMonitor],
) -> Result<Vec<WindowWarning>, RegistryErrors> {
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    if windows.len() > MAX_WINDOWS {
        errors.push(RegistryError::TooManyWindows {
            count: windows.len(),
        });
    }
    let ids: std::collections::BTreeSet<&str> = monitors.iter().map(|m| m.id.as_str()).collect();
    let tags: std::collections::BTreeSet<&str> = monitors
        .iter()
        .flat_map(|m| m.tags.iter().map(String::as_str))
        .collect();
    for DeclaredWindow { window, location } in windows {
        let problems = window.problems();
        if !problems.is_empty() {
            errors.push(RegistryError::InvalidWindow {
                id: window.id.clone(),
                location: *location,
                errors: ValidationErrors(problems),
            });
        }
        for monitor in window.monitors.iter().filter(|m| !ids.contains(m.as_str())) {
            errors.push(RegistryError::UnknownWindowMonitor {
                window: window.id.clone(),
                location: *location,
                monitor: monitor.clone(),
                near: nearest(monitor, &ids),
            });
        }
        for tag in window.tags.iter().filter(|t| !tags.contains(t.as_str())) {
            warnings.push(WindowWarning {
                window: window.id.clone(),
                location: *location,
                tag: tag.clone(),
            });
        }
    }
    if errors.is_empty() {
        Ok(warnings)
    } else {
        Err(RegistryErrors(errors))
    }
}

/// The id of `ids` nearest to `word`: one that starts or ends like it, or differs by at
/// most two characters at the same places.
fn nearest(word: &str, ids: &std::collections::BTreeSet<&str>) -> Option<String> {
    let differing = |id: &str| {
        let (a, b): (Vec<char>, Vec<char>) = (word.chars().collect(), id.chars().collect());
        let common = a.iter().zip(&b).filter(|(x, y)| x == y).count();
        a.len().max(b.len()) - common
    };
    ids.iter()
        .map(|id| (differing(id), *id))
        .filter(|(d, _)| *d <= 2)
        .min()
        .map(|(_, id)| id.to_owned())
}
