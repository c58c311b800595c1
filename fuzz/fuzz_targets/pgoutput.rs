//! The pgoutput decoder reads what the PostgreSQL server sends on the
//! replication connection; a broken or hostile server must cost an error.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sluice_fuzz::pgoutput(data));
