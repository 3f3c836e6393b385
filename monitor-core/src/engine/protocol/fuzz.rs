//! What the fuzz entry points (`crate::__fuzz`, feature `fuzz`) reach inside the engine:
//! a recipe spoken on a connection opened as the engine opens it. A module of its own,
//! imported by nothing in the engine, so that it adds no import loop.

pub(crate) use super::super::conn::{Conn, Timing};
pub(crate) use super::super::recipe::{Context, speak};
