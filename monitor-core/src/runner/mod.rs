//! The runners: what drives the engine over a set of monitors. Each sits behind its cargo
//! feature, all on by default; a crate that turns them off builds the engine alone.
//!
//! - [`run`] (feature `run`): every monitor once.
//! - [`watch`] (feature `watch`, axum): every monitor on its frequency, `/metrics`.
//! - [`agent`] (feature `agent`, reqwest and flate2): the monitors a control plane
//!   assigns, results uploaded.
//! - [`demo`] (feature `demo`, rcgen): demo services on loopback and monitors of them.
//!
//! `watch` and `agent` share [`schedule`], and serve `/metrics` with [`http`], starting
//! with the families of [`process_metrics`].

#[cfg(feature = "agent")]
pub mod agent;
#[cfg(feature = "demo")]
pub mod demo;
#[cfg(any(feature = "watch", feature = "agent"))]
#[path = "../../../control-plane/src/server.rs"]
pub mod http;
#[cfg(any(feature = "watch", feature = "agent"))]
pub mod metrics_body;
#[cfg(any(feature = "watch", feature = "agent"))]
pub mod process_metrics;
#[cfg(feature = "run")]
pub mod run;
#[cfg(any(feature = "watch", feature = "agent"))]
pub(crate) mod schedule;
#[cfg(feature = "watch")]
mod slots;
#[cfg(feature = "watch")]
pub mod watch;

/// A result with only its monitor's id and its status, for the runners' tests.
#[cfg(all(test, any(feature = "watch", feature = "agent")))]
pub(crate) fn result_of(
    id: &str,
    status: monitor_spec::result::Status,
) -> monitor_spec::result::CheckResult {
    monitor_spec::result::CheckResult {
        id: id.into(),
        name: id.into(),
        target: "127.0.0.1:1".into(),
        status,
        error: None,
        timings: monitor_spec::result::Timings::default(),
        address: None,
        attempts: Vec::new(),
        assertions: Vec::new(),
        response_excerpt: String::new(),
        tls: None,
        facts: Default::default(),
        tcp: None,
        started_at: time::OffsetDateTime::UNIX_EPOCH,
    }
}
