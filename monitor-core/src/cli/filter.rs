//! `--grep`, `--tag` and `--location`: which monitors a command acts on.

use clap::Args;
use regex::Regex;

use monitor_spec::spec::TcpMonitor;

/// Which monitors a command acts on.
#[derive(Debug, Clone, Default, Args)]
pub struct Filter {
    /// Only monitors whose id or name matches this regular expression
    #[arg(long)]
    pub grep: Option<String>,
    /// Only monitors with these tags: comma-separated tags must all be present; repeated
    /// flags are alternatives (as Checkly's --tags)
    #[arg(long = "tag")]
    pub tags: Vec<String>,
    /// Only monitors that run in this location (monitors without locations run everywhere)
    #[arg(long)]
    pub location: Option<String>,
}

impl Filter {
    /// The filter made ready to match: its regular expression compiled and its tag groups
    /// split.
    pub fn selector(&self) -> Result<impl Fn(&TcpMonitor) -> bool + '_, String> {
        let grep = self
            .grep
            .as_deref()
            .map(Regex::new)
            .transpose()
            .map_err(|e| format!("--grep is not a valid regular expression: {e}"))?;
        let groups: Vec<Vec<&str>> = self
            .tags
            .iter()
            .map(|g| {
                g.split(',')
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .collect()
            })
            .collect();
        Ok(move |m: &TcpMonitor| {
            grep.as_ref()
                .is_none_or(|re| re.is_match(&m.id) || re.is_match(&m.name))
                && (groups.is_empty()
                    || groups
                        .iter()
                        .any(|g| g.iter().all(|t| m.tags.iter().any(|have| have == t))))
                && self.location.as_ref().is_none_or(|l| {
                    m.locations.is_empty() && m.private_locations.is_empty()
                        || m.locations.contains(l)
                        || m.private_locations.contains(l)
                })
        })
    }
}

/// Keeps the monitors the filter selects.
pub fn apply_filter(
    monitors: impl IntoIterator<Item = TcpMonitor>,
    filter: &Filter,
) -> Result<Vec<TcpMonitor>, String> {
    let selected = filter.selector()?;
    Ok(monitors.into_iter().filter(|m| selected(m)).collect())
}
