//! Kafka Connect's JsonConverter envelope (`schema` + `payload`), as read from
//! topics other programs write: whatever it yields must be one JSON value.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sluice_fuzz::json_converter(data));
