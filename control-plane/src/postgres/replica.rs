//! What replicas of the control plane share on PostgreSQL: their tables (a migration of
//! [`super::schema`]) and the queries behind them.

pub(super) const SCHEMA: &str = "";
