//! When a monitor runs: its [`Frequency`] (Checkly's set) and its [`RetryStrategy`].

use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How often a monitor runs: Checkly's set of frequencies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, JsonSchema)]
#[schemars(with = "FrequencySchema")]
pub enum Frequency {
    /// Every 10 seconds.
    S10,
    /// Every 20 seconds.
    S20,
    /// Every 30 seconds.
    S30,
    /// Every minute.
    M1,
    /// Every 2 minutes.
    M2,
    /// Every 5 minutes.
    M5,
    /// Every 10 minutes (the default).
    #[default]
    M10,
    /// Every 15 minutes.
    M15,
    /// Every 30 minutes.
    M30,
    /// Every hour.
    H1,
    /// Every 2 hours.
    H2,
    /// Every 3 hours.
    H3,
    /// Every 6 hours.
    H6,
    /// Every 12 hours.
    H12,
    /// Every 24 hours.
    H24,
}

/// The JSON Schema of a frequency: one of the allowed strings.
#[derive(JsonSchema)]
#[allow(dead_code)]
enum FrequencySchema {
    #[serde(rename = "10s")]
    S10,
    #[serde(rename = "20s")]
    S20,
    #[serde(rename = "30s")]
    S30,
    #[serde(rename = "1m")]
    M1,
    #[serde(rename = "2m")]
    M2,
    #[serde(rename = "5m")]
    M5,
    #[serde(rename = "10m")]
    M10,
    #[serde(rename = "15m")]
    M15,
    #[serde(rename = "30m")]
    M30,
    #[serde(rename = "1h")]
    H1,
    #[serde(rename = "2h")]
    H2,
    #[serde(rename = "3h")]
    H3,
    #[serde(rename = "6h")]
    H6,
    #[serde(rename = "12h")]
    H12,
    #[serde(rename = "24h")]
    H24,
}

impl Frequency {
    /// Every frequency, shortest first.
    pub const ALL: [Frequency; 15] = [
        Frequency::S10,
        Frequency::S20,
        Frequency::S30,
        Frequency::M1,
        Frequency::M2,
        Frequency::M5,
        Frequency::M10,
        Frequency::M15,
        Frequency::M30,
        Frequency::H1,
        Frequency::H2,
        Frequency::H3,
        Frequency::H6,
        Frequency::H12,
        Frequency::H24,
    ];

    /// The frequency as written in specs, for example `30s` or `1h`.
    pub fn as_str(self) -> &'static str {
        match self {
            Frequency::S10 => "10s",
            Frequency::S20 => "20s",
            Frequency::S30 => "30s",
            Frequency::M1 => "1m",
            Frequency::M2 => "2m",
            Frequency::M5 => "5m",
            Frequency::M10 => "10m",
            Frequency::M15 => "15m",
            Frequency::M30 => "30m",
            Frequency::H1 => "1h",
            Frequency::H2 => "2h",
            Frequency::H3 => "3h",
            Frequency::H6 => "6h",
            Frequency::H12 => "12h",
            Frequency::H24 => "24h",
        }
    }

    /// The interval in seconds.
    pub fn as_secs(self) -> u64 {
        match self {
            Frequency::S10 => 10,
            Frequency::S20 => 20,
            Frequency::S30 => 30,
            Frequency::M1 => 60,
            Frequency::M2 => 120,
            Frequency::M5 => 300,
            Frequency::M10 => 600,
            Frequency::M15 => 900,
            Frequency::M30 => 1_800,
            Frequency::H1 => 3_600,
            Frequency::H2 => 7_200,
            Frequency::H3 => 10_800,
            Frequency::H6 => 21_600,
            Frequency::H12 => 43_200,
            Frequency::H24 => 86_400,
        }
    }

    /// The allowed values, comma separated, for error messages.
    pub fn allowed() -> String {
        Frequency::ALL.map(Frequency::as_str).join(", ")
    }
}

impl fmt::Display for Frequency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A frequency outside the allowed set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("frequency `{0}` is not allowed; use one of {allowed}", allowed = Frequency::allowed())]
pub struct UnknownFrequency(pub String);

impl FromStr for Frequency {
    type Err = UnknownFrequency;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Frequency::ALL
            .into_iter()
            .find(|f| f.as_str() == s)
            .ok_or_else(|| UnknownFrequency(s.to_owned()))
    }
}

impl Serialize for Frequency {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Frequency {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// What happens after a failed attempt, as in Checkly's retry strategies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(
    tag = "strategy",
    rename_all = "snake_case",
    deny_unknown_fields,
    from = "RetryWire"
)]
#[schemars(with = "RetryWire")]
pub enum RetryStrategy {
    /// Never retry.
    #[default]
    None,
    /// Retry once after `base_backoff_seconds`.
    SingleRetry {
        /// Wait before the retry.
        base_backoff_seconds: u32,
        /// Retry in the same location (used by the control plane).
        #[serde(default = "yes")]
        same_region: bool,
    },
    /// The same wait before every retry.
    Fixed(Backoff),
    /// The wait grows linearly: base, 2×base, 3×base...
    Linear(Backoff),
    /// The wait grows exponentially: base, base², base³...
    Exponential(Backoff),
}

/// The JSON form of [`RetryStrategy`] as read: `none` is an empty struct variant so that
/// serde rejects unknown fields beside it too.
#[derive(Deserialize, JsonSchema)]
#[serde(tag = "strategy", rename_all = "snake_case", deny_unknown_fields)]
enum RetryWire {
    /// Never retry.
    None {},
    /// Retry once after `base_backoff_seconds`.
    SingleRetry {
        /// Wait before the retry.
        base_backoff_seconds: u32,
        /// Retry in the same location (used by the control plane).
        #[serde(default = "yes")]
        same_region: bool,
    },
    /// The same wait before every retry.
    Fixed(Backoff),
    /// The wait grows linearly: base, 2×base, 3×base...
    Linear(Backoff),
    /// The wait grows exponentially: base, base², base³...
    Exponential(Backoff),
}

impl From<RetryWire> for RetryStrategy {
    fn from(wire: RetryWire) -> Self {
        match wire {
            RetryWire::None {} => RetryStrategy::None,
            RetryWire::SingleRetry {
                base_backoff_seconds,
                same_region,
            } => RetryStrategy::SingleRetry {
                base_backoff_seconds,
                same_region,
            },
            RetryWire::Fixed(b) => RetryStrategy::Fixed(b),
            RetryWire::Linear(b) => RetryStrategy::Linear(b),
            RetryWire::Exponential(b) => RetryStrategy::Exponential(b),
        }
    }
}

/// Settings shared by the fixed, linear and exponential strategies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Backoff {
    /// Wait before the first retry, in seconds.
    pub base_backoff_seconds: u32,
    /// How many retries at most, 1 to 10.
    pub max_retries: u32,
    /// Time budget for all attempts together, at most 600 seconds.
    #[serde(default = "default_max_duration")]
    pub max_duration_seconds: u32,
    /// Retry in the same location (used by the control plane).
    #[serde(default = "yes")]
    pub same_region: bool,
}

impl RetryStrategy {
    /// How many retries the strategy allows at most.
    pub fn max_retries(&self) -> u32 {
        match self {
            RetryStrategy::None => 0,
            RetryStrategy::SingleRetry { .. } => 1,
            RetryStrategy::Fixed(b) | RetryStrategy::Linear(b) | RetryStrategy::Exponential(b) => {
                b.max_retries
            }
        }
    }

    /// The wait in seconds before retry number `retry` (1-based).
    pub fn backoff_seconds(&self, retry: u32) -> u64 {
        match self {
            RetryStrategy::None => 0,
            RetryStrategy::SingleRetry {
                base_backoff_seconds,
                ..
            } => u64::from(*base_backoff_seconds),
            RetryStrategy::Fixed(b) => u64::from(b.base_backoff_seconds),
            RetryStrategy::Linear(b) => u64::from(b.base_backoff_seconds) * u64::from(retry),
            RetryStrategy::Exponential(b) => {
                u64::from(b.base_backoff_seconds).saturating_pow(retry)
            }
        }
    }

    /// The time budget for all attempts together, in seconds (`None` when unbounded).
    pub fn max_duration_seconds(&self) -> Option<u64> {
        match self {
            RetryStrategy::None | RetryStrategy::SingleRetry { .. } => None,
            RetryStrategy::Fixed(b) | RetryStrategy::Linear(b) | RetryStrategy::Exponential(b) => {
                Some(u64::from(b.max_duration_seconds))
            }
        }
    }
}

/// `true`, the serde default of the flags that are on unless said otherwise.
pub(crate) fn yes() -> bool {
    true
}

fn default_max_duration() -> u32 {
    crate::rules::MAX_RETRY_SECONDS
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The macro maps frequency strings to variants by name: both lists must agree.
    #[test]
    fn frequencies_match_the_shared_rules() {
        assert_eq!(
            Frequency::ALL.map(Frequency::as_str),
            crate::rules::FREQUENCIES
        );
    }
}
