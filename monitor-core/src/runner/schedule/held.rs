//! What the schedule holds of each monitor: the validated monitor itself, or its place on
//! a [`Shelf`] with the little the schedule reads at every tick (its frequency, whether it
//! is slow), rebuilt into a validated monitor when its check starts. A million plain
//! monitors so cost some 250 bytes each instead of 1.3 KB.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use monitor_spec::schedule::Frequency;
use monitor_spec::shelf::{Shelf, ShelfError};
use monitor_spec::validate::ValidMonitor;

use super::is_slow;

/// One scheduled monitor, as held between its checks.
#[derive(Clone)]
pub(crate) enum Held {
    /// Kept as validated: a monitor dearer to rebuild ([`Shelf::worth_shelving`]).
    Valid(ValidMonitor),
    /// Monitor `index` of `shelf`.
    Shelved {
        shelf: Arc<Shelf>,
        index: usize,
        frequency: Frequency,
        slow: bool,
    },
}

impl fmt::Debug for Held {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Held::Valid(_) => write!(f, "Valid({})", self.id()),
            Held::Shelved { index, .. } => write!(f, "Shelved({index}: {})", self.id()),
        }
    }
}

impl From<ValidMonitor> for Held {
    fn from(monitor: ValidMonitor) -> Self {
        Held::Valid(monitor)
    }
}

impl Held {
    /// Its id (empty for a shelf entry that was never written, which cannot be).
    pub(crate) fn id(&self) -> &str {
        match self {
            Held::Valid(m) => &m.spec().id,
            Held::Shelved { shelf, index, .. } => shelf.id(*index).unwrap_or_default(),
        }
    }

    /// How often it runs.
    pub(crate) fn frequency(&self) -> Frequency {
        match self {
            Held::Valid(m) => m.spec().frequency,
            Held::Shelved { frequency, .. } => *frequency,
        }
    }

    /// Its interval.
    pub(crate) fn interval(&self) -> Duration {
        Duration::from_secs(self.frequency().as_secs())
    }

    /// Whether its checks are slow ([`is_slow`]).
    pub(crate) fn slow(&self) -> bool {
        match self {
            Held::Valid(m) => is_slow(m),
            Held::Shelved { slow, .. } => *slow,
        }
    }

    /// The validated monitor, rebuilt when shelved.
    pub(crate) fn monitor(&self) -> Result<ValidMonitor, ShelfError> {
        match self {
            Held::Valid(m) => Ok(m.clone()),
            Held::Shelved { shelf, index, .. } => shelf.get(*index),
        }
    }

    /// Whether both hold the same spec.
    pub(crate) fn same_spec(&self, other: &Held) -> bool {
        match (self, other) {
            (Held::Valid(a), Held::Valid(b)) => a.spec() == b.spec(),
            (
                Held::Shelved { shelf, index, .. },
                Held::Shelved {
                    shelf: other,
                    index: at,
                    ..
                },
            ) => shelf.json(*index).is_some() && shelf.json(*index) == other.json(*at),
            _ => match (self.monitor(), other.monitor()) {
                (Ok(a), Ok(b)) => a.spec() == b.spec(),
                _ => false,
            },
        }
    }
}

/// Monitors shelved as they come, a whole set at a time (`watch`'s bundle, an agent's
/// assignment): those [`Shelf::worth_shelving`] go onto one shelf, each dropped as soon
/// as it is shelved, the others are kept as they are; [`Shelving::finish`] gives them in
/// the order they came. Fed as a bundle is read, the validated monitors never all exist
/// at once. A set that changes comes whole on a new shelf; the old one goes when no
/// schedule slot or running check holds it any more.
#[derive(Debug, Default)]
#[cfg_attr(not(any(feature = "watch", feature = "agent")), allow(dead_code))]
pub(crate) struct Shelving {
    shelf: Shelf,
    pending: Vec<Pending>,
}

/// A monitor until the shelf is done.
#[derive(Debug)]
#[cfg_attr(not(any(feature = "watch", feature = "agent")), allow(dead_code))]
enum Pending {
    Valid(ValidMonitor),
    Shelved(usize, Frequency, bool),
}

#[cfg_attr(not(any(feature = "watch", feature = "agent")), allow(dead_code))]
impl Shelving {
    /// Adds `monitor`: shelved (and dropped) when worth it, else kept.
    pub(crate) fn push(&mut self, monitor: ValidMonitor) {
        let shelved = Shelf::worth_shelving(&monitor)
            .then(|| self.shelf.push(monitor.spec()).ok())
            .flatten();
        self.pending.push(match shelved {
            Some(index) => Pending::Shelved(index, monitor.spec().frequency, is_slow(&monitor)),
            None => Pending::Valid(monitor),
        });
    }

    /// How many monitors it holds.
    pub(crate) fn len(&self) -> usize {
        self.pending.len()
    }

    /// How many of them are shelved.
    pub(crate) fn shelved(&self) -> usize {
        self.shelf.len()
    }

    /// The monitors as the schedule holds them, in the order they came, and the shelf's
    /// size in bytes.
    pub(crate) fn finish(self) -> (Vec<Held>, usize) {
        let Shelving { mut shelf, pending } = self;
        shelf.shrink_to_fit();
        let bytes = shelf.bytes();
        let shelf = Arc::new(shelf);
        let held = pending
            .into_iter()
            .map(|p| match p {
                Pending::Valid(m) => Held::Valid(m),
                Pending::Shelved(index, frequency, slow) => Held::Shelved {
                    shelf: Arc::clone(&shelf),
                    index,
                    frequency,
                    slow,
                },
            })
            .collect();
        (held, bytes)
    }
}

/// `monitors` as the schedule holds them ([`Shelving`]), in the same order; and the
/// shelf's size in bytes.
#[cfg(test)]
pub(crate) fn shelve(monitors: Vec<ValidMonitor>) -> (Vec<Held>, usize) {
    let mut shelving = Shelving::default();
    for monitor in monitors {
        shelving.push(monitor);
    }
    shelving.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use monitor_spec::TcpMonitor;

    #[test]
    fn shelved_monitors_keep_their_order_id_and_spec() {
        let monitors: Vec<ValidMonitor> = [
            TcpMonitor::new("a", "127.0.0.1", 1).frequency(Frequency::M5),
            TcpMonitor::new("b", "127.0.0.1", 2).tls_direct(),
            TcpMonitor::new("c", "127.0.0.1", 3).timeouts(1_000, 1_000, 60_000),
        ]
        .into_iter()
        .map(|m| m.into_valid().expect("valid"))
        .collect();
        let (held, bytes) = shelve(monitors.clone());
        assert!(bytes > 0);
        assert!(matches!(held[0], Held::Shelved { .. }));
        assert!(matches!(held[1], Held::Valid(_)));
        assert!(matches!(held[2], Held::Shelved { .. }));
        for (h, m) in held.iter().zip(&monitors) {
            assert_eq!(h.id(), m.spec().id);
            assert_eq!(h.frequency(), m.spec().frequency);
            assert_eq!(h.slow(), is_slow(m));
            assert_eq!(h.monitor().expect("rebuilt").spec(), m.spec());
            assert!(h.same_spec(&Held::from(m.clone())));
        }
        assert!(held[2].slow());
        assert!(!held[0].same_spec(&held[2]));
        assert!(held[0].same_spec(&held[0].clone()));
    }
}
