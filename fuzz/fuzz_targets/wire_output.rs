//! See `sluice_fuzz::wire_output` (fuzz/src/lib.rs) for what it reads and asserts.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sluice_fuzz::wire_output(data));
