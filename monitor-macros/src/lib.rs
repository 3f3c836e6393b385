//! `#[tcp_monitor]` and `monitor_defaults!`: monitors declared in Rust, checked at compile
//! time, registered for `monitor_core::registry` (placeholder until written).

use proc_macro::TokenStream;

/// Shared with `monitor-core`: hosts, ids, durations, frequencies.
#[path = "../../monitor-core/src/rules.rs"]
#[allow(dead_code)]
mod rules;

/// Shared with `monitor-core`: text escapes.
#[path = "../../monitor-core/src/escape.rs"]
#[allow(dead_code)]
mod escape;

/// Declares a TCP monitor (placeholder).
#[proc_macro_attribute]
pub fn tcp_monitor(_attr: TokenStream, item: TokenStream) -> TokenStream {
    item
}

/// Declares project-wide defaults (placeholder).
#[proc_macro]
pub fn monitor_defaults(_input: TokenStream) -> TokenStream {
    TokenStream::new()
}
