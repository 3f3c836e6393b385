//! Fuzz target: an agent's disk buffer read back after a crash: a cursor file and up to
//! two JSONL segment files (torn lines, lines that are not JSON or not results), read as
//! `monitors agent` inspection and a restarted agent read them.
//! The input is the cursor's length (first byte, modulo 32), the cursor, then the
//! segments separated by a 0xff byte.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    monitor_core::__fuzz::agent_buffer(data);
});
