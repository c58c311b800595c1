//! The embedded Schema Registry answers whoever can reach its port. Any bytes
//! sent as a request must get a well-formed answer that is not a server error,
//! and the registry must still answer the next client.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sluice_fuzz::registry_http(data));
