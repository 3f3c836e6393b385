//! Fuzz target: the LDAP recipe (BindResponse, SearchResultEntry/Done, notices of
//! disconnection) and, when the options ask for it, the StartTLS extended operation before
//! it (the BER reading of the server's ExtendedResponse); with the password option the
//! recipe binds as a DN and searches.
//! The input is an options byte (read chunk size, STARTTLS, password; see
//! `monitor_core::__fuzz::Options`) and the server's bytes.
#![no_main]

use monitor_core::__fuzz;
use monitor_spec::Recipe;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    __fuzz::recipe(&Recipe::ldap(), data);
});
