//! See `sluice_fuzz::lookup_keys` (fuzz/src/lib.rs) for what it reads and asserts.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sluice_fuzz::lookup_keys(data));
