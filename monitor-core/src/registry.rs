//! The registry of monitors declared with `#[tcp_monitor]`: every declaration in the
//! binary, built with the project's defaults applied, in a stable order, with duplicate
//! ids and invalid monitors reported at the file and line that declared them.

use std::fmt;

use thiserror::Error;

use monitor_spec::spec::{Frequency, RetryStrategy, TcpMonitor};
use monitor_spec::validate::{ValidMonitor, ValidationErrors};

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

inventory::collect!(Registration);
inventory::collect!(DefaultsRegistration);

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
