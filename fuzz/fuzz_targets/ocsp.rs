//! Fuzz target: the OCSP reader and checker on a stapled or queried answer (DER of an
//! OCSPResponse), checked against a fixed leaf and issuer at two times.
#![no_main]

use monitor_core::__fuzz;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    __fuzz::ocsp_response(data);
});
