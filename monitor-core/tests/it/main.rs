//! Integration tests of monitor-core, one module per topic.

mod acceptance;
mod agent;
mod bounds;
mod certs;
mod engine;
mod fuzzed;
mod kernel;
mod legacy;
mod live;
mod metrics_compat;
mod ocsp;
mod pg_login;
mod pg_scram;
mod pg_standby;
mod policy;
mod props;
mod recipes;
mod registry;
mod report;
mod secrets;
mod servers;
mod starttls;
mod starvation;
mod timings;
mod tls;
mod watch_serving;
