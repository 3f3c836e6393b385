//! `monitor-spec`: the TCP monitor model without I/O.
//!
//! A [`TcpMonitor`] declares what to check: where to connect, an optional dialog (send,
//! expect, read), a protocol [`Recipe`], TLS, assertions, response time thresholds,
//! retries and scheduling fields. [`TcpMonitor::validate`] checks every rule at once, each
//! problem with its field path, and compiles the dialog into a [`ValidMonitor`] that the
//! engine in `monitor-core` runs. A check gives a [`CheckResult`]. The crate also holds the
//! JSON forms and schemas, the [`Bundle`] a deploy sends (monitors and their
//! [`MaintenanceWindow`]s), the deploy and agent API types in
//! [`api`], and the Prometheus text helpers every `/metrics` shares.
//!
//! Every crate of the workspace depends on this one; it depends on none of them, and does
//! no I/O: no sockets, no files, no environment, no clock.
//!
//! ```
//! use monitor_spec::{TcpMonitor, response_time, ms};
//!
//! let monitor = TcpMonitor::new("redis-cache", "127.0.0.1", 6379)
//!     .name("Redis cache answers PING")
//!     .send("PING\\r\\n")
//!     .expect("+PONG")
//!     .assert(response_time().less_than(ms(100)));
//! let valid = monitor.validate().expect("a valid monitor");
//! assert_eq!(valid.spec().id, "redis-cache");
//! assert!(TcpMonitor::new("bad id!", "", 0).validate().is_err());
//! ```

pub mod api;
pub mod assertion;
pub mod bundle;
mod bundle_reader;
mod bundle_stream;
pub mod changes;
pub mod escape;
pub mod json;
pub mod limits;
pub mod login;
pub mod maintenance;
pub mod pem;
pub mod prometheus;
pub mod recipe;
pub mod result;
pub mod rules;
pub mod schedule;
pub mod schema;
pub mod secret;
pub mod shelf;
pub mod spec;
pub mod validate;
mod validate_recipe;

pub use bundle::{Bundle, BundleError};
pub use bundle_reader::BundleReadError;
pub use json::{JsonError, SpecError};
pub use maintenance::{MaintenanceWindow, WindowSchedule};
pub use recipe::{ProxyProtocol, RECIPES, Recipe, StartTls};
pub use result::{
    AssertionOutcome, Attempt, CertInfo, CheckResult, ErrorKind, LegacyReport, ProbeError, Status,
    Timings, TlsReport,
};
pub use spec::{
    Assertion, Backoff, ClientCert, Comparison, Expect, Frequency, IpFamily, LegacyProbe, OcspMode,
    Payload, PemSource, ReadUntil, RetryStrategy, SCHEMA_VERSION, Source, Step, Target, TcpMonitor,
    Timeouts, Tls, TlsMode, TlsPolicy, TlsVersion, connect_time, first_byte_time, ms,
    response_data, response_time, tls_cipher, tls_days_left, tls_issuer, tls_san, tls_subject,
    tls_version,
};
pub use validate::{ValidMonitor, ValidationError, ValidationErrors};
