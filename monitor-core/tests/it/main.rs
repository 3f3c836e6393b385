//! Integration tests of monitor-core, one module per topic.

mod acceptance;
mod agent;
mod engine;
mod legacy;
mod live;
mod props;
mod recipes;
mod registry;
mod report;
mod servers;
mod starttls;
mod tls;
mod watch_serving;
