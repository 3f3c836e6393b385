//! The agents of a project that take work handed to a location (retries, triggered runs)
//! through a long poll, by location, each until its poll's end plus the agent timeout.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

/// Per location, the agents taking work and until when each counts as taking it.
#[derive(Debug, Default)]
pub struct Takers(BTreeMap<String, BTreeMap<String, Instant>>);

impl Takers {
    /// Notes that `agent` of `location` takes work until `until`; an agent is in one
    /// location only, so it leaves any other.
    pub fn polling(&mut self, agent: &str, location: &str, until: Instant) {
        for (l, agents) in &mut self.0 {
            if l != location {
                agents.remove(agent);
            }
        }
        self.0
            .entry(location.to_owned())
            .or_default()
            .insert(agent.to_owned(), until);
    }

    /// Whether an agent of `location` takes work at `now`.
    pub fn takes(&self, location: &str, now: Instant) -> bool {
        self.0
            .get(location)
            .is_some_and(|agents| agents.values().any(|until| *until > now))
    }

    /// The locations with an agent taking work at `now`.
    pub fn locations(&self, now: Instant) -> BTreeSet<String> {
        self.0
            .iter()
            .filter(|(_, agents)| agents.values().any(|until| *until > now))
            .map(|(l, _)| l.clone())
            .collect()
    }

    /// Forgets the agents no longer taking work at `now`.
    pub fn forget_gone(&mut self, now: Instant) {
        for agents in self.0.values_mut() {
            agents.retain(|_, until| *until > now);
        }
        self.0.retain(|_, agents| !agents.is_empty());
    }
}
