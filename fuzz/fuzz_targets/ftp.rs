//! Fuzz target: the FTP recipe and AUTH TLS dialog: the shared three-digit reply parser
//! (`reply.rs`) in its lenient form (multi-line replies, 120 before 220).
//! The input is an options byte (STARTTLS first, read chunk size, steps following, a
//! small response cap; see `monitor_core::__fuzz::Options`) and the server's bytes.
#![no_main]

use monitor_core::__fuzz;
use monitor_spec::Recipe;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    __fuzz::recipe(&Recipe::ftp(), data);
});
