//! Fuzz target: the PostgreSQL recipe's reading of the startup answer (authentication
//! requests, ParameterStatus, ErrorResponse fields), with the password option the login
//! (md5, SCRAM messages, DataRows of the queries), and the answer to SSLRequest.
//! The input is an options byte (STARTTLS first, read chunk size, steps following, a
//! small response cap; see `monitor_core::__fuzz::Options`) and the server's bytes.
#![no_main]

use monitor_core::__fuzz;
use monitor_spec::Recipe;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    __fuzz::recipe(
        &Recipe::Postgres {
            user: "monitor".into(),
            database: None,
            login: None,
        },
        data,
    );
});
