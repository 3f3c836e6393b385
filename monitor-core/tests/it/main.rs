//! Integration tests of monitor-core, one module per topic.

mod engine;
mod json;
mod props;
mod servers;
mod validation;
