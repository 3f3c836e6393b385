//! Fuzz target: the LDAP StartTLS extended operation: the BER reading of the server's
//! ExtendedResponse (LDAP has no recipe).
//! The input is an options byte (read chunk size; see `monitor_core::__fuzz::Options`)
//! and the server's bytes.
#![no_main]

use monitor_core::__fuzz;
use monitor_spec::StartTls;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    __fuzz::starttls(StartTls::Ldap, data);
});
