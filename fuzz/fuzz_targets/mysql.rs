//! Fuzz target: the MySQL/MariaDB recipe's parse of the server's first packet (handshake
//! or error) and the STARTTLS dialog that reads it before the SSL Request.
//! The input is an options byte (STARTTLS first, read chunk size, steps following, a
//! small response cap; see `monitor_core::__fuzz::Options`) and the server's bytes.
#![no_main]

use monitor_core::__fuzz;
use monitor_spec::Recipe;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    __fuzz::recipe(&Recipe::mysql(), data);
});
