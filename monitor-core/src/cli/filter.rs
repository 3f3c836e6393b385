//! `--grep`, `--tag` and `--location`: which monitors a command acts on; a filter that
//! matches none is an error unless `--allow-empty`.

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
    /// Accept a filter that matches no monitor (else it is an error, exit 2)
    #[arg(long)]
    pub allow_empty: bool,
}

impl Filter {
    /// The filter's flags as given, such as `--grep ^db --tag a,b`; empty without any.
    pub fn describe(&self) -> String {
        let grep = self.grep.iter().map(|g| ("--grep", g));
        let tags = self.tags.iter().map(|t| ("--tag", t));
        let location = self.location.iter().map(|l| ("--location", l));
        grep.chain(tags)
            .chain(location)
            .map(|(flag, value)| format!("{flag} {value}"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Refuses a selection of none of `total` monitors made by a filter, unless
    /// `--allow-empty`; without a filter nothing is refused.
    pub fn check_matched(&self, matched: usize, total: usize) -> Result<(), String> {
        let filter = self.describe();
        if matched > 0 || self.allow_empty || filter.is_empty() {
            return Ok(());
        }
        Err(format!(
            "no monitor matches {filter} ({total} monitor{}; --allow-empty to accept none)",
            if total == 1 { "" } else { "s" }
        ))
    }

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

/// Keeps the monitors the filter selects; an error when it selects none of some or no
/// monitors, unless `--allow-empty` ([`Filter::check_matched`]).
pub fn apply_filter(
    monitors: impl IntoIterator<Item = TcpMonitor>,
    filter: &Filter,
) -> Result<Vec<TcpMonitor>, String> {
    let selected = filter.selector()?;
    let mut total = 0;
    let kept: Vec<TcpMonitor> = monitors
        .into_iter()
        .inspect(|_| total += 1)
        .filter(|m| selected(m))
        .collect();
    filter.check_matched(kept.len(), total)?;
    Ok(kept)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(grep: Option<&str>, tags: &[&str], location: Option<&str>) -> Filter {
        Filter {
            grep: grep.map(str::to_owned),
            tags: tags.iter().map(|t| (*t).to_owned()).collect(),
            location: location.map(str::to_owned),
            allow_empty: false,
        }
    }

    #[test]
    fn a_filter_matching_nothing_is_refused_unless_allowed() {
        let monitors = || {
            vec![
                TcpMonitor::new("db-main", "db.internal", 5432).tag("db"),
                TcpMonitor::new("cache", "cache.internal", 6379).tag("cache"),
            ]
        };
        let check = |f: Filter, expected: Result<&[&str], &str>| {
            let got = apply_filter(monitors(), &f)
                .map(|kept| kept.into_iter().map(|m| m.id).collect::<Vec<_>>());
            let expected = expected
                .map(|ids| ids.iter().map(|i| (*i).to_owned()).collect::<Vec<_>>())
                .map_err(str::to_owned);
            assert_eq!(got, expected, "{f:?}");
        };
        check(filter(None, &["db"], None), Ok(&["db-main"]));
        check(filter(None, &[], None), Ok(&["db-main", "cache"]));
        check(
            filter(None, &["nope"], None),
            Err("no monitor matches --tag nope (2 monitors; --allow-empty to accept none)"),
        );
        check(
            filter(Some("^x"), &["db,prod", "web"], Some("eu")),
            Err(
                "no monitor matches --grep ^x --tag db,prod --tag web --location eu (2 monitors; --allow-empty to accept none)",
            ),
        );
        let mut allowed = filter(None, &["nope"], None);
        allowed.allow_empty = true;
        check(allowed, Ok(&[]));
        // No filter and no monitor: nothing to refuse.
        assert_eq!(apply_filter(Vec::new(), &Filter::default()), Ok(Vec::new()));
        assert_eq!(
            filter(Some("a"), &[], None).check_matched(0, 1),
            Err("no monitor matches --grep a (1 monitor; --allow-empty to accept none)".to_owned())
        );
    }
}
