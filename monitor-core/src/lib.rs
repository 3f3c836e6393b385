//! `monitor-core`: the probe engine and the runners of monitoring as code for TCP services.
//!
//! A [`TcpMonitor`] (the model, from `monitor-spec`, re-exported here with the
//! `#[tcp_monitor]` macro) declares what to check. [`TcpMonitor::validate`] checks every
//! rule at once and compiles it into a [`ValidMonitor`]; the [`Engine`] checks it and
//! returns a [`CheckResult`] whose status is passed, degraded or failed, with a classified
//! error and hints when it is not passed. The engine is laid out by protocol in
//! [`engine`]; the runners in [`runner`] sit behind cargo features (`run`, `watch`,
//! `agent`, `demo`, all on by default): without them the crate is the engine alone.
//!
//! ```no_run
//! use monitor_core::prelude::*;
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let monitor = TcpMonitor::new("redis-cache", "127.0.0.1", 6379)
//!     .name("Redis cache answers PING")
//!     .send("PING\\r\\n")
//!     .expect("+PONG")
//!     .assert(response_time().less_than(ms(100)))
//!     .validate()?;
//! let result = Engine::new().check(&monitor).await;
//! println!("{}: {:?}", result.id, result.status);
//! # Ok(())
//! # }
//! ```
//!
//! The JSON forms of [`TcpMonitor`] and [`CheckResult`] are stable: snake_case names, a
//! top-level `schema_version` on specs, and JSON Schemas committed in `monitor-spec/schema/`.

#[cfg(feature = "fuzz")]
#[doc(hidden)]
#[path = "fuzz.rs"]
pub mod __fuzz;
#[cfg(feature = "run")]
pub mod cli;
pub mod engine;
pub mod registry;
pub mod report;
pub mod runner;

pub use monitor_spec::{self as model, escape, json, result, rules, schema, spec, validate};

pub use engine::{Clock, Engine, Resolve, SystemClock, SystemResolver, run_all, run_all_observed};
pub use monitor_macros::{maintenance, monitor_defaults, tcp_monitor};
pub use monitor_spec::{
    Assertion, Backoff, ClientCert, Comparison, Expect, Frequency, IpFamily, LegacyProbe, OcspMode,
    Payload, PemSource, ProxyProtocol, ReadUntil, Recipe, RetryStrategy, SCHEMA_VERSION, Source,
    StartTls, Step, Target, TcpMonitor, Timeouts, Tls, TlsMode, TlsPolicy, TlsVersion,
};
pub use monitor_spec::{Bundle, BundleError, JsonError, SpecError};
pub use result::{
    AssertionOutcome, Attempt, CertInfo, CheckResult, ErrorKind, LegacyReport, OcspReport,
    OcspStatus, PolicyReport, ProbeError, Status, TcpReport, TcpSample, Timings, TlsReport,
};
pub use validate::{ValidMonitor, ValidationError, ValidationErrors};

/// What generated code needs; not part of the public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::registry::{
        Defaults, DefaultsRegistration, Registration, WindowRegistration, derived_id, instant,
    };
    pub use inventory;
    pub use monitor_spec as spec;
}

/// Everything a monitor definition needs, in one import.
pub mod prelude {
    pub use crate::{
        CheckResult, Engine, ErrorKind, Status, ValidMonitor, maintenance, monitor_defaults,
        tcp_monitor,
    };
    pub use monitor_spec::login::Login;
    pub use monitor_spec::spec::{
        Assertion, ClientCert, Comparison, Expect, Frequency, IpFamily, LegacyProbe, OcspMode,
        Payload, PemSource, ProxyProtocol, ReadUntil, Recipe, RetryStrategy, Source, StartTls,
        Step, TcpMonitor, Tls, TlsMode, TlsPolicy, TlsVersion, connect_time, entry_count,
        first_byte_time, ms, query_value, read_only, replication_lag, response_data, response_time,
        role, seconds, tls_cipher, tls_days_left, tls_issuer, tls_san, tls_subject, tls_version,
        writable,
    };
}
