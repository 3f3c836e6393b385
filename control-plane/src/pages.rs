//! The HTML pages and SVG badges of the control plane, rendered on the server from data
//! the routes read: plain HTML and CSS with inline SVG, no script, no external asset,
//! readable in dark mode and 375 px wide. Every piece of user data is escaped.
//!
//! - [`layout`]: the document around every page, its style and navigation;
//! - [`overview`]: `/`, the monitors of a project grouped, with bars and uptime;
//! - [`monitor`] and [`chart`]: `/monitors/{id}`, response times, timeline and chain;
//! - [`certificates`]: `/certificates`, every certificate seen, earliest expiry first;
//! - [`badge`]: shields-style SVG badges.

pub mod badge;
pub mod certificates;
pub mod chart;
pub mod layout;
pub mod login;
pub mod monitor;
pub mod overview;
#[cfg(test)]
mod sizes;
