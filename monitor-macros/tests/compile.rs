//! Compile tests of `#[tcp_monitor]` and `monitor_defaults!`: every class of error fails
//! to compile with its message at the offending token (`tests/ui`, `TRYBUILD=overwrite`
//! rewrites the expected output), and every key compiles into the monitor it says
//! (`tests/pass`).

#[test]
fn macros() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
    t.pass("tests/pass/*.rs");
}
