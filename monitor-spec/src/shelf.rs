//! Validated monitors held compactly, for a runner with very many of them: each as its id
//! and the JSON of its fields that differ from their defaults, all in one buffer, and
//! rebuilt into a [`ValidMonitor`] when a check starts (a few microseconds for a monitor
//! without TLS or regexes, see [`Shelf::worth_shelving`]).
//!
//! A plain PING monitor costs some 250 bytes here against 1.3 KB as a [`ValidMonitor`];
//! one buffer for all of them, instead of an allocation each, lets the memory of the
//! monitors read at start-up go back to the system once they are shelved.

use serde::Serialize;
use thiserror::Error;

use crate::recipe::{ProxyProtocol, Recipe};
use crate::schedule::{Frequency, RetryStrategy};
use crate::spec::{
    Assertion, DEFAULT_MAX_RESPONSE_BYTES, Step, Target, TcpMonitor, Timeouts, Tls, TlsMode,
};
use crate::validate::{Expected, Op, ValidMonitor, ValidationErrors};

/// Why a shelved monitor could not be rebuilt (a bug: it was valid when shelved).
#[derive(Debug, Error)]
pub enum ShelfError {
    /// No monitor has this index.
    #[error("no shelved monitor has index {0}")]
    Missing(usize),
    /// Its JSON no longer reads as a monitor.
    #[error("shelved monitor {index} does not read back: {source}")]
    Read {
        /// Its index.
        index: usize,
        /// What the reading said.
        source: serde_json::Error,
    },
    /// It no longer validates.
    #[error("shelved monitor {index} no longer validates: {source}")]
    Invalid {
        /// Its index.
        index: usize,
        /// The problems.
        source: ValidationErrors,
    },
    /// It cannot be written (a spec serde cannot write).
    #[error("a monitor cannot be shelved: {0}")]
    Write(serde_json::Error),
}

/// Many validated monitors in one buffer: monitor `i` is its id, a newline and its sparse
/// JSON (the fields that differ from their defaults), ending at `ends[i]`.
#[derive(Debug, Default)]
pub struct Shelf {
    text: String,
    ends: Vec<usize>,
}

impl Shelf {
    /// An empty shelf.
    pub fn new() -> Self {
        Shelf::default()
    }

    /// Whether `monitor` is cheap to rebuild at each check: no TLS (whose settings the
    /// engine builds once per monitor) and no regex to compile. Others are better kept
    /// as they are.
    pub fn worth_shelving(monitor: &ValidMonitor) -> bool {
        let plan = monitor.compiled();
        plan.spec.tls.mode == TlsMode::None
            && !plan.ops.iter().any(|op| matches!(op, Op::Regex(_)))
            && !plan
                .assertions
                .iter()
                .any(|c| matches!(c.target, Expected::Regex(_)))
    }

    /// Adds `spec` (validated) and returns its index.
    pub fn push(&mut self, spec: &TcpMonitor) -> Result<usize, ShelfError> {
        let json = serde_json::to_string(&Sparse::of(spec)).map_err(ShelfError::Write)?;
        self.text.push_str(&spec.id);
        self.text.push('\n');
        self.text.push_str(&json);
        self.ends.push(self.text.len());
        Ok(self.ends.len() - 1)
    }

    /// How many monitors it holds.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Gives back the buffers' spare capacity.
    pub fn shrink_to_fit(&mut self) {
        self.text.shrink_to_fit();
        self.ends.shrink_to_fit();
    }

    /// The bytes it holds.
    pub fn bytes(&self) -> usize {
        self.text.capacity() + self.ends.capacity() * size_of::<usize>()
    }

    /// Monitor `i`'s id and sparse JSON.
    fn entry(&self, i: usize) -> Option<(&str, &str)> {
        let end = *self.ends.get(i)?;
        let start = match i {
            0 => 0,
            _ => *self.ends.get(i - 1)?,
        };
        self.text.get(start..end)?.split_once('\n')
    }

    /// Monitor `i`'s id.
    pub fn id(&self, i: usize) -> Option<&str> {
        self.entry(i).map(|(id, _)| id)
    }

    /// Monitor `i`'s sparse JSON: equal texts are equal specs.
    pub fn json(&self, i: usize) -> Option<&str> {
        self.entry(i).map(|(_, json)| json)
    }

    /// Monitor `i`, rebuilt and validated again.
    pub fn get(&self, i: usize) -> Result<ValidMonitor, ShelfError> {
        let json = self.json(i).ok_or(ShelfError::Missing(i))?;
        let spec: TcpMonitor =
            serde_json::from_str(json).map_err(|source| ShelfError::Read { index: i, source })?;
        spec.into_valid()
            .map_err(|source| ShelfError::Invalid { index: i, source })
    }
}

/// The fields of a spec that differ from what serde gives a missing field, borrowed: read
/// back, they make the same spec.
#[derive(Serialize)]
struct Sparse<'a> {
    schema_version: u32,
    id: &'a str,
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a String>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    tags: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    group: Option<&'a String>,
    target: &'a Target,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    steps: &'a [Step],
    #[serde(skip_serializing_if = "Option::is_none")]
    recipe: Option<&'a Recipe>,
    #[serde(skip_serializing_if = "Option::is_none")]
    proxy_protocol: Option<ProxyProtocol>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tls: Option<&'a Tls>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    assertions: &'a [Assertion],
    #[serde(skip_serializing_if = "Option::is_none")]
    timeouts: Option<&'a Timeouts>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_response_bytes: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    degraded_response_time_ms: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_response_time_ms: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    should_fail: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    frequency: Option<Frequency>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    locations: &'a [String],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    private_locations: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    activated: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    muted: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    run_parallel: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    test_only: Option<bool>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    alert_channels: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    retry: Option<&'a RetryStrategy>,
}

/// `Some(value)` unless it is `default`.
fn unless<T: PartialEq>(value: T, default: &T) -> Option<T> {
    (value != *default).then_some(value)
}

impl<'a> Sparse<'a> {
    fn of(m: &'a TcpMonitor) -> Self {
        // Every field named, so that a new one cannot be forgotten here.
        let TcpMonitor {
            schema_version,
            id,
            name,
            description,
            tags,
            group,
            target,
            steps,
            recipe,
            proxy_protocol,
            tls,
            assertions,
            timeouts,
            max_response_bytes,
            degraded_response_time_ms,
            max_response_time_ms,
            should_fail,
            frequency,
            locations,
            private_locations,
            activated,
            muted,
            run_parallel,
            test_only,
            alert_channels,
            retry,
        } = m;
        let defaults = TcpMonitor::new("", "", 0);
        debug_assert_eq!(defaults.max_response_bytes, DEFAULT_MAX_RESPONSE_BYTES);
        Sparse {
            schema_version: *schema_version,
            id,
            name,
            description: description.as_ref(),
            tags,
            group: group.as_ref(),
            target,
            steps,
            recipe: recipe.as_ref(),
            proxy_protocol: *proxy_protocol,
            tls: (*tls != defaults.tls).then_some(tls),
            assertions,
            timeouts: (*timeouts != defaults.timeouts).then_some(timeouts),
            max_response_bytes: unless(*max_response_bytes, &defaults.max_response_bytes),
            degraded_response_time_ms: unless(
                *degraded_response_time_ms,
                &defaults.degraded_response_time_ms,
            ),
            max_response_time_ms: unless(*max_response_time_ms, &defaults.max_response_time_ms),
            should_fail: unless(*should_fail, &false),
            frequency: unless(*frequency, &Frequency::default()),
            locations,
            private_locations,
            activated: unless(*activated, &true),
            muted: unless(*muted, &false),
            run_parallel: unless(*run_parallel, &false),
            test_only: unless(*test_only, &false),
            alert_channels,
            retry: (*retry != RetryStrategy::default()).then_some(retry),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::Backoff;
    use crate::spec::{StartTls, response_data, response_time, tls_days_left};

    /// Monitors using the fields a spec can set, each with values other than the defaults.
    fn varied() -> Vec<TcpMonitor> {
        let plain = TcpMonitor::new("plain", "127.0.0.1", 6379);
        vec![
            plain.clone(),
            plain
                .clone()
                .name("Every field set")
                .description("**described**")
                .tag("prod")
                .tag("team a")
                .group("edge")
                .send("PING\\r\\n")
                .expect("+PONG")
                .send_bytes(&[0, 1, 2])
                .read(crate::spec::ReadUntil::Bytes(4))
                .assert(response_time().less_than(crate::spec::ms(150)))
                .assert(response_data().contains("PONG"))
                .timeouts(1_000, 2_000, 5_000)
                .thresholds(100, 900)
                .max_response_bytes(1_000)
                .should_fail(true)
                .frequency(Frequency::M5)
                .retry(RetryStrategy::Fixed(Backoff {
                    base_backoff_seconds: 30,
                    max_retries: 2,
                    max_duration_seconds: 600,
                    same_region: false,
                }))
                .proxy_protocol(ProxyProtocol::V2),
            {
                let mut m = plain.clone().recipe(Recipe::Redis {
                    password_env: Some("REDIS_PASSWORD".into()),
                    username: Some("probe".into()),
                    role: true,
                });
                m.locations = vec!["eu-west-1".into()];
                m.private_locations = vec!["dc-1".into()];
                m.alert_channels = vec!["ops".into()];
                m.activated = false;
                m.muted = true;
                m.run_parallel = true;
                m.test_only = true;
                m
            },
            plain
                .clone()
                .tls_direct()
                .tls_with(|t| t.server_name = Some("cache.example.com".into()))
                .assert(tls_days_left().greater_than(14)),
            plain.clone().starttls(StartTls::Smtp).expect("250"),
            plain.expect_regex("^OK [0-9]+"),
        ]
    }

    #[test]
    fn a_shelved_monitor_reads_back_as_the_same_spec() {
        let mut shelf = Shelf::new();
        let monitors = varied();
        for m in &monitors {
            let valid = m.validate().expect("valid");
            assert_eq!(shelf.push(valid.spec()).expect("shelved"), shelf.len() - 1);
        }
        shelf.shrink_to_fit();
        for (i, m) in monitors.iter().enumerate() {
            let back = shelf.get(i).expect("rebuilt");
            assert_eq!(
                back.spec(),
                m.validate().expect("valid").spec(),
                "monitor {i}"
            );
            assert_eq!(shelf.id(i), Some(m.id.as_str()));
        }
        assert!(matches!(
            shelf.get(monitors.len()),
            Err(ShelfError::Missing(_))
        ));
        // Only what differs from the defaults is written.
        assert_eq!(
            shelf.json(0),
            Some(
                r#"{"schema_version":1,"id":"plain","name":"plain","target":{"host":"127.0.0.1","port":6379,"ip_family":"any"}}"#
            )
        );
    }

    #[test]
    fn tls_and_regexes_are_not_worth_shelving() {
        let worth: Vec<bool> = varied()
            .iter()
            .map(|m| Shelf::worth_shelving(&m.validate().expect("valid")))
            .collect();
        assert_eq!(worth, [true, true, true, false, false, false]);
    }
}
