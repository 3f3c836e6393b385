//! Fuzz target: the Memcached recipe's reading of the `VERSION` reply and, with the
//! password option (bit 6), of the `set`/`get`/`delete` round trip's replies.
//! The input is an options byte (STARTTLS first, read chunk size, steps following, a
//! small response cap; see `monitor_core::__fuzz::Options`) and the server's bytes.
#![no_main]

use monitor_core::__fuzz;
use monitor_spec::Recipe;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    __fuzz::recipe(&Recipe::memcached(), data);
});
