//! The control plane (placeholder until written).

fn main() {}
