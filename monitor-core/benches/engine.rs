//! Engine benchmarks (placeholder until written).
#![allow(clippy::print_stdout)]

fn main() {}
