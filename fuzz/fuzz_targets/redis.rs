//! Fuzz target: the Redis recipe's reading of RESP replies to AUTH, PING, INFO server and,
//! with a user name, ROLE and INFO replication (options bits 6 and 7: a password, a user
//! name and role).
//! The input is an options byte (STARTTLS first, read chunk size, steps following, a
//! small response cap; see `monitor_core::__fuzz::Options`) and the server's bytes.
#![no_main]

use monitor_core::__fuzz;
use monitor_spec::Recipe;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    __fuzz::recipe(&Recipe::redis(), data);
});
