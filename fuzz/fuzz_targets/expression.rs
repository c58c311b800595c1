//! The expression language (filter `where`, project `set`) is written by
//! pipeline authors; parsing and evaluating any text must never panic or
//! recurse without bound.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sluice_fuzz::expression(data));
