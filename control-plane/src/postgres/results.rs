//! Check results on PostgreSQL: their tables (a migration of [`super::schema`]) and the
//! queries behind the results methods of the store.

pub(super) const SCHEMA: &str = "";
