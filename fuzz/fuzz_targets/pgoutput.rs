//! The pgoutput decoder reads what the PostgreSQL server sends on the
//! replication connection; a broken or hostile server must cost an error.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(described) = sluice::sources::postgres_cdc::fuzz_decode_pgoutput(data) {
        assert!(!described.is_empty());
    }
});
