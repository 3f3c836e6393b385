//! Fuzz target: the legacy TLS probe's reading of the server's answer to a TLS 1.0 or 1.1
//! ClientHello (options bit 0): record headers, alerts, a ServerHello split over records.
//! The input is an options byte (read chunk size; see `monitor_core::__fuzz::Options`)
//! and the server's bytes.
#![no_main]

use monitor_core::__fuzz;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    __fuzz::legacy_probe(data);
});
